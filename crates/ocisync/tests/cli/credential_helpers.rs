//! Docker credential helpers: small shell scripts named `docker-credential-NAME` in a
//! directory put on PATH, serving (or refusing) a registry's credentials.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ocisync_testkit::{
    assert_mirror_complete_with, corpus, small_corpus, RegistryClient, TestRegistry, TokenServer, TokenServerOptions,
    TokenUser,
};

use crate::support::{config_with_syncs, Mirror};

const USER: &str = "pusher";
const PASSWORD: &str = "helper-served-pw-3b9e";

/// Helper scripts in the world's directory, and a PATH that finds them first.
struct HelperDir {
    dir: PathBuf,
    path: String,
}

impl HelperDir {
    fn new(world: &Mirror) -> HelperDir {
        let dir = world.dir().to_owned();
        let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
        HelperDir { dir, path }
    }

    /// Writes `docker-credential-NAME` with `body` after the shebang; returns its path.
    fn helper(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Writes a helper `NAME` that never answers: it records its pid and sleeps for ten
    /// minutes. Returns the pid file, for [`assert_helper_gone`].
    fn hanging_helper(&self, name: &str) -> PathBuf {
        let pid_file = self.file(&format!("{name}.pid"));
        // `exec`: the helper process itself sleeps, so killing it leaves nothing behind.
        self.helper(name, &format!("echo $$ > '{}'\nexec sleep 600\n", pid_file.display()));
        pid_file
    }

    /// A file in the directory (where helpers count their runs).
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The environment that finds the helpers.
    fn env(&self) -> [(&str, &str); 1] {
        [("PATH", &self.path)]
    }
}

/// Asserts that the helper whose pid `pid_file` holds is no longer running (`how` says
/// what ended it).
fn assert_helper_gone(pid_file: &Path, how: &str) {
    let pid = std::fs::read_to_string(pid_file).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the helper (pid {}) was {how}",
        pid.trim()
    );
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
async fn upstream_and_locked_mirror() -> (Mirror, Vec<String>) {
    let world = Mirror::between(
        TestRegistry::start(),
        TestRegistry::builder().htpasswd(USER, PASSWORD).start(),
    );
    let images = small_corpus();
    corpus::seed(&world.upstream.url(), &images).await;
    (world, corpus::repos(&images))
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

/// The one-sync config with `mirror_keys` under the mirror's entry and `sync_keys` under the sync.
fn helper_config(mirror_keys: &str, sync_keys: &str) -> String {
    config_with_syncs(&format!("  - from: upstream\n    to: mirror\n{sync_keys}")).replace(
        "    urls: [\"{mirror}\"]\n",
        &format!("    urls: [\"{{mirror}}\"]\n{mirror_keys}"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn helper_named_in_the_config_or_a_docker_config_serves_the_password() {
    let (world, repos) = upstream_and_locked_mirror().await;
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let helpers = HelperDir::new(&world);
    let count = helpers.file("runs");
    helpers.helper(
        "testhelper",
        &serving_helper(&mirror.host(), &password_answer(&mirror.host()), &count),
    );
    world.write_config(&helper_config("    credential_helper: testhelper\n", ""));
    let run = world.run_with_env(&["once"], &helpers.env());
    run.expect_code(0);
    assert_eq!(runs(&count), 1, "asked once for the one pass");
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
    assert_mirrored(upstream, mirror, &repos).await;

    // The same helper through a Docker config.json: credHelpers for the host.
    std::fs::write(
        helpers.file("config.json"),
        format!(r#"{{"credHelpers": {{"{}": "testhelper"}}}}"#, mirror.host()),
    )
    .unwrap();
    world.write_config(&helper_config("    docker_config: config.json\n", ""));
    let shown = world.run_with_env(&["config"], &helpers.env());
    shown.expect_code(0);
    assert!(
        shown.stdout.contains("credential helper docker-credential-testhelper"),
        "{}",
        shown.stdout
    );
    assert_eq!(runs(&count), 1, "showing the config runs no helper");
    world.run_with_env(&["once"], &helpers.env()).expect_code(0);
    assert_eq!(runs(&count), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_helper_fails_its_sync_with_its_exit_code_and_nothing_it_printed() {
    let (world, repos) = upstream_and_locked_mirror().await;
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let open_mirror = TestRegistry::start();
    let helpers = HelperDir::new(&world);
    let leaked = "Secret-looking-7d1f-do-not-print";
    helpers.helper(
        "broken",
        &format!("echo '{{\"Secret\": \"{leaked}\"}}'\necho 'error: {leaked}' >&2\nexit 3\n"),
    );
    world.write_config_via(
        "version: 1\nregistries:\n  upstream:\n    urls: [\"{upstream}\"]\n  locked:\n    urls: [\"{mirror}\"]\n    credential_helper: broken\n  open:\n    urls: [\"{open}\"]\nsyncs:\n  - from: upstream\n    to: locked\n  - from: upstream\n    to: open\n",
        &[("{open}", &open_mirror.url())],
    );
    let run = world.once_with_env(&[], &[("PATH", &helpers.path), ("OCISYNC_LOG", "trace")]);
    run.expect_code(1);
    let report_text = std::fs::read_to_string(world.report_path()).unwrap();
    for printed in [&run.stdout, &run.stderr, &report_text] {
        assert!(!printed.contains(leaked), "what the helper printed leaked:\n{printed}");
    }
    let report = world.report();
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
    let (world, _repos) = upstream_and_locked_mirror().await;
    let helpers = HelperDir::new(&world);
    let pid_file = helpers.hanging_helper("hangs");
    world.write_config(&helper_config(
        "    credential_helper: hangs\n    credential_helper_timeout: 1s\n",
        "",
    ));
    let run = world.once_with_env(&[], &helpers.env());
    run.expect_code(1);
    assert_eq!(
        world.report()["syncs"][0]["error"],
        "registry mirror: credential helper docker-credential-hangs did not answer within 1s; killed"
    );
    assert_helper_gone(&pid_file, "killed and reaped");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_helper_hanging_past_max_pass_duration_ends_with_its_pass() {
    let (world, _repos) = upstream_and_locked_mirror().await;
    let helpers = HelperDir::new(&world);
    let pid_file = helpers.hanging_helper("hangs");
    // The helper may take an hour; the pass may not.
    world.write_config(&helper_config(
        "    credential_helper: hangs\n    credential_helper_timeout: 1h\n",
        "    max_pass_duration: 1s\n",
    ));
    let started = std::time::Instant::now();
    let run = world.once_with_env(&["--grace-period", "1s"], &helpers.env());
    run.expect_code(1);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "ended with its pass, not after the helper's hour"
    );
    let report = world.report();
    let sync = &report["syncs"][0];
    assert_eq!(sync["stopped"], "deadline", "{sync}");
    assert!(
        sync["error"]
            .as_str()
            .unwrap()
            .contains("ran past max_pass_duration (1s) and did not end when its work was abandoned"),
        "{sync}"
    );
    assert_helper_gone(&pid_file, "killed with the pass");
}

#[tokio::test(flavor = "multi_thread")]
async fn run_asks_the_helper_again_at_every_pass() {
    let (world, repos) = upstream_and_locked_mirror().await;
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let helpers = HelperDir::new(&world);
    let count = helpers.file("runs");
    let helper = helpers.helper(
        "counted",
        &serving_helper(&mirror.host(), &password_answer(&mirror.host()), &count),
    );
    world.write_config(&helper_config("    credential_helper: counted\n", "    interval: 1s\n"));
    let mut daemon = world.daemon_with_env(&["--grace-period", "10s"], &helpers.env());
    daemon.wait_for_log("two passes", Duration::from_secs(60), |log| {
        log.iter().filter(|line| line.contains("pass finished")).count() >= 2
    });
    let passes = daemon.log.iter().filter(|line| line.contains("pass finished")).count();
    assert!(
        runs(&count) >= passes,
        "{} helper runs for {passes} passes",
        runs(&count)
    );
    assert_mirrored(upstream, mirror, &repos).await;

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
    let world = Mirror::between(
        TestRegistry::start(),
        TestRegistry::builder().token_auth(&server).start(),
    );
    let mirror = &world.mirror;
    let images = small_corpus();
    corpus::seed(&world.upstream.url(), &images).await;
    let helpers = HelperDir::new(&world);
    let count = helpers.file("runs");
    let answer = format!(
        r#"{{"ServerURL": "{}", "Username": "<token>", "Secret": "{identity_token}"}}"#,
        mirror.host()
    );
    helpers.helper("identity", &serving_helper(&mirror.host(), &answer, &count));
    world.write_config(&helper_config("    credential_helper: identity\n", ""));
    let run = world.once_with_env(&[], &helpers.env());
    run.expect_code(0);
    assert!(!run.stderr.contains(identity_token) && !run.stdout.contains(identity_token));
    assert_eq!(world.report()["totals"]["tags_copied"], images.len());
    let requests = server.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert!(request.refresh_grant, "an OAuth2 refresh-token grant: {request:?}");
        assert_eq!(request.user.as_deref(), Some(USER), "{request:?}");
    }
}
