//! Helpers shared by the layout tests.

use std::path::Path;

use bytes::Bytes;
use futures_util::stream;
use ocisync_layout::LayoutStore;
use ocisync_oci::media_type::OCI_MANIFEST;
use ocisync_oci::{BlobStream, Descriptor, Digest, Manifest, Reference, RepoName, Store, StoreError, Tag};

pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

pub fn repo(name: &str) -> RepoName {
    name.parse().unwrap()
}

pub fn tag(name: &str) -> Tag {
    name.parse().unwrap()
}

pub fn reference(name: &str) -> Reference {
    Reference::Tag(tag(name))
}

/// `content` as a stream of `chunk`-byte pieces.
pub fn body(content: &[u8], chunk: usize) -> BlobStream {
    let items: Vec<Result<Bytes, StoreError>> = content
        .chunks(chunk.max(1))
        .map(|piece| Ok(Bytes::copy_from_slice(piece)))
        .collect();
    Box::pin(stream::iter(items))
}

pub fn descriptor_of(media_type: &str, content: &[u8]) -> Descriptor {
    Descriptor::new(media_type, Digest::sha256_of(content), content.len() as u64)
}

/// Stores a blob in `repo` and returns its descriptor.
pub async fn put_blob(store: &LayoutStore, repo_name: &str, media_type: &str, content: &[u8]) -> Descriptor {
    let descriptor = descriptor_of(media_type, content);
    store
        .put_blob(&repo(repo_name), &descriptor, body(content, 1024))
        .await
        .unwrap();
    descriptor
}

/// An OCI image manifest over a config and one layer, both stored in `repo`.
pub async fn image(store: &LayoutStore, repo_name: &str, label: &str) -> Manifest {
    let config = put_blob(
        store,
        repo_name,
        CONFIG,
        format!("{{\"label\":\"{label}\"}}").as_bytes(),
    )
    .await;
    let layer = put_blob(store, repo_name, LAYER, format!("layer of {label}").as_bytes()).await;
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[{}]}}"#,
        serde_json::to_string(&config).unwrap(),
        serde_json::to_string(&layer).unwrap()
    );
    Manifest::from_bytes(body, OCI_MANIFEST)
}

/// The parsed `index.json` of a repository.
pub fn index_json(root: &Path, repo_name: &str) -> serde_json::Value {
    let text = std::fs::read(root.join(repo_name).join("index.json")).unwrap();
    serde_json::from_slice(&text).unwrap()
}

/// `(ref.name, digest)` of every index.json entry, in file order.
pub fn index_entries(root: &Path, repo_name: &str) -> Vec<(Option<String>, String)> {
    index_json(root, repo_name)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .map(str::to_owned),
                entry["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Names of every file under `dir`, recursively, relative to it.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}
