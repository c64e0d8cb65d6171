//! `Mirror`: one call sets up a test's world (an upstream and a mirror registry, a
//! directory, a config between them) and runs the binary in it; `Report` reads what a
//! run reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ocisync_testkit::TestRegistry;

use super::{ocisync_with_env, read_json, Daemon, Run};

/// The registries every config of the fixture names; `{upstream}` and `{mirror}` stand
/// for their urls until [`Mirror::write_config`] fills them in.
const REGISTRIES: &str =
    "version: 1\nregistries:\n  upstream:\n    urls: [\"{upstream}\"]\n  mirror:\n    urls: [\"{mirror}\"]\n";

/// The one sync most tests run: everything of `upstream` into `mirror`.
const ONE_SYNC: &str = "  - from: upstream\n    to: mirror\n";

/// The config [`Mirror::start`] writes: everything of `upstream` into `mirror`.
pub fn one_sync_config() -> String {
    config_with_syncs(ONE_SYNC)
}

/// A config of the two registries and `syncs` (the YAML list under `syncs:`, items
/// indented by two spaces).
pub fn config_with_syncs(syncs: &str) -> String {
    format!("{REGISTRIES}syncs:\n{syncs}")
}

/// The one-sync config with `defaults` (lines under `defaults:`, indented by two spaces).
pub fn config_with_defaults(defaults: &str) -> String {
    format!("{REGISTRIES}defaults:\n{defaults}\nsyncs:\n{ONE_SYNC}")
}

/// Two registries started on loopback, a temporary directory holding the config (and
/// the report, and whatever else a test puts there), and the binary run against them.
pub struct Mirror {
    pub upstream: TestRegistry,
    pub mirror: TestRegistry,
    dir: tempfile::TempDir,
}

impl Mirror {
    /// Two empty registries and the one-sync config between them.
    pub fn start() -> Mirror {
        Mirror::between(TestRegistry::start(), TestRegistry::start())
    }

    /// [`Mirror::start`] with registries the test built (with TLS, a password, ...).
    pub fn between(upstream: TestRegistry, mirror: TestRegistry) -> Mirror {
        let world = Mirror {
            upstream,
            mirror,
            dir: tempfile::tempdir().unwrap(),
        };
        world.write_config(&one_sync_config());
        world
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir().join("ocisync.yaml")
    }

    pub fn report_path(&self) -> PathBuf {
        self.dir().join("report.json")
    }

    /// Replaces the config with `yaml`, `{upstream}` and `{mirror}` filled in with the
    /// registries' urls.
    pub fn write_config(&self, yaml: &str) {
        self.write_config_via(yaml, &[]);
    }

    /// [`Mirror::write_config`], each `(placeholder, value)` of `addresses` filled in
    /// first: `("{upstream}", proxy_url)` puts a proxy in front of the upstream.
    pub fn write_config_via(&self, yaml: &str, addresses: &[(&str, &str)]) {
        let mut text = yaml.to_owned();
        for (placeholder, value) in addresses {
            text = text.replace(placeholder, value);
        }
        let text = text
            .replace("{upstream}", &self.upstream.url())
            .replace("{mirror}", &self.mirror.url());
        std::fs::write(self.config_path(), text).unwrap();
    }

