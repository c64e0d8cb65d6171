//! The engine against the in-memory store, which refuses parents before children.

use bytes::Bytes;
mod support;

use ocisync_engine::{
    Concurrency, ContentRule, CopyOptions, FailureKind, ImageReference, Outcome, RuleSourceKind, RuleSpec,
    SignaturePolicy, SkipReason, SourceSpec, SyncReport, TagPatterns,
};
use ocisync_oci::media_type::{DOCKER_SCHEMA1_SIGNED, OCI_INDEX, OCI_MANIFEST};
use ocisync_oci::{Descriptor, Digest, Manifest, MemoryStore, Reference, Store, Tag};
use support::{has_failures, outcome_of, repo, run_pass};

const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";

fn tag(name: &str) -> Tag {
    name.parse().unwrap()
}

/// Adds a blob to the source and returns its descriptor.
fn blob(store: &MemoryStore, repo_name: &str, media_type: &str, content: &str) -> Descriptor {
    let digest = Digest::sha256_of(content.as_bytes());
    store.insert_blob_unchecked(&repo(repo_name), &digest, Bytes::from(content.to_owned()));
    Descriptor::new(media_type, digest, content.len() as u64)
}

fn descriptor_json(descriptor: &Descriptor) -> String {
    serde_json::to_string(descriptor).unwrap()
}

/// An image manifest with a config and one layer, stored in the source.
fn image(store: &MemoryStore, repo_name: &str, label: &str) -> Manifest {
    let config = blob(store, repo_name, CONFIG, &format!("{{\"label\":\"{label}\"}}"));
    let layer = blob(store, repo_name, LAYER, &format!("layer of {label}"));
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[{}]}}"#,
        descriptor_json(&config),
        descriptor_json(&layer)
    );
    let manifest = Manifest::from_bytes(body, OCI_MANIFEST);
    store.insert_manifest_unchecked(&repo(repo_name), None, manifest.clone());
    manifest
}

fn index(store: &MemoryStore, repo_name: &str, children: &[&Manifest]) -> Manifest {
    let entries: Vec<String> = children
        .iter()
        .map(|child| descriptor_json(&child.descriptor()))
        .collect();
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        entries.join(",")
    );
    let manifest = Manifest::from_bytes(body, OCI_INDEX);
    store.insert_manifest_unchecked(&repo(repo_name), None, manifest.clone());
    manifest
}

fn tag_as(store: &MemoryStore, repo_name: &str, tag_name: &str, manifest: &Manifest) {
    store.insert_manifest_unchecked(&repo(repo_name), Some(&tag(tag_name)), manifest.clone());
}

async fn pass(source: &MemoryStore, destination: &MemoryStore) -> SyncReport {
    pass_with(source, destination, &CopyOptions::default()).await
}

async fn pass_with(source: &MemoryStore, destination: &MemoryStore, options: &CopyOptions) -> SyncReport {
    run_pass(source, destination, &[], options).await
}

async fn destination_digest(destination: &MemoryStore, repo_name: &str, tag_name: &str) -> Option<Digest> {
    destination
        .head_manifest(&repo(repo_name), &Reference::Tag(tag(tag_name)))
        .await
        .unwrap()
        .map(|d| d.digest)
}

#[tokio::test]
async fn index_is_copied_children_first_and_second_pass_writes_nothing() {
    let source = MemoryStore::new("source");
    let amd64 = image(&source, "library/app", "amd64");
    let arm64 = image(&source, "library/app", "arm64");
    let multi = index(&source, "library/app", &[&amd64, &arm64]);
    tag_as(&source, "library/app", "1.0", &multi);
    tag_as(&source, "library/app", "amd64-only", &amd64);
    let destination = MemoryStore::new("destination");

    let report = pass(&source, &destination).await;
    assert_eq!(outcome_of(&report, "library/app", "1.0"), Outcome::Copied);
    assert_eq!(outcome_of(&report, "library/app", "amd64-only"), Outcome::Copied);
    assert_eq!(
        destination_digest(&destination, "library/app", "1.0").await,
        Some(multi.digest.clone())
    );
    let stored = destination
        .manifest(&repo("library/app"), &Reference::Digest(multi.digest.clone()))
        .await
        .unwrap();
    assert_eq!(stored.bytes, multi.bytes, "manifest bytes are copied exactly");

    let writes = destination.writes();
    let report = pass(&source, &destination).await;
    assert_eq!(destination.writes(), writes, "second pass wrote to the destination");
    assert_eq!(
        outcome_of(&report, "library/app", "1.0"),
        Outcome::Skipped {
            reason: SkipReason::UpToDate
        }
    );
}

#[tokio::test]
async fn shared_blobs_cross_once_per_repository() {
    let source = MemoryStore::new("source");
    let first = image(&source, "library/app", "same");
    tag_as(&source, "library/app", "a", &first);
    tag_as(&source, "library/app", "b", &first);
    let destination = MemoryStore::new("destination");
    let report = pass(&source, &destination).await;
    let copied_blobs: usize = report.repositories[0].tags.iter().map(|t| t.work.blobs_copied).sum();
    assert_eq!(copied_blobs, 2, "config and layer once, although two tags use them");
}

