//! `once --push-metrics`: a CronJob-style run pushes its pass metrics to a real
//! Prometheus Pushgateway (Debian's `prometheus-pushgateway`), which serves them back
//! grouped by job and sync.

use std::collections::BTreeMap;

use ocisync_testkit::{corpus, small_corpus, TestPushgateway};

use crate::support::{config_with_syncs, Mirror};

/// One sync `hub` with a schedule and a pass limit, so the pushed settings show too.
fn config(defaults: &str) -> String {
    config_with_syncs("  - name: hub\n    from: upstream\n    to: mirror\n    schedule: \"*/30 * * * *\"\n")
        + &format!("defaults:\n  max_pass_duration: 1h\n  retry: {{max_attempts: 1}}\n{defaults}")
}

/// A loopback port nothing listens on (it was free a moment ago).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The samples of `name` in an exposition, each with its labels.
fn samples(exposition: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    exposition
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(rest) => rest.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            let labels = labels
                .split(',')
                .filter(|pair| !pair.is_empty())
                .filter_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    Some((key.to_owned(), value.trim_matches('"').to_owned()))
                })
                .collect();
            Some((labels, value.trim().parse().ok()?))
        })
        .collect()
}

/// The value of the one sample of `name` whose labels include all of `labels`.
fn value(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = samples(exposition, name)
        .into_iter()
        .filter(|(have, _)| {
            labels
                .iter()
                .all(|(key, value)| have.get(*key).map(String::as_str) == Some(*value))
        })
        .map(|(_, value)| value)
        .collect();
    assert!(matching.len() <= 1, "{name} {labels:?} is ambiguous in\n{exposition}");
    matching.first().copied()
}

const HUB: [(&str, &str); 2] = [("job", "ocisync"), ("sync", "hub")];

fn hub_with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    HUB.iter().copied().chain(extra.iter().copied()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cronjob_run_pushes_its_metrics_and_a_failed_run_keeps_the_last_success() {
    let world = Mirror::start();
    let upstream = &world.upstream;
    corpus::seed(&upstream.url(), &small_corpus()).await;
    let gateway = TestPushgateway::start();

    // A good run, told where to push on the command line.
    world.write_config(&config(""));
    world.once_with(&["--push-metrics", &gateway.url()]).expect_code(0);
    let totals = world.report()["totals"].clone();
    let pushed = gateway.metrics();
    assert_eq!(
        value(&pushed, "ocisync_passes_total", &hub_with(&[("outcome", "success")])),
        Some(1.0),
        "{pushed}"
    );
    assert_eq!(
        value(&pushed, "ocisync_passes_total", &hub_with(&[("outcome", "failure")])),
        Some(0.0)
    );
    assert_eq!(
        value(&pushed, "ocisync_images_total", &hub_with(&[("outcome", "copied")])),
        totals["tags_copied"].as_f64()
    );
    assert!(totals["tags_copied"].as_f64().unwrap() > 0.0, "{totals}");
    assert_eq!(
        value(&pushed, "ocisync_copied_bytes_total", &HUB),
        totals["bytes"].as_f64()
    );
    assert_eq!(value(&pushed, "ocisync_last_pass_success", &HUB), Some(1.0));
    assert_eq!(value(&pushed, "ocisync_pass_running", &HUB), Some(0.0));
    assert_eq!(value(&pushed, "ocisync_max_pass_duration_seconds", &HUB), Some(3600.0));
    assert_eq!(value(&pushed, "ocisync_schedule_interval_seconds", &HUB), Some(1800.0));
    assert_eq!(value(&pushed, "ocisync_pass_duration_seconds_count", &HUB), Some(1.0));
    let requests = value(
        &pushed,
        "ocisync_registry_requests_total",
        &hub_with(&[("registry", "upstream"), ("url", &upstream.url())]),
    );
    assert!(requests.is_some_and(|requests| requests > 0.0), "{pushed}");
    // The start of the pass was pushed before it, and stays as the gateway's record.
    assert!(value(&pushed, "ocisync_pass_start_timestamp_seconds", &HUB).is_some_and(|time| time > 1.6e9));
    let last_success = value(&pushed, "ocisync_last_success_timestamp_seconds", &HUB).expect("a last success");
    assert!(last_success > 1.6e9);
    // The gateway's own record of the push, per group.
    assert!(value(&pushed, "push_time_seconds", &HUB).is_some(), "{pushed}");
    // Labels name the sync and registries, never repositories.
    for repo in corpus::repos(&small_corpus()) {
        assert!(!pushed.contains(&repo), "{repo} pushed");
    }

    // A failed run (the upstream is gone), told where to push by the config.
    world.write_config_via(
        &config(&format!("  push_metrics: \"{}\"\n", gateway.url())),
        &[("{upstream}", &format!("http://127.0.0.1:{}", closed_port()))],
    );
    world.run(&["once"]).expect_code(1);
    let pushed = gateway.metrics();
    assert_eq!(value(&pushed, "ocisync_last_pass_success", &HUB), Some(0.0), "{pushed}");
    assert_eq!(
        value(&pushed, "ocisync_passes_total", &hub_with(&[("outcome", "failure")])),
        Some(1.0)
    );
    assert_eq!(
        value(&pushed, "ocisync_last_success_timestamp_seconds", &HUB),
        Some(last_success),
        "the last success stays for the staleness alert"
    );
}

#[test]
fn a_push_that_fails_is_logged_and_leaves_the_exit_code_alone() {
    let world = Mirror::start();
    world.write_config(&config(""));
    let nowhere = format!("http://127.0.0.1:{}", closed_port());
    let run = world.run(&["once", "--push-metrics", &nowhere]);
    run.expect_code(0);
    assert!(
        run.stderr.contains("cannot push metrics") && run.stderr.contains(&nowhere),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shards_of_an_indexed_job_push_groups_of_their_own() {
    let world = Mirror::start();
    corpus::seed(&world.upstream.url(), &small_corpus()).await;
    let gateway = TestPushgateway::start();
    world.write_config(&config(""));
    let mut reported = Vec::new();
    for shard in ["0/2", "1/2"] {
        world
            .once_with(&["--shard", shard, "--push-metrics", &gateway.url()])
            .expect_code(0);
        reported.push((shard, world.report()["totals"]["tags_copied"].as_f64().unwrap()));
    }
    // Each worker's group holds its own numbers: the second did not replace the first.
    let pushed = gateway.metrics();
    for (shard, copied) in reported {
        let labels = hub_with(&[("shard", shard), ("outcome", "copied")]);
        assert_eq!(
            value(&pushed, "ocisync_images_total", &labels),
            Some(copied),
            "shard {shard} in\n{pushed}"
        );
    }
}
