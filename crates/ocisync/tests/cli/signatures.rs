//! Signed-only mirroring and referrers end to end, between two distribution 2.8
//! registries (neither has the referrers API, so referrers live in the tag schema).

use ocisync_testkit::signing::{
    cosign_attestation, cosign_sbom, cosign_signature, cosign_tag, notation_signature, referrers_index, referrers_tag,
    sbom_referrer, sigstore_bundle_attestation, sigstore_bundle_signature,
};
use ocisync_testkit::{
    image, index, layer, manifest, push_image, push_manifest, small_image, CosignKey, CountingProxy, Format, Image,
};

use crate::support::{config_with_syncs, Mirror};

/// Pushes referrers of `subject` by digest and lists them in its tag schema index, as a
/// client does against a registry without the referrers API.
async fn push_referrers(url: &str, repo: &str, subject: &str, referrers: &[&Image]) {
    for referrer in referrers {
        push_image(url, repo, referrer.digest(), referrer).await;
    }
    push_manifest(url, repo, &referrers_tag(subject), &referrers_index(referrers)).await;
}

/// Digests listed by the tag schema index of `subject`, or `None` without one.
async fn schema_entries(url: &str, repo: &str, subject: &str) -> Option<Vec<String>> {
    let (bytes, _, _) = manifest(url, repo, &referrers_tag(subject)).await?;
    let index: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let mut digests: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["digest"].as_str().unwrap().to_owned())
        .collect();
    digests.sort();
    Some(digests)
}

