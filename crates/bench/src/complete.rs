//! The complete-copy client: issue 7's reference ("a plain 8-thread client doing the
//! complete copy: blobs by monolithic PUT, mounts, manifests"), written as simply as it
//! can be and still leave a correct mirror.
//!
//! [`WORKERS`] tasks each take the next tag and copy it alone: `GET` its manifest (and an
//! index's children), put every blob it lacks, then `PUT` the children and the manifest by
//! tag. A blob is streamed once in the whole pass (`GET` → `POST` → one monolithic `PUT`,
//! as [`super::limit`] does); another repository that needs it mounts it from the first
//! (`POST ?mount=&from=`). It is told the tags (no catalog or tag lists) and assumes an
//! empty destination (no existence checks), so it sends fewer requests than any tool that
//! has to find out what to do.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use tokio::sync::OnceCell;

use super::limit::{copy_blob, LimitError};
use ocisync_testkit::image::MANIFEST_MEDIA_TYPES;

/// Tags copied at once.
pub const WORKERS: usize = 8;

/// Copies every `(repository, tag)` from `source` to the same name at `destination` (base
/// URLs, destination empty) with [`WORKERS`] tasks; returns the wall time.
pub async fn copy_tags(source: &str, destination: &str, tags: Vec<(String, String)>) -> Result<Duration, LimitError> {
    let copier = Arc::new(Copier {
        client: Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| LimitError(format!("build client: {e}")))?,
        source: source.to_owned(),
        destination: destination.to_owned(),
        holders: Mutex::default(),
        placed: Mutex::default(),
    });
    let tags = Arc::new(tags);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(WORKERS);
    for _ in 0..WORKERS {
        let (copier, tags, next) = (Arc::clone(&copier), Arc::clone(&tags), Arc::clone(&next));
        workers.push(tokio::spawn(async move {
            while let Some((repo, tag)) = tags.get(next.fetch_add(1, Ordering::Relaxed)) {
                copier.copy_tag(repo, tag).await?;
            }
            Ok::<(), LimitError>(())
        }));
    }
    for worker in workers {
        worker.await.map_err(|e| LimitError(format!("worker died: {e}")))??;
    }
    Ok(started.elapsed())
}

/// Cells shared by the workers: each settles once, the others wait for it.
type Cells<K, V> = Mutex<HashMap<K, Arc<OnceCell<V>>>>;

struct Copier {
    client: Client,
    source: String,
    destination: String,
    /// Per blob: the repository it was first streamed into.
    holders: Cells<String, String>,
    /// Per (repository, blob): placed there. Once only, because distribution 2.8 rewrites
    /// a link file in place when a blob is committed again, which a concurrent manifest
    /// `PUT` in that repository can see empty.
    placed: Cells<(String, String), ()>,
}

/// A manifest as read from the source.
struct Manifest {
    media_type: String,
    body: bytes::Bytes,
    json: Value,
}

impl Copier {
    async fn copy_tag(&self, repo: &str, tag: &str) -> Result<(), LimitError> {
        let top = self.get_manifest(repo, tag).await?;
        if let Some(children) = top.json["manifests"].as_array() {
            for child in children {
                let digest = child["digest"].as_str().unwrap_or_default();
                let manifest = self.get_manifest(repo, digest).await?;
                self.copy_blobs(repo, &manifest.json).await?;
                self.put_manifest(repo, digest, &manifest).await?;
            }
        } else {
            self.copy_blobs(repo, &top.json).await?;
        }
        self.put_manifest(repo, tag, &top).await
    }

    async fn copy_blobs(&self, repo: &str, image: &Value) -> Result<(), LimitError> {
        let layers = image["layers"].as_array().into_iter().flatten();
        for descriptor in std::iter::once(&image["config"]).chain(layers) {
            let (Some(digest), Some(size)) = (descriptor["digest"].as_str(), descriptor["size"].as_u64()) else {
                continue;
            };
            let cell = cell(&self.placed, (repo.to_owned(), digest.to_owned()));
            cell.get_or_try_init(|| self.place_blob(repo, digest, size)).await?;
        }
        Ok(())
    }

    /// Streams the blob if no repository has it yet, else mounts it from the one that does.
    async fn place_blob(&self, repo: &str, digest: &str, size: u64) -> Result<(), LimitError> {
        let first = cell(&self.holders, digest.to_owned());
        let holder = first
            .get_or_try_init(|| async {
                copy_blob(&self.client, &self.source, &self.destination, repo, digest, size).await?;
                Ok::<_, LimitError>(repo.to_owned())
            })
            .await?;
        if holder == repo {
            return Ok(());
        }
        let mount = self
            .client
            .post(format!("{}/v2/{repo}/blobs/uploads/", self.destination))
            .query(&[("mount", digest), ("from", holder)])
            .send()
            .await
            .map_err(|e| LimitError(format!("mount {repo}@{digest}: {e}")))?;
        match mount.status() {
            StatusCode::CREATED => Ok(()),
            status => Err(LimitError(format!("mount {repo}@{digest} from {holder}: {status}"))),
        }
    }

    async fn get_manifest(&self, repo: &str, reference: &str) -> Result<Manifest, LimitError> {
        let fail = |detail: String| LimitError(format!("GET manifest {repo}:{reference}: {detail}"));
        let response = self
            .client
            .get(format!("{}/v2/{repo}/manifests/{reference}", self.source))
            .header(ACCEPT, MANIFEST_MEDIA_TYPES.join(", "))
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if response.status() != StatusCode::OK {
            return Err(fail(response.status().to_string()));
        }
        let media_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.bytes().await.map_err(|e| fail(e.to_string()))?;
        let json = serde_json::from_slice(&body).map_err(|e| fail(e.to_string()))?;
        Ok(Manifest { media_type, body, json })
    }

    async fn put_manifest(&self, repo: &str, reference: &str, manifest: &Manifest) -> Result<(), LimitError> {
        let response = self
            .client
            .put(format!("{}/v2/{repo}/manifests/{reference}", self.destination))
            .header(CONTENT_TYPE, &manifest.media_type)
            .body(manifest.body.clone())
            .send()
            .await
            .map_err(|e| LimitError(format!("PUT manifest {repo}:{reference}: {e}")))?;
        match response.status() {
            StatusCode::CREATED => Ok(()),
            status => Err(LimitError(format!("PUT manifest {repo}:{reference}: {status}"))),
        }
    }
}

/// The cell for `key`, made on first use.
fn cell<K: std::hash::Hash + Eq, V>(cells: &Cells<K, V>, key: K) -> Arc<OnceCell<V>> {
    let mut cells = cells.lock().unwrap_or_else(|e| e.into_inner());
    Arc::clone(cells.entry(key).or_default())
}
