//! `Workdir`: a temporary directory holding a config (and the report, and whatever else
//! a test puts there), and the binary run with that config. [`super::Mirror`] and
//! [`super::Export`] add the registries; a test of config errors, or of addresses where
//! nothing listens, uses it alone.

use std::path::{Path, PathBuf};

use super::{ocisync_with_env, Daemon, Report, Run};

/// Addresses where no test registry runs (the discard port): for configs that must
/// fail before any request, or whose registries are never reached.
pub const NOWHERE: [(&str, &str); 2] = [("{upstream}", "http://127.0.0.1:9"), ("{mirror}", "http://127.0.0.1:9")];

pub struct Workdir {
    dir: tempfile::TempDir,
}

impl Default for Workdir {
    fn default() -> Self {
        Workdir::new()
    }
}

impl Workdir {
    /// An empty directory, no config yet.
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().unwrap(),
        }
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

    /// Replaces the config with `yaml`, each `(placeholder, value)` of `addresses`
    /// filled in, in order.
    pub fn write_config_filled(&self, yaml: &str, addresses: &[(&str, &str)]) {
        self.write_other_config("ocisync.yaml", yaml, addresses);
    }

    /// [`Workdir::write_config_filled`] into the file `name` of the directory, for a
    /// second process with a config of its own; returns its path.
    pub fn write_other_config(&self, name: &str, yaml: &str, addresses: &[(&str, &str)]) -> PathBuf {
        let text = addresses.iter().fold(yaml.to_owned(), |text, (placeholder, value)| {
            text.replace(placeholder, value)
        });
        let path = self.dir().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `ocisync ARGS --config CONFIG`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_env(args, &[])
    }

    /// [`Workdir::run`] with extra environment variables.
    pub fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let config = self.config_path();
        ocisync_with_env(&[args, &["--config", config.to_str().unwrap()]].concat(), env)
    }

    /// `ocisync once --config CONFIG --report REPORT`.
    pub fn once(&self) -> Run {
        self.once_with(&[])
    }

    /// [`Workdir::once`] with more arguments.
    pub fn once_with(&self, args: &[&str]) -> Run {
        self.once_with_env(args, &[])
    }

    /// [`Workdir::once`] with more arguments and extra environment variables.
    pub fn once_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.with_report("once", args, env)
    }

    /// `ocisync check --config CONFIG --report REPORT`: the dry run.
    pub fn check(&self) -> Run {
        self.check_with(&[])
    }

    /// [`Workdir::check`] with more arguments.
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

    /// [`Workdir::daemon`] with extra environment variables.
    pub fn daemon_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let config = self.config_path();
        Daemon::spawn_with_env(&[&["--config", config.to_str().unwrap()], args].concat(), env)
    }

    /// The report the last [`Workdir::once`] or [`Workdir::check`] wrote.
    pub fn report(&self) -> Report {
        Report::read(&self.report_path())
    }
}
