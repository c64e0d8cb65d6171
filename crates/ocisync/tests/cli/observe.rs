//! What `run` shows while it works: `/metrics` against the report, `/readyz` for a
//! stuck pass; and `--shard` splitting a real catalog between workers.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ocisync_testkit::{
    assert_closure, assert_mirror_complete, corpus, small_corpus, CountingProxy, Fault, Faults, ProxyOptions,
    RequestKind, RequestMatch,
};

use crate::support::{config_with_syncs, promtool_accepts_metrics, same_names, Daemon, Mirror, Report};

/// `ocisync run` on a loopback port the OS picks, logging JSON.
struct Observed {
    /// Kept for its drop, which stops the process.
    _daemon: Daemon,
    address: String,
}

impl Observed {
    fn start(world: &Mirror, extra_args: &[&str]) -> Observed {
        let report = world.report_path();
        let mut args = vec![
            "--report",
            report.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ];
        args.extend_from_slice(extra_args);
        let mut daemon = world.daemon(&args);
        // The listener logs the address it got: port 0 never collides with another test.
        let address_of = |line: &String| -> Option<String> {
            let event: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|_| panic!("log line is not JSON: {line}"));
            event["address"].as_str().map(str::to_owned)
        };
        daemon.wait_for_log("the listening address", Duration::from_secs(20), |log| {
            log.iter().any(|line| address_of(line).is_some())
        });
        let address = daemon.log.iter().find_map(address_of).unwrap();
        Observed {
            _daemon: daemon,
            address,
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        http_get(&self.address, path)
    }

    fn metric(&self, sample: &str) -> Option<f64> {
        metric_value(&self.get("/metrics").1, sample)
    }

