//! Reading response bodies that a registry (or whoever answers for it) controls, never
//! more than a cap: a hostile server must not be able to fill our memory.

use bytes::{Bytes, BytesMut};
use ocisync_oci::StoreError;
use reqwest::Response;

use crate::status::transport_error;

/// Most bytes of a token service's answer read (a JWT with a certificate chain is a few KiB).
pub const TOKEN_BODY_LIMIT: usize = 256 * 1024;

/// Reads at most `limit` bytes of `response`'s body; a longer body is an error, and
/// what is beyond the limit is never read.
pub async fn read_capped(what: &str, mut response: Response, limit: usize) -> Result<Bytes, StoreError> {
    if response.content_length().is_some_and(|length| length > limit as u64) {
        return Err(too_large(what, limit));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| transport_error(what.to_owned(), error))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large(what, limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn too_large(what: &str, limit: usize) -> StoreError {
    StoreError::Invalid {
        what: what.to_owned(),
        reason: format!("response body is larger than {limit} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use futures_util::StreamExt as _;

    use super::*;

    /// A 200 whose body is `kib` KiB, streamed without a length; counts the KiB pulled.
    fn streamed(kib: usize) -> (Response, Arc<AtomicUsize>) {
        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&pulled);
        let chunks = futures_util::stream::iter(0..kib).map(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 1024]))
        });
        let response = http::Response::builder()
            .status(200)
            .body(reqwest::Body::wrap_stream(chunks))
            .unwrap();
        (Response::from(response), pulled)
    }

    #[tokio::test]
    async fn a_huge_token_body_is_refused_without_being_read_whole() {
        // 64 MiB of token answer: reading stops just past the limit.
        let (response, pulled) = streamed(64 * 1024);
        let error = read_capped("token", response, TOKEN_BODY_LIMIT).await.unwrap_err();
        assert!(error.to_string().contains("larger than 262144 bytes"), "{error}");
        let pulled = pulled.load(Ordering::SeqCst);
        assert!(pulled <= TOKEN_BODY_LIMIT / 1024 + 1, "{pulled} KiB read");
        let (response, _) = streamed(2);
        assert_eq!(
            read_capped("token", response, TOKEN_BODY_LIMIT).await.unwrap().len(),
            2048
        );
    }
}
