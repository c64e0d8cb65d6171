//! Limits a config sets on a pass: `max_pass_duration` ends a slow pass in `once` and
//! `check` (the next sync still runs), and a source's `max_blob_size` skips images
//! with a blob over it.

use std::time::{Duration, Instant};

use ocisync_testkit::{
    assert_closure, assert_mirror_complete, corpus, image, layer, manifest, push_image, small_corpus, CountingProxy,
    Fault, Faults, Format, ProxyOptions, RequestMatch,
};

use crate::support::{config_with_defaults, one_sync_config, Mirror, Report};

/// Blob reads through a proxy.
fn blob_reads() -> RequestMatch {
    RequestMatch::path_contains("/blobs/sha256:").method("GET")
}

/// The reason of a skipped tag entry, or its outcome.
fn reason_of(entry: &serde_json::Value) -> &str {
    entry["reason"]
        .as_str()
        .unwrap_or_else(|| entry["outcome"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn once_ends_a_pass_at_max_pass_duration_and_the_next_sync_still_runs() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;
    // 2 KiB/s per blob download: the 96 KiB base layers take 48 s each and the 256 KiB
    // layer over two minutes, so this pass would run for minutes without a limit.
    let slow = CountingProxy::start_with(
        &upstream.url(),
        ProxyOptions {
            faults: Faults::none().every(blob_reads(), Fault::Throttle { bytes_per_second: 2048 }),
        },
    );
    world.write_config_via(
        "version: 1
registries:
  slow:
    urls: [\"{slow}\"]
  upstream:
    urls: [\"{upstream}\"]
  mirror:
    urls: [\"{mirror}\"]
syncs:
  - name: slow
    from: slow
    to: mirror
    max_pass_duration: 2s
  - name: fast
    from: upstream
    to: mirror
    max_pass_duration: 5m
    content:
      - prefix: \"**\"
        destination: fast
",
        &[("{slow}", &slow.url())],
    );
    let started = Instant::now();
    let run = world.once_with(&["--grace-period", "2s"]);
    let took = started.elapsed();
    run.expect_code(1);
    assert!(
        took < Duration::from_secs(30),
        "2 s + 2 s of grace and a quick second sync, not the minutes of the slow one: {took:?}"
    );
    assert!(
        run.stderr.contains("the pass reached max_pass_duration"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("grace period over; abandoning copies under way"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("STOPPED: the pass ran past its max_pass_duration"),
        "{}",
        run.stdout
    );

    let report = world.report();
    let syncs = report["syncs"].as_array().unwrap();
    assert_eq!(syncs[0]["name"], "slow");
    assert_eq!(syncs[0]["stopped"], "deadline");
    assert!(syncs[1].get("stopped").is_none(), "{}", syncs[1]);
    let slow_tags = report.sync(0).tags();
    assert!(
        slow_tags
            .iter()
            .any(|(_, tag)| reason_of(tag) == "deadline"
                && tag["detail"].as_str().is_some_and(|d| d.contains("abandoned"))),
        "a copy under way was abandoned: {slow_tags:#?}"
    );
    assert!(
        slow_tags
            .iter()
            .all(|(_, tag)| matches!(reason_of(tag), "deadline" | "copied" | "referrer-tag")),
        "{slow_tags:#?}"
    );
    // Nothing half-copied is visible: every tag at the mirror has all it references.
    for repo in corpus::repos(&images) {
        assert_closure(&mirror.url(), &repo).await;
    }
    // The second sync ran in full, with its own budget.
    let fast_tags = report.sync(1).tags();
    assert!(!fast_tags.is_empty());
    assert!(
        fast_tags
            .iter()
            .all(|(_, tag)| matches!(reason_of(tag), "copied" | "referrer-tag")),
        "{fast_tags:#?}"
    );
    let repos = corpus::repos(&images);
    let renamed: Vec<String> = repos.iter().map(|repo| format!("fast/{repo}")).collect();
    let pairs: Vec<(&str, &str)> = repos
        .iter()
        .map(String::as_str)
        .zip(renamed.iter().map(String::as_str))
        .collect();
    assert_mirror_complete(&upstream.url(), &mirror.url(), &pairs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn check_ends_at_max_pass_duration_too() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    corpus::seed(&upstream.url(), &small_corpus()).await;
    // `check` reads no blob; every request is slow instead.
    let slow = CountingProxy::start_with(
        &upstream.url(),
        ProxyOptions {
            faults: Faults::none().every(RequestMatch::any(), Fault::Latency(Duration::from_secs(3))),
        },
    );
    world.write_config_via(
        &config_with_defaults("  max_pass_duration: 1s"),
        &[("{upstream}", &slow.url())],
    );
    let run = world.check_with(&["--grace-period", "1s"]);
    run.expect_code(1);
    let plan = world.report();
    assert_eq!(plan["syncs"][0]["stopped"], "deadline", "{plan}");
    assert_eq!(plan["totals"]["syncs_past_deadline"], 1);
    assert!(run.stdout.contains("STOPPED"), "{}", run.stdout);
    assert!(
        ocisync_testkit::catalog(&mirror.url()).await.is_empty(),
        "check wrote nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn max_blob_size_skips_an_image_with_a_larger_blob_before_anything_moves() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let big_layer = layer(Format::Oci, 77, 4096);
    let big = image(Format::Oci, ("linux", "amd64"), vec![big_layer.clone()], "big");
    let small = image(
        Format::Oci,
        ("linux", "amd64"),
        vec![layer(Format::Oci, 78, 512)],
        "small",
    );
    push_image(&upstream.url(), "team/big", "1", &big).await;
    push_image(&upstream.url(), "team/small", "1", &small).await;
    world.write_config(&one_sync_config().replace(
        "    urls: [\"{upstream}\"]\n",
        "    urls: [\"{upstream}\"]\n    max_blob_size: 2KiB\n",
    ));
    let expect_skipped = |report: &Report| {
        let entries = report.tags();
        let (_, entry) = entries.iter().find(|(repo, _)| repo == "team/big").unwrap();
        assert_eq!(reason_of(entry), "blob-too-large", "{entry}");
        let detail = entry["detail"].as_str().unwrap();
        assert!(
            detail.contains(&big_layer.digest) && detail.contains("4096 bytes") && detail.contains("2048 bytes"),
            "{detail}"
        );
        let (_, small_entry) = entries.iter().find(|(repo, _)| repo == "team/small").unwrap();
        small_entry.clone()
    };

    // `check` says so first, and writes nothing.
    let run = world.check();
    run.expect_code(0);
    assert_eq!(reason_of(&expect_skipped(&world.report())), "would_copy");
    assert!(run.stdout.contains("skip        1: blob-too-large"), "{}", run.stdout);

    let run = world.once();
    run.expect_code(0);
    assert_eq!(reason_of(&expect_skipped(&world.report())), "copied");
    assert!(
        run.stdout.contains("skipped team/big:1: blob-too-large"),
        "{}",
        run.stdout
    );
    assert!(manifest(&mirror.url(), "team/big", "1").await.is_none());
    assert!(
        !ocisync_testkit::blob_exists(&mirror.url(), "team/big", &big_layer.digest).await,
        "not a byte of the large blob was sent"
    );
    let (_, _, digest) = manifest(&mirror.url(), "team/small", "1").await.unwrap();
    assert_eq!(digest, small.digest());
}
