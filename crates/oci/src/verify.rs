//! Verification of blob content against its descriptor while it streams.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

use crate::descriptor::Descriptor;
use crate::digest::DigestHasher;
use crate::error::StoreError;
use crate::store::BlobStream;

/// Wraps `stream` so that it fails unless its content has exactly the descriptor's size
/// and digest. The check runs before the final chunk is handed on, so a consumer that
/// stops reading at the declared size still never receives a complete wrong blob.
pub fn verify_blob_stream(stream: BlobStream, descriptor: &Descriptor, what: String) -> BlobStream {
    Box::pin(VerifyingStream {
        inner: stream,
        hasher: Some(DigestHasher::new(descriptor.digest.algorithm())),
        expected: descriptor.clone(),
        seen: 0,
        what,
    })
}

struct VerifyingStream {
    inner: BlobStream,
    /// `None` once the stream has ended or failed.
    hasher: Option<DigestHasher>,
    expected: Descriptor,
    seen: u64,
    what: String,
}

impl VerifyingStream {
    fn finish(&mut self) -> Result<(), StoreError> {
        let Some(hasher) = self.hasher.take() else {
            return Ok(());
        };
        if self.seen != self.expected.size {
            return Err(self.size_mismatch());
        }
        let actual = hasher.finish();
        if actual != self.expected.digest {
            return Err(StoreError::DigestMismatch {
                what: self.what.clone(),
                expected: self.expected.digest.clone(),
                actual,
            });
        }
        Ok(())
    }

    fn size_mismatch(&self) -> StoreError {
        StoreError::SizeMismatch {
            what: self.what.clone(),
            expected: self.expected.size,
            actual: self.seen,
        }
    }
}

impl Stream for VerifyingStream {
    type Item = Result<Bytes, StoreError>;

    fn poll_next(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.hasher.is_none() {
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_next(context) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                this.seen += chunk.len() as u64;
                if this.seen > this.expected.size {
                    this.hasher = None;
                    return Poll::Ready(Some(Err(this.size_mismatch())));
                }
                if let Some(hasher) = this.hasher.as_mut() {
                    hasher.update(&chunk);
                }
                if this.seen == this.expected.size {
                    if let Err(error) = this.finish() {
                        return Poll::Ready(Some(Err(error)));
                    }
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.hasher = None;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => match this.finish() {
                Ok(()) => Poll::Ready(None),
                Err(error) => Poll::Ready(Some(Err(error))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{stream, StreamExt};

    use super::*;
    use crate::digest::Digest;

    fn chunks(parts: &[&'static [u8]]) -> BlobStream {
        let items: Vec<Result<Bytes, StoreError>> = parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Box::pin(stream::iter(items))
    }

    async fn drain(stream: BlobStream) -> (Vec<u8>, Option<StoreError>) {
        let mut stream = stream;
        let mut content = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => content.extend_from_slice(&chunk),
                Err(error) => return (content, Some(error)),
            }
        }
        (content, None)
    }

    fn descriptor_of(content: &[u8]) -> Descriptor {
        Descriptor::new(
            "application/octet-stream",
            Digest::sha256_of(content),
            content.len() as u64,
        )
    }

    #[tokio::test]
    async fn passes_matching_content() {
        let verified = verify_blob_stream(
            chunks(&[b"hello ", b"world"]),
            &descriptor_of(b"hello world"),
            "blob".into(),
        );
        let (content, error) = drain(verified).await;
        assert_eq!(content, b"hello world");
        assert!(error.is_none());
    }

    #[tokio::test]
    async fn withholds_last_chunk_on_digest_mismatch() {
        let verified = verify_blob_stream(
            chunks(&[b"hello ", b"WORLD"]),
            &descriptor_of(b"hello world"),
            "blob".into(),
        );
        let (content, error) = drain(verified).await;
        assert_eq!(
            content, b"hello ",
            "the chunk completing a wrong blob must not be handed on"
        );
        assert!(matches!(error, Some(StoreError::DigestMismatch { .. })));
    }

    #[tokio::test]
    async fn rejects_short_and_long_content() {
        let (_, error) = drain(verify_blob_stream(
            chunks(&[b"hello"]),
            &descriptor_of(b"hello world"),
            "b".into(),
        ))
        .await;
        assert!(matches!(
            error,
            Some(StoreError::SizeMismatch {
                expected: 11,
                actual: 5,
                ..
            })
        ));
        let (_, error) = drain(verify_blob_stream(
            chunks(&[b"hello world!"]),
            &descriptor_of(b"hello world"),
            "b".into(),
        ))
        .await;
        assert!(matches!(error, Some(StoreError::SizeMismatch { .. })));
    }

    #[tokio::test]
    async fn verifies_empty_blob() {
        let (_, error) = drain(verify_blob_stream(chunks(&[]), &descriptor_of(b""), "b".into())).await;
        assert!(error.is_none());
        let mut wrong = descriptor_of(b"x");
        wrong.size = 0;
        let (_, error) = drain(verify_blob_stream(chunks(&[]), &wrong, "b".into())).await;
        assert!(matches!(error, Some(StoreError::DigestMismatch { .. })));
    }
}
