//! A download cut short goes on with `Range` from where it broke.

use ocisync_oci::Store;
use ocisync_registry::{RegistryOptions, RegistryStore};
use ocisync_testkit::proxy::{Fault, Faults, ProxyOptions, RequestKind, RequestMatch};
use ocisync_testkit::{layer, push_blob, CountingProxy, Format, TestRegistry};

use super::{descriptor, read_all, repo, MIB};

#[tokio::test(flavor = "multi_thread")]
async fn a_blob_cut_at_12_of_16_mib_is_finished_with_one_range_request_for_the_rest() {
    let registry = TestRegistry::start();
    let blob = layer(Format::Oci, 0x5E5, 16 * MIB);
    push_blob(&registry.url(), "big/layer", &blob).await;
    let cut = Fault::Truncate {
        after_bytes: 12 * MIB as u64,
    };
    let faults = Faults::none().first(1, RequestMatch::kind(RequestKind::Blob).method("GET"), cut.clone());
    let proxy = CountingProxy::start_with(&registry.url(), ProxyOptions { faults });
    let store = RegistryStore::new(RegistryOptions::new(proxy.url())).unwrap();

    let stream = store.blob(&repo("big/layer"), &descriptor(&blob)).await.unwrap();
    let bytes = read_all(stream).await.expect("one unbroken stream");

    assert!(
        bytes == blob.bytes,
        "byte-exact ({} of {} bytes)",
        bytes.len(),
        blob.bytes.len()
    );
    let gets: Vec<_> = proxy.requests().into_iter().filter(|r| r.method == "GET").collect();
    assert_eq!(gets.len(), 2, "the cut GET and one for the rest: {gets:?}");
    assert_eq!((gets[0].fault.clone(), gets[0].status), (Some(cut), 200));
    assert_eq!((gets[1].fault.clone(), gets[1].status), (None, 206), "a partial answer");
    // A restart from zero would have served 28 MiB.
    let served = proxy.bytes_to_clients();
    assert!(
        served <= 16 * MIB as u64 + 16 * 1024,
        "{served} bytes served for a 16 MiB blob"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blob_cut_again_and_again_resumes_each_time_and_gives_up_when_bounded() {
    let registry = TestRegistry::start();
    let blob = layer(Format::Oci, 0x5E6, 4 * MIB);
    push_blob(&registry.url(), "big/layer", &blob).await;
    let gets = RequestMatch::kind(RequestKind::Blob).method("GET");
    // Every answer cut after 512 KiB: 4 MiB takes 8 answers, 7 of them continuations.
    let faults = Faults::none().first(
        7,
        gets.clone(),
        Fault::Truncate {
            after_bytes: 512 * 1024,
        },
    );
    let proxy = CountingProxy::start_with(&registry.url(), ProxyOptions { faults });
    let store = RegistryStore::new(RegistryOptions::new(proxy.url())).unwrap();
    let bytes = read_all(store.blob(&repo("big/layer"), &descriptor(&blob)).await.unwrap())
        .await
        .unwrap();
    assert!(bytes == blob.bytes, "byte-exact");
    assert_eq!(proxy.requests().len(), 8);

    // An upstream that never gets further is given up on, with the transient error.
    proxy.set_faults(Faults::none().every(gets, Fault::Truncate { after_bytes: 1024 }));
    proxy.reset();
    let error = read_all(store.blob(&repo("big/layer"), &descriptor(&blob)).await.unwrap())
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error}");
    let requests = proxy.requests().len();
    assert!((2..=20).contains(&requests), "bounded: {requests} requests");
}
