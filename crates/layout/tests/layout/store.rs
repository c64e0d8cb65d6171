//! The layout store on its own: file format, atomic writes, tags, catalog, mounts.

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use ocisync_layout::LayoutStore;
use ocisync_oci::media_type::{OCI_INDEX, OCI_MANIFEST};
use ocisync_oci::{BlobStream, Digest, Manifest, Reference, Store, StoreError};

use crate::support::*;

fn temp_store() -> (tempfile::TempDir, LayoutStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LayoutStore::new(dir.path());
    (dir, store)
}

#[tokio::test]
async fn first_write_creates_a_spec_layout() {
    let (dir, store) = temp_store();
    let manifest = image(&store, "library/alpine", "a").await;
    store
        .put_manifest(&repo("library/alpine"), &reference("3.19"), &manifest)
        .await
        .unwrap();
    let layout = dir.path().join("library/alpine");
    assert_eq!(
        std::fs::read_to_string(layout.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index = index_json(dir.path(), "library/alpine");
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    assert_eq!(index["manifests"][0]["mediaType"], OCI_MANIFEST);
    assert_eq!(index["manifests"][0]["size"], manifest.bytes.len());
    assert_eq!(
        index_entries(dir.path(), "library/alpine"),
        vec![(Some("3.19".to_owned()), manifest.digest.to_string())]
    );
    let blob = std::fs::read(layout.join("blobs/sha256").join(manifest.digest.hex())).unwrap();
    assert_eq!(blob, manifest.bytes, "manifest bytes are stored unchanged");
}

#[tokio::test]
async fn multi_mib_blob_round_trips_in_bounded_chunks() {
    let (dir, store) = temp_store();
    let content: Vec<u8> = (0..5 * 1024 * 1024 + 7).map(|i| (i * 31 % 251) as u8).collect();
    let descriptor = descriptor_of(LAYER, &content);
    store
        .put_blob(&repo("big"), &descriptor, body(&content, 1024 * 1024))
        .await
        .unwrap();
    assert!(store.has_blob(&repo("big"), &descriptor.digest).await.unwrap());
    assert!(!store.has_blob(&repo("other"), &descriptor.digest).await.unwrap());
    let mut stream = store.blob(&repo("big"), &descriptor).await.unwrap();
    let mut read = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert!(chunk.len() <= 64 * 1024, "chunk of {} bytes", chunk.len());
        read.extend_from_slice(&chunk);
        chunks += 1;
    }
    assert!(chunks >= 80, "streamed in {chunks} chunks");
    assert!(read == content, "content differs after the round trip");
    let on_disk = dir.path().join("big/blobs/sha256").join(descriptor.digest.hex());
    assert_eq!(std::fs::metadata(on_disk).unwrap().len(), content.len() as u64);
}

#[tokio::test]
async fn failing_stream_leaves_neither_blob_nor_temporary_file() {
    let (dir, store) = temp_store();
    let content = vec![7u8; 300 * 1024];
    let descriptor = descriptor_of(LAYER, &content);
    let cut_short: BlobStream = Box::pin(stream::iter(vec![
        Ok(Bytes::copy_from_slice(&content[..100 * 1024])),
        Err(StoreError::Io {
            what: "source".into(),
            source: std::io::Error::other("connection reset"),
        }),
    ]));
    let error = store.put_blob(&repo("app"), &descriptor, cut_short).await.unwrap_err();
    assert!(matches!(error, StoreError::Io { .. }), "{error}");
    assert!(!store.has_blob(&repo("app"), &descriptor.digest).await.unwrap());
    assert_eq!(
        files_under(&dir.path().join("app/blobs")),
        Vec::<String>::new(),
        "no blob and no temporary file"
    );
    // The interrupted blob is transferred again and then trusted.
    store
        .put_blob(&repo("app"), &descriptor, body(&content, 4096))
        .await
        .unwrap();
    assert!(store.has_blob(&repo("app"), &descriptor.digest).await.unwrap());
}

#[tokio::test]
async fn wrong_content_is_rejected_and_cleaned_up() {
    let (dir, store) = temp_store();
    let descriptor = descriptor_of(LAYER, b"expected content");
    let error = store
        .put_blob(&repo("app"), &descriptor, body(b"expected CONTENT", 4))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::DigestMismatch { .. }), "{error}");
    let error = store
        .put_blob(&repo("app"), &descriptor, body(b"short", 4))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::SizeMismatch { .. }), "{error}");
    let error = store
        .put_blob(&repo("app"), &descriptor, body(b"expected content and more", 4))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::SizeMismatch { .. }), "{error}");
    assert!(!store.has_blob(&repo("app"), &descriptor.digest).await.unwrap());
    assert_eq!(files_under(&dir.path().join("app/blobs")), Vec::<String>::new());
}

