//! The metric families ocisync exports, named as Prometheus asks: `ocisync_` first,
//! the unit last (`_seconds`, `_bytes`), `_total` after it on counters.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use super::exposition::Exposition;
use ocisync_engine::FailureKind;

use super::{State, UrlCounters};

/// Every family, in a fixed order; `omitted_label` is left out of every sample.
pub(super) fn render(state: &State, omitted_label: Option<&'static str>) -> String {
    let mut out = Exposition::new(omitted_label);
    build_info(&mut out);
    sync_families(state, &mut out);
    running_families(state, &mut out);
    url_families(state, &mut out);
    rate_limit_families(state, &mut out);
    super::events::event_families(&state.events, &mut out);
    out.finish()
}

/// Only what says a pass has started: pushed before a pass, it leaves the last
/// finished pass's numbers in place.
pub(super) fn render_pass_start(state: &State, omitted_label: Option<&'static str>) -> String {
    let mut out = Exposition::new(omitted_label);
    build_info(&mut out);
    running_families(state, &mut out);
    out.finish()
}

fn build_info(out: &mut Exposition) {
    out.family(
        "ocisync_build_info",
        "gauge",
        "Always 1; the version of ocisync that exports these metrics.",
    );
    out.sample(&[("version", env!("CARGO_PKG_VERSION"))], 1);
}

fn sync_families(state: &State, out: &mut Exposition) {
    let syncs = &state.syncs;
    out.family(
        "ocisync_passes_total",
        "counter",
        "Passes finished, by sync and outcome (success: nothing failed).",
    );
    for (name, sync) in syncs {
        out.sample(&[("sync", name), ("outcome", "success")], sync.passes_succeeded);
        out.sample(&[("sync", name), ("outcome", "failure")], sync.passes_failed);
    }
    out.family(
        "ocisync_images_total",
        "counter",
        "Images (tags) handled, by sync and outcome: copied, skipped (up to date or filtered) or failed; counted as each image ends.",
    );
    for (name, sync) in syncs {
        let images = sync.finished.plus(sync.live);
        out.sample(&[("sync", name), ("outcome", "copied")], images.copied);
        out.sample(&[("sync", name), ("outcome", "skipped")], images.skipped);
        out.sample(&[("sync", name), ("outcome", "failed")], images.failed);
    }
    out.family(
        "ocisync_image_failures_total",
        "counter",
        "Images (tags) failed, by sync and kind: source, destination, integrity (content not what its digest says), manifest (cannot be copied as it is) or referrers; counted as each image ends.",
    );
    for (name, sync) in syncs {
        let failed = sync.finished.plus(sync.live).failed_by_kind;
        for kind in FailureKind::ALL {
            out.sample(&[("sync", name), ("kind", kind.as_str())], failed.of(kind));
        }
    }
    out.family(
        "ocisync_repositories_failed_total",
        "counter",
        "Repositories whose tags could not be listed.",
    );
    for (name, sync) in syncs {
        out.sample(&[("sync", name)], sync.finished.plus(sync.live).repositories_failed);
    }
    out.family(
        "ocisync_copied_bytes_total",
        "counter",
        "Blob bytes transferred, counted as each image ends.",
    );
    for (name, sync) in syncs {
        out.sample(&[("sync", name)], sync.finished.plus(sync.live).bytes);
    }
    out.family(
        "ocisync_pass_duration_seconds",
        "summary",
        "How long finished passes took.",
    );
    for (name, sync) in syncs {
        out.named_sample(
            "ocisync_pass_duration_seconds_sum",
            &[("sync", name)],
            sync.duration_sum,
        );
        out.named_sample(
            "ocisync_pass_duration_seconds_count",
            &[("sync", name)],
            sync.passes_succeeded + sync.passes_failed,
        );
    }
    out.family(
        "ocisync_last_pass_duration_seconds",
        "gauge",
        "How long the last finished pass took.",
    );
    for (name, sync) in syncs {
        if let Some(seconds) = sync.last_duration {
            out.sample(&[("sync", name)], seconds);
        }
    }
    out.family(
        "ocisync_last_pass_success",
        "gauge",
        "1 when the last finished pass had no failures, 0 when something failed.",
    );
    for (name, sync) in syncs {
        if let Some(succeeded) = sync.last_pass_succeeded {
            out.sample(&[("sync", name)], u8::from(succeeded));
        }
    }
    out.family(
        "ocisync_last_success_timestamp_seconds",
        "gauge",
        "When the last pass without failures ended (Unix time).",
    );
    for (name, sync) in syncs {
        if let Some(seconds) = sync.last_success.and_then(unix_seconds) {
            out.sample(&[("sync", name)], seconds);
        }
    }
}

