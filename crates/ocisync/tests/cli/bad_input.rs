//! Bad input gets one clear error line and the right exit code, never a panic.

use std::os::unix::fs::FileTypeExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use ocisync_testkit::CountingProxy;

use crate::support::{config_with_syncs, ocisync, one_sync_config, read_json, Mirror, Run, Workdir};

fn assert_clear(run: &Run, expected: &[&str]) {
    for text in expected {
        assert!(
            run.stderr.contains(text),
            "expected {text:?} in stderr:\n{}",
            run.stderr
        );
    }
    assert!(!run.stderr.contains("backtrace"), "no backtraces:\n{}", run.stderr);
}

#[test]
fn missing_config_file() {
    let run = ocisync(&["once", "--config", "/nonexistent/ocisync.yaml"]);
    run.expect_code(2);
    assert_clear(&run, &["/nonexistent/ocisync.yaml", "cannot read the file"]);
    assert_eq!(
        run.stderr.lines().count(),
        2,
        "heading and one problem:\n{}",
        run.stderr
    );
}

fn run_config(text: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, text).unwrap();
    ocisync(&["once", "--config", path.to_str().unwrap()])
}

#[test]
fn yaml_syntax_error_gives_line_and_column() {
    let run = run_config("version: 1\nregistries:\n  upstream:\n    urls: [\"http://127.0.0.1:1\"\n");
    run.expect_code(2);
    assert_clear(&run, &["bad.yaml:5:1:"]);
}

#[test]
fn unknown_key_is_an_error() {
    let run = run_config(
        "version: 1\nregistries:\n  upstream:\n    urls: [\"http://127.0.0.1:1\"]\n    tls_verfy: false\n  mirror:\n    urls: [\"http://127.0.0.1:2\"]\nsyncs:\n  - from: upstream\n    to: mirror\n",
    );
    run.expect_code(2);
    assert_clear(&run, &["bad.yaml:5:5:", "unknown field `tls_verfy`"]);
}

#[test]
fn sync_naming_unknown_registry() {
    let run = run_config(
        "version: 1\nregistries:\n  upstream:\n    urls: [\"http://127.0.0.1:1\"]\nsyncs:\n  - from: upstream\n    to: mirorr\n",
    );
    run.expect_code(2);
    assert_clear(&run, &["bad.yaml:7:5: syncs[0].to: unknown registry \"mirorr\""]);
}

#[test]
fn unreachable_registry_fails_the_sync_with_exit_1() {
    // A port that was free a moment ago: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let work = Workdir::new();
    let refusing = format!("http://127.0.0.1:{port}");
    work.write_config_filled(
        &one_sync_config(),
        &[("{upstream}", &refusing), ("{mirror}", "http://127.0.0.1:9")],
    );
    let run = work.run(&["once"]);
    run.expect_code(1);
    assert!(run.stdout.contains("FAILED sync: catalog:"), "summary:\n{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("127.0.0.1:{port}")),
        "names the registry:\n{}",
        run.stdout
    );
}

#[test]
fn oversized_config_is_refused_before_it_is_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    std::fs::write(&path, "# padding\n".repeat(200_000)).unwrap();
    let run = ocisync(&["check", "--config", path.to_str().unwrap()]);
    run.expect_code(2);
    assert_clear(
        &run,
        &[
            &format!("{}: the file is 2000000 bytes", path.display()),
            "a config is at most 1048576 bytes (1 MiB)",
        ],
    );
}

#[test]
fn out_of_range_durations_are_config_errors() {
    let run = run_config(
        "version: 1\ndefaults:\n  read_timeout: 99999999999d\nregistries:\n  upstream:\n    urls: [\"http://127.0.0.1:1\"]\n  mirror:\n    urls: [\"http://127.0.0.1:2\"]\nsyncs:\n  - from: upstream\n    to: mirror\n    interval: 99999999999d\n",
    );
    run.expect_code(2);
    assert_clear(
        &run,
        &[
            "bad.yaml:3:3: defaults.read_timeout: 99999999999d is too long: at most 1day",
            "bad.yaml:12:5: syncs[0].interval: 99999999999d is too long: at most 1year",
        ],
    );
}

