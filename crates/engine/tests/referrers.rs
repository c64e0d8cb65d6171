//! Signatures and referrers against the in-memory store, which has the referrers API
//! (or, built `without_referrers_api`, stands for a registry that lacks it).

mod support;

use ocisync_engine::{
    ContentRule, CopyOptions, CosignPublicKey, ImageReference, Outcome, RuleSpec, SignaturePolicy, SkipReason,
    SourceSpec, SyncReport, TagPatterns,
};
use ocisync_oci::media_type::OCI_INDEX;
use ocisync_oci::{Digest, Manifest, ManifestContent, MemoryStore, Reference, Store, Tag};
use ocisync_testkit::signing::{
    cosign_attestation, cosign_sbom, cosign_signature, cosign_tag, notation_signature, referrers_tag, sbom_referrer,
    sigstore_bundle_attestation, sigstore_bundle_signature,
};
use ocisync_testkit::{image, index, layer, CosignKey, Format, Image};
use support::{has_failures, outcome_of, repo, run_pass};

const REPO: &str = "team/app";

fn digest(text: &str) -> Digest {
    text.parse().unwrap()
}

fn oci(manifest: &ocisync_testkit::Manifest) -> Manifest {
    Manifest::from_bytes(manifest.bytes.clone(), manifest.media_type.clone())
}

/// Puts a testkit image (children, blobs, manifest) into `store`, tagged when `tag` is given.
fn insert(store: &MemoryStore, repo_name: &str, tag: Option<&str>, image: &Image) {
    for child in &image.children {
        insert(store, repo_name, None, child);
    }
    for blob in &image.blobs {
        store.insert_blob_unchecked(&repo(repo_name), &digest(&blob.digest), blob.bytes.clone());
    }
    let tag = tag.map(|t| t.parse::<Tag>().unwrap());
    store.insert_manifest_unchecked(&repo(repo_name), tag.as_ref(), oci(&image.manifest));
}

fn small(label: &str, seed: u64) -> Image {
    image(
        Format::Oci,
        ("linux", "amd64"),
        vec![layer(Format::Oci, seed, 256)],
        label,
    )
}

fn rule(signatures: SignaturePolicy) -> ContentRule {
    rule_with(SourceSpec::Prefix("**".into()), TagPatterns::default(), signatures)
}

fn rule_with(source: SourceSpec, tags: TagPatterns, signatures: SignaturePolicy) -> ContentRule {
    ContentRule::new(RuleSpec {
        source,
        tags,
        platforms: Vec::new(),
        strip_prefix: None,
        destination: None,
        signatures,
    })
    .unwrap()
}

async fn pass(source: &MemoryStore, destination: &MemoryStore, rules: &[ContentRule]) -> SyncReport {
    run_pass(source, destination, rules, &CopyOptions::default()).await
}

fn skipped(reason: SkipReason) -> Outcome {
    Outcome::Skipped { reason }
}

async fn referrer_digests(store: &MemoryStore, repo_name: &str, subject: &str) -> Vec<String> {
    let mut found: Vec<String> = store
        .referrers(&repo(repo_name), &digest(subject))
        .await
        .unwrap()
        .expect("store has the referrers API")
        .into_iter()
        .map(|d| d.digest.to_string())
        .collect();
    found.sort();
    found
}

fn sorted(digests: &[&str]) -> Vec<String> {
    let mut digests: Vec<String> = digests.iter().map(|d| (*d).to_owned()).collect();
    digests.sort();
    digests
}

