//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ocisync_engine::Shard;
use url::Url;

/// Keeps OCI registries in sync.
#[derive(Debug, Parser)]
#[command(name = "ocisync", version, about)]
pub struct Cli {
    /// Log filter: error, warn, info, debug, trace, or a tracing directive. Also OCISYNC_LOG.
    #[arg(long, global = true, env = "OCISYNC_LOG", default_value = "info")]
    pub log: String,

    /// Log lines as text (for people) or JSON (for collectors); auto: text when stderr is a terminal.
    #[arg(long, global = true, env = "OCISYNC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every sync (or one) once, then exit: 0 all copied or up to date, 1 something failed, 2 config or fatal error.
    Once(OnceArgs),
    /// Run as a daemon: each sync on its schedule or interval, until SIGTERM or SIGINT.
    Run {
        #[command(flatten)]
        config: ConfigArg,
        /// How long in-flight image copies may take to finish after SIGTERM/SIGINT, or
        /// once a pass reaches its max_pass_duration.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        grace_period: Duration,
        /// Write each pass's JSON report to this file (replaced after every pass).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Serve /metrics, /healthz and /readyz at this address (overrides defaults.listen).
        #[arg(long, value_name = "IP:PORT")]
        listen: Option<SocketAddr>,
    },
    /// Dry run: print per sync and repository which tags would be copied, which are
    /// up to date and which are filtered out. Writes nothing to any destination.
    Check(PassArgs),
    /// Copy one image (host/repo:tag or host/repo@digest) or one whole repository (host/repo).
    Copy(Box<CopyArgs>),
    /// Print the effective configuration: defaults filled in, secrets redacted; or,
    /// with --schema, the JSON Schema of the config file.
    Config {
        /// The config file (YAML, version 1).
        #[arg(long, short, required_unless_present = "schema")]
        config: Option<PathBuf>,
        /// Print the JSON Schema of the config file (for editors) instead.
        #[arg(long, conflicts_with = "config")]
        schema: bool,
    },
    /// Remove the blobs of an OCI layout directory that no manifest reachable from its
    /// repositories' index.json references (what pruned tags left behind). Run it while
    /// no sync writes the directory.
    Gc {
        /// The layout directory (a sync's `layout:`).
        #[arg(long, value_name = "PATH")]
        layout: PathBuf,
        /// Print what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print a shell completion script: ocisync completions bash > /etc/bash_completion.d/ocisync
    Completions {
        /// The shell the script is for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): ocisync man > ocisync.1; or, with --dir, write it and a
    /// page per subcommand (ocisync-once.1, ...) into a directory.
    Man {
        /// Write ocisync.1 and the subcommands' pages into this directory instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Text,
    Json,
}

/// What `once` and `check` take.
#[derive(Debug, Args)]
pub struct PassArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Also write the report (for `check`, the plan) as JSON to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Only the sync with this name.
    #[arg(long)]
    pub sync: Option<String>,
    /// Only the repositories in shard INDEX of COUNT (0-based), e.g. 0/4.
    #[arg(long, value_name = "INDEX/COUNT")]
    pub shard: Option<Shard>,
    /// How long in-flight image copies may take to finish once a sync's pass reaches its
    /// max_pass_duration; then they are abandoned and the next sync starts.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub grace_period: Duration,
}

/// What `once` takes: a pass's arguments and where its metrics go.
#[derive(Debug, Args)]
pub struct OnceArgs {
    #[command(flatten)]
    pub pass: PassArgs,
    /// Push each sync's metrics to this Prometheus Pushgateway after the pass (overrides
    /// defaults.push_metrics), grouped by job "ocisync" and sync. A failed push is
    /// logged and does not change the exit code.
    #[arg(long, value_name = "URL", value_parser = crate::pushgateway::parse_url)]
    pub push_metrics: Option<Url>,
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The config file (YAML, version 1).
    #[arg(long, short)]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Source: [docker://][host[:port]/]repository[:tag][@digest], as docker takes it:
    /// alpine:3.20 (Docker Hub, library/alpine), ghcr.io/org/app:1.2, localhost:5000/app.
    pub source: String,
    /// Destination: [host[:port]/]repository[:tag]; the tag defaults to the source's.
    pub destination: String,
    #[command(flatten)]
    pub source_access: SourceAccess,
    #[command(flatten)]
    pub destination_access: DestinationAccess,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// Declares the flags saying how to reach one side of `copy`, each named `--PREFIX-…`:
/// clap flattens a struct's flags without a prefix, so each side has a struct of its own,
/// both from this one definition. Passwords come from a variable or a file, never from
/// the command line, where other users could read them.
macro_rules! copy_access_args {
    ($(#[$doc:meta])* $name:ident, prefix: $prefix:literal, value_prefix: $value_prefix:literal, side: $side:literal) => {
        $(#[$doc])*
        #[derive(Debug, Args)]
        pub struct $name {
            #[arg(
                id = concat!($prefix, "_plain_http"),
                long = concat!($prefix, "-plain-http"),
                help = concat!("Speak plain HTTP to the ", $side),
            )]
            pub plain_http: bool,
            #[arg(
                id = concat!($prefix, "_tls_verify"),
                long = concat!($prefix, "-tls-verify"),
                value_name = concat!($value_prefix, "_TLS_VERIFY"),
                help = concat!("Verify the ", $side, "'s TLS certificate"),
                default_value_t = true,
                action = clap::ArgAction::Set,
            )]
            pub tls_verify: bool,
            #[arg(
                id = concat!($prefix, "_ca_file"),
                long = concat!($prefix, "-ca-file"),
                value_name = concat!($value_prefix, "_CA_FILE"),
                help = concat!("Extra CA certificate (PEM) for the ", $side),
            )]
            pub ca_file: Option<PathBuf>,
            #[arg(
                id = concat!($prefix, "_username"),
                long = concat!($prefix, "-username"),
                value_name = concat!($value_prefix, "_USERNAME"),
            )]
            pub username: Option<String>,
            #[arg(
                id = concat!($prefix, "_password_env"),
                long = concat!($prefix, "-password-env"),
                value_name = concat!($value_prefix, "_PASSWORD_ENV"),
                help = concat!("Environment variable holding the ", $side, " password"),
            )]
            pub password_env: Option<String>,
            #[arg(
                id = concat!($prefix, "_password_file"),
                long = concat!($prefix, "-password-file"),
                value_name = concat!($value_prefix, "_PASSWORD_FILE"),
                help = concat!("File holding the ", $side, " password"),
            )]
            pub password_file: Option<PathBuf>,
        }

        impl $name {
            /// This side's flags, as `copy` reads them.
            pub fn access(&self) -> crate::copy_cmd::Access<'_> {
                crate::copy_cmd::Access {
                    plain_http: self.plain_http,
                    tls_verify: self.tls_verify,
                    ca_file: self.ca_file.as_ref(),
                    username: self.username.as_ref(),
                    password_env: self.password_env.as_ref(),
                    password_file: self.password_file.as_ref(),
                }
            }
        }
    };
}

copy_access_args!(
    /// How to reach the source of `copy`.
    SourceAccess,
    prefix: "src",
    value_prefix: "SRC",
    side: "source"
);
copy_access_args!(
    /// How to reach the destination of `copy`.
    DestinationAccess,
    prefix: "dest",
    value_prefix: "DEST",
    side: "destination"
);
