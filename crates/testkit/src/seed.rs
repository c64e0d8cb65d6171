//! Pushing test images into a registry with plain HTTP (monolithic blob uploads).
//!
//! Everything panics with a descriptive message on failure: this is test code. The
//! reading/verification side lives in [`crate::inspect`] and is re-exported here too.

use std::future::Future;
use std::pin::Pin;

use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};

use crate::client::{describe, resolve, trim_base, RegistryClient};
use crate::image::{Blob, Image, Manifest};

pub use crate::inspect::{assert_closure, assert_mirror_complete, blob, blob_exists, catalog, manifest, tags};

/// Pushes `image` (children by digest first, then blobs, then the top manifest as `tag`)
/// with an anonymous client.
pub async fn push_image(base_url: &str, repo: &str, tag: &str, image: &Image) {
    RegistryClient::new().push_image(base_url, repo, tag, image).await;
}

/// Uploads one blob unless the repository already has it (anonymous client).
pub async fn push_blob(base_url: &str, repo: &str, blob: &Blob) {
    RegistryClient::new().push_blob(base_url, repo, blob).await;
}

/// Puts one manifest under `reference` (a tag or its digest) with an anonymous client.
/// Everything it references must already be in the repository.
pub async fn push_manifest(base_url: &str, repo: &str, reference: &str, manifest: &Manifest) {
    RegistryClient::new()
        .push_manifest(base_url, repo, reference, manifest)
        .await;
}

/// Deletes the manifest `digest` (and with it every tag naming it, as distribution
/// 2.8 does) with an anonymous client; the registry must allow deletes.
pub async fn delete_manifest(base_url: &str, repo: &str, digest: &str) {
    RegistryClient::new().delete_manifest(base_url, repo, digest).await;
}

impl RegistryClient {
    /// `DELETE /v2/<repo>/manifests/<digest>`; panics unless the registry accepts it.
    pub async fn delete_manifest(&self, base_url: &str, repo: &str, digest: &str) {
        let base = trim_base(base_url);
        let url = format!("{base}/v2/{repo}/manifests/{digest}");
        let what = format!("delete manifest {base}/{repo}@{digest}");
        let response = self.send(self.request(Method::DELETE, &url), &what).await;
        if response.status() != StatusCode::ACCEPTED {
            panic!("testkit: {what}: {}", describe(response).await);
        }
    }

    /// Pushes `image` and tags it: child manifests (by digest, depth first) and all blobs
    /// first, then the top-level manifest under `tag`.
    pub async fn push_image(&self, base_url: &str, repo: &str, tag: &str, image: &Image) {
        self.push_content(base_url, repo, image).await;
        self.push_manifest(base_url, repo, tag, &image.manifest).await;
    }

    /// Pushes everything `image.manifest` references (not the manifest itself).
    fn push_content<'a>(
        &'a self,
        base_url: &'a str,
        repo: &'a str,
        image: &'a Image,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            for child in &image.children {
                self.push_content(base_url, repo, child).await;
                self.push_manifest(base_url, repo, &child.manifest.digest, &child.manifest)
                    .await;
            }
            for blob in &image.blobs {
                self.push_blob(base_url, repo, blob).await;
            }
        })
    }

    /// Uploads one blob (`POST` an upload session, then a monolithic `PUT` with
    /// `digest=`), unless a `HEAD` shows the repository already has it.
    pub async fn push_blob(&self, base_url: &str, repo: &str, blob: &Blob) {
        if self.blob_exists(base_url, repo, &blob.digest).await {
            return;
        }
        let base = trim_base(base_url);
        let start_url = format!("{base}/v2/{repo}/blobs/uploads/");
        let what = format!("start upload of {} to {base}/{repo}", blob.digest);
        let response = self.send(self.request(Method::POST, &start_url), &what).await;
        if response.status() != StatusCode::ACCEPTED {
            panic!("testkit: {what}: {}", describe(response).await);
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("testkit: {what}: 202 without a usable Location"))
            .to_owned();
        // Location may be absolute or relative, with or without a query already.
        let mut upload_url = resolve(&start_url, &location);
        upload_url.query_pairs_mut().append_pair("digest", &blob.digest);

        let what = format!("upload of {} ({} bytes) to {base}/{repo}", blob.digest, blob.size());
        let response = self
            .send(
                self.request(Method::PUT, upload_url.as_str())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(blob.bytes.clone()),
                &what,
            )
            .await;
        if response.status() != StatusCode::CREATED {
            panic!("testkit: {what}: {}", describe(response).await);
        }
    }

    /// Puts one manifest under `reference` with `Content-Type` = its media type, and
    /// checks the registry reports the expected digest.
    pub async fn push_manifest(&self, base_url: &str, repo: &str, reference: &str, manifest: &Manifest) {
        let base = trim_base(base_url);
        let url = format!("{base}/v2/{repo}/manifests/{reference}");
        let what = format!(
            "push manifest {} ({}) as {base}/{repo}:{reference}",
            manifest.digest, manifest.media_type
        );
        let response = self
            .send(
                self.request(Method::PUT, &url)
                    .header(CONTENT_TYPE, &manifest.media_type)
                    .body(manifest.bytes.clone()),
                &what,
            )
            .await;
        if response.status() != StatusCode::CREATED {
            panic!("testkit: {what}: {}", describe(response).await);
        }
        if let Some(digest) = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            assert_eq!(
                digest, manifest.digest,
                "testkit: {what}: registry reports a different digest"
            );
        }
    }
}
