//! Tests of the bench's parts: corpus shape, medians and targets, the limit client and
//! the scale seeding against real registries.

use std::time::Duration;

use super::args::{parse, Args};
use super::complete::copy_tags;
use super::contender::{concurrency_defaults, ocisync_config, skopeo_yaml};
use super::corpus::{generate, repo_kind, signature_tag, stats, unique_blobs, CorpusShape, CorpusStats, RepoKind};
use super::limit::stream_blobs;
use super::link::{link_floor, ratio_to_floor, render_against_skopeo, render_floor, speedup, SourceLink};
use super::process::{cpu_of, parse_cpu, parse_peak_rss};
use super::scale::{scale_repo, scale_tag, seed_range, tiny_images};
use super::table::{median, targets, ContenderRuns, PassResult};
use ocisync_testkit::{assert_mirror_complete, blob_exists, manifest, tags, CountingProxy, TestRegistry};

/// The standard shape with tiny layers, so tests stay fast.
fn tiny_shape() -> CorpusShape {
    CorpusShape {
        layer_size: 1024,
        large_layer_size: 4096,
        ..CorpusShape::standard()
    }
}

#[test]
fn standard_corpus_has_the_shape_of_issue_7() {
    let images = generate(&tiny_shape());
    let counts = stats(&images);
    assert_eq!(counts.repositories, 31);
    // 30 × 4 tags, 9 signed repositories × 4 signature tags, the bulk tag.
    assert_eq!(counts.tags, 157);
    assert_eq!(counts.multi_arch_tags, 36);
    assert_eq!(counts.signature_tags, 36);
    // 36 indexes + 72 children + 84 images + 36 signatures + the bulk image.
    assert_eq!(counts.manifests, 229);
    assert_eq!(unique_blobs(&images).len(), counts.unique_blobs);
    assert_eq!(counts.largest_blob_bytes, 4096, "the bulk layer");
}

#[test]
fn base_layers_are_shared_and_signatures_name_their_image() {
    let images = generate(&tiny_shape());
    let first_layer = |repo: &str| {
        let seed = images.iter().find(|s| s.repo == repo && s.tag == "1.0").expect("tag");
        seed.image.blobs[1].digest.clone()
    };
    // Two single-platform repositories of the same format share the base layer.
    assert_eq!(first_layer("bench-app-04"), first_layer("bench-app-06"));
    for seed in images
        .iter()
        .filter(|s| repo_kind_of(&s.repo) == Some(RepoKind::Signed))
    {
        if !seed.tag.ends_with(".sig") {
            let signature = signature_tag(seed.image.digest());
            assert!(
                images.iter().any(|s| s.repo == seed.repo && s.tag == signature),
                "{}:{} has no signature tag",
                seed.repo,
                seed.tag
            );
        }
    }
}

fn repo_kind_of(repo: &str) -> Option<RepoKind> {
    repo.strip_prefix("bench-app-")?.parse().ok().map(repo_kind)
}

#[test]
fn median_takes_the_middle_value() {
    assert_eq!(median([3, 1, 2]), Some(2));
    assert_eq!(median([4, 1, 3, 2]), Some(2));
    assert_eq!(median(Vec::<u32>::new()), None);
}

#[test]
fn peak_rss_is_read_from_the_last_line_of_gnu_time_output() {
    assert_eq!(parse_peak_rss("12345\n"), Some(12345));
    assert_eq!(
        parse_peak_rss("Command exited with non-zero status 1\n777\n"),
        Some(777)
    );
    assert_eq!(parse_peak_rss(""), None);
}

#[test]
fn cpu_time_is_user_plus_system_from_gnu_time_output() {
    let cpu = parse_cpu("Command exited with non-zero status 1\n0.25 0.50\n777\n").unwrap();
    assert_eq!(cpu.as_millis(), 750);
    assert_eq!(parse_cpu("777\n"), None);
}

