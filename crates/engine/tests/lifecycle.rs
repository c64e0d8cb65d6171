//! `tags.min_age` and `backup` against the in-memory store: images built with chosen
//! `created` times relative to now, tags moved upstream between passes.

#[allow(dead_code, reason = "each test binary uses a part of the shared helpers")]
mod support;

use std::time::Duration;

use ocisync_engine::{
    run_sync, BackupTemplate, ContentRule, CopyOptions, FailureKind, Outcome, RuleSpec, SignaturePolicy, SkipReason,
    SourceSpec, SyncLabel, SyncReport, TagPatterns, TagReport,
};
use ocisync_oci::{Digest, Manifest, MemoryStore, Reference, RepoName, Result, Store, StoreError, Tag};
use ocisync_testkit::{created_ago, image, image_created, index, layer, Format, Image};
use support::{repo, run_pass, Fault, FaultyStore};

const REPO: &str = "team/app";
const HOUR: Duration = Duration::from_secs(3600);

fn tag(name: &str) -> Tag {
    name.parse().unwrap()
}

fn digest_of(image: &Image) -> Digest {
    image.digest().parse().unwrap()
}

/// Puts a testkit image (children, blobs, manifest) into `store`, tagged when `tag` is given.
fn insert(store: &MemoryStore, tag_name: Option<&str>, image: &Image) {
    for child in &image.children {
        insert(store, None, child);
    }
    for blob in &image.blobs {
        store.insert_blob_unchecked(&repo(REPO), &blob.digest.parse().unwrap(), blob.bytes.clone());
    }
    let manifest = Manifest::from_bytes(image.manifest.bytes.clone(), image.manifest.media_type.clone());
    store.insert_manifest_unchecked(&repo(REPO), tag_name.map(tag).as_ref(), manifest);
}

/// A single-platform image whose config says it was made `age` ago.
fn aged(label: &str, seed: u64, age: Duration) -> Image {
    aged_on(("linux", "amd64"), label, seed, age)
}

fn aged_on(platform: (&str, &str), label: &str, seed: u64, age: Duration) -> Image {
    let layers = vec![layer(Format::Oci, seed, 64)];
    image_created(Format::Oci, platform, layers, label, &created_ago(age))
}

fn rule(tags: TagPatterns, platforms: &[&str], backup: Option<&str>) -> ContentRule {
    ContentRule::new(RuleSpec {
        source: SourceSpec::Prefix("**".to_owned()),
        tags,
        platforms: platforms.iter().map(|p| (*p).to_owned()).collect(),
        strip_prefix: None,
        destination: None,
        signatures: SignaturePolicy::default(),
        prune: None,
        backup: backup.map(str::to_owned),
    })
    .unwrap()
}

fn min_age(hours: u32) -> TagPatterns {
    TagPatterns {
        min_age: Some(HOUR * hours),
        ..TagPatterns::default()
    }
}

fn line<'a>(report: &'a SyncReport, tag_name: &str) -> &'a TagReport {
    report
        .repositories
        .iter()
        .flat_map(|r| &r.tags)
        .find(|t| t.tag.as_ref().map(Tag::as_str) == Some(tag_name))
        .unwrap_or_else(|| panic!("{tag_name} not in {report:#?}"))
}

fn skipped(reason: SkipReason) -> Outcome {
    Outcome::Skipped { reason }
}

async fn at(store: &MemoryStore, tag_name: &str) -> Option<Digest> {
    store
        .head_manifest(&repo(REPO), &Reference::Tag(tag(tag_name)))
        .await
        .unwrap()
        .map(|d| d.digest)
}

async fn pass(source: &impl Store, destination: &MemoryStore, rule: ContentRule) -> SyncReport {
    run_pass(source, destination, &[rule], &CopyOptions::default()).await
}

async fn check(source: &impl Store, destination: &MemoryStore, rule: ContentRule) -> SyncReport {
    let options = CopyOptions {
        dry_run: true,
        ..CopyOptions::default()
    };
    run_pass(source, destination, &[rule], &options).await
}

