//! Repository names that would collide with the entries of another repository's layout.

use ocisync_layout::LayoutStore;
use ocisync_oci::{Store, StoreError};

use crate::support::*;

#[tokio::test]
async fn a_name_ending_in_a_layout_entry_is_refused_and_its_parent_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let store = LayoutStore::new(dir.path());
    for reserved in [
        "x/index.json",
        "x/oci-layout",
        "x/blobs",
        "x/blobs/sha256",
        "deep/x/index.json/y",
    ] {
        let descriptor = descriptor_of(LAYER, reserved.as_bytes());
        let error = store
            .put_blob(&repo(reserved), &descriptor, body(reserved.as_bytes(), 4))
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Invalid { .. }), "{reserved}: {error}");
        let text = error.to_string();
        assert!(text.contains(reserved) && text.contains("reserved"), "{text}");
        let error = store
            .head_manifest(&repo(reserved), &reference("v1"))
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Invalid { .. }), "{reserved}: {error}");
    }
    // `x` is unharmed: written, tagged, listed and read back.
    let manifest = image(&store, "x", "parent").await;
    store
        .put_manifest(&repo("x"), &reference("v1"), &manifest)
        .await
        .unwrap();
    assert_eq!(store.tags(&repo("x")).await.unwrap(), vec![tag("v1")]);
    assert_eq!(store.manifest(&repo("x"), &reference("v1")).await.unwrap(), manifest);
    // A first component is under the root, which holds no layout of its own: allowed.
    put_blob(&store, "blobs", LAYER, b"top-level name").await;
    let catalog: Vec<String> = store.catalog().await.unwrap().iter().map(|r| r.to_string()).collect();
    assert_eq!(catalog, vec!["blobs", "x"]);
}
