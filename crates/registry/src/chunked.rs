//! Chunked uploads of large blobs: `PATCH`es of [`ChunkedUpload::chunk_size`] bytes into
//! one session (`Content-Range: START-END`), then `PUT ?digest=`.
//!
//! Why chunks: a registry on a filesystem syncs an upload to disk when it is closed
//! (distribution 2.8: one `fsync` per request), so a 256 MiB layer in one `PUT` ends
//! with 0.15 s of the registry writing it out while nothing moves; in chunks that
//! writing happens chunk by chunk while the source goes on. Smaller blobs go in one
//! streaming `PUT`, one request.
//!
//! Above [`ChunkedUpload::resumable_above`] a chunk that fails is not the whole blob's
//! loss: the chunk under way is kept in memory (pieces of the source stream, shared, not
//! copied) until the registry acknowledges it, a `GET` on the session tells how much the
//! registry holds (`Range: 0-LAST`), and the upload goes on from there. Below it nothing
//! is kept (no memory per upload): a failed chunk fails the upload, which the engine
//! retries from the start like a failed `PUT`.
//! distribution 2.8 cancels a session whose failed chunk left part of itself behind (its
//! state token then names the wrong offset): the `GET` fails, and the whole transfer is
//! retried by the engine, as before chunks.

use bytes::Bytes;
use futures_util::StreamExt;
use ocisync_oci::{BlobStream, Descriptor, RepoName, StoreError};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Method, Response, StatusCode};
use tokio::sync::mpsc;
use url::Url;

use crate::client::{Endpoint, Scope};
use crate::status::error_from_response;

/// Which blobs go up in chunks, how large the chunks are, and which blobs' chunks are
/// kept until acknowledged so that a broken one can be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedUpload {
    /// Blobs larger than this are uploaded in chunks.
    pub above: u64,
    /// Bytes per `PATCH` (the last may be shorter); also the memory a resumable upload
    /// holds.
    pub chunk_size: u64,
    /// Chunked blobs larger than this keep the chunk under way in memory, so a broken
    /// chunk continues at the registry's offset.
    pub resumable_above: u64,
}

impl ChunkedUpload {
    /// Above 64 MiB in 16 MiB chunks, one request more per 16 MiB: the registry writes
    /// a large layer out as it comes rather than all after its last byte. Above 512 MiB
    /// resumable (a broken 2 GiB layer costs one chunk, not the layer), at 16 MiB of
    /// memory per such upload under way.
    pub const DEFAULT: ChunkedUpload = ChunkedUpload {
        above: 64 << 20,
        chunk_size: 16 << 20,
        resumable_above: 512 << 20,
    };
}

/// Chunks of one upload sent again after a failure, at most.
pub const MAX_CHUNK_RESUMES: u32 = 8;

/// The source stream of one chunked upload and what of it the registry has not yet
/// acknowledged.
struct Source {
    stream: BlobStream,
    /// Read from the stream beyond the chunk that asked (the next chunk's start).
    leftover: Option<Bytes>,
    /// The current chunk's bytes sent so far, from its start (when `resumable`).
    retained: Vec<Bytes>,
    /// Whether a broken chunk is sent again; if not, nothing is retained.
    resumable: bool,
}

impl Source {
    fn retained_len(&self) -> u64 {
        self.retained.iter().map(|piece| piece.len() as u64).sum()
    }

    /// Forgets the first `bytes` of the retained chunk (the registry has them).
    fn acknowledge(&mut self, mut bytes: u64) {
        let mut kept = Vec::with_capacity(self.retained.len());
        for piece in self.retained.drain(..) {
            if bytes >= piece.len() as u64 {
                bytes -= piece.len() as u64;
            } else {
                // Lossless: `bytes` is less than this piece's length.
                kept.push(piece.slice(bytes as usize..));
                bytes = 0;
            }
        }
        self.retained = kept;
    }

    /// The next piece of the source, at most `limit` bytes (the rest kept for later).
    async fn next_piece(&mut self, limit: u64, what: &str) -> Result<Bytes, StoreError> {
        let mut piece = match self.leftover.take() {
            Some(piece) => piece,
            None => match self.stream.next().await {
                Some(piece) => piece?,
                None => {
                    return Err(StoreError::Transport {
                        what: what.to_owned(),
                        source: "the blob's stream ended before its size".into(),
                    })
                }
            },
        };
        if piece.len() as u64 > limit {
            // Lossless: `limit` is less than this piece's length.
            self.leftover = Some(piece.split_off(limit as usize));
        }
        Ok(piece)
    }
}

