//! Credentials never show: not in logs at any level, not in reports, not in errors.

use base64::Engine as _;
use ocisync_testkit::{corpus, small_corpus, CountingProxy, RegistryOptions, TestRegistry};

use crate::support::read_json;

#[tokio::test(flavor = "multi_thread")]
async fn trace_logs_reports_and_errors_never_contain_the_password() {
    let password = "Pw-d0-not-print-7f3a";
    let upstream = TestRegistry::start();
    let mirror = TestRegistry::start_with(RegistryOptions {
        htpasswd: Some(("sync".to_owned(), password.to_owned())),
    });
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;
    // Requests to the mirror are counted, to show a wrong password causes no retry storm.
    let mirror_proxy = CountingProxy::start(&mirror.url());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ocisync.yaml");
    let write = |password_env: &str| {
        std::fs::write(
            &config,
            format!(
                "version: 1\nregistries:\n  upstream:\n    urls: [\"{}\"]\n  mirror:\n    urls: [\"{}\"]\n    username: sync\n    password_env: {password_env}\nsyncs:\n  - from: upstream\n    to: mirror\n",
                upstream.url(),
                mirror_proxy.url()
            ),
        )
        .unwrap();
    };
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("sync:{password}"));
    let report = dir.path().join("report.json");
    let run = |variable_value: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ocisync"))
            .args([
                "once",
                "--config",
                config.to_str().unwrap(),
                "--report",
                report.to_str().unwrap(),
            ])
            .env("OCISYNC_LOG", "trace")
            .env("MIRROR_PASSWORD", variable_value)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code(), all)
    };

    // Right password: a full pass logged at trace level.
    write("MIRROR_PASSWORD");
    let (code, output) = run(password);
    assert_eq!(code, Some(0), "{output}");
    assert!(output.lines().count() > 50, "trace logging is on");
    for secret in [password, basic.as_str()] {
        assert!(!output.contains(secret), "secret in the output");
        let report_text = std::fs::read_to_string(&report).unwrap();
        assert!(!report_text.contains(secret), "secret in the report");
    }
    assert_eq!(read_json(&report)["totals"]["tags_failed"], 0);

    // Wrong password: the errors say unauthorized, never what was sent, and a 401 is
    // not retried: at most one challenge and one refused answer per image.
    let wrong = "Wrong-pw-also-secret-91c2";
    mirror_proxy.reset();
    let (code, output) = run(wrong);
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("unauthorized"), "{output}");
    let refused = mirror_proxy.requests().iter().filter(|r| r.status == 401).count();
    assert!(
        refused <= 2 * images.len(),
        "{refused} refused requests for {} images",
        images.len()
    );
    assert!(!output.contains("retrying"), "a 401 is not retried:\n{output}");
    let wrong_basic = base64::engine::general_purpose::STANDARD.encode(format!("sync:{wrong}"));
    assert!(!output.contains(wrong) && !output.contains(&wrong_basic));
    let report_text = std::fs::read_to_string(&report).unwrap();
    assert!(!report_text.contains(wrong) && !report_text.contains(&wrong_basic));
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_from_a_docker_config_json_authenticate() {
    let password = "from-docker-config-5e1d";
    let upstream = TestRegistry::start();
    let mirror = TestRegistry::start_with(RegistryOptions {
        htpasswd: Some(("pusher".to_owned(), password.to_owned())),
    });
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;
    let dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("pusher:{password}"));
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#, mirror.host()),
    )
    .unwrap();
    let config = dir.path().join("ocisync.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\nregistries:\n  upstream:\n    urls: [\"{}\"]\n  mirror:\n    urls: [\"{}\"]\n    docker_config: config.json\nsyncs:\n  - from: upstream\n    to: mirror\n",
            upstream.url(),
            mirror.url()
        ),
    )
    .unwrap();
    let run = crate::support::ocisync(&["once", "--config", config.to_str().unwrap()]);
    run.expect_code(0);
    assert!(!run.stdout.contains(password) && !run.stderr.contains(password));
    let client = mirror.client();
    let mut pushed = 0;
    for repo in corpus::repos(&images) {
        pushed += client.tags(&mirror.url(), &repo).await.len();
    }
    assert_eq!(pushed, images.len());
}
