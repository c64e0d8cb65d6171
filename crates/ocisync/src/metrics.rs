//! What `run` has done so far, for `/metrics` (Prometheus text format) and `/readyz`.
//!
//! The numbers come from each pass's report, added after the pass; only the start
//! and end of a pass are marked while it runs, so readiness can see a pass that is
//! stuck. Labels name syncs and registries, never repositories, tags or digests:
//! those are unbounded and belong in the report file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ocisync_engine::{RateLimitUse, Report};

/// The counters of the daemon, shared between the sync loops and the HTTP listener.
#[derive(Default)]
pub struct Metrics {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    syncs: BTreeMap<String, SyncCounters>,
    /// Keyed by (registry name from the config, URL).
    endpoints: BTreeMap<(String, String), EndpointCounters>,
    /// The pull quota each URL announced in its sync's last pass, keyed by (sync,
    /// registry name, URL).
    rate_limits: BTreeMap<(String, String, String), RateLimitUse>,
}

#[derive(Default)]
struct SyncCounters {
    passes_succeeded: u64,
    passes_failed: u64,
    images_copied: u64,
    images_skipped: u64,
    images_failed: u64,
    repositories_failed: u64,
    bytes: u64,
    duration_sum: f64,
    last_duration: Option<f64>,
    last_success: Option<SystemTime>,
    running_since: Option<Instant>,
    max_pass_duration: Option<Duration>,
}

#[derive(Default)]
struct EndpointCounters {
    requests: u64,
    retries: u64,
    failovers: u64,
}

