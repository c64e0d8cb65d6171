//! Prune against the in-memory store: what goes, what stays, and every safeguard.

#[allow(dead_code, reason = "each test binary uses a part of the shared helpers")]
mod support;

use bytes::Bytes;
use ocisync_engine::{
    ContentRule, CopyOptions, PruneOutcome, PruneRefusal, PruneReport, PruneSpec, Report, RuleSpec, SignaturePolicy,
    SourceSpec, SyncReport, TagPatterns,
};
use ocisync_oci::media_type::OCI_MANIFEST;
use ocisync_oci::{CosignTagKind, Descriptor, Digest, Manifest, MemoryDeletes, MemoryStore, Store, Tag};
use support::{has_failures, repo, run_pass};

const REPO: &str = "team/app";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";

fn tag(name: &str) -> Tag {
    name.parse().unwrap()
}

fn blob(store: &MemoryStore, media_type: &str, content: &str) -> Descriptor {
    let digest = Digest::sha256_of(content.as_bytes());
    store.insert_blob_unchecked(&repo(REPO), &digest, Bytes::from(content.to_owned()));
    Descriptor::new(media_type, digest, content.len() as u64)
}

/// An image with a config and one layer, tagged `tags` in the source.
fn image(store: &MemoryStore, label: &str, tags: &[&str]) -> Manifest {
    let config = blob(store, CONFIG, &format!("{{\"label\":\"{label}\"}}"));
    let layer = blob(store, LAYER, &format!("layer of {label}"));
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[{}]}}"#,
        serde_json::to_string(&config).unwrap(),
        serde_json::to_string(&layer).unwrap()
    );
    let manifest = Manifest::from_bytes(body, OCI_MANIFEST);
    store.insert_manifest_unchecked(&repo(REPO), None, manifest.clone());
    for name in tags {
        store.insert_manifest_unchecked(&repo(REPO), Some(&tag(name)), manifest.clone());
    }
    manifest
}

fn prune_rule(prune: PruneSpec) -> ContentRule {
    prune_rule_with_backup(prune, None)
}

/// A pruning rule that also backs up moved tags under `backup`.
fn prune_rule_with_backup(prune: PruneSpec, backup: Option<&str>) -> ContentRule {
    ContentRule::new(RuleSpec {
        source: SourceSpec::Named(vec![repo(REPO)]),
        tags: TagPatterns::default(),
        platforms: Vec::new(),
        strip_prefix: None,
        destination: None,
        signatures: SignaturePolicy::default(),
        prune: Some(prune),
        backup: backup.map(str::to_owned),
    })
    .unwrap()
}

fn policy(max_fraction: f64, keep: &[&str]) -> PruneSpec {
    PruneSpec {
        enabled: true,
        max_fraction: Some(max_fraction),
        keep: keep.iter().map(|pattern| (*pattern).to_owned()).collect(),
    }
}

async fn pass(source: &MemoryStore, destination: &MemoryStore, rule: &ContentRule, dry_run: bool) -> SyncReport {
    let options = CopyOptions {
        dry_run,
        ..CopyOptions::default()
    };
    run_pass(source, destination, std::slice::from_ref(rule), &options).await
}

fn prune_of(report: &SyncReport) -> &PruneReport {
    report.repositories[0].prune.as_ref().expect("the rule prunes")
}

/// (tag, outcome) of each tag the prune touched.
fn touched(report: &SyncReport) -> Vec<(String, PruneOutcome)> {
    let prune = prune_of(report);
    prune
        .tags
        .iter()
        .map(|pruned| (pruned.tag.to_string(), pruned.outcome.clone()))
        .collect()
}

async fn destination_tags(destination: &MemoryStore) -> Vec<String> {
    let tags = destination.tags(&repo(REPO)).await.unwrap();
    tags.iter().map(ToString::to_string).collect()
}

async fn untag_upstream(source: &MemoryStore, names: &[&str]) {
    for name in names {
        source.delete_tag(&repo(REPO), &tag(name)).await.unwrap();
    }
}

