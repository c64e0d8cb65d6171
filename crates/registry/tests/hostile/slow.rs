//! Slow answers: a small answer (manifest, token) must be whole within `request_timeout`;
//! a blob may take as long as it needs while it keeps up `min_transfer_rate`. Both
//! failures are transport errors, which the engine may retry.

use std::time::Duration;

use futures_util::StreamExt as _;
use ocisync_oci::{Descriptor, Digest, Reference, Store, StoreError};
use ocisync_registry::{MinTransferRate, RegistryOptions, RegistryStore};
use ocisync_testkit::{HostileAnswer, HostileBody, HostileServer};

use crate::{printed, repo};

/// A small but valid OCI image manifest.
const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

/// `bytes`, `chunk` bytes every `interval_ms`.
fn paced(bytes: &[u8], chunk: usize, interval_ms: u64) -> HostileBody {
    HostileBody::Paced {
        bytes: bytes.to_vec(),
        chunk,
        interval: Duration::from_millis(interval_ms),
    }
}

fn options(url: &str) -> RegistryOptions {
    let mut options = RegistryOptions::new(url);
    options.request_timeout = Duration::from_millis(500);
    options.min_transfer_rate = Some(MinTransferRate {
        bytes_per_second: 4096,
        window: Duration::from_millis(500),
    });
    options
}

/// A registry serving one blob from `body` at `/v2/team/app/blobs/…`.
fn blob_registry(body: HostileBody) -> HostileServer {
    HostileServer::start(move |request| {
        if request.path.contains("/blobs/") {
            HostileAnswer::new(200).body(body.clone())
        } else {
            HostileAnswer::new(404)
        }
    })
}

/// Reads the blob `content` names to its end, or to the first error.
async fn read_blob(store: &RegistryStore, content: &[u8]) -> Result<Vec<u8>, StoreError> {
    let descriptor = Descriptor::new(
        "application/octet-stream",
        Digest::sha256_of(content),
        content.len() as u64,
    );
    let mut stream = store.blob(&repo(), &descriptor).await?;
    let mut read = Vec::new();
    while let Some(chunk) = stream.next().await {
        read.extend_from_slice(&chunk?);
    }
    Ok(read)
}

fn assert_transient_timeout(error: &StoreError, says: &str) {
    let text = printed(error);
    assert!(matches!(error, StoreError::Transport { .. }), "{text}");
    assert!(error.is_transient(), "the engine may retry it: {text}");
    assert!(text.contains(says), "names the limit ({says}): {text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_that_drips_fails_at_the_request_deadline() {
    // Every byte of a valid manifest arrives, 4 bytes per 50 ms: ~3 s in all, while each
    // read comes well within the read timeout.
    let registry = HostileServer::start(|request| {
        if request.path.contains("/manifests/") {
            HostileAnswer::new(200)
                .header("Content-Type", ocisync_oci::media_type::OCI_MANIFEST)
                .body(paced(MANIFEST.as_bytes(), 4, 50))
        } else {
            HostileAnswer::new(404)
        }
    });
    let store = RegistryStore::new(options(&registry.url())).unwrap();
    let error = store
        .manifest(&repo(), &Reference::Tag("1".parse().unwrap()))
        .await
        .unwrap_err();
    assert_transient_timeout(&error, "request_timeout");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_that_drips_fails_at_the_request_deadline() {
    let realm = HostileServer::start(|_| HostileAnswer::new(200).body(paced(br#"{"token":"slow"}"#, 1, 100)));
    let challenge = format!("Bearer realm=\"{}/token\",service=\"s\"", realm.url());
    let registry = HostileServer::start(move |request| match &request.authorization {
        Some(_) => HostileAnswer::new(200).text(r#"{"tags":["1"]}"#),
        None => HostileAnswer::new(401).header("WWW-Authenticate", &challenge),
    });
    let store = RegistryStore::new(options(&registry.url())).unwrap();
    let error = store.tags(&repo()).await.unwrap_err();
    assert_transient_timeout(&error, "request_timeout");
    assert!(printed(&error).contains("token from"), "{}", printed(&error));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blob_that_drips_fails_by_the_rate_floor() {
    // 16 bytes per 100 ms (160 B/s), under the 4 KiB/s floor: ~6 s for all of it.
    let content = vec![b'd'; 1024];
    let registry = blob_registry(paced(&content, 16, 100));
    let store = RegistryStore::new(options(&registry.url())).unwrap();
    let error = read_blob(&store, &content).await.unwrap_err();
    assert_transient_timeout(&error, "min_transfer_rate");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_but_steady_blob_outlasts_the_request_deadline() {
    // 2 KiB per 25 ms (80 KiB/s, twenty times the floor): ~0.8 s in all, longer than the
    // 500 ms request_timeout, which does not apply to a blob's body.
    let content: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let registry = blob_registry(paced(&content, 2048, 25));
    let store = RegistryStore::new(options(&registry.url())).unwrap();
    assert_eq!(read_blob(&store, &content).await.unwrap(), content);
}
