//! A far upstream (issue 19): what a pass keeps in flight so that its round trips
//! overlap instead of following one another. The checks are on mechanisms (how many
//! requests the proxy holds at once, which request comes before which), never on speed.

use std::time::Duration;

use ocisync_testkit::{
    assert_mirror_complete, image, layer, push_image, CountingProxy, Fault, Faults, Format, ProxyOptions, RequestKind,
    RequestMatch,
};

use crate::support::{config_with_defaults, one_sync_config, Mirror};

#[tokio::test(flavor = "multi_thread")]
async fn the_default_keeps_more_manifest_requests_in_flight_than_sixteen() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    // 6 repositories × 4 tags: with the default concurrency (32 repositories, 4 tags
    // each) every tag's manifest is asked for at once.
    let mut names = Vec::new();
    for repo in 0..6u64 {
        let name = format!("team/app{repo}");
        for tag in 0..4u64 {
            let seed = 0xD15_0000 + repo * 16 + tag;
            let pushed = image(
                Format::Oci,
                ("linux", "amd64"),
                vec![layer(Format::Oci, seed, 512)],
                &format!("{name}:{tag}"),
            );
            push_image(&upstream.url(), &name, &format!("1.{tag}"), &pushed).await;
        }
        names.push(name);
    }
    // Each manifest request is held a while upstream, as at a distance: the proxy sees
    // how many the pass has out at once.
    let held = Faults::none().every(
        RequestMatch::kind(RequestKind::Manifest),
        Fault::Latency(Duration::from_millis(1000)),
    );
    let source = CountingProxy::start_with(&upstream.url(), ProxyOptions { faults: held });
    world.write_config_via(&one_sync_config(), &[("{upstream}", &source.url())]);
    world.once().expect_code(0);
    let pairs: Vec<(&str, &str)> = names.iter().map(|name| (name.as_str(), name.as_str())).collect();
    assert_mirror_complete(&upstream.url(), &mirror.url(), &pairs).await;
    // The old default capped a registry at 16 requests in flight; the 24 manifest reads
    // of this pass are cheap and now go out together.
    assert!(
        source.most_in_flight() >= 24,
        "at most {} requests in flight upstream; the 24 manifests should be out at once",
        source.most_in_flight()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_next_blob_stream_starts_while_the_mirror_still_commits_the_last_one() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let layers = vec![
        layer(Format::Oci, 0xD15_1001, 4096),
        layer(Format::Oci, 0xD15_1002, 4096),
    ];
    push_image(
        &upstream.url(),
        "team/app",
        "1.0",
        &image(Format::Oci, ("linux", "amd64"), layers, "committed slowly"),
    )
    .await;
    let source = CountingProxy::start(&upstream.url());
    // The mirror takes a while over each upload's end (its body is small enough to be
    // sent whole meanwhile), as a registry does that syncs a large file to disk.
    let slow_commit = Faults::none().every(
        RequestMatch::kind(RequestKind::Upload).method("PUT"),
        Fault::Latency(Duration::from_millis(1500)),
    );
    let destination = CountingProxy::start_with(&mirror.url(), ProxyOptions { faults: slow_commit });
    // One stream at a time: the three blobs (config and two layers) take turns.
    world.write_config_via(
        &config_with_defaults("  concurrency: {transfers: 1}"),
        &[("{upstream}", &source.url()), ("{mirror}", &destination.url())],
    );
    // Both logs count from the same moment, so their times compare.
    source.reset();
    destination.reset();
    world.once().expect_code(0);
    assert_mirror_complete(&upstream.url(), &mirror.url(), &[("team/app", "team/app")]).await;
    let blob_gets: Vec<Duration> = source
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/blobs/"))
        .map(|r| r.at)
        .collect();
    let first_commit = destination
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/blobs/uploads/"))
        .map(|r| r.at)
        .min()
        .expect("the mirror committed uploads");
    assert_eq!(blob_gets.len(), 3, "config and two layers, each read once");
    // The turn of a stream is the source's: it ends with the last byte read, so every
    // blob was read before the mirror answered the first upload. Held until the
    // mirror's answer, each next read would have waited for it.
    assert!(
        blob_gets.iter().all(|at| *at < first_commit),
        "blob reads at {blob_gets:?}, the first upload answered at {first_commit:?}"
    );
}