/// A source with `v1`…`v4`, mirrored once by `rule` into `destination`.
async fn mirrored(destination: &MemoryStore, rule: &ContentRule) -> (MemoryStore, Vec<Manifest>) {
    let source = MemoryStore::new("source");
    let images: Vec<Manifest> = (1..=4)
        .map(|n| image(&source, &format!("v{n}"), &[&format!("v{n}")]))
        .collect();
    let first = pass(&source, destination, rule, false).await;
    assert!(prune_of(&first).tags.is_empty(), "nothing to prune yet: {first:#?}");
    (source, images)
}

#[tokio::test]
async fn tags_upstream_removed_are_deleted_with_their_digests() {
    let destination = MemoryStore::new("destination");
    let rule = prune_rule(policy(0.5, &[]));
    let (source, images) = mirrored(&destination, &rule).await;
    untag_upstream(&source, &["v1", "v2"]).await;
    let report = pass(&source, &destination, &rule, false).await;
    assert_eq!(
        touched(&report),
        [("v1".into(), PruneOutcome::Pruned), ("v2".into(), PruneOutcome::Pruned)]
    );
    assert_eq!(prune_of(&report).tags[0].digest, images[0].digest);
    assert_eq!(destination_tags(&destination).await, ["v3", "v4"]);
    let totals = Report {
        syncs: vec![report.clone()],
    }
    .totals();
    assert_eq!(totals.prune.tags_pruned, 2);
    assert!(!has_failures(&report));
    // Nothing left to prune: a second pass deletes nothing.
    let writes = destination.writes();
    let again = pass(&source, &destination, &rule, false).await;
    assert!(prune_of(&again).tags.is_empty());
    assert_eq!(destination.writes(), writes);
}

#[tokio::test]
async fn a_backup_the_rule_made_is_never_pruned() {
    let destination = MemoryStore::new("destination");
    let rule = prune_rule_with_backup(policy(1.0, &[]), Some("{tag}-{date}"));
    let (source, images) = mirrored(&destination, &rule).await;
    // `latest` appears upstream at v1's image, is mirrored, then moves to v2's: the
    // destination's old `latest` gets its backup name before the tag moves.
    source.insert_manifest_unchecked(&repo(REPO), Some(&tag("latest")), images[0].clone());
    pass(&source, &destination, &rule, false).await;
    source.insert_manifest_unchecked(&repo(REPO), Some(&tag("latest")), images[1].clone());
    let moved = pass(&source, &destination, &rule, false).await;
    let latest = moved.repositories[0]
        .tags
        .iter()
        .find(|line| line.tag == Some(tag("latest")))
        .unwrap();
    let backup = latest.lifecycle.backup.clone().expect("the move made a backup");
    assert_eq!(backup.digest, images[0].digest);
    // Upstream lacks the backup name, as it lacks v4 once v4 goes: only v4 is pruned.
    untag_upstream(&source, &["v4"]).await;
    let report = pass(&source, &destination, &rule, false).await;
    assert_eq!(touched(&report), [("v4".into(), PruneOutcome::Pruned)]);
    let left = destination_tags(&destination).await;
    assert!(left.contains(&backup.name.to_string()), "{left:?}");
    assert!(!left.contains(&"v4".to_owned()), "{left:?}");
}

#[tokio::test]
async fn an_empty_upstream_list_deletes_nothing() {
    let destination = MemoryStore::new("destination");
    let rule = prune_rule(policy(1.0, &[]));
    let (source, _) = mirrored(&destination, &rule).await;
    untag_upstream(&source, &["v1", "v2", "v3", "v4"]).await;
    let report = pass(&source, &destination, &rule, false).await;
    assert_eq!(prune_of(&report).refused, Some(PruneRefusal::UpstreamEmpty));
    assert_eq!(destination_tags(&destination).await, ["v1", "v2", "v3", "v4"]);
}