async fn has_manifest(store: &MemoryStore, repo_name: &str, reference: &str) -> bool {
    let reference = match reference.parse::<Digest>() {
        Ok(digest) => Reference::Digest(digest),
        Err(_) => Reference::Tag(reference.parse().unwrap()),
    };
    store
        .head_manifest(&repo(repo_name), &reference)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn referrers_travel_recursively_through_the_api_and_a_second_pass_writes_nothing() {
    let source = MemoryStore::new("source");
    let destination = MemoryStore::new("destination");
    let key = CosignKey::generate();
    let app = small("app", 1);
    let notation = notation_signature(&app.manifest);
    let sbom = sbom_referrer(&app.manifest);
    let sbom_signature = sigstore_bundle_signature(&sbom.manifest);
    let signature = cosign_signature(&key, app.digest());
    let attestation = cosign_attestation(app.digest());
    insert(&source, REPO, Some("1.0"), &app);
    for referrer in [&notation, &sbom, &sbom_signature] {
        insert(&source, REPO, None, referrer);
    }
    insert(&source, REPO, Some(&cosign_tag(app.digest(), "sig")), &signature);
    insert(&source, REPO, Some(&cosign_tag(app.digest(), "att")), &attestation);

    let report = pass(&source, &destination, &[]).await;
    assert_eq!(outcome_of(&report, REPO, "1.0"), Outcome::Copied);
    assert_eq!(
        outcome_of(&report, REPO, &cosign_tag(app.digest(), "sig")),
        skipped(SkipReason::ReferrerTag),
        "cosign tags are not images of their own"
    );
    assert_eq!(
        referrer_digests(&destination, REPO, app.digest()).await,
        sorted(&[notation.digest(), sbom.digest()])
    );
    assert_eq!(
        referrer_digests(&destination, REPO, sbom.digest()).await,
        sorted(&[sbom_signature.digest()]),
        "a signature on the SBOM travels too"
    );
    for suffix in ["sig", "att"] {
        assert!(has_manifest(&destination, REPO, &cosign_tag(app.digest(), suffix)).await);
    }
    assert!(
        !has_manifest(&destination, REPO, &referrers_tag(app.digest())).await,
        "a destination with the referrers API needs no tag schema index"
    );
    let line = report.repositories[0]
        .tags
        .iter()
        .find(|t| t.tag.as_ref().map(|tag| tag.as_str()) == Some("1.0"))
        .unwrap();
    assert_eq!(line.detail.as_deref(), Some("5 referrers copied"));

    let writes = destination.writes();
    let report = pass(&source, &destination, &[]).await;
    assert_eq!(destination.writes(), writes, "second pass wrote to the destination");
    assert_eq!(outcome_of(&report, REPO, "1.0"), skipped(SkipReason::UpToDate));

    // A signature added later is picked up although the image is up to date.
    let late = sbom_referrer(&signature.manifest);
    insert(&source, REPO, None, &late);
    pass(&source, &destination, &[]).await;
    let signature_digest = signature.digest().to_owned();
    assert_eq!(
        referrer_digests(&destination, REPO, &signature_digest).await,
        sorted(&[late.digest()])
    );
}

#[tokio::test]
async fn a_pull_quota_that_stops_a_signature_leaves_its_image_for_a_later_pass() {
    let key = CosignKey::generate();
    let app = small("app", 7);
    let signature = cosign_signature(&key, app.digest());
    let source = MemoryStore::new("source");
    insert(&source, REPO, Some("1.0"), &app);
    insert(&source, REPO, Some(&cosign_tag(app.digest(), "sig")), &signature);
    for (exhausted, reason) in [(false, SkipReason::RateLimitReserve), (true, SkipReason::RateLimited)] {
        let destination = MemoryStore::new("destination");
        // One pull: the image's; its signature's is refused.
        let limited = support::QuotaStore::new(&source, 1, exhausted);
        let report = run_pass(&limited, &destination, &[], &CopyOptions::default()).await;
        let line = report.repositories[0]
            .tags
            .iter()
            .find(|t| t.tag.as_ref().map(|tag| tag.as_str()) == Some("1.0"))
            .unwrap();
        assert_eq!(line.outcome, skipped(reason), "{report:#?}");
        assert!(line.detail.as_deref().unwrap().contains("referrers"), "{line:?}");
        assert!(
            has_manifest(&destination, REPO, "1.0").await,
            "the image itself arrived"
        );
        let failed = report
            .repositories
            .iter()
            .flat_map(|r| &r.tags)
            .filter(|t| matches!(t.outcome, Outcome::Failed { .. }))
            .count();
        assert_eq!(failed, 0, "no image failed: {report:#?}");
        assert_eq!(has_failures(&report), exhausted, "only a used-up quota fails the pass");
    }
}

#[tokio::test]
async fn signed_only_copies_images_with_any_signature_and_skips_the_rest() {
    let source = MemoryStore::new("source");
    let destination = MemoryStore::new("destination");
    let key = CosignKey::generate();
    let cases = [
        ("cosign", small("cosign", 1)),
        ("notation", small("notation", 2)),
        ("bundle", small("bundle", 3)),
        ("attested-only", small("attested", 4)),
        ("unsigned", small("unsigned", 5)),
    ];
    for (tag, image) in &cases {
        insert(&source, REPO, Some(tag), image);
    }
    let by_tag = |tag: &str| &cases.iter().find(|(t, _)| *t == tag).unwrap().1;
    let cosign_subject = by_tag("cosign");
    insert(
        &source,
        REPO,
        Some(&cosign_tag(cosign_subject.digest(), "sig")),
        &cosign_signature(&key, cosign_subject.digest()),
    );
    insert(&source, REPO, None, &notation_signature(&by_tag("notation").manifest));
    insert(
        &source,
        REPO,
        None,
        &sigstore_bundle_signature(&by_tag("bundle").manifest),
    );
    insert(
        &source,
        REPO,
        None,
        &sigstore_bundle_attestation(&by_tag("attested-only").manifest),
    );

    let signed_only = SignaturePolicy {
        signed_only: true,
        cosign_keys: Vec::new(),
    };
    let report = pass(&source, &destination, &[rule(signed_only)]).await;
    for tag in ["cosign", "notation", "bundle"] {
        assert_eq!(outcome_of(&report, REPO, tag), Outcome::Copied, "{tag}");
        assert!(has_manifest(&destination, REPO, tag).await, "{tag}");
    }
    for tag in ["attested-only", "unsigned"] {
        assert_eq!(outcome_of(&report, REPO, tag), skipped(SkipReason::Unsigned), "{tag}");
        assert!(!has_manifest(&destination, REPO, tag).await, "{tag}");
    }
    assert!(!has_failures(&report));
}

#[tokio::test]
async fn cosign_keys_copy_only_images_whose_signature_verifies() {
    let source = MemoryStore::new("source");
    let destination = MemoryStore::new("destination");
    let key = CosignKey::generate();
    let stranger = CosignKey::generate();
    let good = small("good", 1);
    let other_key = small("other-key", 2);
    let other_digest = small("other-digest", 3);
    let unsigned = small("unsigned", 4);
    let notation_only = small("notation-only", 5);
    let multi = index(Format::Oci, vec![small("amd64", 6), small("arm64", 7)]);
    let signatures = [
        ("good", &good, cosign_signature(&key, good.digest())),
        ("other-key", &other_key, cosign_signature(&stranger, other_key.digest())),
        ("other-digest", &other_digest, cosign_signature(&key, good.digest())),
        ("multi", &multi, cosign_signature(&key, multi.digest())),
    ];
    for (tag, image, signature) in &signatures {
        insert(&source, REPO, Some(tag), image);
        insert(&source, REPO, Some(&cosign_tag(image.digest(), "sig")), signature);
    }
    insert(&source, REPO, Some("unsigned"), &unsigned);
    insert(&source, REPO, Some("notation-only"), &notation_only);
    insert(&source, REPO, None, &notation_signature(&notation_only.manifest));

    let public = CosignPublicKey::from_pem("cosign.pub", &key.public_key_pem()).unwrap();
    let verify = SignaturePolicy {
        signed_only: true,
        cosign_keys: vec![public],
    };
    let report = pass(&source, &destination, &[rule(verify)]).await;
    let expected = [
        ("good", Outcome::Copied),
        ("multi", Outcome::Copied),
        ("other-key", skipped(SkipReason::SignatureInvalid)),
        ("other-digest", skipped(SkipReason::SignatureInvalid)),
        ("unsigned", skipped(SkipReason::Unsigned)),
        ("notation-only", skipped(SkipReason::Unsigned)),
    ];
    for (tag, outcome) in &expected {
        assert_eq!(&outcome_of(&report, REPO, tag), outcome, "{tag}");
        assert_eq!(
            has_manifest(&destination, REPO, tag).await,
            *outcome == Outcome::Copied,
            "{tag}"
        );
    }
    // Signatures of rejected images stay behind; those of copied ones travel.
    for (tag, image, _) in &signatures {
        let copied = matches!(*tag, "good" | "multi");
        assert_eq!(
            has_manifest(&destination, REPO, &cosign_tag(image.digest(), "sig")).await,
            copied,
            "{tag}"
        );
    }
    let line = report.repositories[0]
        .tags
        .iter()
        .find(|t| t.tag.as_ref().map(|tag| tag.as_str()) == Some("other-digest"))
        .unwrap();
    assert!(
        line.detail.as_deref().unwrap_or("").contains("not this image"),
        "{:?}",
        line.detail
    );
}

#[tokio::test]
async fn a_destination_without_the_api_gets_the_tag_schema_index_kept_complete() {
    let source = MemoryStore::new("source");
    let destination = MemoryStore::without_referrers_api("destination");
    let app = small("app", 1);
    let notation = notation_signature(&app.manifest);
    let sbom = cosign_sbom(app.digest());
    insert(&source, REPO, Some("1.0"), &app);
    insert(&source, REPO, None, &notation);
    insert(&source, REPO, Some(&cosign_tag(app.digest(), "sbom")), &sbom);

    pass(&source, &destination, &[]).await;
    let schema = Reference::Tag(referrers_tag(app.digest()).parse().unwrap());
    let listed = |manifest: Manifest| match manifest.content().unwrap() {
        ManifestContent::Index { manifests } => manifests,
        other => panic!("not an index: {other:?}"),
    };
    let index = destination.manifest(&repo(REPO), &schema).await.unwrap();
    assert_eq!(index.media_type, OCI_INDEX);
    let entries = listed(index);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].digest.to_string(), notation.digest());
    assert_eq!(
        entries[0].artifact_type.as_deref(),
        Some("application/vnd.cncf.notary.signature")
    );
    assert!(has_manifest(&destination, REPO, &cosign_tag(app.digest(), "sbom")).await);

    let writes = destination.writes();
    pass(&source, &destination, &[]).await;
    assert_eq!(destination.writes(), writes, "a complete index is not rewritten");

    let bundle = sigstore_bundle_signature(&app.manifest);
    insert(&source, REPO, None, &bundle);
    pass(&source, &destination, &[]).await;
    let entries = listed(destination.manifest(&repo(REPO), &schema).await.unwrap());
    let digests: Vec<String> = entries.iter().map(|d| d.digest.to_string()).collect();
    assert_eq!(
        digests,
        [notation.digest(), bundle.digest()],
        "appended once, no duplicates"
    );
}

