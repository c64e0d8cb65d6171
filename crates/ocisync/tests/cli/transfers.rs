//! Blob transfers on real copies: the `bandwidth` cap, downloads resumed with `Range`,
//! chunked uploads continued at the mirror's offset.

use std::time::{Duration, Instant};

use ocisync_testkit::{
    assert_mirror_complete, image, layer, push_image, CountingProxy, Fault, Faults, Format, ProxyOptions, RequestKind,
    RequestMatch,
};

use crate::support::{config_with_registry_lines, Mirror};

#[tokio::test(flavor = "multi_thread")]
async fn a_bandwidth_cap_on_the_source_holds_a_real_copy_to_its_rate() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    // 3 MiB of layers, two downloads at once, under one 1 MiB/s cap: about 3 s.
    let layers = vec![layer(Format::Oci, 0xCA1, 3 << 19), layer(Format::Oci, 0xCA2, 3 << 19)];
    push_image(
        &upstream.url(),
        "team/app",
        "1.0",
        &image(Format::Oci, ("linux", "amd64"), layers, "capped"),
    )
    .await;
    world.write_config(&config_with_registry_lines("    bandwidth: 1MiB/s\n", ""));
    let started = Instant::now();
    world.once().expect_code(0);
    let elapsed = started.elapsed();
    assert_mirror_complete(&upstream.url(), &mirror.url(), &[("team/app", "team/app")]).await;
    // 80% of the time the cap allows: only a missing cap goes faster.
    assert!(
        elapsed >= Duration::from_millis(2400),
        "3 MiB under 1 MiB/s in {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_download_and_a_broken_chunk_are_both_continued_not_restarted() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let big = layer(Format::Oci, 0xCA3, 6 << 20);
    let size = big.bytes.len() as u64;
    push_image(
        &upstream.url(),
        "team/app",
        "1.0",
        &image(Format::Oci, ("linux", "amd64"), vec![big], "big"),
    )
    .await;
    // The big layer's download is cut at 4 MiB; the mirror's third chunk is reset.
    let layer_gets = RequestMatch::kind(RequestKind::Blob).method("GET");
    let source = CountingProxy::start_with(
        &upstream.url(),
        ProxyOptions {
            faults: Faults::none().first(1, layer_gets, Fault::Truncate { after_bytes: 4 << 20 }),
        },
    );
    let patches = RequestMatch::kind(RequestKind::Upload).method("PATCH");
    let destination = CountingProxy::start_with(
        &mirror.url(),
        ProxyOptions {
            faults: Faults::none().nth(3, patches, Fault::Reset),
        },
    );
    world.write_config_via(
        &config_with_registry_lines(
            "",
            "    chunked_upload: {above: 2MiB, chunk_size: 1MiB, resumable_above: 2MiB}\n",
        ),
        &[("{upstream}", &source.url()), ("{mirror}", &destination.url())],
    );
    world.once().expect_code(0);
    assert_mirror_complete(&upstream.url(), &mirror.url(), &[("team/app", "team/app")]).await;
    let ranged = source.requests().iter().filter(|r| r.status == 206).count();
    assert_eq!(
        ranged,
        1,
        "the rest of the layer asked for once: {:?}",
        source.requests()
    );
    // Restarts would move the layer's first 4 MiB twice, or the first two chunks.
    let (served, received) = (source.bytes_to_clients(), destination.bytes_from_clients());
    assert!(served <= size + (64 << 10), "{served} bytes from the source for {size}");
    assert!(
        received <= size + (1 << 20) + (64 << 10),
        "{received} bytes to the mirror for {size}"
    );
    let status = destination
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/blobs/uploads/"))
        .count();
    assert_eq!(status, 1, "the mirror asked once where the upload stands");
}
