//! A rule's `prune` end to end, between real distribution 2.8 registries (which delete
//! manifests by digest only) and into a layout directory, then `ocisync gc`.

use std::path::{Path, PathBuf};
use std::process::Command;

use ocisync_testkit::signing::{cosign_signature, cosign_tag};
use ocisync_testkit::{
    assert_closure, delete_manifest, image, layer, manifest, push_image, tags, CosignKey, Format, Image, TestRegistry,
};

use crate::support::{config_with_syncs, ocisync, read_json, Run};

const REPO: &str = "team/app";

fn small(label: &str, seed: u64) -> Image {
    image(
        Format::Oci,
        ("linux", "amd64"),
        vec![layer(Format::Oci, seed, 256)],
        label,
    )
}

/// `v1`…`v4`, one image each, pushed to `url`.
async fn four_versions(url: &str) -> Vec<Image> {
    let mut images = Vec::new();
    for n in 1..=4u64 {
        let version = small(&format!("v{n}"), n);
        push_image(url, REPO, &format!("v{n}"), &version).await;
        images.push(version);
    }
    images
}

/// A config whose one sync takes `team/app` with `rule` lines (indented 8) under it.
fn config(dir: &Path, upstream: &str, mirror: &str, rule: &str) -> PathBuf {
    let syncs = format!("  - from: upstream\n    to: mirror\n    content:\n      - repositories: [{REPO}]\n{rule}");
    let text = config_with_syncs(&syncs)
        .replace("{upstream}", upstream)
        .replace("{mirror}", mirror);
    let path = dir.join("ocisync.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn pass(command: &str, config: &Path, report: &Path) -> Run {
    ocisync(&[
        command,
        "--config",
        config.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ])
}

/// The prune entries of the report's one repository: (tag, outcome, whole entry).
fn pruned(report: &Path) -> Vec<(String, String, serde_json::Value)> {
    let report = read_json(report);
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

fn refusal(report: &Path) -> serde_json::Value {
    read_json(report)["syncs"][0]["repositories"][0]["prune"]["refused"].clone()
}

async fn sorted_tags(url: &str) -> Vec<String> {
    let mut names = tags(url, REPO).await;
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_removed_upstream_are_deleted_at_the_destination_and_check_only_lists_them() {
    let upstream = TestRegistry::start();
    let mirror = TestRegistry::start();
    let images = four_versions(&upstream.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &upstream.url(),
        &mirror.url(),
        "        prune: {enabled: true, max_fraction: 0.5, keep: [\"v2\"]}\n",
    );
    let report = dir.path().join("report.json");
    pass("once", &config, &report).expect_code(0);
    assert_eq!(sorted_tags(&mirror.url()).await, ["v1", "v2", "v3", "v4"]);

    delete_manifest(&upstream.url(), REPO, images[0].digest()).await;
    delete_manifest(&upstream.url(), REPO, images[1].digest()).await;
    // check: lists v1 with its digest, deletes nothing; v2 is kept.
    let plan = pass("check", &config, &report);
    plan.expect_code(0);
    let line = format!("prune       v1 ({})", images[0].digest());
    assert!(plan.stdout.contains(&line), "{}", plan.stdout);
    assert!(!plan.stdout.contains("prune       v2"), "{}", plan.stdout);
    assert_eq!(pruned(&report).len(), 1);
    assert_eq!(pruned(&report)[0].1, "would-prune");
    assert_eq!(sorted_tags(&mirror.url()).await, ["v1", "v2", "v3", "v4"]);

    // once: deletes v1 (by digest: distribution 2.8 does not delete a tag alone).
    let run = pass("once", &config, &report);
    run.expect_code(0);
    let entries = pruned(&report);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!((entries[0].0.as_str(), entries[0].1.as_str()), ("v1", "pruned"));
    assert_eq!(entries[0].2["digest"], images[0].digest());
    assert_eq!(read_json(&report)["totals"]["prune"]["tags_pruned"], 1);
    assert!(run.stdout.contains("prune: 1 tags deleted"), "{}", run.stdout);
    assert_eq!(sorted_tags(&mirror.url()).await, ["v2", "v3", "v4"]);
    assert!(manifest(&mirror.url(), REPO, images[0].digest()).await.is_none());
    assert_closure(&mirror.url(), REPO).await;
    // Nothing left to do.
    pass("once", &config, &report).expect_code(0);
    assert!(pruned(&report).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prune_over_max_fraction_or_from_an_empty_upstream_deletes_nothing() {
    let upstream = TestRegistry::start();
    let mirror = TestRegistry::start();
    let images = four_versions(&upstream.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &upstream.url(),
        &mirror.url(),
        "        prune: {enabled: true, max_fraction: 0.5}\n",
    );
    let report = dir.path().join("report.json");
    pass("once", &config, &report).expect_code(0);

    for image in &images[..3] {
        delete_manifest(&upstream.url(), REPO, image.digest()).await;
    }
    let run = pass("once", &config, &report);
    run.expect_code(0);
    let refused = refusal(&report);
    assert_eq!(refused["reason"], "over-max-fraction", "{refused}");
    assert_eq!(refused["would_prune"].as_array().unwrap().len(), 3);
    assert!(
        run.stdout
            .contains("prune refused team/app (over-max-fraction): would delete 3 of 4 tags"),
        "{}",
        run.stdout
    );
    assert_eq!(sorted_tags(&mirror.url()).await, ["v1", "v2", "v3", "v4"]);

    delete_manifest(&upstream.url(), REPO, images[3].digest()).await;
    assert!(tags(&upstream.url(), REPO).await.is_empty());
    pass("once", &config, &report).expect_code(0);
    assert_eq!(refusal(&report)["reason"], "upstream-empty");
    assert_eq!(sorted_tags(&mirror.url()).await, ["v1", "v2", "v3", "v4"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tag_sharing_its_manifest_with_a_staying_tag_is_blocked_on_distribution() {
    let upstream = TestRegistry::start();
    let mirror = TestRegistry::start();
    let shared = small("shared", 1);
    push_image(&upstream.url(), REPO, "old", &shared).await;
    push_image(&upstream.url(), REPO, "current", &shared).await;
    push_image(&upstream.url(), REPO, "other", &small("other", 2)).await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let prune = "        prune: {enabled: true}\n";
    let config_all = config(dir.path(), &upstream.url(), &mirror.url(), prune);
    pass("once", &config_all, &report).expect_code(0);
    // Upstream distribution cannot untag `old` alone either: the rule stops selecting
    // it, which is the same to the prune (a tag the rule no longer takes upstream).
    let excluding = format!("        tags: {{exclude: [\"old\"]}}\n{prune}");
    let config = config(dir.path(), &upstream.url(), &mirror.url(), &excluding);
    let run = pass("once", &config, &report);
    run.expect_code(0);
    let entries = pruned(&report);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!((entries[0].0.as_str(), entries[0].1.as_str()), ("old", "prune-blocked"));
    let reason = entries[0].2["reason"].as_str().unwrap();
    assert!(
        reason.contains("by digest only") && reason.contains("tag current"),
        "{reason}"
    );
    assert!(run.stdout.contains("prune-blocked team/app:old"), "{}", run.stdout);
    assert_eq!(sorted_tags(&mirror.url()).await, ["current", "old", "other"]);
    let (_, _, digest) = manifest(&mirror.url(), REPO, "current").await.unwrap();
    assert_eq!(digest, shared.digest());
}

#[tokio::test(flavor = "multi_thread")]
async fn cosign_tags_follow_their_subject() {
    let upstream = TestRegistry::start();
    let mirror = TestRegistry::start();
    let images = four_versions(&upstream.url()).await;
    let key = CosignKey::generate();
    for image in &images[..2] {
        let signature = cosign_signature(&key, image.digest());
        push_image(&upstream.url(), REPO, &cosign_tag(image.digest(), "sig"), &signature).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &upstream.url(),
        &mirror.url(),
        "        prune: {enabled: true, max_fraction: 0.25}\n",
    );
    let report = dir.path().join("report.json");
    pass("once", &config, &report).expect_code(0);
    let going = cosign_tag(images[0].digest(), "sig");
    let staying = cosign_tag(images[1].digest(), "sig");
    assert!(sorted_tags(&mirror.url()).await.contains(&going));

    // v1 goes upstream; its signature tag is still listed there.
    delete_manifest(&upstream.url(), REPO, images[0].digest()).await;
    pass("once", &config, &report).expect_code(0);
    let entries = pruned(&report);
    let names: Vec<(&str, &str)> = entries.iter().map(|(t, o, _)| (t.as_str(), o.as_str())).collect();
    assert_eq!(
        names,
        [("v1", "pruned"), (going.as_str(), "pruned")],
        "one of 4 tags: signatures are not counted"
    );
    assert_eq!(entries[1].2["subject"], images[0].digest());
    let left = sorted_tags(&mirror.url()).await;
    assert!(!left.contains(&going) && left.contains(&staying), "{left:?}");
    assert_closure(&mirror.url(), REPO).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_destination_that_refuses_deletes_fails_its_prune_with_a_clear_line() {
    let upstream = TestRegistry::start();
    let mirror = TestRegistry::builder().without_deletes().start();
    let images = four_versions(&upstream.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &upstream.url(),
        &mirror.url(),
        "        prune: {enabled: true}\n",
    );
    let report = dir.path().join("report.json");
    pass("once", &config, &report).expect_code(0);
    delete_manifest(&upstream.url(), REPO, images[0].digest()).await;
    let run = pass("once", &config, &report);
    run.expect_code(1);
    assert!(
        run.stdout
            .contains("FAILED prune team/app: cannot delete: the registry refuses deletes (405 UNSUPPORTED"),
        "{}",
        run.stdout
    );
    assert_eq!(sorted_tags(&mirror.url()).await, ["v1", "v2", "v3", "v4"]);
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
    let upstream = TestRegistry::start();
    let images = four_versions(&upstream.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("export");
    let syncs = format!(
        "  - from: upstream\n    to: disk\n    content:\n      - repositories: [{REPO}]\n        prune: {{enabled: true}}\n"
    );
    let config = dir.path().join("ocisync.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\nregistries:\n  upstream:\n    urls: [\"{}\"]\n  disk:\n    layout: export\nsyncs:\n{syncs}",
            upstream.url()
        ),
    )
    .unwrap();
    let report = dir.path().join("report.json");
    pass("once", &config, &report).expect_code(0);
    let before = blob_files(&layout);

    delete_manifest(&upstream.url(), REPO, images[0].digest()).await;
    pass("once", &config, &report).expect_code(0);
    assert_eq!(pruned(&report)[0].1, "pruned");
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
        skopeo_reads(&layout, version, &dir.path().join(format!("read-{version}")));
    }
    let again = ocisync(&["gc", "--layout", layout_arg]);
    assert!(again.stdout.contains("gc: removed 0 blobs"), "{}", again.stdout);
}
