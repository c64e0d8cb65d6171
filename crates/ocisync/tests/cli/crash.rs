//! Crash safety: a pass killed with SIGKILL at any moment leaves no manifest whose
//! blobs or children are missing, and the next pass converges.

use std::process::Stdio;
use std::time::Duration;

use ocisync_testkit::{
    assert_closure, assert_mirror_complete, corpus, standard_corpus, CountingProxy, Fault, Faults, ProxyOptions,
    RequestMatch,
};

use crate::support::{config_with_defaults, ocisync_command, same_names, Mirror};

#[tokio::test(flavor = "multi_thread")]
async fn killed_passes_leave_nothing_dangling_and_the_next_pass_converges() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let images = standard_corpus();
    corpus::seed(&upstream.url(), &images).await;
    // Every request takes a little while, so kills land in the middle of transfers.
    let slow = Faults::none().every(RequestMatch::any(), Fault::Latency(Duration::from_millis(15)));
    let source = CountingProxy::start_with(&upstream.url(), ProxyOptions { faults: slow });
    world.write_config_via(
        &config_with_defaults("  read_timeout: 10s"),
        &[("{upstream}", &source.url())],
    );
    let config = world.config_path();
    let repos = corpus::repos(&images);

    let mut pushed_before = 0;
    // Ten kills at seeded pseudo-random moments (a fixed seed keeps failures reproducible).
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut kill_after = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        150 + (state >> 33) % 500
    };
    for _ in 0..10 {
        let kill_after_ms = kill_after();
        let mut pass = ocisync_command(&["once", "--config", config.to_str().unwrap()])
            .env("OCISYNC_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(kill_after_ms));
        pass.kill().unwrap(); // SIGKILL: no cleanup of any kind
        pass.wait().unwrap();
        // The registry still finishes a request the killed client had sent, and
        // distribution 2.8 rewrites a tag's link file in place: a read at that instant
        // sees the tag without its manifest. Let it finish before looking.
        std::thread::sleep(Duration::from_millis(300));
        for repo in &repos {
            assert_closure(&mirror.url(), repo).await;
        }
        let pushed: usize = {
            let mut count = 0;
            for repo in &repos {
                count += ocisync_testkit::tags(&mirror.url(), repo).await.len();
            }
            count
        };
        assert!(pushed >= pushed_before, "tags never disappear");
        pushed_before = pushed;
    }
    assert!(
        pushed_before < images.len(),
        "the kills must interrupt passes to prove anything (all {} tags were done)",
        images.len()
    );
    world.run(&["once"]).expect_code(0);
    assert_mirror_complete(&upstream.url(), &mirror.url(), &same_names(&repos)).await;
}
