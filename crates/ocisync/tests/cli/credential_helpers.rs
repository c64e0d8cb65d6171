//! Docker credential helpers: small shell scripts named `docker-credential-NAME` in a
//! directory put on PATH, serving (or refusing) a registry's credentials.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ocisync_testkit::{
    assert_mirror_complete_with, corpus, small_corpus, RegistryClient, TestRegistry, TokenServer, TokenServerOptions,
    TokenUser,
};

use crate::support::{ocisync_with_env, read_json, Daemon, Run};

const USER: &str = "pusher";
const PASSWORD: &str = "helper-served-pw-3b9e";

/// A directory of helper scripts, and a PATH that finds them first.
struct HelperDir {
    dir: tempfile::TempDir,
    path: String,
}

impl HelperDir {
    fn new() -> HelperDir {
        let dir = tempfile::tempdir().unwrap();
        let path = format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap_or_default());
        HelperDir { dir, path }
    }

    /// Writes `docker-credential-NAME` with `body` after the shebang; returns its path.
    fn helper(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// A file in the directory (where helpers count their runs).
    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Run {
        ocisync_with_env(args, &[("PATH", &self.path)])
    }
}

/// A helper answering `get` for `server` only (as written on stdin), with `answer`,
/// and appending a line to `count_file` at every run.
fn serving_helper(server: &str, answer: &str, count_file: &Path) -> String {
    format!(
        "[ \"$1\" = get ] || exit 2\necho run >> '{}'\nserver=$(cat)\n[ \"$server\" = '{server}' ] || exit 4\nprintf '%s' '{answer}'\n",
        count_file.display()
    )
}

