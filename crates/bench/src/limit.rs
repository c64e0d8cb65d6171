//! The plain limit: the simplest parallel client streaming every distinct blob once from
//! source to destination (`GET` → `POST` upload → one monolithic streaming `PUT`).
//!
//! It moves the bytes any complete mirror must move and nothing else (no manifests, no
//! mounts into other repositories, no existence checks), so a tool that copies the same
//! corpus cannot do much better on this machine.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Body, Client, StatusCode};

use ocisync_testkit::client::resolve;
use ocisync_testkit::image::Blob;

/// Blobs in flight at once.
pub const WORKERS: usize = 8;

/// Why a blob could not be streamed.
#[derive(Debug)]
pub struct LimitError(pub String);

impl std::fmt::Display for LimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Streams each `(repository, blob)` from `source` to the same repository at
/// `destination` (base URLs) with [`WORKERS`] tasks; returns the wall time.
pub async fn stream_blobs(source: &str, destination: &str, blobs: Vec<(String, Blob)>) -> Result<Duration, LimitError> {
    let client = Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| LimitError(format!("build client: {e}")))?;
    let blobs = Arc::new(blobs);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(WORKERS);
    for _ in 0..WORKERS {
        let (client, blobs, next) = (client.clone(), Arc::clone(&blobs), Arc::clone(&next));
        let (source, destination) = (source.to_owned(), destination.to_owned());
        workers.push(tokio::spawn(async move {
            loop {
                let Some((repo, blob)) = blobs.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    return Ok(());
                };
                copy_blob(&client, &source, &destination, repo, &blob.digest, blob.size()).await?;
            }
        }));
    }
    for worker in workers {
        worker.await.map_err(|e| LimitError(format!("worker died: {e}")))??;
    }
    Ok(started.elapsed())
}

/// Streams one blob: `GET` from the source, `POST` an upload, one monolithic `PUT`.
pub(super) async fn copy_blob(
    client: &Client,
    source: &str,
    destination: &str,
    repo: &str,
    digest: &str,
    size: u64,
) -> Result<(), LimitError> {
    let fail = |what: &str, detail: String| LimitError(format!("{what} {repo}@{digest}: {detail}"));
    let download = client
        .get(format!("{source}/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .map_err(|e| fail("GET", e.to_string()))?;
    if download.status() != StatusCode::OK {
        return Err(fail("GET", download.status().to_string()));
    }
    let start_url = format!("{destination}/v2/{repo}/blobs/uploads/");
    let session = client
        .post(&start_url)
        .send()
        .await
        .map_err(|e| fail("POST", e.to_string()))?;
    let location = session
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .filter(|_| session.status() == StatusCode::ACCEPTED)
        .ok_or_else(|| fail("POST", format!("{} without Location", session.status())))?;
    let mut upload_url = resolve(&start_url, location);
    upload_url.query_pairs_mut().append_pair("digest", digest);
    let upload = client
        .put(upload_url)
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_LENGTH, size)
        .body(Body::wrap_stream(download.bytes_stream()))
        .send()
        .await
        .map_err(|e| fail("PUT", e.to_string()))?;
    if upload.status() != StatusCode::CREATED {
        return Err(fail("PUT", upload.status().to_string()));
    }
    Ok(())
}