#[test]
fn cpu_of_a_process_grows_while_it_works() {
    let before = cpu_of("self").expect("this process's /proc/self/stat");
    let mut x: u64 = 1;
    // Busy until the kernel's tick counter moves (10 ms), for at most 5 s of wall time.
    let started = std::time::Instant::now();
    while cpu_of("self").unwrap() <= before && started.elapsed() < std::time::Duration::from_secs(5) {
        for _ in 0..100_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    assert!(
        cpu_of("self").unwrap() > before,
        "no CPU counted after 5 s of work ({x})"
    );
    assert_eq!(cpu_of("not-a-pid"), None);
}

#[test]
fn tool_configs_name_every_repository_and_both_registries() {
    let yaml = skopeo_yaml("127.0.0.1:1", &["a".to_owned(), "b".to_owned()]);
    assert_eq!(
        yaml,
        "127.0.0.1:1:\n  tls-verify: false\n  images:\n    a: []\n    b: []\n"
    );
    let config = ocisync_config("127.0.0.1:1", "127.0.0.1:2", Some(&concurrency_defaults(8, 6)));
    assert!(
        config.starts_with("version: 1\ndefaults: {concurrency: {repositories: 8, blobs: 6}}\n"),
        "{config}"
    );
    assert!(config.contains("http://127.0.0.1:1") && config.contains("http://127.0.0.1:2"));
    assert!(!ocisync_config("h:1", "h:2", None).contains("defaults"));
    let content = r#"content: [{prefix: "**", tags: {immutable: [".*"]}}]"#;
    let config = ocisync_config("h:1", "h:2", Some(content));
    assert!(
        config.ends_with(&format!("  - from: upstream\n    to: mirror\n    {content}\n")),
        "{config}"
    );
}

fn runs(
    name: &str,
    cold_seconds: u64,
    noop_millis: u64,
    requests: usize,
    writes: usize,
    rss_kib: u64,
) -> ContenderRuns {
    let pass = |wall, writes| PassResult {
        wall,
        peak_rss_kib: rss_kib,
        source_requests: requests,
        destination_requests: requests,
        destination_writes: writes,
        succeeded: true,
    };
    ContenderRuns {
        name: name.to_owned(),
        cold: vec![pass(Duration::from_secs(cold_seconds), 0)],
        noop: vec![pass(Duration::from_millis(noop_millis), writes)],
        verified: vec![Ok(())],
    }
}

#[test]
fn targets_compare_ocisync_with_skopeo_and_the_limit() {
    let skopeo = runs("skopeo", 27, 3800, 1000, 36, 24 * 1024);
    let limit = runs("limit", 8, 0, 400, 0, 0);
    let complete = runs("complete", 9, 0, 600, 0, 0);
    let missed = |ocisync: &ContenderRuns| -> Vec<&'static str> {
        targets(ocisync, &skopeo, &limit, &complete)
            .into_iter()
            .filter(|t| !t.met)
            .map(|t| t.what)
            .collect()
    };
    assert_eq!(missed(&runs("ocisync", 7, 300, 300, 0, 20 * 1024)), Vec::<&str>::new());
    assert_eq!(missed(&runs("ocisync", 10, 1000, 600, 1, 50 * 1024)).len(), 7);
    assert_eq!(
        missed(&runs("ocisync", 9, 300, 300, 0, 20 * 1024)),
        ["cold wall: ocisync / plain limit"]
    );
}

/// A source seeded with a small corpus of `repositories` × 2 tags, and an empty
/// destination.
async fn seeded_small_corpus(
    repositories: usize,
) -> (TestRegistry, TestRegistry, Vec<ocisync_testkit::corpus::SeedImage>) {
    let (source, destination) = (TestRegistry::start(), TestRegistry::start());
    let images = generate(&CorpusShape {
        repositories,
        tags_per_repository: 2,
        layer_size: 2048,
        large_layer_size: 0,
    });
    ocisync_testkit::corpus::seed(&source.url(), &images).await;
    (source, destination, images)
}

