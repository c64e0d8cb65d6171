//! TLS through the binary: verification on by default, `ca_file` for a private CA, a
//! wrong CA failing clearly and at once, `tls_verify: false` for one registry; the OS
//! trust store (`SSL_CERT_FILE`, `SSL_CERT_DIR`); client certificates (mutual TLS).

use std::time::{Duration, Instant};

use ocisync_testkit::{assert_mirror_complete, corpus, small_corpus, TestCa, TestRegistry};

use crate::support::{config_with_registry_lines, same_names, Mirror, Workdir};

/// The one-sync config with `mirror_lines` under the mirror's entry.
fn config_with_mirror_lines(mirror_lines: &str) -> String {
    config_with_registry_lines("", mirror_lines)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_ca_is_trusted_only_where_configured() {
    let world = Mirror::between(TestRegistry::start(), TestRegistry::builder().tls().start());
    let mirror = &world.mirror;
    assert!(mirror.url().starts_with("https://"));
    let images = small_corpus();
    corpus::seed(&world.upstream.url(), &images).await;
    let wrong_ca = TestCa::new("not the registry's CA").write_pem(&world.dir().join("wrong-ca.pem"));
    let run_with = |tls_lines: &str| {
        world.write_config(&config_with_mirror_lines(tls_lines));
        world.once()
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
    assert_eq!(world.report()["totals"]["tags_copied"], 0);

    // Another CA: refused the same way.
    let run = run_with(&format!("    ca_file: {}\n", wrong_ca.display()));
    run.expect_code(1);
    assert!(run.stdout.contains("TLS:"), "{}", run.stdout);

    // The registry's CA: everything copied.
    let run = run_with(&format!("    ca_file: {}\n", mirror.ca_file().unwrap().display()));
    run.expect_code(0);
    assert_eq!(
        world.report()["totals"]["tags_copied"].as_u64().unwrap() as usize,
        images.len()
    );

    // Verification off for this registry alone: works without any CA.
    run_with("    tls_verify: false\n").expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ca_in_ssl_cert_file_or_ssl_cert_dir_is_trusted_without_ca_file() {
    let world = Mirror::between(TestRegistry::start(), TestRegistry::builder().tls().start());
    let images = small_corpus();
    corpus::seed(&world.upstream.url(), &images).await;
    let ca_file = world.mirror.ca_file().unwrap().to_str().unwrap();

    // The CA installed the way OpenSSL-based tools read it: a bundle file ...
    world.once_with_env(&[], &[("SSL_CERT_FILE", ca_file)]).expect_code(0);
    assert_eq!(
        world.report()["totals"]["tags_copied"].as_u64().unwrap() as usize,
        images.len()
    );

    // ... or a directory of certificates. Everything is there now: each image is found
    // up to date, which takes reading the mirror over TLS.
    let certificates = world.dir().join("certs");
    std::fs::create_dir(&certificates).unwrap();
    std::fs::copy(ca_file, certificates.join("private-ca.pem")).unwrap();
    let run = world.once_with_env(&[], &[("SSL_CERT_DIR", certificates.to_str().unwrap())]);
    run.expect_code(0);
    assert_eq!(
        world.report()["totals"]["tags_up_to_date"].as_u64().unwrap() as usize,
        images.len()
    );

    // Neither: the private CA is unknown, as before.
    let run = world.once_with_env(&[], &[("SSL_CERT_FILE", "/nonexistent/ca.pem")]);
    run.expect_code(1);
    assert!(run.stdout.contains("TLS:"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_behind_mutual_tls_takes_the_configured_client_certificate() {
    // The mirror is the registry guarded by mutual TLS.
    let world = Mirror::between(
        TestRegistry::start(),
        TestRegistry::builder().client_certificates().start(),
    );
    let (upstream, guarded) = (&world.upstream, &world.mirror);
    let last = TestRegistry::start();
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;
    let ca_line = format!("    ca_file: {}\n", guarded.ca_file().unwrap().display());

    // Without a client certificate the registry ends the handshake: a TLS failure.
    world.write_config(&config_with_mirror_lines(&ca_line));
    let run = world.once();
    run.expect_code(1);
    assert!(run.stdout.contains("TLS:"), "{}", run.stdout);
    assert_eq!(world.report()["totals"]["tags_copied"], 0);

    // Another CA's client certificate is refused the same way.
    let stranger = TestCa::new("not the registry's client CA").client_certificate("stranger");
    let stranger_dir = world.dir().join("stranger");
    std::fs::create_dir(&stranger_dir).unwrap();
    let (stranger_cert, stranger_key) = stranger.write_pem(&stranger_dir);
    world.write_config(&config_with_mirror_lines(&format!(
        "{ca_line}    client_cert: {}\n    client_key: {}\n",
        stranger_cert.display(),
        stranger_key.display()
    )));
    world.once().expect_code(1);

    // With the registry's: written ...
    let (certificate, key) = guarded.client_certificate_files().unwrap();
    let identity = format!(
        "{ca_line}    client_cert: {}\n    client_key: {}\n",
        certificate.display(),
        key.display()
    );
    world.write_config(&config_with_mirror_lines(&identity));
    world.once().expect_code(0);
    assert_eq!(
        world.report()["totals"]["tags_copied"].as_u64().unwrap() as usize,
        images.len()
    );
    // ... and read back: a sync out of the guarded registry, with its identity as the
    // source, leaves a plain registry with every image of the upstream.
    world.write_config_via(
        &format!(
            "version: 1\nregistries:\n  guarded:\n    urls: [\"{{mirror}}\"]\n{identity}  last:\n    urls: [\"{{last}}\"]\nsyncs:\n  - from: guarded\n    to: last\n"
        ),
        &[("{last}", &last.url())],
    );
    world.once().expect_code(0);
    let repos = corpus::repos(&images);
    assert_mirror_complete(&upstream.url(), &last.url(), &same_names(&repos)).await;
}

/// A config from `http://127.0.0.1:9` to `https://127.0.0.1:9` (nothing listens there),
/// with `mirror_lines` under the mirror.
fn write_config_to_nowhere(work: &Workdir, mirror_lines: &str) {
    work.write_config_filled(
        &config_with_mirror_lines(mirror_lines),
        &[
            ("{upstream}", "http://127.0.0.1:9"),
            ("{mirror}", "https://127.0.0.1:9"),
        ],
    );
}

#[test]
fn an_unusable_client_certificate_stops_the_run_before_any_work() {
    let work = Workdir::new();
    let certificate = TestCa::new("some CA").client_certificate("someone");
    let (certificate_file, _) = certificate.write_pem(work.dir());
    let lines = format!(
        "    client_cert: {}\n    client_key: {}\n",
        certificate_file.display(),
        work.dir().join("missing.key").display()
    );
    write_config_to_nowhere(&work, &lines);
    let run = work.once();
    run.expect_code(2);
    assert!(
        run.stderr.contains("cannot read client key") && run.stderr.contains("missing.key"),
        "{}",
        run.stderr
    );
    // The certificate file named as the key: it holds no private key, and says so
    // without printing what it holds.
    let lines = format!(
        "    client_cert: {0}\n    client_key: {0}\n",
        certificate_file.display()
    );
    write_config_to_nowhere(&work, &lines);
    let run = work.once();
    run.expect_code(2);
    assert!(run.stderr.contains("holds no PEM private key"), "{}", run.stderr);
    assert!(!run.stderr.contains("BEGIN CERTIFICATE"), "{}", run.stderr);
}