#[tokio::test]
async fn min_age_copies_the_old_image_and_leaves_the_young_one_until_it_is_eligible() {
    let source = MemoryStore::new("source");
    insert(&source, Some("old"), &aged("old", 1, 100 * HOUR));
    insert(&source, Some("young"), &aged("young", 2, HOUR));
    let destination = MemoryStore::new("destination");
    let before = chrono::Utc::now();
    let report = pass(&source, &destination, rule(min_age(72), &[], None)).await;

    assert_eq!(line(&report, "old").outcome, Outcome::Copied);
    let young = line(&report, "young");
    assert_eq!(young.outcome, skipped(SkipReason::TooYoung));
    // Made an hour ago, eligible 72 hours after that: 71 hours from now (to the second).
    let eligible_at = young
        .lifecycle
        .eligible_at
        .expect("a too-young tag says when it is eligible");
    let from_now = (eligible_at - before).num_seconds();
    assert!((71 * 3600 - 5..=71 * 3600 + 5).contains(&from_now), "{from_now}s");
    assert!(young.detail.as_deref().unwrap().contains("eligible at"), "{young:?}");
    let json = serde_json::to_value(young).unwrap();
    assert_eq!(json["reason"], "too-young");
    assert_eq!(json["eligible_at"], ocisync_engine::format_time(&eligible_at));
    assert!(at(&destination, "young").await.is_none(), "the young tag was written");
    assert!(at(&destination, "old").await.is_some());
    assert!(!ocisync_engine::Report { syncs: vec![report] }.has_failures());

    // Without min_age the same young tag is copied.
    let report = pass(&source, &destination, rule(TagPatterns::default(), &[], None)).await;
    assert_eq!(line(&report, "young").outcome, Outcome::Copied);
}

#[tokio::test]
async fn a_mirrored_tag_is_left_alone_and_a_moved_one_waits_for_its_new_image() {
    let source = MemoryStore::new("source");
    let first = aged("first", 1, HOUR);
    insert(&source, Some("stable"), &first);
    insert(&source, Some("latest"), &first);
    let destination = MemoryStore::new("destination");
    // Mirrored before min_age was configured.
    pass(&source, &destination, rule(TagPatterns::default(), &[], None)).await;

    let report = pass(&source, &destination, rule(min_age(72), &[], None)).await;
    assert_eq!(line(&report, "stable").outcome, skipped(SkipReason::UpToDate));
    assert_eq!(line(&report, "latest").outcome, skipped(SkipReason::UpToDate));

    // Upstream moves `latest` to a brand new image: the hijack window.
    let second = aged("second", 2, HOUR);
    insert(&source, Some("latest"), &second);
    let writes = destination.writes();
    let report = pass(&source, &destination, rule(min_age(72), &[], None)).await;
    assert_eq!(line(&report, "latest").outcome, skipped(SkipReason::TooYoung));
    assert_eq!(
        at(&destination, "latest").await,
        Some(digest_of(&first)),
        "the tag moved"
    );
    assert_eq!(destination.writes(), writes);

    // Once the new image is old enough (here: a smaller min_age), the tag moves.
    let report = pass(&source, &destination, rule(min_age(0), &[], None)).await;
    assert_eq!(line(&report, "latest").outcome, Outcome::Copied);
    assert_eq!(at(&destination, "latest").await, Some(digest_of(&second)));
}

#[tokio::test]
async fn an_index_is_as_young_as_its_youngest_platform_the_rule_keeps() {
    let source = MemoryStore::new("source");
    let amd64 = aged_on(("linux", "amd64"), "multi", 1, 100 * HOUR);
    let arm64 = aged_on(("linux", "arm64"), "multi", 2, 2 * HOUR);
    insert(&source, Some("multi"), &index(Format::Oci, vec![amd64, arm64]));

    let destination = MemoryStore::new("destination");
    let report = pass(&source, &destination, rule(min_age(72), &[], None)).await;
    let whole = line(&report, "multi");
    assert_eq!(
        whole.outcome,
        skipped(SkipReason::TooYoung),
        "the arm64 image is 2 hours old"
    );
    let from_now = (whole.lifecycle.eligible_at.unwrap() - chrono::Utc::now()).num_seconds();
    assert!((70 * 3600 - 5..=70 * 3600 + 5).contains(&from_now), "{from_now}s");

    // Narrowed to amd64, the index is as old as that image.
    let report = pass(&source, &destination, rule(min_age(72), &["linux/amd64"], None)).await;
    assert_eq!(line(&report, "multi").outcome, Outcome::Copied);
}