#[tokio::test]
async fn a_source_without_the_api_is_read_through_the_tag_schema() {
    let source = MemoryStore::without_referrers_api("source");
    let destination = MemoryStore::new("destination");
    let app = small("app", 1);
    let notation = notation_signature(&app.manifest);
    insert(&source, REPO, Some("1.0"), &app);
    insert(&source, REPO, None, &notation);
    let schema_index = ocisync_testkit::signing::referrers_index(&[&notation]);
    let schema_index = Image {
        manifest: schema_index,
        blobs: Vec::new(),
        children: Vec::new(),
        platform: None,
    };
    insert(&source, REPO, Some(&referrers_tag(app.digest())), &schema_index);

    let signed_only = SignaturePolicy {
        signed_only: true,
        cosign_keys: Vec::new(),
    };
    let report = pass(&source, &destination, &[rule(signed_only)]).await;
    assert_eq!(outcome_of(&report, REPO, "1.0"), Outcome::Copied);
    assert_eq!(
        outcome_of(&report, REPO, &referrers_tag(app.digest())),
        skipped(SkipReason::ReferrerTag)
    );
    assert_eq!(
        referrer_digests(&destination, REPO, app.digest()).await,
        sorted(&[notation.digest()])
    );
    assert!(!has_manifest(&destination, REPO, &referrers_tag(app.digest())).await);
}

