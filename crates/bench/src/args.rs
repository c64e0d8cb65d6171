//! The command line of `ocisync-bench`, parsed into [`Args`]. A flag given twice keeps
//! its last value, so `BENCH_ARGS` can override what a `make` target sets.

use std::path::PathBuf;
use std::time::Duration;

use super::corpus::CorpusShape;
use super::link::SourceLink;

/// What `ocisync-bench` prints on a usage error.
pub const USAGE: &str = "usage: ocisync-bench PATH/TO/ocisync [--runs N] [--skopeo PATH] [--concurrency R,B] \
                         [--repositories N] [--large-layer-mib N] [--source-link-mib N] [--source-rtt-ms N] \
                         [--ocisync-only] [--variant LINE]... | --scale [--scale-tags N] [--scale-checkpoints N1,N2,...] [--variant LINE]... \
                         | --lag [--lag-pushes N] [--lag-baseline-pushes N] [--lag-interval-secs N] \
                         | --transfers [--large-layer-mib N] [--bandwidth-mib N] [--cut-mib N]";

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// The `ocisync` binary under test.
    pub ocisync: PathBuf,
    /// The `skopeo` binary (`--skopeo`).
    pub skopeo: PathBuf,
    /// Runs per contender (`--runs`, 3 by default).
    pub runs: usize,
    /// ocisync's `defaults.concurrency` as (repositories, blobs) (`--concurrency R,B`).
    pub concurrency: Option<(usize, usize)>,
    /// Config lines of more ocisync contenders (`--variant`, repeatable).
    pub variants: Vec<String>,
    /// Application repositories in the corpus (`--repositories`).
    pub repositories: usize,
    /// Size of the corpus's one large layer in MiB (`--large-layer-mib`).
    pub large_layer_mib: usize,
    /// Every blob download from the source at most this many MiB/s (`--source-link-mib`).
    pub source_link_mib: Option<usize>,
    /// The source this many milliseconds away, round trip (`--source-rtt-ms`).
    pub source_rtt_ms: Option<usize>,
    /// The scale mode (`--scale`) instead of the standard benchmark.
    pub scale: bool,
    /// ocisync alone, no skopeo and no reference clients (`--ocisync-only`).
    pub ocisync_only: bool,
    /// Tags per repository in the scale mode (`--scale-tags`).
    pub scale_tags: usize,
    /// Repository counts measured in the scale mode (`--scale-checkpoints`), ascending.
    pub scale_checkpoints: Vec<usize>,
    /// The mirror-lag mode (`--lag`): pushes upstream, with and without notifications.
    pub lag: bool,
    /// Pushes measured with notifications (`--lag-pushes`).
    pub lag_pushes: usize,
    /// Pushes measured with the schedule alone (`--lag-baseline-pushes`).
    pub lag_baseline_pushes: usize,
    /// The schedule's interval of the baseline, in seconds (`--lag-interval-secs`).
    pub lag_interval_secs: usize,
    /// The transfers mode (`--transfers`): bandwidth cap, resumed downloads, chunked uploads.
    pub transfers: bool,
    /// The cap of its bandwidth case, MiB/s (`--bandwidth-mib`).
    pub bandwidth_mib: usize,
    /// Where its resume case cuts each answer, MiB (`--cut-mib`).
    pub cut_mib: usize,
}

impl Args {
    /// The source link the flags ask for.
    pub fn source_link(&self) -> SourceLink {
        SourceLink {
            bytes_per_second: self.source_link_mib.map(|mib| (mib as u64) << 20),
            round_trip: self.source_rtt_ms.map(|ms| Duration::from_millis(ms as u64)),
        }
    }
}

