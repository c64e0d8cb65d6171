//! The scale corpus: thousands of repositories of tiny images, seeded fast.
//!
//! Ten distinct tiny images (a small config each, one shared 512-byte layer) are pushed
//! over HTTP to the first repository; every other repository gets them by links written
//! straight into the registry's storage (`scale_storage`), as a mount and a manifest
//! `PUT` would leave them. The same images under the same tags go to both registries,
//! so a sync between them is a no-op pass.

use ocisync_testkit::image::{image, layer, Format, Image};
use ocisync_testkit::{RegistryClient, TestRegistry};

use super::scale_storage::write_repositories;

/// Name of scale repository number `index`.
pub fn scale_repo(index: usize) -> String {
    format!("scale/r{index:05}")
}

/// Tag number `index`.
pub fn scale_tag(index: usize) -> String {
    format!("t{index:02}")
}

/// `tags` distinct tiny images, one per tag, sharing one layer.
pub fn tiny_images(tags: usize) -> Vec<Image> {
    let shared = layer(Format::Oci, 0x5CA1E, 512);
    (0..tags)
        .map(|tag| image(Format::Oci, ("linux", "amd64"), vec![shared.clone()], &scale_tag(tag)))
        .collect()
}

/// Seeds repositories `range` of the scale corpus into `registry`: each gets every image
/// of `images` under its tag. Repository 0 must be in the first range seeded (it is
/// pushed over HTTP, which puts the blobs the others link to into the storage).
pub async fn seed_range(registry: &TestRegistry, range: std::ops::Range<usize>, images: &[Image]) {
    if range.start == 0 {
        let client = RegistryClient::new();
        for (tag, image) in images.iter().enumerate() {
            client
                .push_image(&registry.url(), &scale_repo(0), &scale_tag(tag), image)
                .await;
        }
    }
    let repos: Vec<String> = range.filter(|&r| r != 0).map(scale_repo).collect();
    let tagged: Vec<(String, Image)> = (images.iter().enumerate())
        .map(|(tag, image)| (scale_tag(tag), image.clone()))
        .collect();
    let storage = registry.storage_dir();
    tokio::task::spawn_blocking(move || write_repositories(&storage, &repos, &tagged))
        .await
        .expect("bench: scale seeding panicked");
}

/// What the scale run does.
#[derive(Debug, Clone)]
pub struct ScaleOptions {
    /// The release `ocisync` binary.
    pub ocisync: std::path::PathBuf,
    /// Tags per repository.
    pub tags: usize,
    /// Catalog sizes to measure at, ascending: the registries grow from one to the next.
    pub checkpoints: Vec<usize>,
    /// More no-op passes at each size, each with one more config line (see
    /// `contender::ocisync_config`).
    pub variants: Vec<String>,
}

/// One no-op pass at one catalog size.
#[derive(Debug, Clone)]
pub struct ScalePoint {
    /// The extra config line of a variant, or `plain`.
    pub config: String,
    /// Repositories in the catalog.
    pub repositories: usize,
    /// Tags in the catalog.
    pub tags: usize,
    /// How long seeding up to this size took (both registries at once).
    pub seed_time: std::time::Duration,
    /// ocisync's no-op pass.
    pub noop: super::table::PassResult,
}

/// Grows two identical registries through `options.checkpoints` and times ocisync's
/// no-op pass between them at each size, plain and then with each variant.
pub fn run(runtime: &tokio::runtime::Runtime, options: &ScaleOptions) -> Vec<ScalePoint> {
    use super::contender::Contender;
    use ocisync_testkit::{CountingProxy, TestRegistry};

    let images = tiny_images(options.tags);
    let (source, destination) = (TestRegistry::start(), TestRegistry::start());
    let lines = std::iter::once(None).chain(options.variants.iter().cloned().map(Some));
    let contenders: Vec<Contender> = lines
        .map(|line| Contender::Ocisync(options.ocisync.clone(), line))
        .collect();
    let mut seeded = 0;
    let mut points = Vec::new();
    for &size in &options.checkpoints {
        eprintln!("scale: seeding repositories {seeded}..{size} into both registries ...");
        let started = std::time::Instant::now();
        runtime.block_on(async {
            tokio::join!(
                seed_range(&source, seeded..size, &images),
                seed_range(&destination, seeded..size, &images)
            )
        });
        let seed_time = started.elapsed();
        seeded = size;
        for contender in &contenders {
            let source_proxy = CountingProxy::start(&source.url());
            let destination_proxy = CountingProxy::start(&destination.url());
            let work = tempfile::tempdir().expect("bench: temp dir");
            let timed = contender
                .pass(&source_proxy.host(), &destination_proxy.host(), &[], work.path())
                .unwrap_or_else(|e| panic!("bench: cannot run ocisync: {e}"));
            if !timed.succeeded() {
                eprintln!("scale: ocisync FAILED ({:?}):\n{}", timed.exit_code, timed.stderr_tail);
            }
            let config = match contender {
                Contender::Ocisync(_, Some(line)) => line.clone(),
                _ => "plain".to_owned(),
            };
            let point = ScalePoint {
                config,
                repositories: size,
                tags: size * options.tags,
                seed_time,
                noop: super::table::PassResult::of(&timed, &source_proxy, &destination_proxy),
            };
            eprintln!(
                "scale: {} repositories, {} tags, {}: seeded in {:.1} s; no-op {:.2} s, peak RSS {} KiB, requests {} / {}, writes {}",
                point.repositories,
                point.tags,
                point.config,
                seed_time.as_secs_f64(),
                point.noop.wall.as_secs_f64(),
                point.noop.peak_rss_kib,
                point.noop.source_requests,
                point.noop.destination_requests,
                point.noop.destination_writes
            );
            points.push(point);
        }
    }
    points
}

/// The scale results as a markdown table.
pub fn render(points: &[ScalePoint]) -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "| repositories | tags | config | seeding (both registries) | no-op pass | per 1,000 tags | peak RSS | requests src / dst | dst writes | exit ok |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for point in points {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} s | {:.2} s | {:.3} s | {:.1} MiB | {} / {} | {} | {} |",
            point.repositories,
            point.tags,
            point.config,
            point.seed_time.as_secs_f64(),
            point.noop.wall.as_secs_f64(),
            point.noop.wall.as_secs_f64() * 1000.0 / point.tags.max(1) as f64,
            point.noop.peak_rss_kib as f64 / 1024.0,
            point.noop.source_requests,
            point.noop.destination_requests,
            point.noop.destination_writes,
            if point.noop.succeeded { "yes" } else { "**no**" }
        );
    }
    out
}
