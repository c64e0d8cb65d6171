//! Docker credential helpers: `docker-credential-NAME get`, the registry on stdin, JSON
//! `{"ServerURL", "Username", "Secret"}` on stdout (docker-credential-helpers' protocol).
//!
//! What a helper prints when it fails, on stdout or stderr, may hold secrets or tokens:
//! it is never read into an error or a log. A failure says which helper failed and how
//! (exit code, timeout), nothing more. stderr is not even captured.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ocisync_registry::{Credentials, Secret};
use serde::Deserialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use url::Url;

use crate::docker_hub::is_hub_host;

/// How long a helper may take unless the registry's `credential_helper_timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The server docker asks helpers about for Docker Hub (its `IndexServer`).
const HUB_SERVER: &str = "https://index.docker.io/v1/";
/// More stdout than this is not credentials.
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;

/// A credential helper and what to ask it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialHelper {
    /// `NAME` of `docker-credential-NAME`.
    pub name: String,
    /// Written to the helper's stdin: `host[:port]`, or docker's Hub server URL.
    pub server: String,
    /// The helper is killed after this long.
    pub timeout: Duration,
}

/// Why a helper gave no credentials. Never holds anything the helper printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelperError {
    /// `docker-credential-NAME` is not on PATH (or cannot be run).
    CannotRun {
        program: String,
        reason: String,
    },
    /// It exited unsuccessfully; `None`: killed by a signal.
    Failed {
        program: String,
        code: Option<i32>,
    },
    TimedOut {
        program: String,
        timeout: Duration,
    },
    /// It exited 0 but printed no usable credentials.
    NoCredentials {
        program: String,
    },
}

impl std::fmt::Display for HelperError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HelperError::CannotRun { program, reason } => {
                write!(f, "credential helper {program} cannot be run: {reason}")
            }
            HelperError::Failed {
                program,
                code: Some(code),
            } => {
                write!(f, "credential helper {program} failed with exit code {code}")
            }
            HelperError::Failed { program, code: None } => {
                write!(f, "credential helper {program} was killed by a signal")
            }
            HelperError::TimedOut { program, timeout } => write!(
                f,
                "credential helper {program} did not answer within {}; killed",
                humantime::format_duration(*timeout)
            ),
            HelperError::NoCredentials { program } => {
                write!(f, "credential helper {program} printed no credentials")
            }
        }
    }
}

impl std::error::Error for HelperError {}

/// A helper's answer (docker-credential-helpers' `Credentials`).
#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// The `Username` that marks `Secret` as an identity token (docker's convention).
const IDENTITY_TOKEN_USER: &str = "<token>";

impl CredentialHelper {
    /// The executable: `docker-credential-NAME`.
    pub fn program(&self) -> String {
        program_name(&self.name)
    }

    /// Runs `docker-credential-NAME get` and reads its answer.
    pub async fn get(&self) -> Result<Credentials, HelperError> {
        let program = self.program();
        let mut child = tokio::process::Command::new(&program)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| HelperError::CannotRun {
                program: program.clone(),
                reason: match error.kind() {
                    std::io::ErrorKind::NotFound => "not found on PATH".to_owned(),
                    _ => error.to_string(),
                },
            })?;
        let mut stdin = child.stdin.take();
        let mut stdout = child.stdout.take();
        let exchange = async {
            if let Some(mut stdin) = stdin.take() {
                // A helper that exits without reading its stdin is judged by its exit code.
                let _ = stdin.write_all(self.server.as_bytes()).await;
            }
            let mut answer = Vec::new();
            if let Some(stdout) = stdout.take() {
                let _ = stdout.take(MAX_ANSWER_BYTES).read_to_end(&mut answer).await;
            }
            (child.wait().await, answer)
        };
        let outcome = tokio::time::timeout(self.timeout, exchange).await;
        let (status, answer) = match outcome {
            Ok(finished) => finished,
            Err(_elapsed) => {
                let _ = child.kill().await;
                return Err(HelperError::TimedOut {
                    program,
                    timeout: self.timeout,
                });
            }
        };
        let status = status.map_err(|error| HelperError::CannotRun {
            program: program.clone(),
            reason: error.to_string(),
        })?;
        if !status.success() {
            return Err(HelperError::Failed {
                program,
                code: status.code(),
            });
        }
        parse_answer(&answer).ok_or(HelperError::NoCredentials { program })
    }
}

