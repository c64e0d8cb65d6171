//! Credentials never show: not in logs at any level, not in reports, not in errors.

use base64::Engine as _;
use ocisync_testkit::{corpus, small_corpus, CountingProxy, RegistryOptions, TestRegistry};

use crate::support::{one_sync_config, Mirror};

#[tokio::test(flavor = "multi_thread")]
async fn trace_logs_reports_and_errors_never_contain_the_password() {
    let password = "Pw-d0-not-print-7f3a";
    let world = Mirror::between(
        TestRegistry::start(),
        TestRegistry::start_with(RegistryOptions {
            htpasswd: Some(("sync".to_owned(), password.to_owned())),
        }),
    );
    let images = small_corpus();
    corpus::seed(&world.upstream.url(), &images).await;
    // Requests to the mirror are counted, to show a wrong password causes no retry storm.
    let mirror_proxy = CountingProxy::start(&world.mirror.url());
    let write = |password_env: &str| {
        let config = one_sync_config().replace(
            "    urls: [\"{mirror}\"]\n",
            &format!("    urls: [\"{{mirror}}\"]\n    username: sync\n    password_env: {password_env}\n"),
        );
        world.write_config_via(&config, &[("{mirror}", &mirror_proxy.url())]);
    };
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("sync:{password}"));
    let report = world.report_path();
    let run = |variable_value: &str| {
        let output = world.once_with_env(&[], &[("OCISYNC_LOG", "trace"), ("MIRROR_PASSWORD", variable_value)]);
        (Some(output.code), format!("{}{}", output.stdout, output.stderr))
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
    assert_eq!(world.report()["totals"]["tags_failed"], 0);

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
    let world = Mirror::between(
        TestRegistry::start(),
        TestRegistry::start_with(RegistryOptions {
            htpasswd: Some(("pusher".to_owned(), password.to_owned())),
        }),
    );
    let mirror = &world.mirror;
    let images = small_corpus();
    corpus::seed(&world.upstream.url(), &images).await;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("pusher:{password}"));
    std::fs::write(
        world.dir().join("config.json"),
        format!(r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#, mirror.host()),
    )
    .unwrap();
    world.write_config(&one_sync_config().replace(
        "    urls: [\"{mirror}\"]\n",
        "    urls: [\"{mirror}\"]\n    docker_config: config.json\n",
    ));
    let run = world.run(&["once"]);
    run.expect_code(0);
    assert!(!run.stdout.contains(password) && !run.stderr.contains(password));
    let client = mirror.client();
    let mut pushed = 0;
    for repo in corpus::repos(&images) {
        pushed += client.tags(&mirror.url(), &repo).await.len();
    }
    assert_eq!(pushed, images.len());
}