#[tokio::test]
async fn moving_a_tag_replaces_its_index_entry() {
    let (dir, store) = temp_store();
    let first = image(&store, "app", "first").await;
    let second = image(&store, "app", "second").await;
    store
        .put_manifest(&repo("app"), &reference("latest"), &first)
        .await
        .unwrap();
    store
        .put_manifest(&repo("app"), &reference("v1"), &first)
        .await
        .unwrap();
    store
        .put_manifest(&repo("app"), &reference("latest"), &second)
        .await
        .unwrap();
    assert_eq!(
        index_entries(dir.path(), "app"),
        vec![
            (Some("latest".to_owned()), second.digest.to_string()),
            (Some("v1".to_owned()), first.digest.to_string()),
        ]
    );
    assert_eq!(store.tags(&repo("app")).await.unwrap(), vec![tag("latest"), tag("v1")]);
    let latest = store.manifest(&repo("app"), &reference("latest")).await.unwrap();
    assert_eq!(latest, second);
    let old = store
        .manifest(&repo("app"), &Reference::Digest(first.digest.clone()))
        .await
        .unwrap();
    assert_eq!(old, first, "the old manifest stays readable by digest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tag_writes_all_land_in_the_index() {
    let (dir, store) = temp_store();
    let store = std::sync::Arc::new(store);
    let manifest = image(&store, "app", "shared").await;
    let names: Vec<String> = (0..24).map(|i| format!("t{i}")).collect();
    let writers: Vec<_> = names
        .iter()
        .map(|name| {
            let (store, manifest, tag_ref) = (store.clone(), manifest.clone(), reference(name));
            tokio::spawn(async move { store.put_manifest(&repo("app"), &tag_ref, &manifest).await })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap().unwrap();
    }
    let listed: Vec<String> = store
        .tags(&repo("app"))
        .await
        .unwrap()
        .iter()
        .map(|t| t.to_string())
        .collect();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(index_entries(dir.path(), "app").len(), names.len(), "one entry per tag");
    let stray: Vec<String> = files_under(&dir.path().join("app"))
        .into_iter()
        .filter(|name| name.contains(".tmp-"))
        .collect();
    assert!(stray.is_empty(), "temporary files left: {stray:?}");
}

#[tokio::test]
async fn child_pushed_by_digest_is_a_blob_without_index_entry() {
    let (dir, store) = temp_store();
    let child = image(&store, "multi", "amd64").await;
    store
        .put_manifest(&repo("multi"), &Reference::Digest(child.digest.clone()), &child)
        .await
        .unwrap();
    assert_eq!(index_entries(dir.path(), "multi"), Vec::new());
    let read = store
        .manifest(&repo("multi"), &Reference::Digest(child.digest.clone()))
        .await
        .unwrap();
    assert_eq!(read.media_type, OCI_MANIFEST, "media type detected from the body");
    assert_eq!(read.bytes, child.bytes);

    let index_body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        serde_json::to_string(&child.descriptor()).unwrap()
    );
    let index = Manifest::from_bytes(index_body, OCI_INDEX);
    store
        .put_manifest(&repo("multi"), &reference("v1"), &index)
        .await
        .unwrap();
    let head = store
        .head_manifest(&repo("multi"), &reference("v1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head, index.descriptor());
    assert!(store
        .head_manifest(&repo("multi"), &reference("absent"))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn manifest_with_missing_references_is_refused() {
    let (dir, store) = temp_store();
    let complete = image(&store, "source", "x").await;
    let error = store
        .put_manifest(&repo("elsewhere"), &reference("v1"), &complete)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Invalid { .. }), "{error}");
    assert!(!dir.path().join("elsewhere/index.json").exists());

    let missing_child = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        serde_json::to_string(&complete.descriptor()).unwrap()
    );
    let index = Manifest::from_bytes(missing_child, OCI_INDEX);
    let error = store
        .put_manifest(&repo("source"), &reference("v1"), &index)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Invalid { .. }), "{error}");
}

