//! What passes have done, in the Prometheus text format: served on `/metrics` by
//! `run`, pushed to a Pushgateway by `once`; and what `/readyz` answers.
//!
//! Counters move while a pass runs: the engine's progress events count each image
//! (and its bytes) as it ends, and the daemon hands in its stores' request counters
//! every second. When the pass ends, its report settles them: each counter grows by
//! what the report says or what was already counted, whichever is more, so a counter
//! never goes down. Labels name syncs and registries, never repositories, tags or
//! digests: those are unbounded and belong in the report file.

mod events;
mod exposition;
mod render;
mod settings;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use ocisync_engine::{FailureKind, Outcome, ProgressEvent, ProgressObserver, RateLimitUse, Report, UrlUse};

pub use events::EventOutcome;
pub use settings::SyncSettings;

use events::EventCounters;

/// The counters of one process, shared between the passes and whoever reads them.
pub struct Metrics {
    state: Mutex<State>,
}

struct State {
    syncs: BTreeMap<String, SyncState>,
    /// Settled by finished passes, keyed by (registry name from the config, URL).
    urls: BTreeMap<(String, String), UrlCounters>,
    /// The pull quota each URL announced in its sync's last pass, keyed by (sync,
    /// registry name, URL).
    rate_limits: BTreeMap<(String, String, String), RateLimitUse>,
    /// Registry notifications and the work they caused (`run` only).
    events: EventCounters,
}

#[derive(Default)]
struct SyncState {
    max_pass_duration: Option<Duration>,
    schedule_interval: Option<Duration>,
    passes_succeeded: u64,
    passes_failed: u64,
    /// Settled by finished passes.
    finished: ImageCounters,
    /// Counted during the pass under way, from progress events.
    live: ImageCounters,
    /// Requests of the pass under way, by (registry name, URL), as last handed in.
    live_urls: BTreeMap<(String, String), UrlCounters>,
    duration_sum: f64,
    last_duration: Option<f64>,
    last_success: Option<SystemTime>,
    last_pass_succeeded: Option<bool>,
    running_since: Option<RunningSince>,
}

#[derive(Clone, Copy)]
struct RunningSince {
    /// For durations, which the wall clock must not bend.
    instant: Instant,
    /// For the start timestamp alerts compare with `time()`.
    time: SystemTime,
}

/// What a sync's passes did to images.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
struct ImageCounters {
    copied: u64,
    skipped: u64,
    failed: u64,
    /// `failed`, by what failed.
    failed_by_kind: FailureCounts,
    repositories_failed: u64,
    bytes: u64,
}

impl ImageCounters {
    fn of(report: &Report) -> ImageCounters {
        let totals = report.totals();
        let mut failed_by_kind = FailureCounts::default();
        for kind in report.failure_kinds() {
            failed_by_kind.count(kind);
        }
        ImageCounters {
            copied: totals.tags_copied as u64,
            skipped: (totals.tags_up_to_date + totals.tags_filtered + totals.tags_skipped_other) as u64,
            failed: totals.tags_failed as u64,
            failed_by_kind,
            repositories_failed: totals.repositories_failed as u64,
            bytes: totals.work.bytes,
        }
    }

    /// Adds a finished pass: what its report says, or what was counted live if that
    /// is more (an event counted that the report, for whatever reason, does not).
    fn settle(&mut self, pass: ImageCounters, live: ImageCounters) {
        self.copied += pass.copied.max(live.copied);
        self.skipped += pass.skipped.max(live.skipped);
        self.failed += pass.failed.max(live.failed);
        for kind in FailureKind::ALL {
            let more = pass.failed_by_kind.of(kind).max(live.failed_by_kind.of(kind));
            self.failed_by_kind.add(kind, more);
        }
        self.repositories_failed += pass.repositories_failed.max(live.repositories_failed);
        self.bytes = self.bytes.saturating_add(pass.bytes.max(live.bytes));
    }

    fn plus(self, other: ImageCounters) -> ImageCounters {
        ImageCounters {
            copied: self.copied + other.copied,
            skipped: self.skipped + other.skipped,
            failed: self.failed + other.failed,
            failed_by_kind: self.failed_by_kind.plus(other.failed_by_kind),
            repositories_failed: self.repositories_failed + other.repositories_failed,
            bytes: self.bytes + other.bytes,
        }
    }
}

/// Failed images by [`FailureKind`], in the order of [`FailureKind::ALL`].
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
struct FailureCounts([u64; FailureKind::ALL.len()]);

