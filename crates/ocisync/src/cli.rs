//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Keeps OCI registries in sync.
#[derive(Debug, Parser)]
#[command(name = "ocisync", version, about)]
pub struct Cli {
    /// Log filter: error, warn, info, debug, trace, or a tracing directive. Also OCISYNC_LOG.
    #[arg(long, global = true, env = "OCISYNC_LOG", default_value = "info")]
    pub log: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every sync once, then exit: 0 all copied or up to date, 1 something failed, 2 config or fatal error.
    Once {
        /// The config file (YAML, version 1).
        #[arg(long, short)]
        config: PathBuf,
        /// Also write the pass report as JSON to this file.
        #[arg(long)]
        report: Option<PathBuf>,
    },
}