/// Uploads `body` (`descriptor.size` bytes) into the session at `location` in chunks.
pub async fn upload_in_chunks(
    endpoint: &Endpoint,
    repo: &RepoName,
    descriptor: &Descriptor,
    body: BlobStream,
    location: Url,
    chunking: ChunkedUpload,
    what: &str,
) -> Result<(), StoreError> {
    let size = descriptor.size;
    let chunk_size = chunking.chunk_size.max(1);
    let mut source = Source {
        stream: body,
        leftover: None,
        retained: Vec::new(),
        resumable: size > chunking.resumable_above,
    };
    let mut location = location;
    // What the registry holds.
    let mut offset = 0;
    let mut chunk_end = size.min(chunk_size);
    let mut resumes_left = MAX_CHUNK_RESUMES;
    while offset < size {
        let failure = match send_chunk(endpoint, repo, &location, &mut source, offset, chunk_end, what).await {
            Ok(next) => {
                location = next;
                source.retained.clear();
                offset = chunk_end;
                chunk_end = size.min(offset + chunk_size);
                continue;
            }
            Err(failure) => failure,
        };
        // A failure the source caused is the source's: nothing to resume here.
        let resumable = source.resumable && !failure.from_source && failure.error.is_transient();
        if !resumable || resumes_left == 0 {
            return Err(failure.error);
        }
        resumes_left -= 1;
        let (held, next) = upload_status(endpoint, repo, &location, what).await?;
        let sent = source.retained_len();
        if held < offset || held > offset + sent {
            return Err(StoreError::Transport {
                what: what.to_owned(),
                source: format!(
                    "after a failed chunk the session holds {held} bytes, not between {offset} and {}",
                    offset + sent
                )
                .into(),
            });
        }
        tracing::debug!(offset = held, error = %failure.error, "upload chunk failed; continuing at the registry's offset");
        source.acknowledge(held - offset);
        offset = held;
        location = next;
    }
    finish(endpoint, repo, descriptor, location, what).await
}

/// Why a chunk failed, and whether the source stream caused it.
struct ChunkFailure {
    error: StoreError,
    from_source: bool,
}

/// One `PATCH` of the bytes `offset..end`: what `source` retains first, then the
/// stream's. Returns the session's next location.
async fn send_chunk(
    endpoint: &Endpoint,
    repo: &RepoName,
    location: &Url,
    source: &mut Source,
    offset: u64,
    end: u64,
    what: &str,
) -> Result<Url, ChunkFailure> {
    let (sender, receiver) = mpsc::channel::<Result<Bytes, StoreError>>(4);
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    let request = endpoint.send_once(Scope::Push(repo), what, Method::PATCH, location, |request| {
        request
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, end - offset)
            .header(CONTENT_RANGE, format!("{offset}-{}", end - 1))
            .body(reqwest::Body::wrap_stream(body))
    });
    // Owns the sender: the body ends when the feed does.
    let feed = async move {
        // The retained bytes go again first (after a failure), then the stream's.
        for piece in source.retained.clone() {
            if sender.send(Ok(piece)).await.is_err() {
                return Ok(());
            }
        }
        let mut position = offset + source.retained_len();
        while position < end {
            let piece = match source.next_piece(end - position, what).await {
                Ok(piece) => piece,
                Err(error) => {
                    let _ = sender
                        .send(Err(StoreError::Invalid {
                            what: "source stream".to_owned(),
                            reason: error.to_string(),
                        }))
                        .await;
                    return Err(error);
                }
            };
            position += piece.len() as u64;
            if source.resumable {
                source.retained.push(piece.clone());
            }
            if sender.send(Ok(piece)).await.is_err() {
                // The request ended early; its error tells why.
                return Ok(());
            }
        }
        Ok(())
    };
    let (response, fed) = tokio::join!(request, feed);
    if let Err(error) = fed {
        return Err(ChunkFailure {
            error,
            from_source: true,
        });
    }
    let failure = |error| ChunkFailure {
        error,
        from_source: false,
    };
    let response = response.map_err(failure)?;
    if response.status() != StatusCode::ACCEPTED {
        return Err(failure(error_from_response(what.to_owned(), response).await));
    }
    let next = next_location(&response, location, what).map_err(failure)?;
    match held_bytes(&response) {
        Some(held) if held != end => Err(failure(StoreError::Transport {
            what: what.to_owned(),
            source: format!("the registry holds {held} bytes after a chunk up to {end}").into(),
        })),
        _ => Ok(next),
    }
}