#[test]
fn a_config_saved_with_a_byte_order_mark_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bom.yaml");
    std::fs::write(
        &path,
        "\u{feff}version: 1\nregistries:\n  upstream:\n    urls: [\"http://127.0.0.1:1\"]\n  mirror:\n    urls: [\"http://127.0.0.1:2\"]\nsyncs:\n  - from: upstream\n    to: mirror\n",
    )
    .unwrap();
    let run = ocisync(&["config", "--config", path.to_str().unwrap()]);
    run.expect_code(0);
    assert!(run.stdout.contains("upstream-to-mirror"), "{}", run.stdout);
}

#[test]
fn config_shows_signature_policies_and_warns_about_signed_only_alone() {
    let dir = tempfile::tempdir().unwrap();
    let key = ocisync_testkit::CosignKey::generate();
    std::fs::write(dir.path().join("cosign.pub"), key.public_key_pem()).unwrap();
    let path = dir.path().join("signed.yaml");
    std::fs::write(
        &path,
        "version: 1\nregistries:\n  upstream:\n    urls: [\"http://127.0.0.1:1\"]\n  mirror:\n    urls: [\"http://127.0.0.1:2\"]\nsyncs:\n  - from: upstream\n    to: mirror\n    content:\n      - prefix: \"any/**\"\n        signed_only: true\n      - prefix: \"ours/**\"\n        verify: {cosign_public_keys: [cosign.pub]}\n      - prefix: \"open/**\"\n",
    )
    .unwrap();
    let run = ocisync(&["config", "--config", path.to_str().unwrap()]);
    run.expect_code(0);
    let printed: serde_yaml::Value = serde_yaml::from_str(&run.stdout).unwrap();
    let rules = &printed["syncs"][0]["content"];
    assert_eq!(rules[0]["signed_only"], true);
    assert!(rules[0]["verify"].is_null(), "{}", run.stdout);
    assert_eq!(rules[1]["signed_only"], true, "verify implies signed_only");
    let key_file = dir.path().join("cosign.pub");
    assert_eq!(
        rules[1]["verify"]["cosign_public_keys"][0].as_str(),
        Some(key_file.to_str().unwrap()),
        "the key file, not the key"
    );
    assert!(!run.stdout.contains("BEGIN PUBLIC KEY"), "{}", run.stdout);
    assert_eq!(rules[2]["signed_only"], false);
    // The warning names the file, line and key of the rule without verify, and only it.
    let warnings: Vec<&str> = run.stderr.lines().filter(|line| line.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    let expected = format!(
        "{}:12:9: syncs[0].content[0].signed_only: without verify, any signature counts",
        path.display()
    );
    assert!(warnings[0].contains(&expected), "{expected:?} in {}", run.stderr);
}

/// `ocisync once` in `world` with its report at `report`.
fn once_reporting_to(world: &Mirror, report: &Path) -> Run {
    world.run(&["once", "--report", report.to_str().unwrap()])
}

/// Temporary files left in the config's directory.
fn leftovers(world: &Mirror) -> Vec<String> {
    std::fs::read_dir(world.dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect()
}

/// A character device of our own (`mknod`, as root): a test that broke it would not
/// break the machine's `/dev`. Without the privilege, the machine's own node.
fn character_device(dir: &Path, name: &str, minor: &str) -> PathBuf {
    let path = dir.join(name);
    let made = Command::new("mknod").arg(&path).args(["c", "1", minor]).status();
    if made.is_ok_and(|status| status.success()) {
        path
    } else {
        Path::new("/dev").join(name)
    }
}

#[test]
fn report_to_a_character_device_leaves_the_device() {
    let world = Mirror::start();
    let null = character_device(world.dir(), "null", "3");
    once_reporting_to(&world, &null).expect_code(0);
    let kind = std::fs::symlink_metadata(&null).unwrap().file_type();
    assert!(kind.is_char_device(), "{} is still a character device", null.display());
    assert!(leftovers(&world).is_empty(), "{:?}", leftovers(&world));
}

#[test]
fn report_to_a_full_device_fails_with_exit_2() {
    let world = Mirror::start();
    let full = character_device(world.dir(), "full", "7");
    let run = once_reporting_to(&world, &full);
    run.expect_code(2);
    assert_clear(
        &run,
        &[&format!(
            "error: cannot write report {}: No space left on device",
            full.display()
        )],
    );
    assert!(std::fs::symlink_metadata(&full).unwrap().file_type().is_char_device());
    assert!(leftovers(&world).is_empty(), "{:?}", leftovers(&world));
}

#[test]
fn report_to_a_fifo_reaches_its_reader() {
    let world = Mirror::start();
    let fifo = world.dir().join("report.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // A second name for the FIFO, to release the reader whatever the run did.
    let keeper = world.dir().join("keeper.fifo");
    std::fs::hard_link(&fifo, &keeper).unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let run = once_reporting_to(&world, &fifo);
    // Opening read-write never waits (Linux), and closing it ends the reader's file if
    // the run never opened the FIFO.
    drop(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&keeper)
            .unwrap(),
    );
    let received = reader.join().unwrap();
    run.expect_code(0);
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    let report: serde_json::Value = serde_json::from_slice(&received).expect("the reader got JSON");
    assert_eq!(report["syncs"][0]["name"], "upstream-to-mirror", "{report}");
    assert!(leftovers(&world).is_empty(), "{:?}", leftovers(&world));
}

#[test]
fn report_through_a_symlink_keeps_the_link() {
    let world = Mirror::start();
    std::fs::create_dir(world.dir().join("reports")).unwrap();
    let link = world.dir().join("latest.json");
    std::os::unix::fs::symlink("reports/pass.json", &link).unwrap();
    once_reporting_to(&world, &link).expect_code(0);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    let report = read_json(&world.dir().join("reports/pass.json"));
    assert_eq!(report["syncs"][0]["name"], "upstream-to-mirror", "{report}");
    assert!(leftovers(&world).is_empty(), "{:?}", leftovers(&world));
}

#[test]
fn report_in_a_missing_directory_fails_before_any_request() {
    let world = Mirror::start();
    let source = CountingProxy::start(&world.upstream.url());
    let destination = CountingProxy::start(&world.mirror.url());
    world.write_config_via(
        &one_sync_config(),
        &[("{upstream}", &source.url()), ("{mirror}", &destination.url())],
    );
    let dir = world.dir();
    let report = dir.join("missing/report.json");
    let run = once_reporting_to(&world, &report);
    run.expect_code(2);
    assert_clear(
        &run,
        &[&format!(
            "error: cannot write report {}: directory {} does not exist",
            report.display(),
            dir.join("missing").display()
        )],
    );
    assert!(source.requests().is_empty(), "{:?}", source.requests());
    assert!(destination.requests().is_empty(), "{:?}", destination.requests());
    for args in [
        &["check", "--config", world.config_path().to_str().unwrap()][..],
        &[
            "copy",
            &format!("{}/a/b:1", source.host()),
            &format!("{}/a/b", destination.host()),
            "--src-plain-http",
            "--dest-plain-http",
        ],
    ] {
        let run = ocisync(&[args, &["--report", report.to_str().unwrap()]].concat());
        run.expect_code(2);
        assert_clear(&run, &["does not exist"]);
    }
    assert!(source.requests().is_empty(), "{:?}", source.requests());
    assert_eq!(dir.read_dir().unwrap().count(), 1, "only the config");
}

#[test]
fn run_with_a_report_in_a_missing_directory_does_not_start() {
    let world = Mirror::start();
    let source = CountingProxy::start(&world.upstream.url());
    world.write_config_via(
        &config_with_syncs("  - from: upstream\n    to: mirror\n    interval: 1h\n"),
        &[("{upstream}", &source.url()), ("{mirror}", "http://127.0.0.1:9")],
    );
    let report = world.dir().join("missing/report.json");
    let mut daemon = world.daemon(&["--report", report.to_str().unwrap()]);
    daemon.wait_for_log("the report error", std::time::Duration::from_secs(60), |log| {
        // main's error line, not a pass's warning: no pass starts.
        log.iter().any(|line| line.starts_with("error: cannot write report"))
    });
    assert_eq!(daemon.wait(), Some(2), "{}", daemon.log.join("\n"));
    assert!(source.requests().is_empty(), "{:?}", source.requests());
}
