//! Mirror lag (`ocisync-bench PATH --lag`): how long after a push the tag is at the
//! mirror, with `run` taking the upstream registry's notifications, and without them
//! (the schedule alone, with a short interval).
//!
//! Each push is a fresh image under a new tag of `team/app`, pushed to a real
//! distribution registry; the lag runs from the push's last request (the manifest
//! `PUT`) to the first poll of the mirror (every 5 ms) that finds the tag at the pushed
//! digest. Pushes are one at a time. Without events, each push first waits a
//! pseudo-random part of the interval, so pushes land at every phase of the schedule.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ocisync_testkit::image::{image, layer, Format};
use ocisync_testkit::{manifest, push_image, TestRegistry};

const TOKEN: &str = "ocisync-bench-lag-token-0123456789";
const TOKEN_ENV: &str = "OCISYNC_BENCH_HOOK_TOKEN";

/// A push not at the mirror after this is a failure of the run.
const GIVE_UP: Duration = Duration::from_secs(120);

pub struct LagOptions {
    pub ocisync: PathBuf,
    /// Pushes measured with events.
    pub pushes: usize,
    /// Pushes measured without events.
    pub baseline_pushes: usize,
    /// The interval of the run without events.
    pub interval: Duration,
}

pub struct LagResult {
    pub with_events: Vec<Duration>,
    pub without_events: Vec<Duration>,
    pub interval: Duration,
}

pub fn run(runtime: &tokio::runtime::Runtime, options: &LagOptions) -> LagResult {
    eprintln!("lag: {} pushes with events", options.pushes);
    let with_events = runtime.block_on(measure(&options.ocisync, options.pushes, None));
    eprintln!(
        "lag: {} pushes without events, interval {:?}",
        options.baseline_pushes, options.interval
    );
    let without_events = runtime.block_on(measure(
        &options.ocisync,
        options.baseline_pushes,
        Some(options.interval),
    ));
    LagResult {
        with_events,
        without_events,
        interval: options.interval,
    }
}

/// `interval`: `None` measures with events (and an hourly schedule).
async fn measure(ocisync: &Path, pushes: usize, interval: Option<Duration>) -> Vec<Duration> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let upstream = match interval {
        None => TestRegistry::builder()
            .notify(
                &format!("http://127.0.0.1:{port}/notifications/upstream"),
                &[("Authorization", &format!("Bearer {TOKEN}"))],
            )
            .start(),
        Some(_) => TestRegistry::start(),
    };
    let mirror = TestRegistry::start();
    // The repository exists before the first pass, which then succeeds.
    let seed = image(
        Format::Oci,
        ("linux", "amd64"),
        vec![layer(Format::Oci, 0x1A6, 1024)],
        "seed",
    );
    push_image(&upstream.url(), "team/app", "seed", &seed).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("ocisync.yaml");
    let interval_text = interval.map_or("1h".to_owned(), |interval| format!("{}ms", interval.as_millis()));
    std::fs::write(
        &config,
        format!(
            "version: 1\nregistries:\n  upstream:\n    urls: [\"{}\"]\n    notifications: {{token_env: {TOKEN_ENV}}}\n  mirror:\n    urls: [\"{}\"]\nsyncs:\n  - name: lag\n    from: upstream\n    to: mirror\n    interval: {interval_text}\n    content:\n      - repositories: [team/app]\n",
            upstream.url(),
            mirror.url()
        ),
    )
    .expect("write config");
    let address = format!("127.0.0.1:{port}");
    let _daemon = Daemon(
        Command::new(ocisync)
            .args(["run", "--config", config.to_str().unwrap(), "--listen", &address])
            .env(TOKEN_ENV, TOKEN)
            .env("OCISYNC_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ocisync run"),
    );
    wait_for_first_pass(&address).await;
    let mut lags = Vec::with_capacity(pushes);
    // A fixed pseudo-random sequence: the same phases in every run.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for index in 0..pushes {
        if let Some(interval) = interval {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let fraction = (seed >> 11) as f64 / (1u64 << 53) as f64;
            tokio::time::sleep(interval.mul_f64(fraction)).await;
        } else {
            // Separate pushes, not one burst.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let pushed = image(
            Format::Oci,
            ("linux", "amd64"),
            vec![layer(Format::Oci, 0x1A6_0000 + index as u64, 64 * 1024)],
            &format!("lag-{index}"),
        );
        let tag = format!("v{index}");
        push_image(&upstream.url(), "team/app", &tag, &pushed).await;
        let pushed_at = Instant::now();
        loop {
            let found = manifest(&mirror.url(), "team/app", &tag).await;
            if found.is_some_and(|(_, _, digest)| digest == pushed.manifest.digest) {
                break;
            }
            assert!(pushed_at.elapsed() < GIVE_UP, "team/app:{tag} never reached the mirror");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let lag = pushed_at.elapsed();
        eprintln!("lag: push {index}: {:.3} s", lag.as_secs_f64());
        lags.push(lag);
    }
    lags
}

/// Kills `ocisync run` when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `/metrics` until the first pass has succeeded.
async fn wait_for_first_pass(address: &str) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = match client.get(format!("http://{address}/metrics")).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains("ocisync_passes_total{sync=\"lag\",outcome=\"success\"} 1") {
            return;
        }
        assert!(Instant::now() < deadline, "ocisync run's first pass did not succeed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `quantile` (0 to 1) of `values` by the nearest-rank method.
pub fn quantile(values: &[Duration], quantile: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn render(result: &LagResult) -> String {
    let row = |name: String, lags: &[Duration]| {
        format!(
            "| {name} | {} | {:.3} s | {:.3} s | {:.3} s | {:.3} s |\n",
            lags.len(),
            quantile(lags, 0.5).as_secs_f64(),
            quantile(lags, 0.9).as_secs_f64(),
            quantile(lags, 0.99).as_secs_f64(),
            lags.iter().max().copied().unwrap_or_default().as_secs_f64()
        )
    };
    let mut table = String::from("| mode | pushes | median | p90 | p99 | max |\n|---|---|---|---|---|---|\n");
    table.push_str(&row("events (interval 1h)".into(), &result.with_events));
    table.push_str(&row(
        format!("schedule alone (interval {:?})", result.interval),
        &result.without_events,
    ));
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let values: Vec<Duration> = (1..=50).map(Duration::from_secs).collect();
        assert_eq!(quantile(&values, 0.5), Duration::from_secs(25));
        assert_eq!(quantile(&values, 0.99), Duration::from_secs(50));
        assert_eq!(quantile(&values[..1], 0.5), Duration::from_secs(1));
    }
}
