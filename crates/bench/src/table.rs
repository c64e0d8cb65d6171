//! Results of the runs, the medians, the ratios against the targets of issue 7, and the
//! markdown table the bench prints.

use std::fmt::Write as _;
use std::time::Duration;

/// One pass of one contender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PassResult {
    /// Wall time of the pass.
    pub wall: Duration,
    /// Peak RSS of the tool's process in KiB (0: not measured).
    pub peak_rss_kib: u64,
    /// Requests the source registry received.
    pub source_requests: usize,
    /// Requests the destination registry received.
    pub destination_requests: usize,
    /// Of those, writes (POST, PUT, PATCH, DELETE).
    pub destination_writes: usize,
    /// Whether the tool exited 0.
    pub succeeded: bool,
}

impl PassResult {
    /// A pass as the tool's process and the proxies in front of both registries saw it.
    pub fn of(
        timed: &super::process::Timed,
        source: &ocisync_testkit::CountingProxy,
        destination: &ocisync_testkit::CountingProxy,
    ) -> PassResult {
        PassResult {
            wall: timed.wall,
            peak_rss_kib: timed.peak_rss_kib,
            source_requests: source.requests().len(),
            destination_requests: destination.requests().len(),
            destination_writes: destination.writes().len(),
            succeeded: timed.succeeded(),
        }
    }
}

/// Every run of one contender: a cold pass into a fresh destination, then a no-op pass.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContenderRuns {
    /// Name for the table.
    pub name: String,
    /// Cold passes, one per run.
    pub cold: Vec<PassResult>,
    /// No-op passes, one per run (empty for the limit, which has none).
    pub noop: Vec<PassResult>,
    /// Per run: `Ok` when every tag in the destination has its source digest and its
    /// whole closure, else what was wrong.
    pub verified: Vec<Result<(), String>>,
}

/// The median (the lower middle for an even count); `None` for no values.
pub fn median<T: Ord + Copy>(values: impl IntoIterator<Item = T>) -> Option<T> {
    let mut values: Vec<T> = values.into_iter().collect();
    values.sort();
    values.get(values.len().saturating_sub(1) / 2).copied()
}

/// Medians of a list of passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Medians {
    /// Median wall time.
    pub wall: Duration,
    /// Highest peak RSS of any pass (a peak, not a median).
    pub peak_rss_kib: u64,
    /// Median requests to the source.
    pub source_requests: usize,
    /// Median requests to the destination.
    pub destination_requests: usize,
    /// Highest number of destination writes in any pass.
    pub destination_writes: usize,
}

impl Medians {
    /// Medians of `passes`; `None` when there are none.
    pub fn of(passes: &[PassResult]) -> Option<Medians> {
        Some(Medians {
            wall: median(passes.iter().map(|p| p.wall))?,
            peak_rss_kib: passes.iter().map(|p| p.peak_rss_kib).max()?,
            source_requests: median(passes.iter().map(|p| p.source_requests))?,
            destination_requests: median(passes.iter().map(|p| p.destination_requests))?,
            destination_writes: passes.iter().map(|p| p.destination_writes).max()?,
        })
    }

