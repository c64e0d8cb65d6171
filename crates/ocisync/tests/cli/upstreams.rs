//! Mirroring from an upstream that behaves like Docker Hub: no catalog, anonymous
//! per-repository tokens from another origin, blobs redirected to a CDN.

use std::time::Duration;

use ocisync_testkit::{assert_closure, image, layer, manifest, tags, Format, HubLikeRegistry, Image, TestRegistry};

use crate::support::Workdir;

fn small_image(seed: u64, label: &str) -> Image {
    image(
        Format::Oci,
        ("linux", "amd64"),
        vec![layer(Format::Oci, seed, 2048 + seed as usize)],
        label,
    )
}

/// Seeds `repo:tag` for each tag, each its own image; returns them in order.
async fn seed_tags(hub: &HubLikeRegistry, repo: &str, tag_names: &[&str], seed: u64) -> Vec<Image> {
    let mut images = Vec::new();
    for (index, tag) in tag_names.iter().enumerate() {
        let image = small_image(seed + index as u64, &format!("{repo}:{tag}"));
        hub.push_image(repo, tag, &image).await;
        images.push(image);
    }
    images
}

/// A config from the hub to the mirror, with `hub_lines` under the hub's entry (indented
/// by four spaces) and `sync_lines` under its one sync (`content:` and its rules, say).
fn hub_config(hub_lines: &str, sync_lines: &str) -> String {
    format!(
        "version: 1\nregistries:\n  hub:\n    urls: [\"{{hub}}\"]\n{hub_lines}  mirror:\n    urls: [\"{{mirror}}\"]\nsyncs:\n  - name: hub-library\n    from: hub\n    to: mirror\n{sync_lines}"
    )
}

/// Writes `yaml` as the config of `work`, `{hub}` and `{mirror}` filled in.
fn write_hub_config(work: &Workdir, hub: &HubLikeRegistry, mirror: &TestRegistry, yaml: &str) {
    work.write_config_filled(yaml, &[("{hub}", &hub.url()), ("{mirror}", &mirror.url())]);
}

/// Tag lists the upstream answered (a request refused for want of a token is sent again).
fn tag_lists_served(hub: &HubLikeRegistry) -> usize {
    hub.requests()
        .iter()
        .filter(|request| request.path.contains("/tags/list") && request.status == 200)
        .count()
}

/// The digest of `repo:reference` in the registry at `base_url`.
async fn digest_at(base_url: &str, repo: &str, reference: &str) -> Option<String> {
    manifest(base_url, repo, reference).await.map(|(_, _, digest)| digest)
}

