//! Limits on a pass: a stop signal that ends it (a deadline or a shutdown), and sizes
//! that manifests claim, which may be anything.

#[allow(dead_code, reason = "each test binary uses a part of the shared helpers")]
mod support;

use bytes::Bytes;
use ocisync_engine::{Concurrency, CopyOptions, Outcome, Report, SkipReason, StopCause, SyncReport, TagReport};
use ocisync_oci::media_type::{OCI_INDEX, OCI_MANIFEST};
use ocisync_oci::{Descriptor, Digest, Manifest, MemoryStore, Reference, RepoName, Result, Store, Tag};
use support::{has_failures, outcome_of, repo, run_pass, Fault, FaultyStore};
use tokio::sync::Notify;

const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// What two layers of 2^63 bytes each add up to, were it not for saturation: 2^64 + 0,
/// which wrapped to the size of the config alone.
const HUGE: u64 = 1 << 63;

fn tag(name: &str) -> Tag {
    name.parse().unwrap()
}

fn stored_blob(store: &MemoryStore, repo_name: &str, media_type: &str, content: &str) -> Descriptor {
    let digest = Digest::sha256_of(content.as_bytes());
    store.insert_blob_unchecked(&repo(repo_name), &digest, Bytes::from(content.to_owned()));
    Descriptor::new(media_type, digest, content.len() as u64)
}

/// An image manifest with a stored config and `layers` (stored or not), in the source.
fn image_with(store: &MemoryStore, repo_name: &str, label: &str, layers: &[Descriptor]) -> Manifest {
    let config = stored_blob(store, repo_name, CONFIG, &format!("{{\"label\":\"{label}\"}}"));
    let layers: Vec<String> = layers.iter().map(|l| serde_json::to_string(l).unwrap()).collect();
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[{}]}}"#,
        serde_json::to_string(&config).unwrap(),
        layers.join(",")
    );
    let manifest = Manifest::from_bytes(body, OCI_MANIFEST);
    store.insert_manifest_unchecked(&repo(repo_name), None, manifest.clone());
    manifest
}

fn small_image(store: &MemoryStore, repo_name: &str, label: &str) -> Manifest {
    let layer = stored_blob(store, repo_name, LAYER, &format!("layer of {label}"));
    image_with(store, repo_name, label, &[layer])
}

/// An image whose two layers claim 2^63 bytes each; their bytes exist nowhere.
fn huge_image(store: &MemoryStore, repo_name: &str) -> (Manifest, Digest) {
    let first = Descriptor::new(LAYER, Digest::sha256_of(b"huge one"), HUGE);
    let second = Descriptor::new(LAYER, Digest::sha256_of(b"huge two"), HUGE);
    let manifest = image_with(store, repo_name, "huge", &[first.clone(), second]);
    (manifest, first.digest)
}

fn tag_as(store: &MemoryStore, repo_name: &str, tag_name: &str, manifest: &Manifest) {
    store.insert_manifest_unchecked(&repo(repo_name), Some(&tag(tag_name)), manifest.clone());
}

fn tag_report<'a>(report: &'a SyncReport, repo_name: &str, tag_name: &str) -> &'a TagReport {
    report
        .repositories
        .iter()
        .filter(|r| r.source.as_str() == repo_name)
        .flat_map(|r| &r.tags)
        .find(|t| t.tag.as_ref().map(Tag::as_str) == Some(tag_name))
        .unwrap_or_else(|| panic!("{repo_name}:{tag_name} not in {report:#?}"))
}

fn skipped(reason: SkipReason) -> Outcome {
    Outcome::Skipped { reason }
}

#[tokio::test]
async fn declared_sizes_that_would_wrap_saturate_in_a_dry_run() {
    let source = MemoryStore::new("source");
    let (huge, _) = huge_image(&source, "library/huge");
    tag_as(&source, "library/huge", "1", &huge);
    let destination = MemoryStore::new("destination");
    let options = CopyOptions {
        dry_run: true,
        ..CopyOptions::default()
    };
    let report = run_pass(&source, &destination, &[], &options).await;
    let line = tag_report(&report, "library/huge", "1");
    assert_eq!(line.outcome, Outcome::WouldCopy);
    assert_eq!(
        line.work.bytes,
        u64::MAX,
        "2 × 2^63 + the config is more than a u64 holds"
    );
    let totals = Report { syncs: vec![report] }.totals();
    assert_eq!(totals.work.bytes, u64::MAX);
    assert_eq!(totals.tags_would_copy, 1);
}

