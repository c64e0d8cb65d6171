//! `collect_garbage`: what a deleted tag leaves behind goes, everything reachable stays.

use ocisync_layout::{collect_garbage, LayoutStore};
use ocisync_oci::media_type::{OCI_INDEX, OCI_MANIFEST};
use ocisync_oci::{Deletion, Digest, Manifest, Reference, Store};

use crate::support::{image, put_blob, reference, repo, tag, CONFIG};

const REPO: &str = "team/app";

fn blob_files(root: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join(REPO).join("blobs/sha256"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn hex(digest: &Digest) -> String {
    digest.hex().to_owned()
}

#[tokio::test]
async fn gc_removes_what_a_deleted_tag_left_and_keeps_everything_reachable() {
    let dir = tempfile::tempdir().unwrap();
    let store = LayoutStore::new(dir.path());
    let app = repo(REPO);
    // Tagged: an index of two images, with a signature-like referrer of one of them
    // that only a referrers-schema entry reaches.
    let amd64 = image(&store, REPO, "amd64").await;
    let arm64 = image(&store, REPO, "arm64").await;
    for child in [&amd64, &arm64] {
        store
            .put_manifest(&app, &Reference::Digest(child.digest.clone()), child)
            .await
            .unwrap();
    }
    let index_body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{},{}]}}"#,
        serde_json::to_string(&amd64.descriptor()).unwrap(),
        serde_json::to_string(&arm64.descriptor()).unwrap()
    );
    let index = Manifest::from_bytes(index_body, OCI_INDEX);
    store.put_manifest(&app, &reference("multi"), &index).await.unwrap();
    let signature_config = put_blob(&store, REPO, CONFIG, b"{\"signature\":1}").await;
    let referrer_body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[],"subject":{}}}"#,
        serde_json::to_string(&signature_config).unwrap(),
        serde_json::to_string(&amd64.descriptor()).unwrap()
    );
    let referrer = Manifest::from_bytes(referrer_body, OCI_MANIFEST);
    store.put_manifest(&app, &reference("sig"), &referrer).await.unwrap();
    // An image that loses its tag.
    let old = image(&store, REPO, "old").await;
    store.put_manifest(&app, &reference("old"), &old).await.unwrap();
    let before = blob_files(dir.path());
    assert_eq!(store.delete_tag(&app, &tag("old")).await.unwrap(), Deletion::Deleted);
    assert_eq!(store.tags(&app).await.unwrap(), vec![tag("multi"), tag("sig")]);

    let old_content = old.content().unwrap();
    let ocisync_oci::ManifestContent::Image { config, layers, .. } = old_content else {
        panic!("an image")
    };
    let mut orphans = vec![hex(&old.digest), hex(&config.digest), hex(&layers[0].digest)];
    orphans.sort();

    let dry = collect_garbage(dir.path(), true).unwrap();
    assert_eq!(dry.blobs_removed(), 3);
    assert_eq!(blob_files(dir.path()), before, "a dry run removes nothing");

    let done = collect_garbage(dir.path(), false).unwrap();
    let mut removed: Vec<String> = done.repositories[0].removed.iter().map(|(d, _)| hex(d)).collect();
    removed.sort();
    assert_eq!(removed, orphans);
    assert_eq!(done.bytes_removed(), dry.bytes_removed());
    assert!(done.bytes_removed() > 0 && !done.has_failures());
    let after = blob_files(dir.path());
    let expected: Vec<String> = before.into_iter().filter(|name| !orphans.contains(name)).collect();
    assert_eq!(after, expected, "every reachable blob stays");
    // And the store still reads everything its tags reach.
    for manifest in [&index, &amd64, &arm64, &referrer] {
        let read = store
            .manifest(&app, &Reference::Digest(manifest.digest.clone()))
            .await
            .unwrap();
        assert_eq!(read.bytes, manifest.bytes);
    }
    assert_eq!(collect_garbage(dir.path(), false).unwrap().blobs_removed(), 0);
}

#[tokio::test]
async fn a_manifest_that_cannot_be_read_leaves_its_repository_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = LayoutStore::new(dir.path());
    let app = repo(REPO);
    let kept = image(&store, REPO, "kept").await;
    store.put_manifest(&app, &reference("kept"), &kept).await.unwrap();
    let stray = put_blob(&store, REPO, CONFIG, b"{\"stray\":1}").await;
    // The tagged manifest's file now holds something that is not a manifest.
    let path = dir.path().join(REPO).join("blobs/sha256").join(kept.digest.hex());
    std::fs::write(&path, b"not json").unwrap();
    let report = collect_garbage(dir.path(), false).unwrap();
    assert!(report.has_failures());
    assert_eq!(report.blobs_removed(), 0);
    assert!(blob_files(dir.path()).contains(&hex(&stray.digest)));
}