#[tokio::test]
async fn blob_already_in_another_destination_repository_is_mounted() {
    let source = MemoryStore::new("source");
    let first = image(&source, "team/one", "shared");
    tag_as(&source, "team/one", "1", &first);
    let second = image(&source, "team/two", "shared");
    tag_as(&source, "team/two", "1", &second);
    let destination = MemoryStore::new("destination");
    let options = CopyOptions {
        concurrency: Concurrency {
            repositories: 1,
            ..Concurrency::default()
        },
        ..CopyOptions::default()
    };
    let report = pass_with(&source, &destination, &options).await;
    let two = &report
        .repositories
        .iter()
        .find(|r| r.source.as_str() == "team/two")
        .unwrap()
        .tags[0];
    assert_eq!(two.outcome, Outcome::Copied);
    assert_eq!(
        (two.work.blobs_mounted, two.work.blobs_copied, two.work.bytes),
        (2, 0, 0),
        "{two:?}"
    );
    assert_eq!(
        destination_digest(&destination, "team/two", "1").await,
        Some(second.digest)
    );
}

#[tokio::test]
async fn schema1_is_skipped_with_reason() {
    let source = MemoryStore::new("source");
    let legacy = Manifest::from_bytes(
        r#"{"schemaVersion":1,"name":"old","fsLayers":[]}"#,
        DOCKER_SCHEMA1_SIGNED,
    );
    tag_as(&source, "old/app", "v1", &legacy);
    let destination = MemoryStore::new("destination");
    let report = pass(&source, &destination).await;
    assert_eq!(
        outcome_of(&report, "old/app", "v1"),
        Outcome::Skipped {
            reason: SkipReason::Schema1Unsupported
        }
    );
    assert_eq!(destination.writes(), 0);
    assert!(!has_failures(&report));
}

#[tokio::test]
async fn malformed_manifest_fails_its_tag_only() {
    let source = MemoryStore::new("source");
    let broken = Manifest::from_bytes(
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
        OCI_MANIFEST,
    );
    tag_as(&source, "library/app", "broken", &broken);
    let good = image(&source, "library/app", "good");
    tag_as(&source, "library/app", "good", &good);
    let other = image(&source, "library/other", "other");
    tag_as(&source, "library/other", "1", &other);
    let destination = MemoryStore::new("destination");

    let report = pass(&source, &destination).await;
    let Outcome::Failed { kind, error } = outcome_of(&report, "library/app", "broken") else {
        panic!("malformed manifest should fail");
    };
    assert!(error.contains("malformed manifest"), "{error}");
    assert_eq!(kind, FailureKind::Manifest);
    assert!(destination_digest(&destination, "library/app", "broken")
        .await
        .is_none());
    assert_eq!(outcome_of(&report, "library/app", "good"), Outcome::Copied);
    assert_eq!(outcome_of(&report, "library/other", "1"), Outcome::Copied);
    assert!(has_failures(&report));
}

#[tokio::test]
async fn blob_with_wrong_content_fails_and_nothing_becomes_visible() {
    let source = MemoryStore::new("source");
    let manifest = image(&source, "library/app", "victim");
    // Replace the layer's bytes with different bytes of the same length.
    let layer_digest = Digest::sha256_of(b"layer of victim");
    source.insert_blob_unchecked(
        &repo("library/app"),
        &layer_digest,
        Bytes::from_static(b"LAYER OF VICTIM"),
    );
    tag_as(&source, "library/app", "1", &manifest);
    let destination = MemoryStore::new("destination");

    let report = pass(&source, &destination).await;
    let Outcome::Failed { kind, error } = outcome_of(&report, "library/app", "1") else {
        panic!("corrupt blob should fail the image");
    };
    assert!(error.contains("digest mismatch"), "{error}");
    assert_eq!(kind, FailureKind::Integrity);
    assert!(destination_digest(&destination, "library/app", "1").await.is_none());
    assert!(!destination.has_blob(&repo("library/app"), &layer_digest).await.unwrap());
}

#[tokio::test]
async fn empty_catalog_is_not_an_error() {
    let source = MemoryStore::new("source");
    let destination = MemoryStore::new("destination");
    let report = pass(&source, &destination).await;
    assert!(report.repositories.is_empty());
    assert!(report.error.is_none());
    assert!(!has_failures(&report));
}

#[tokio::test]
async fn a_raised_stop_signal_starts_no_new_image() {
    let source = MemoryStore::new("source");
    let first = image(&source, "library/app", "one");
    tag_as(&source, "library/app", "a", &first);
    let destination = MemoryStore::new("destination");
    let options = CopyOptions::default();
    options.stop.raise(ocisync_engine::StopCause::Shutdown);
    let report = pass_with(&source, &destination, &options).await;
    assert_eq!(destination.writes(), 0, "nothing written after the stop");
    assert!(report
        .repositories
        .iter()
        .flat_map(|r| &r.tags)
        .all(|t| t.outcome != Outcome::Copied));
    // Without the signal the same pass copies the tag.
    let report = pass(&source, &destination).await;
    assert_eq!(outcome_of(&report, "library/app", "a"), Outcome::Copied);
}

