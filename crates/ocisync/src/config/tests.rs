//! Table tests of config parsing and validation.

use std::path::Path;

use super::test_config::MINIMAL;
use super::*;
use ocisync_engine::RuleSource;
use ocisync_registry::{ClientIdentity, Credentials, MinTransferRate, Secret};

fn load(text: &str) -> Result<Config, ConfigError> {
    let env = |name: &str| (name == "MIRROR_PASSWORD").then(|| "s3cret".to_owned());
    Config::from_yaml(text, Path::new("ocisync.yaml"), &env)
}

/// The error output for `text`, one line per problem after the heading.
fn errors(text: &str) -> String {
    load(text).expect_err("config should be rejected").to_string()
}

#[test]
fn minimal_config_loads_with_defaults() {
    let config = load(MINIMAL).unwrap();
    assert_eq!(config.syncs.len(), 1);
    assert_eq!(config.syncs[0].name, "upstream-to-mirror");
    let upstream = &config.registries["upstream"];
    assert_eq!(upstream.urls[0].as_str(), "http://127.0.0.1:5001/");
    assert!(upstream.client.tls_verify, "TLS verification is on unless turned off");
    assert!(upstream.client.credentials.is_none());
}

#[test]
fn credentials_come_from_env_and_never_print() {
    let text = MINIMAL.replace(
        "    urls: [\"http://127.0.0.1:5002\"]",
        "    urls: [\"http://127.0.0.1:5002\"]\n    username: bot\n    password_env: MIRROR_PASSWORD",
    );
    let config = load(&text).unwrap();
    let credentials = config.registries["mirror"].client.credentials.as_ref().unwrap();
    assert_eq!(credentials, &Credentials::password("bot", Secret::new("s3cret")));
    assert!(!format!("{config:?}").contains("s3cret"));
}

#[test]
fn each_problem_names_line_column_and_key() {
    // Whole texts: YAML syntax (position from the parser) and what a config cannot lack.
    let texts = [
        ("version: 1\nregistries: [\n", "ocisync.yaml:3:1: "),
        ("registries: {}\n", "version: missing"),
        ("version: 1\n", "no registries defined"),
    ];
    // `MINIMAL` with one text replaced: (replaced, replacement, expected problem).
    let mirror = "    urls: [\"http://127.0.0.1:5002\"]";
    let edits = [
        // Unknown keys are errors, with position.
        (
            "    to: mirror",
            "    to: mirror\n    tags: x",
            "ocisync.yaml:10:5: syncs[0]: unknown field `tags`",
        ),
        ("version: 1", "version: 1\nworkers: 3", "unknown field `workers`"),
        // Meaning: key path and position found afterwards.
        (
            "from: upstream",
            "from: upstrem",
            "ocisync.yaml:8:5: syncs[0].from: unknown registry \"upstrem\" (defined: mirror, upstream)",
        ),
        (
            "\"http://127.0.0.1:5001\"",
            "\"ftp://x\"",
            "ocisync.yaml:4:12: registries.upstream.urls[0]: invalid url \"ftp://x\": scheme must be http or https",
        ),
        (
            "\"http://127.0.0.1:5001\"",
            "\"http://u:p@x\"",
            "credentials do not belong in the url",
        ),
        (
            "[\"http://127.0.0.1:5001\"]",
            "[]",
            "registries.upstream.urls: needs at least one url",
        ),
        (
            "to: mirror",
            "to: upstream",
            "syncs[0].to: copies registry \"upstream\" onto itself",
        ),
        (
            "version: 1",
            "version: 2",
            "ocisync.yaml:1:1: version: unsupported version 2",
        ),
        (
            "    to: mirror\n",
            "    to: mirror\n  - from: upstream\n    to: mirror\n",
            "syncs[1].name: sync name \"upstream-to-mirror\" is used twice",
        ),
        (
            mirror,
            "    urls: [\"http://127.0.0.1:5002\"]\n    username: bot",
            "registries.mirror.username: needs password_env or password_file",
        ),
        (
            mirror,
            "    urls: [\"http://127.0.0.1:5002\"]\n    username: bot\n    password_env: UNSET_VARIABLE",
            "environment variable UNSET_VARIABLE is not set",
        ),
    ];
    let edited = edits.map(|(replaced, replacement, expected)| (MINIMAL.replace(replaced, replacement), expected));
    let texts = texts.map(|(text, expected)| (text.to_owned(), expected));
    for (text, expected) in texts.iter().chain(&edited) {
        let output = errors(text);
        assert!(
            output.contains(expected),
            "expected {expected:?} in:\n{output}\nfor config:\n{text}"
        );
    }
}

