//! The human summary printed at the end of a pass.

use std::fmt::Write as _;
use std::time::Duration;

use ocisync_engine::{Outcome, Report};

/// One screen: a line per sync, then every failure.
pub fn render(report: &Report, duration: Duration) -> String {
    let mut text = String::new();
    for sync in &report.syncs {
        let single = Report {
            syncs: vec![sync.clone()],
        };
        let totals = single.totals();
        let _ = writeln!(
            text,
            "sync {} ({} -> {}): {} repositories, {} tags copied, {} up to date, {} skipped, {} failed, {} transferred",
            sync.name,
            sync.from,
            sync.to,
            totals.repositories,
            totals.tags_copied,
            totals.tags_up_to_date,
            totals.tags_skipped_other,
            totals.tags_failed + totals.repositories_failed,
            human_bytes(totals.bytes),
        );
        if let Some(error) = &sync.error {
            let _ = writeln!(text, "  FAILED sync: {error}");
        }
        for repo in &sync.repositories {
            if let Some(error) = &repo.error {
                let _ = writeln!(text, "  FAILED {}: {error}", repo.source);
            }
            for tag in &repo.tags {
                match &tag.outcome {
                    Outcome::Failed { error } => {
                        let _ = writeln!(text, "  FAILED {}:{}: {error}", repo.source, tag.tag);
                    }
                    Outcome::Skipped { reason }
                        if tag.outcome != Outcome::Copied
                            && !matches!(reason, ocisync_engine::SkipReason::UpToDate) =>
                    {
                        let _ = writeln!(
                            text,
                            "  skipped {}:{}: {}",
                            repo.source,
                            tag.tag,
                            serde_json::to_value(reason).unwrap_or_default().as_str().unwrap_or("")
                        );
                    }
                    _ => {}
                }
            }
        }
    }
    let _ = writeln!(text, "pass finished in {:.1}s", duration.as_secs_f64());
    text
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(40 * 1024 * 1024), "40.0 MiB");
    }
}
