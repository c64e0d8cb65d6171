//! [`Store`] over the OCI distribution API.

mod delete;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use ocisync_oci::media_type::ACCEPT_MANIFESTS;
use ocisync_oci::{
    detect_media_type, BlobPlacement, BlobStream, Deletion, Descriptor, Digest, Manifest, Reference, RepoName, Store,
    StoreError, Tag,
};
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use url::Url;

use crate::bandwidth::capped;
use crate::chunked::upload_in_chunks;
use crate::client::{Endpoint, RegistryOptions, Scope, SetupError};
use crate::download::download;
use crate::lists::{check_name_count, parse_names, PageBudget, Referrers, PAGE_SIZE_LIMIT};
use crate::paging::next_link;
use crate::quota::{Decision, PullQuota, QuotaPermit, QuotaStatus, Refusal};
use crate::status::{error_from_response, transport_error};

/// Manifests larger than this are refused rather than buffered (the distribution spec
/// asks registries to accept at least 4 MiB).
const MANIFEST_SIZE_LIMIT: usize = 16 * 1024 * 1024;
const DIGEST_HEADER: &str = "docker-content-digest";
/// States of `RegistryStore::referrers_api`.
const API_UNKNOWN: u8 = 0;
const API_PRESENT: u8 = 1;
const API_ABSENT: u8 = 2;
/// An upload session opened by `prepare_blob` is used by the `put_blob` that follows
/// only this soon; older ones may have expired at the registry, so a new one is opened.
const PENDING_UPLOAD_MAX_AGE: Duration = Duration::from_secs(300);

/// A registry reached over HTTP(S).
pub struct RegistryStore {
    /// Shared with the blob streams, which ask for a download's rest when it breaks.
    endpoint: Arc<Endpoint>,
    /// Whether the registry has the referrers API ([`API_UNKNOWN`] until its first
    /// answer). The distribution spec forbids a 404 from a registry that has the API, so
    /// after one 404 later lookups answer `None` without a request (one per tag saved
    /// on every pass).
    referrers_api: AtomicU8,
    /// Held by the lookup that finds out, so that tags looked up at the same moment
    /// wait for its answer instead of each asking.
    referrers_probe: tokio::sync::Mutex<()>,
    /// Upload sessions `prepare_blob` opened (its 202), by repository and digest, for
    /// the `put_blob` of the same blob: one request fewer per uploaded blob.
    pending_uploads: Mutex<HashMap<(RepoName, Digest), (Url, Instant)>>,
    /// The pull quota this URL announces, and which manifest `GET`s it still allows.
    quota: PullQuota,
}

#[derive(Deserialize)]
struct CatalogPage {
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

/// A page of the referrers API: an image index.
#[derive(Deserialize)]
struct ReferrersPage {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct TagPage {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl RegistryStore {
    pub fn new(options: RegistryOptions) -> Result<Self, SetupError> {
        let quota = PullQuota::new(options.rate_limit_reserve);
        Ok(RegistryStore {
            endpoint: Arc::new(Endpoint::new(options)?),
            referrers_api: AtomicU8::new(API_UNKNOWN),
            referrers_probe: tokio::sync::Mutex::new(()),
            pending_uploads: Mutex::default(),
            quota,
        })
    }

    /// HTTP requests sent to this registry so far (every attempt).
    pub fn requests(&self) -> u64 {
        self.endpoint.requests()
    }

    /// Authenticates with `credentials` from now on (a credential helper's fresh answer);
    /// the tokens obtained with the old ones are forgotten.
    pub async fn replace_credentials(&self, credentials: Option<crate::Credentials>) {
        self.endpoint.replace_credentials(credentials).await;
    }

    /// What this pass has seen of the registry's pull quota.
    pub fn pull_quota(&self) -> QuotaStatus {
        self.quota.status()
    }

    /// Starts a new pass: the quota's window may have refilled since the last one, so
    /// the remaining count is found out afresh and a used-up quota is tried again.
    pub fn reset_pull_quota(&self) {
        self.quota.reset();
    }

