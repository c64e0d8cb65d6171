//! Long blob transfers against a real docker-registry (distribution 2.8), with the
//! counting proxy in between: downloads that resume, the bandwidth cap, chunked uploads.

mod bandwidth;
mod chunked;
mod resume;

use futures_util::StreamExt;
use ocisync_oci::{BlobStream, Descriptor, RepoName, StoreError};
use ocisync_testkit::Blob;

const MIB: usize = 1 << 20;

fn repo(name: &str) -> RepoName {
    name.parse().unwrap()
}

fn descriptor(blob: &Blob) -> Descriptor {
    Descriptor::new(
        blob.media_type.clone(),
        blob.digest.parse().unwrap(),
        blob.bytes.len() as u64,
    )
}

/// Every byte of `stream`, or its first error.
async fn read_all(mut stream: BlobStream) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk?);
    }
    Ok(bytes)
}

/// `blob` as a stream of 64 KiB chunks.
fn body_of(blob: &Blob) -> BlobStream {
    let chunks: Vec<Result<bytes::Bytes, StoreError>> = (0..blob.bytes.len())
        .step_by(64 * 1024)
        .map(|start| Ok(blob.bytes.slice(start..(start + 64 * 1024).min(blob.bytes.len()))))
        .collect();
    Box::pin(futures_util::stream::iter(chunks))
}