#[test]
fn content_rules_compile_or_name_the_bad_pattern() {
    let rules = "    content:\n      - prefix: \"library/**\"\n        tags:\n          include: ['v?\\d+']\n      - prefix: \"team/[\"\n        tags:\n          include: ['ok', 'v[']\n          exclude: ['(']\n          immutable: ['v\\d+', '+']\n";
    let output = errors(&format!("{MINIMAL}{rules}"));
    for expected in [
        "ocisync.yaml:14:9: syncs[0].content[1].prefix: invalid glob \"team/[\"",
        "syncs[0].content[1].tags.include[1]: invalid regex \"v[\"",
        "syncs[0].content[1].tags.exclude[0]: invalid regex \"(\"",
        "syncs[0].content[1].tags.immutable[1]: invalid regex \"+\"",
    ] {
        assert!(output.contains(expected), "expected {expected:?} in:\n{output}");
    }
    assert!(!output.contains("content[0]"), "the first rule is valid:\n{output}");
    let valid = format!("{MINIMAL}    content:\n      - prefix: \"library/**\"\n        destination: mirror/hub\n        strip_prefix: library/\n");
    let config = load(&valid).unwrap();
    assert_eq!(config.syncs[0].content.len(), 1);
    assert!(!config.syncs[0].content[0].tags().has_immutable());
    let immutable = format!(
        "{MINIMAL}    content:\n      - prefix: \"**\"\n        tags:\n          immutable: ['v\\d+\\.\\d+\\.\\d+']\n"
    );
    let tags = load(&immutable).unwrap().syncs[0].content[0].tags().clone();
    let signed = immutable.replace("        tags:\n", "        signed_only: true\n        tags:\n");
    assert!(
        errors(&signed).contains("syncs[0].content[0].tags.immutable: cannot be combined with signed_only or verify"),
        "{}",
        errors(&signed)
    );
    assert!(tags.is_immutable(&"v1.2.3".parse().unwrap()));
    assert!(!tags.is_immutable(&"v1.2.3-rc1".parse().unwrap()));
}

#[test]
fn reports_every_problem_at_once() {
    let text = MINIMAL
        .replace("from: upstream", "from: nowhere")
        .replace("to: mirror", "to: elsewhere")
        .replace("\"http://127.0.0.1:5001\"", "\"not a url\"");
    let output = errors(&text);
    assert!(
        output.starts_with("invalid config ocisync.yaml: 3 problems"),
        "{output}"
    );
    for expected in ["syncs[0].from", "syncs[0].to", "registries.upstream.urls[0]"] {
        assert!(output.contains(expected), "missing {expected} in {output}");
    }
}

#[test]
fn password_file_is_read_relative_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("password"), "from-file\n").unwrap();
    let text = MINIMAL.replace(
        "    urls: [\"http://127.0.0.1:5002\"]",
        "    urls: [\"http://127.0.0.1:5002\"]\n    username: bot\n    password_file: password",
    );
    let config = Config::from_yaml(&text, &dir.path().join("ocisync.yaml"), &|_| None).unwrap();
    assert_eq!(
        config.registries["mirror"].client.credentials,
        Some(Credentials::password("bot", Secret::new("from-file")))
    );
}

#[test]
fn a_password_file_that_is_a_device_or_too_large_is_refused_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("huge"), vec![b'x'; 1024 * 1024 + 1]).unwrap();
    for (file, problem) in [
        ("/dev/zero", "is a character device, not a regular file"),
        ("huge", "is larger than 1048576 bytes, the most read"),
    ] {
        let text = MINIMAL.replace(
            "    urls: [\"http://127.0.0.1:5002\"]",
            &format!("    urls: [\"http://127.0.0.1:5002\"]\n    username: bot\n    password_file: {file}"),
        );
        let error = Config::from_yaml(&text, &dir.path().join("ocisync.yaml"), &|_| None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("registries.mirror.password_file: cannot read"),
            "{error}"
        );
        assert!(error.contains(problem), "{error}");
    }
}

