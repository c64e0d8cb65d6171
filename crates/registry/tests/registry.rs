//! The registry store against a real docker-registry (distribution 2.8).

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use ocisync_oci::{BlobPlacement, BlobStream, Descriptor, Digest, Reference, RepoName, Store, StoreError, Tag};
use ocisync_registry::{Credentials, RegistryOptions, RegistryStore, Secret};
use ocisync_testkit::{corpus, small_corpus, CountingProxy, RegistryOptions as TestRegistryOptions, TestRegistry};

fn store(url: &str, page_size: usize) -> RegistryStore {
    let mut options = RegistryOptions::new(url);
    options.page_size = page_size;
    RegistryStore::new(options).unwrap()
}

fn repo(name: &str) -> RepoName {
    name.parse().unwrap()
}

fn body(content: &'static [u8]) -> BlobStream {
    Box::pin(stream::iter(vec![Ok(Bytes::from_static(content))]))
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_with_link_header_pages_past_first_page() {
    let registry = TestRegistry::start();
    let images = small_corpus();
    corpus::seed(&registry.url(), &images).await;
    let proxy = CountingProxy::start(&registry.url());
    let catalog = store(&proxy.url(), 2).catalog().await.unwrap();
    let names: Vec<String> = catalog.iter().map(|r| r.to_string()).collect();
    let mut expected = corpus::repos(&images);
    expected.sort();
    assert_eq!(names, expected);
    let pages = proxy
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/v2/_catalog"))
        .count();
    assert_eq!(pages, expected.len().div_ceil(2), "one request per page of 2");
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_list_is_complete_even_when_the_registry_ignores_page_size() {
    let registry = TestRegistry::start();
    let images = small_corpus();
    corpus::seed(&registry.url(), &images).await;
    let proxy = CountingProxy::start(&registry.url());
    // distribution 2.8 ignores `n` on tag lists: the client must neither loop nor lose tags.
    let tags = store(&proxy.url(), 1).tags(&repo("team/app")).await.unwrap();
    let mut expected: Vec<String> = images
        .iter()
        .filter(|i| i.repo == "team/app")
        .map(|i| i.tag.clone())
        .collect();
    expected.sort();
    assert_eq!(tags.iter().map(Tag::to_string).collect::<Vec<_>>(), expected);
    assert!(proxy.requests().len() <= 3, "bounded requests: {:?}", proxy.requests());
}

#[tokio::test(flavor = "multi_thread")]
async fn manifests_read_back_exactly_with_type_and_digest() {
    let registry = TestRegistry::start();
    let images = small_corpus();
    corpus::seed(&registry.url(), &images).await;
    let store = store(&registry.url(), 100);
    for seeded in &images {
        let reference = Reference::Tag(seeded.tag.parse().unwrap());
        let head = store
            .head_manifest(&repo(&seeded.repo), &reference)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(head.digest.to_string(), seeded.image.digest());
        assert_eq!(head.media_type, seeded.image.manifest.media_type);
        assert_eq!(head.size, seeded.image.manifest.size());
        let manifest = store.manifest(&repo(&seeded.repo), &reference).await.unwrap();
        assert_eq!(manifest.bytes, seeded.image.manifest.bytes);
        assert_eq!(manifest.media_type, seeded.image.manifest.media_type);
    }
    let absent = Reference::Tag("absent".parse().unwrap());
    assert_eq!(store.head_manifest(&repo("team/app"), &absent).await.unwrap(), None);
    assert!(store
        .manifest(&repo("team/app"), &absent)
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test(flavor = "multi_thread")]
async fn blobs_upload_in_one_put_stream_back_and_mount() {
    let registry = TestRegistry::start();
    let proxy = CountingProxy::start(&registry.url());
    let store = store(&proxy.url(), 100);
    let content: &'static [u8] = b"some layer content";
    let descriptor = Descriptor::new(
        "application/octet-stream",
        Digest::sha256_of(content),
        content.len() as u64,
    );
    assert!(!store.has_blob(&repo("a/one"), &descriptor.digest).await.unwrap());
    store
        .put_blob(&repo("a/one"), &descriptor, body(content))
        .await
        .unwrap();
    let methods: Vec<String> = proxy.writes().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["POST", "PUT"], "monolithic upload: no PATCH");
    assert!(store.has_blob(&repo("a/one"), &descriptor.digest).await.unwrap());
    let mut stream = store.blob(&repo("a/one"), &descriptor).await.unwrap();
    let mut read = Vec::new();
    while let Some(chunk) = stream.next().await {
        read.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(read, content);
    assert!(store
        .mount_blob(&repo("b/two"), &repo("a/one"), &descriptor.digest)
        .await
        .unwrap());
    assert!(store.has_blob(&repo("b/two"), &descriptor.digest).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn prepare_blob_answers_present_mounted_or_missing_in_one_post() {
    let registry = TestRegistry::start();
    let proxy = CountingProxy::start(&registry.url());
    let store = store(&proxy.url(), 100);
    let content: &'static [u8] = b"a layer prepared before upload";
    let descriptor = Descriptor::new(
        "application/octet-stream",
        Digest::sha256_of(content),
        content.len() as u64,
    );
    let (one, two) = (repo("a/one"), repo("b/two"));
    let requests = |proxy: &CountingProxy| -> Vec<String> {
        proxy
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.status))
            .collect()
    };

    // Missing: the POST's upload session is the one the PUT uses.
    let placement = store.prepare_blob(&one, &descriptor.digest, &one).await.unwrap();
    assert_eq!(placement, BlobPlacement::Missing);
    store.put_blob(&one, &descriptor, body(content)).await.unwrap();
    assert_eq!(requests(&proxy), ["POST 202", "PUT 201"]);
    assert_eq!(store.requests(), 2, "the store counts what it sent");

    // Present: asking again is one POST, answered 201, and opens nothing.
    proxy.reset();
    let placement = store.prepare_blob(&one, &descriptor.digest, &one).await.unwrap();
    assert_eq!(placement, BlobPlacement::Present);
    assert_eq!(requests(&proxy), ["POST 201"]);

    // Mounted from the repository that holds it.
    proxy.reset();
    let placement = store.prepare_blob(&two, &descriptor.digest, &one).await.unwrap();
    assert_eq!(placement, BlobPlacement::Mounted);
    assert_eq!(requests(&proxy), ["POST 201"]);
    assert!(store.has_blob(&two, &descriptor.digest).await.unwrap());

    // A holder that lacks it: an upload session after all, and the blob is not there yet.
    let other: &'static [u8] = b"never uploaded anywhere";
    let missing = Descriptor::new("application/octet-stream", Digest::sha256_of(other), other.len() as u64);
    let placement = store.prepare_blob(&two, &missing.digest, &one).await.unwrap();
    assert_eq!(placement, BlobPlacement::Missing);
    assert!(!store.has_blob(&two, &missing.digest).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_of_wrong_content_is_refused() {
    let registry = TestRegistry::start();
    let store = store(&registry.url(), 100);
    let descriptor = Descriptor::new("application/octet-stream", Digest::sha256_of(b"expected"), 8);
    let error = store
        .put_blob(&repo("a/one"), &descriptor, body(b"tampered"))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Rejected { status: 400, .. }), "{error:?}");
    assert!(!store.has_blob(&repo("a/one"), &descriptor.digest).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_with_htpasswd() {
    let registry = TestRegistry::start_with(TestRegistryOptions {
        htpasswd: Some(("sync".into(), "correct horse".into())),
    });
    let with_password = |password: &str| {
        let mut options = RegistryOptions::new(registry.url());
        options.credentials = Some(Credentials::password("sync", Secret::new(password)));
        RegistryStore::new(options).unwrap()
    };
    let error = with_password("wrong").catalog().await.unwrap_err();
    assert!(matches!(error, StoreError::Unauthorized { .. }), "{error:?}");
    assert!(!error.to_string().contains("wrong"), "no password in errors: {error}");
    let anonymous = store(&registry.url(), 100).catalog().await.unwrap_err();
    assert!(matches!(anonymous, StoreError::Unauthorized { .. }));
    let descriptor = Descriptor::new("application/octet-stream", Digest::sha256_of(b"x"), 1);
    let authorized = with_password("correct horse");
    authorized
        .put_blob(&repo("a/one"), &descriptor, body(b"x"))
        .await
        .unwrap();
    assert!(authorized.has_blob(&repo("a/one"), &descriptor.digest).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn referrers_of_a_registry_without_the_api_are_none() {
    let registry = TestRegistry::start();
    let proxy = CountingProxy::start(&registry.url());
    let image = ocisync_testkit::image(
        ocisync_testkit::Format::Oci,
        ("linux", "amd64"),
        vec![ocisync_testkit::layer(ocisync_testkit::Format::Oci, 1, 64)],
        "x",
    );
    ocisync_testkit::push_image(&registry.url(), "team/app", "1.0", &image).await;
    let digest: Digest = image.digest().parse().unwrap();
    let store = store(&proxy.url(), 100);
    let repo: ocisync_oci::RepoName = "team/app".parse().unwrap();
    // Tags run concurrently: lookups at the same moment wait for one answer.
    let lookups: Vec<_> = (0..8).map(|_| store.referrers(&repo, &digest)).collect();
    for referrers in futures_util::future::join_all(lookups).await {
        assert_eq!(referrers.unwrap(), None, "distribution 2.8 has no referrers API");
    }
    let asked = |requests: &[ocisync_testkit::RecordedRequest]| {
        requests
            .iter()
            .filter(|r| r.method == "GET" && r.path.contains("/referrers/"))
            .count()
    };
    assert_eq!(asked(&proxy.requests()), 1);
    // The 404 is remembered: later lookups (one per tag on every pass) cost nothing.
    let other = Digest::sha256_of(b"another subject");
    assert_eq!(store.referrers(&repo, &other).await.unwrap(), None);
    assert_eq!(store.referrers(&repo, &digest).await.unwrap(), None);
    assert_eq!(asked(&proxy.requests()), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_limit_caps_requests_in_flight_and_blob_streams_hold_their_place() {
    use ocisync_registry::RequestLimit;
    use ocisync_testkit::{Fault, Faults, ProxyOptions, RequestMatch};
    use std::time::Duration;

    let registry = TestRegistry::start();
    let slow = Faults::none().every(
        RequestMatch::any().method("HEAD"),
        Fault::Latency(Duration::from_millis(100)),
    );
    let proxy = CountingProxy::start_with(&registry.url(), ProxyOptions { faults: slow });
    let (unlimited, limited) = (store(&proxy.url(), 100), {
        let mut options = RegistryOptions::new(proxy.url());
        options.request_limit = Some(RequestLimit::new(2));
        RegistryStore::new(options).unwrap()
    });
    let a = repo("a/one");
    let digests: Vec<Digest> = (0..8u8).map(|i| Digest::sha256_of(&[i])).collect();
    async fn ask_all(store: &RegistryStore, repo: &RepoName, digests: &[Digest]) {
        let answers = futures_util::future::join_all(digests.iter().map(|digest| store.has_blob(repo, digest)));
        for present in answers.await {
            assert!(!present.unwrap());
        }
    }

    // The proxy sees the concurrency: without a cap, the eight checks overlap.
    ask_all(&unlimited, &a, &digests).await;
    assert!(proxy.most_in_flight() > 2, "unlimited: {}", proxy.most_in_flight());
    proxy.reset();
    ask_all(&limited, &a, &digests).await;
    assert_eq!(proxy.most_in_flight(), 2, "at most two at once, and two were used");

    // A blob download keeps its place until its stream is dropped.
    let content: &'static [u8] = b"a blob read by two streams";
    let descriptor = Descriptor::new(
        "application/octet-stream",
        Digest::sha256_of(content),
        content.len() as u64,
    );
    limited.put_blob(&a, &descriptor, body(content)).await.unwrap();
    let first = limited.blob(&a, &descriptor).await.unwrap();
    let second = limited.blob(&a, &descriptor).await.unwrap();
    let waiting = tokio::time::timeout(Duration::from_millis(300), limited.has_blob(&a, &descriptor.digest)).await;
    assert!(waiting.is_err(), "a third request waits while two streams are open");
    drop(first);
    assert!(limited.has_blob(&a, &descriptor.digest).await.unwrap());
    drop(second);
}