/// `GET` on the session: how many bytes the registry holds, and where to go on.
async fn upload_status(
    endpoint: &Endpoint,
    repo: &RepoName,
    location: &Url,
    what: &str,
) -> Result<(u64, Url), StoreError> {
    let response = endpoint
        .send(Scope::Push(repo), what, Method::GET, location, |request| request)
        .await?;
    if response.status() != StatusCode::NO_CONTENT {
        let error = error_from_response(what.to_owned(), response).await;
        // A session the registry dropped is no reason to give the blob up: the engine
        // starts it afresh.
        return Err(match error {
            StoreError::NotFound { .. } | StoreError::Rejected { .. } => StoreError::Transport {
                what: what.to_owned(),
                source: format!("the upload session cannot go on: {error}").into(),
            },
            other => other,
        });
    }
    let held = held_bytes(&response).unwrap_or(0);
    Ok((held, next_location(&response, location, what)?))
}

/// The closing `PUT ?digest=` without a body.
async fn finish(
    endpoint: &Endpoint,
    repo: &RepoName,
    descriptor: &Descriptor,
    location: Url,
    what: &str,
) -> Result<(), StoreError> {
    let mut url = location;
    url.query_pairs_mut()
        .append_pair("digest", &descriptor.digest.to_string());
    let response = endpoint
        .send(Scope::Push(repo), what, Method::PUT, &url, |request| {
            request.header(CONTENT_LENGTH, 0)
        })
        .await?;
    if response.status() != StatusCode::CREATED {
        return Err(error_from_response(what.to_owned(), response).await);
    }
    Ok(())
}

/// The session's location after this answer (relative ones resolved), else the old one.
fn next_location(response: &Response, current: &Url, what: &str) -> Result<Url, StoreError> {
    match response.headers().get(LOCATION).and_then(|value| value.to_str().ok()) {
        Some(location) => current.join(location).map_err(|error| StoreError::Invalid {
            what: what.to_owned(),
            reason: format!("bad upload Location: {error}"),
        }),
        None => Ok(current.clone()),
    }
}

/// Bytes the session holds, from `Range: 0-LAST` (distribution also answers `0-0` for
/// an empty session, read as none).
fn held_bytes(response: &Response) -> Option<u64> {
    let value = response.headers().get(RANGE)?.to_str().ok()?;
    parse_held(value)
}

fn parse_held(value: &str) -> Option<u64> {
    let value = value.trim();
    let value = value.strip_prefix("bytes=").unwrap_or(value);
    let (start, last) = value.split_once('-')?;
    let (start, last) = (start.trim().parse::<u64>().ok()?, last.trim().parse::<u64>().ok()?);
    match (start, last) {
        (0, 0) => Some(0),
        (0, last) => Some(last + 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use futures_util::stream;

    use super::*;

    #[test]
    fn the_range_header_says_how_much_the_session_holds() {
        assert_eq!(parse_held("0-1048575"), Some(1 << 20));
        assert_eq!(parse_held("bytes=0-99"), Some(100));
        assert_eq!(parse_held("0-0"), Some(0), "distribution's empty session");
        assert_eq!(parse_held("5-9"), None, "not from the start");
        assert_eq!(parse_held("nonsense"), None);
    }

    fn source_of(pieces: &[&'static [u8]]) -> Source {
        let items: Vec<Result<Bytes, StoreError>> = pieces.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Source {
            stream: Box::pin(stream::iter(items)),
            leftover: None,
            retained: Vec::new(),
            resumable: true,
        }
    }

    #[tokio::test]
    async fn pieces_are_cut_at_the_chunk_end_and_the_rest_kept_for_the_next() {
        let mut source = source_of(&[b"abcdef", b"gh"]);
        assert_eq!(source.next_piece(4, "t").await.unwrap(), "abcd");
        assert_eq!(source.next_piece(10, "t").await.unwrap(), "ef");
        assert_eq!(source.next_piece(10, "t").await.unwrap(), "gh");
        assert!(source.next_piece(10, "t").await.unwrap_err().is_transient());
    }

    #[test]
    fn acknowledged_bytes_leave_the_retained_chunk() {
        let mut source = source_of(&[]);
        source.retained = vec![Bytes::from_static(b"abc"), Bytes::from_static(b"defg")];
        source.acknowledge(4);
        assert_eq!(source.retained, [Bytes::from_static(b"efg")]);
        assert_eq!(source.retained_len(), 3);
        source.acknowledge(3);
        assert!(source.retained.is_empty());
    }
}
