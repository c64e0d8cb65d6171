//! Registry keys that shape blob transfers, on real copies: `bandwidth`.

use std::time::{Duration, Instant};

use ocisync_testkit::{assert_mirror_complete, image, layer, push_image, Format, TestRegistry};

use crate::support::run_once;

#[tokio::test(flavor = "multi_thread")]
async fn a_bandwidth_cap_on_the_source_holds_a_real_copy_to_its_rate() {
    let upstream = TestRegistry::start();
    let mirror = TestRegistry::start();
    // 3 MiB of layers, two downloads at once, under one 1 MiB/s cap: about 3 s.
    let layers = vec![layer(Format::Oci, 0xCA1, 3 << 19), layer(Format::Oci, 0xCA2, 3 << 19)];
    push_image(
        &upstream.url(),
        "team/app",
        "1.0",
        &image(Format::Oci, ("linux", "amd64"), layers, "capped"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ocisync.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1
registries:
  upstream:
    urls: [\"{}\"]
    bandwidth: 1MiB/s
  mirror:
    urls: [\"{}\"]
syncs:
  - from: upstream
    to: mirror
",
            upstream.url(),
            mirror.url()
        ),
    )
    .unwrap();
    let started = Instant::now();
    run_once(&config, &dir.path().join("report.json")).expect_code(0);
    let elapsed = started.elapsed();
    assert_mirror_complete(&upstream.url(), &mirror.url(), &[("team/app", "team/app")]).await;
    // 80% of the time the cap allows: only a missing cap goes faster.
    assert!(
        elapsed >= Duration::from_millis(2400),
        "3 MiB under 1 MiB/s in {elapsed:?}"
    );
}