fn rule_of(source: SourceSpec, destination: Option<&str>) -> ContentRule {
    ContentRule::new(RuleSpec {
        source,
        tags: TagPatterns::default(),
        platforms: Vec::new(),
        strip_prefix: None,
        destination: destination.map(str::to_owned),
        signatures: SignaturePolicy::default(),
    })
    .unwrap()
}

#[tokio::test]
async fn images_rule_copies_a_tag_and_a_digest_and_nothing_else() {
    let source = MemoryStore::new("source");
    let wanted = image(&source, "library/alpine", "wanted");
    let pinned = image(&source, "library/alpine", "pinned");
    let other = image(&source, "library/alpine", "other");
    tag_as(&source, "library/alpine", "3.20", &wanted);
    tag_as(&source, "library/alpine", "3.19", &other);
    tag_as(&source, "library/alpine", "pinned-tag", &pinned);
    let named = image(&source, "library/nginx", "nginx");
    tag_as(&source, "library/nginx", "1.27", &named);
    let destination = MemoryStore::new("destination");
    let rules = [
        rule_of(
            SourceSpec::Images(vec![
                ImageReference {
                    repository: repo("library/alpine"),
                    reference: Reference::Tag(tag("3.20")),
                },
                ImageReference {
                    repository: repo("library/alpine"),
                    reference: Reference::Digest(pinned.digest.clone()),
                },
            ]),
            Some("hub"),
        ),
        rule_of(SourceSpec::Named(vec![repo("library/nginx")]), Some("hub")),
    ];
    let report = run_pass(&source, &destination, &rules, &CopyOptions::default()).await;
    let kinds: Vec<RuleSourceKind> = report.rules.iter().map(|rule| rule.source).collect();
    assert_eq!(kinds, [RuleSourceKind::Images, RuleSourceKind::Named]);
    assert_eq!(outcome_of(&report, "library/alpine", "3.20"), Outcome::Copied);
    assert_eq!(outcome_of(&report, "library/nginx", "1.27"), Outcome::Copied);
    let alpine = report
        .repositories
        .iter()
        .find(|r| r.source.as_str() == "library/alpine")
        .unwrap();
    assert_eq!(alpine.tags.len(), 2, "{alpine:?}");
    let by_digest = alpine.tags.iter().find(|t| t.tag.is_none()).unwrap();
    assert_eq!(by_digest.digest.as_ref(), Some(&pinned.digest));
    assert_eq!(by_digest.outcome, Outcome::Copied);
    // The digest is there by digest; no tag was set for it, and 3.19 was never named.
    let copied = destination
        .manifest(&repo("hub/library/alpine"), &Reference::Digest(pinned.digest.clone()))
        .await
        .unwrap();
    assert_eq!(copied.bytes, pinned.bytes);
    let mut tags = destination.tags(&repo("hub/library/alpine")).await.unwrap();
    tags.sort();
    assert_eq!(tags, [tag("3.20")]);
    assert_eq!(
        destination_digest(&destination, "hub/library/nginx", "1.27").await,
        Some(named.digest.clone())
    );

    let writes = destination.writes();
    let report = run_pass(&source, &destination, &rules, &CopyOptions::default()).await;
    assert_eq!(destination.writes(), writes, "second pass wrote to the destination");
    assert!(!report
        .repositories
        .iter()
        .flat_map(|r| &r.tags)
        .any(|t| t.outcome == Outcome::Copied));
}

#[tokio::test]
async fn a_pull_quota_leaves_tags_skipped_for_a_later_pass_and_only_a_used_up_one_fails() {
    let source = MemoryStore::new("source");
    for index in 0..4 {
        let manifest = image(&source, "library/app", &format!("v{index}"));
        tag_as(&source, "library/app", &format!("v{index}"), &manifest);
    }
    for (exhausted, reason) in [(false, SkipReason::RateLimitReserve), (true, SkipReason::RateLimited)] {
        let destination = MemoryStore::new("destination");
        let limited = support::QuotaStore::new(&source, 1, exhausted);
        let report = run_pass(&limited, &destination, &[], &CopyOptions::default()).await;
        let tags = &report.repositories[0].tags;
        let copied = tags.iter().filter(|t| t.outcome == Outcome::Copied).count();
        let held: Vec<_> = tags
            .iter()
            .filter(|t| t.outcome == Outcome::Skipped { reason })
            .collect();
        assert_eq!((copied, held.len()), (1, 3), "{report:#?}");
        assert!(held.iter().all(|t| t.detail.as_deref().unwrap().contains("pull quota")));
        let whole = ocisync_engine::Report { syncs: vec![report] };
        assert_eq!(whole.has_failures(), exhausted, "only a used-up quota fails the pass");
    }
}