#[tokio::test]
async fn a_failed_upstream_list_deletes_nothing() {
    let destination = MemoryStore::new("destination");
    let rule = prune_rule(policy(1.0, &[]));
    let (_, _) = mirrored(&destination, &rule).await;
    // A source that does not know the repository: its tag list fails.
    let report = pass(&MemoryStore::new("empty source"), &destination, &rule, false).await;
    assert_eq!(prune_of(&report).refused, Some(PruneRefusal::UpstreamListFailed));
    assert_eq!(destination_tags(&destination).await, ["v1", "v2", "v3", "v4"]);
}

#[tokio::test]
async fn more_than_max_fraction_refuses_the_whole_repository() {
    let destination = MemoryStore::new("destination");
    let rule = prune_rule(policy(0.5, &[]));
    let (source, _) = mirrored(&destination, &rule).await;
    untag_upstream(&source, &["v1", "v2", "v3"]).await;
    let writes = destination.writes();
    let report = pass(&source, &destination, &rule, false).await;
    assert_eq!(
        prune_of(&report).refused,
        Some(PruneRefusal::OverMaxFraction {
            would_prune: vec![tag("v1"), tag("v2"), tag("v3")],
            tags: 4,
            max_fraction: 0.5
        })
    );
    assert_eq!(destination.writes(), writes, "nothing deleted");
    assert_eq!(destination_tags(&destination).await, ["v1", "v2", "v3", "v4"]);
}

#[tokio::test]
async fn keep_tags_are_never_pruned() {
    let destination = MemoryStore::new("destination");
    let rule = prune_rule(policy(1.0, &["v[12]"]));
    let (source, _) = mirrored(&destination, &rule).await;
    untag_upstream(&source, &["v1", "v2", "v3"]).await;
    let report = pass(&source, &destination, &rule, false).await;
    assert_eq!(touched(&report), [("v3".into(), PruneOutcome::Pruned)]);
    assert_eq!(destination_tags(&destination).await, ["v1", "v2", "v4"]);
}

#[tokio::test]
async fn check_lists_what_would_go_and_deletes_nothing() {
    let destination = MemoryStore::new("destination");
    let rule = prune_rule(policy(0.5, &[]));
    let (source, _) = mirrored(&destination, &rule).await;
    untag_upstream(&source, &["v2"]).await;
    let writes = destination.writes();
    let report = pass(&source, &destination, &rule, true).await;
    assert_eq!(
        touched(&report),
        [("v2".into(), PruneOutcome::WouldPrune { note: None })]
    );
    assert_eq!(destination.writes(), writes);
    assert_eq!(destination_tags(&destination).await, ["v1", "v2", "v3", "v4"]);
    // `once` then deletes exactly what `check` listed.
    let report = pass(&source, &destination, &rule, false).await;
    assert_eq!(touched(&report), [("v2".into(), PruneOutcome::Pruned)]);
}

#[tokio::test]
async fn a_failed_copy_leaves_the_repository_unpruned() {
    let destination = MemoryStore::new("destination");
    let rule = prune_rule(policy(1.0, &[]));
    let (source, _) = mirrored(&destination, &rule).await;
    untag_upstream(&source, &["v1"]).await;
    // A new upstream tag whose layer is missing: its copy fails.
    let missing = Descriptor::new(LAYER, Digest::sha256_of(b"nowhere"), 7);
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[]}}"#,
        serde_json::to_string(&missing).unwrap()
    );
    let broken = Manifest::from_bytes(body, OCI_MANIFEST);
    source.insert_manifest_unchecked(&repo(REPO), Some(&tag("v5")), broken);
    let report = pass(&source, &destination, &rule, false).await;
    assert_eq!(
        prune_of(&report).refused,
        Some(PruneRefusal::CopyIncomplete { unfinished: 1 })
    );
    assert!(destination_tags(&destination).await.contains(&"v1".to_owned()));
}