impl FailureCounts {
    fn slot(kind: FailureKind) -> usize {
        FailureKind::ALL
            .iter()
            .position(|each| *each == kind)
            .unwrap_or_default()
    }

    fn of(&self, kind: FailureKind) -> u64 {
        self.0[Self::slot(kind)]
    }

    fn add(&mut self, kind: FailureKind, count: u64) {
        self.0[Self::slot(kind)] += count;
    }

    fn count(&mut self, kind: FailureKind) {
        self.add(kind, 1);
    }

    fn plus(mut self, other: FailureCounts) -> FailureCounts {
        for kind in FailureKind::ALL {
            self.add(kind, other.of(kind));
        }
        self
    }
}

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
struct UrlCounters {
    requests: u64,
    retries: u64,
    failovers: u64,
}

impl UrlCounters {
    fn of(usage: &UrlUse) -> UrlCounters {
        UrlCounters {
            requests: usage.requests,
            retries: usage.retries,
            failovers: usage.failovers,
        }
    }

    fn settle(&mut self, pass: UrlCounters, live: UrlCounters) {
        self.requests += pass.requests.max(live.requests);
        self.retries += pass.retries.max(live.retries);
        self.failovers += pass.failovers.max(live.failovers);
    }

    fn plus(self, other: UrlCounters) -> UrlCounters {
        UrlCounters {
            requests: self.requests + other.requests,
            retries: self.retries + other.retries,
            failovers: self.failovers + other.failovers,
        }
    }
}

/// The configured registry behind an `UrlUse`'s role.
fn registry_of<'a>(role: &str, from: &'a str, to: &'a str) -> &'a str {
    if role == "source" {
        from
    } else {
        to
    }
}