/// Under a signature policy immutable patterns are ignored (the config refuses them
/// too): a tag already mirrored is judged again, never settled by the tag list alone,
/// so its signature tags never travel unjudged.
#[tokio::test]
async fn a_signature_policy_judges_tags_its_rule_calls_immutable() {
    let source = MemoryStore::new("source");
    let destination = MemoryStore::new("destination");
    let key = CosignKey::generate();
    let release = small("release", 9);
    insert(&source, REPO, Some("v1.0.0"), &release);
    insert(
        &source,
        REPO,
        Some(&cosign_tag(release.digest(), "sig")),
        &cosign_signature(&key, release.digest()),
    );
    let signed_rule = rule_with(
        SourceSpec::Prefix("**".into()),
        TagPatterns {
            immutable: vec![".*".into()],
            ..TagPatterns::default()
        },
        SignaturePolicy {
            signed_only: true,
            cosign_keys: Vec::new(),
        },
    );
    let rules = [signed_rule];
    let first = pass(&source, &destination, &rules).await;
    assert_eq!(outcome_of(&first, REPO, "v1.0.0"), Outcome::Copied);

    let second = pass(&source, &destination, &rules).await;
    let entry = second
        .repositories
        .iter()
        .flat_map(|r| &r.tags)
        .find(|t| t.tag.as_ref().map(|tag| tag.as_str()) == Some("v1.0.0"))
        .unwrap();
    assert_eq!(entry.outcome, skipped(SkipReason::UpToDate));
    assert_eq!(
        entry.digest.as_ref().map(ToString::to_string).as_deref(),
        Some(release.digest()),
        "judged again: its digest was read"
    );
    assert!(
        entry.detail.as_deref().is_none_or(|d| !d.contains("immutable")),
        "{:?}",
        entry.detail
    );
}