#[tokio::test(flavor = "multi_thread")]
async fn cronjob_example_mirrors_a_hub_like_upstream_without_its_catalog() {
    let hub = HubLikeRegistry::start();
    let nginx = seed_tags(
        &hub,
        "library/nginx",
        &["1.25.0", "1.26.1", "1.27.0", "1.27.1-rc1", "2.0.0", "latest"],
        10,
    )
    .await;
    let redis = seed_tags(&hub, "library/redis", &["1.22.0", "7.2.4"], 20).await;
    let busybox = seed_tags(&hub, "library/busybox", &["1.36", "1.37"], 30).await;
    let alpine = seed_tags(&hub, "library/alpine", &["3.20"], 40).await;
    let mirror = TestRegistry::start();
    let work = Workdir::new();
    // examples/cronjob.yaml's shape, against the stand-in.
    let rules = format!(
        "      - repositories: [library/nginx, library/redis]\n        strip_prefix: \"library/\"\n        destination: \"hub\"\n        tags:\n          include: ['v?\\d+\\.\\d+\\.\\d+']\n          exclude: ['.*-rc\\d*']\n          semver: \">=1.20, <2\"\n          latest: 2\n      - images: [\"library/busybox:1.36\", \"library/alpine@{}\"]\n        destination: \"hub\"\n",
        alpine[0].digest()
    );
    write_hub_config(&work, &hub, &mirror, &hub_config("", &format!("    content:\n{rules}")));

    work.once().expect_code(0);

    assert_eq!(
        hub.catalog_requests(),
        0,
        "a sync of named rules never asks for the catalog"
    );
    assert_eq!(
        tag_lists_served(&hub),
        2,
        "one tag list per named repository, none for images"
    );
    assert!(!hub.cdn_requests().is_empty(), "blobs came through the CDN redirect");
    assert!(!hub.cdn_saw_authorization(), "no credentials followed the redirect");
    let mut nginx_tags = tags(&mirror.url(), "hub/nginx").await;
    nginx_tags.sort();
    assert_eq!(
        nginx_tags,
        ["1.26.1", "1.27.0"],
        "include, exclude, semver and latest applied"
    );
    assert_eq!(
        digest_at(&mirror.url(), "hub/nginx", "1.26.1").await.as_deref(),
        Some(nginx[1].digest())
    );
    assert_eq!(
        digest_at(&mirror.url(), "hub/nginx", "1.27.0").await.as_deref(),
        Some(nginx[2].digest())
    );
    assert_eq!(tags(&mirror.url(), "hub/redis").await, ["1.22.0"]);
    assert_eq!(
        digest_at(&mirror.url(), "hub/redis", "1.22.0").await.as_deref(),
        Some(redis[0].digest())
    );
    assert_eq!(
        tags(&mirror.url(), "hub/library/busybox").await,
        ["1.36"],
        "one named tag, not 1.37"
    );
    assert_eq!(
        digest_at(&mirror.url(), "hub/library/busybox", "1.36").await.as_deref(),
        Some(busybox[0].digest())
    );
    // A digest reference is copied by digest, and no tag is set.
    assert_eq!(
        digest_at(&mirror.url(), "hub/library/alpine", alpine[0].digest())
            .await
            .as_deref(),
        Some(alpine[0].digest())
    );
    assert!(tags(&mirror.url(), "hub/library/alpine").await.is_empty());
    for repo in ["hub/nginx", "hub/redis", "hub/library/busybox"] {
        assert_closure(&mirror.url(), repo).await;
    }
    let report = work.report();
    let sources: Vec<&str> = report["syncs"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| rule["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["named", "images"]);
    let by_digest = report
        .tags()
        .into_iter()
        .find(|(repo, entry)| repo == "library/alpine" && entry.get("tag").is_none())
        .expect("the digest image has its own report entry");
    assert_eq!(by_digest.1["digest"], alpine[0].digest());
    assert_eq!(by_digest.1["outcome"], "copied");

    // Nothing changed upstream: the second pass confirms everything with HEADs, which
    // Docker Hub does not count against the pull quota.
    let gets_before = hub.manifest_gets_served();
    let second = work.once();
    second.expect_code(0);
    assert_eq!(hub.manifest_gets_served(), gets_before, "a no-op pass spends no pulls");
    assert!(second.stdout.contains("0 tags copied"), "{}", second.stdout);

    // A prefix rule needs the catalog, which the upstream refuses: that rule fails with
    // one line saying what to do, and the named rules still run.
    let with_prefix = format!("    content:\n{rules}      - prefix: \"team/*\"\n");
    write_hub_config(&work, &hub, &mirror, &hub_config("", &with_prefix));
    let check = work.run(&["check"]);
    check.expect_code(1);
    assert!(
        check
            .stdout
            .contains("rule 0 (named, 2 repositories): 2 repositories from the names in the config"),
        "{}",
        check.stdout
    );
    assert!(check.stdout.contains("rule 1 (images, 2 images)"), "{}", check.stdout);
    assert!(
        check.stdout.contains("rule 2 (catalog, prefix team/*)"),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains("refuses to list its catalog") && check.stdout.contains("`repositories:`"),
        "{}",
        check.stdout
    );
    assert!(check.stdout.contains("library/nginx -> hub/nginx"), "{}", check.stdout);
    let once = work.once();
    once.expect_code(1);
    assert!(
        once.stdout.contains("FAILED rule 2 (prefix team/*): registry") && once.stdout.contains("refuses"),
        "{}",
        once.stdout
    );
    assert!(hub.catalog_requests() > 0, "a prefix rule asks for the catalog");
}

#[tokio::test(flavor = "multi_thread")]
async fn images_file_is_read_again_at_every_pass_of_run() {
    let hub = HubLikeRegistry::start();
    let app = seed_tags(&hub, "team/app", &["v1", "v2"], 50).await;
    let late = seed_tags(&hub, "team/late", &["1.0"], 60).await;
    let mirror = TestRegistry::start();
    let work = Workdir::new();
    std::fs::write(
        work.dir().join("images.txt"),
        format!(
            "# pinned for production\nteam/app:v1\n\nteam/app@{}   # by digest\n",
            app[1].digest()
        ),
    )
    .unwrap();
    let pinned = "    interval: 1s\n    content:\n      - images_file: images.txt\n";
    write_hub_config(&work, &hub, &mirror, &hub_config("", pinned));
    let mut daemon = work.daemon(&[]);
    daemon.wait_for_log("the first pass", Duration::from_secs(30), |log| {
        log.iter().any(|line| line.contains("pass finished"))
    });
    std::fs::write(
        work.dir().join("images.txt"),
        format!("team/app:v1\nteam/app@{}\nteam/late:1.0\n", app[1].digest()),
    )
    .unwrap();
    daemon.wait_for_log("the new line copied", Duration::from_secs(30), |log| {
        log.iter()
            .any(|line| line.contains("copied") && line.contains("team/late"))
    });
    daemon.terminate(Duration::from_secs(10));
    assert_eq!(
        tags(&mirror.url(), "team/app").await,
        ["v1"],
        "the digest line sets no tag"
    );
    assert_eq!(
        digest_at(&mirror.url(), "team/app", app[1].digest()).await.as_deref(),
        Some(app[1].digest())
    );
    assert_eq!(
        digest_at(&mirror.url(), "team/late", "1.0").await.as_deref(),
        Some(late[0].digest())
    );
    assert_eq!(hub.catalog_requests(), 0);
    assert_eq!(hub.tag_list_requests(), 0, "an images rule reads no tag list");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hub_quota_that_runs_out_mid_pass_is_held_by_a_reserve_and_finished_after_a_refill() {
    // Twelve tags need twelve manifest GETs; the quota allows eight.
    let hub = HubLikeRegistry::builder().pull_quota(Some(8)).start();
    let mut seeded = Vec::new();
    for index in 0..4u64 {
        let repo = format!("library/app{index}");
        let images = seed_tags(&hub, &repo, &["1.0", "2.0", "3.0"], 100 + 10 * index).await;
        seeded.push((repo, images));
    }
    let names: Vec<String> = seeded.iter().map(|(repo, _)| repo.clone()).collect();
    let content = format!("    content:\n      - repositories: [{}]\n", names.join(", "));
    for reserve in [Some(2), None] {
        hub.refill();
        let mirror = TestRegistry::start();
        let work = Workdir::new();
        let config = match reserve {
            Some(reserve) => hub_config(&format!("    rate_limit: {{reserve: {reserve}}}\n"), &content),
            // One manifest GET at a time, so that "no GET after the 429" is exact (with
            // several at once, those already sent may meet the 429 too).
            None => hub_config("", &content).replace(
                "version: 1\n",
                "version: 1\ndefaults:\n  concurrency: {repositories: 1, tags: 1}\n",
            ),
        };
        write_hub_config(&work, &hub, &mirror, &config);
        let sent_before = hub.too_many_requests_sent();
        let first = work.once();
        let report = work.report();
        let counts = report.counts();
        match reserve {
            Some(reserve) => {
                first.expect_code(0);
                assert_eq!(
                    hub.too_many_requests_sent(),
                    sent_before,
                    "a reserve means no 429, ever"
                );
                assert_eq!(hub.remaining(), Some(reserve), "the reserve is left unspent");
                assert_eq!(counts.get("copied"), Some(&6), "{counts:?}");
                assert_eq!(counts.get("rate-limit-reserve"), Some(&6), "{counts:?}");
            }
            None => {
                first.expect_code(1);
                assert_eq!(
                    hub.too_many_requests_sent(),
                    sent_before + 1,
                    "one 429, then no more pulls"
                );
                assert_eq!(counts.get("copied"), Some(&8), "{counts:?}");
                assert_eq!(counts.get("rate-limited"), Some(&4), "{counts:?}");
            }
        }
        let quota = &report["syncs"][0]["rate_limits"][0];
        assert_eq!(quota["limit"], 8, "{quota}");
        assert!(first.stdout.contains("pull quota"), "{}", first.stdout);

        // The window refills: the next pass copies what is left and confirms the rest.
        hub.refill();
        work.once().expect_code(0);
        for (repo, images) in &seeded {
            for (tag, image) in ["1.0", "2.0", "3.0"].iter().zip(images) {
                assert_eq!(
                    digest_at(&mirror.url(), repo, tag).await.as_deref(),
                    Some(image.digest()),
                    "{repo}:{tag} (reserve {reserve:?})"
                );
            }
            assert_closure(&mirror.url(), repo).await;
        }
    }
}