    /// Polls `path` until `accept` likes the answer; fails the test after `limit`.
    fn wait_for(&self, path: &str, limit: Duration, accept: impl Fn(u16, &str) -> bool) -> (u16, String) {
        let deadline = Instant::now() + limit;
        loop {
            let (status, body) = self.get(path);
            if accept(status, &body) {
                return (status, body);
            }
            assert!(
                Instant::now() < deadline,
                "{path} never as expected; last: {status}\n{body}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One `GET` over plain HTTP/1.1; the server closes after answering.
fn http_get(address: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect to the listener");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a complete response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// The value of one sample, e.g. `ocisync_passes_total{sync="hub",outcome="success"}`.
fn metric_value(exposition: &str, sample: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

/// The sync `hub`, hourly, with quick retries and `max_pass_duration`.
fn daemon_config(max_pass_duration: &str) -> String {
    config_with_syncs("  - name: hub\n    from: upstream\n    to: mirror\n    interval: 1h\n")
        + &format!(
            "defaults:\n  max_pass_duration: {max_pass_duration}\n  retry: {{max_attempts: 5, initial_delay: 10ms, max_delay: 50ms}}\n"
        )
}

fn as_f64(value: &serde_json::Value) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("not a number: {value}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_during_and_after_a_pass_match_the_report() {
    let world = Mirror::start();
    let upstream = &world.upstream;
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;
    // Slow enough that a scrape lands inside the pass; the first manifest reads fail
    // once, so there are retries to count.
    let source = CountingProxy::start_with(
        &upstream.url(),
        ProxyOptions {
            faults: Faults::none()
                .first(3, RequestMatch::kind(RequestKind::Manifest), Fault::Status(503))
                .every(RequestMatch::any(), Fault::Latency(Duration::from_millis(60))),
        },
    );
    world.write_config_via(&daemon_config("10m"), &[("{upstream}", &source.url())]);
    let report_path = world.report_path();
    let daemon = Observed::start(&world, &[]);

    // During the pass: marked as running, and images, bytes and requests counted as
    // they happen, before the pass (and its report) is finished.
    let (_, during) = daemon.wait_for("/metrics", Duration::from_secs(60), |_, body| {
        metric_value(body, "ocisync_pass_running{sync=\"hub\"}") == Some(1.0)
            && metric_value(body, "ocisync_images_total{sync=\"hub\",outcome=\"copied\"}")
                .is_some_and(|copied| copied >= 1.0)
    });
    assert!(!report_path.exists(), "the pass was still under way");
    assert_eq!(
        metric_value(&during, "ocisync_passes_total{sync=\"hub\",outcome=\"success\"}"),
        Some(0.0)
    );
    assert!(
        metric_value(&during, "ocisync_copied_bytes_total{sync=\"hub\"}").is_some_and(|bytes| bytes > 0.0),
        "{during}"
    );
    let requests_during = during
        .lines()
        .find(|line| line.starts_with("ocisync_registry_requests_total{registry=\"upstream\""))
        .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok());
    assert!(requests_during.is_some_and(|requests| requests > 0.0), "{during}");
    assert!(
        during.contains("ocisync_pass_start_timestamp_seconds{sync=\"hub\"}"),
        "{during}"
    );
    assert_eq!(daemon.get("/readyz").0, 200, "10 minutes is far off");

    // After it: every counter as the report says.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !report_path.exists() {
        assert!(Instant::now() < deadline, "no report after 120 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let report = world.report();
    let totals = &report["totals"];
    assert!(as_f64(&totals["tags_copied"]) > 0.0, "{totals}");
    let (_, after) = daemon.get("/metrics");
    let value = |sample: &str| metric_value(&after, sample).unwrap_or_else(|| panic!("no {sample} in\n{after}"));
    assert_eq!(value("ocisync_pass_running{sync=\"hub\"}"), 0.0);
    assert_eq!(value("ocisync_passes_total{sync=\"hub\",outcome=\"success\"}"), 1.0);
    assert_eq!(value("ocisync_passes_total{sync=\"hub\",outcome=\"failure\"}"), 0.0);
    assert_eq!(
        value("ocisync_images_total{sync=\"hub\",outcome=\"copied\"}"),
        as_f64(&totals["tags_copied"])
    );
    assert_eq!(
        value("ocisync_images_total{sync=\"hub\",outcome=\"skipped\"}"),
        as_f64(&totals["tags_up_to_date"]) + as_f64(&totals["tags_filtered"]) + as_f64(&totals["tags_skipped_other"])
    );
    assert_eq!(
        value("ocisync_images_total{sync=\"hub\",outcome=\"failed\"}"),
        as_f64(&totals["tags_failed"])
    );
    assert_eq!(
        value("ocisync_copied_bytes_total{sync=\"hub\"}"),
        as_f64(&totals["bytes"])
    );
    assert_eq!(value("ocisync_pass_duration_seconds_count{sync=\"hub\"}"), 1.0);
    assert!(value("ocisync_last_success_timestamp_seconds{sync=\"hub\"}") > 1.6e9);
    assert_eq!(value("ocisync_last_pass_success{sync=\"hub\"}"), 1.0);
    assert_eq!(value("ocisync_max_pass_duration_seconds{sync=\"hub\"}"), 600.0);
    assert_eq!(value("ocisync_schedule_interval_seconds{sync=\"hub\"}"), 3600.0);
    let endpoints = report["syncs"][0]["endpoints"].as_array().unwrap();
    let source_use = endpoints.iter().find(|e| e["role"] == "source").unwrap();
    let retries = as_f64(&source_use["retries"]);
    assert!(retries >= 3.0, "the injected 503s were retried: {source_use}");
    let url = source_use["url"].as_str().unwrap();
    assert_eq!(
        value(&format!(
            "ocisync_registry_retries_total{{registry=\"upstream\",url=\"{url}\"}}"
        )),
        retries
    );
    assert_eq!(
        value(&format!(
            "ocisync_registry_failovers_total{{registry=\"upstream\",url=\"{url}\"}}"
        )),
        as_f64(&source_use["failovers"])
    );
    // Labels name syncs and registries, never repositories.
    for repo in corpus::repos(&images) {
        assert!(!after.contains(&repo), "{repo} in metrics");
    }
    assert_eq!(daemon.get("/healthz").0, 200);
    // Prometheus' own linter (names, units, help, types) finds nothing to say.
    promtool_accepts_metrics(&during);
    promtool_accepts_metrics(&after);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pass_past_its_limit_is_unready_until_it_is_stopped_and_fails() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;
    // 2 KiB/s per blob download: the pass would take minutes.
    let slow_source = CountingProxy::start_with(
        &upstream.url(),
        ProxyOptions {
            faults: Faults::none().every(
                RequestMatch::path_contains("/blobs/sha256:").method("GET"),
                Fault::Throttle { bytes_per_second: 2048 },
            ),
        },
    );
    world.write_config_via(&daemon_config("1s"), &[("{upstream}", &slow_source.url())]);
    let report_path = world.report_path();
    // The grace period is long enough to see the pass unready, and short enough that
    // the test does not wait for the throttled streams.
    let daemon = Observed::start(&world, &["--grace-period", "5s"]);

    let (_, reason) = daemon.wait_for("/readyz", Duration::from_secs(30), |status, _| status == 503);
    assert!(
        reason.contains("sync hub") && reason.contains("max_pass_duration"),
        "{reason}"
    );
    assert!(!report_path.exists(), "unready while the pass is still under way");
    assert_eq!(daemon.get("/healthz").0, 200, "a slow pass is not a dead process");
    assert_eq!(daemon.metric("ocisync_pass_running{sync=\"hub\"}"), Some(1.0));

    // The pass is stopped at its limit and abandoned after the grace period: ready
    // again, that pass counted as failed, and the daemon goes on to its next fire time.
    daemon.wait_for("/readyz", Duration::from_secs(60), |status, _| status == 200);
    assert_eq!(
        daemon.metric("ocisync_passes_total{sync=\"hub\",outcome=\"failure\"}"),
        Some(1.0),
        "ready again because the pass was stopped"
    );
    assert_eq!(daemon.metric("ocisync_pass_running{sync=\"hub\"}"), Some(0.0));
    let report = world.report();
    assert_eq!(report["syncs"][0]["stopped"], "deadline", "{report}");
    assert_eq!(daemon.get("/healthz").0, 200, "the daemon still runs");
    for repo in corpus::repos(&images) {
        assert_closure(&mirror.url(), &repo).await;
    }
}

/// The repositories a report names.
fn reported_repos(report: &Report) -> BTreeSet<String> {
    report["syncs"][0]["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|repo| repo["source"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn shards_split_a_real_catalog_without_overlap_or_gaps() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;
    let all: BTreeSet<String> = corpus::repos(&images).into_iter().collect();
    assert!(all.len() >= 3, "a catalog worth splitting: {all:?}");

    let mut taken = BTreeSet::new();
    for index in 0..2 {
        world.once_with(&["--shard", &format!("{index}/2")]).expect_code(0);
        let shard = reported_repos(&world.report());
        assert!(shard.len() < all.len(), "shard {index}/2 took everything: {shard:?}");
        assert!(taken.is_disjoint(&shard), "shards overlap: {taken:?} and {shard:?}");
        taken.extend(shard);
    }
    assert_eq!(taken, all, "together the shards cover the catalog");
    let repos = corpus::repos(&images);
    assert_mirror_complete(&upstream.url(), &mirror.url(), &same_names(&repos)).await;

    let run = world.run(&["check", "--shard", "2/2"]);
    run.expect_code(2);
    assert!(run.stderr.contains("not below the count"), "{}", run.stderr);
}