#[test]
fn a_huge_count_is_refused_not_a_panic() {
    // usize::MAX requests in flight once sized a semaphore, which panics beyond its max.
    let text = MINIMAL.replace(
        "    urls: [\"http://127.0.0.1:5002\"]",
        "    urls: [\"http://127.0.0.1:5002\"]\n    max_requests_in_flight: 18446744073709551615",
    );
    let error = load(&text).unwrap_err().to_string();
    assert!(
        error.contains("registries.mirror.max_requests_in_flight: must be at most 65536"),
        "{error}"
    );
}

#[test]
fn every_example_config_parses() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            // Secrets referenced by examples are supplied; files are checked for existence, so
            // examples use password_file only where a test can provide it.
            let result = Config::from_yaml(&text, &path, &|_| Some("example".to_owned()));
            match result {
                Ok(_) => {}
                Err(error) => {
                    // A password_file path that does not exist on this machine is the only
                    // acceptable problem: it names a Kubernetes Secret mount.
                    for problem in &error.problems {
                        assert!(problem.key.ends_with("password_file"), "{}: {problem}", path.display());
                    }
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "no examples found in {}", examples.display());
}

/// `MINIMAL` with extra lines under the sync (indented 4) and a `defaults:` block.
fn with_sync_lines(sync_lines: &str, defaults: &str) -> String {
    let base = MINIMAL.replace("version: 1\n", &format!("version: 1\n{defaults}"));
    format!("{base}{sync_lines}")
}

#[test]
fn filters_schedules_and_durations_are_checked_at_load() {
    // (sync lines, defaults block, expected "line:col: key: message" fragment)
    let cases: &[(&str, &str, &str)] = &[
        (
            "    content:\n      - prefix: \"**\"\n        tags:\n          semver: \">=1.2.3.4\"\n",
            "",
            "13:11: syncs[0].content[0].tags.semver: invalid semver range \">=1.2.3.4\"",
        ),
        (
            "    content:\n      - prefix: \"**\"\n        tags:\n          latest: 0\n",
            "",
            "13:11: syncs[0].content[0].tags.latest: must be at least 1",
        ),
        (
            "    content:\n      - prefix: \"**\"\n        platforms: [\"linux/amd64\", \"Linux\"]\n",
            "",
            "12:36: syncs[0].content[0].platforms[1]: invalid platform \"Linux\"",
        ),
        (
            "    schedule: \"0 2 * * 8\"\n",
            "",
            "10:5: syncs[0].schedule: invalid schedule \"0 2 * * 8\": day-of-week: 8 is out of range 0-7",
        ),
        (
            "    schedule: \"*/15 * * *\"\n",
            "",
            "syncs[0].schedule: invalid schedule \"*/15 * * *\": ",
        ),
        (
            "    schedule: \"@daily\"\n    timezone: Mars/Olympus\n",
            "",
            "11:5: syncs[0].timezone: ",
        ),
        (
            "    schedule: \"@daily\"\n    interval: 30m\n",
            "",
            "syncs[0].interval: set schedule or interval, not both",
        ),
        (
            "    interval: soon\n",
            "",
            "10:5: syncs[0].interval: invalid duration \"soon\"",
        ),
        ("    interval: 0s\n", "", "syncs[0].interval: must be at least 1s"),
        (
            "",
            "defaults:\n  retry:\n    max_delay: forever\n",
            "4:5: defaults.retry.max_delay: invalid duration \"forever\"",
        ),
        (
            "",
            "defaults:\n  concurrency:\n    blobs: 0\n",
            "defaults.concurrency.blobs: must be at least 1",
        ),
        (
            "",
            "defaults:\n  concurrency:\n    transfers: 0\n",
            "defaults.concurrency.transfers: must be at least 1",
        ),
        (
            "",
            "defaults:\n  max_requests_in_flight: 0\n",
            "defaults.max_requests_in_flight: must be at least 1",
        ),
        // Out of range: each kind of duration has its bounds (config/durations.rs).
        (
            "    interval: 99999999999d\n",
            "",
            "10:5: syncs[0].interval: 99999999999d is too long: at most 1year",
        ),
        (
            "    interval: 366d\n",
            "",
            "syncs[0].interval: 366d is too long: at most 1year",
        ),
        (
            "    max_pass_duration: 2y\n",
            "",
            "syncs[0].max_pass_duration: 2y is too long: at most 1year",
        ),
        (
            "",
            "defaults:\n  read_timeout: 99999999999d\n",
            "3:3: defaults.read_timeout: 99999999999d is too long: at most 1day",
        ),
        (
            "",
            "defaults:\n  connect_timeout: 0s\n",
            "defaults.connect_timeout: must be more than 0s",
        ),
        (
            "",
            "defaults:\n  request_timeout: 0s\n",
            "defaults.request_timeout: must be more than 0s",
        ),
        (
            "",
            "defaults:\n  min_transfer_rate: fast\n",
            "3:3: defaults.min_transfer_rate: invalid rate \"fast\": bytes per second, e.g. 8KiB/s",
        ),
        (
            "",
            "defaults:\n  cool_down: 25h\n",
            "defaults.cool_down: 25h is too long: at most 1day",
        ),
        (
            "",
            "defaults:\n  retry:\n    max_delay: 99999999999d\n",
            "defaults.retry.max_delay: 99999999999d is too long: at most 1day",
        ),
        (
            "",
            "defaults:\n  retry: {initial_delay: 2d, max_elapsed: 1000000h}\n",
            "defaults.retry.initial_delay: 2d is too long: at most 1day",
        ),
        (
            "",
            "defaults:\n  retry: {initial_delay: 2d, max_elapsed: 1000000h}\n",
            "defaults.retry.max_elapsed: 1000000h is too long: at most 1day",
        ),
        (
            "",
            "defaults:\n  max_pass_duration: 99999999999d\n",
            "defaults.max_pass_duration: 99999999999d is too long: at most 1year",
        ),
    ];
    for (sync_lines, defaults, expected) in cases {
        let text = with_sync_lines(sync_lines, defaults);
        let output = errors(&text);
        assert!(
            output.contains(expected),
            "expected {expected:?} in:\n{output}\n--- config\n{text}"
        );
    }
}

