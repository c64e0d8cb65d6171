//! Running the real binary and reading what it wrote.

mod export;
mod fixture;
mod promtool;
mod report;
mod seed;
mod workdir;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use export::{export_config_with_syncs, Export};
pub use fixture::{config_with_defaults, config_with_registry_lines, config_with_syncs, one_sync_config, Mirror};
pub use promtool::{promtool, promtool_accepts_metrics};
pub use report::Report;
pub use seed::two_tag_repos;
pub use workdir::{Workdir, NOWHERE};

/// What one run of `ocisync` did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// What a finished process printed, and its exit code (-1 when a signal ended it).
    pub fn of(output: std::process::Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Fails the test with everything the run printed.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "ocisync panicked:\n{}", self.stderr);
        self
    }
}

pub fn ocisync(args: &[&str]) -> Run {
    ocisync_with_env(args, &[])
}

/// `ocisync ARGS` with extra environment variables (`PATH` with a credential helper, say).
pub fn ocisync_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = ocisync_command(args);
    command.envs(env.iter().copied());
    Run::of(command.output().expect("run ocisync"))
}

/// The binary with `args`, logging at info, with no proxy variable of the machine's:
/// every launch of `ocisync` in these tests starts here. The caller adds its own
/// variables (which win) and runs it.
pub fn ocisync_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ocisync"));
    command.args(args).env("OCISYNC_LOG", "info");
    without_proxies(&mut command);
    command
}

/// Every proxy variable reqwest reads, in both spellings.
const PROXY_VARIABLES: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Clears the machine's proxy variables from `command`: tests talk to loopback only,
/// and a test of proxies sets exactly the ones it means.
pub fn without_proxies(command: &mut Command) -> &mut Command {
    for variable in PROXY_VARIABLES {
        command.env_remove(variable);
    }
    command
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("report written")).expect("report is JSON")
}

/// Where distribution's filesystem driver keeps a blob's bytes.
pub fn blob_data_path(storage_root: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    storage_root
        .join("storage/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

/// Flips one byte of a blob (or manifest) in a registry's storage: it is still served,
/// but no longer matches its digest.
pub fn corrupt_stored_blob(storage_root: &Path, digest: &str, index_from_end: usize) {
    let path = blob_data_path(storage_root, digest);
    let mut bytes = std::fs::read(&path).unwrap();
    let index = bytes.len() - 1 - index_from_end;
    bytes[index] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
}

/// `(repo, repo)` pairs: every repository mirrored under its own name.
pub fn same_names(repos: &[String]) -> Vec<(&str, &str)> {
    repos.iter().map(|repo| (repo.as_str(), repo.as_str())).collect()
}

/// `ocisync run ARGS` in the background, its stderr read line by line. Killed on drop.
pub struct Daemon {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every line read so far.
    pub log: Vec<String>,
}

impl Daemon {
    /// `ocisync run ARGS` with extra environment variables.
    pub fn spawn_with_env(args: &[&str], env: &[(&str, &str)]) -> Daemon {
        use std::io::BufRead as _;
        let mut child = ocisync_command(&[&["run"], args].concat())
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start ocisync run");
        let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Reads log lines until `done` holds for the log so far; fails the test after `limit`.
    pub fn wait_for_log(&mut self, what: &str, limit: std::time::Duration, done: impl Fn(&[String]) -> bool) {
        let deadline = std::time::Instant::now() + limit;
        while !done(&self.log) {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: not seen within {limit:?}:\n{}",
                self.log.join("\n")
            );
            if let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_millis(200)) {
                self.log.push(line);
            }
        }
    }

    /// Waits for the exit of a daemon that stops on its own; returns the exit code.
    pub fn wait(&mut self) -> Option<i32> {
        self.child.wait().unwrap().code()
    }

    /// SIGTERM, then waits (at most `limit`) for the exit; returns the exit code.
    pub fn terminate(&mut self, limit: std::time::Duration) -> Option<i32> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        let started = std::time::Instant::now();
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            assert!(started.elapsed() < limit, "ocisync run did not stop after SIGTERM");
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_millis(300)) {
            self.log.push(line);
        }
        exit.code()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