#[tokio::test]
async fn an_images_rule_finds_cosign_signatures_by_name_and_verifies_them() {
    let source = MemoryStore::new("source");
    let destination = MemoryStore::new("destination");
    let key = CosignKey::generate();
    let stranger = CosignKey::generate();
    let good = small("good", 11);
    let forged = small("forged", 12);
    let pinned = small("pinned", 13);
    insert(&source, REPO, Some("good"), &good);
    insert(&source, REPO, Some("forged"), &forged);
    insert(&source, REPO, None, &pinned);
    for (image, signer) in [(&good, &key), (&forged, &stranger), (&pinned, &key)] {
        insert(
            &source,
            REPO,
            Some(&cosign_tag(image.digest(), "sig")),
            &cosign_signature(signer, image.digest()),
        );
    }
    let public = CosignPublicKey::from_pem("cosign.pub", &key.public_key_pem()).unwrap();
    let images = SourceSpec::Images(
        [("good", None), ("forged", None), ("", Some(pinned.digest()))]
            .into_iter()
            .map(|(tag, digest)| ImageReference {
                repository: repo(REPO),
                reference: match digest {
                    Some(digest) => Reference::Digest(digest.parse().unwrap()),
                    None => Reference::Tag(tag.parse().unwrap()),
                },
            })
            .collect(),
    );
    let signed = SignaturePolicy {
        signed_only: true,
        cosign_keys: vec![public],
    };
    let images_rule = rule_with(images, TagPatterns::default(), signed);
    let report = pass(&source, &destination, &[images_rule]).await;
    assert_eq!(outcome_of(&report, REPO, "good"), Outcome::Copied);
    assert_eq!(
        outcome_of(&report, REPO, "forged"),
        skipped(SkipReason::SignatureInvalid)
    );
    assert!(!has_manifest(&destination, REPO, "forged").await);
    let by_digest = report.repositories[0].tags.iter().find(|t| t.tag.is_none()).unwrap();
    assert_eq!(by_digest.outcome, Outcome::Copied, "{by_digest:?}");
    assert!(has_manifest(&destination, REPO, pinned.digest()).await);
    // The signatures were found without a tag list and travel with their images.
    for image in [&good, &pinned] {
        assert!(has_manifest(&destination, REPO, &cosign_tag(image.digest(), "sig")).await);
    }
    assert_eq!(report.repositories[0].tags.len(), 3, "no report lines for unnamed tags");
}