impl Metrics {
    /// Metrics for these syncs (name, longest healthy pass): all show up, at zero,
    /// before their first pass.
    pub fn new<'a>(syncs: impl IntoIterator<Item = (&'a str, Option<Duration>)>) -> Metrics {
        let syncs = syncs
            .into_iter()
            .map(|(name, max_pass_duration)| {
                let counters = SyncCounters {
                    max_pass_duration,
                    ..SyncCounters::default()
                };
                (name.to_owned(), counters)
            })
            .collect();
        Metrics {
            state: Mutex::new(State {
                syncs,
                endpoints: BTreeMap::new(),
                rate_limits: BTreeMap::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves counters that are still
        // worth serving; poisoning must not take the listener down with it.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn pass_started(&self, sync: &str) {
        self.state().syncs.entry(sync.to_owned()).or_default().running_since = Some(Instant::now());
    }

    /// Adds a finished pass of one sync: `report` holds that sync alone.
    pub fn pass_finished(&self, sync: &str, report: &Report, duration: Duration) {
        let totals = report.totals();
        let mut state = self.state();
        let counters = state.syncs.entry(sync.to_owned()).or_default();
        counters.running_since = None;
        if report.has_failures() {
            counters.passes_failed += 1;
        } else {
            counters.passes_succeeded += 1;
            counters.last_success = Some(SystemTime::now());
        }
        counters.images_copied += totals.tags_copied as u64;
        counters.images_skipped += (totals.tags_up_to_date + totals.tags_filtered + totals.tags_skipped_other) as u64;
        counters.images_failed += totals.tags_failed as u64;
        counters.repositories_failed += totals.repositories_failed as u64;
        counters.bytes = counters.bytes.saturating_add(totals.bytes);
        counters.duration_sum += duration.as_secs_f64();
        counters.last_duration = Some(duration.as_secs_f64());
        for sync_report in &report.syncs {
            for endpoint in &sync_report.endpoints {
                let registry = if endpoint.role == "source" {
                    &sync_report.from
                } else {
                    &sync_report.to
                };
                let counters = state
                    .endpoints
                    .entry((registry.clone(), endpoint.url.clone()))
                    .or_default();
                counters.requests += endpoint.requests;
                counters.retries += endpoint.retries;
                counters.failovers += endpoint.failovers;
            }
            for rate_limit in &sync_report.rate_limits {
                let registry = if rate_limit.role == "source" {
                    &sync_report.from
                } else {
                    &sync_report.to
                };
                let key = (sync_report.name.clone(), registry.clone(), rate_limit.url.clone());
                state.rate_limits.insert(key, rate_limit.clone());
            }
        }
    }

    /// `Err` with one line per sync whose pass has run past its limit.
    pub fn readiness(&self) -> Result<(), String> {
        let state = self.state();
        let stuck: Vec<String> = state
            .syncs
            .iter()
            .filter_map(|(name, counters)| {
                let running = counters.running_since?.elapsed();
                let limit = counters.max_pass_duration?;
                (running > limit).then(|| {
                    format!(
                        "sync {name}: pass running for {}, longer than max_pass_duration {}",
                        humantime::format_duration(Duration::from_secs(running.as_secs())),
                        humantime::format_duration(limit)
                    )
                })
            })
            .collect();
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(stuck.join("\n"))
        }
    }

    /// The Prometheus text exposition format, version 0.0.4.
    pub fn render(&self) -> String {
        let state = self.state();
        let mut out = Exposition::default();
        let syncs = &state.syncs;
        out.family(
            "ocisync_passes_total",
            "counter",
            "Passes finished, by sync and outcome.",
        );
        for (name, counters) in syncs {
            out.sample(&[("sync", name), ("outcome", "success")], counters.passes_succeeded);
            out.sample(&[("sync", name), ("outcome", "failure")], counters.passes_failed);
        }
        out.family(
            "ocisync_images_total",
            "counter",
            "Images (tags) handled, by sync and outcome: copied, skipped (up to date or filtered) or failed.",
        );
        for (name, counters) in syncs {
            out.sample(&[("sync", name), ("outcome", "copied")], counters.images_copied);
            out.sample(&[("sync", name), ("outcome", "skipped")], counters.images_skipped);
            out.sample(&[("sync", name), ("outcome", "failed")], counters.images_failed);
        }
        out.family(
            "ocisync_repositories_failed_total",
            "counter",
            "Repositories whose tags could not be listed.",
        );
        for (name, counters) in syncs {
            out.sample(&[("sync", name)], counters.repositories_failed);
        }
        out.family("ocisync_bytes_copied_total", "counter", "Blob bytes transferred.");
        for (name, counters) in syncs {
            out.sample(&[("sync", name)], counters.bytes);
        }
        out.family(
            "ocisync_pass_duration_seconds",
            "summary",
            "How long finished passes took.",
        );
        for (name, counters) in syncs {
            out.named_sample(
                "ocisync_pass_duration_seconds_sum",
                &[("sync", name)],
                counters.duration_sum,
            );
            out.named_sample(
                "ocisync_pass_duration_seconds_count",
                &[("sync", name)],
                counters.passes_succeeded + counters.passes_failed,
            );
        }
        out.family(
            "ocisync_last_pass_duration_seconds",
            "gauge",
            "How long the last finished pass took.",
        );
        for (name, counters) in syncs {
            if let Some(seconds) = counters.last_duration {
                out.sample(&[("sync", name)], seconds);
            }
        }
        out.family(
            "ocisync_last_success_timestamp_seconds",
            "gauge",
            "When the last pass without failures ended (Unix time).",
        );
        for (name, counters) in syncs {
            if let Some(seconds) = counters.last_success.and_then(unix_seconds) {
                out.sample(&[("sync", name)], seconds);
            }
        }
        out.family(
            "ocisync_pass_running",
            "gauge",
            "1 while a pass of the sync is under way.",
        );
        for (name, counters) in syncs {
            out.sample(&[("sync", name)], u64::from(counters.running_since.is_some()));
        }
        out.family(
            "ocisync_pass_running_seconds",
            "gauge",
            "How long the pass under way has been running (0 when none is).",
        );
        for (name, counters) in syncs {
            let running = counters
                .running_since
                .map_or(0.0, |since| since.elapsed().as_secs_f64());
            out.sample(&[("sync", name)], running);
        }
        out.family(
            "ocisync_registry_requests_total",
            "counter",
            "HTTP requests sent, by registry and URL (retries included).",
        );
        for ((registry, url), counters) in &state.endpoints {
            out.sample(&[("registry", registry), ("url", url)], counters.requests);
        }
        out.family(
            "ocisync_registry_retries_total",
            "counter",
            "Requests repeated after a transient failure, by registry and URL.",
        );
        for ((registry, url), counters) in &state.endpoints {
            out.sample(&[("registry", registry), ("url", url)], counters.retries);
        }
        out.family(
            "ocisync_registry_failovers_total",
            "counter",
            "Calls moved from a registry's URL to the next one, by registry and the URL failed over from.",
        );
        for ((registry, url), counters) in &state.endpoints {
            out.sample(&[("registry", registry), ("url", url)], counters.failovers);
        }
        out.family(
            "ocisync_ratelimit_remaining",
            "gauge",
            "Pulls left of the registry's quota (ratelimit-remaining) at the end of the sync's last pass; 0 once used up.",
        );
        for ((sync, registry, url), rate_limit) in &state.rate_limits {
            out.sample(
                &[("sync", sync), ("registry", registry), ("url", url)],
                rate_limit.remaining,
            );
        }
        out.family(
            "ocisync_ratelimit_limit",
            "gauge",
            "Pulls per window of the registry's quota (ratelimit-limit), as last announced.",
        );
        for ((sync, registry, url), rate_limit) in &state.rate_limits {
            if let Some(limit) = rate_limit.limit {
                out.sample(&[("sync", sync), ("registry", registry), ("url", url)], limit);
            }
        }
        out.family(
            "ocisync_ratelimit_window_seconds",
            "gauge",
            "The window of the registry's pull quota (w= of ratelimit-*), as last announced.",
        );
        for ((sync, registry, url), rate_limit) in &state.rate_limits {
            if let Some(window) = rate_limit.window_seconds {
                out.sample(&[("sync", sync), ("registry", registry), ("url", url)], window);
            }
        }
        out.text
    }
}

fn unix_seconds(time: SystemTime) -> Option<f64> {
    time.duration_since(UNIX_EPOCH).ok().map(|since| since.as_secs_f64())
}

/// Writes metric families; each sample belongs to the family named last.
#[derive(Default)]
struct Exposition {
    text: String,
    family: &'static str,
}

impl Exposition {
    fn family(&mut self, name: &'static str, kind: &str, help: &str) {
        self.family = name;
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.named_sample(self.family, labels, value);
    }

    fn named_sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(key, value)| format!("{key}=\"{}\"", escape_label(value)))
            .collect();
        let _ = writeln!(self.text, "{name}{{{}}} {value}", labels.join(","));
    }
}