#[tokio::test]
async fn an_image_without_a_created_time_is_refused_under_min_age() {
    let source = MemoryStore::new("source");
    let undated = image(
        Format::Oci,
        ("linux", "amd64"),
        vec![layer(Format::Oci, 1, 64)],
        "undated",
    );
    insert(&source, Some("undated"), &undated);
    let garbled = image_created(
        Format::Oci,
        ("linux", "amd64"),
        vec![layer(Format::Oci, 2, 64)],
        "garbled",
        "last tuesday",
    );
    insert(&source, Some("garbled"), &garbled);
    // One platform of two without a time: the index's age is unknown.
    let half = index(
        Format::Oci,
        vec![
            aged_on(("linux", "amd64"), "half", 3, 100 * HOUR),
            image(Format::Oci, ("linux", "arm64"), vec![layer(Format::Oci, 4, 64)], "half"),
        ],
    );
    insert(&source, Some("half"), &half);
    let destination = MemoryStore::new("destination");
    let report = pass(&source, &destination, rule(min_age(1), &[], None)).await;
    for tag_name in ["undated", "garbled", "half"] {
        let refused = line(&report, tag_name);
        assert_eq!(refused.outcome, skipped(SkipReason::NoCreatedTime), "{tag_name}");
        assert!(refused.lifecycle.eligible_at.is_none());
    }
    assert!(line(&report, "undated")
        .detail
        .as_deref()
        .unwrap()
        .contains("no created time"));
    assert!(line(&report, "garbled")
        .detail
        .as_deref()
        .unwrap()
        .contains("\"last tuesday\""));
    assert!(line(&report, "half")
        .detail
        .as_deref()
        .unwrap()
        .starts_with("platform image sha256:"));
    assert_eq!(destination.writes(), 0);
}

#[tokio::test]
async fn a_moved_tag_is_backed_up_before_it_moves() {
    let source = MemoryStore::new("source");
    let first = aged("first", 1, HOUR);
    insert(&source, Some("latest"), &first);
    insert(&source, Some("pinned"), &first);
    let destination = MemoryStore::new("destination");
    let template = "{tag}-{date}";

    // A new tag and an unchanged tag have nothing to back up.
    let report = pass(&source, &destination, rule(TagPatterns::default(), &[], Some(template))).await;
    assert_eq!(line(&report, "latest").outcome, Outcome::Copied);
    assert!(line(&report, "latest").lifecycle.backup.is_none());
    let report = pass(&source, &destination, rule(TagPatterns::default(), &[], Some(template))).await;
    assert!(line(&report, "latest").lifecycle.backup.is_none());
    let tags_before = destination.tags(&repo(REPO)).await.unwrap();

    let second = aged("second", 2, HOUR);
    insert(&source, Some("latest"), &second);
    let backup_name = format!("latest-{}", chrono::Utc::now().format("%Y%m%d"));

    // `check` says what it would back up, and writes nothing.
    let writes = destination.writes();
    let report = check(&source, &destination, rule(TagPatterns::default(), &[], Some(template))).await;
    let planned = line(&report, "latest");
    assert_eq!(planned.outcome, Outcome::WouldCopy);
    let backup = planned.lifecycle.backup.as_ref().expect("check names the backup");
    assert_eq!(
        (backup.name.as_str(), &backup.digest),
        (backup_name.as_str(), &digest_of(&first))
    );
    assert_eq!(destination.writes(), writes);
    assert_eq!(destination.tags(&repo(REPO)).await.unwrap(), tags_before);

    let report = pass(&source, &destination, rule(TagPatterns::default(), &[], Some(template))).await;
    let moved = line(&report, "latest");
    assert_eq!(moved.outcome, Outcome::Copied);
    assert_eq!(moved.lifecycle.backup.as_ref().unwrap().name.as_str(), backup_name);
    let json = serde_json::to_value(moved).unwrap();
    assert_eq!(json["backup"]["name"], backup_name.as_str());
    assert_eq!(json["backup"]["digest"], first.digest());
    assert!(line(&report, "pinned").lifecycle.backup.is_none());
    assert_eq!(at(&destination, "latest").await, Some(digest_of(&second)));
    assert_eq!(at(&destination, &backup_name).await, Some(digest_of(&first)));
    let kept = destination
        .manifest(&repo(REPO), &Reference::Tag(tag(&backup_name)))
        .await
        .unwrap();
    assert_eq!(
        kept.bytes, first.manifest.bytes,
        "the backup holds the old bytes exactly"
    );
    assert!(BackupTemplate::parse(template).unwrap().matches(&tag(&backup_name)));
}

