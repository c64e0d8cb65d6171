//! The standard benchmark: skopeo sync, ocisync, the plain limit and the complete-copy
//! client on the generated corpus, a fresh destination registry for every run, requests
//! counted by proxies.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use super::complete;
use super::contender::Contender;
use super::corpus::{self, CorpusShape, CorpusStats};
use super::limit::{self, LimitError};
use super::link::{self, SourceLink};
use super::process::cpu_of;
use super::table::{ContenderRuns, PassResult};
use super::trace;
use ocisync_testkit::corpus::{repos, SeedImage};
use ocisync_testkit::{assert_mirror_complete, CountingProxy, RegistryClient, TestRegistry};

/// Tags pushed at once while seeding the source.
const SEED_TASKS: usize = 8;

/// What to run.
#[derive(Debug, Clone)]
pub struct StandardOptions {
    /// The release `ocisync` binary.
    pub ocisync: PathBuf,
    /// One more line for ocisync's config (see `contender::ocisync_config`); `None`: the
    /// plain config.
    pub ocisync_line: Option<String>,
    /// More ocisync contenders, each with one more config line, run in the same rounds so
    /// a setting is compared under the same drift of the machine.
    pub ocisync_variants: Vec<String>,
    /// The `skopeo` binary.
    pub skopeo: PathBuf,
    /// Runs per contender (each: cold pass into a fresh destination, then a no-op pass).
    pub runs: usize,
    /// The corpus.
    pub shape: CorpusShape,
    /// Run ocisync alone (no skopeo, no limit, no complete-copy client): for quick
    /// iterations, no ratios.
    pub ocisync_only: bool,
    /// How far and how slow the source is (for every contender alike); the default is
    /// loopback.
    pub source_link: SourceLink,
}

/// Everything measured.
#[derive(Debug, Clone)]
pub struct StandardResults {
    /// The corpus.
    pub stats: CorpusStats,
    /// How long seeding the source took.
    pub seed_time: Duration,
    /// skopeo, ocisync, the variants, the limit, the complete-copy client, in that order
    /// (no skopeo and no clients with `ocisync_only`).
    pub contenders: Vec<ContenderRuns>,
}

/// Seeds a source registry with the corpus and runs every contender `options.runs` times,
/// in rounds (skopeo, ocisync, limit, complete-copy client), so drift on the machine
/// hits all alike.
pub fn run(runtime: &Runtime, options: &StandardOptions) -> StandardResults {
    let images = corpus::generate(&options.shape);
    let stats = corpus::stats(&images);
    let source = TestRegistry::start();
    eprintln!("seeding {} tags into {} ...", stats.tags, source.url());
    let started = Instant::now();
    runtime.block_on(seed(&source.url(), images.clone()));
    let seed_time = started.elapsed();
    eprintln!("seeded in {:.1} s", seed_time.as_secs_f64());

    let repo_names = repos(&images);
    let mut contenders = Vec::new();
    if !options.ocisync_only {
        contenders.push(Contender::Skopeo(options.skopeo.clone()));
    }
    contenders.push(Contender::Ocisync(
        options.ocisync.clone(),
        options.ocisync_line.clone(),
    ));
    for line in &options.ocisync_variants {
        contenders.push(Contender::Ocisync(options.ocisync.clone(), Some(line.clone())));
    }
    let mut results: Vec<ContenderRuns> = contenders
        .iter()
        .map(|c| ContenderRuns {
            name: c.name(),
            ..ContenderRuns::default()
        })
        .collect();
    let mut limit_runs = ContenderRuns {
        name: format!("plain limit ({} streams)", limit::WORKERS),
        ..ContenderRuns::default()
    };
    let mut complete_runs = ContenderRuns {
        name: format!("complete-copy client ({} workers)", complete::WORKERS),
        ..ContenderRuns::default()
    };
    let blobs = corpus::unique_blobs(&images);
    let tags: Vec<(String, String)> = images.iter().map(|s| (s.repo.clone(), s.tag.clone())).collect();
    for round in 1..=options.runs {
        for (contender, result) in contenders.iter().zip(results.iter_mut()) {
            run_contender(
                runtime,
                contender,
                &source,
                options.source_link,
                &repo_names,
                round,
                result,
            );
        }
        if !options.ocisync_only {
            let blobs = blobs.clone();
            run_client(
                runtime,
                &source,
                options.source_link,
                None,
                round,
                &mut limit_runs,
                |src, dst| async move { limit::stream_blobs(&src, &dst, blobs).await },
            );
            let tags = tags.clone();
            run_client(
                runtime,
                &source,
                options.source_link,
                Some(&repo_names),
                round,
                &mut complete_runs,
                |src, dst| async move { complete::copy_tags(&src, &dst, tags).await },
            );
        }
    }
    if !options.ocisync_only {
        results.push(limit_runs);
        results.push(complete_runs);
    }
    StandardResults {
        stats,
        seed_time,
        contenders: results,
    }
}