#[tokio::test]
async fn a_digest_only_registry_blocks_a_tag_whose_manifest_a_staying_tag_shares() {
    let destination = MemoryStore::with_deletes("distribution 2.8", MemoryDeletes::ManifestsOnly);
    let source = MemoryStore::new("source");
    let shared = image(&source, "shared", &["old", "current"]);
    image(&source, "alone", &["gone"]);
    image(&source, "other", &["stays"]);
    let rule = prune_rule(policy(0.5, &[]));
    pass(&source, &destination, &rule, false).await;
    untag_upstream(&source, &["old", "gone"]).await;
    let report = pass(&source, &destination, &rule, false).await;
    let outcomes = touched(&report);
    assert_eq!(outcomes[0].0, "gone");
    assert_eq!(
        outcomes[0].1,
        PruneOutcome::Pruned,
        "deleted by digest: no other tag names it"
    );
    assert_eq!(outcomes[1].0, "old");
    let PruneOutcome::PruneBlocked { reason } = &outcomes[1].1 else {
        panic!("old is blocked: {outcomes:?}")
    };
    assert!(
        reason.contains("by digest only") && reason.contains("tag current"),
        "{reason}"
    );
    assert!(!has_failures(&report), "a blocked tag is reported, not a failure");
    assert_eq!(destination_tags(&destination).await, ["current", "old", "stays"]);
    let current = destination
        .head_manifest(&repo(REPO), &ocisync_oci::Reference::Tag(tag("current")))
        .await
        .unwrap();
    assert_eq!(current.unwrap().digest, shared.digest);
}

#[tokio::test]
async fn a_destination_that_refuses_deletes_fails_the_repository_prune() {
    let destination = MemoryStore::with_deletes("read-only", MemoryDeletes::Disabled);
    let rule = prune_rule(policy(0.5, &[]));
    let (source, _) = mirrored(&destination, &rule).await;
    untag_upstream(&source, &["v1"]).await;
    let report = pass(&source, &destination, &rule, false).await;
    let prune = prune_of(&report);
    assert!(prune.error.as_deref().unwrap().contains("disabled"), "{prune:?}");
    assert!(matches!(prune.tags[0].outcome, PruneOutcome::Failed { .. }));
    assert!(has_failures(&report));
    assert_eq!(destination_tags(&destination).await, ["v1", "v2", "v3", "v4"]);
}

/// A cosign signature of `subject`, tagged `sha256-<hex>.sig` in the source.
fn sign(store: &MemoryStore, subject: &Manifest) -> Tag {
    let signature = image(store, &format!("signature of {}", subject.digest), &[]);
    let name = ocisync_oci::cosign_tag(&subject.digest, CosignTagKind::Signature).unwrap();
    store.insert_manifest_unchecked(&repo(REPO), Some(&name), signature);
    name
}

#[tokio::test]
async fn cosign_tags_follow_their_subject_and_are_not_counted() {
    let destination = MemoryStore::new("destination");
    let source = MemoryStore::new("source");
    let going = image(&source, "going", &["going"]);
    let shared = image(&source, "shared", &["shared-old", "shared-new"]);
    let staying = image(&source, "staying", &["staying"]);
    let going_signature = sign(&source, &going);
    let shared_signature = sign(&source, &shared);
    let staying_signature = sign(&source, &staying);
    // Two of four ordinary tags go: exactly max_fraction, though with the three
    // signatures five of seven tags would.
    let rule = prune_rule(policy(0.5, &[]));
    pass(&source, &destination, &rule, false).await;
    assert_eq!(destination_tags(&destination).await.len(), 7);
    // Upstream drops two tags; the signature tags stay listed there.
    untag_upstream(&source, &["going", "shared-old"]).await;
    let report = pass(&source, &destination, &rule, false).await;
    assert_eq!(
        touched(&report),
        [
            ("going".into(), PruneOutcome::Pruned),
            ("shared-old".into(), PruneOutcome::Pruned),
            (going_signature.to_string(), PruneOutcome::Pruned),
        ]
    );
    assert_eq!(prune_of(&report).tags[2].subject.as_ref(), Some(&going.digest));
    let left = destination_tags(&destination).await;
    assert!(left.contains(&shared_signature.to_string()), "its image keeps a tag");
    assert!(left.contains(&staying_signature.to_string()));
    assert!(!left.contains(&going_signature.to_string()));
}
