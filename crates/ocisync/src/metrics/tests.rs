use std::sync::Arc;
use std::time::Duration;

use ocisync_engine::{
    FailureKind, Outcome, ProgressEvent, RateLimitUse, Report, SkipReason, SyncReport, TagReport, UrlUse, Work,
};

use super::{Metrics, SyncSettings};
use crate::test_reports::{alpine_sync, skipped};

fn tag(name: &str, outcome: Outcome, bytes: u64) -> TagReport {
    TagReport {
        outcome,
        work: Work {
            bytes,
            ..Work::default()
        },
        ..skipped(name, SkipReason::UpToDate)
    }
}

fn source_use(requests: u64, retries: u64) -> UrlUse {
    UrlUse {
        role: "source".into(),
        url: "http://127.0.0.1:5000".into(),
        served: 10,
        requests,
        retries,
        failovers: 1,
    }
}

fn one_sync_report(tags: Vec<TagReport>, retries: u64) -> Report {
    Report {
        syncs: vec![SyncReport {
            urls: vec![source_use(12, retries)],
            ..alpine_sync(tags)
        }],
    }
}

fn hub() -> Metrics {
    Metrics::new([SyncSettings::named("hub")])
}

fn assert_lines(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(text.lines().any(|l| l == *line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn passes_add_up_by_sync_outcome_and_registry() {
    let metrics = hub();
    let first = one_sync_report(
        vec![
            tag("1", Outcome::Copied, 300),
            tag(
                "2",
                Outcome::Skipped {
                    reason: SkipReason::UpToDate,
                },
                0,
            ),
        ],
        2,
    );
    metrics.pass_finished("hub", &first, Duration::from_millis(1500));
    let text = metrics.render();
    assert_lines(&text, &["ocisync_last_pass_success{sync=\"hub\"} 1"]);
    let failed = Outcome::Failed {
        kind: FailureKind::Integrity,
        error: "x".into(),
    };
    let second = one_sync_report(vec![tag("3", failed, 0)], 3);
    metrics.pass_finished("hub", &second, Duration::from_millis(500));
    let text = metrics.render();
    assert_lines(
        &text,
        &[
            "ocisync_passes_total{sync=\"hub\",outcome=\"success\"} 1",
            "ocisync_passes_total{sync=\"hub\",outcome=\"failure\"} 1",
            "ocisync_images_total{sync=\"hub\",outcome=\"copied\"} 1",
            "ocisync_images_total{sync=\"hub\",outcome=\"skipped\"} 1",
            "ocisync_images_total{sync=\"hub\",outcome=\"failed\"} 1",
            "ocisync_image_failures_total{sync=\"hub\",kind=\"integrity\"} 1",
            "ocisync_image_failures_total{sync=\"hub\",kind=\"source\"} 0",
            "ocisync_copied_bytes_total{sync=\"hub\"} 300",
            "ocisync_pass_duration_seconds_sum{sync=\"hub\"} 2",
            "ocisync_pass_duration_seconds_count{sync=\"hub\"} 2",
            "ocisync_last_pass_duration_seconds{sync=\"hub\"} 0.5",
            "ocisync_last_pass_success{sync=\"hub\"} 0",
            "ocisync_registry_requests_total{registry=\"upstream\",url=\"http://127.0.0.1:5000\"} 24",
            "ocisync_registry_retries_total{registry=\"upstream\",url=\"http://127.0.0.1:5000\"} 5",
            "ocisync_registry_failovers_total{registry=\"upstream\",url=\"http://127.0.0.1:5000\"} 2",
            "ocisync_pass_running{sync=\"hub\"} 0",
            &format!("ocisync_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION")),
        ],
    );
    assert!(text.contains("ocisync_last_success_timestamp_seconds{sync=\"hub\"} 1"));
    // No repository, tag or digest labels.
    assert!(!text.contains("alpine"), "{text}");
}

#[test]
fn counters_move_during_a_pass_and_never_go_back_when_it_ends() {
    let metrics = Arc::new(hub());
    metrics.pass_started("hub");
    let observer = metrics.observer("hub");
    observer.notify(ProgressEvent::TagDone {
        bytes: 100,
        outcome: Outcome::Copied,
    });
    observer.notify(ProgressEvent::TagDone {
        bytes: 0,
        outcome: Outcome::Failed {
            kind: FailureKind::Destination,
            error: "x".into(),
        },
    });
    metrics.urls_in_pass("hub", "upstream", "mirror", &[source_use(7, 1)]);
    let during = metrics.render();
    assert_lines(
        &during,
        &[
            "ocisync_pass_running{sync=\"hub\"} 1",
            "ocisync_images_total{sync=\"hub\",outcome=\"copied\"} 1",
            "ocisync_images_total{sync=\"hub\",outcome=\"failed\"} 1",
            "ocisync_image_failures_total{sync=\"hub\",kind=\"destination\"} 1",
            "ocisync_copied_bytes_total{sync=\"hub\"} 100",
            "ocisync_registry_requests_total{registry=\"upstream\",url=\"http://127.0.0.1:5000\"} 7",
            "ocisync_registry_retries_total{registry=\"upstream\",url=\"http://127.0.0.1:5000\"} 1",
            "ocisync_passes_total{sync=\"hub\",outcome=\"success\"} 0",
        ],
    );
    assert!(
        during.contains("ocisync_pass_start_timestamp_seconds{sync=\"hub\"} 1"),
        "{during}"
    );
    // The report has more (a referrer tag the events did not carry) and less (it
    // lost the failed image): each counter takes the larger.
    let report = one_sync_report(vec![tag("1", Outcome::Copied, 100), tag("2", Outcome::Copied, 50)], 0);
    metrics.pass_finished("hub", &report, Duration::from_secs(1));
    let after = metrics.render();
    assert_lines(
        &after,
        &[
            "ocisync_pass_running{sync=\"hub\"} 0",
            "ocisync_images_total{sync=\"hub\",outcome=\"copied\"} 2",
            "ocisync_images_total{sync=\"hub\",outcome=\"failed\"} 1",
            "ocisync_image_failures_total{sync=\"hub\",kind=\"destination\"} 1",
            "ocisync_copied_bytes_total{sync=\"hub\"} 150",
            "ocisync_registry_requests_total{registry=\"upstream\",url=\"http://127.0.0.1:5000\"} 12",
            "ocisync_registry_retries_total{registry=\"upstream\",url=\"http://127.0.0.1:5000\"} 1",
        ],
    );
    assert!(!after.contains("ocisync_pass_start_timestamp_seconds{"), "{after}");
    // The next pass starts from the settled numbers.
    metrics.pass_started("hub");
    metrics.urls_in_pass("hub", "upstream", "mirror", &[source_use(3, 0)]);
    assert_lines(
        &metrics.render(),
        &["ocisync_registry_requests_total{registry=\"upstream\",url=\"http://127.0.0.1:5000\"} 15"],
    );
}

#[test]
fn the_last_pass_sets_the_pull_quota_gauges() {
    let metrics = hub();
    let with_quota = |remaining: u64| {
        let mut report = one_sync_report(Vec::new(), 0);
        report.syncs[0].rate_limits = vec![RateLimitUse {
            role: "source".into(),
            url: "https://registry-1.docker.io".into(),
            limit: Some(100),
            remaining,
            window_seconds: Some(21600),
            reserve: Some(10),
            exhausted: false,
        }];
        report
    };
    metrics.pass_finished("hub", &with_quota(40), Duration::from_secs(1));
    metrics.pass_finished("hub", &with_quota(12), Duration::from_secs(1));
    let text = metrics.render();
    let labels = "{sync=\"hub\",registry=\"upstream\",url=\"https://registry-1.docker.io\"}";
    assert_lines(
        &text,
        &[
            &format!("ocisync_ratelimit_remaining{labels} 12"),
            &format!("ocisync_ratelimit_limit{labels} 100"),
            &format!("ocisync_ratelimit_window_seconds{labels} 21600"),
        ],
    );
    assert!(text.contains("# TYPE ocisync_ratelimit_remaining gauge"));
}

#[test]
fn a_sync_shows_before_its_first_pass_with_its_settings() {
    let settings = SyncSettings {
        name: "idle".into(),
        max_pass_duration: Some(Duration::from_secs(7200)),
        schedule_interval: Some(Duration::from_secs(1800)),
    };
    let text = Metrics::new([settings]).render();
    assert_lines(
        &text,
        &[
            "ocisync_passes_total{sync=\"idle\",outcome=\"success\"} 0",
            "ocisync_max_pass_duration_seconds{sync=\"idle\"} 7200",
            "ocisync_schedule_interval_seconds{sync=\"idle\"} 1800",
        ],
    );
    // Families without samples are left out altogether.
    assert!(!text.contains("ocisync_last_success_timestamp_seconds"), "{text}");
    assert!(!text.contains("ocisync_last_pass_success"), "{text}");
}

#[test]
fn a_push_leaves_the_sync_label_to_the_grouping_key() {
    let metrics = hub();
    metrics.pass_finished("hub", &one_sync_report(Vec::new(), 0), Duration::from_secs(1));
    let text = metrics.render_for_push();
    assert!(!text.contains("sync=\""), "{text}");
    assert_lines(
        &text,
        &[
            "ocisync_passes_total{outcome=\"success\"} 1",
            "ocisync_pass_running 0",
            "ocisync_registry_requests_total{registry=\"upstream\",url=\"http://127.0.0.1:5000\"} 12",
        ],
    );
}

#[test]
fn readiness_fails_only_while_a_pass_runs_past_its_limit() {
    let slow = SyncSettings {
        max_pass_duration: Some(Duration::from_millis(50)),
        ..SyncSettings::named("slow")
    };
    let metrics = Metrics::new([slow, SyncSettings::named("free")]);
    metrics.pass_started("free");
    metrics.pass_started("slow");
    assert_eq!(metrics.readiness(), Ok(()));
    std::thread::sleep(Duration::from_millis(80));
    let reason = metrics.readiness().unwrap_err();
    assert!(reason.contains("sync slow") && !reason.contains("free"), "{reason}");
    metrics.pass_finished("slow", &Report::default(), Duration::from_millis(80));
    assert_eq!(metrics.readiness(), Ok(()));
}

/// Every family ocisync can export: a sync with settings, a finished pass that saw a
/// pull quota, and a pass under way.
fn every_family() -> std::collections::BTreeSet<String> {
    let settings = SyncSettings {
        max_pass_duration: Some(Duration::from_secs(3600)),
        schedule_interval: Some(Duration::from_secs(1800)),
        ..SyncSettings::named("hub")
    };
    let metrics = Metrics::new([settings]);
    let mut report = one_sync_report(vec![tag("1", Outcome::Copied, 1)], 0);
    report.syncs[0].rate_limits = vec![RateLimitUse {
        role: "source".into(),
        url: "https://registry-1.docker.io".into(),
        limit: Some(100),
        remaining: 40,
        window_seconds: Some(21600),
        reserve: None,
        exhausted: false,
    }];
    metrics.pass_finished("hub", &report, Duration::from_secs(1));
    metrics.pass_started("hub");
    metrics
        .render()
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The `ocisync_*` names a text mentions, with a summary's `_sum` and `_count` read as
/// its family.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let pattern = regex::Regex::new(r"ocisync_[a-z0-9_]+").unwrap();
    pattern
        .find_iter(text)
        .map(|found| found.as_str())
        .map(|name| {
            let family = name.strip_suffix("_sum").or_else(|| name.strip_suffix("_count"));
            family.unwrap_or(name).to_owned()
        })
        .collect()
}

/// Every string in a JSON document (a Grafana dashboard keeps queries in `expr`, the
/// sync variable in `query`, and names metrics in descriptions).
fn json_strings(value: &serde_json::Value, found: &mut Vec<String>) {
    match value {
        serde_json::Value::String(text) => found.push(text.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|item| json_strings(item, found)),
        serde_json::Value::Object(fields) => fields.values().for_each(|item| json_strings(item, found)),
        _ => {}
    }
}

#[test]
fn the_dashboard_and_the_alerts_query_only_metrics_ocisync_exports() {
    let exported = every_family();
    assert!(
        exported.contains("ocisync_ratelimit_remaining") && exported.contains("ocisync_pass_start_timestamp_seconds")
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../../../deploy/grafana/ocisync.json")).expect("the dashboard is JSON");
    let mut strings = Vec::new();
    json_strings(&dashboard, &mut strings);
    let exprs: Vec<&String> = strings.iter().filter(|text| text.contains("ocisync_")).collect();
    assert!(exprs.len() >= 10, "the dashboard queries ocisync: {exprs:?}");
    let sources = [
        ("deploy/grafana/ocisync.json", strings.join("\n")),
        (
            "deploy/prometheus/alerts.yaml",
            include_str!("../../../../deploy/prometheus/alerts.yaml").to_owned(),
        ),
        (
            "deploy/prometheus/alerts.test.yaml",
            include_str!("../../../../deploy/prometheus/alerts.test.yaml").to_owned(),
        ),
    ];
    for (file, text) in sources {
        let unknown: Vec<String> = metric_names(&text).difference(&exported).cloned().collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics ocisync does not export: {unknown:?}"
        );
    }
    // Each panel of the dashboard asks something (rows aside).
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] != "row" {
            assert!(!panel["targets"].as_array().unwrap().is_empty(), "{}", panel["title"]);
        }
    }
}