/// Pushes each blob into each repository that needs it once, then every tag,
/// [`SEED_TASKS`] at a time.
///
/// Blobs go first, each (repository, blob) once, because distribution 2.8 rewrites a
/// repository's link file in place when a blob is committed again: a concurrent `HEAD`
/// or manifest `PUT` in that repository then sees an empty link (500, "blob unknown").
async fn seed(base_url: &str, images: Vec<SeedImage>) {
    let blobs = Arc::new(corpus::blobs_per_repository(&images));
    let client = RegistryClient::new();
    parallel(Arc::clone(&blobs), {
        let (client, base_url) = (client.clone(), base_url.to_owned());
        move |(repo, blob)| {
            let (client, base_url) = (client.clone(), base_url.clone());
            async move { client.push_blob(&base_url, &repo, &blob).await }
        }
    })
    .await;
    let base_url = base_url.to_owned();
    parallel(Arc::new(images), move |seed: SeedImage| {
        let (client, base_url) = (client.clone(), base_url.clone());
        async move { client.push_image(&base_url, &seed.repo, &seed.tag, &seed.image).await }
    })
    .await;
}

/// Runs `work` on each item, [`SEED_TASKS`] at a time.
async fn parallel<T, F, Fut>(items: Arc<Vec<T>>, work: F)
where
    T: Clone + Send + Sync + 'static,
    F: Fn(T) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..SEED_TASKS {
        let (items, next, work) = (Arc::clone(&items), Arc::clone(&next), work.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                work(item.clone()).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("seeding task panicked");
    }
}

/// One run: a fresh destination, a cold pass, a no-op pass, then verification.
fn run_contender(
    runtime: &Runtime,
    contender: &Contender,
    source: &TestRegistry,
    source_link: SourceLink,
    repo_names: &[String],
    round: usize,
    result: &mut ContenderRuns,
) {
    let destination = TestRegistry::start();
    let source_proxy = source_link.proxy(source);
    let destination_proxy = CountingProxy::start(&destination.url());
    let work = tempfile::tempdir().expect("bench: temp dir");
    let mut passes = Vec::new();
    for pass in ["cold", "no-op"] {
        source_proxy.reset();
        destination_proxy.reset();
        let registries_cpu = || registries_cpu(source, &destination);
        let cpu_before = (registries_cpu(), cpu_of("self").unwrap_or_default());
        let timed = contender
            .pass(&source_proxy.host(), &destination_proxy.host(), repo_names, work.path())
            .unwrap_or_else(|e| panic!("bench: cannot run {}: {e}", contender.name()));
        let measured = PassResult::of(&timed, &source_proxy, &destination_proxy);
        let cpu = [
            timed.cpu,
            registries_cpu().saturating_sub(cpu_before.0),
            cpu_of("self").unwrap_or_default().saturating_sub(cpu_before.1),
        ];
        eprintln!(
            "{} run {round} {pass}: {:.2} s, CPU: its own {:.2} s, registries {:.2} s, proxies {:.2} s \
             (floor {:.2} s); peak RSS {} KiB, requests {} / {}, writes {}{}",
            contender.name(),
            measured.wall.as_secs_f64(),
            cpu[0].as_secs_f64(),
            cpu[1].as_secs_f64(),
            cpu[2].as_secs_f64(),
            cpu_floor(&cpu).as_secs_f64(),
            measured.peak_rss_kib,
            measured.source_requests,
            measured.destination_requests,
            measured.destination_writes,
            if measured.succeeded {
                String::new()
            } else {
                format!("\nFAILED ({:?}):\n{}", timed.exit_code, timed.stderr_tail)
            }
        );
        eprintln!(
            "  source: {}\n  destination: {}",
            breakdown(&source_proxy.requests()),
            breakdown(&destination_proxy.requests())
        );
        if let Some(usage) = source_proxy.link_usage() {
            eprintln!("  {}", link::describe_usage(&usage, measured.wall));
        }
        if let Some(dir) = std::env::var_os(trace::DIRECTORY_VARIABLE) {
            let name = format!("{}-{round}-{pass}", contender.name().replace(' ', "_"));
            trace::write(std::path::Path::new(&dir), &name, &source_proxy, &destination_proxy);
        }
        passes.push(measured);
    }
    result.cold.push(passes[0]);
    result.noop.push(passes[1]);
    let verified = verify(runtime, &source.url(), &destination.url(), repo_names);
    if let Err(problem) = &verified {
        eprintln!("{} run {round}: destination INCOMPLETE: {problem}", contender.name());
    }
    result.verified.push(verified);
}

