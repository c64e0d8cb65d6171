//! The run modes: `check` (dry run), `run` (daemon), `copy` and `config`.

use std::time::Duration;

use ocisync_testkit::{
    assert_closure, assert_mirror_complete, corpus, image, layer, manifest, push_image, small_corpus, CountingProxy,
    Fault, Faults, Format, ProxyOptions, RequestMatch, TestRegistry,
};

use crate::support::{config_with_syncs, ocisync, one_sync_config, Mirror, Workdir};

#[tokio::test(flavor = "multi_thread")]
async fn check_plans_without_writing_anything() {
    let world = Mirror::start();
    let mirror_proxy = CountingProxy::start(&world.mirror.url());
    let images = small_corpus();
    corpus::seed(&world.upstream.url(), &images).await;
    world.write_config_via(&one_sync_config(), &[("{mirror}", &mirror_proxy.url())]);
    let check = |expect_writes_none: bool| {
        mirror_proxy.reset();
        let run = world.check();
        run.expect_code(0);
        if expect_writes_none {
            assert!(
                mirror_proxy.writes().is_empty(),
                "check wrote: {:?}",
                mirror_proxy.writes()
            );
            assert!(
                !mirror_proxy.requests().is_empty(),
                "check compared with the destination"
            );
        }
        run
    };

    let run = check(true);
    let plan = world.report();
    assert_eq!(plan["dry_run"], true);
    assert_eq!(
        plan["totals"]["tags_would_copy"].as_u64().unwrap() as usize,
        images.len()
    );
    assert_eq!(plan["totals"]["tags_copied"], 0);
    assert!(
        plan["totals"]["bytes"].as_u64().unwrap() > 0,
        "bytes to transfer are estimated"
    );
    assert!(
        ocisync_testkit::catalog(&world.mirror.url()).await.is_empty(),
        "nothing was copied"
    );
    assert!(
        run.stdout.contains("library/alpine -> library/alpine"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("copy        3.19"), "{}", run.stdout);

    // After a real pass the plan is all up to date, and still writes nothing.
    world.run(&["once"]).expect_code(0);
    check(true);
    let plan = world.report();
    assert_eq!(plan["totals"]["tags_would_copy"], 0);
    assert_eq!(
        plan["totals"]["tags_up_to_date"].as_u64().unwrap() as usize,
        images.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn run_repeats_passes_on_its_interval_and_stops_cleanly_on_sigterm() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;
    world.write_config(&config_with_syncs(
        "  - name: every-second\n    from: upstream\n    to: mirror\n    interval: 1s\n",
    ));
    let mut daemon = world.daemon(&["--grace-period", "10s"]);
    daemon.wait_for_log("two passes", Duration::from_secs(60), |log| {
        log.iter().filter(|line| line.contains("pass finished")).count() >= 2
    });
    let repos = corpus::repos(&images);
    let pairs: Vec<(&str, &str)> = repos.iter().map(|r| (r.as_str(), r.as_str())).collect();
    assert_mirror_complete(&upstream.url(), &mirror.url(), &pairs).await;

    let code = daemon.terminate(Duration::from_secs(20));
    let log = daemon.log.join("\n");
    assert_eq!(code, Some(0), "log:\n{log}");
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(log.contains("stopped cleanly"), "{log}");
}

/// Blob reads through the upstream proxy.
fn blob_reads() -> RequestMatch {
    RequestMatch::path_contains("/blobs/sha256:").method("GET")
}

/// The small corpus upstream, behind a proxy that delays every blob read, and an empty
/// mirror behind a counting proxy.
struct SlowUpstream {
    world: Mirror,
    images: Vec<ocisync_testkit::SeedImage>,
    upstream_proxy: CountingProxy,
    mirror_proxy: CountingProxy,
}

async fn slow_upstream(blob_read_latency: Duration) -> SlowUpstream {
    let world = Mirror::start();
    let images = small_corpus();
    corpus::seed(&world.upstream.url(), &images).await;
    let upstream_proxy = CountingProxy::start_with(
        &world.upstream.url(),
        ProxyOptions {
            faults: Faults::none().every(blob_reads(), Fault::Latency(blob_read_latency)),
        },
    );
    let mirror_proxy = CountingProxy::start(&world.mirror.url());
    SlowUpstream {
        world,
        images,
        upstream_proxy,
        mirror_proxy,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_stream_under_way_finish_and_starts_no_waiting_one() {
    // Long enough that the SIGTERM below lands while the first stream is running.
    let SlowUpstream {
        world,
        images,
        upstream_proxy,
        mirror_proxy,
    } = slow_upstream(Duration::from_secs(3)).await;
    let config = config_with_syncs("  - from: upstream\n    to: mirror\n    interval: 1h\n")
        + "defaults:\n  concurrency: {transfers: 1}\n";
    world.write_config_via(
        &config,
        &[("{upstream}", &upstream_proxy.url()), ("{mirror}", &mirror_proxy.url())],
    );
    let mut daemon = world.daemon(&["--grace-period", "30s"]);
    // The mirror is empty: the one stream opens its upload session beside its read, and
    // the rest wait without one.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !mirror_proxy.requests().iter().any(|r| r.method == "POST") {
        assert!(std::time::Instant::now() < deadline, "the pass never started copying");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let code = daemon.terminate(Duration::from_secs(30));
    let log = daemon.log.join("\n");
    assert_eq!(
        code,
        Some(0),
        "the stream under way finished within the grace period; log:\n{log}"
    );
    assert!(log.contains("image interrupted"), "{log}");
    let streamed = upstream_proxy
        .requests()
        .iter()
        .filter(|r| blob_reads().matches(&r.method, &r.path))
        .count();
    assert_eq!(streamed, 1, "only the stream under way ran; log:\n{log}");
    let sessions = mirror_proxy.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(
        sessions, 1,
        "no upload session was opened for a stream that never started"
    );
    for repo in corpus::repos(&images) {
        assert_closure(&world.mirror.url(), &repo).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn run_skips_fire_times_a_slow_pass_covers_and_abandons_copies_after_the_grace_period() {
    // Every blob read takes 1.5 s: the first pass outlasts its 1 s interval.
    let SlowUpstream {
        world,
        images,
        upstream_proxy,
        mirror_proxy,
    } = slow_upstream(Duration::from_millis(1500)).await;
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    world.write_config_via(
        &config_with_syncs("  - name: every-second\n    from: upstream\n    to: mirror\n    interval: 1s\n"),
        &[("{upstream}", &upstream_proxy.url()), ("{mirror}", &mirror_proxy.url())],
    );
    let mut daemon = world.daemon(&["--grace-period", "1s"]);
    daemon.wait_for_log("fire times skipped", Duration::from_secs(120), |log| {
        log.iter().any(|line| line.contains("those runs are skipped"))
    });

    // A new image whose one blob read now hangs for a minute: a copy under way at SIGTERM.
    // (The first pass is over and later ones have nothing to write, so any upload from now
    // on is the new image's.)
    mirror_proxy.reset();
    upstream_proxy.set_faults(Faults::none().every(blob_reads(), Fault::Latency(Duration::from_secs(60))));
    let stuck = image(
        Format::Oci,
        ("linux", "amd64"),
        vec![layer(Format::Oci, 4242, 4096)],
        "stuck",
    );
    push_image(&upstream.url(), "team/app", "v9", &stuck).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // The upload of its blob is opened at the destination just before the blob is read.
    while !mirror_proxy.requests().iter().any(|r| r.method == "POST") {
        assert!(
            std::time::Instant::now() < deadline,
            "the new image's copy never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked_to_stop = std::time::Instant::now();
    let code = daemon.terminate(Duration::from_secs(30));
    let log = daemon.log.join("\n");
    assert_eq!(code, Some(1), "an abandoned copy is a failure; log:\n{log}");
    assert!(log.contains("grace period over; abandoning copies under way"), "{log}");
    assert!(
        asked_to_stop.elapsed() < Duration::from_secs(20),
        "stopped after the grace period, not after the hung read"
    );
    // Nothing half-done is visible: the new tag is absent, every tag there is complete,
    // and every tag of the first pass is there at its upstream digest.
    assert!(manifest(&mirror.url(), "team/app", "v9").await.is_none());
    for repo in corpus::repos(&images) {
        assert_closure(&mirror.url(), &repo).await;
    }
    for seeded in &images {
        let (_, _, digest) = manifest(&mirror.url(), &seeded.repo, &seeded.tag).await.unwrap();
        assert_eq!(digest, seeded.image.digest(), "{}:{}", seeded.repo, seeded.tag);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_takes_one_tag_one_digest_or_a_whole_repository() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let host = |registry: &TestRegistry| registry.url().trim_start_matches("http://").to_owned();
    let one = image(
        Format::Oci,
        ("linux", "amd64"),
        vec![layer(Format::Oci, 11, 2048)],
        "one",
    );
    let two = image(
        Format::Docker,
        ("linux", "arm64"),
        vec![layer(Format::Docker, 12, 2048)],
        "two",
    );
    push_image(&upstream.url(), "tools/cli", "1.0", &one).await;
    push_image(&upstream.url(), "tools/cli", "2.0", &two).await;
    push_image(&upstream.url(), "tools/other", "x", &two).await;
    let flags = ["--src-plain-http", "--dest-plain-http"];
    let copy = |source: String, destination: String| {
        let mut args = vec!["copy".to_owned(), source, destination];
        args.extend(flags.iter().map(|flag| (*flag).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ocisync(&args)
    };

    // One tag, renamed on the way.
    copy(
        format!("{}/tools/cli:1.0", host(upstream)),
        format!("{}/mirror/cli:stable", host(mirror)),
    )
    .expect_code(0);
    assert_eq!(ocisync_testkit::tags(&mirror.url(), "mirror/cli").await, ["stable"]);
    let (_, _, digest) = manifest(&mirror.url(), "mirror/cli", "stable").await.unwrap();
    assert_eq!(digest, one.digest());

    // One digest, no tag at the destination.
    copy(
        format!("{}/tools/cli@{}", host(upstream), two.digest()),
        format!("{}/pinned/cli", host(mirror)),
    )
    .expect_code(0);
    assert!(manifest(&mirror.url(), "pinned/cli", two.digest()).await.is_some());
    assert!(ocisync_testkit::tags(&mirror.url(), "pinned/cli").await.is_empty());

    // A whole repository: every tag, nothing of the neighbouring repository.
    let run = copy(
        format!("docker://{}/tools/cli", host(upstream)),
        format!("{}/all/cli", host(mirror)),
    );
    run.expect_code(0);
    assert_eq!(ocisync_testkit::tags(&mirror.url(), "all/cli").await, ["1.0", "2.0"]);
    assert!(ocisync_testkit::tags(&mirror.url(), "all/other").await.is_empty());
    assert!(run.stdout.contains("2 tags copied"), "{}", run.stdout);

    // A reference that names no valid repository is refused before anything happens.
    // (One without a host names Docker Hub, as in docker: see image_ref.rs.)
    let run = ocisync(&["copy", "tools/CLI:1.0", &format!("{}/x", host(mirror))]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("source: invalid repository name \"tools/CLI\""),
        "{}",
        run.stderr
    );
}

#[test]
fn config_prints_the_effective_configuration_without_secrets() {
    let work = Workdir::new();
    let secret = "s3cr3t-value-never-printed";
    std::fs::write(work.dir().join("password"), secret).unwrap();
    work.write_config_filled(
        r#"version: 1
registries:
  hub:
    urls: ["https://registry-1.docker.io"]
    username: robot
    password_file: password
    rate_limit: {reserve: 10}
    request_timeout: 30s
    min_transfer_rate: 1MiB/s
  mirror:
    urls: ["https://mirror.example.com"]
syncs:
  - from: hub
    to: mirror
    schedule: "0 2 * * 1-5"
    timezone: Europe/Berlin
    content:
      - prefix: "library/*"
        tags:
          include: ['v?\d+\.\d+\.\d+']
          semver: ">=1.20"
          latest: 3
          immutable: ['v\d+\.\d+\.\d+']
        platforms: ["linux/amd64"]
  - name: nightly
    from: hub
    to: mirror
    interval: 90m
"#,
        &[],
    );
    let run = work.run(&["config"]);
    run.expect_code(0);
    let printed: serde_yaml::Value = serde_yaml::from_str(&run.stdout).unwrap();
    assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    assert_eq!(printed["registries"]["hub"]["username"], "robot");
    assert!(printed["registries"]["hub"]["password"]
        .as_str()
        .unwrap()
        .starts_with("<redacted>"));
    assert_eq!(printed["registries"]["mirror"]["tls_verify"], true, "default filled in");
    assert_eq!(printed["registries"]["hub"]["rate_limit"]["reserve"], 10);
    assert_eq!(printed["registries"]["hub"]["request_timeout"], "30s");
    assert_eq!(printed["registries"]["hub"]["min_transfer_rate"], "1MiB/s");
    assert_eq!(printed["registries"]["mirror"]["request_timeout"], "2m", "default");
    assert_eq!(
        printed["registries"]["mirror"]["min_transfer_rate"], "8KiB/s",
        "default"
    );
    assert!(
        printed["registries"]["mirror"].get("rate_limit").is_none(),
        "none unless set"
    );
    let first = &printed["syncs"][0];
    assert_eq!(first["name"], "hub-to-mirror", "default name filled in");
    assert_eq!(first["schedule"], "0 2 * * 1-5");
    assert_eq!(first["timezone"], "Europe/Berlin");
    assert_eq!(first["content"][0]["tags"]["include"][0], r"v?\d+\.\d+\.\d+");
    assert_eq!(first["content"][0]["tags"]["semver"], ">=1.20");
    assert_eq!(first["content"][0]["tags"]["immutable"][0], r"v\d+\.\d+\.\d+");
    assert_eq!(first["content"][0]["platforms"][0], "linux/amd64");
    assert_eq!(printed["syncs"][1]["interval"], "1h 30m");
    assert_eq!(
        printed["syncs"][1]["content"][0]["prefix"], "**",
        "no rules: everything"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn once_with_sync_runs_only_that_sync() {
    let world = Mirror::start();
    let images = small_corpus();
    corpus::seed(&world.upstream.url(), &images).await;
    world.write_config(&config_with_syncs(
        "  - name: library\n    from: upstream\n    to: mirror\n    content: [{prefix: \"library/*\"}]\n  - name: team\n    from: upstream\n    to: mirror\n    content: [{prefix: \"team/**\"}]\n",
    ));
    let run = world.run(&["once", "--sync", "team"]);
    run.expect_code(0);
    let mut catalog = ocisync_testkit::catalog(&world.mirror.url()).await;
    catalog.sort();
    assert!(!catalog.is_empty());
    assert!(catalog.iter().all(|repo| repo.starts_with("team/")), "{catalog:?}");
    assert!(!run.stdout.contains("sync library"), "{}", run.stdout);

    let run = world.run(&["once", "--sync", "nope"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("no sync named \"nope\" (defined: library, team)"),
        "{}",
        run.stderr
    );
}

#[test]
fn config_schema_prints_the_committed_json_schema() {
    let run = ocisync(&["config", "--schema"]);
    run.expect_code(0);
    let schema: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(schema["title"], "ocisync config");
    assert_eq!(schema["additionalProperties"], false, "unknown keys are errors");
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config.schema.json")).unwrap();
    assert_eq!(run.stdout, committed);
}
