//! Bad input gets one clear error line and the right exit code, never a panic.

use crate::support::{ocisync, write_config, Run};

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
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &format!("http://127.0.0.1:{port}"), "http://127.0.0.1:9");
    let run = ocisync(&["once", "--config", config.to_str().unwrap()]);
    run.expect_code(1);
    assert!(run.stdout.contains("FAILED sync: catalog:"), "summary:\n{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("127.0.0.1:{port}")),
        "names the registry:\n{}",
        run.stdout
    );
}
