//! Reading a registry back and asserting a mirror is complete and never dangling.
//!
//! Reads follow `Link: <...>; rel="next"` pagination. The assertions walk manifests
//! recursively (index → child manifests by digest, image → config + layers) and panic
//! naming the registry, repository, tag and digest that is missing or wrong.

use std::collections::HashSet;

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::client::{describe, next_link, resolve, trim_base, RegistryClient};
use crate::image::{sha256_digest, MANIFEST_MEDIA_TYPES};

/// Upper bound on pages followed, against `Link` loops.
const MAX_PAGES: usize = 10_000;

/// Repositories in the registry's catalog (all pages), sorted (anonymous client).
pub async fn catalog(base_url: &str) -> Vec<String> {
    RegistryClient::new().catalog(base_url).await
}

/// Tags of `repo` (all pages), sorted; empty if the repository is unknown (anonymous).
pub async fn tags(base_url: &str, repo: &str) -> Vec<String> {
    RegistryClient::new().tags(base_url, repo).await
}

/// `(bytes, content type, sha256 digest of bytes)` of a manifest, `None` on 404
/// (anonymous client).
pub async fn manifest(base_url: &str, repo: &str, reference: &str) -> Option<(Bytes, String, String)> {
    RegistryClient::new().manifest(base_url, repo, reference).await
}

/// Whether `HEAD /v2/<repo>/blobs/<digest>` answers 200 (anonymous client).
pub async fn blob_exists(base_url: &str, repo: &str, digest: &str) -> bool {
    RegistryClient::new().blob_exists(base_url, repo, digest).await
}

/// A blob's content, `None` on 404 (anonymous client).
pub async fn blob(base_url: &str, repo: &str, digest: &str) -> Option<Bytes> {
    RegistryClient::new().blob(base_url, repo, digest).await
}

/// For each `(src_repo, dst_repo)`: every tag of `src_repo` exists in `dst_repo` with
/// the identical manifest digest, and everything it references (recursively) exists in
/// `dst_repo` (anonymous clients).
pub async fn assert_mirror_complete(src: &str, dst: &str, repos: &[(&str, &str)]) {
    let client = RegistryClient::new();
    assert_mirror_complete_with(&client, src, &client, dst, repos).await;
}

/// [`assert_mirror_complete`] with explicit clients (e.g. with basic auth).
pub async fn assert_mirror_complete_with(
    src_client: &RegistryClient,
    src: &str,
    dst_client: &RegistryClient,
    dst: &str,
    repos: &[(&str, &str)],
) {
    for (src_repo, dst_repo) in repos {
        let src_tags = src_client.tags(src, src_repo).await;
        assert!(
            !src_tags.is_empty(),
            "testkit: source {src}/{src_repo} has no tags; nothing to compare"
        );
        let mut seen = HashSet::new();
        for tag in &src_tags {
            let (_, _, src_digest) = src_client
                .manifest(src, src_repo, tag)
                .await
                .unwrap_or_else(|| panic!("testkit: source {src}/{src_repo}:{tag} vanished"));
            let Some((_, _, dst_digest)) = dst_client.manifest(dst, dst_repo, tag).await else {
                panic!(
                    "testkit: mirror incomplete: {dst}/{dst_repo}:{tag} is missing \
                     (source {src}/{src_repo}:{tag} is {src_digest})"
                );
            };
            assert_eq!(
                dst_digest, src_digest,
                "testkit: mirror differs: {dst}/{dst_repo}:{tag} is {dst_digest}, \
                 source {src}/{src_repo}:{tag} is {src_digest}"
            );
            dst_client.walk(dst, dst_repo, tag, &src_digest, &mut seen).await;
        }
    }
}

/// Every tag of `repo` in `base_url` has its full closure present: no dangling child
/// manifest or blob (anonymous client).
pub async fn assert_closure(base_url: &str, repo: &str) {
    RegistryClient::new().assert_closure(base_url, repo).await;
}

