//! The source's link ([`SourceLink`]: a round trip and a rate, as the counting proxy in
//! front of the source makes them), the link floor it sets, and each contender's ratio to
//! that floor (`make bench-wan`).

use std::fmt::Write as _;
use std::time::Duration;

use ocisync_testkit::proxy::LinkUsage;
use ocisync_testkit::{CountingProxy, TestRegistry};

use super::corpus::CorpusStats;
use super::table::{ContenderRuns, Medians};

const MIB: f64 = 1024.0 * 1024.0;

/// How far and how slow the source is. The default is loopback: no delay, no cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceLink {
    /// The source's one link toward ocisync: all its responses together at most this many
    /// bytes per second (`CountingProxy::set_link_rate`); `None`: loopback speed.
    pub bytes_per_second: Option<u64>,
    /// Every byte of every connection to the source delivered half of this later in each
    /// direction (`CountingProxy::set_round_trip`); `None`: no delay.
    pub round_trip: Option<Duration>,
}

impl SourceLink {
    /// A counting proxy in front of `source` that gives it this link.
    pub fn proxy(&self, source: &TestRegistry) -> CountingProxy {
        let proxy = CountingProxy::start(&source.url());
        proxy.set_link_rate(self.bytes_per_second);
        if let Some(round_trip) = self.round_trip {
            proxy.set_round_trip(round_trip);
        }
        proxy
    }

    /// The link in words, for the report; `None` for loopback.
    pub fn describe(&self) -> Option<String> {
        let rate = self.bytes_per_second.map(|rate| {
            format!(
                "one link of {} MiB/s shared by every connection (`--source-link-mib`)",
                mib(rate)
            )
        });
        let delay = self.round_trip.map(|rtt| {
            format!(
                "every byte to and from the source {} ms later each way (a {} ms round trip, `--source-rtt-ms`)",
                rtt.as_millis() / 2,
                rtt.as_millis()
            )
        });
        let parts: Vec<String> = [delay, rate].into_iter().flatten().collect();
        (!parts.is_empty()).then(|| format!("Source link: {}.", parts.join("; ")))
    }
}

/// Where a pass of `wall` left the link idle, in one line: before its first byte, in
/// gaps between (summed per second of the pass where they add up to 20 ms or more),
/// and after its last.
pub fn describe_usage(usage: &LinkUsage, wall: Duration) -> String {
    let (Some(first), Some(until)) = (usage.first_byte, usage.busy_until) else {
        return "link unused".to_owned();
    };
    let mut per_second: Vec<f64> = Vec::new();
    for gap in &usage.gaps {
        let second = gap.at.as_secs() as usize;
        if per_second.len() <= second {
            per_second.resize(second + 1, 0.0);
        }
        per_second[second] += gap.length.as_secs_f64();
    }
    let seconds: Vec<String> = per_second
        .iter()
        .enumerate()
        .filter(|(_, idle)| **idle >= 0.02)
        .map(|(second, idle)| format!("{second}: {idle:.2}"))
        .collect();
    format!(
        "link idle {:.2} s before the first byte, {:.2} s between (by second of the pass: {}), \
         {:.2} s after the last (busy until {:.2} s of {:.2} s)",
        first.as_secs_f64(),
        usage.idle.as_secs_f64(),
        if seconds.is_empty() {
            "none over 20 ms".to_owned()
        } else {
            seconds.join(", ")
        },
        wall.saturating_sub(until).as_secs_f64(),
        until.as_secs_f64(),
        wall.as_secs_f64(),
    )
}

/// The link floor: every unique byte over a link of `bytes_per_second` once, nothing
/// else (no round trips, no requests, the link shared by every download). Also the time
/// of one blob of `unique_bytes` at that rate.
pub fn link_floor(unique_bytes: u64, bytes_per_second: u64) -> Duration {
    Duration::from_secs_f64(unique_bytes as f64 / bytes_per_second.max(1) as f64)
}

/// `wall` over `floor` (1.00: at the floor).
pub fn ratio_to_floor(wall: Duration, floor: Duration) -> f64 {
    wall.as_secs_f64() / floor.as_secs_f64().max(1e-9)
}

/// How many times faster `faster` was than `slower`.
pub fn speedup(slower: Duration, faster: Duration) -> f64 {
    slower.as_secs_f64() / faster.as_secs_f64().max(1e-9)
}

/// The link-floor section, in markdown: the floor, the largest blob's own time, then
/// every contender's cold median and its ratio to the floor, and its no-op median.
pub fn render_floor(contenders: &[ContenderRuns], corpus: &CorpusStats, bytes_per_second: u64) -> String {
    let floor = link_floor(corpus.unique_blob_bytes, bytes_per_second);
    let largest = link_floor(corpus.largest_blob_bytes, bytes_per_second);
    let mut out = format!(
        "Link floor: {:.2} s ({:.1} MiB of unique blobs ÷ {rate} MiB/s). The link is one, shared by \
         every connection, so no pass ends under it; the largest blob alone takes {:.2} s \
         ({:.1} MiB ÷ {rate} MiB/s).\n\n\
         | contender | cold (median) | cold ÷ floor | no-op (median) |\n|---|---|---|---|\n",
        floor.as_secs_f64(),
        corpus.unique_blob_bytes as f64 / MIB,
        largest.as_secs_f64(),
        corpus.largest_blob_bytes as f64 / MIB,
        rate = mib(bytes_per_second),
    );
    for contender in contenders {
        let Some(cold) = Medians::of(&contender.cold) else {
            continue;
        };
        let noop = Medians::of(&contender.noop).map_or("n/a".to_owned(), |n| format!("{:.2} s", n.wall.as_secs_f64()));
        let _ = writeln!(
            out,
            "| {} | {:.2} s | {:.2} | {noop} |",
            contender.name,
            cold.wall.as_secs_f64(),
            ratio_to_floor(cold.wall, floor),
        );
    }
    out
}

/// ocisync's medians against skopeo's, cold and no-op, in one line; `None` without both
/// passes of both.
pub fn render_against_skopeo(ocisync: &ContenderRuns, skopeo: &ContenderRuns) -> Option<String> {
    let (o_cold, s_cold) = (Medians::of(&ocisync.cold)?, Medians::of(&skopeo.cold)?);
    let (o_noop, s_noop) = (Medians::of(&ocisync.noop)?, Medians::of(&skopeo.noop)?);
    Some(format!(
        "{} against {}: cold {:.1}× faster, no-op {:.1}× faster ({} destination writes in its no-op).",
        ocisync.name,
        skopeo.name,
        speedup(s_cold.wall, o_cold.wall),
        speedup(s_noop.wall, o_noop.wall),
        o_noop.destination_writes,
    ))
}

/// Bytes per second in MiB/s, without trailing zeros (`50`, `0.5`).
fn mib(bytes_per_second: u64) -> String {
    let value = bytes_per_second as f64 / MIB;
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}
