//! A pass's timeline, for finding where its time goes: with `OCISYNC_BENCH_TRACE=DIR`,
//! every pass writes `DIR/<contender>-<round>-<pass>.trace`, one line per request through
//! either proxy (when its answer started, side, method, status, path) and per idle gap of
//! the source link (`LINK idle SECONDS`), in time order.

use std::path::Path;
use std::time::Duration;

use ocisync_testkit::CountingProxy;

/// The environment variable naming the directory traces go to.
pub const DIRECTORY_VARIABLE: &str = "OCISYNC_BENCH_TRACE";

/// Writes the timeline of the pass just run through `source` and `destination`.
pub fn write(dir: &Path, name: &str, source: &CountingProxy, destination: &CountingProxy) {
    let mut lines: Vec<(Duration, String)> = Vec::new();
    for (side, proxy) in [("src", source), ("dst", destination)] {
        for request in proxy.requests() {
            let line = format!("{side} {} {} {}", request.method, request.status, request.path);
            lines.push((request.at, line));
        }
    }
    for gap in source.link_usage().map(|usage| usage.gaps).unwrap_or_default() {
        lines.push((gap.at, format!("LINK idle {:.4}", gap.length.as_secs_f64())));
    }
    lines.sort_by_key(|(at, _)| *at);
    let text: String = lines
        .iter()
        .map(|(at, line)| format!("{:.4} {line}\n", at.as_secs_f64()))
        .collect();
    let path = dir.join(format!("{name}.trace"));
    if let Err(error) = std::fs::write(&path, text) {
        eprintln!("bench: cannot write {}: {error}", path.display());
    }
}
