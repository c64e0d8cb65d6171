//! What registry notifications did: requests answered, events by kind and outcome,
//! the queue of repositories waiting, and the mirror lag of event-driven copies.

use std::collections::BTreeMap;

use super::exposition::Exposition;

/// Upper bounds of the mirror lag histogram, in seconds: from "within the second" to
/// "the schedule caught it", since a missed event waits for the next pass.
pub(super) const LAG_BUCKETS: [f64; 12] = [0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0];

/// What an event led to: new work, work already waiting, nothing, or a full queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventOutcome {
    Queued,
    Coalesced,
    Ignored,
    Rejected,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Queued => "queued",
            EventOutcome::Coalesced => "coalesced",
            EventOutcome::Ignored => "ignored",
            EventOutcome::Rejected => "rejected",
        }
    }
}

#[derive(Default)]
pub(super) struct EventCounters {
    /// `Some` once `run` accepts notifications: the gauge shows 0 then, not nothing.
    pub queue_depth: Option<usize>,
    /// By (registry, HTTP status).
    pub requests: BTreeMap<(String, u16), u64>,
    /// By (registry, kind, outcome).
    pub events: BTreeMap<(String, &'static str, EventOutcome), u64>,
    /// By sync.
    pub lag: BTreeMap<String, Histogram>,
}

/// A Prometheus histogram over [`LAG_BUCKETS`].
#[derive(Default, Clone)]
pub(super) struct Histogram {
    /// Observations at or below each bucket's bound (not cumulative here).
    buckets: [u64; LAG_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, value: f64) {
        if let Some(index) = LAG_BUCKETS.iter().position(|bound| value <= *bound) {
            self.buckets[index] += 1;
        }
        self.count += 1;
        self.sum += value;
    }
}

pub(super) fn event_families(events: &EventCounters, out: &mut Exposition) {
    out.family(
        "ocisync_notifications_total",
        "counter",
        "Notification requests answered, by registry and HTTP status (202 accepted, 400 malformed, 401 bad token, 413 too large, 503 queue full).",
    );
    for ((registry, status), count) in &events.requests {
        out.sample(&[("registry", registry), ("code", &status.to_string())], count);
    }
    out.family(
        "ocisync_events_total",
        "counter",
        "Registry events received, by registry, kind (push, delete, pull, other) and outcome (queued, coalesced into waiting work, ignored, rejected by a full queue).",
    );
    for ((registry, kind, outcome), count) in &events.events {
        out.sample(
            &[("registry", registry), ("kind", kind), ("outcome", outcome.as_str())],
            count,
        );
    }
    out.family(
        "ocisync_event_queue_repositories",
        "gauge",
        "Repositories waiting for an event-driven sync.",
    );
    if let Some(depth) = events.queue_depth {
        out.sample(&[], depth);
    }
    out.family(
        "ocisync_mirror_lag_seconds",
        "histogram",
        "From a push event's timestamp to its tag being at the destination, by sync.",
    );
    for (sync, histogram) in &events.lag {
        let mut cumulative = 0;
        for (bound, count) in LAG_BUCKETS.iter().zip(histogram.buckets) {
            cumulative += count;
            out.named_sample(
                "ocisync_mirror_lag_seconds_bucket",
                &[("sync", sync), ("le", &bound.to_string())],
                cumulative,
            );
        }
        out.named_sample(
            "ocisync_mirror_lag_seconds_bucket",
            &[("sync", sync), ("le", "+Inf")],
            histogram.count,
        );
        out.named_sample("ocisync_mirror_lag_seconds_sum", &[("sync", sync)], histogram.sum);
        out.named_sample("ocisync_mirror_lag_seconds_count", &[("sync", sync)], histogram.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative_and_ends_with_inf() {
        let mut counters = EventCounters::default();
        let histogram = counters.lag.entry("hub".into()).or_default();
        for value in [0.1, 0.3, 4000.0] {
            histogram.observe(value);
        }
        let mut out = Exposition::new(None);
        event_families(&counters, &mut out);
        let text = out.finish();
        assert!(
            text.contains("ocisync_mirror_lag_seconds_bucket{sync=\"hub\",le=\"0.25\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("ocisync_mirror_lag_seconds_bucket{sync=\"hub\",le=\"0.5\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("ocisync_mirror_lag_seconds_bucket{sync=\"hub\",le=\"3600\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("ocisync_mirror_lag_seconds_bucket{sync=\"hub\",le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("ocisync_mirror_lag_seconds_count{sync=\"hub\"} 3\n"),
            "{text}"
        );
        assert!(
            !text.contains("ocisync_event_queue_repositories"),
            "no queue before run accepts events"
        );
    }
}
