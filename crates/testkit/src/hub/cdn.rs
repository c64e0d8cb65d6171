//! [`Cdn`]: the other origin that blob downloads are redirected to. It serves blob files
//! straight from the backing registry's storage, to anyone holding a signed URL, and
//! records every request (with any `Authorization` header, which must never arrive).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest as _, Sha256};

use crate::redirect::{lock, record, Log, SeenRequest};
use crate::serve::LocalServer;

/// Where blobs live under the storage root, in distribution's layout. Docker Hub's CDN
/// URLs carry the same path (`/registry-v2/docker/registry/v2/blobs/sha256/ab/ab…/data`).
const URL_PREFIX: &str = "/registry-v2/";

/// A running CDN server; stops on drop.
pub(crate) struct Cdn {
    server: LocalServer,
    log: Log,
    signer: UrlSigner,
}

/// Signs blob URLs, like a pre-signed object-storage URL: the query authorizes one path,
/// not a header.
#[derive(Clone)]
pub(crate) struct UrlSigner {
    cdn_url: String,
    secret: String,
}

impl UrlSigner {
    /// The signed CDN URL of the blob `digest` (`sha256:…`), or `None` if `digest` is not
    /// a well-formed sha256 or sha512 digest.
    pub(crate) fn blob_url(&self, digest: &str) -> Option<String> {
        let path = blob_path(digest)?;
        let url_path = format!("{URL_PREFIX}{path}");
        Some(format!(
            "{}{url_path}?verify={}",
            self.cdn_url,
            signature(&self.secret, &url_path)
        ))
    }
}

/// What `verify=` must be for `url_path`.
fn signature(secret: &str, url_path: &str) -> String {
    hex::encode(Sha256::digest(format!("{secret}\n{url_path}")))
}

impl Cdn {
    /// Serves the blobs under `storage_root` (a distribution filesystem storage root).
    pub(crate) fn start(storage_root: PathBuf) -> Cdn {
        let mut secret = [0_u8; 16];
        SystemRandom::new()
            .fill(&mut secret)
            .expect("testkit: random CDN signing secret");
        let log: Log = Arc::default();
        let secret = hex::encode(secret);
        let handler_log = Arc::clone(&log);
        let handler_secret = secret.clone();
        let server = LocalServer::start(
            "cdn",
            Arc::new(move |parts: &Parts, _body: &Bytes| {
                record(&handler_log, parts);
                answer(parts, &storage_root, &handler_secret)
            }),
        );
        let signer = UrlSigner {
            cdn_url: server.url(),
            secret,
        };
        Cdn { server, log, signer }
    }

    pub(crate) fn url(&self) -> String {
        self.server.url()
    }

    pub(crate) fn signer(&self) -> UrlSigner {
        self.signer.clone()
    }

    pub(crate) fn requests(&self) -> Vec<SeenRequest> {
        lock(&self.log).clone()
    }
}

/// `docker/registry/v2/blobs/ALGO/XX/HEX/data` for a well-formed digest.
fn blob_path(digest: &str) -> Option<String> {
    let (algorithm, hex) = digest.split_once(':')?;
    let length = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => return None,
    };
    let well_formed = hex.len() == length && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    well_formed.then(|| format!("docker/registry/v2/blobs/{algorithm}/{}/{hex}/data", &hex[..2]))
}

/// The storage path a CDN URL path names, if it is one the signer could have made (so
/// no `..` and nothing outside the blobs).
fn storage_path(url_path: &str) -> Option<&str> {
    let path = url_path.strip_prefix(URL_PREFIX)?;
    let components: Vec<&str> = path.split('/').collect();
    let ["docker", "registry", "v2", "blobs", algorithm, _, hex, "data"] = components.as_slice() else {
        return None;
    };
    (blob_path(&format!("{algorithm}:{hex}"))? == path).then_some(path)
}

/// 200 with the blob for a signed URL, 403 for a bad signature, 404 otherwise.
fn answer(parts: &Parts, storage_root: &Path, secret: &str) -> Response<Full<Bytes>> {
    let url_path = parts.uri.path();
    let verify = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("verify="));
    let status = match (&parts.method, storage_path(url_path)) {
        (&Method::GET | &Method::HEAD, Some(_)) if verify != Some(signature(secret, url_path).as_str()) => {
            StatusCode::FORBIDDEN
        }
        (&Method::GET | &Method::HEAD, Some(path)) => match std::fs::read(storage_root.join(path)) {
            // Read whole: the CDN is for test-sized blobs.
            Ok(bytes) => {
                let mut response = Response::new(Full::new(Bytes::from(bytes)));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
                return response;
            }
            Err(_) => StatusCode::NOT_FOUND,
        },
        (&Method::GET | &Method::HEAD, None) => StatusCode::NOT_FOUND,
        _ => StatusCode::METHOD_NOT_ALLOWED,
    };
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::{blob_path, storage_path};

    #[test]
    fn only_well_formed_digests_have_a_path() {
        let hex = "ab".repeat(32);
        assert_eq!(
            blob_path(&format!("sha256:{hex}")),
            Some(format!("docker/registry/v2/blobs/sha256/ab/{hex}/data"))
        );
        assert_eq!(blob_path("sha256:abc"), None);
        assert_eq!(blob_path(&format!("md5:{hex}")), None);
        assert_eq!(blob_path(&format!("sha256:{}", "AB".repeat(32))), None);
        assert_eq!(blob_path(&format!("sha256:../{}", "a".repeat(61))), None);
    }

    #[test]
    fn only_blob_paths_are_served() {
        let hex = "ab".repeat(32);
        let path = format!("docker/registry/v2/blobs/sha256/ab/{hex}/data");
        assert_eq!(storage_path(&format!("/registry-v2/{path}")), Some(path.as_str()));
        let wrong_prefix = format!("docker/registry/v2/blobs/sha256/cd/{hex}/data");
        assert_eq!(storage_path(&format!("/registry-v2/{wrong_prefix}")), None);
        assert_eq!(
            storage_path("/registry-v2/docker/registry/v2/repositories/a/_layers"),
            None
        );
        assert_eq!(storage_path(&format!("/{path}")), None);
    }
}