#[test]
fn pruned_tags_are_counted_by_outcome_and_only_once_a_rule_prunes() {
    use ocisync_engine::{PruneOutcome, PruneReport, PrunedTag};
    let metrics = hub();
    metrics.pass_finished("hub", &one_sync_report(Vec::new(), 0), Duration::ZERO);
    assert!(!metrics.render().contains("ocisync_pruned_tags_total{"));
    let pruned = |name: &str, outcome: PruneOutcome| PrunedTag {
        tag: name.parse().unwrap(),
        digest: format!("sha256:{}", "a".repeat(64)).parse().unwrap(),
        subject: None,
        outcome,
    };
    let mut report = one_sync_report(Vec::new(), 0);
    report.syncs[0].repositories[0].prune = Some(PruneReport {
        tags: vec![
            pruned("v1", PruneOutcome::Pruned),
            pruned("v2", PruneOutcome::Pruned),
            pruned(
                "v3",
                PruneOutcome::PruneBlocked {
                    reason: "shared".into(),
                },
            ),
        ],
        ..PruneReport::default()
    });
    metrics.pass_finished("hub", &report, Duration::ZERO);
    metrics.pass_finished("hub", &report, Duration::ZERO);
    assert_lines(
        &metrics.render(),
        &[
            "ocisync_pruned_tags_total{sync=\"hub\",outcome=\"deleted\"} 4",
            "ocisync_pruned_tags_total{sync=\"hub\",outcome=\"blocked\"} 2",
            "ocisync_pruned_tags_total{sync=\"hub\",outcome=\"failed\"} 0",
        ],
    );
}

