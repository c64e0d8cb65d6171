//! The `ocisync` command: config, logging, subcommands and exit codes.
//!
//! A library only so that `src/main.rs` stays one call and the fuzz targets (`fuzz/`,
//! feature `fuzzing`) reach the parsers: its one public entry is [`main`].
//!
//! Exit codes: 0 when everything was copied or already present (or, for `run`, a
//! clean stop), 1 when some image, repository or sync failed (a pass that ran past its
//! `max_pass_duration` included), 2 for a config error or a fatal error.

mod cli;
mod command_docs;
mod config;
mod copy_cmd;
mod credential_helper;
mod daemon;
mod deadline;
mod docker_hub;
mod events;
mod gc_cmd;
mod health;
mod image_ref;
mod logging;
mod metrics;
mod once;
mod passes;
mod progress;
mod prune_summary;
mod pushgateway;
mod quota;
mod report_path;
mod schedule;
mod show_config;
mod stores;
mod summary;
#[cfg(test)]
mod test_reports;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use ocisync_engine::Report;

use crate::cli::{Cli, Command, OnceArgs as OnceCommand, PassArgs};
use crate::config::{Config, ConfigError};
use crate::once::OnceArgs;

const EXIT_FAILURES: u8 = 1;
const EXIT_FATAL: u8 = 2;

/// The whole command: parses the command line, runs the subcommand, picks the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(&cli.log, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_FATAL);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            // One line (the config error lists its problems below it), never a backtrace.
            if error.downcast_ref::<ConfigError>().is_some() {
                eprintln!("error: {error}");
            } else {
                eprintln!("error: {error:#}");
            }
            ExitCode::from(EXIT_FATAL)
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Once(OnceCommand { pass, push_metrics }) => run_pass(pass, false, push_metrics).await,
        Command::Check(args) => run_pass(args, true, None).await,
        Command::Run {
            config,
            grace_period,
            report,
            listen,
        } => {
            let config = Config::load(&config.config)?;
            let listen = listen.or(config.listen);
            Ok(match daemon::run_daemon(&config, grace_period, report, listen).await? {
                daemon::Stopped::Cleanly => ExitCode::SUCCESS,
                daemon::Stopped::GraceExceeded => ExitCode::from(EXIT_FAILURES),
            })
        }
        Command::Copy(args) => Ok(exit_code(&copy_cmd::run_copy(&args).await?)),
        Command::Config { schema: true, .. } => {
            print!("{}", config::json_schema());
            Ok(ExitCode::SUCCESS)
        }
        Command::Gc { layout, dry_run } => {
            let (text, failed) = gc_cmd::run_gc(&layout, dry_run)?;
            print!("{text}");
            Ok(if failed {
                ExitCode::from(EXIT_FAILURES)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Completions { shell } => {
            command_docs::print_completions(shell);
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir: None } => {
            command_docs::print_man_page()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir: Some(dir) } => {
            command_docs::write_man_pages(&dir)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config { config, .. } => {
            // clap requires --config without --schema.
            let path = config.context("--config is required")?;
            let config = Config::load(&path)?;
            print!("{}", show_config::render(&config)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `once`, or `check` when `dry_run` (which pushes no metrics).
async fn run_pass(args: PassArgs, dry_run: bool, push_metrics: Option<url::Url>) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config.config)?;
    let push_metrics = if dry_run {
        None
    } else {
        push_metrics.or_else(|| config.push_metrics.clone())
    };
    let once_args = OnceArgs {
        report_path: args.report.as_deref(),
        only_sync: args.sync.as_deref(),
        dry_run,
        shard: args.shard,
        grace_period: args.grace_period,
        push_metrics,
    };
    Ok(exit_code(&once::run_once(&config, once_args).await?))
}

fn exit_code(report: &Report) -> ExitCode {
    if report.has_failures() {
        ExitCode::from(EXIT_FAILURES)
    } else {
        ExitCode::SUCCESS
    }
}
