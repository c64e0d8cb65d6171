//! `ocisync completions SHELL` and `ocisync man`: shell completion scripts and man pages,
//! generated from the clap definition in `cli.rs`, so they never fall behind it.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::cli::Cli;

/// The completion script for `shell` on stdout.
pub fn print_completions(shell: clap_complete::Shell) {
    clap_complete::generate(shell, &mut Cli::command(), "ocisync", &mut std::io::stdout());
}

/// `ocisync.1` (roff) on stdout.
pub fn print_man_page() -> anyhow::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    std::io::stdout().write_all(&page).context("cannot print the man page")
}

/// `ocisync.1` and one page per subcommand (`ocisync-once.1`, ...) into `dir`.
pub fn write_man_pages(dir: &Path) -> anyhow::Result<()> {
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("cannot write the man pages into {}", dir.display()))
}
