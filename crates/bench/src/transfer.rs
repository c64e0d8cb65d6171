//! `ocisync-bench --transfers` (`make bench-transfers`): one large layer, three ways.
//!
//! - **bandwidth**: the source registry has `bandwidth: N MiB/s`; the rate of the pass
//!   (layer bytes over the pass's wall time, start-up and manifests included) against the
//!   cap.
//! - **resume**: the proxy before the source cuts the layer's first answers after
//!   `cut` bytes each; the bytes the source served against the layer's size (a download
//!   started again from zero after every cut would serve far more).
//! - **chunked upload**: the mirror takes the layer in chunks and the proxy before it
//!   resets one chunk's connection; the bytes the mirror received against the layer.
//!
//! Every mirror is checked byte for byte.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use ocisync_testkit::image::{image, layer, Format};
use ocisync_testkit::proxy::{Fault, Faults, ProxyOptions, RequestKind, RequestMatch};
use ocisync_testkit::{assert_mirror_complete, push_image, CountingProxy, TestRegistry};

use super::process::{run_timed, Timed};

const MIB: f64 = 1024.0 * 1024.0;
const REPO: &str = "big/layer";

/// What `--transfers` runs.
#[derive(Debug, Clone)]
pub struct TransferOptions {
    pub ocisync: std::path::PathBuf,
    /// The layer's size in bytes.
    pub layer_bytes: usize,
    /// The cap of the bandwidth case, bytes per second.
    pub bandwidth: u64,
    /// Where each cut answer of the resume case ends, bytes.
    pub cut: u64,
}

/// One case's figures.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: &'static str,
    pub pass: Timed,
    /// Bytes the proxy of the case counted (served by the source, or received by the
    /// mirror); `None` without a proxy.
    pub bytes: Option<u64>,
    pub faults: usize,
}

/// Runs the three cases, each on fresh registries.
pub fn run(runtime: &tokio::runtime::Runtime, options: &TransferOptions) -> Vec<CaseResult> {
    let blob = layer(Format::Oci, 0x7A4, options.layer_bytes);
    let image = image(Format::Oci, ("linux", "amd64"), vec![blob], "large");
    let mut results = Vec::new();
    for case in ["bandwidth", "resume", "chunked upload"] {
        let source = TestRegistry::start();
        let mirror = TestRegistry::start();
        runtime.block_on(push_image(&source.url(), REPO, "1.0", &image));
        let work = tempfile::tempdir().expect("work dir");
        let gets = RequestMatch::kind(RequestKind::Blob).method("GET");
        let patches = RequestMatch::kind(RequestKind::Upload).method("PATCH");
        let pieces = (options.layer_bytes as u64).div_ceil(options.cut.max(1));
        let (source_proxy, mirror_proxy, extra) = match case {
            "bandwidth" => (None, None, format!("    bandwidth: {}\n", options.bandwidth)),
            "resume" => {
                let cut = Fault::Truncate {
                    after_bytes: options.cut,
                };
                // Every answer but the last is cut: each continuation goes `cut` further.
                let faults = Faults::none().first((pieces - 1) as u32, gets, cut);
                let proxy = CountingProxy::start_with(&source.url(), ProxyOptions { faults });
                (Some(proxy), None, String::new())
            }
            _ => {
                let faults = Faults::none().nth(5, patches, Fault::Reset);
                let proxy = CountingProxy::start_with(&mirror.url(), ProxyOptions { faults });
                (None, Some(proxy), String::new())
            }
        };
        let source_url = source_proxy.as_ref().map_or(source.url(), CountingProxy::url);
        let mirror_url = mirror_proxy.as_ref().map_or(mirror.url(), CountingProxy::url);
        let mirror_extra = if case == "chunked upload" {
            "    chunked_upload: {above: 1MiB, chunk_size: 16MiB, resumable_above: 1MiB}\n"
        } else {
            ""
        };
        let config = format!(
            "version: 1\nregistries:\n  upstream:\n    urls: [\"{source_url}\"]\n{extra}  mirror:\n    \
             urls: [\"{mirror_url}\"]\n{mirror_extra}syncs:\n  - from: upstream\n    to: mirror\n"
        );
        eprintln!("transfers: {case}");
        let pass = once(&options.ocisync, work.path(), &config);
        runtime.block_on(assert_mirror_complete(&source.url(), &mirror.url(), &[(REPO, REPO)]));
        let (bytes, faults) = match (&source_proxy, &mirror_proxy) {
            (Some(proxy), _) => (Some(proxy.bytes_to_clients()), proxy.injected()),
            (_, Some(proxy)) => (Some(proxy.bytes_from_clients()), proxy.injected()),
            _ => (None, 0),
        };
        results.push(CaseResult {
            name: case,
            pass,
            bytes,
            faults,
        });
    }
    results
}

fn once(ocisync: &Path, work: &Path, config: &str) -> Timed {
    let path = work.join("ocisync.yaml");
    std::fs::write(&path, config).expect("config");
    let args = vec!["once".to_owned(), "--config".to_owned(), path.display().to_string()];
    let timed = run_timed(ocisync, &args, &[], work, Duration::from_secs(600)).expect("ocisync runs");
    assert!(timed.succeeded(), "ocisync once failed:\n{}", timed.stderr_tail);
    timed
}

/// The cases as markdown.
pub fn render(results: &[CaseResult], options: &TransferOptions) -> String {
    let layer = options.layer_bytes as f64;
    let mut out = String::from("| case | pass | peak RSS | measured | target |\n|---|---|---|---|---|\n");
    for result in results {
        let wall = result.pass.wall.as_secs_f64();
        let (measured, target) = match result.name {
            "bandwidth" => {
                let rate = layer / wall;
                let cap = options.bandwidth as f64;
                (
                    format!(
                        "{:.1} MiB/s over the pass for a {:.1} MiB/s cap ({:+.1}%)",
                        rate / MIB,
                        cap / MIB,
                        (rate / cap - 1.0) * 100.0
                    ),
                    "within ±10% of the cap",
                )
            }
            "resume" => (
                bytes_for_layer(result, layer, "served", "cuts"),
                "at most 1.2× the layer",
            ),
            _ => (
                bytes_for_layer(result, layer, "received by the mirror", "chunk reset"),
                "one chunk sent again at most",
            ),
        };
        let _ = writeln!(
            out,
            "| {} | {wall:.2} s | {:.1} MiB | {measured} | {target} |",
            result.name,
            result.pass.peak_rss_kib as f64 / 1024.0
        );
    }
    out
}

/// The bytes a case moved (`moved`: where they went) against the layer's size, and the
/// faults it injected: what the resume and reset targets are stated in.
fn bytes_for_layer(result: &CaseResult, layer: f64, moved: &str, faults: &str) -> String {
    let bytes = result.bytes.unwrap_or(0) as f64;
    format!(
        "{:.1} MiB {moved} for the {:.1} MiB layer ({:.3}×), {} {faults}",
        bytes / MIB,
        layer / MIB,
        bytes / layer,
        result.faults
    )
}