#[test]
fn durations_at_their_bounds_load() {
    let text = with_sync_lines(
        "    interval: 1y\n    max_pass_duration: 1y\n",
        "defaults:\n  read_timeout: 24h\n  connect_timeout: 1ms\n  cool_down: 0s\n  retry: {initial_delay: 0s, max_delay: 1d, max_elapsed: 1d}\n",
    )
    .replace(
        "    urls: [\"http://127.0.0.1:5002\"]",
        "    urls: [\"http://127.0.0.1:5002\"]\n    read_timeout: 1d",
    );
    let config = load(&text).unwrap();
    let day = Duration::from_secs(86_400);
    assert!(matches!(
        config.syncs[0].schedule,
        Some(Schedule::Interval(interval)) if interval == Duration::from_secs(31_557_600)
    ));
    assert_eq!(config.registries["upstream"].client.read_timeout, day);
    assert_eq!(config.registries["mirror"].client.read_timeout, day);
    assert_eq!(config.registries["upstream"].retry.max_delay, day);
    // A registry's own value is checked too.
    let over = text.replace("    read_timeout: 1d", "    read_timeout: 1d 1s");
    assert!(
        errors(&over).contains("registries.mirror.read_timeout: 1d 1s is too long: at most 1day"),
        "{}",
        errors(&over)
    );
}

#[test]
fn a_byte_order_mark_is_not_a_second_document() {
    let config = load(&format!("\u{feff}{MINIMAL}")).unwrap();
    assert_eq!(config.syncs[0].name, "upstream-to-mirror");
    // Positions still count from the first line.
    let wrong = format!("\u{feff}{}", MINIMAL.replace("from: upstream", "from: upstrem"));
    assert!(
        errors(&wrong).contains("ocisync.yaml:8:5: syncs[0].from: unknown registry"),
        "{}",
        errors(&wrong)
    );
}

#[test]
fn the_config_file_is_read_up_to_one_mebibyte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ocisync.yaml");
    // Comments make the file large without making it invalid.
    let padding = "# padding\n".repeat(120_000);
    std::fs::write(&path, format!("{MINIMAL}{padding}")).unwrap();
    let message = Config::load(&path).unwrap_err().to_string();
    assert!(
        message.contains(&format!(
            "invalid config {}: 1 problem\n  {}: the file is 1200",
            path.display(),
            path.display()
        )) && message.contains("bytes; a config is at most 1048576 bytes (1 MiB)"),
        "{message}"
    );
    // A FIFO claims no size: what arrives is counted.
    let fifo = dir.path().join("fifo.yaml");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let writer = {
        let fifo = fifo.clone();
        let text = format!("{MINIMAL}{padding}");
        // The reader stops early, so the writer may see a broken pipe.
        std::thread::spawn(move || drop(std::fs::write(fifo, text)))
    };
    let message = Config::load(&fifo).unwrap_err().to_string();
    writer.join().unwrap();
    assert!(
        message.contains("the file is more than 1048576 bytes; a config is at most 1048576 bytes (1 MiB)"),
        "{message}"
    );
    // Just under the limit loads.
    std::fs::write(&path, format!("{MINIMAL}{}", "# padding\n".repeat(100_000))).unwrap();
    assert!(Config::load(&path).is_ok());
}