    /// Waits until a manifest `GET` may be sent under the pull quota (see
    /// [`crate::quota`]); the permit counts it as in flight until its response is seen.
    async fn admit_manifest_get(&self, repo: &RepoName, url: &Url, what: &str) -> Result<QuotaPermit<'_>, StoreError> {
        loop {
            match self.quota.decide() {
                Decision::Send(permit) => return Ok(permit),
                Decision::Refuse(refusal) => return Err(refused(what, refusal)),
                Decision::Wait(changed) => changed.await,
                Decision::Probe(probe) => {
                    // Docker Hub announces the quota on a HEAD too, without counting it.
                    let ticket = self.quota.ticket();
                    let response = self
                        .endpoint
                        .send(Scope::Pull(repo), what, Method::HEAD, url, |r| {
                            r.header(ACCEPT, ACCEPT_MANIFESTS)
                        })
                        .await?;
                    self.quota
                        .observe(ticket, response.headers(), response.status().is_success());
                    if !self.quota.is_known() {
                        // The HEAD did not tell: this GET goes alone, and tells.
                        return Ok(probe.into_get());
                    }
                }
            }
        }
    }

    /// Notes a used-up quota in the gate; passes the error on.
    fn note_quota(&self, error: StoreError) -> StoreError {
        if matches!(error, StoreError::QuotaExhausted { .. }) {
            self.quota.mark_exhausted();
        }
        error
    }

    /// Reads every page of a list endpoint. Follows `Link` headers; when a registry
    /// sends none, asks for the page after the last item with `last=`.
    async fn list_all(
        &self,
        scope_repo: Option<&RepoName>,
        path: &str,
        what: &str,
        items_of: fn(&[u8]) -> Option<Vec<String>>,
    ) -> Result<Vec<String>, StoreError> {
        let page_size = self.endpoint.page_size;
        let first = {
            let mut url = self.endpoint.url(path);
            url.query_pairs_mut().append_pair("n", &page_size.to_string());
            url
        };
        let mut url = first.clone();
        let mut items: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        let mut budget = PageBudget::default();
        loop {
            let scope = match scope_repo {
                Some(repo) => Scope::Pull(repo),
                None => Scope::Catalog,
            };
            let response = self.endpoint.send(scope, what, Method::GET, &url, |r| r).await?;
            if !response.status().is_success() {
                return Err(error_from_response(what.to_owned(), response).await);
            }
            let link = next_link(response.headers(), &url);
            let body = read_limited(response, PAGE_SIZE_LIMIT, what).await?;
            budget.take(body.len(), what)?;
            let page = items_of(&body).ok_or_else(|| StoreError::Invalid {
                what: what.to_owned(),
                reason: "list response is not the expected JSON".to_owned(),
            })?;
            let page_len = page.len();
            let last = page.last().cloned();
            let known = items.len();
            items.extend(page);
            check_name_count(items.len(), what)?;
            // A registry that ignores `n`/`last` repeats itself: stop when nothing is new.
            if items.len() == known {
                return Ok(items.into_iter().collect());
            }
            url = match (link, last) {
                (Some(next), _) if self.endpoint.same_origin(&next) => next,
                (Some(_), _) => {
                    return Err(StoreError::Invalid {
                        what: what.to_owned(),
                        reason: "pagination link points to another host".to_owned(),
                    })
                }
                (None, Some(last)) if page_len == page_size => {
                    let mut next = first.clone();
                    next.query_pairs_mut().append_pair("last", &last);
                    next
                }
                _ => return Ok(items.into_iter().collect()),
            };
        }
    }

    fn manifest_url(&self, repo: &RepoName, reference: &Reference) -> Url {
        self.endpoint.url(&format!("{repo}/manifests/{reference}"))
    }

