//! Several writers on one layout directory: separate stores, separate processes, and
//! the temporary files a killed writer leaves behind.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime};

use ocisync_layout::LayoutStore;
use ocisync_oci::Store;

use crate::support::*;

/// Tags each writer puts; enough that an unlocked read-modify-write loses some.
const TAGS_PER_WRITER: usize = 40;

#[test]
fn two_stores_on_one_directory_keep_every_tag() {
    let dir = tempfile::tempdir().unwrap();
    let start = Arc::new(Barrier::new(2));
    let writers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|writer| {
            let (root, start) = (dir.path().to_path_buf(), start.clone());
            // Each store on its own thread and runtime, as two processes would be.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
                runtime.block_on(async {
                    let store = LayoutStore::new(&root);
                    let manifest = image(&store, "shared", writer).await;
                    start.wait();
                    for number in 0..TAGS_PER_WRITER {
                        let tag_ref = reference(&format!("{writer}{number}"));
                        store.put_manifest(&repo("shared"), &tag_ref, &manifest).await.unwrap();
                    }
                });
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let tagged = index_entries(dir.path(), "shared")
        .into_iter()
        .filter(|(name, _)| name.is_some())
        .count();
    assert_eq!(
        tagged,
        2 * TAGS_PER_WRITER,
        "every tag of both writers is in index.json"
    );
}

/// A `.tmp-` file as a killed writer leaves it: unlocked and last written long ago.
fn plant_stale(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
}

fn exists(paths: &[PathBuf]) -> Vec<bool> {
    paths.iter().map(|path| path.exists()).collect()
}

#[tokio::test]
async fn stale_temporary_files_are_swept_when_a_repository_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("app");
    let stale = [
        layout.join(".tmp-999999-0-1"),
        layout.join("blobs/sha256/.tmp-999999-1-2"),
        layout.join("blobs/sha512/.tmp-999999-2-3"),
    ];
    for path in &stale {
        plant_stale(path);
    }
    let store = LayoutStore::new(dir.path());
    put_blob(&store, "app", LAYER, b"first write opens the repository").await;
    assert_eq!(exists(&stale), [false, false, false], "stale temporary files removed");
}

#[tokio::test]
async fn temporary_files_of_a_live_writer_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = dir.path().join("app/blobs/sha256");
    // Another process writing: its file is old (a slow stream) but locked.
    let locked = blobs.join(".tmp-999999-0-1");
    plant_stale(&locked);
    let held = std::fs::OpenOptions::new().write(true).open(&locked).unwrap();
    fs4::FileExt::lock(&held).unwrap();
    // Another writer that has just created its file and not locked it yet.
    let fresh = blobs.join(".tmp-999999-1-2");
    std::fs::write(&fresh, b"").unwrap();
    let store = LayoutStore::new(dir.path());
    put_blob(&store, "app", LAYER, b"first write opens the repository").await;
    assert_eq!(exists(&[locked, fresh]), [true, true]);
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_write_of_another_store_survives_its_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let content = vec![5u8; 2048];
    let descriptor = descriptor_of(LAYER, &content);
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let (first, rest) = (
        bytes::Bytes::copy_from_slice(&content[..1024]),
        bytes::Bytes::copy_from_slice(&content[1024..]),
    );
    let stalled: ocisync_oci::BlobStream = Box::pin(futures_util::stream::unfold(
        (0, Some(released)),
        move |(step, released)| {
            let (first, rest) = (first.clone(), rest.clone());
            async move {
                match step {
                    0 => Some((Ok(first), (1, released))),
                    1 => {
                        released.unwrap().await.unwrap();
                        Some((Ok(rest), (2, None)))
                    }
                    _ => None,
                }
            }
        },
    ));
    let writer_store = Arc::new(LayoutStore::new(dir.path()));
    let writing = {
        let (store, descriptor) = (writer_store.clone(), descriptor.clone());
        tokio::spawn(async move { store.put_blob(&repo("app"), &descriptor, stalled).await })
    };
    let blobs = dir.path().join("app/blobs/sha256");
    let temp = loop {
        let found = std::fs::read_dir(&blobs).ok().and_then(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .find(|path| path.file_name().unwrap().to_str().unwrap().starts_with(".tmp-"))
        });
        if let Some(found) = found {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // As old as a stale file: only the writer's lock keeps it.
    let file = std::fs::OpenOptions::new().write(true).open(&temp).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    drop(file);
    let sweeping_store = LayoutStore::new(dir.path());
    put_blob(&sweeping_store, "app", LAYER, b"opens app in a second store").await;
    assert!(temp.exists(), "the live writer's temporary file was removed");
    release.send(()).unwrap();
    writing.await.unwrap().unwrap();
    assert!(writer_store.has_blob(&repo("app"), &descriptor.digest).await.unwrap());
}