#[test]
fn signed_only_without_verify_loads_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let key = ocisync_testkit::CosignKey::generate();
    std::fs::write(dir.path().join("cosign.pub"), key.public_key_pem()).unwrap();
    let rules = "    content:\n      - prefix: \"a/**\"\n        signed_only: true\n      - prefix: \"b/**\"\n        signed_only: true\n        verify: {cosign_public_keys: [cosign.pub]}\n";
    let config = Config::from_yaml(&format!("{MINIMAL}{rules}"), &dir.path().join("ocisync.yaml"), &|_| {
        None
    })
    .unwrap();
    let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 1, "only the rule without verify: {warnings:?}");
    for expected in [
        ":12:9: syncs[0].content[0].signed_only: without verify, any signature counts",
        "anyone who can push to the upstream can add one",
        ".att and .sbom referrers are copied unchecked",
    ] {
        assert!(warnings[0].contains(expected), "{expected:?} in {warnings:?}");
    }
    assert!(load(MINIMAL).unwrap().warnings.is_empty());
}

#[test]
fn defaults_are_inherited_and_overridden_per_registry() {
    let text = MINIMAL
        .replace(
            "version: 1\n",
            "version: 1\ndefaults:\n  retry: {max_attempts: 9, initial_delay: 1s}\n  read_timeout: 5s\n  request_timeout: 30s\n  min_transfer_rate: 1MiB/s\n  cool_down: 2m\n  concurrency: {repositories: 2, transfers: 3}\n  max_requests_in_flight: 3\n",
        )
        .replace(
            "    urls: [\"http://127.0.0.1:5002\"]",
            "    urls: [\"http://127.0.0.1:5002\"]\n    retry: {max_attempts: 2}\n    read_timeout: 1m\n    request_timeout: 10m\n    min_transfer_rate: 0\n    max_requests_in_flight: 32",
        );
    let config = load(&text).unwrap();
    let upstream = &config.registries["upstream"];
    let mirror = &config.registries["mirror"];
    assert_eq!(upstream.retry.max_attempts, 9);
    assert_eq!(upstream.retry.initial_delay, Duration::from_secs(1));
    assert_eq!(upstream.client.read_timeout, Duration::from_secs(5));
    assert_eq!(upstream.cool_down, Duration::from_secs(120));
    assert_eq!(mirror.retry.max_attempts, 2, "a registry overrides one field ...");
    assert_eq!(
        mirror.retry.initial_delay,
        Duration::from_secs(1),
        "... and inherits the others"
    );
    assert_eq!(mirror.client.read_timeout, Duration::from_secs(60));
    assert_eq!(upstream.client.request_timeout, Duration::from_secs(30));
    assert_eq!(
        upstream.client.min_transfer_rate,
        Some(MinTransferRate::per_second(1 << 20))
    );
    assert_eq!(mirror.client.request_timeout, Duration::from_secs(600));
    assert_eq!(mirror.client.min_transfer_rate, None, "0: no floor");
    assert_eq!(config.concurrency.repositories, 2);
    assert_eq!(config.concurrency.blobs, 4);
    assert_eq!(config.concurrency.transfers, 3);
    assert_eq!(upstream.max_requests_in_flight, 3);
    assert_eq!(mirror.max_requests_in_flight, 32);
    let plain = load(MINIMAL).unwrap();
    assert_eq!(plain.registries["upstream"].max_requests_in_flight, 64, "the default");
    assert_eq!(
        plain.registries["upstream"].client.request_timeout,
        Duration::from_secs(120),
        "the default"
    );
    assert_eq!(
        plain.registries["upstream"].client.min_transfer_rate,
        Some(MinTransferRate::per_second(8192)),
        "the default"
    );
    assert_eq!(plain.concurrency.transfers, 8, "the default");
    assert_eq!(plain.concurrency.repositories, 32, "the default");
}