#[test]
fn backups_and_tags_held_back_by_min_age_are_counted_once_a_rule_uses_them() {
    use ocisync_engine::{TagBackup, TagLifecycle};
    let metrics = hub();
    metrics.pass_finished(
        "hub",
        &one_sync_report(vec![tag("1", Outcome::Copied, 1)], 0),
        Duration::ZERO,
    );
    let before = metrics.render();
    assert!(!before.contains("ocisync_backed_up_tags_total{"), "{before}");
    assert!(!before.contains("ocisync_held_back_tags_total{"), "{before}");
    let backup = |name: &str, outcome: Outcome| TagReport {
        lifecycle: TagLifecycle {
            eligible_at: None,
            backup: Some(TagBackup {
                name: format!("{name}-20261205").parse().unwrap(),
                digest: format!("sha256:{}", "b".repeat(64)).parse().unwrap(),
            }),
        },
        ..tag(name, outcome, 10)
    };
    let held_back = |name: &str, reason: SkipReason| tag(name, Outcome::Skipped { reason }, 0);
    let report = one_sync_report(
        vec![
            backup("latest", Outcome::Copied),
            backup("stable", Outcome::Copied),
            // `check` plans a backup and makes none.
            backup("edge", Outcome::WouldCopy),
            held_back("young", SkipReason::TooYoung),
            held_back("undated", SkipReason::NoCreatedTime),
            held_back("same", SkipReason::UpToDate),
        ],
        0,
    );
    metrics.pass_finished("hub", &report, Duration::ZERO);
    metrics.pass_finished("hub", &report, Duration::ZERO);
    let after = metrics.render();
    assert_lines(
        &after,
        &[
            "ocisync_backed_up_tags_total{sync=\"hub\"} 4",
            "ocisync_held_back_tags_total{sync=\"hub\",reason=\"too-young\"} 2",
            "ocisync_held_back_tags_total{sync=\"hub\",reason=\"no-created-time\"} 2",
        ],
    );
    promtool_accepts(&after);
}

/// `promtool check metrics` (Debian's `prometheus` package; `make deps` installs it)
/// lints an exposition: a counter without `_total`, a unit in the wrong place, no help.
fn promtool_accepts(exposition: &str) {
    use std::io::Write as _;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; `make deps` installs it)");
    child.stdin.take().unwrap().write_all(exposition.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool check metrics:\n{}{}\n--- input\n{exposition}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
