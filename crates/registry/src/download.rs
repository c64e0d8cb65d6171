//! Blob downloads: the `GET` (from an offset on, `Range: bytes=N-`, when resuming) and
//! the layers around its body: resumption, the rate floor, the bandwidth cap.

use std::sync::Arc;

use futures_util::StreamExt;
use ocisync_oci::{BlobStream, Descriptor, RepoName, StoreError};
use reqwest::header::CONTENT_RANGE;
use reqwest::StatusCode;
use url::Url;

use crate::bandwidth::capped;
use crate::client::Endpoint;
use crate::rate_floor::with_rate_floor;
use crate::resume::{content_range_continues, resuming, Continuation, Reopen};
use crate::status::{error_from_response, transport_error};

/// The blob's stream: continued after breaks, held to the rate floor, within the
/// registry's bandwidth.
pub async fn download(
    endpoint: &Arc<Endpoint>,
    repo: &RepoName,
    descriptor: &Descriptor,
    url: Url,
    what: String,
) -> Result<BlobStream, StoreError> {
    let size = descriptor.size;
    let first = open_at(endpoint, repo, &url, &what, 0, size).await?;
    let reopen: Reopen = {
        let (endpoint, repo, what) = (Arc::clone(endpoint), repo.clone(), what.clone());
        Arc::new(move |offset| {
            let (endpoint, repo, url, what) = (Arc::clone(&endpoint), repo.clone(), url.clone(), what.clone());
            Box::pin(async move { open_at(&endpoint, &repo, &url, &what, offset, size).await })
        })
    };
    let stream = resuming(first.stream, reopen);
    // The floor sees the continuations as one download: a drip does not get a fresh
    // window with each new connection.
    let stream = match endpoint.min_transfer_rate {
        Some(floor) => with_rate_floor(stream, floor, what),
        None => stream,
    };
    Ok(match &endpoint.bandwidth {
        Some(bandwidth) => capped(stream, bandwidth.clone()),
        None => stream,
    })
}

/// One `GET` of the blob from `offset` on (of `size` bytes in all).
async fn open_at(
    endpoint: &Endpoint,
    repo: &RepoName,
    url: &Url,
    what: &str,
    offset: u64,
    size: u64,
) -> Result<Continuation, StoreError> {
    let range = (offset > 0).then(|| format!("bytes={offset}-"));
    let (response, place) = endpoint.get_blob(repo, what, url, range.as_deref()).await?;
    let skip = match response.status() {
        // The whole blob: what was delivered already is dropped.
        StatusCode::OK => offset,
        StatusCode::PARTIAL_CONTENT if offset > 0 => {
            let content_range = response
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            if !content_range_continues(content_range, offset, size) {
                return Err(StoreError::Invalid {
                    what: what.to_owned(),
                    reason: format!(
                        "asked for bytes {offset}- of {size} to resume, got Content-Range \"{content_range}\""
                    ),
                });
            }
            0
        }
        _ => return Err(error_from_response(what.to_owned(), response).await),
    };
    // The download keeps its place under the request limit until the stream ends.
    let stream_what = what.to_owned();
    let stream: BlobStream = Box::pin(response.bytes_stream().map(move |chunk| {
        let _held = &place;
        chunk.map_err(|error| transport_error(stream_what.clone(), error))
    }));
    Ok(Continuation { stream, skip })
}