#[test]
fn a_registry_is_urls_or_a_layout() {
    let layout = MINIMAL.replace("    urls: [\"http://127.0.0.1:5002\"]", "    layout: /srv/transfer");
    let config = load(&layout).unwrap();
    assert_eq!(
        config.registries["mirror"].layout.as_deref(),
        Some(Path::new("/srv/transfer"))
    );
    let both = MINIMAL.replace(
        "    urls: [\"http://127.0.0.1:5002\"]",
        "    urls: [\"http://127.0.0.1:5002\"]\n    layout: /srv/transfer",
    );
    assert!(errors(&both).contains("registries.mirror.layout: set urls or layout, not both"));
    let credentials_on_layout = MINIMAL.replace(
        "    urls: [\"http://127.0.0.1:5002\"]",
        "    layout: /srv/transfer\n    username: bot\n    password_env: MIRROR_PASSWORD",
    );
    assert!(
        errors(&credentials_on_layout).contains("registries.mirror.username: has no meaning for a layout directory")
    );
}

#[test]
fn docker_config_supplies_credentials() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"auths": {"127.0.0.1:5002": {"auth": "Ym90OnMzY3JldA=="}}}"#,
    )
    .unwrap();
    let text = MINIMAL.replace(
        "    urls: [\"http://127.0.0.1:5002\"]",
        "    urls: [\"http://127.0.0.1:5002\"]\n    docker_config: config.json",
    );
    let env = |_: &str| None;
    let config = Config::from_yaml(&text, &dir.path().join("ocisync.yaml"), &env).unwrap();
    let credentials = config.registries["mirror"].client.credentials.as_ref().unwrap();
    assert_eq!(credentials, &Credentials::password("bot", Secret::new("s3cret")));
    let other_host = text.replace("http://127.0.0.1:5002", "http://127.0.0.1:5003");
    let error = Config::from_yaml(&other_host, &dir.path().join("ocisync.yaml"), &env).unwrap_err();
    assert!(
        error.to_string().contains("has no credentials for 127.0.0.1:5003"),
        "{error}"
    );
}