    fn what(&self, kind: &str, repo: &RepoName, reference: impl std::fmt::Display) -> String {
        format!("{} {kind} {repo}:{reference}", self.endpoint.label())
    }
}

/// The error for a manifest `GET` the quota gate did not let through.
fn refused(what: &str, refusal: Refusal) -> StoreError {
    let what = what.to_owned();
    match refusal {
        Refusal::Reserve { remaining, reserve } => StoreError::QuotaReserve {
            what,
            remaining,
            reserve,
        },
        Refusal::Exhausted => StoreError::QuotaExhausted { what },
    }
}

fn parse_repositories(body: &[u8]) -> Option<Vec<String>> {
    serde_json::from_slice::<CatalogPage>(body)
        .ok()
        .map(|page| page.repositories.unwrap_or_default())
}

fn parse_tags(body: &[u8]) -> Option<Vec<String>> {
    serde_json::from_slice::<TagPage>(body)
        .ok()
        .map(|page| page.tags.unwrap_or_default())
}

/// Reads a whole (small) response body, refusing more than `limit` bytes.
async fn read_limited(response: Response, limit: usize, what: &str) -> Result<Bytes, StoreError> {
    let mut body = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| transport_error(what.to_owned(), error))?;
        if body.len() + chunk.len() > limit {
            return Err(StoreError::Invalid {
                what: what.to_owned(),
                reason: format!("body larger than {limit} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn header_str<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|value| value.to_str().ok())
}

impl Store for RegistryStore {
    fn label(&self) -> &str {
        self.endpoint.label()
    }

    async fn catalog(&self) -> Result<Vec<RepoName>, StoreError> {
        let what = format!("{} catalog", self.endpoint.label());
        let names = self.list_all(None, "_catalog", &what, parse_repositories).await?;
        Ok(parse_names(names, &what))
    }

    async fn tags(&self, repo: &RepoName) -> Result<Vec<Tag>, StoreError> {
        let what = format!("{} tags of {repo}", self.endpoint.label());
        let names = self
            .list_all(Some(repo), &format!("{repo}/tags/list"), &what, parse_tags)
            .await?;
        Ok(parse_names(names, &what))
    }

    async fn head_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<Option<Descriptor>, StoreError> {
        let what = self.what("manifest", repo, reference);
        let url = self.manifest_url(repo, reference);
        let ticket = self.quota.ticket();
        let response = self
            .endpoint
            .send(Scope::Pull(repo), &what, Method::HEAD, &url, |r| {
                r.header(ACCEPT, ACCEPT_MANIFESTS)
            })
            .await?;
        self.quota
            .observe(ticket, response.headers(), response.status().is_success());
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(self.note_quota(error_from_response(what, response).await)),
        }
        let digest = header_str(&response, DIGEST_HEADER).and_then(|value| value.parse::<Digest>().ok());
        let media_type =
            header_str(&response, CONTENT_TYPE.as_str()).map(|v| v.split(';').next().unwrap_or("").trim().to_owned());
        let size = header_str(&response, CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<u64>().ok());
        match (digest, media_type, size) {
            (Some(digest), Some(media_type), Some(size))
                if ocisync_oci::media_type::classify(&media_type).is_some() =>
            {
                Ok(Some(Descriptor::new(media_type, digest, size)))
            }
            // Some registries answer HEAD without a digest or a usable type: read the manifest.
            _ => Ok(Some(self.manifest(repo, reference).await?.descriptor())),
        }
    }

    async fn manifest(&self, repo: &RepoName, reference: &Reference) -> Result<Manifest, StoreError> {
        let what = self.what("manifest", repo, reference);
        let url = self.manifest_url(repo, reference);
        // A manifest GET is what a pull quota counts.
        let permit = self.admit_manifest_get(repo, &url, &what).await?;
        let response = self
            .endpoint
            .send(Scope::Pull(repo), &what, Method::GET, &url, |r| {
                r.header(ACCEPT, ACCEPT_MANIFESTS)
            })
            .await?;
        self.quota
            .observe(permit.ticket(), response.headers(), response.status().is_success());
        drop(permit);
        if response.status() != StatusCode::OK {
            return Err(self.note_quota(error_from_response(what, response).await));
        }
        let content_type = header_str(&response, CONTENT_TYPE.as_str()).map(str::to_owned);
        let header_digest = header_str(&response, DIGEST_HEADER).and_then(|v| v.parse::<Digest>().ok());
        let bytes = read_limited(response, MANIFEST_SIZE_LIMIT, &what).await?;
        let expected = match reference {
            Reference::Digest(digest) => Some(digest.clone()),
            Reference::Tag(_) => header_digest,
        };
        let digest = match &expected {
            Some(expected) => expected.recompute(&bytes),
            None => Digest::sha256_of(&bytes),
        };
        if let Some(expected) = expected {
            if expected != digest {
                return Err(StoreError::DigestMismatch {
                    what,
                    expected,
                    actual: digest,
                });
            }
        }
        let media_type = detect_media_type(&bytes, content_type.as_deref()).ok_or_else(|| StoreError::Invalid {
            what: what.clone(),
            reason: "cannot tell the manifest's media type".to_owned(),
        })?;
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    async fn put_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        manifest: &Manifest,
    ) -> Result<(), StoreError> {
        let what = self.what("put manifest", repo, reference);
        let url = self.manifest_url(repo, reference);
        let response = self
            .endpoint
            .send(Scope::Push(repo), &what, Method::PUT, &url, |r| {
                r.header(CONTENT_TYPE, manifest.media_type.as_str())
                    .body(manifest.bytes.clone())
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(error_from_response(what, response).await);
        }
        // The registry names the digest it computed: it must be ours, or bytes changed on the way.
        if let Some(stored) = header_str(&response, DIGEST_HEADER).and_then(|v| v.parse::<Digest>().ok()) {
            if stored.algorithm() == manifest.digest.algorithm() && stored != manifest.digest {
                return Err(StoreError::DigestMismatch {
                    what,
                    expected: manifest.digest.clone(),
                    actual: stored,
                });
            }
        }
        Ok(())
    }

    async fn has_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool, StoreError> {
        let what = self.what("blob", repo, digest);
        let url = self.endpoint.url(&format!("{repo}/blobs/{digest}"));
        let response = self
            .endpoint
            .send(Scope::Pull(repo), &what, Method::HEAD, &url, |r| r)
            .await?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(error_from_response(what, response).await),
        }
    }

    async fn blob(&self, repo: &RepoName, descriptor: &Descriptor) -> Result<BlobStream, StoreError> {
        let what = self.what("blob", repo, &descriptor.digest);
        let url = self.endpoint.url(&format!("{repo}/blobs/{}", descriptor.digest));
        download(&self.endpoint, repo, descriptor, url, what).await
    }

    async fn put_blob(&self, repo: &RepoName, descriptor: &Descriptor, body: BlobStream) -> Result<(), StoreError> {
        let what = self.what("upload blob", repo, &descriptor.digest);
        let pending = self.take_pending_upload(repo, &descriptor.digest);
        let reused = pending.is_some();
        let location = match pending {
            Some(location) => location,
            None => match self.start_upload(repo, &what, None).await? {
                Some(location) => location,
                None => return Ok(()),
            },
        };
        let body = match &self.endpoint.bandwidth {
            Some(bandwidth) => capped(body, bandwidth.clone()),
            None => body,
        };
        if let Some(chunking) = self.endpoint.chunked_upload.filter(|c| descriptor.size > c.above) {
            let result = upload_in_chunks(&self.endpoint, repo, descriptor, body, location, chunking, &what).await;
            return match result {
                // As below: the session `prepare_blob` opened expired meanwhile.
                Err(StoreError::NotFound { .. }) if reused => Err(StoreError::Transport {
                    what,
                    source: "the upload session opened for it is gone (404)".into(),
                }),
                other => other,
            };
        }
        // One streaming PUT: cheaper for the registry than chunked PATCHes.
        let mut url = location;
        url.query_pairs_mut()
            .append_pair("digest", &descriptor.digest.to_string());
        let response = self
            .endpoint
            .send_once(Scope::Push(repo), &what, Method::PUT, &url, |request| {
                request
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, descriptor.size)
                    .body(reqwest::Body::wrap_stream(body))
            })
            .await?;
        if reused && response.status() == StatusCode::NOT_FOUND {
            // The session `prepare_blob` opened expired while the blob waited for its
            // turn; the next attempt opens a fresh one.
            return Err(StoreError::Transport {
                what,
                source: "the upload session opened for it is gone (404)".into(),
            });
        }
        if response.status() != StatusCode::CREATED {
            return Err(error_from_response(what, response).await);
        }
        Ok(())
    }

    async fn mount_blob(&self, repo: &RepoName, from: &RepoName, digest: &Digest) -> Result<bool, StoreError> {
        let what = self.what("mount blob", repo, digest);
        Ok(self.start_upload(repo, &what, Some((from, digest))).await?.is_none())
    }

    /// One `POST /blobs/uploads/?mount=<digest>&from=<from>`: 201 means the blob is in
    /// `repo` now (it was there, or got linked from `from`); 202 opens the upload that
    /// `put_blob` then uses. Replaces a `HEAD` + `POST` per blob. A registry without
    /// mounts answers 202, which is the plain upload.
    async fn prepare_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: &RepoName,
    ) -> Result<BlobPlacement, StoreError> {
        let what = self.what("prepare blob", repo, digest);
        match self.start_upload(repo, &what, Some((from, digest))).await? {
            None if from == repo => Ok(BlobPlacement::Present),
            None => Ok(BlobPlacement::Mounted),
            Some(location) => {
                let mut pending = self.pending_uploads.lock().unwrap_or_else(|e| e.into_inner());
                pending.retain(|_, (_, opened)| opened.elapsed() < PENDING_UPLOAD_MAX_AGE);
                pending.insert((repo.clone(), digest.clone()), (location, Instant::now()));
                Ok(BlobPlacement::Missing)
            }
        }
    }

    /// `GET /v2/<name>/referrers/<digest>`, following `Link` pages. A registry with the
    /// API never answers 404 here (the spec says so), so 404 means "no API".
    async fn referrers(&self, repo: &RepoName, digest: &Digest) -> Result<Option<Vec<Descriptor>>, StoreError> {
        let _probe = match self.referrers_api.load(Ordering::Acquire) {
            API_ABSENT => return Ok(None),
            API_PRESENT => None,
            _ => Some(self.referrers_probe.lock().await),
        };
        // Another lookup may have found out while this one waited.
        if self.referrers_api.load(Ordering::Acquire) == API_ABSENT {
            return Ok(None);
        }
        let what = self.what("referrers", repo, digest);
        let mut url = self.endpoint.url(&format!("{repo}/referrers/{digest}"));
        let mut referrers = Referrers::default();
        let mut budget = PageBudget::default();
        loop {
            let response = self
                .endpoint
                .send(Scope::Pull(repo), &what, Method::GET, &url, |r| {
                    r.header(ACCEPT, ocisync_oci::media_type::OCI_INDEX)
                })
                .await?;
            match response.status() {
                StatusCode::OK => self.referrers_api.store(API_PRESENT, Ordering::Release),
                StatusCode::NOT_FOUND => {
                    self.referrers_api.store(API_ABSENT, Ordering::Release);
                    return Ok(None);
                }
                _ => return Err(error_from_response(what, response).await),
            }
            let link = next_link(response.headers(), &url);
            let body = read_limited(response, PAGE_SIZE_LIMIT, &what).await?;
            budget.take(body.len(), &what)?;
            let page: ReferrersPage = serde_json::from_slice(&body).map_err(|error| StoreError::Invalid {
                what: what.clone(),
                reason: format!("referrers response is not an image index: {error}"),
            })?;
            let added = referrers.add(page.manifests, &what)?;
            url = match link {
                // A page that adds nothing new ends the list, as for tags.
                Some(next) if self.endpoint.same_origin(&next) && added => next,
                Some(next) if !self.endpoint.same_origin(&next) => {
                    return Err(StoreError::Invalid {
                        what,
                        reason: "pagination link points to another host".to_owned(),
                    })
                }
                _ => return Ok(Some(referrers.into_descriptors())),
            };
        }
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Deletion, StoreError> {
        self.delete_reference(repo, &Reference::Tag(tag.clone())).await
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Deletion, StoreError> {
        self.delete_reference(repo, &Reference::Digest(digest.clone())).await
    }
}

impl RegistryStore {
    /// The upload session `prepare_blob` opened for this blob, if it is still fresh.
    fn take_pending_upload(&self, repo: &RepoName, digest: &Digest) -> Option<Url> {
        let mut pending = self.pending_uploads.lock().unwrap_or_else(|e| e.into_inner());
        let (location, opened) = pending.remove(&(repo.clone(), digest.clone()))?;
        (opened.elapsed() < PENDING_UPLOAD_MAX_AGE).then_some(location)
    }

    /// Opens an upload session (`POST /blobs/uploads/`), or asks for a cross-repository
    /// mount. Returns the upload location, or `None` when the blob was mounted (201).
    async fn start_upload(
        &self,
        repo: &RepoName,
        what: &str,
        mount: Option<(&RepoName, &Digest)>,
    ) -> Result<Option<Url>, StoreError> {
        let mut url = self.endpoint.url(&format!("{repo}/blobs/uploads/"));
        if let Some((from, digest)) = mount {
            url.query_pairs_mut()
                .append_pair("mount", &digest.to_string())
                .append_pair("from", from.as_str());
        }
        let response = self
            .endpoint
            .send(Scope::Push(repo), what, Method::POST, &url, |r| {
                r.header(CONTENT_LENGTH, 0)
            })
            .await?;
        match response.status() {
            StatusCode::CREATED if mount.is_some() => Ok(None),
            StatusCode::ACCEPTED => {
                let location = header_str(&response, LOCATION.as_str()).ok_or_else(|| StoreError::Invalid {
                    what: what.to_owned(),
                    reason: "upload started without a Location".to_owned(),
                })?;
                let location = url.join(location).map_err(|error| StoreError::Invalid {
                    what: what.to_owned(),
                    reason: format!("bad upload Location: {error}"),
                })?;
                Ok(Some(location))
            }
            _ => Err(error_from_response(what.to_owned(), response).await),
        }
    }
}