/// Label values escape backslash, double quote and newline (exposition format spec).
fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use ocisync_engine::{EndpointUse, Outcome, RepoReport, SkipReason, SyncReport, TagReport};

    use super::*;

    fn tag(name: &str, outcome: Outcome, bytes: u64) -> TagReport {
        TagReport {
            outcome,
            bytes,
            ..TagReport::skipped(name.parse::<ocisync_oci::Tag>().unwrap(), SkipReason::UpToDate, None)
        }
    }

    fn one_sync_report(tags: Vec<TagReport>, retries: u64) -> Report {
        Report {
            syncs: vec![SyncReport {
                rules: Vec::new(),
                name: "hub".into(),
                from: "upstream".into(),
                to: "mirror".into(),
                error: None,
                repositories: vec![RepoReport {
                    source: "library/alpine".parse().unwrap(),
                    destination: "library/alpine".parse().unwrap(),
                    error: None,
                    tags,
                }],
                endpoints: vec![EndpointUse {
                    role: "source".into(),
                    url: "http://127.0.0.1:5000".into(),
                    served: 10,
                    requests: 12,
                    retries,
                    failovers: 1,
                }],
                rate_limits: Vec::new(),
                stopped: None,
            }],
        }
    }

    #[test]
    fn passes_add_up_by_sync_outcome_and_registry() {
        let metrics = Metrics::new([("hub", None)]);
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
        let second = one_sync_report(vec![tag("3", Outcome::Failed { error: "x".into() }, 0)], 3);
        metrics.pass_finished("hub", &second, Duration::from_millis(500));
        let text = metrics.render();
        for line in [
            "ocisync_passes_total{sync=\"hub\",outcome=\"success\"} 1",
            "ocisync_passes_total{sync=\"hub\",outcome=\"failure\"} 1",
            "ocisync_images_total{sync=\"hub\",outcome=\"copied\"} 1",
            "ocisync_images_total{sync=\"hub\",outcome=\"skipped\"} 1",
            "ocisync_images_total{sync=\"hub\",outcome=\"failed\"} 1",
            "ocisync_bytes_copied_total{sync=\"hub\"} 300",
            "ocisync_pass_duration_seconds_sum{sync=\"hub\"} 2",
            "ocisync_pass_duration_seconds_count{sync=\"hub\"} 2",
            "ocisync_last_pass_duration_seconds{sync=\"hub\"} 0.5",
            "ocisync_registry_requests_total{registry=\"upstream\",url=\"http://127.0.0.1:5000\"} 24",
            "ocisync_registry_retries_total{registry=\"upstream\",url=\"http://127.0.0.1:5000\"} 5",
            "ocisync_registry_failovers_total{registry=\"upstream\",url=\"http://127.0.0.1:5000\"} 2",
            "ocisync_pass_running{sync=\"hub\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(text.contains("ocisync_last_success_timestamp_seconds{sync=\"hub\"} 1"));
        // No repository, tag or digest labels.
        assert!(!text.contains("alpine"), "{text}");
    }

    #[test]
    fn the_last_pass_sets_the_pull_quota_gauges() {
        let metrics = Metrics::new([("hub", None)]);
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
        for line in [
            format!("ocisync_ratelimit_remaining{labels} 12"),
            format!("ocisync_ratelimit_limit{labels} 100"),
            format!("ocisync_ratelimit_window_seconds{labels} 21600"),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(text.contains("# TYPE ocisync_ratelimit_remaining gauge"));
    }

    #[test]
    fn a_sync_shows_before_its_first_pass() {
        let text = Metrics::new([("idle", None)]).render();
        assert!(
            text.contains("ocisync_passes_total{sync=\"idle\",outcome=\"success\"} 0"),
            "{text}"
        );
        assert!(!text.contains("ocisync_last_success_timestamp_seconds{"), "{text}");
    }

    #[test]
    fn readiness_fails_only_while_a_pass_runs_past_its_limit() {
        let metrics = Metrics::new([("slow", Some(Duration::from_millis(50))), ("free", None)]);
        metrics.pass_started("free");
        metrics.pass_started("slow");
        assert_eq!(metrics.readiness(), Ok(()));
        std::thread::sleep(Duration::from_millis(80));
        let reason = metrics.readiness().unwrap_err();
        assert!(reason.contains("sync slow") && !reason.contains("free"), "{reason}");
        metrics.pass_finished("slow", &Report::default(), Duration::from_millis(80));
        assert_eq!(metrics.readiness(), Ok(()));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