    /// `ocisync ARGS --config CONFIG`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_env(args, &[])
    }

    /// [`Mirror::run`] with extra environment variables.
    pub fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let config = self.config_path();
        ocisync_with_env(&[args, &["--config", config.to_str().unwrap()]].concat(), env)
    }

    /// `ocisync once --config CONFIG --report REPORT`.
    pub fn once(&self) -> Run {
        self.once_with(&[])
    }

    /// [`Mirror::once`] with more arguments.
    pub fn once_with(&self, args: &[&str]) -> Run {
        self.once_with_env(args, &[])
    }

    /// [`Mirror::once`] with more arguments and extra environment variables.
    pub fn once_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.with_report("once", args, env)
    }

    /// `ocisync check --config CONFIG --report REPORT`: the dry run.
    pub fn check(&self) -> Run {
        self.check_with(&[])
    }

    /// [`Mirror::check`] with more arguments.
    pub fn check_with(&self, args: &[&str]) -> Run {
        self.with_report("check", args, &[])
    }

    fn with_report(&self, command: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let report = self.report_path();
        self.run_with_env(&[&[command, "--report", report.to_str().unwrap()], args].concat(), env)
    }

    /// `ocisync run --config CONFIG ARGS` in the background.
    pub fn daemon(&self, args: &[&str]) -> Daemon {
        self.daemon_with_env(args, &[])
    }

    /// [`Mirror::daemon`] with extra environment variables.
    pub fn daemon_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let config = self.config_path();
        Daemon::spawn_with_env(&[&["--config", config.to_str().unwrap()], args].concat(), env)
    }

    /// The report the last [`Mirror::once`] or [`Mirror::check`] wrote.
    pub fn report(&self) -> Report {
        Report::read(&self.report_path())
    }
}

/// A JSON report as `--report` writes it; indexes like the JSON (`report["totals"]`).
#[derive(Debug)]
pub struct Report(serde_json::Value);

impl Report {
    pub fn read(path: &Path) -> Report {
        Report(read_json(path))
    }

    /// A report of one of this report's syncs alone.
    pub fn sync(&self, index: usize) -> Report {
        Report(serde_json::json!({ "syncs": [self["syncs"][index].clone()] }))
    }

    /// Every tag entry: (source repository, entry).
    pub fn tags(&self) -> Vec<(String, serde_json::Value)> {
        let mut entries = Vec::new();
        for sync in self["syncs"].as_array().unwrap() {
            for repo in sync["repositories"].as_array().unwrap() {
                for tag in repo["tags"].as_array().unwrap() {
                    entries.push((repo["source"].as_str().unwrap().to_owned(), tag.clone()));
                }
            }
        }
        entries
    }

    /// The entry of `repo:tag`; fails the test when there is none.
    pub fn tag(&self, repo: &str, tag: &str) -> serde_json::Value {
        self.tags()
            .into_iter()
            .find(|(source, entry)| source == repo && entry["tag"] == tag)
            .unwrap_or_else(|| panic!("{repo}:{tag} not reported"))
            .1
    }

    /// What became of `repo:tag`: its outcome (`copied`), a skipped tag's with its
    /// reason (`skipped:unsigned`).
    pub fn outcome(&self, repo: &str, tag: &str) -> String {
        let entry = self.tag(repo, tag);
        let outcome = entry["outcome"].as_str().unwrap();
        match entry["reason"].as_str() {
            Some(reason) => format!("{outcome}:{reason}"),
            None => outcome.to_owned(),
        }
    }

    /// The tag entries whose outcome or skip reason is `what` (`copied`, `up-to-date`).
    pub fn tags_that(&self, what: &str) -> Vec<serde_json::Value> {
        self.tags()
            .into_iter()
            .map(|(_, entry)| entry)
            .filter(|entry| entry["outcome"] == what || entry["reason"] == what)
            .collect()
    }

    /// How many tags each skip reason, or else outcome, has.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (_, entry) in self.tags() {
            let key = entry["reason"].as_str().or(entry["outcome"].as_str()).unwrap();
            *counts.entry(key.to_owned()).or_default() += 1;
        }
        counts
    }

    /// Whether the pass failed, by the rule the exit code follows (the engine's
    /// `Report::has_failures`): a failed sync, rule, repository or tag, a used-up pull
    /// quota, or a pass past its deadline.
    pub fn has_failures(&self) -> bool {
        let totals = &self["totals"];
        let failing = [
            "syncs_failed",
            "rules_failed",
            "repositories_failed",
            "tags_failed",
            "tags_rate_limited",
            "syncs_past_deadline",
        ];
        failing
            .iter()
            .map(|key| {
                totals[key]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no totals.{key} in {totals}"))
            })
            .sum::<u64>()
            > 0
    }
}

impl std::ops::Deref for Report {
    type Target = serde_json::Value;

    fn deref(&self) -> &serde_json::Value {
        &self.0
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, formatter)
    }
}