fn sorted(digests: &[&str]) -> Vec<String> {
    let mut digests: Vec<String> = digests.iter().map(|d| (*d).to_owned()).collect();
    digests.sort();
    digests
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_images_travel_with_their_referrers_and_the_rest_stay_behind() {
    let world = Mirror::start();
    let mirror_proxy = CountingProxy::start(&world.mirror.url());
    let up = world.upstream.url();
    let key = CosignKey::generate();
    let stranger = CosignKey::generate();

    // verify/signed: cosign .sig, .att and .sbom tags, a notation signature and an SBOM
    // referrer, and a signature on that SBOM.
    let signed = small_image("signed", 1);
    push_image(&up, "verify/signed", "1.0", &signed).await;
    let signature = cosign_signature(&key, signed.digest());
    push_image(&up, "verify/signed", &cosign_tag(signed.digest(), "sig"), &signature).await;
    push_image(
        &up,
        "verify/signed",
        &cosign_tag(signed.digest(), "att"),
        &cosign_attestation(signed.digest()),
    )
    .await;
    push_image(
        &up,
        "verify/signed",
        &cosign_tag(signed.digest(), "sbom"),
        &cosign_sbom(signed.digest()),
    )
    .await;
    let notation = notation_signature(&signed.manifest);
    let sbom = sbom_referrer(&signed.manifest);
    push_referrers(&up, "verify/signed", signed.digest(), &[&notation, &sbom]).await;
    let sbom_signature = sigstore_bundle_signature(&sbom.manifest);
    push_referrers(&up, "verify/signed", sbom.digest(), &[&sbom_signature]).await;
    // verify/multi: the signature is on the index digest.
    let multi = index(
        Format::Oci,
        vec![
            small_image("amd64", 2),
            image(
                Format::Oci,
                ("linux", "arm64"),
                vec![layer(Format::Oci, 3, 512)],
                "arm64",
            ),
        ],
    );
    push_image(&up, "verify/multi", "1.0", &multi).await;
    push_image(
        &up,
        "verify/multi",
        &cosign_tag(multi.digest(), "sig"),
        &cosign_signature(&key, multi.digest()),
    )
    .await;
    // Rejected: no signature, another key, a payload naming another image.
    push_image(&up, "verify/unsigned", "1.0", &small_image("unsigned", 4)).await;
    let other_key = small_image("other-key", 5);
    push_image(&up, "verify/other-key", "1.0", &other_key).await;
    push_image(
        &up,
        "verify/other-key",
        &cosign_tag(other_key.digest(), "sig"),
        &cosign_signature(&stranger, other_key.digest()),
    )
    .await;
    let other_digest = small_image("other-digest", 6);
    push_image(&up, "verify/other-digest", "1.0", &other_digest).await;
    push_image(
        &up,
        "verify/other-digest",
        &cosign_tag(other_digest.digest(), "sig"),
        &cosign_signature(&key, signed.digest()),
    )
    .await;
    // signed-only (no keys): a notation signature suffices; an attestation does not.
    let notarized = small_image("notarized", 7);
    push_image(&up, "plain/notarized", "1.0", &notarized).await;
    push_referrers(
        &up,
        "plain/notarized",
        notarized.digest(),
        &[&notation_signature(&notarized.manifest)],
    )
    .await;
    let attested = small_image("attested", 8);
    push_image(&up, "plain/attested", "1.0", &attested).await;
    push_referrers(
        &up,
        "plain/attested",
        attested.digest(),
        &[&sigstore_bundle_attestation(&attested.manifest)],
    )
    .await;

    std::fs::write(world.dir().join("cosign.pub"), key.public_key_pem()).unwrap();
    world.write_config_via(
        &config_with_syncs(
            "  - from: upstream\n    to: mirror\n    content:\n      - prefix: \"verify/*\"\n        verify: {cosign_public_keys: [cosign.pub]}\n      - prefix: \"plain/*\"\n        signed_only: true\n",
        ),
        &[("{mirror}", &mirror_proxy.url())],
    );
    world.once().expect_code(0);

    let report = world.report();
    let expected = [
        ("verify/signed", "copied"),
        ("verify/multi", "copied"),
        ("verify/unsigned", "skipped:unsigned"),
        ("verify/other-key", "skipped:signature-invalid"),
        ("verify/other-digest", "skipped:signature-invalid"),
        ("plain/notarized", "copied"),
        ("plain/attested", "skipped:unsigned"),
    ];
    let mi = world.mirror.url();
    for (repo, result) in expected {
        assert_eq!(report.outcome(repo, "1.0"), result, "{repo}");
        assert_eq!(manifest(&mi, repo, "1.0").await.is_some(), result == "copied", "{repo}");
    }
    assert_eq!(
        report.outcome("verify/signed", &cosign_tag(signed.digest(), "sig")),
        "skipped:referrer-tag"
    );

    // Everything attached to the copied images is there; nothing of the rejected ones.
    for suffix in ["sig", "att", "sbom"] {
        let tag = cosign_tag(signed.digest(), suffix);
        let upstream_digest = manifest(&up, "verify/signed", &tag).await.unwrap().2;
        assert_eq!(
            manifest(&mi, "verify/signed", &tag).await.map(|m| m.2),
            Some(upstream_digest),
            "{suffix}"
        );
    }
    assert!(manifest(&mi, "verify/multi", &cosign_tag(multi.digest(), "sig"))
        .await
        .is_some());
    assert_eq!(
        schema_entries(&mi, "verify/signed", signed.digest()).await,
        Some(sorted(&[notation.digest(), sbom.digest()]))
    );
    assert_eq!(
        schema_entries(&mi, "verify/signed", sbom.digest()).await,
        Some(sorted(&[sbom_signature.digest()])),
        "the signature on the SBOM travels too"
    );
    assert!(manifest(&mi, "verify/signed", sbom_signature.digest()).await.is_some());
    assert!(schema_entries(&mi, "plain/notarized", notarized.digest())
        .await
        .is_some());
    assert!(
        manifest(&mi, "verify/other-key", &cosign_tag(other_key.digest(), "sig"))
            .await
            .is_none()
    );
    assert!(
        manifest(&mi, "verify/other-digest", &cosign_tag(other_digest.digest(), "sig"))
            .await
            .is_none()
    );
    ocisync_testkit::assert_closure(&mi, "verify/signed").await;

    // A second pass writes nothing and rewrites no referrers index.
    mirror_proxy.reset();
    world.once().expect_code(0);
    let writes = mirror_proxy.writes();
    assert!(writes.is_empty(), "second pass wrote: {writes:?}");
    let entry = world.report().tag("verify/signed", "1.0");
    assert_eq!(entry["reason"], "up-to-date");
}

/// An immutable tag already mirrored costs no request of its own, yet its cosign
/// signature tag is still followed: signed again upstream (the `.sig` tag moves), the
/// new signature reaches the destination on the next pass.
#[tokio::test(flavor = "multi_thread")]
async fn signatures_of_an_immutable_tag_still_follow_upstream() {
    let world = Mirror::start();
    let mirror = &world.mirror;
    let up = world.upstream.url();
    let release = small_image("release", 3);
    push_image(&up, "app", "v1.0.0", &release).await;
    let signature_tag = cosign_tag(release.digest(), "sig");
    let first_signature = cosign_signature(&CosignKey::generate(), release.digest());
    push_image(&up, "app", &signature_tag, &first_signature).await;
    let attestation_tag = cosign_tag(release.digest(), "att");
    let attestation = cosign_attestation(release.digest());
    let upstream_proxy = CountingProxy::start(&up);
    let mirror_proxy = CountingProxy::start(&mirror.url());
    world.write_config_via(
        &config_with_syncs(
            "  - from: upstream\n    to: mirror\n    content:\n      - prefix: \"**\"\n        tags:\n          immutable: ['v\\d+\\.\\d+\\.\\d+']\n",
        ),
        &[("{upstream}", &upstream_proxy.url()), ("{mirror}", &mirror_proxy.url())],
    );
    world.run(&["once"]).expect_code(0);
    let at_mirror = |tag: String| {
        let url = mirror.url();
        async move { manifest(&url, "app", &tag).await.map(|(_, _, digest)| digest) }
    };
    assert_eq!(
        at_mirror(signature_tag.clone()).await.as_deref(),
        Some(first_signature.digest())
    );

    // Signed again, and attested: two referrer tags of one subject.
    let second_signature = cosign_signature(&CosignKey::generate(), release.digest());
    push_image(&up, "app", &signature_tag, &second_signature).await;
    push_image(&up, "app", &attestation_tag, &attestation).await;
    upstream_proxy.reset();
    mirror_proxy.reset();
    world.once().expect_code(0);

    assert_eq!(at_mirror("v1.0.0".to_owned()).await.as_deref(), Some(release.digest()));
    assert_eq!(
        at_mirror(signature_tag.clone()).await.as_deref(),
        Some(second_signature.digest()),
        "the new signature is mirrored"
    );
    assert_eq!(
        at_mirror(attestation_tag.clone()).await.as_deref(),
        Some(attestation.digest()),
        "the new attestation is mirrored"
    );
    let entries = world.report().tags();
    let referrer_lines: Vec<_> = entries
        .iter()
        .filter(|(_, entry)| entry["tag"] == signature_tag.as_str() || entry["tag"] == attestation_tag.as_str())
        .map(|(_, entry)| (entry["reason"].clone(), entry["manifests_pushed"].as_u64().unwrap()))
        .collect();
    assert_eq!(referrer_lines.len(), 2, "{entries:?}");
    assert!(referrer_lines.iter().all(|(reason, _)| reason == "referrer-tag"));
    assert_eq!(
        referrer_lines.iter().map(|(_, pushed)| pushed).sum::<u64>(),
        2,
        "both pushed once, counted on one line: {referrer_lines:?}"
    );
    for proxy in [&upstream_proxy, &mirror_proxy] {
        let asked: Vec<String> = proxy
            .requests()
            .into_iter()
            .map(|request| request.path)
            .filter(|path| path.ends_with("/manifests/v1.0.0"))
            .collect();
        assert!(asked.is_empty(), "the immutable tag was asked about: {asked:?}");
    }
}
