//! Large blobs go up in chunks into one session; a broken chunk goes on at the offset
//! the registry reports.

use ocisync_oci::Store;
use ocisync_registry::{ChunkedUpload, RegistryOptions, RegistryStore};
use ocisync_testkit::proxy::{Fault, Faults, ProxyOptions, RequestKind, RequestMatch};
use ocisync_testkit::{inspect, layer, CountingProxy, Format, TestRegistry};

use super::{body_of, descriptor, repo, MIB};

fn chunking_store(url: &str) -> RegistryStore {
    let mut options = RegistryOptions::new(url);
    options.chunked_upload = Some(ChunkedUpload {
        above: 4 * MIB as u64,
        chunk_size: MIB as u64,
        resumable_above: 4 * MIB as u64,
    });
    RegistryStore::new(options).unwrap()
}

fn patches() -> RequestMatch {
    RequestMatch::kind(RequestKind::Upload).method("PATCH")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blob_above_the_threshold_goes_in_chunks_and_one_below_in_one_put() {
    let registry = TestRegistry::start();
    let proxy = CountingProxy::start(&registry.url());
    let store = chunking_store(&proxy.url());
    let large = layer(Format::Oci, 0xC41, 5 * MIB + 123);
    let small = layer(Format::Oci, 0xC42, 4 * MIB);
    store
        .put_blob(&repo("chunked/app"), &descriptor(&large), body_of(&large))
        .await
        .unwrap();
    store
        .put_blob(&repo("chunked/app"), &descriptor(&small), body_of(&small))
        .await
        .unwrap();
    for blob in [&large, &small] {
        let stored = inspect::blob(&registry.url(), "chunked/app", &blob.digest).await;
        assert!(stored.as_ref() == Some(&blob.bytes), "byte-exact");
    }
    let methods: Vec<String> = proxy.writes().into_iter().map(|r| r.method).collect();
    assert_eq!(
        methods,
        ["POST", "PATCH", "PATCH", "PATCH", "PATCH", "PATCH", "PATCH", "PUT", "POST", "PUT"],
        "six chunks (the last 123 bytes) and a closing PUT; then one streaming PUT"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_chunk_goes_on_at_the_registrys_offset_and_sends_only_that_chunk_again() {
    let registry = TestRegistry::start();
    // The third chunk's connection is reset before the registry sees any of it.
    let faults = Faults::none().nth(3, patches(), Fault::Reset);
    let proxy = CountingProxy::start_with(&registry.url(), ProxyOptions { faults });
    let store = chunking_store(&proxy.url());
    let blob = layer(Format::Oci, 0xC43, 8 * MIB);

    store
        .put_blob(&repo("chunked/app"), &descriptor(&blob), body_of(&blob))
        .await
        .expect("the upload goes on");

    let stored = inspect::blob(&registry.url(), "chunked/app", &blob.digest).await;
    assert!(stored.as_ref() == Some(&blob.bytes), "byte-exact");
    let requests = proxy.requests();
    let summary: Vec<(String, u16)> = requests
        .iter()
        .filter(|r| RequestKind::of_path(&r.path) == Some(RequestKind::Upload))
        .map(|r| (r.method.clone(), r.status))
        .collect();
    let expected: Vec<(String, u16)> = [
        ("POST", 202),
        ("PATCH", 202),
        ("PATCH", 202),
        ("PATCH", 0),
        ("GET", 204),
    ]
    .into_iter()
    .chain(std::iter::repeat_n(("PATCH", 202), 6))
    .chain([("PUT", 201)])
    .map(|(method, status)| (method.to_owned(), status))
    .collect();
    assert_eq!(summary, expected, "the offset asked once, then chunks 3 to 8");
    // A restart would send the two chunks before the break again, at least 10 MiB in all.
    let received = proxy.bytes_from_clients();
    assert!(
        received <= 9 * MIB as u64 + 64 * 1024,
        "{received} bytes received for an 8 MiB blob"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn below_the_resumable_size_a_broken_chunk_fails_the_upload_for_a_retry_from_the_start() {
    let registry = TestRegistry::start();
    let faults = Faults::none().nth(3, patches(), Fault::Reset);
    let proxy = CountingProxy::start_with(&registry.url(), ProxyOptions { faults });
    let mut options = RegistryOptions::new(proxy.url());
    options.chunked_upload = Some(ChunkedUpload {
        above: 4 * MIB as u64,
        chunk_size: MIB as u64,
        resumable_above: 16 * MIB as u64,
    });
    let store = RegistryStore::new(options).unwrap();
    let blob = layer(Format::Oci, 0xC44, 8 * MIB);
    let repo = repo("chunked/app");

    let error = store
        .put_blob(&repo, &descriptor(&blob), body_of(&blob))
        .await
        .expect_err("nothing kept to send again");
    assert!(error.is_transient(), "so the engine retries the blob: {error}");
    let asked = proxy.requests().iter().filter(|r| r.method == "GET").count();
    assert_eq!(asked, 0, "no offset asked: there is nothing to continue with");
    assert!(inspect::blob(&registry.url(), "chunked/app", &blob.digest)
        .await
        .is_none());

    // The retry from the start, in chunks again.
    store.put_blob(&repo, &descriptor(&blob), body_of(&blob)).await.unwrap();
    let stored = inspect::blob(&registry.url(), "chunked/app", &blob.digest).await;
    assert!(stored.as_ref() == Some(&blob.bytes), "byte-exact");
    let patches = proxy.requests().iter().filter(|r| r.method == "PATCH").count();
    assert_eq!(patches, 3 + 8, "three chunks till the break, then all eight");
}

#[tokio::test(flavor = "multi_thread")]
async fn by_default_an_80_mib_layer_goes_in_chunks_and_a_64_mib_one_in_one_put() {
    let registry = TestRegistry::start();
    let proxy = CountingProxy::start(&registry.url());
    let store = RegistryStore::new(RegistryOptions::new(proxy.url())).unwrap();
    let large = layer(Format::Oci, 0xC45, 80 * MIB);
    let medium = layer(Format::Oci, 0xC46, 64 * MIB);
    for blob in [&large, &medium] {
        store
            .put_blob(&repo("chunked/default"), &descriptor(blob), body_of(blob))
            .await
            .unwrap();
    }
    let methods: Vec<String> = proxy.writes().into_iter().map(|r| r.method).collect();
    let mut expected = vec!["POST"];
    expected.extend(std::iter::repeat_n("PATCH", 5));
    expected.extend(["PUT", "POST", "PUT"]);
    assert_eq!(
        methods, expected,
        "5 chunks of 16 MiB; 64 MiB is not above the threshold"
    );
    let stored = inspect::blob(&registry.url(), "chunked/default", &large.digest).await;
    assert!(stored.as_ref() == Some(&large.bytes), "byte-exact");
}
