//! A rule's `prune` end to end, between real distribution 2.8 registries (which delete
//! manifests by digest only) and into a layout directory, then `ocisync gc`.

use std::path::Path;
use std::process::Command;

use ocisync_testkit::signing::{cosign_signature, cosign_tag};
use ocisync_testkit::{
    assert_closure, delete_manifest, manifest, push_image, small_image, tags, CosignKey, Image, TestRegistry,
};

use crate::support::{config_with_syncs, export_config_with_syncs, ocisync, Export, Mirror, Report};

const REPO: &str = "team/app";

/// `v1`…`v4`, one image each, pushed to `url`.
async fn four_versions(url: &str) -> Vec<Image> {
    let mut images = Vec::new();
    for n in 1..=4u64 {
        let version = small_image(&format!("v{n}"), n);
        push_image(url, REPO, &format!("v{n}"), &version).await;
        images.push(version);
    }
    images
}

/// The one sync into `destination`, of `team/app` with `rule` lines (indented 8) under it.
fn sync_of_repo(destination: &str, rule: &str) -> String {
    format!("  - from: upstream\n    to: {destination}\n    content:\n      - repositories: [{REPO}]\n{rule}")
}

/// The config of `world` whose one sync takes `team/app` with `rule` lines under it.
fn rule_config(rule: &str) -> String {
    config_with_syncs(&sync_of_repo("mirror", rule))
}

/// `v1`…`v4` pushed upstream and mirrored by a first pass of the sync with `rule`.
async fn mirror_four_versions(world: &Mirror, rule: &str) -> Vec<Image> {
    let images = four_versions(&world.upstream.url()).await;
    world.write_config(&rule_config(rule));
    world.once().expect_code(0);
    images
}