/// Parses the arguments after the program name; the error says what is wrong.
pub fn parse(raw: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut raw = raw.into_iter();
    let ocisync = PathBuf::from(raw.next().ok_or("missing PATH/TO/ocisync")?);
    let mut args = Args {
        ocisync,
        skopeo: PathBuf::from("/usr/bin/skopeo"),
        runs: 3,
        concurrency: None,
        variants: Vec::new(),
        repositories: CorpusShape::standard().repositories,
        large_layer_mib: CorpusShape::standard().large_layer_size >> 20,
        source_link_mib: None,
        source_rtt_ms: None,
        scale: false,
        ocisync_only: false,
        scale_tags: 10,
        scale_checkpoints: vec![1000, 5000],
        lag: false,
        lag_pushes: 50,
        lag_baseline_pushes: 20,
        lag_interval_secs: 10,
        transfers: false,
        bandwidth_mib: 50,
        cut_mib: 50,
    };
    let number = |value: Option<String>, flag: &str| -> Result<usize, String> {
        value
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{flag} needs a positive number"))
    };
    let numbers = |value: Option<String>, flag: &str| -> Result<Vec<usize>, String> {
        let text = value.ok_or_else(|| format!("{flag} needs a value"))?;
        text.split(',')
            .map(|n| n.trim().parse().ok().filter(|&n: &usize| n > 0))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| format!("{flag}: {text:?} is not a list of positive numbers"))
    };
    while let Some(flag) = raw.next() {
        match flag.as_str() {
            "--runs" => args.runs = number(raw.next(), "--runs")?,
            "--skopeo" => args.skopeo = PathBuf::from(raw.next().ok_or("--skopeo needs a path")?),
            "--repositories" => args.repositories = number(raw.next(), "--repositories")?,
            "--large-layer-mib" => args.large_layer_mib = number(raw.next(), "--large-layer-mib")?,
            "--source-link-mib" => args.source_link_mib = Some(number(raw.next(), "--source-link-mib")?),
            "--source-rtt-ms" => args.source_rtt_ms = Some(number(raw.next(), "--source-rtt-ms")?),
            "--concurrency" => match numbers(raw.next(), "--concurrency")?.as_slice() {
                [repositories, blobs] => args.concurrency = Some((*repositories, *blobs)),
                _ => return Err("--concurrency takes REPOSITORIES,BLOBS".into()),
            },
            "--variant" => args.variants.push(
                raw.next()
                    .ok_or("--variant needs a config line (`defaults: {...}` or `content: [...]`)")?,
            ),
            "--scale" => args.scale = true,
            "--lag" => args.lag = true,
            "--lag-pushes" => args.lag_pushes = number(raw.next(), "--lag-pushes")?,
            "--lag-baseline-pushes" => args.lag_baseline_pushes = number(raw.next(), "--lag-baseline-pushes")?,
            "--lag-interval-secs" => args.lag_interval_secs = number(raw.next(), "--lag-interval-secs")?,
            "--ocisync-only" => args.ocisync_only = true,
            "--transfers" => args.transfers = true,
            "--bandwidth-mib" => args.bandwidth_mib = number(raw.next(), "--bandwidth-mib")?,
            "--cut-mib" => args.cut_mib = number(raw.next(), "--cut-mib")?,
            "--scale-tags" => args.scale_tags = number(raw.next(), "--scale-tags")?,
            "--scale-checkpoints" => {
                let mut checkpoints = numbers(raw.next(), "--scale-checkpoints")?;
                checkpoints.sort_unstable();
                checkpoints.dedup();
                args.scale_checkpoints = checkpoints;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.concurrency.is_some() && !args.variants.is_empty() {
        // A variant would differ from the main contender in two settings at once.
        return Err("--variant cannot be combined with --concurrency (put the concurrency in a variant)".into());
    }
    if args.scale && (args.source_link_mib.is_some() || args.source_rtt_ms.is_some()) {
        // The scale mode reads the source over loopback only.
        return Err("--source-link-mib and --source-rtt-ms apply to the standard benchmark, not to --scale".into());
    }
    Ok(args)
}