#[tokio::test]
async fn the_limit_client_streams_every_blob_into_the_destination() {
    let (source, destination, images) = seeded_small_corpus(3).await;
    let blobs = unique_blobs(&images);
    stream_blobs(&source.url(), &destination.url(), blobs.clone())
        .await
        .expect("limit client");
    for (repo, blob) in &blobs {
        assert!(
            blob_exists(&destination.url(), repo, &blob.digest).await,
            "{repo}@{}",
            blob.digest
        );
    }
}

#[tokio::test]
async fn the_complete_copy_client_leaves_a_mirror_streaming_each_blob_once() {
    let (source, destination, images) = seeded_small_corpus(4).await;
    let proxy = CountingProxy::start(&destination.url());
    let tags: Vec<_> = images.iter().map(|s| (s.repo.clone(), s.tag.clone())).collect();
    copy_tags(&source.url(), &proxy.url(), tags)
        .await
        .expect("complete-copy client");

    let repos = ocisync_testkit::corpus::repos(&images);
    let pairs: Vec<(&str, &str)> = repos.iter().map(|r| (r.as_str(), r.as_str())).collect();
    assert_mirror_complete(&source.url(), &destination.url(), &pairs).await;
    let requests = proxy.requests();
    let count = |f: &dyn Fn(&ocisync_testkit::RecordedRequest) -> bool| requests.iter().filter(|r| f(r)).count();
    let uploads = count(&|r| r.method == "PUT" && r.path.contains("/blobs/uploads/"));
    let mounts = count(&|r| r.method == "POST" && r.path.contains("mount="));
    assert_eq!(uploads, unique_blobs(&images).len(), "each distinct blob streamed once");
    assert!(
        mounts > 0,
        "blobs shared across repositories are mounted, not streamed again"
    );
}

#[tokio::test]
async fn scale_seeding_gives_every_repository_every_tag() {
    let registry = TestRegistry::start();
    let images = tiny_images(3);
    seed_range(&registry, 0..2, &images).await;
    seed_range(&registry, 2..4, &images).await;
    for repo in (0..4).map(scale_repo) {
        assert_eq!(tags(&registry.url(), &repo).await, ["t00", "t01", "t02"]);
        let (_, _, digest) = manifest(&registry.url(), &repo, &scale_tag(2)).await.expect("manifest");
        assert_eq!(digest, images[2].manifest.digest);
        ocisync_testkit::assert_closure(&registry.url(), &repo).await;
    }
}

#[test]
fn the_cpu_floor_spreads_all_the_cpu_over_the_cores() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let cpu = [Duration::from_secs(3), Duration::from_secs(5)];
    assert_eq!(super::standard::cpu_floor(&cpu) * cores, Duration::from_secs(8));
}

/// The command line `line` (words split at spaces) after the program name.
fn parse_line(line: &str) -> Result<Args, String> {
    parse(line.split_whitespace().map(str::to_owned))
}

#[test]
fn source_rtt_and_link_flags_set_the_source_link() {
    let args = parse_line("ocisync --source-rtt-ms 40 --source-link-mib 50").unwrap();
    assert_eq!(
        args.source_link(),
        SourceLink {
            bytes_per_second: Some(50 << 20),
            round_trip: Some(Duration::from_millis(40)),
        }
    );
    let plain = parse_line("ocisync").unwrap();
    assert_eq!((plain.runs, plain.source_link()), (3, SourceLink::default()));
    assert_eq!(SourceLink::default().describe(), None);
    let described = args.source_link().describe().unwrap();
    assert!(
        described.contains("20 ms later each way (a 40 ms round trip")
            && described.contains("one link of 50 MiB/s shared"),
        "{described}"
    );
}

#[test]
fn a_flag_given_again_keeps_its_last_value_so_bench_args_override_the_make_target() {
    let args = parse_line("ocisync --source-rtt-ms 40 --runs 3 --runs 1 --source-rtt-ms 100").unwrap();
    assert_eq!((args.runs, args.source_rtt_ms), (1, Some(100)));
}