#[tokio::test]
async fn digest_reference_must_match_the_bytes() {
    let (_dir, store) = temp_store();
    let manifest = image(&store, "app", "x").await;
    let wrong = Reference::Digest(Digest::sha256_of(b"something else"));
    let error = store.put_manifest(&repo("app"), &wrong, &manifest).await.unwrap_err();
    assert!(matches!(error, StoreError::DigestMismatch { .. }), "{error}");
}

#[tokio::test]
async fn corrupt_manifest_on_disk_is_reported_not_returned() {
    let (dir, store) = temp_store();
    let manifest = image(&store, "app", "x").await;
    store
        .put_manifest(&repo("app"), &reference("v1"), &manifest)
        .await
        .unwrap();
    let path = dir.path().join("app/blobs/sha256").join(manifest.digest.hex());
    let mut tampered = manifest.bytes.to_vec();
    tampered.push(b' ');
    std::fs::write(path, tampered).unwrap();
    for reference in [reference("v1"), Reference::Digest(manifest.digest.clone())] {
        let error = store.manifest(&repo("app"), &reference).await.unwrap_err();
        assert!(matches!(error, StoreError::DigestMismatch { .. }), "{error}");
    }
}

#[tokio::test]
async fn absent_repository_reads_as_absent() {
    let (_dir, store) = temp_store();
    let error = store.tags(&repo("nothing/here")).await.unwrap_err();
    assert!(error.is_not_found(), "{error}");
    assert!(store
        .head_manifest(&repo("nothing/here"), &reference("v1"))
        .await
        .unwrap()
        .is_none());
    assert!(!store
        .has_blob(&repo("nothing/here"), &Digest::sha256_of(b""))
        .await
        .unwrap());
    let missing_root = LayoutStore::new(_dir.path().join("not-created"));
    let error = missing_root.catalog().await.unwrap_err();
    assert!(error.is_not_found(), "{error}");
    assert!(error.to_string().contains("not-created"), "{error}");
}

#[tokio::test]
async fn catalog_finds_nested_repositories_and_survives_link_loops() {
    let (dir, store) = temp_store();
    for name in ["library/alpine", "library", "a/b/c", "z"] {
        put_blob(&store, name, LAYER, name.as_bytes()).await;
    }
    std::fs::create_dir_all(dir.path().join("plain/dir/without/layout")).unwrap();
    std::fs::create_dir_all(dir.path().join("Upper/case")).unwrap();
    std::fs::write(dir.path().join("Upper/case/oci-layout"), "{}").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.path(), dir.path().join("a/loop")).unwrap();
    let catalog: Vec<String> = store.catalog().await.unwrap().iter().map(|r| r.to_string()).collect();
    assert_eq!(catalog, vec!["a/b/c", "library", "library/alpine", "z"]);
}

#[tokio::test]
async fn repository_inside_a_blobs_directory_is_refused() {
    let (_dir, store) = temp_store();
    put_blob(&store, "app", LAYER, b"x").await;
    let descriptor = descriptor_of(LAYER, b"y");
    let error = store
        .put_blob(&repo("app/blobs/sha256"), &descriptor, body(b"y", 1))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Invalid { .. }), "{error}");
}

#[tokio::test]
async fn mount_links_a_blob_from_another_repository() {
    let (dir, store) = temp_store();
    let descriptor = put_blob(&store, "from/here", LAYER, b"shared layer").await;
    assert!(store
        .mount_blob(&repo("to/there"), &repo("from/here"), &descriptor.digest)
        .await
        .unwrap());
    assert!(store.has_blob(&repo("to/there"), &descriptor.digest).await.unwrap());
    let mut stream = store.blob(&repo("to/there"), &descriptor).await.unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        Bytes::from_static(b"shared layer")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let inode = |repo_name: &str| {
            std::fs::metadata(
                dir.path()
                    .join(repo_name)
                    .join("blobs/sha256")
                    .join(descriptor.digest.hex()),
            )
            .unwrap()
            .ino()
        };
        assert_eq!(inode("to/there"), inode("from/here"), "hard link, not a copy");
    }
    assert!(dir.path().join("to/there/oci-layout").is_file());
    let absent = Digest::sha256_of(b"not stored anywhere");
    assert!(!store
        .mount_blob(&repo("to/there"), &repo("from/here"), &absent)
        .await
        .unwrap());
    assert!(!store
        .mount_blob(&repo("to/there"), &repo("no/such/repo"), &descriptor.digest)
        .await
        .unwrap());
}
