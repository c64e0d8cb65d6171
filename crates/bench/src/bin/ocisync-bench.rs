//! `make bench` / `make bench-scale`: ocisync against skopeo sync, the plain limit and the
//! complete-copy client on loopback registries (see `docs/benchmarks.md`).
//!
//! Usage:
//!   ocisync-bench PATH/TO/ocisync [--runs N] [--skopeo PATH] [--concurrency R,B] [--repositories N]
//!                 [--large-layer-mib N] [--source-link-mib N] [--ocisync-only] [--variant LINE]...
//!   ocisync-bench PATH/TO/ocisync --scale [--scale-tags N] [--scale-checkpoints N1,N2,...] [--variant LINE]...
//!   ocisync-bench PATH/TO/ocisync --lag [--lag-pushes N] [--lag-baseline-pushes N] [--lag-interval-secs N]
//!
//! Prints progress to stderr and markdown tables to stdout.

use std::path::PathBuf;
use std::process::ExitCode;

use ocisync_bench::contender::concurrency_defaults;
use ocisync_bench::corpus::CorpusShape;
use ocisync_bench::process::GNU_TIME;
use ocisync_bench::{lag, scale, standard, table};

const USAGE: &str = "usage: ocisync-bench PATH/TO/ocisync [--runs N] [--skopeo PATH] [--concurrency R,B] \
                     [--repositories N] [--large-layer-mib N] [--source-link-mib N] [--ocisync-only] [--variant LINE]... | --scale [--scale-tags N] [--scale-checkpoints N1,N2,...] [--variant LINE]... \
                     | --lag [--lag-pushes N] [--lag-baseline-pushes N] [--lag-interval-secs N]";

struct Args {
    ocisync: PathBuf,
    skopeo: PathBuf,
    runs: usize,
    concurrency: Option<(usize, usize)>,
    variants: Vec<String>,
    repositories: usize,
    large_layer_mib: usize,
    source_link_mib: Option<usize>,
    scale: bool,
    ocisync_only: bool,
    scale_tags: usize,
    scale_checkpoints: Vec<usize>,
    lag: bool,
    lag_pushes: usize,
    lag_baseline_pushes: usize,
    lag_interval_secs: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut raw = std::env::args().skip(1);
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
        scale: false,
        ocisync_only: false,
        scale_tags: 10,
        scale_checkpoints: vec![1000, 5000],
        lag: false,
        lag_pushes: 50,
        lag_baseline_pushes: 20,
        lag_interval_secs: 10,
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
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(problem) => {
            eprintln!("ocisync-bench: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    for (tool, path) in [("ocisync", &args.ocisync), ("GNU time", &PathBuf::from(GNU_TIME))] {
        if !path.exists() {
            eprintln!("ocisync-bench: {tool} not found at {}", path.display());
            return ExitCode::from(2);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!("{}", machine());
    if args.lag {
        let options = lag::LagOptions {
            ocisync: args.ocisync,
            pushes: args.lag_pushes,
            baseline_pushes: args.lag_baseline_pushes,
            interval: std::time::Duration::from_secs(args.lag_interval_secs as u64),
        };
        let result = lag::run(&runtime, &options);
        println!("\n## Mirror lag: push to tag at the mirror\n");
        println!("{}", lag::render(&result));
        return ExitCode::SUCCESS;
    }
    if args.scale {
        let options = scale::ScaleOptions {
            ocisync: args.ocisync,
            tags: args.scale_tags,
            checkpoints: args.scale_checkpoints,
            variants: args.variants,
        };
        let points = scale::run(&runtime, &options);
        println!("\n## Scale: ocisync no-op pass, {} tags per repository\n", options.tags);
        println!("{}", scale::render(&points));
        let failed = points
            .iter()
            .any(|p| !p.noop.succeeded || p.noop.destination_writes > 0);
        return if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS };
    }

    if !args.skopeo.exists() {
        eprintln!(
            "ocisync-bench: skopeo not found at {} (make deps)",
            args.skopeo.display()
        );
        return ExitCode::from(2);
    }
    let options = standard::StandardOptions {
        ocisync: args.ocisync,
        ocisync_line: args.concurrency.map(|(r, b)| concurrency_defaults(r, b)),
        ocisync_variants: args.variants,
        skopeo: args.skopeo,
        runs: args.runs,
        shape: CorpusShape {
            repositories: args.repositories,
            large_layer_size: args.large_layer_mib << 20,
            ..CorpusShape::standard()
        },
        ocisync_only: args.ocisync_only,
        source_link: args.source_link_mib.map(|mib| (mib as u64) << 20),
    };
    let results = standard::run(&runtime, &options);
    let stats = results.stats;
    println!(
        "\n## Corpus\n\n{} repositories, {} tags ({} multi-arch, {} signatures), {} manifests, \
         {} unique blobs, {:.1} MiB; seeded in {:.1} s\n",
        stats.repositories,
        stats.tags,
        stats.multi_arch_tags,
        stats.signature_tags,
        stats.manifests,
        stats.unique_blobs,
        stats.unique_blob_bytes as f64 / (1024.0 * 1024.0),
        results.seed_time.as_secs_f64()
    );
    println!(
        "## Results ({} runs each; ocisync config: {})\n",
        options.runs,
        options.ocisync_line.as_deref().unwrap_or("plain")
    );
    if let Some(bytes_per_second) = options.source_link {
        println!(
            "Every blob download from the source throttled to {} MiB/s (`--source-link-mib`).\n",
            bytes_per_second >> 20
        );
    }
    println!("{}", table::render(&results.contenders));
    if options.ocisync_only {
        return ExitCode::SUCCESS;
    }
    let [skopeo, ocisync, .., limit, complete_copy] = results.contenders.as_slice() else {
        unreachable!("standard::run returns skopeo, ocisync, its variants, the limit and the complete copy");
    };
    println!("## Targets (issue 7)\n");
    println!(
        "{}",
        table::render_targets(&table::targets(ocisync, skopeo, limit, complete_copy))
    );
    let complete = results.contenders.iter().all(|c| c.verified.iter().all(Result::is_ok));
    if complete {
        ExitCode::SUCCESS
    } else {
        eprintln!("ocisync-bench: a destination was incomplete (see above)");
        ExitCode::FAILURE
    }
}

/// Cores and memory of this machine, from the kernel.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or("?".to_owned(), |kib| format!("{:.1}", kib / (1024.0 * 1024.0)));
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("# ocisync-bench\n\nmachine: {cores} cores ({cpu}), {memory_gib} GiB RAM")
}