#[test]
fn bad_bench_arguments_say_what_is_wrong() {
    for (line, problem) in [
        ("ocisync --source-rtt-ms 0", "--source-rtt-ms needs a positive number"),
        (
            "ocisync --source-rtt-ms forty",
            "--source-rtt-ms needs a positive number",
        ),
        ("ocisync --source-rtt-ms", "--source-rtt-ms needs a positive number"),
        ("ocisync --scale --source-rtt-ms 40", "not to --scale"),
        ("ocisync --source-link-mib 50 --scale", "not to --scale"),
        ("ocisync --rtt 40", "unknown argument \"--rtt\""),
        ("", "missing PATH/TO/ocisync"),
    ] {
        let problem_found = parse_line(line).expect_err(line);
        assert!(problem_found.contains(problem), "{line:?}: {problem_found}");
    }
}

#[test]
fn the_source_link_proxy_shares_one_link_and_delays_every_connection() {
    let source = TestRegistry::start();
    let link = SourceLink {
        bytes_per_second: Some(20 << 20),
        round_trip: Some(Duration::from_millis(100)),
    };
    let proxy = link.proxy(&source);
    assert_eq!(proxy.round_trip(), Duration::from_millis(100));
    assert_eq!(proxy.link_rate(), Some(20 << 20));
    assert!(
        proxy.faults().rules.is_empty(),
        "no per-response throttle besides the link"
    );
    let loopback = SourceLink::default().proxy(&source);
    assert_eq!((loopback.round_trip(), loopback.link_rate()), (Duration::ZERO, None));
}

#[test]
fn the_link_floor_is_the_unique_bytes_over_the_link_rate() {
    assert_eq!(link_floor(100 << 20, 50 << 20), Duration::from_secs(2));
    // Issue 19's corpus and figures: 343.5 MiB at 50 MiB/s, ocisync cold 7.75 s, skopeo 63.0 s.
    let floor = link_floor(687 << 19, 50 << 20);
    assert!((floor.as_secs_f64() - 6.87).abs() < 1e-9, "{floor:?}");
    assert!((ratio_to_floor(Duration::from_millis(7750), floor) - 1.128).abs() < 0.001);
    assert!((speedup(Duration::from_secs(63), Duration::from_millis(7750)) - 8.129).abs() < 0.001);
}

#[test]
fn the_floor_table_gives_every_contender_its_ratio_and_ocisync_its_speedup() {
    let skopeo = runs("skopeo sync", 63, 29600, 1000, 36, 0);
    let ocisync = runs("ocisync once", 8, 690, 300, 0, 0);
    let client = ContenderRuns {
        noop: Vec::new(),
        ..runs("complete-copy client", 6, 0, 300, 0, 0)
    };
    let corpus = CorpusStats {
        unique_blob_bytes: 100 << 20,
        largest_blob_bytes: 50 << 20,
        ..stats(&[])
    };
    let table = render_floor(&[skopeo.clone(), ocisync.clone(), client], &corpus, 25 << 20);
    assert!(
        table.starts_with("Link floor: 4.00 s (100.0 MiB of unique blobs ÷ 25 MiB/s)."),
        "{table}"
    );
    assert!(
        table.contains("the largest blob alone takes 2.00 s (50.0 MiB ÷ 25 MiB/s)"),
        "{table}"
    );
    for row in [
        "| skopeo sync | 63.00 s | 15.75 | 29.60 s |",
        "| ocisync once | 8.00 s | 2.00 | 0.69 s |",
        "| complete-copy client | 6.00 s | 1.50 | n/a |",
    ] {
        assert!(table.contains(row), "no {row:?} in\n{table}");
    }
    let line = render_against_skopeo(&ocisync, &skopeo).unwrap();
    assert!(
        line.contains("cold 7.9× faster, no-op 42.9× faster (0 destination writes"),
        "{line}"
    );
}
