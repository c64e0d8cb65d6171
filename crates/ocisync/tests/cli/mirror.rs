//! A whole upstream mirrored into a second registry, then a second pass that writes nothing.

use ocisync_testkit::push_image;
use ocisync_testkit::{
    assert_closure, assert_mirror_complete, corpus, corpus::seed, manifest, small_corpus, standard_corpus,
    standard_corpus_with_large_layer, CountingProxy, Fault, Faults, RecordedRequest, RequestMatch,
};

use crate::support::{config_with_syncs, corrupt_stored_blob, one_sync_config, Mirror, Report};

#[tokio::test(flavor = "multi_thread")]
async fn mirrors_every_tag_byte_exact_and_second_pass_writes_nothing() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let images = standard_corpus();
    seed(&upstream.url(), &images).await;
    let upstream_proxy = CountingProxy::start(&upstream.url());
    let mirror_proxy = CountingProxy::start(&mirror.url());
    world.write_config_via(
        &one_sync_config(),
        &[("{upstream}", &upstream_proxy.url()), ("{mirror}", &mirror_proxy.url())],
    );

    let first = world.once();
    first.expect_code(0);

    let repos = corpus::repos(&images);
    let pairs: Vec<(&str, &str)> = repos.iter().map(|r| (r.as_str(), r.as_str())).collect();
    assert_mirror_complete(&upstream.url(), &mirror.url(), &pairs).await;
    let report = world.report();
    let entries = report.tags();
    assert_eq!(entries.len(), images.len(), "one report entry per upstream tag");
    for (repo, entry) in &entries {
        assert_eq!(entry["outcome"], "copied", "{repo}: {entry}");
        let seeded = images
            .iter()
            .find(|i| &i.repo == repo && i.tag == entry["tag"])
            .unwrap();
        assert_eq!(
            entry["digest"],
            seeded.image.digest(),
            "report names the upstream digest"
        );
    }
    let mut per_repository = std::collections::HashMap::new();
    let mut distinct = std::collections::HashMap::new();
    for image in &images {
        for blob in image.image.all_blobs() {
            per_repository.insert((image.repo.clone(), blob.digest.clone()), blob.size());
            distinct.insert(blob.digest.clone(), blob.size());
        }
    }
    let totals = &report["totals"];
    let transferred = totals["bytes"].as_u64().unwrap();
    let made_present = totals["blobs_copied"].as_u64().unwrap() + totals["blobs_mounted"].as_u64().unwrap();
    // Each blob lands once in each repository that uses it, by transfer or by mount;
    // every distinct blob crosses at least once and none crosses twice into one repository.
    assert_eq!(made_present as usize, per_repository.len(), "blobs made present");
    assert!(
        transferred >= distinct.values().sum::<u64>(),
        "transferred {transferred}"
    );
    assert!(
        transferred <= per_repository.values().sum::<u64>(),
        "transferred {transferred}"
    );
    assert!(
        first.stdout.contains(&format!("{} tags copied", images.len())),
        "summary: {}",
        first.stdout
    );
    // Into a fresh destination nothing is looked up on either side (upstream's manifest
    // is read with one GET; an index's children are new in a new repository too) and no
    // blob is checked: one POST per blob made present (201
    // when mounted, else a 202 whose upload session the one PUT then uses).
    let (upstream_requests, mirror_requests) = (upstream_proxy.requests(), mirror_proxy.requests());
    let lookups: Vec<_> = upstream_requests
        .iter()
        .chain(&mirror_requests)
        .filter(|r| r.method == "HEAD")
        .collect();
    assert_eq!(lookups, Vec::<&RecordedRequest>::new(), "HEADs on a cold pass");
    let count = |method: &str, path: &str| {
        mirror_requests
            .iter()
            .filter(|r| r.method == method && r.path.contains(path))
            .count() as u64
    };
    assert_eq!(count("POST", "/blobs/uploads/"), made_present, "one POST per blob");
    assert_eq!(
        count("PUT", "/blobs/uploads/"),
        totals["blobs_copied"].as_u64().unwrap(),
        "one PUT per uploaded blob, into the session its POST opened"
    );
    assert_requests_reported(&report, upstream_requests.len(), mirror_requests.len());
    let summary_line = format!(
        "requests: {} to the source, {} to the destination",
        upstream_requests.len(),
        mirror_requests.len()
    );
    assert!(first.stdout.contains(&summary_line), "summary: {}", first.stdout);

    // Second pass over an unchanged upstream: no write reaches the destination, no blob is read.
    upstream_proxy.reset();
    mirror_proxy.reset();
    let second = world.once();
    second.expect_code(0);
    assert_eq!(
        mirror_proxy.writes(),
        Vec::new(),
        "second pass wrote to the destination"
    );
    let blob_reads: Vec<_> = upstream_proxy
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/blobs/") || (r.method == "GET" && r.path.contains("/manifests/")))
        .collect();
    assert_eq!(
        blob_reads,
        Vec::new(),
        "second pass read manifests or blobs it did not need"
    );
    let report = world.report();
    // Per unchanged tag: one manifest HEAD on each side, nothing more.
    let heads = |proxy: &CountingProxy| {
        proxy
            .requests()
            .iter()
            .filter(|r| r.method == "HEAD" && r.path.contains("/manifests/"))
            .count()
    };
    assert_eq!(heads(&upstream_proxy), images.len(), "upstream HEADs");
    assert_eq!(heads(&mirror_proxy), images.len(), "destination HEADs");
    assert_requests_reported(&report, upstream_proxy.requests().len(), mirror_proxy.requests().len());
    for (repo, entry) in report.tags() {
        assert_eq!(entry["outcome"], "skipped", "{repo}: {entry}");
        assert_eq!(entry["reason"], "up-to-date", "{repo}: {entry}");
        assert_eq!(entry["bytes"], 0);
    }

    // A tag moved upstream: the next pass copies exactly that tag to its new digest.
    let moved = images
        .iter()
        .find(|i| i.repo == "team/app" && i.tag == "v1.0.0")
        .unwrap();
    push_image(&upstream.url(), "team/app", "stable", &moved.image).await;
    let third = world.once();
    third.expect_code(0);
    let (_, _, mirrored_digest) = manifest(&mirror.url(), "team/app", "stable").await.unwrap();
    assert_eq!(mirrored_digest, moved.image.digest());
    let copied: Vec<String> = world
        .report()
        .tags()
        .into_iter()
        .filter(|(_, entry)| entry["outcome"] == "copied")
        .map(|(repo, entry)| format!("{repo}:{}", entry["tag"].as_str().unwrap()))
        .collect();
    assert_eq!(copied, vec!["team/app:stable".to_owned()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_destination_catalog_that_leaves_repositories_out_causes_no_writes() {
    let world = Mirror::start();
    let images = small_corpus();
    seed(&world.upstream.url(), &images).await;
    let mirror_proxy = CountingProxy::start(&world.mirror.url());
    world.write_config_via(&one_sync_config(), &[("{mirror}", &mirror_proxy.url())]);
    world.once().expect_code(0);

    // Some registries list only part of their catalog: here, nothing at all.
    mirror_proxy.set_faults(Faults::none().every(
        RequestMatch::path_contains("/v2/_catalog"),
        Fault::Json(r#"{"repositories":[]}"#),
    ));
    mirror_proxy.reset();
    world.once().expect_code(0);
    assert_eq!(
        mirror_proxy.writes(),
        Vec::new(),
        "repositories left out were written again"
    );
    for (repo, entry) in world.report().tags() {
        assert_eq!(entry["reason"], "up-to-date", "{repo}: {entry}");
    }
    // Each repository left out had its own tag list read to find that out.
    let tag_lists = mirror_proxy
        .requests()
        .iter()
        .filter(|r| r.path.contains("/tags/list"))
        .count();
    assert_eq!(tag_lists, corpus::repos(&images).len());
}

/// The report counts the HTTP requests each side was sent, as the proxies saw them.
fn assert_requests_reported(report: &Report, upstream: usize, mirror: usize) {
    let endpoints = report["syncs"][0]["endpoints"]
        .as_array()
        .expect("endpoints in the report");
    let reported = |role: &str| -> u64 {
        endpoints
            .iter()
            .filter(|e| e["role"] == role)
            .map(|e| e["requests"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(reported("source"), upstream as u64, "source requests: {endpoints:?}");
    assert_eq!(
        reported("destination"),
        mirror as u64,
        "destination requests: {endpoints:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_upstream_blob_fails_only_its_image_and_leaves_nothing_visible() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let images = standard_corpus_with_large_layer(1024 * 1024);
    seed(&upstream.url(), &images).await;
    // Flip bytes of the large layer on the upstream's disk: it is served, but wrong.
    let victim = images
        .iter()
        .find(|i| i.repo == "team/tools/cli" && i.tag == "2.0")
        .unwrap();
    let large = victim
        .image
        .all_blobs()
        .into_iter()
        .max_by_key(|b| b.size())
        .unwrap()
        .clone();
    corrupt_stored_blob(upstream.dir(), &large.digest, 1000);

    let run = world.once();
    run.expect_code(1);
    assert!(
        run.stdout.contains("FAILED team/tools/cli:2.0"),
        "summary names the failed image:\n{}",
        run.stdout
    );
    assert!(run.stderr.contains("digest mismatch"), "log says why:\n{}", run.stderr);

    let report = world.report();
    assert!(report.has_failures(), "the report says so too");
    for (repo, entry) in report.tags() {
        let uses_large_layer = images.iter().any(|i| {
            i.repo == repo && i.tag == entry["tag"] && i.image.all_blobs().iter().any(|b| b.digest == large.digest)
        });
        if uses_large_layer {
            assert_eq!(entry["outcome"], "failed", "{repo}: {entry}");
            assert!(entry["error"].as_str().unwrap().contains("digest mismatch"), "{entry}");
            let tag = entry["tag"].as_str().unwrap();
            assert!(
                manifest(&mirror.url(), &repo, tag).await.is_none(),
                "{repo}:{tag} must not be visible"
            );
        } else {
            assert_eq!(entry["outcome"], "copied", "{repo}: {entry}");
        }
    }
    assert!(
        !ocisync_testkit::blob_exists(&mirror.url(), "team/tools/cli", &large.digest).await,
        "no corrupt blob committed"
    );
    for repo in corpus::repos(&images) {
        if ocisync_testkit::tags(&mirror.url(), &repo).await.is_empty() {
            continue;
        }
        assert_closure(&mirror.url(), &repo).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_upstream_manifest_fails_only_its_tags() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let images = ocisync_testkit::small_corpus();
    seed(&upstream.url(), &images).await;
    let victim = images
        .iter()
        .find(|i| i.repo == "artifacts/thing" && i.tag == "v2")
        .unwrap();
    corrupt_stored_blob(upstream.dir(), victim.image.digest(), 1);

    world.once().expect_code(1);
    let failed: Vec<String> = world
        .report()
        .tags()
        .into_iter()
        .filter(|(_, entry)| entry["outcome"] == "failed")
        .map(|(repo, entry)| format!("{repo}:{}", entry["tag"].as_str().unwrap()))
        .collect();
    assert_eq!(failed, vec!["artifacts/thing:v2".to_owned()]);
    assert!(manifest(&mirror.url(), "artifacts/thing", "v2").await.is_none());
    assert!(
        manifest(&mirror.url(), "artifacts/thing", "v1").await.is_some(),
        "other tags still copied"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn large_blob_streams_without_growing_memory() {
    const LAYER_SIZE: usize = 96 * 1024 * 1024;
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let large = ocisync_testkit::layer(ocisync_testkit::Format::Oci, 0xB16, LAYER_SIZE);
    let image = ocisync_testkit::image(ocisync_testkit::Format::Oci, ("linux", "amd64"), vec![large], "large");
    push_image(&upstream.url(), "big/image", "1", &image).await;

    world.once().expect_code(0);
    assert_mirror_complete(&upstream.url(), &mirror.url(), &[("big/image", "big/image")]).await;
    let report = world.report();
    let peak = report["peak_rss_bytes"].as_u64().expect("peak RSS reported on Linux");
    assert!(
        peak < (LAYER_SIZE / 2) as u64,
        "peak RSS {} MiB while copying a {} MiB blob: the blob was buffered",
        peak >> 20,
        LAYER_SIZE >> 20
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn content_rules_choose_repositories_tags_and_destination_names() {
    let world = Mirror::start();
    let mirror = &world.mirror;
    let images = ocisync_testkit::small_corpus();
    seed(&world.upstream.url(), &images).await;
    world.write_config(&config_with_syncs(
        r#"  - from: upstream
    to: mirror
    content:
      - prefix: "library/*"
        strip_prefix: "library/"
        destination: "hub"
        tags:
          include: ['\d+(\.\d+)*']
          exclude: ['3\.18']
      - prefix: "team/*"
        tags:
          include: ['v.*']
"#,
    ));
    world.run(&["once"]).expect_code(0);

    let mut catalog = ocisync_testkit::catalog(&mirror.url()).await;
    catalog.sort();
    assert_eq!(
        catalog,
        ["hub/alpine", "hub/busybox", "team/app"],
        "team/tools/cli is deeper than team/*"
    );
    let mut alpine = ocisync_testkit::tags(&mirror.url(), "hub/alpine").await;
    alpine.sort();
    assert_eq!(alpine, ["3.19", "3.19.1"], "latest not included, 3.18 excluded");
    let mut app = ocisync_testkit::tags(&mirror.url(), "team/app").await;
    app.sort();
    assert_eq!(app, ["v1.0.0", "v1.1.0"]);
    let (_, _, digest) = manifest(&mirror.url(), "hub/alpine", "3.19").await.unwrap();
    let seeded = images
        .iter()
        .find(|i| i.repo == "library/alpine" && i.tag == "3.19")
        .unwrap();
    assert_eq!(digest, seeded.image.digest(), "renamed, still byte-exact");
}