/// `docker-credential-NAME`.
pub fn program_name(name: &str) -> String {
    format!("docker-credential-{name}")
}

/// A helper name is the end of a file name: no path, no spaces.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '\\']) && !name.contains(char::is_whitespace)
}

/// Where `program` is on `path` (a `PATH` value), if it is there and executable.
pub fn find_on_path(program: &str, path: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

/// What docker writes to a helper's stdin for a registry URL: `host[:port]`, and for
/// Docker Hub the server docker stores Hub credentials under.
pub fn server_for(url: &Url) -> String {
    match url.host_str() {
        Some(host) if url.port().is_none() && is_hub_host(host) => HUB_SERVER.to_owned(),
        _ => url[url::Position::BeforeHost..url::Position::AfterPort].to_owned(),
    }
}

/// Credentials from a helper's stdout; `None` when it is not an answer or holds no secret.
fn parse_answer(stdout: &[u8]) -> Option<Credentials> {
    let answer: Answer = serde_json::from_slice(stdout).ok()?;
    if answer.secret.is_empty() {
        return None;
    }
    let secret = Secret::new(answer.secret);
    Some(if answer.username == IDENTITY_TOKEN_USER {
        Credentials::IdentityToken(secret)
    } else {
        Credentials::password(answer.username, secret)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_passwords_or_identity_tokens() {
        assert_eq!(
            parse_answer(br#"{"ServerURL": "ghcr.io", "Username": "bot", "Secret": "pw"}"#),
            Some(Credentials::password("bot", Secret::new("pw")))
        );
        assert_eq!(
            parse_answer(br#"{"ServerURL": "x", "Username": "<token>", "Secret": "refresh"}"#),
            Some(Credentials::IdentityToken(Secret::new("refresh")))
        );
        assert_eq!(
            parse_answer(br#"{"Username": "AWS", "Secret": "t"}"#),
            Some(Credentials::password("AWS", Secret::new("t"))),
            "ECR's answer has no ServerURL"
        );
        for nothing in [
            &br#"{"ServerURL": "x", "Username": "bot", "Secret": ""}"#[..],
            b"credentials not found in native keychain",
            b"",
        ] {
            assert_eq!(parse_answer(nothing), None, "{}", String::from_utf8_lossy(nothing));
        }
    }

    #[test]
    fn servers_are_written_as_docker_writes_them() {
        let server = |text: &str| server_for(&Url::parse(text).unwrap());
        assert_eq!(server("https://registry-1.docker.io"), HUB_SERVER);
        assert_eq!(server("https://index.docker.io/"), HUB_SERVER);
        assert_eq!(server("https://ghcr.io"), "ghcr.io");
        assert_eq!(server("http://127.0.0.1:5000/prefix"), "127.0.0.1:5000");
        assert_eq!(
            server("https://docker.io:8443"),
            "docker.io:8443",
            "another port is another server"
        );
    }

    #[test]
    fn helper_names_and_path_lookup() {
        assert!(valid_name("ecr-login") && valid_name("gcloud"));
        for bad in ["", "../x", "a b", "dir/x"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-here");
        std::fs::write(&helper, "#!/bin/sh\n").unwrap();
        let not_executable = dir.path().join("docker-credential-plain");
        std::fs::write(&not_executable, "").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("/nonexistent-dir::{}", dir.path().display());
        assert_eq!(find_on_path("docker-credential-here", &path), Some(helper));
        assert_eq!(find_on_path("docker-credential-plain", &path), None);
        assert_eq!(find_on_path("docker-credential-absent", &path), None);
    }

    #[test]
    fn failures_say_which_helper_and_how() {
        let program = "docker-credential-x".to_owned();
        let failed = HelperError::Failed {
            program: program.clone(),
            code: Some(3),
        };
        assert_eq!(
            failed.to_string(),
            "credential helper docker-credential-x failed with exit code 3"
        );
        let timed_out = HelperError::TimedOut {
            program,
            timeout: Duration::from_secs(30),
        };
        assert_eq!(
            timed_out.to_string(),
            "credential helper docker-credential-x did not answer within 30s; killed"
        );
    }
}
