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
