//! The two tools under comparison and how each is started on a source and destination.
//!
//! skopeo 1.9 syncs from a YAML source: one process for every repository, which is
//! faster than one `skopeo sync --src docker` process per repository (each would pay the
//! start-up and `/v2/` probe again). Without `--scoped`, a destination repository is
//! named after the last path component of the source; the corpus uses flat names, so the
//! names stay the same. `--all` copies every platform of an index and the index itself.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::process::{run_timed, Timed};

/// How long one pass may take before it is killed.
pub const PASS_DEADLINE: Duration = Duration::from_secs(600);

/// A mirroring tool the bench runs as a child process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contender {
    /// `skopeo sync` at this path.
    Skopeo(PathBuf),
    /// `ocisync once` at this path, with one more config line when given: see
    /// [`ocisync_config`].
    Ocisync(PathBuf, Option<String>),
}

impl Contender {
    /// Short name for tables: `ocisync once` gains its extra config line when it has one.
    pub fn name(&self) -> String {
        match self {
            Contender::Skopeo(_) => "skopeo sync".to_owned(),
            Contender::Ocisync(_, None) => "ocisync once".to_owned(),
            // A `|` would end a markdown table cell.
            Contender::Ocisync(_, Some(line)) => format!("ocisync once {}", line.replace('|', "\\|")),
        }
    }

    /// Runs one pass mirroring `repos` from `source_host` to `destination_host` (both
    /// `127.0.0.1:PORT`, plain HTTP). `work_dir` receives config files and logs.
    pub fn pass(
        &self,
        source_host: &str,
        destination_host: &str,
        repos: &[String],
        work_dir: &Path,
    ) -> std::io::Result<Timed> {
        match self {
            Contender::Skopeo(program) => {
                let policy = work_dir.join("policy.json");
                std::fs::write(&policy, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#)?;
                let source = work_dir.join("skopeo-source.yaml");
                std::fs::write(&source, skopeo_yaml(source_host, repos))?;
                let args = [
                    "--policy".to_owned(),
                    policy.display().to_string(),
                    "sync".to_owned(),
                    "--all".to_owned(),
                    "--preserve-digests".to_owned(),
                    "--src".to_owned(),
                    "yaml".to_owned(),
                    "--dest".to_owned(),
                    "docker".to_owned(),
                    "--dest-tls-verify=false".to_owned(),
                    source.display().to_string(),
                    destination_host.to_owned(),
                ];
                run_timed(program, &args, &[], work_dir, PASS_DEADLINE)
            }
            Contender::Ocisync(program, line) => {
                let config = work_dir.join("ocisync.yaml");
                std::fs::write(&config, ocisync_config(source_host, destination_host, line.as_deref()))?;
                let args = [
                    "once".to_owned(),
                    "--config".to_owned(),
                    config.display().to_string(),
                    "--report".to_owned(),
                    work_dir.join("report.json").display().to_string(),
                ];
                run_timed(program, &args, &[("OCISYNC_LOG", "warn")], work_dir, PASS_DEADLINE)
            }
        }
    }
}

/// skopeo's `--src yaml` file: every tag (`[]`) of each repository, plain HTTP.
pub fn skopeo_yaml(source_host: &str, repos: &[String]) -> String {
    let mut text = format!("{source_host}:\n  tls-verify: false\n  images:\n");
    for repo in repos {
        let _ = writeln!(text, "    {repo}: []");
    }
    text
}

/// An `ocisync` config mirroring the whole catalog of `source_host` to
/// `destination_host`, with one more `KEY: FLOW-VALUE` line if given: a `defaults:` line
/// goes to the top level (`defaults: {concurrency: {blobs: 8}}`), any other key into the
/// sync (`content: [{prefix: "**", tags: {immutable: [".*"]}}]`).
pub fn ocisync_config(source_host: &str, destination_host: &str, line: Option<&str>) -> String {
    let mut text = String::from("version: 1\n");
    let (top, sync) = match line {
        Some(line) if line.starts_with("defaults:") => (Some(line), None),
        other => (None, other),
    };
    if let Some(line) = top {
        let _ = writeln!(text, "{line}");
    }
    let _ = write!(
        text,
        "registries:\n  upstream:\n    urls: [\"http://{source_host}\"]\n  \
         mirror:\n    urls: [\"http://{destination_host}\"]\nsyncs:\n  - from: upstream\n    to: mirror\n"
    );
    if let Some(line) = sync {
        let _ = writeln!(text, "    {line}");
    }
    text
}

/// `--concurrency R,B` as a `defaults:` line for [`Contender::Ocisync`].
pub fn concurrency_defaults(repositories: usize, blobs: usize) -> String {
    format!("defaults: {{concurrency: {{repositories: {repositories}, blobs: {blobs}}}}}")
}
