//! Blob downloads that continue where they broke: a stream cut after N bytes asks for
//! the rest (`Range: bytes=N-`) and goes on, so the caller sees one unbroken stream.
//!
//! The bytes already delivered went downstream (into the digest check and the upload),
//! so the continuation must start exactly at N: a `206` whose `Content-Range` starts at
//! N is taken as is; a `200` (a registry that ignores `Range`) is read from the start
//! and its first N bytes dropped. The digest is still checked over the whole stream by
//! the caller, which never learns that a part came over another connection.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::{stream, StreamExt};
use ocisync_oci::{BlobStream, StoreError};

/// Continuations of one blob download at most: enough for a long layer over a link that
/// breaks every few tens of MiB, few enough that a broken upstream fails soon.
pub const MAX_RESUMES: u32 = 16;

/// The rest of a blob, from the offset asked for.
pub struct Continuation {
    pub stream: BlobStream,
    /// Bytes at its start that were delivered already (all of them before the offset,
    /// when the registry answered the whole blob instead of the range).
    pub skip: u64,
}

/// Asks for the blob from an offset on.
pub type Reopen = Arc<dyn Fn(u64) -> BoxFuture<'static, Result<Continuation, StoreError>> + Send + Sync>;

struct Resuming {
    inner: BlobStream,
    reopen: Reopen,
    /// Bytes passed on so far.
    delivered: u64,
    /// Bytes of `inner` still to drop before passing any on.
    skip: u64,
    resumes_left: u32,
    /// An error was passed on: nothing follows it.
    failed: bool,
}

/// `first` (the blob from its start), continued through `reopen` after each transient
/// failure, at most [`MAX_RESUMES`] times.
pub fn resuming(first: BlobStream, reopen: Reopen) -> BlobStream {
    let state = Resuming {
        inner: first,
        reopen,
        delivered: 0,
        skip: 0,
        resumes_left: MAX_RESUMES,
        failed: false,
    };
    Box::pin(stream::unfold(state, |mut state| async move {
        if state.failed {
            return None;
        }
        let item = state.next().await?;
        state.failed = item.is_err();
        Some((item, state))
    }))
}

impl Resuming {
    async fn next(&mut self) -> Option<Result<bytes::Bytes, StoreError>> {
        loop {
            let cause = match self.inner.next().await? {
                Ok(mut chunk) => {
                    if self.skip > 0 {
                        // Lossless: the cut is at most the chunk's length.
                        let cut = self.skip.min(chunk.len() as u64) as usize;
                        self.skip -= cut as u64;
                        chunk = chunk.slice(cut..);
                        if chunk.is_empty() {
                            continue;
                        }
                    }
                    self.delivered += chunk.len() as u64;
                    return Some(Ok(chunk));
                }
                Err(error) => error,
            };
            if let Err(error) = self.resume(cause).await {
                return Some(Err(error));
            }
        }
    }

    /// Replaces the broken stream with its continuation; the error when the failure is
    /// not worth one or no continuation could be had.
    async fn resume(&mut self, mut cause: StoreError) -> Result<(), StoreError> {
        while cause.is_transient() && self.resumes_left > 0 {
            self.resumes_left -= 1;
            tracing::debug!(offset = self.delivered, error = %cause, "blob download broke; resuming");
            match (self.reopen)(self.delivered).await {
                Ok(continuation) => {
                    self.inner = continuation.stream;
                    self.skip = continuation.skip;
                    return Ok(());
                }
                Err(error) => cause = error,
            }
        }
        Err(cause)
    }
}