#[tokio::test]
async fn an_image_with_a_blob_over_max_blob_size_is_skipped_before_anything_moves() {
    let source = MemoryStore::new("source");
    let (huge, huge_layer) = huge_image(&source, "library/huge");
    tag_as(&source, "library/huge", "1", &huge);
    let small = small_image(&source, "library/small", "small");
    tag_as(&source, "library/small", "1", &small);
    // In an index, the small child comes first: it must not be copied either.
    let multi_small = small_image(&source, "library/multi", "multi-amd64");
    let (multi_huge, _) = huge_image(&source, "library/multi");
    let entries = [multi_small.descriptor(), multi_huge.descriptor()]
        .iter()
        .map(|d| serde_json::to_string(d).unwrap())
        .collect::<Vec<_>>()
        .join(",");
    let index = Manifest::from_bytes(
        format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{entries}]}}"#),
        OCI_INDEX,
    );
    source.insert_manifest_unchecked(&repo("library/multi"), Some(&tag("1")), index);
    let limit = 2 << 30;

    for dry_run in [true, false] {
        let destination = MemoryStore::new("destination");
        let options = CopyOptions {
            dry_run,
            max_blob_size: Some(limit),
            ..CopyOptions::default()
        };
        let report = run_pass(&source, &destination, &[], &options).await;
        let line = tag_report(&report, "library/huge", "1");
        assert_eq!(line.outcome, skipped(SkipReason::BlobTooLarge), "dry run: {dry_run}");
        let detail = line.detail.as_deref().unwrap();
        assert!(
            detail.contains(&huge_layer.to_string()) && detail.contains(&HUGE.to_string()),
            "{detail}"
        );
        assert_eq!(line.work.bytes, 0);
        assert_eq!(
            outcome_of(&report, "library/multi", "1"),
            skipped(SkipReason::BlobTooLarge)
        );
        let copied = if dry_run { Outcome::WouldCopy } else { Outcome::Copied };
        assert_eq!(outcome_of(&report, "library/small", "1"), copied);
        assert!(!has_failures(&report), "a size limit is a choice, not a failure");
        let multi = repo("library/multi");
        let small_child_layer = Digest::sha256_of(b"layer of multi-amd64");
        assert!(
            !destination.has_blob(&multi, &small_child_layer).await.unwrap(),
            "nothing of the skipped index, not even its small child's layer"
        );
        let child = Reference::Digest(multi_small.digest.clone());
        assert!(destination.head_manifest(&multi, &child).await.unwrap().is_none());
        if dry_run {
            assert_eq!(destination.writes(), 0);
        }
    }
}

/// A source whose blob reads never answer: a copy under way stays under way.
struct HangingBlobs {
    blob_read: Notify,
}

impl Fault for HangingBlobs {
    async fn blob(&self, _repo: &RepoName, _descriptor: &Descriptor) -> Result<()> {
        self.blob_read.notify_one();
        std::future::pending().await
    }
}

/// Two tags, one at a time: the first hangs on its blobs, then the pass is stopped
/// for `cause` and abandoned.
async fn pass_stopped_mid_copy(cause: StopCause) -> (SyncReport, MemoryStore) {
    let memory = MemoryStore::new("source");
    let first = small_image(&memory, "library/app", "first");
    let second = small_image(&memory, "library/app", "second");
    tag_as(&memory, "library/app", "a", &first);
    tag_as(&memory, "library/app", "b", &second);
    let source = FaultyStore {
        inner: &memory,
        fault: HangingBlobs {
            blob_read: Notify::new(),
        },
    };
    let destination = MemoryStore::new("destination");
    let options = CopyOptions {
        concurrency: Concurrency {
            tags: 1,
            ..Concurrency::default()
        },
        ..CopyOptions::default()
    };
    let stop = async {
        source.fault.blob_read.notified().await;
        // No new image starts; the one under way would hang for ever, so it is abandoned.
        options.stop.raise(cause);
        options.stop.abandon(cause);
    };
    let (report, ()) = futures_util::join!(run_pass(&source, &destination, &[], &options), stop);
    (report, destination)
}

#[tokio::test]
async fn a_deadline_abandons_the_image_under_way_starts_no_other_and_fails_the_pass() {
    let (report, destination) = pass_stopped_mid_copy(StopCause::Deadline).await;
    assert_eq!(report.stopped, Some(StopCause::Deadline));
    let under_way = tag_report(&report, "library/app", "a");
    assert_eq!(under_way.outcome, skipped(SkipReason::Deadline));
    assert!(
        under_way.detail.as_deref().unwrap().contains("abandoned"),
        "{under_way:?}"
    );
    assert_eq!(
        outcome_of(&report, "library/app", "b"),
        skipped(SkipReason::Deadline),
        "the next image never started"
    );
    assert!(has_failures(&report), "a pass past its deadline fails");
    let tags = destination.tags(&repo("library/app")).await.unwrap_or_default();
    assert!(tags.is_empty(), "no tag of an abandoned image is visible: {tags:?}");
}

#[tokio::test]
async fn a_shutdown_reports_the_same_images_interrupted_and_does_not_fail() {
    let (report, _) = pass_stopped_mid_copy(StopCause::Shutdown).await;
    assert_eq!(report.stopped, Some(StopCause::Shutdown));
    assert_eq!(
        outcome_of(&report, "library/app", "a"),
        skipped(SkipReason::Interrupted)
    );
    assert_eq!(
        outcome_of(&report, "library/app", "b"),
        skipped(SkipReason::Interrupted)
    );
    assert!(!has_failures(&report));
}
