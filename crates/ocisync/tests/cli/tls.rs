//! TLS through the binary: verification on by default, `ca_file` for a private CA, a
//! wrong CA failing clearly and at once, `tls_verify: false` for one registry.

use std::time::{Duration, Instant};

use ocisync_testkit::{corpus, small_corpus, TestCa, TestRegistry};

use crate::support::{read_json, run_once};

#[tokio::test(flavor = "multi_thread")]
async fn a_private_ca_is_trusted_only_where_configured() {
    let upstream = TestRegistry::start();
    let mirror = TestRegistry::builder().tls().start();
    assert!(mirror.url().starts_with("https://"));
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;
    let dir = tempfile::tempdir().unwrap();
    let wrong_ca = TestCa::new("not the registry's CA").write_pem(&dir.path().join("wrong-ca.pem"));
    let config = dir.path().join("ocisync.yaml");
    let report = dir.path().join("report.json");
    let run_with = |tls_lines: &str| {
        std::fs::write(
            &config,
            format!(
                "version: 1\nregistries:\n  upstream:\n    urls: [\"{}\"]\n  mirror:\n    urls: [\"{}\"]\n{tls_lines}syncs:\n  - from: upstream\n    to: mirror\n",
                upstream.url(),
                mirror.url()
            ),
        )
        .unwrap();
        run_once(&config, &report)
    };

    // Default: verification on, the test CA unknown: every image fails, clearly, and
    // without a retry loop (a certificate is a setting, not a transient fault).
    let started = Instant::now();
    let run = run_with("");
    run.expect_code(1);
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    assert!(
        run.stdout.contains("TLS:") && run.stdout.to_lowercase().contains("certificate"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stderr.contains("retrying"),
        "certificate errors are not retried:\n{}",
        run.stderr
    );
    assert_eq!(read_json(&report)["totals"]["tags_copied"], 0);

    // Another CA: refused the same way.
    let run = run_with(&format!("    ca_file: {}\n", wrong_ca.display()));
    run.expect_code(1);
    assert!(run.stdout.contains("TLS:"), "{}", run.stdout);

    // The registry's CA: everything copied.
    let run = run_with(&format!("    ca_file: {}\n", mirror.ca_file().unwrap().display()));
    run.expect_code(0);
    assert_eq!(
        read_json(&report)["totals"]["tags_copied"].as_u64().unwrap() as usize,
        images.len()
    );

    // Verification off for this registry alone: works without any CA.
    run_with("    tls_verify: false\n").expect_code(0);
}
