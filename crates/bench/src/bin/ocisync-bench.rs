//! `make bench` / `make bench-wan` / `make bench-scale`: ocisync against skopeo sync, the
//! plain limit and the complete-copy client on loopback registries, the source optionally
//! far and slow (see `docs/benchmarks.md`).
//!
//! Usage:
//!   ocisync-bench PATH/TO/ocisync [--runs N] [--skopeo PATH] [--concurrency R,B] [--repositories N]
//!                 [--large-layer-mib N] [--source-link-mib N] [--source-rtt-ms N] [--ocisync-only]
//!                 [--variant LINE]...
//!   ocisync-bench PATH/TO/ocisync --scale [--scale-tags N] [--scale-checkpoints N1,N2,...] [--variant LINE]...
//!   ocisync-bench PATH/TO/ocisync --lag [--lag-pushes N] [--lag-baseline-pushes N] [--lag-interval-secs N]
//!   ocisync-bench PATH/TO/ocisync --transfers [--large-layer-mib N] [--bandwidth-mib N] [--cut-mib N]
//!
//! Prints progress to stderr and markdown tables to stdout.

use std::path::PathBuf;
use std::process::ExitCode;

use ocisync_bench::args::{self, USAGE};
use ocisync_bench::contender::concurrency_defaults;
use ocisync_bench::corpus::CorpusShape;
use ocisync_bench::process::GNU_TIME;
use ocisync_bench::{lag, link, scale, standard, table, transfer};

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
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
    if args.transfers {
        let options = transfer::TransferOptions {
            ocisync: args.ocisync,
            layer_bytes: args.large_layer_mib << 20,
            bandwidth: (args.bandwidth_mib as u64) << 20,
            cut: (args.cut_mib as u64) << 20,
        };
        let results = transfer::run(&runtime, &options);
        println!("\n## Transfers: one {} MiB layer\n", args.large_layer_mib);
        println!("{}", transfer::render(&results, &options));
        println!("Load average at the end: {}.", load_average());
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
    let source_link = args.source_link();
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
        source_link,
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
    if let Some(link) = options.source_link.describe() {
        println!("{link}\n");
    }
    println!("{}", table::render(&results.contenders));
    if let Some(bytes_per_second) = options.source_link.bytes_per_second {
        println!("## Link floor\n");
        println!("{}", link::render_floor(&results.contenders, &stats, bytes_per_second));
    }
    if options.ocisync_only {
        return ExitCode::SUCCESS;
    }
    let [skopeo, ocisync, .., limit, complete_copy] = results.contenders.as_slice() else {
        unreachable!("standard::run returns skopeo, ocisync, its variants, the limit and the complete copy");
    };
    if let Some(line) = link::render_against_skopeo(ocisync, skopeo) {
        println!("{line}\n");
    }
    if options.source_link.round_trip.is_none() {
        // Issue 7's targets are for a source on loopback; a far source has the floor.
        println!("## Targets (issue 7)\n");
        println!(
            "{}",
            table::render_targets(&table::targets(ocisync, skopeo, limit, complete_copy))
        );
    }
    println!("Load average at the end: {}.", load_average());
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
    format!(
        "# ocisync-bench\n\nmachine: {cores} cores ({cpu}), {memory_gib} GiB RAM; load average at the start: {}",
        load_average()
    )
}

/// The kernel's 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them: other
/// work on a shared machine shows here.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".to_owned())
}