/// The prune entries of the report's one repository: (tag, outcome, whole entry).
fn pruned(report: &Report) -> Vec<(String, String, serde_json::Value)> {
    let prune = &report["syncs"][0]["repositories"][0]["prune"];
    prune["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|entry| {
                    (
                        entry["tag"].as_str().unwrap().to_owned(),
                        entry["outcome"].as_str().unwrap().to_owned(),
                        entry.clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn refusal(report: &Report) -> serde_json::Value {
    report["syncs"][0]["repositories"][0]["prune"]["refused"].clone()
}

async fn sorted_tags(url: &str) -> Vec<String> {
    let mut names = tags(url, REPO).await;
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_removed_upstream_are_deleted_at_the_destination_and_check_only_lists_them() {
    let world = Mirror::start();
    let (upstream, mirror) = (world.upstream.url(), world.mirror.url());
    let images = mirror_four_versions(
        &world,
        "        prune: {enabled: true, max_fraction: 0.5, keep: [\"v2\"]}\n",
    )
    .await;
    assert_eq!(sorted_tags(&mirror).await, ["v1", "v2", "v3", "v4"]);

    delete_manifest(&upstream, REPO, images[0].digest()).await;
    delete_manifest(&upstream, REPO, images[1].digest()).await;
    // check: lists v1 with its digest, deletes nothing; v2 is kept.
    let plan = world.check();
    plan.expect_code(0);
    let line = format!("prune       v1 ({})", images[0].digest());
    assert!(plan.stdout.contains(&line), "{}", plan.stdout);
    assert!(!plan.stdout.contains("prune       v2"), "{}", plan.stdout);
    assert_eq!(pruned(&world.report()).len(), 1);
    assert_eq!(pruned(&world.report())[0].1, "would-prune");
    assert_eq!(sorted_tags(&mirror).await, ["v1", "v2", "v3", "v4"]);

    // once: deletes v1 (by digest: distribution 2.8 does not delete a tag alone).
    let run = world.once();
    run.expect_code(0);
    let report = world.report();
    let entries = pruned(&report);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!((entries[0].0.as_str(), entries[0].1.as_str()), ("v1", "pruned"));
    assert_eq!(entries[0].2["digest"], images[0].digest());
    assert_eq!(report["totals"]["prune"]["tags_pruned"], 1);
    assert!(run.stdout.contains("prune: 1 tags deleted"), "{}", run.stdout);
    assert_eq!(sorted_tags(&mirror).await, ["v2", "v3", "v4"]);
    assert!(manifest(&mirror, REPO, images[0].digest()).await.is_none());
    assert_closure(&mirror, REPO).await;
    // Nothing left to do.
    world.once().expect_code(0);
    assert!(pruned(&world.report()).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prune_over_max_fraction_or_from_an_empty_upstream_deletes_nothing() {
    let world = Mirror::start();
    let (upstream, mirror) = (world.upstream.url(), world.mirror.url());
    let images = mirror_four_versions(&world, "        prune: {enabled: true, max_fraction: 0.5}\n").await;

    for image in &images[..3] {
        delete_manifest(&upstream, REPO, image.digest()).await;
    }
    let run = world.once();
    run.expect_code(0);
    let refused = refusal(&world.report());
    assert_eq!(refused["reason"], "over-max-fraction", "{refused}");
    assert_eq!(refused["would_prune"].as_array().unwrap().len(), 3);
    assert!(
        run.stdout
            .contains("prune refused team/app (over-max-fraction): would delete 3 of 4 tags"),
        "{}",
        run.stdout
    );
    assert_eq!(sorted_tags(&mirror).await, ["v1", "v2", "v3", "v4"]);

    delete_manifest(&upstream, REPO, images[3].digest()).await;
    assert!(tags(&upstream, REPO).await.is_empty());
    world.once().expect_code(0);
    assert_eq!(refusal(&world.report())["reason"], "upstream-empty");
    assert_eq!(sorted_tags(&mirror).await, ["v1", "v2", "v3", "v4"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tag_sharing_its_manifest_with_a_staying_tag_is_blocked_on_distribution() {
    let world = Mirror::start();
    let (upstream, mirror) = (world.upstream.url(), world.mirror.url());
    let shared = small_image("shared", 1);
    push_image(&upstream, REPO, "old", &shared).await;
    push_image(&upstream, REPO, "current", &shared).await;
    push_image(&upstream, REPO, "other", &small_image("other", 2)).await;
    let prune = "        prune: {enabled: true}\n";
    world.write_config(&rule_config(prune));
    world.once().expect_code(0);
    // Upstream distribution cannot untag `old` alone either: the rule stops selecting
    // it, which is the same to the prune (a tag the rule no longer takes upstream).
    world.write_config(&rule_config(&format!("        tags: {{exclude: [\"old\"]}}\n{prune}")));
    let run = world.once();
    run.expect_code(0);
    let entries = pruned(&world.report());
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!((entries[0].0.as_str(), entries[0].1.as_str()), ("old", "prune-blocked"));
    let reason = entries[0].2["reason"].as_str().unwrap();
    assert!(
        reason.contains("by digest only") && reason.contains("tag current"),
        "{reason}"
    );
    assert!(run.stdout.contains("prune-blocked team/app:old"), "{}", run.stdout);
    assert_eq!(sorted_tags(&mirror).await, ["current", "old", "other"]);
    let (_, _, digest) = manifest(&mirror, REPO, "current").await.unwrap();
    assert_eq!(digest, shared.digest());
}

#[tokio::test(flavor = "multi_thread")]
async fn cosign_tags_follow_their_subject() {
    let world = Mirror::start();
    let (upstream, mirror) = (world.upstream.url(), world.mirror.url());
    let images = four_versions(&upstream).await;
    let key = CosignKey::generate();
    for image in &images[..2] {
        let signature = cosign_signature(&key, image.digest());
        push_image(&upstream, REPO, &cosign_tag(image.digest(), "sig"), &signature).await;
    }
    world.write_config(&rule_config("        prune: {enabled: true, max_fraction: 0.25}\n"));
    world.once().expect_code(0);
    let going = cosign_tag(images[0].digest(), "sig");
    let staying = cosign_tag(images[1].digest(), "sig");
    assert!(sorted_tags(&mirror).await.contains(&going));

    // v1 goes upstream; its signature tag is still listed there.
    delete_manifest(&upstream, REPO, images[0].digest()).await;
    world.once().expect_code(0);
    let entries = pruned(&world.report());
    let names: Vec<(&str, &str)> = entries.iter().map(|(t, o, _)| (t.as_str(), o.as_str())).collect();
    assert_eq!(
        names,
        [("v1", "pruned"), (going.as_str(), "pruned")],
        "one of 4 tags: signatures are not counted"
    );
    assert_eq!(entries[1].2["subject"], images[0].digest());
    let left = sorted_tags(&mirror).await;
    assert!(!left.contains(&going) && left.contains(&staying), "{left:?}");
    assert_closure(&mirror, REPO).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_destination_that_refuses_deletes_fails_its_prune_with_a_clear_line() {
    let world = Mirror::between(TestRegistry::start(), TestRegistry::builder().without_deletes().start());
    let images = mirror_four_versions(&world, "        prune: {enabled: true}\n").await;
    delete_manifest(&world.upstream.url(), REPO, images[0].digest()).await;
    let run = world.once();
    run.expect_code(1);
    assert!(
        run.stdout
            .contains("FAILED prune team/app: cannot delete: the registry refuses deletes (405 UNSUPPORTED"),
        "{}",
        run.stdout
    );
    assert_eq!(sorted_tags(&world.mirror.url()).await, ["v1", "v2", "v3", "v4"]);
}

/// Every blob file of a layout repository.
fn blob_files(layout: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(layout.join(REPO).join("blobs/sha256"))
        .unwrap()
        .map(|entry| format!("sha256:{}", entry.unwrap().file_name().into_string().unwrap()))
        .collect();
    names.sort();
    names
}

fn skopeo_reads(layout: &Path, tag: &str, into: &Path) {
    let output = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--quiet"])
        .arg(format!("oci:{}:{tag}", layout.join(REPO).display()))
        .arg(format!("dir:{}", into.display()))
        .output()
        .expect("skopeo must be installed");
    assert!(
        output.status.success(),
        "skopeo cannot read {tag}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_layout_destination_is_pruned_and_gc_removes_only_unreferenced_blobs() {
    let world = Export::start();
    let upstream = world.upstream.url();
    let images = four_versions(&upstream).await;
    let layout = world.layout();
    world.write_config(&export_config_with_syncs(&sync_of_repo(
        "disk",
        "        prune: {enabled: true}\n",
    )));
    world.once().expect_code(0);
    let before = blob_files(&layout);

    delete_manifest(&upstream, REPO, images[0].digest()).await;
    world.once().expect_code(0);
    assert_eq!(pruned(&world.report())[0].1, "pruned");
    let index = std::fs::read_to_string(layout.join(REPO).join("index.json")).unwrap();
    assert!(!index.contains(images[0].digest()) && index.contains(images[1].digest()));
    assert_eq!(blob_files(&layout), before, "a prune removes the tag, not the blobs");

    let layout_arg = layout.to_str().unwrap();
    let dry = ocisync(&["gc", "--layout", layout_arg, "--dry-run"]);
    dry.expect_code(0);
    assert!(dry.stdout.contains("gc: would remove 3 blobs"), "{}", dry.stdout);
    assert_eq!(blob_files(&layout), before);
    let gc = ocisync(&["gc", "--layout", layout_arg]);
    gc.expect_code(0);
    assert!(gc.stdout.contains("gc: removed 3 blobs"), "{}", gc.stdout);
    let after = blob_files(&layout);
    // v1's manifest, config and layer went; everything else stayed.
    let gone: Vec<&String> = before.iter().filter(|blob| !after.contains(blob)).collect();
    assert_eq!(gone.len(), 3);
    assert!(gone.iter().any(|blob| blob.as_str() == images[0].digest()));
    for version in ["v2", "v3", "v4"] {
        skopeo_reads(&layout, version, &world.dir().join(format!("read-{version}")));
    }
    let again = ocisync(&["gc", "--layout", layout_arg]);
    assert!(again.stdout.contains("gc: removed 0 blobs"), "{}", again.stdout);
}