#[tokio::test]
async fn a_backup_name_holding_another_digest_is_never_overwritten() {
    let source = MemoryStore::new("source");
    let first = aged("first", 1, HOUR);
    insert(&source, Some("latest"), &first);
    let destination = MemoryStore::new("destination");
    let template = "{tag}-{date}";
    pass(&source, &destination, rule(TagPatterns::default(), &[], Some(template))).await;
    let second = aged("second", 2, HOUR);
    insert(&source, Some("latest"), &second);
    pass(&source, &destination, rule(TagPatterns::default(), &[], Some(template))).await;
    let backup_name = format!("latest-{}", chrono::Utc::now().format("%Y%m%d"));
    assert_eq!(at(&destination, &backup_name).await, Some(digest_of(&first)));

    // A second move on the same day: the day's backup name is taken by `first`.
    let third = aged("third", 3, HOUR);
    insert(&source, Some("latest"), &third);
    let report = pass(&source, &destination, rule(TagPatterns::default(), &[], Some(template))).await;
    let Outcome::Failed { kind, error } = &line(&report, "latest").outcome else {
        panic!("{report:#?}");
    };
    assert_eq!(*kind, FailureKind::Backup);
    assert!(
        error.contains("never overwritten") && error.contains("the tag was not moved"),
        "{error}"
    );
    assert_eq!(at(&destination, "latest").await, Some(digest_of(&second)));
    assert_eq!(at(&destination, &backup_name).await, Some(digest_of(&first)));

    // With {digest} in the template every old digest has a name of its own.
    let report = pass(
        &source,
        &destination,
        rule(TagPatterns::default(), &[], Some("{tag}-{date}-{digest}")),
    )
    .await;
    assert_eq!(line(&report, "latest").outcome, Outcome::Copied);
    let name = format!("{backup_name}-{}", &second.digest()["sha256:".len()..][..12]);
    assert_eq!(at(&destination, &name).await, Some(digest_of(&second)));
    assert_eq!(at(&destination, "latest").await, Some(digest_of(&third)));
}

#[tokio::test]
async fn a_failed_backup_leaves_the_tag_where_it_was() {
    let source = MemoryStore::new("source");
    let first = aged("first", 1, HOUR);
    insert(&source, Some("latest"), &first);
    let long_tag = "t".repeat(120);
    insert(&source, Some(&long_tag), &first);
    let memory = MemoryStore::new("destination");
    pass(&source, &memory, rule(TagPatterns::default(), &[], None)).await;
    let second = aged("second", 2, HOUR);
    insert(&source, Some("latest"), &second);
    insert(&source, Some(&long_tag), &second);

    let destination = FaultyStore {
        inner: &memory,
        fault: RefusesBackups,
    };
    let label = SyncLabel {
        name: "test".into(),
        from: "source".into(),
        to: "destination".into(),
    };
    let rules = [rule(TagPatterns::default(), &[], Some("{tag}-{date}"))];
    let report = run_sync(&source, &destination, &label, &rules, &CopyOptions::default()).await;
    // The backup PUT is refused: the tag stays.
    let Outcome::Failed { kind, error } = &line(&report, "latest").outcome else {
        panic!("{report:#?}");
    };
    assert_eq!(*kind, FailureKind::Backup);
    assert!(
        error.starts_with("backup of sha256:") && error.contains("the tag was not moved"),
        "{error}"
    );
    assert_eq!(
        at(&memory, "latest").await,
        Some(digest_of(&first)),
        "the tag moved without its backup"
    );
    // A rendered name over 128 characters fails that tag alone, before any write.
    let Outcome::Failed { kind, error } = &line(&report, &long_tag).outcome else {
        panic!("{report:#?}");
    };
    assert_eq!(*kind, FailureKind::Backup);
    assert!(
        error.contains("is not a valid tag") && error.contains("the tag was not moved"),
        "{error}"
    );
    assert_eq!(at(&memory, &long_tag).await, Some(digest_of(&first)));
}

/// A destination that refuses the backup's manifest put (`latest-…`).
struct RefusesBackups;

impl Fault for RefusesBackups {
    fn put_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<()> {
        match reference {
            Reference::Tag(tag) if tag.as_str().starts_with("latest-") => Err(StoreError::Denied {
                what: format!("manifest {repo}:{tag}"),
            }),
            _ => Ok(()),
        }
    }
}
