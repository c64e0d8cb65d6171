//! The order of work in a pass: blob streams queue pass-wide, the largest waiting first.

use std::collections::HashMap;
use std::time::Duration;

use ocisync_testkit::{
    assert_mirror_complete, image, layer, push_image, CountingProxy, Fault, Faults, Format, ProxyOptions, RequestKind,
    RequestMatch,
};

use crate::support::{config_with_defaults, Mirror};

#[tokio::test(flavor = "multi_thread")]
async fn the_largest_waiting_blob_streams_first_even_when_its_repository_comes_last() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    // Three small images, then the large one, last in the catalog's order.
    let mut sizes = HashMap::new();
    let mut repos = Vec::new();
    for (repo, seed, size) in [
        ("a-small-1", 0x51, 48 * 1024),
        ("a-small-2", 0x52, 96 * 1024),
        ("a-small-3", 0x53, 24 * 1024),
        ("z-large", 0x54, 3 * 1024 * 1024),
    ] {
        let pushed = image(
            Format::Oci,
            ("linux", "amd64"),
            vec![layer(Format::Oci, seed, size)],
            repo,
        );
        for blob in pushed.all_blobs() {
            sizes.insert(blob.digest.clone(), blob.bytes.len());
        }
        push_image(&upstream.url(), repo, "1", &pushed).await;
        repos.push(repo);
    }
    // The large image is found a little late, so a small blob streams first; that
    // stream is slow to answer, and meanwhile every other blob of the pass is found and
    // waits for the one slot.
    let blob_gets = RequestMatch::kind(RequestKind::Blob).method("GET");
    let faults = Faults::none()
        .every(
            RequestMatch::path_contains("/z-large/manifests/"),
            Fault::Latency(Duration::from_millis(300)),
        )
        .first(1, blob_gets.clone(), Fault::Latency(Duration::from_secs(3)));
    let proxy = CountingProxy::start_with(&upstream.url(), ProxyOptions { faults });
    world.write_config_via(
        &config_with_defaults("  concurrency: {repositories: 8, transfers: 1}"),
        &[("{upstream}", &proxy.url())],
    );
    world.once().expect_code(0);

    let pairs: Vec<(&str, &str)> = repos.iter().map(|repo| (*repo, *repo)).collect();
    assert_mirror_complete(&upstream.url(), &mirror.url(), &pairs).await;
    let streamed: Vec<usize> = proxy
        .requests()
        .iter()
        .filter(|request| blob_gets.matches(&request.method, &request.path))
        .map(|request| {
            let digest = request.path.rsplit('/').next().unwrap();
            sizes[digest]
        })
        .collect();
    assert_eq!(streamed.len(), sizes.len(), "each blob streamed once: {streamed:?}");
    let after_first = &streamed[1..];
    let mut largest_first = after_first.to_vec();
    largest_first.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(after_first, largest_first, "the waiting streams started largest first");
    assert_eq!(
        after_first[0],
        3 * 1024 * 1024,
        "the large layer went right after the first"
    );
    assert_eq!(world.report()["syncs"][0]["repositories"].as_array().unwrap().len(), 4);
}