    /// Requests to both registries.
    pub fn requests(&self) -> usize {
        self.source_requests + self.destination_requests
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

fn runs(passes: &[PassResult]) -> String {
    passes
        .iter()
        .map(|p| {
            let failed = if p.succeeded { "" } else { " (failed)" };
            format!("{:.2}{failed}", p.wall.as_secs_f64())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn mib(kib: u64) -> String {
    if kib == 0 {
        "n/a".to_owned()
    } else {
        format!("{:.1} MiB", kib as f64 / 1024.0)
    }
}

/// The results table, in markdown.
pub fn render(contenders: &[ContenderRuns]) -> String {
    let mut out = String::from(
        "| contender | cold (median) | cold runs (s) | no-op (median) | no-op runs (s) | peak RSS | \
         requests cold src / dst | requests no-op src / dst | no-op dst writes | verified |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for contender in contenders {
        let cold = Medians::of(&contender.cold).unwrap_or_default();
        let noop = Medians::of(&contender.noop);
        let verified = contender.verified.iter().filter(|v| v.is_ok()).count();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} / {} | {} | {} | {verified}/{} |",
            contender.name,
            seconds(cold.wall),
            runs(&contender.cold),
            noop.map_or("n/a".to_owned(), |n| seconds(n.wall)),
            if contender.noop.is_empty() {
                "n/a".to_owned()
            } else {
                runs(&contender.noop)
            },
            mib(cold.peak_rss_kib.max(noop.map_or(0, |n| n.peak_rss_kib))),
            cold.source_requests,
            cold.destination_requests,
            noop.map_or("n/a".to_owned(), |n| format!(
                "{} / {}",
                n.source_requests, n.destination_requests
            )),
            noop.map_or("n/a".to_owned(), |n| n.destination_writes.to_string()),
            contender.verified.len(),
        );
    }
    out
}

/// One target of issue 7 and whether it was met.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// What is compared, e.g. "cold: ocisync / skopeo".
    pub what: &'static str,
    /// The measured value, formatted.
    pub measured: String,
    /// The goal, formatted.
    pub goal: &'static str,
    /// Whether the goal is met.
    pub met: bool,
}

/// Compares ocisync with skopeo, the limit and the complete-copy client against the
/// targets of issue 7.
pub fn targets(
    ocisync: &ContenderRuns,
    skopeo: &ContenderRuns,
    limit: &ContenderRuns,
    complete: &ContenderRuns,
) -> Vec<Target> {
    let (Some(o_cold), Some(s_cold), Some(l_cold), Some(c_cold)) = (
        Medians::of(&ocisync.cold),
        Medians::of(&skopeo.cold),
        Medians::of(&limit.cold),
        Medians::of(&complete.cold),
    ) else {
        return Vec::new();
    };
    let (Some(o_noop), Some(s_noop)) = (Medians::of(&ocisync.noop), Medians::of(&skopeo.noop)) else {
        return Vec::new();
    };
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    let cold_vs_skopeo = ratio(o_cold.wall, s_cold.wall);
    let cold_vs_limit = ratio(o_cold.wall, l_cold.wall);
    let cold_vs_complete = ratio(o_cold.wall, c_cold.wall);
    let requests = o_cold.requests() as f64 / s_cold.requests().max(1) as f64;
    let noop_speedup = ratio(s_noop.wall, o_noop.wall);
    let rss_mib = o_cold.peak_rss_kib.max(o_noop.peak_rss_kib) as f64 / 1024.0;
    vec![
        Target {
            what: "cold wall: ocisync / skopeo",
            measured: format!("{cold_vs_skopeo:.3} ({:.1}× faster)", 1.0 / cold_vs_skopeo),
            goal: "≤ 0.333 (≥ 3× faster)",
            met: cold_vs_skopeo <= 1.0 / 3.0,
        },
        Target {
            what: "cold wall: ocisync / plain limit",
            measured: format!("{cold_vs_limit:.2}"),
            goal: "≤ 1.00",
            met: cold_vs_limit <= 1.0,
        },
        Target {
            what: "cold wall: ocisync / complete-copy client (the issue's 7.6 s reference)",
            measured: format!("{cold_vs_complete:.2}"),
            goal: "≤ 1.00",
            met: cold_vs_complete <= 1.0,
        },
        Target {
            what: "cold requests (src + dst): ocisync / skopeo",
            measured: format!("{requests:.3} ({} vs {})", o_cold.requests(), s_cold.requests()),
            goal: "< 0.5",
            met: requests < 0.5,
        },
        Target {
            what: "no-op wall: skopeo / ocisync",
            measured: format!("{noop_speedup:.1}×"),
            goal: "≥ 10×",
            met: noop_speedup >= 10.0,
        },
        Target {
            what: "no-op destination writes (ocisync)",
            measured: o_noop.destination_writes.to_string(),
            goal: "0",
            met: o_noop.destination_writes == 0,
        },
        Target {
            what: "peak RSS (ocisync, all passes)",
            measured: format!("{rss_mib:.1} MiB"),
            goal: "< 40 MiB",
            met: rss_mib < 40.0,
        },
    ]
}

/// The targets as a markdown table.
pub fn render_targets(targets: &[Target]) -> String {
    let mut out = String::from("| target | measured | goal | met |\n|---|---|---|---|\n");
    for target in targets {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            target.what,
            target.measured,
            target.goal,
            if target.met { "yes" } else { "**no**" }
        );
    }
    out
}
