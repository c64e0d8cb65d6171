//! `bandwidth`: blob bytes to and from a registry no faster than the cap, shared.

use std::time::{Duration, Instant};

use ocisync_oci::Store;
use ocisync_registry::{Bandwidth, RegistryOptions, RegistryStore};
use ocisync_testkit::{inspect, layer, push_blob, Format, TestRegistry};

use super::{body_of, descriptor, read_all, repo, MIB};

fn capped_store(url: &str, bandwidth: &Bandwidth) -> RegistryStore {
    let mut options = RegistryOptions::new(url);
    options.bandwidth = Some(bandwidth.clone());
    RegistryStore::new(options).unwrap()
}

/// At least 80% of the time `bytes` take at `rate`: only a missing cap goes faster.
fn at_least_at(rate: usize, bytes: usize) -> Duration {
    Duration::from_secs_f64(bytes as f64 / rate as f64 * 0.8)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_stores_sharing_a_cap_download_no_faster_together_than_the_cap() {
    let registry = TestRegistry::start();
    let first = layer(Format::Oci, 0xBA1, 2 * MIB);
    let second = layer(Format::Oci, 0xBA2, 2 * MIB);
    push_blob(&registry.url(), "capped/a", &first).await;
    push_blob(&registry.url(), "capped/a", &second).await;
    // Two URLs of one registry (or two syncs using it): one cap.
    let bandwidth = Bandwidth::per_second(2 * MIB as u64);
    let (one, other) = (
        capped_store(&registry.url(), &bandwidth),
        capped_store(&registry.url(), &bandwidth),
    );

    let started = Instant::now();
    let (a, b) = tokio::join!(
        async { read_all(one.blob(&repo("capped/a"), &descriptor(&first)).await.unwrap()).await },
        async { read_all(other.blob(&repo("capped/a"), &descriptor(&second)).await.unwrap()).await },
    );
    let elapsed = started.elapsed();
    assert!(a.unwrap() == first.bytes && b.unwrap() == second.bytes, "byte-exact");
    assert!(
        elapsed >= at_least_at(2 * MIB, 4 * MIB),
        "4 MiB at 2 MiB/s in {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_goes_no_faster_than_the_cap() {
    let registry = TestRegistry::start();
    let blob = layer(Format::Oci, 0xBA3, 2 * MIB);
    let store = capped_store(&registry.url(), &Bandwidth::per_second(MIB as u64));
    let started = Instant::now();
    store
        .put_blob(&repo("capped/up"), &descriptor(&blob), body_of(&blob))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(inspect::blob_exists(&registry.url(), "capped/up", &blob.digest).await);
    assert!(elapsed >= at_least_at(MIB, 2 * MIB), "2 MiB at 1 MiB/s in {elapsed:?}");
}