/// The shortest wall time the CPU spent on a pass allows: all of it (tool, registries,
/// proxies) spread evenly over the machine's cores. On loopback the registries' CPU is
/// most of it, so a pass near its floor is as fast as its requests and bytes allow here.
pub fn cpu_floor(cpu: &[Duration]) -> Duration {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    cpu.iter().sum::<Duration>() / cores
}

/// CPU time the two registries have used so far.
fn registries_cpu(source: &TestRegistry, destination: &TestRegistry) -> Duration {
    [source.pid(), destination.pid()]
        .map(|pid| cpu_of(&pid.to_string()).unwrap_or_default())
        .into_iter()
        .sum()
}

/// One of the bench's own clients (the limit, the complete copy) into a fresh
/// destination: `copy(source URL, destination URL)`, both behind counting proxies; the
/// mirror of `mirrored` repositories is verified afterwards when given.
fn run_client<F, Fut>(
    runtime: &Runtime,
    source: &TestRegistry,
    source_link: SourceLink,
    mirrored: Option<&[String]>,
    round: usize,
    result: &mut ContenderRuns,
    copy: F,
) where
    F: FnOnce(String, String) -> Fut,
    Fut: std::future::Future<Output = Result<Duration, LimitError>>,
{
    let destination = TestRegistry::start();
    let source_proxy = source_link.proxy(source);
    let destination_proxy = CountingProxy::start(&destination.url());
    let cpu_before = (registries_cpu(source, &destination), cpu_of("self").unwrap_or_default());
    let outcome = runtime.block_on(copy(source_proxy.url(), destination_proxy.url()));
    let cpu = (
        registries_cpu(source, &destination).saturating_sub(cpu_before.0),
        cpu_of("self").unwrap_or_default().saturating_sub(cpu_before.1),
    );
    let measured = PassResult {
        wall: outcome.as_ref().map_or(Duration::ZERO, |wall| *wall),
        peak_rss_kib: 0,
        source_requests: source_proxy.requests().len(),
        destination_requests: destination_proxy.requests().len(),
        destination_writes: destination_proxy.writes().len(),
        succeeded: outcome.is_ok(),
    };
    eprintln!(
        "{} run {round}: {:.2} s, CPU: registries {:.2} s, client and proxies {:.2} s (floor {:.2} s); \
         requests {} / {}{}",
        result.name,
        measured.wall.as_secs_f64(),
        cpu.0.as_secs_f64(),
        cpu.1.as_secs_f64(),
        cpu_floor(&[cpu.0, cpu.1]).as_secs_f64(),
        measured.source_requests,
        measured.destination_requests,
        outcome
            .as_ref()
            .err()
            .map_or(String::new(), |e| format!(", FAILED: {e}"))
    );
    let verified = match (outcome, mirrored) {
        (Err(e), _) => Err(e.to_string()),
        (Ok(_), Some(repo_names)) => verify(runtime, &source.url(), &destination.url(), repo_names),
        (Ok(_), None) => Ok(()),
    };
    if let (Err(problem), Some(_)) = (&verified, mirrored) {
        eprintln!("{} run {round}: destination INCOMPLETE: {problem}", result.name);
    }
    result.cold.push(measured);
    result.verified.push(verified);
}

/// Every tag of every repository has its source digest and its whole closure in the
/// destination (testkit's own reader, straight to the registries, not counted).
fn verify(runtime: &Runtime, source: &str, destination: &str, repo_names: &[String]) -> Result<(), String> {
    let (source, destination, repo_names) = (source.to_owned(), destination.to_owned(), repo_names.to_vec());
    let check = runtime.spawn(async move {
        let pairs: Vec<(&str, &str)> = repo_names.iter().map(|r| (r.as_str(), r.as_str())).collect();
        assert_mirror_complete(&source, &destination, &pairs).await;
    });
    match runtime.block_on(check) {
        Ok(()) => Ok(()),
        Err(error) if error.is_panic() => {
            let payload = error.into_panic();
            Err(payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "verification panicked".to_owned()))
        }
        Err(error) => Err(error.to_string()),
    }
}

/// Requests counted by method and kind (`HEAD manifest 157, PUT upload 427, ...`), to
/// see where a tool spends its requests.
fn breakdown(requests: &[ocisync_testkit::RecordedRequest]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for request in requests {
        let kind = ocisync_testkit::RequestKind::of_path(&request.path)
            .map_or("other".to_owned(), |k| format!("{k:?}").to_lowercase());
        let mount = if request.path.contains("mount=") {
            " (mount)"
        } else {
            ""
        };
        *counts
            .entry(format!("{} {kind}{mount}", request.method))
            .or_insert(0usize) += 1;
    }
    counts
        .iter()
        .map(|(key, count)| format!("{key} {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}