impl Metrics {
    /// Metrics for these syncs: all show up, at zero, before their first pass.
    pub fn new(syncs: impl IntoIterator<Item = SyncSettings>) -> Metrics {
        let syncs = syncs
            .into_iter()
            .map(|settings| {
                let state = SyncState {
                    max_pass_duration: settings.max_pass_duration,
                    schedule_interval: settings.schedule_interval,
                    ..SyncState::default()
                };
                (settings.name, state)
            })
            .collect();
        Metrics {
            state: Mutex::new(State {
                syncs,
                urls: BTreeMap::new(),
                rate_limits: BTreeMap::new(),
                events: EventCounters::default(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves counters that are still
        // worth serving; poisoning must not take the listener down with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn pass_started(&self, sync: &str) {
        let mut state = self.state();
        let counters = state.syncs.entry(sync.to_owned()).or_default();
        counters.running_since = Some(RunningSince {
            instant: Instant::now(),
            time: SystemTime::now(),
        });
        counters.live = ImageCounters::default();
        counters.live_urls.clear();
    }

    /// The engine-side hook that counts `sync`'s images as they end.
    pub fn observer(self: &Arc<Self>, sync: &str) -> ProgressObserver {
        let metrics = Arc::clone(self);
        let sync = sync.to_owned();
        ProgressObserver::new(move |event| {
            if let ProgressEvent::TagDone { bytes, outcome } = event {
                metrics.image_done(&sync, bytes, &outcome);
            }
        })
    }

    fn image_done(&self, sync: &str, bytes: u64, outcome: &Outcome) {
        let mut state = self.state();
        let live = &mut state.syncs.entry(sync.to_owned()).or_default().live;
        live.bytes = live.bytes.saturating_add(bytes);
        match outcome {
            Outcome::Copied => live.copied += 1,
            Outcome::Skipped { .. } => live.skipped += 1,
            Outcome::Failed { kind, .. } => {
                live.failed += 1;
                live.failed_by_kind.count(*kind);
            }
            // A dry run copies nothing and is not counted.
            Outcome::WouldCopy => {}
        }
    }

    /// What `sync`'s stores have sent so far in the pass under way (`from` and `to`
    /// name its registries).
    pub fn urls_in_pass(&self, sync: &str, from: &str, to: &str, usage: &[UrlUse]) {
        let mut state = self.state();
        let counters = state.syncs.entry(sync.to_owned()).or_default();
        counters.live_urls = usage
            .iter()
            .map(|usage| {
                let registry = registry_of(&usage.role, from, to).to_owned();
                ((registry, usage.url.clone()), UrlCounters::of(usage))
            })
            .collect();
    }

    /// Settles a finished pass of one sync: `report` holds that sync alone.
    pub fn pass_finished(&self, sync: &str, report: &Report, duration: Duration) {
        let succeeded = !report.has_failures();
        let mut state = self.state();
        let counters = state.syncs.entry(sync.to_owned()).or_default();
        counters.running_since = None;
        if succeeded {
            counters.passes_succeeded += 1;
            counters.last_success = Some(SystemTime::now());
        } else {
            counters.passes_failed += 1;
        }
        counters.last_pass_succeeded = Some(succeeded);
        counters.duration_sum += duration.as_secs_f64();
        counters.last_duration = Some(duration.as_secs_f64());
        settle_work(&mut state, sync, report);
    }

    /// Settles the images and requests of an event-driven sync of some repositories
    /// (not a pass: pass counts, durations and readiness stay as they are). It runs
    /// under the sync's gate, so no pass of the sync shares its live counters.
    pub fn event_work_finished(&self, sync: &str, report: &Report) {
        settle_work(&mut self.state(), sync, report);
    }

    /// `run` accepts notifications: the queue depth shows from now on.
    pub fn events_enabled(&self) {
        self.state().events.queue_depth.get_or_insert(0);
    }

    pub fn notification_answered(&self, registry: &str, status: u16) {
        *self
            .state()
            .events
            .requests
            .entry((registry.to_owned(), status))
            .or_default() += 1;
    }

    pub fn event_received(&self, registry: &str, kind: &'static str, outcome: EventOutcome) {
        *self
            .state()
            .events
            .events
            .entry((registry.to_owned(), kind, outcome))
            .or_default() += 1;
    }

    pub fn event_queue_depth(&self, repositories: usize) {
        self.state().events.queue_depth = Some(repositories);
    }

    /// From an event's timestamp to its tag at the destination.
    pub fn mirror_lag(&self, sync: &str, lag: Duration) {
        self.state()
            .events
            .lag
            .entry(sync.to_owned())
            .or_default()
            .observe(lag.as_secs_f64());
    }

    /// `Err` with one line per sync whose pass has run past its limit.
    pub fn readiness(&self) -> Result<(), String> {
        let state = self.state();
        let stuck: Vec<String> = state
            .syncs
            .iter()
            .filter_map(|(name, counters)| {
                let running = counters.running_since?.instant.elapsed();
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

    /// Everything, for `/metrics`.
    pub fn render(&self) -> String {
        render::render(&self.state(), None)
    }

    /// Everything without the `sync` label, which a Pushgateway takes from the
    /// grouping key (each push holds one sync).
    pub fn render_for_push(&self) -> String {
        render::render(&self.state(), Some("sync"))
    }

    /// For a push before a pass: that it runs and since when, nothing that would
    /// replace the last finished pass's numbers.
    pub fn render_pass_start_for_push(&self) -> String {
        render::render_pass_start(&self.state(), Some("sync"))
    }
}

/// Adds what a pass or an event-driven sync did to the images and requests: what its
/// report says, or what was counted live if that is more.
fn settle_work(state: &mut State, sync: &str, report: &Report) {
    let counters = state.syncs.entry(sync.to_owned()).or_default();
    let live = std::mem::take(&mut counters.live);
    counters.finished.settle(ImageCounters::of(report), live);
    let mut live_urls = std::mem::take(&mut counters.live_urls);
    for sync_report in &report.syncs {
        let (from, to) = (&sync_report.from, &sync_report.to);
        let mut pass: BTreeMap<(String, String), UrlCounters> = BTreeMap::new();
        for usage in &sync_report.urls {
            let key = (registry_of(&usage.role, from, to).to_owned(), usage.url.clone());
            let sum = pass.entry(key).or_default();
            *sum = sum.plus(UrlCounters::of(usage));
        }
        let keys: BTreeSet<(String, String)> = pass.keys().chain(live_urls.keys()).cloned().collect();
        for key in keys {
            let pass = pass.get(&key).copied().unwrap_or_default();
            let live = live_urls.remove(&key).unwrap_or_default();
            state.urls.entry(key).or_default().settle(pass, live);
        }
        for rate_limit in &sync_report.rate_limits {
            let registry = registry_of(&rate_limit.role, from, to).to_owned();
            let key = (sync_report.name.clone(), registry, rate_limit.url.clone());
            state.rate_limits.insert(key, rate_limit.clone());
        }
    }
}