#[test]
fn signature_policies_read_their_keys_when_the_config_loads() {
    let dir = tempfile::tempdir().unwrap();
    let key = ocisync_testkit::CosignKey::generate();
    std::fs::write(dir.path().join("cosign.pub"), key.public_key_pem()).unwrap();
    std::fs::write(
        dir.path().join("broken.pub"),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let file = dir.path().join("ocisync.yaml");
    let load_in_dir = |rules: &str| Config::from_yaml(&format!("{MINIMAL}{rules}"), &file, &|_| None);

    let valid = "    content:\n      - prefix: \"a/**\"\n        signed_only: true\n      - prefix: \"b/**\"\n        verify: {cosign_public_keys: [cosign.pub]}\n      - prefix: \"c/**\"\n";
    let config = load_in_dir(valid).unwrap();
    let policies: Vec<(bool, usize)> = config.syncs[0]
        .content
        .iter()
        .map(|rule| (rule.signatures().signed_only, rule.signatures().cosign_keys.len()))
        .collect();
    assert_eq!(
        policies,
        [(true, 0), (true, 1), (false, 0)],
        "verify implies signed_only"
    );

    let invalid = "    content:\n      - prefix: \"a/**\"\n        verify:\n          cosign_public_keys: [cosign.pub, broken.pub, missing.pub]\n      - prefix: \"b/**\"\n        verify: {cosign_public_keys: []}\n";
    let output = load_in_dir(invalid).unwrap_err().to_string();
    for expected in [
        "syncs[0].content[0].verify.cosign_public_keys[1]:",
        "broken.pub: not a PEM ECDSA P-256 public key",
        "syncs[0].content[0].verify.cosign_public_keys[2]: cannot read",
        "syncs[0].content[1].verify.cosign_public_keys: lists no key",
    ] {
        assert!(output.contains(expected), "expected {expected:?} in:\n{output}");
    }
    assert!(
        !output.contains("cosign_public_keys[0]"),
        "the first key is valid:\n{output}"
    );
}

#[test]
fn listen_and_max_pass_duration_come_from_defaults_and_syncs_may_override() {
    let text = MINIMAL
        .replace(
            "version: 1\n",
            "version: 1\ndefaults:\n  listen: \"127.0.0.1:9090\"\n  max_pass_duration: 2h\n",
        )
        .replace(
            "    to: mirror\n",
            "    to: mirror\n  - name: quick\n    from: upstream\n    to: mirror\n    max_pass_duration: 5m\n",
        );
    let config = load(&text).unwrap();
    assert_eq!(config.listen, Some("127.0.0.1:9090".parse().unwrap()));
    assert_eq!(config.syncs[0].max_pass_duration, Some(Duration::from_secs(7200)));
    assert_eq!(config.syncs[1].max_pass_duration, Some(Duration::from_secs(300)));
    assert_eq!(load(MINIMAL).unwrap().listen, None, "no listener unless asked for");
}

#[test]
fn bad_listen_address_and_zero_max_pass_duration_are_reported() {
    let text = MINIMAL.replace(
        "version: 1\n",
        "version: 1\ndefaults:\n  listen: \":9090\"\n  max_pass_duration: 0s\n",
    );
    let output = errors(&text);
    assert!(
        output.contains("defaults.listen") && output.contains("IP:PORT"),
        "{output}"
    );
    assert!(
        output.contains("defaults.max_pass_duration") && output.contains("more than 0s"),
        "{output}"
    );
}

#[test]
fn push_metrics_is_a_plain_http_url_without_credentials() {
    let with = |url: &str| {
        MINIMAL.replace(
            "version: 1\n",
            &format!("version: 1\ndefaults:\n  push_metrics: \"{url}\"\n"),
        )
    };
    let config = load(&with("http://pushgateway.monitoring:9091")).unwrap();
    assert_eq!(
        config.push_metrics.map(|url| url.to_string()),
        Some("http://pushgateway.monitoring:9091/".into())
    );
    assert_eq!(load(MINIMAL).unwrap().push_metrics, None, "no push unless asked for");
    let output = errors(&with("http://user:secret@pushgateway:9091"));
    assert!(
        output.contains("defaults.push_metrics") && output.contains("user or password") && !output.contains("secret"),
        "{output}"
    );
    let output = errors(&with("pushgateway:9091"));
    assert!(output.contains("defaults.push_metrics"), "{output}");
}

#[test]
fn client_cert_and_client_key_come_together_relative_to_the_config() {
    let with = |lines: &str| MINIMAL.replace("  mirror:\n", &format!("  mirror:\n{lines}"));
    let config = load(&with(
        "    client_cert: tls/client.crt\n    client_key: tls/client.key\n",
    ))
    .unwrap();
    assert_eq!(
        config.registries["mirror"].client.client_identity,
        Some(ClientIdentity {
            certificate: Path::new("tls/client.crt").to_owned(),
            key: Path::new("tls/client.key").to_owned(),
        }),
        "relative to the config file's directory (here the current one)"
    );
    assert_eq!(config.registries["upstream"].client.client_identity, None);
    let output = errors(&with("    client_cert: client.crt\n"));
    assert!(
        output.contains("registries.mirror.client_key") && output.contains("needs client_key"),
        "{output}"
    );
    let output = errors(&with("    client_key: client.key\n"));
    assert!(output.contains("registries.mirror.client_cert"), "{output}");
}

#[test]
fn a_rule_takes_exactly_one_of_prefix_repositories_and_images() {
    let two = format!("{MINIMAL}    content:\n      - prefix: \"a/*\"\n        repositories: [a/b]\n      - tags:\n          include: ['x']\n");
    let output = errors(&two);
    assert!(
        output
            .contains("syncs[0].content[0]: takes one of prefix, repositories or images, not prefix and repositories"),
        "{output}"
    );
    assert!(output.contains("syncs[0].content[1]: takes one of prefix"), "{output}");
    assert!(output.contains("none is set"), "{output}");
    let bad = format!(
        "{MINIMAL}    content:\n      - repositories: [ok/name, Bad]\n      - images: [\"app:1\", \"app\", \"x@sha256:nope\"]\n        tags:\n          latest: 3\n          immutable: ['\\d+']\n      - repositories: []\n"
    );
    let output = errors(&bad);
    for expected in [
        "syncs[0].content[0].repositories[1]: invalid repository name \"Bad\"",
        "syncs[0].content[1].images[1]: invalid reference \"app\": name a tag or a digest",
        "syncs[0].content[1].images[2]: invalid reference \"x@sha256:nope\"",
        "syncs[0].content[1].tags.latest: does not apply to `images`",
        "syncs[0].content[2].repositories: is empty",
    ] {
        assert!(output.contains(expected), "expected {expected:?} in:\n{output}");
    }
    assert!(
        !output.contains("images[0]") && !output.contains("tags.immutable"),
        "{output}"
    );
}

#[test]
fn docker_hub_names_get_library_and_images_files_are_read_at_load_and_per_pass() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("images.txt");
    std::fs::write(&list, "# pinned\nbusybox:1.36\n").unwrap();
    let text = MINIMAL.replace("\"http://127.0.0.1:5001\"", "\"https://docker.io\"")
        + "    content:\n      - repositories: [nginx, bitnami/redis]\n      - images: [\"alpine:3.20\"]\n        images_file: images.txt\n";
    let config = Config::from_yaml(&text, &dir.path().join("ocisync.yaml"), &|_| None).unwrap();
    let sync = &config.syncs[0];
    let RuleSource::Named(names) = sync.content[0].source() else {
        panic!("a repositories rule: {:?}", sync.content[0].source())
    };
    let names: Vec<&str> = names.iter().map(|name| name.as_str()).collect();
    assert_eq!(names, ["library/nginx", "bitnami/redis"]);
    let images = |rules: &[ContentRule]| -> Vec<String> {
        let RuleSource::Images(images) = rules[1].source() else {
            panic!("an images rule")
        };
        images
            .iter()
            .map(|image| format!("{}:{}", image.repository, image.reference))
            .collect()
    };
    assert_eq!(images(&sync.content), ["library/alpine:3.20", "library/busybox:1.36"]);
    // Read again for the next pass: a new line arrives; a broken file leaves the inline images.
    std::fs::write(&list, "busybox:1.36\nnginx:1.27\n").unwrap();
    let (rules, problems) = sync.rules_for_pass();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        images(&rules),
        ["library/alpine:3.20", "library/busybox:1.36", "library/nginx:1.27"]
    );
    std::fs::write(&list, "busybox:1.36\nnot valid\n").unwrap();
    let (rules, problems) = sync.rules_for_pass();
    assert_eq!(images(&rules), ["library/alpine:3.20"]);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].0, 1);
    assert!(
        problems[0].1.contains("images.txt:2: invalid reference \"not valid\""),
        "{problems:?}"
    );
    // At load, every bad line is a config problem naming the file and the line.
    std::fs::write(&list, "ok:1\nbad one\n\nAlso Bad:2\n").unwrap();
    let error = Config::from_yaml(&text, &dir.path().join("ocisync.yaml"), &|_| None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("syncs[0].content[1].images_file: "), "{error}");
    assert!(error.contains("images.txt:2: invalid reference \"bad one\""), "{error}");
    assert!(
        error.contains("images.txt:4: invalid reference \"Also Bad:2\""),
        "{error}"
    );
}