/// Whether a pass runs, since when, and the settings alerts compare with.
fn running_families(state: &State, out: &mut Exposition) {
    let syncs = &state.syncs;
    out.family(
        "ocisync_pass_running",
        "gauge",
        "1 while a pass of the sync is under way.",
    );
    for (name, sync) in syncs {
        out.sample(&[("sync", name)], u8::from(sync.running_since.is_some()));
    }
    out.family(
        "ocisync_pass_start_timestamp_seconds",
        "gauge",
        "When the pass under way started (Unix time); absent while none runs.",
    );
    for (name, sync) in syncs {
        if let Some(seconds) = sync.running_since.and_then(|since| unix_seconds(since.time)) {
            out.sample(&[("sync", name)], seconds);
        }
    }
    out.family(
        "ocisync_pass_running_seconds",
        "gauge",
        "How long the pass under way has been running (0 when none is).",
    );
    for (name, sync) in syncs {
        let running = sync
            .running_since
            .map_or(0.0, |since| since.instant.elapsed().as_secs_f64());
        out.sample(&[("sync", name)], running);
    }
    out.family(
        "ocisync_max_pass_duration_seconds",
        "gauge",
        "The sync's max_pass_duration: a pass running longer makes /readyz fail.",
    );
    for (name, sync) in syncs {
        if let Some(limit) = sync.max_pass_duration {
            out.sample(&[("sync", name)], limit.as_secs_f64());
        }
    }
    out.family(
        "ocisync_schedule_interval_seconds",
        "gauge",
        "The longest time between two passes the sync's schedule or interval allows.",
    );
    for (name, sync) in syncs {
        if let Some(interval) = sync.schedule_interval {
            out.sample(&[("sync", name)], interval.as_secs_f64());
        }
    }
}

fn url_families(state: &State, out: &mut Exposition) {
    // Settled passes plus every pass under way.
    let mut urls: BTreeMap<(String, String), UrlCounters> = state.urls.clone();
    for sync in state.syncs.values() {
        for (key, live) in &sync.live_urls {
            let sum = urls.entry(key.clone()).or_default();
            *sum = sum.plus(*live);
        }
    }
    type Field = fn(&UrlCounters) -> u64;
    let families: [(&'static str, &'static str, Field); 3] = [
        (
            "ocisync_registry_requests_total",
            "HTTP requests sent, by registry and URL (retries included).",
            |counters| counters.requests,
        ),
        (
            "ocisync_registry_retries_total",
            "Requests repeated after a transient failure, by registry and URL.",
            |counters| counters.retries,
        ),
        (
            "ocisync_registry_failovers_total",
            "Calls moved from a registry's URL to the next one, by registry and the URL failed over from.",
            |counters| counters.failovers,
        ),
    ];
    for (name, help, field) in families {
        out.family(name, "counter", help);
        for ((registry, url), counters) in &urls {
            out.sample(&[("registry", registry), ("url", url)], field(counters));
        }
    }
}

fn rate_limit_families(state: &State, out: &mut Exposition) {
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
}

fn unix_seconds(time: SystemTime) -> Option<f64> {
    time.duration_since(UNIX_EPOCH).ok().map(|since| since.as_secs_f64())
}
