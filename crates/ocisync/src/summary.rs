//! What a pass tells people: the one-screen summary, and the plan `check` prints.

use std::fmt::Write as _;
use std::time::Duration;

use ocisync_engine::{Outcome, Report, RuleSourceKind, SyncReport, TagReport};

/// One screen: a line per sync, then every failure and every skip that is not a filter's.
pub fn render(report: &Report, duration: Duration) -> String {
    let mut text = String::new();
    for sync in &report.syncs {
        let totals = sync_totals(sync);
        let _ = writeln!(
            text,
            "sync {} ({} -> {}): {} repositories, {} tags copied, {} up to date, {} filtered out, {} skipped, {} failed, {} transferred",
            sync.name,
            sync.from,
            sync.to,
            totals.repositories,
            totals.tags_copied,
            totals.tags_up_to_date,
            totals.tags_filtered,
            totals.tags_skipped_other,
            totals.tags_failed + totals.repositories_failed,
            human_bytes(totals.bytes),
        );
        if let Some(error) = &sync.error {
            let _ = writeln!(text, "  FAILED sync: {error}");
        }
        for rule in sync.rules.iter().filter(|rule| rule.error.is_some()) {
            let error = rule.error.as_deref().unwrap_or_default();
            let _ = writeln!(text, "  FAILED rule {} ({}): {error}", rule.rule, rule.selector);
        }
        if !sync.endpoints.is_empty() {
            let requests = |role: &str| -> u64 {
                sync.endpoints
                    .iter()
                    .filter(|e| e.role == role)
                    .map(|e| e.requests)
                    .sum()
            };
            let _ = writeln!(
                text,
                "  requests: {} to the source, {} to the destination",
                requests("source"),
                requests("destination")
            );
        }
        // Only worth a line when something went wrong on the way.
        if sync.endpoints.iter().any(|e| e.retries + e.failovers > 0)
            || sync.endpoints.iter().filter(|e| e.role == "source").count() > 1
        {
            for endpoint in &sync.endpoints {
                let _ = writeln!(
                    text,
                    "  {} {}: {} calls served, {} requests, {} retries, {} failovers",
                    endpoint.role,
                    endpoint.url,
                    endpoint.served,
                    endpoint.requests,
                    endpoint.retries,
                    endpoint.failovers
                );
            }
        }
        for repo in &sync.repositories {
            if let Some(error) = &repo.error {
                let _ = writeln!(text, "  FAILED {}: {error}", repo.source);
            }
            for tag in &repo.tags {
                match &tag.outcome {
                    Outcome::Failed { error } => {
                        let _ = writeln!(text, "  FAILED {}{}: {error}", repo.source, tag.reference_suffix());
                    }
                    Outcome::Skipped { reason }
                        if !reason.is_filter() && *reason != ocisync_engine::SkipReason::UpToDate =>
                    {
                        let _ = writeln!(
                            text,
                            "  skipped {}{}: {}",
                            repo.source,
                            tag.reference_suffix(),
                            reason.as_str()
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

/// The dry run's plan: per sync and repository, every tag with what would happen to it.
pub fn render_plan(report: &Report) -> String {
    let mut text = String::new();
    for sync in &report.syncs {
        let totals = sync_totals(sync);
        let _ = writeln!(
            text,
            "sync {} ({} -> {}): {} repositories, {} tags would be copied ({}), {} up to date, {} filtered out, {} failed",
            sync.name,
            sync.from,
            sync.to,
            totals.repositories,
            totals.tags_would_copy,
            human_bytes(totals.bytes),
            totals.tags_up_to_date,
            totals.tags_filtered,
            totals.tags_failed + totals.repositories_failed,
        );
        if let Some(error) = &sync.error {
            let _ = writeln!(text, "  FAILED sync: {error}");
        }
        for rule in &sync.rules {
            let _ = writeln!(
                text,
                "  rule {} ({}, {}): {} repositories from the {}",
                rule.rule,
                rule.source.as_str(),
                rule.selector,
                rule.repositories,
                match rule.source {
                    RuleSourceKind::Catalog => "upstream catalog",
                    RuleSourceKind::Named => "names in the config",
                    RuleSourceKind::Images => "images named in the config",
                }
            );
            if let Some(error) = &rule.error {
                let _ = writeln!(text, "    FAILED: {error}");
            }
        }
        for repo in &sync.repositories {
            let _ = writeln!(text, "  {} -> {}", repo.source, repo.destination);
            if let Some(error) = &repo.error {
                let _ = writeln!(text, "    FAILED: {error}");
            }
            for tag in &repo.tags {
                let _ = writeln!(text, "    {}", plan_line(tag));
            }
        }
    }
    text
}

fn plan_line(tag: &TagReport) -> String {
    let name = match (&tag.tag, &tag.digest) {
        (Some(tag), _) => tag.to_string(),
        (None, Some(digest)) => format!("@{digest}"),
        (None, None) => String::new(),
    };
    let detail = tag.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
    match &tag.outcome {
        Outcome::WouldCopy => format!("copy        {} ({} to transfer)", name, human_bytes(tag.bytes)),
        Outcome::Copied => format!("copied      {}", name),
        Outcome::Skipped { reason } if reason.is_filter() => {
            format!("filtered    {}: {}{detail}", name, reason.as_str())
        }
        Outcome::Skipped { reason } => format!("skip        {}: {}{detail}", name, reason.as_str()),
        Outcome::Failed { error } => format!("FAILED      {}: {error}", name),
    }
}

fn sync_totals(sync: &SyncReport) -> ocisync_engine::Totals {
    Report {
        syncs: vec![sync.clone()],
    }
    .totals()
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