/// Whether `Content-Range` (`bytes START-END/TOTAL`, TOTAL possibly `*`) answers a
/// request for the blob of `size` bytes from `offset` on.
pub fn content_range_continues(value: &str, offset: u64, size: u64) -> bool {
    let Some(range) = value.trim().strip_prefix("bytes ") else {
        return false;
    };
    let Some((span, total)) = range.split_once('/') else {
        return false;
    };
    let Some((start, end)) = span.split_once('-') else {
        return false;
    };
    let (Ok(start), Ok(end)) = (start.trim().parse::<u64>(), end.trim().parse::<u64>()) else {
        return false;
    };
    let total_fits = match total.trim() {
        "*" => true,
        total => total.parse::<u64>() == Ok(size),
    };
    start == offset && end >= start && end < size && total_fits
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use bytes::Bytes;

    use super::*;

    fn broken(what: &str) -> StoreError {
        StoreError::Transport {
            what: what.to_owned(),
            source: "connection reset".into(),
        }
    }

    /// The bytes `0..size` as a stream of `chunk`-byte pieces from `from`, broken after
    /// `cut_after` of them (if any).
    fn piece(content: &Arc<Vec<u8>>, from: usize, chunk: usize, cut_after: Option<usize>) -> BlobStream {
        let content = Arc::clone(content);
        let end = cut_after.map_or(content.len(), |cut| (from + cut).min(content.len()));
        let mut items: Vec<Result<Bytes, StoreError>> = content[from..end]
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        if cut_after.is_some() && end < content.len() {
            items.push(Err(broken("blob")));
        }
        Box::pin(stream::iter(items))
    }

    async fn collect(stream: BlobStream) -> (Vec<u8>, Option<StoreError>) {
        let mut bytes = Vec::new();
        let mut stream = stream;
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(error) => return (bytes, Some(error)),
            }
        }
        (bytes, None)
    }

    fn content(size: usize) -> Arc<Vec<u8>> {
        Arc::new((0..size).map(|i| (i * 7 % 251) as u8).collect())
    }

    #[tokio::test]
    async fn a_cut_stream_continues_from_the_offset_it_reached() {
        let content = content(10_000);
        let offsets = Arc::new(std::sync::Mutex::new(Vec::new()));
        let reopen: Reopen = {
            let (content, offsets) = (Arc::clone(&content), Arc::clone(&offsets));
            Arc::new(move |offset| {
                offsets.lock().unwrap().push(offset);
                // Each continuation breaks again after 3,000 bytes, but the last.
                let stream = piece(&content, offset as usize, 512, Some(3000));
                Box::pin(async move { Ok(Continuation { stream, skip: 0 }) })
            })
        };
        let (bytes, error) = collect(resuming(piece(&content, 0, 512, Some(2500)), reopen)).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(bytes, *content, "byte-exact");
        assert_eq!(*offsets.lock().unwrap(), [2500, 5500, 8500]);
    }

    #[tokio::test]
    async fn a_whole_answer_instead_of_the_range_drops_what_was_delivered() {
        let content = content(5000);
        let reopen: Reopen = {
            let content = Arc::clone(&content);
            Arc::new(move |offset| {
                let stream = piece(&content, 0, 700, None);
                Box::pin(async move { Ok(Continuation { stream, skip: offset }) })
            })
        };
        let (bytes, error) = collect(resuming(piece(&content, 0, 300, Some(1234)), reopen)).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(bytes, *content);
    }

    #[tokio::test]
    async fn resumes_are_bounded_and_the_last_failure_is_passed_on() {
        let content = content(100_000);
        let calls = Arc::new(AtomicU32::new(0));
        let reopen: Reopen = {
            let (content, calls) = (Arc::clone(&content), Arc::clone(&calls));
            Arc::new(move |offset| {
                calls.fetch_add(1, Ordering::SeqCst);
                let stream = piece(&content, offset as usize, 10, Some(10));
                Box::pin(async move { Ok(Continuation { stream, skip: 0 }) })
            })
        };
        let (bytes, error) = collect(resuming(piece(&content, 0, 10, Some(10)), reopen)).await;
        assert!(error.is_some_and(|error| error.is_transient()));
        assert_eq!(calls.load(Ordering::SeqCst), MAX_RESUMES);
        assert_eq!(bytes.len(), 10 * (MAX_RESUMES as usize + 1));
        assert_eq!(bytes[..], content[..bytes.len()], "what came is the blob's start");
    }

    #[tokio::test]
    async fn a_lasting_failure_is_not_resumed() {
        let calls = Arc::new(AtomicU32::new(0));
        let reopen: Reopen = {
            let calls = Arc::clone(&calls);
            Arc::new(move |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                Box::pin(async { Err(broken("never")) })
            })
        };
        let first: BlobStream = Box::pin(stream::iter(vec![Err(StoreError::Invalid {
            what: "blob".into(),
            reason: "not resumable".into(),
        })]));
        let (_, error) = collect(resuming(first, reopen)).await;
        assert!(matches!(error, Some(StoreError::Invalid { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn content_range_must_start_at_the_offset_and_fit_the_blob() {
        assert!(content_range_continues("bytes 100-999/1000", 100, 1000));
        assert!(content_range_continues("bytes 100-999/*", 100, 1000));
        assert!(
            !content_range_continues("bytes 0-999/1000", 100, 1000),
            "from the start"
        );
        assert!(
            !content_range_continues("bytes 100-999/2000", 100, 1000),
            "another size"
        );
        assert!(
            !content_range_continues("bytes 100-1000/1000", 100, 1000),
            "past the end"
        );
        assert!(!content_range_continues("100-999/1000", 100, 1000), "no unit");
        assert!(!content_range_continues("bytes */1000", 100, 1000), "unsatisfied");
        assert!(!content_range_continues("", 100, 1000));
    }
}