impl RegistryClient {
    /// Repositories in the catalog (all pages), sorted.
    pub async fn catalog(&self, base_url: &str) -> Vec<String> {
        self.catalog_paged(base_url, 100).await
    }

    /// Like [`catalog`](Self::catalog), asking for `page_size` entries per page.
    pub async fn catalog_paged(&self, base_url: &str, page_size: usize) -> Vec<String> {
        let url = format!("{}/v2/_catalog?n={page_size}", trim_base(base_url));
        let mut repos = self.paged_list(&url, "repositories", false).await.unwrap_or_default();
        repos.sort();
        repos
    }

    /// Tags of `repo` (all pages), sorted; empty if the repository is unknown.
    pub async fn tags(&self, base_url: &str, repo: &str) -> Vec<String> {
        let url = format!("{}/v2/{repo}/tags/list", trim_base(base_url));
        let mut tags = self.paged_list(&url, "tags", true).await.unwrap_or_default();
        tags.sort();
        tags
    }

    /// Follows `Link` pagination collecting the string array `field`. `None` on a 404
    /// when `tolerate_404`.
    async fn paged_list(&self, first_url: &str, field: &str, tolerate_404: bool) -> Option<Vec<String>> {
        let mut out = Vec::new();
        let mut url = first_url.to_owned();
        for _ in 0..MAX_PAGES {
            let what = format!("GET {url}");
            let response = self.send(self.request(Method::GET, &url), &what).await;
            if tolerate_404 && response.status() == StatusCode::NOT_FOUND {
                return None;
            }
            if response.status() != StatusCode::OK {
                panic!("testkit: {what}: {}", describe(response).await);
            }
            let next = next_link(response.headers()).map(|n| resolve(&url, &n).to_string());
            let bytes = response
                .bytes()
                .await
                .unwrap_or_else(|e| panic!("testkit: {what}: reading body: {e}"));
            let body: Value =
                serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("testkit: {what}: bad JSON: {e}"));
            // A repository without tags may answer `"tags": null`.
            if let Some(items) = body.get(field).and_then(Value::as_array) {
                out.extend(items.iter().filter_map(|v| v.as_str().map(str::to_owned)));
            }
            match next {
                Some(next) if next != url => url = next,
                _ => return Some(out),
            }
        }
        panic!("testkit: more than {MAX_PAGES} pages following Link from {first_url}");
    }

    /// `(bytes, content type, sha256 digest of bytes)` of a manifest; `None` on 404.
    pub async fn manifest(&self, base_url: &str, repo: &str, reference: &str) -> Option<(Bytes, String, String)> {
        let url = format!("{}/v2/{repo}/manifests/{reference}", trim_base(base_url));
        let what = format!("GET {url}");
        let response = self
            .send(
                self.request(Method::GET, &url)
                    .header(ACCEPT, MANIFEST_MEDIA_TYPES.join(", ")),
                &what,
            )
            .await;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return None,
            _ => panic!("testkit: {what}: {}", describe(response).await),
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("testkit: {what}: reading body: {e}"));
        let digest = sha256_digest(&bytes);
        Some((bytes, content_type, digest))
    }

    /// Whether `HEAD /v2/<repo>/blobs/<digest>` answers 200.
    pub async fn blob_exists(&self, base_url: &str, repo: &str, digest: &str) -> bool {
        self.blob_size(base_url, repo, digest).await.is_some()
    }

    /// `Content-Length` of a blob per `HEAD` (0 if absent); `None` on 404.
    pub async fn blob_size(&self, base_url: &str, repo: &str, digest: &str) -> Option<u64> {
        let url = format!("{}/v2/{repo}/blobs/{digest}", trim_base(base_url));
        let what = format!("HEAD {url}");
        let response = self.send(self.request(Method::HEAD, &url), &what).await;
        match response.status() {
            // Read the header: reqwest's content_length() is the (empty) body's for HEAD.
            StatusCode::OK => Some(
                response
                    .headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            ),
            StatusCode::NOT_FOUND => None,
            _ => panic!("testkit: {what}: {}", describe(response).await),
        }
    }

    /// A blob's content; `None` on 404.
    pub async fn blob(&self, base_url: &str, repo: &str, digest: &str) -> Option<Bytes> {
        let url = format!("{}/v2/{repo}/blobs/{digest}", trim_base(base_url));
        let what = format!("GET {url}");
        let response = self.send(self.request(Method::GET, &url), &what).await;
        match response.status() {
            StatusCode::OK => Some(
                response
                    .bytes()
                    .await
                    .unwrap_or_else(|e| panic!("testkit: {what}: reading body: {e}")),
            ),
            StatusCode::NOT_FOUND => None,
            _ => panic!("testkit: {what}: {}", describe(response).await),
        }
    }

    /// See the free function [`assert_closure`].
    pub async fn assert_closure(&self, base_url: &str, repo: &str) {
        let mut seen = HashSet::new();
        for tag in self.tags(base_url, repo).await {
            let Some((_, _, digest)) = self.manifest(base_url, repo, &tag).await else {
                panic!("testkit: {base_url}/{repo}:{tag} is listed but its manifest is missing");
            };
            self.walk(base_url, repo, &tag, &digest, &mut seen).await;
        }
    }

    /// Checks that manifest `root_digest` (reached from `tag`) and everything it
    /// references exist in `repo`, with matching digests and blob sizes. `seen` skips
    /// manifests already walked.
    async fn walk(&self, base_url: &str, repo: &str, tag: &str, root_digest: &str, seen: &mut HashSet<String>) {
        let base = trim_base(base_url);
        // (manifest digest, what referenced it)
        let mut stack = vec![(root_digest.to_owned(), format!("tag {tag}"))];
        while let Some((digest, from)) = stack.pop() {
            if !seen.insert(digest.clone()) {
                continue;
            }
            let Some((bytes, content_type, actual)) = self.manifest(base, repo, &digest).await else {
                panic!("testkit: dangling: {base}/{repo}: manifest {digest} ({from}) is missing");
            };
            assert_eq!(
                actual, digest,
                "testkit: {base}/{repo}: manifest {digest} ({from}) has content digest {actual}"
            );
            let doc: Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("testkit: {base}/{repo}: manifest {digest} ({from}) is not JSON: {e}"));
            let here = format!("{from} → {digest}");
            if let Some(children) = doc.get("manifests").and_then(Value::as_array) {
                for child in children {
                    let (child_digest, _) = descriptor(child, base, repo, &here);
                    stack.push((child_digest, format!("child of {here}")));
                }
                continue;
            }
            let config = doc.get("config").into_iter();
            let layers = doc.get("layers").and_then(Value::as_array).into_iter().flatten();
            let mut blobs = 0;
            for desc in config.chain(layers) {
                blobs += 1;
                let (blob_digest, size) = descriptor(desc, base, repo, &here);
                match self.blob_size(base, repo, &blob_digest).await {
                    None => panic!("testkit: dangling: {base}/{repo}: blob {blob_digest} ({here}) is missing"),
                    Some(actual) => assert_eq!(
                        Some(actual),
                        size,
                        "testkit: {base}/{repo}: blob {blob_digest} ({here}) has the wrong size"
                    ),
                }
            }
            assert!(
                blobs > 0,
                "testkit: {base}/{repo}: manifest {digest} ({from}, {content_type}) has neither \
                 manifests nor config/layers"
            );
        }
    }
}

/// `(digest, size)` of a descriptor JSON object.
fn descriptor(desc: &Value, base: &str, repo: &str, here: &str) -> (String, Option<u64>) {
    let digest = desc
        .get("digest")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("testkit: {base}/{repo}: descriptor without digest in {here}"));
    (digest.to_owned(), desc.get("size").and_then(Value::as_u64))
}