#[test]
fn a_registry_keeps_a_pull_quota_reserve() {
    let with = |lines: &str| {
        MINIMAL.replace(
            "    urls: [\"http://127.0.0.1:5001\"]",
            &format!("    urls: [\"http://127.0.0.1:5001\"]\n{lines}"),
        )
    };
    let config = load(&with("    rate_limit: {reserve: 10}")).unwrap();
    assert_eq!(config.registries["upstream"].client.rate_limit_reserve, Some(10));
    assert_eq!(
        config.registries["mirror"].client.rate_limit_reserve, None,
        "none unless set"
    );
    assert_eq!(
        load(&with("    rate_limit: {reserve: 0}")).unwrap().registries["upstream"]
            .client
            .rate_limit_reserve,
        Some(0),
        "0: spend the quota, but never collect a 429"
    );
    for (lines, expected) in [
        (
            "    rate_limit: {}",
            "registries.upstream.rate_limit: missing field `reserve`",
        ),
        (
            "    rate_limit: {reserve: -1}",
            "registries.upstream.rate_limit.reserve: invalid type: integer `-1`",
        ),
        ("    rate_limit: {reserve: 5, burst: 2}", "unknown field `burst`"),
    ] {
        let output = errors(&with(lines));
        assert!(output.contains(expected), "expected {expected:?} in:\n{output}");
    }
    let on_layout = MINIMAL.replace(
        "    urls: [\"http://127.0.0.1:5002\"]",
        "    layout: /srv/transfer\n    rate_limit: {reserve: 5}",
    );
    assert!(errors(&on_layout).contains("registries.mirror.rate_limit: has no meaning for a layout directory"));
}