fn password_answer(server: &str) -> String {
    format!(r#"{{"ServerURL": "{server}", "Username": "{USER}", "Secret": "{PASSWORD}"}}"#)
}

fn runs(count_file: &Path) -> usize {
    std::fs::read_to_string(count_file).map_or(0, |text| text.lines().count())
}

/// The small corpus in an open upstream, and a mirror only `pusher` may use.
async fn upstream_and_locked_mirror() -> (TestRegistry, TestRegistry, Vec<String>) {
    let upstream = TestRegistry::start();
    let mirror = TestRegistry::builder().htpasswd(USER, PASSWORD).start();
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;
    (upstream, mirror, corpus::repos(&images))
}

async fn assert_mirrored(upstream: &TestRegistry, mirror: &TestRegistry, repos: &[String]) {
    let pairs: Vec<(&str, &str)> = repos.iter().map(|repo| (repo.as_str(), repo.as_str())).collect();
    assert_mirror_complete_with(
        &RegistryClient::new(),
        &upstream.url(),
        &mirror.client(),
        &mirror.url(),
        &pairs,
    )
    .await;
}

fn write_config(dir: &Path, upstream: &str, mirror: &str, mirror_keys: &str, sync_keys: &str) -> PathBuf {
    let path = dir.join("ocisync.yaml");
    std::fs::write(
        &path,
        format!(
            "version: 1\nregistries:\n  upstream:\n    urls: [\"{upstream}\"]\n  mirror:\n    urls: [\"{mirror}\"]\n{mirror_keys}syncs:\n  - from: upstream\n    to: mirror\n{sync_keys}"
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn helper_named_in_the_config_or_a_docker_config_serves_the_password() {
    let (upstream, mirror, repos) = upstream_and_locked_mirror().await;
    let helpers = HelperDir::new();
    let count = helpers.file("runs");
    helpers.helper(
        "testhelper",
        &serving_helper(&mirror.host(), &password_answer(&mirror.host()), &count),
    );
    let config = write_config(
        helpers.dir.path(),
        &upstream.url(),
        &mirror.url(),
        "    credential_helper: testhelper\n",
        "",
    );
    let run = helpers.run(&["once", "--config", config.to_str().unwrap()]);
    run.expect_code(0);
    assert_eq!(runs(&count), 1, "asked once for the one pass");
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
    assert_mirrored(&upstream, &mirror, &repos).await;

    // The same helper through a Docker config.json: credHelpers for the host.
    std::fs::write(
        helpers.file("config.json"),
        format!(r#"{{"credHelpers": {{"{}": "testhelper"}}}}"#, mirror.host()),
    )
    .unwrap();
    let config = write_config(
        helpers.dir.path(),
        &upstream.url(),
        &mirror.url(),
        "    docker_config: config.json\n",
        "",
    );
    let shown = helpers.run(&["config", "--config", config.to_str().unwrap()]);
    shown.expect_code(0);
    assert!(
        shown.stdout.contains("credential helper docker-credential-testhelper"),
        "{}",
        shown.stdout
    );
    assert_eq!(runs(&count), 1, "showing the config runs no helper");
    helpers
        .run(&["once", "--config", config.to_str().unwrap()])
        .expect_code(0);
    assert_eq!(runs(&count), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_helper_fails_its_sync_with_its_exit_code_and_nothing_it_printed() {
    let (upstream, mirror, repos) = upstream_and_locked_mirror().await;
    let open_mirror = TestRegistry::start();
    let helpers = HelperDir::new();
    let leaked = "Secret-looking-7d1f-do-not-print";
    helpers.helper(
        "broken",
        &format!("echo '{{\"Secret\": \"{leaked}\"}}'\necho 'error: {leaked}' >&2\nexit 3\n"),
    );
    let config = helpers.file("ocisync.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\nregistries:\n  upstream:\n    urls: [\"{}\"]\n  locked:\n    urls: [\"{}\"]\n    credential_helper: broken\n  open:\n    urls: [\"{}\"]\nsyncs:\n  - from: upstream\n    to: locked\n  - from: upstream\n    to: open\n",
            upstream.url(),
            mirror.url(),
            open_mirror.url()
        ),
    )
    .unwrap();
    let report = helpers.file("report.json");
    let run = ocisync_with_env(
        &[
            "once",
            "--config",
            config.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
        &[("PATH", &helpers.path), ("OCISYNC_LOG", "trace")],
    );
    run.expect_code(1);
    let report_text = std::fs::read_to_string(&report).unwrap();
    for printed in [&run.stdout, &run.stderr, &report_text] {
        assert!(!printed.contains(leaked), "what the helper printed leaked:\n{printed}");
    }
    let report = read_json(&report);
    assert_eq!(
        report["syncs"][0]["error"],
        "registry locked: credential helper docker-credential-broken failed with exit code 3"
    );
    assert!(
        run.stdout.contains("docker-credential-broken failed with exit code 3"),
        "{}",
        run.stdout
    );
    assert_eq!(
        report["syncs"][1]["error"],
        serde_json::Value::Null,
        "the other sync ran"
    );
    assert_eq!(report["totals"]["tags_failed"], 0);
    let pairs: Vec<(&str, &str)> = repos.iter().map(|repo| (repo.as_str(), repo.as_str())).collect();
    ocisync_testkit::assert_mirror_complete(&upstream.url(), &open_mirror.url(), &pairs).await;
    assert!(
        mirror.client().catalog(&mirror.url()).await.is_empty(),
        "nothing written without credentials"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hanging_helper_is_killed_after_its_timeout() {
    let (upstream, mirror, _repos) = upstream_and_locked_mirror().await;
    let helpers = HelperDir::new();
    let pid_file = helpers.file("helper.pid");
    // `exec`: the helper process itself sleeps, so killing it leaves nothing behind.
    helpers.helper(
        "hangs",
        &format!("echo $$ > '{}'\nexec sleep 600\n", pid_file.display()),
    );
    let config = write_config(
        helpers.dir.path(),
        &upstream.url(),
        &mirror.url(),
        "    credential_helper: hangs\n    credential_helper_timeout: 1s\n",
        "",
    );
    let report = helpers.file("report.json");
    let run = helpers.run(&[
        "once",
        "--config",
        config.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    run.expect_code(1);
    assert_eq!(
        read_json(&report)["syncs"][0]["error"],
        "registry mirror: credential helper docker-credential-hangs did not answer within 1s; killed"
    );
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the helper (pid {pid}) was killed and reaped"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_helper_hanging_past_max_pass_duration_ends_with_its_pass() {
    let (upstream, mirror, _repos) = upstream_and_locked_mirror().await;
    let helpers = HelperDir::new();
    let pid_file = helpers.file("helper.pid");
    helpers.helper(
        "hangs",
        &format!("echo $$ > '{}'\nexec sleep 600\n", pid_file.display()),
    );
    // The helper may take an hour; the pass may not.
    let config = write_config(
        helpers.dir.path(),
        &upstream.url(),
        &mirror.url(),
        "    credential_helper: hangs\n    credential_helper_timeout: 1h\n",
        "    max_pass_duration: 1s\n",
    );
    let report = helpers.file("report.json");
    let started = std::time::Instant::now();
    let run = helpers.run(&[
        "once",
        "--config",
        config.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--grace-period",
        "1s",
    ]);
    run.expect_code(1);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "ended with its pass, not after the helper's hour"
    );
    let sync = &read_json(&report)["syncs"][0];
    assert_eq!(sync["stopped"], "deadline", "{sync}");
    assert!(
        sync["error"]
            .as_str()
            .unwrap()
            .contains("ran past max_pass_duration (1s) and did not end when its work was abandoned"),
        "{sync}"
    );
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the helper (pid {pid}) was killed with the pass"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn run_asks_the_helper_again_at_every_pass() {
    let (upstream, mirror, repos) = upstream_and_locked_mirror().await;
    let helpers = HelperDir::new();
    let count = helpers.file("runs");
    let helper = helpers.helper(
        "counted",
        &serving_helper(&mirror.host(), &password_answer(&mirror.host()), &count),
    );
    let config = write_config(
        helpers.dir.path(),
        &upstream.url(),
        &mirror.url(),
        "    credential_helper: counted\n",
        "    interval: 1s\n",
    );
    let mut daemon = Daemon::spawn_with_env(
        &["--config", config.to_str().unwrap(), "--grace-period", "10s"],
        &[("PATH", &helpers.path)],
    );
    daemon.wait_for_log("two passes", Duration::from_secs(60), |log| {
        log.iter().filter(|line| line.contains("pass finished")).count() >= 2
    });
    let passes = daemon.log.iter().filter(|line| line.contains("pass finished")).count();
    assert!(
        runs(&count) >= passes,
        "{} helper runs for {passes} passes",
        runs(&count)
    );
    assert_mirrored(&upstream, &mirror, &repos).await;

    // A helper gone from PATH since the start fails the passes that follow, clearly.
    std::fs::remove_file(helper).unwrap();
    daemon.wait_for_log("a pass without the helper", Duration::from_secs(60), |log| {
        log.iter().any(|line| {
            line.contains("credential helper failed") && line.contains("docker-credential-counted cannot be run")
        })
    });
    daemon.terminate(Duration::from_secs(20));
    assert!(!daemon.log.join("\n").contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread")]
async fn helper_identity_token_is_exchanged_at_the_token_service() {
    let identity_token = "identity-from-helper-55c0";
    let server = TokenServer::start(TokenServerOptions {
        users: vec![TokenUser::writer(USER, "unused-password-1e4b").with_identity_token(identity_token)],
        ..TokenServerOptions::default()
    });
    let upstream = TestRegistry::start();
    let mirror = TestRegistry::builder().token_auth(&server).start();
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;
    let helpers = HelperDir::new();
    let count = helpers.file("runs");
    let answer = format!(
        r#"{{"ServerURL": "{}", "Username": "<token>", "Secret": "{identity_token}"}}"#,
        mirror.host()
    );
    helpers.helper("identity", &serving_helper(&mirror.host(), &answer, &count));
    let config = write_config(
        helpers.dir.path(),
        &upstream.url(),
        &mirror.url(),
        "    credential_helper: identity\n",
        "",
    );
    let report = helpers.file("report.json");
    let run = helpers.run(&[
        "once",
        "--config",
        config.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    run.expect_code(0);
    assert!(!run.stderr.contains(identity_token) && !run.stdout.contains(identity_token));
    assert_eq!(read_json(&report)["totals"]["tags_copied"], images.len());
    let requests = server.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert!(request.refresh_grant, "an OAuth2 refresh-token grant: {request:?}");
        assert_eq!(request.user.as_deref(), Some(USER), "{request:?}");
    }
}
