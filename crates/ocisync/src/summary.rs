//! What a pass tells people: the one-screen summary, and the plan `check` prints.

use std::fmt::Write as _;
use std::time::Duration;

use ocisync_engine::{
    format_time, Outcome, RateLimitUse, Report, RuleSourceKind, SkipReason, StopCause, SyncReport, TagReport, Totals,
};

/// One screen: a line per sync, then every failure and every skip that is not a filter's.
pub fn render(report: &Report, duration: Duration) -> String {
    let mut text = String::new();
    for sync in &report.syncs {
        let totals = sync_totals(sync);
        let counts = format!(
            "{} tags copied, {} up to date, {} filtered out, {} skipped, {} failed, {} transferred",
            totals.tags_copied,
            totals.tags_up_to_date,
            totals.tags_filtered,
            totals.tags_skipped_other,
            totals.tags_failed + totals.repositories_failed,
            human_bytes(totals.work.bytes),
        );
        write_sync_heading(&mut text, sync, &totals, &counts);
        for rule in sync.rules.iter().filter(|rule| rule.error.is_some()) {
            let error = rule.error.as_deref().unwrap_or_default();
            let _ = writeln!(text, "  FAILED rule {} ({}): {error}", rule.rule, rule.selector);
        }
        if !sync.urls.is_empty() {
            let requests =
                |role: &str| -> u64 { sync.urls.iter().filter(|e| e.role == role).map(|e| e.requests).sum() };
            let _ = writeln!(
                text,
                "  requests: {} to the source, {} to the destination",
                requests("source"),
                requests("destination")
            );
        }
        for rate_limit in &sync.rate_limits {
            let _ = writeln!(text, "  {}", quota_line(rate_limit, sync));
        }
        // Only worth a line when something went wrong on the way.
        if sync.urls.iter().any(|e| e.retries + e.failovers > 0)
            || sync.urls.iter().filter(|e| e.role == "source").count() > 1
        {
            for url in &sync.urls {
                let _ = writeln!(
                    text,
                    "  {} {}: {} calls served, {} requests, {} retries, {} failovers",
                    url.role, url.url, url.served, url.requests, url.retries, url.failovers
                );
            }
        }
        for repo in &sync.repositories {
            if let Some(error) = &repo.error {
                let _ = writeln!(text, "  FAILED {}: {error}", repo.source);
            }
            for tag in &repo.tags {
                match &tag.outcome {
                    Outcome::Failed { error, .. } => {
                        let _ = writeln!(text, "  FAILED {}{}: {error}", repo.source, tag.reference_suffix());
                    }
                    Outcome::Skipped { reason } if !reason.is_filter() && *reason != SkipReason::UpToDate => {
                        let eligible = match &tag.lifecycle.eligible_at {
                            Some(time) => format!(" (eligible at {})", format_time(time)),
                            None => String::new(),
                        };
                        let _ = writeln!(
                            text,
                            "  skipped {}{}: {}{eligible}",
                            repo.source,
                            tag.reference_suffix(),
                            reason.as_str()
                        );
                    }
                    Outcome::Copied => {
                        if let Some(backup) = &tag.lifecycle.backup {
                            let _ = writeln!(
                                text,
                                "  backed up {}{} (was {}) as {}",
                                repo.destination,
                                tag.reference_suffix(),
                                backup.digest,
                                backup.name
                            );
                        }
                    }
                    _ => {}
                }
            }
        }
        text.push_str(&crate::prune_summary::summary_lines(sync));
    }
    let _ = writeln!(text, "pass finished in {:.1}s", duration.as_secs_f64());
    text
}

/// `pull quota of source URL: 3 of 100 left (window 6h), reserve 3: 12 tags left for a later pass`.
fn quota_line(rate_limit: &RateLimitUse, sync: &SyncReport) -> String {
    let mut line = format!("pull quota of {} {}: ", rate_limit.role, rate_limit.url);
    if rate_limit.exhausted {
        line.push_str("used up (429 TOOMANYREQUESTS)");
    } else {
        let _ = write!(line, "{}", rate_limit.remaining);
        if let Some(limit) = rate_limit.limit {
            let _ = write!(line, " of {limit}");
        }
        line.push_str(" left");
    }
    if let Some(seconds) = rate_limit.window_seconds {
        let window = humantime::format_duration(Duration::from_secs(seconds));
        let _ = write!(line, " (window {window})");
    }
    if let Some(reserve) = rate_limit.reserve {
        let _ = write!(line, ", reserve {reserve}");
    }
    // Which URL stopped which tag is in each tag's detail; the count is the sync's.
    let left_behind = if rate_limit.exhausted {
        skipped_for(sync, SkipReason::RateLimited)
    } else if rate_limit.reserve.is_some() {
        skipped_for(sync, SkipReason::RateLimitReserve)
    } else {
        0
    };
    if left_behind > 0 {
        let _ = write!(line, ": {left_behind} tags left for a later pass");
        if rate_limit.exhausted {
            line.push_str(" (the pass fails)");
        }
    }
    line
}

/// Why a pass ended early, and what it left: `STOPPED: the pass ran past its
/// max_pass_duration; 3 images left for the next pass (deadline)`.
fn stopped_line(sync: &SyncReport) -> Option<String> {
    let cause = sync.stopped?;
    let left = skipped_for(sync, cause.skip_reason());
    let reason = cause.skip_reason().as_str();
    Some(match cause {
        StopCause::Deadline => {
            format!("STOPPED: the pass ran past its max_pass_duration; {left} images left for the next pass ({reason})")
        }
        StopCause::Shutdown => format!("stopped: shutting down; {left} images left for the next pass ({reason})"),
    })
}

/// The dry run's plan: per sync and repository, every tag with what would happen to it.
pub fn render_plan(report: &Report) -> String {
    let mut text = String::new();
    for sync in &report.syncs {
        let totals = sync_totals(sync);
        let counts = format!(
            "{} tags would be copied ({}), {} up to date, {} filtered out, {} failed",
            totals.tags_would_copy,
            human_bytes(totals.work.bytes),
            totals.tags_up_to_date,
            totals.tags_filtered,
            totals.tags_failed + totals.repositories_failed,
        );
        write_sync_heading(&mut text, sync, &totals, &counts);
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
            text.push_str(&crate::prune_summary::plan_lines(repo));
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
        Outcome::WouldCopy => {
            let backup = match &tag.lifecycle.backup {
                Some(backup) => format!(", back up {} as {}", backup.digest, backup.name),
                None => String::new(),
            };
            format!(
                "copy        {} ({} to transfer{backup})",
                name,
                human_bytes(tag.work.bytes)
            )
        }
        Outcome::Copied => format!("copied      {}", name),
        Outcome::Skipped { reason } if reason.is_filter() => {
            format!("filtered    {}: {}{detail}", name, reason.as_str())
        }
        Outcome::Skipped { reason } => format!("skip        {}: {}{detail}", name, reason.as_str()),
        Outcome::Failed { error, .. } => format!("FAILED      {}: {error}", name),
    }
}

/// Tags of `sync` skipped for `reason`.
fn skipped_for(sync: &SyncReport, reason: SkipReason) -> usize {
    sync.repositories
        .iter()
        .flat_map(|repo| &repo.tags)
        .filter(|tag| tag.outcome == Outcome::Skipped { reason })
        .count()
}

/// How a sync opens in the summary and in the plan alike: its name, its registries and
/// its repositories, then `counts` (which differ), then why it failed or stopped, if it did.
fn write_sync_heading(text: &mut String, sync: &SyncReport, totals: &Totals, counts: &str) {
    let _ = writeln!(
        text,
        "sync {} ({} -> {}): {} repositories, {counts}",
        sync.name, sync.from, sync.to, totals.repositories
    );
    if let Some(error) = &sync.error {
        let _ = writeln!(text, "  FAILED sync: {error}");
    }
    if let Some(line) = stopped_line(sync) {
        let _ = writeln!(text, "  {line}");
    }
}

fn sync_totals(sync: &SyncReport) -> Totals {
    Report {
        syncs: vec![sync.clone()],
    }
    .totals()
}

/// `1.5 KiB`; `u64::MAX` is what byte counts saturate at, so it reads "at least".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes == u64::MAX {
        return "at least 16.0 EiB".to_owned();
    }
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
    use super::*;
    use crate::test_reports::{alpine_sync, skipped, skipped_in_order};

    fn sync_with(rate_limits: Vec<RateLimitUse>, reasons: &[SkipReason]) -> SyncReport {
        SyncReport {
            rate_limits,
            ..alpine_sync(skipped_in_order(reasons))
        }
    }

    fn hub(remaining: u64, reserve: Option<u64>, exhausted: bool) -> RateLimitUse {
        RateLimitUse {
            role: "source".into(),
            url: "https://registry-1.docker.io".into(),
            limit: Some(100),
            remaining,
            window_seconds: Some(21600),
            reserve,
            exhausted,
        }
    }

    #[test]
    fn the_summary_names_the_registry_and_what_its_quota_left() {
        use SkipReason::{RateLimitReserve, RateLimited, UpToDate};
        let cases = [
            (
                sync_with(vec![hub(76, None, false)], &[UpToDate]),
                "  pull quota of source https://registry-1.docker.io: 76 of 100 left (window 6h)\n",
            ),
            (
                sync_with(vec![hub(10, Some(10), false)], &[UpToDate, RateLimitReserve, RateLimitReserve]),
                "  pull quota of source https://registry-1.docker.io: 10 of 100 left (window 6h), reserve 10: 2 tags left for a later pass\n",
            ),
            (
                sync_with(vec![hub(0, None, true)], &[RateLimited]),
                "  pull quota of source https://registry-1.docker.io: used up (429 TOOMANYREQUESTS) (window 6h): 1 tags left for a later pass (the pass fails)\n",
            ),
        ];
        for (sync, expected) in cases {
            let text = render(&Report { syncs: vec![sync] }, Duration::ZERO);
            assert!(text.contains(expected), "expected {expected:?} in\n{text}");
        }
        let quiet = render(
            &Report {
                syncs: vec![sync_with(Vec::new(), &[UpToDate])],
            },
            Duration::ZERO,
        );
        assert!(!quiet.contains("pull quota"), "{quiet}");
    }

    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(40 * 1024 * 1024), "40.0 MiB");
        assert_eq!(human_bytes(1 << 63), "8.0 EiB");
        assert_eq!(human_bytes(u64::MAX), "at least 16.0 EiB", "a saturated total");
    }

    #[test]
    fn a_plan_with_sizes_that_would_wrap_says_how_large_they_are() {
        let mut sync = sync_with(Vec::new(), &[]);
        let mut huge = skipped("1", SkipReason::UpToDate);
        huge.outcome = Outcome::WouldCopy;
        huge.work.bytes = u64::MAX;
        let mut big = huge.clone();
        big.tag = Some("2".parse().unwrap());
        big.work.bytes = 1 << 63;
        sync.repositories[0].tags = vec![huge, big];
        let plan = render_plan(&Report { syncs: vec![sync] });
        assert!(plan.contains("2 tags would be copied (at least 16.0 EiB)"), "{plan}");
        assert!(plan.contains("copy        1 (at least 16.0 EiB to transfer)"), "{plan}");
        assert!(plan.contains("copy        2 (8.0 EiB to transfer)"), "{plan}");
    }

    #[test]
    fn a_young_tag_says_when_it_is_eligible_and_a_moved_one_its_backup() {
        let mut sync = sync_with(Vec::new(), &[SkipReason::TooYoung, SkipReason::UpToDate]);
        let eligible_at = chrono::DateTime::parse_from_rfc3339("2024-05-04T12:00:00Z").unwrap();
        sync.repositories[0].tags[0].lifecycle.eligible_at = Some(eligible_at.with_timezone(&chrono::Utc));
        let moved = &mut sync.repositories[0].tags[1];
        moved.outcome = Outcome::Copied;
        let old: ocisync_oci::Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        moved.lifecycle.backup = Some(ocisync_engine::TagBackup {
            name: "t1-20240501".parse().unwrap(),
            digest: old.clone(),
        });
        let text = render(
            &Report {
                syncs: vec![sync.clone()],
            },
            Duration::ZERO,
        );
        assert!(
            text.contains("  skipped library/alpine:t0: too-young (eligible at 2024-05-04T12:00:00Z)\n"),
            "{text}"
        );
        assert!(
            text.contains(&format!("  backed up library/alpine:t1 (was {old}) as t1-20240501\n")),
            "{text}"
        );
        sync.repositories[0].tags[1].outcome = Outcome::WouldCopy;
        let plan = render_plan(&Report { syncs: vec![sync] });
        assert!(
            plan.contains(&format!(
                "copy        t1 (0 B to transfer, back up {old} as t1-20240501)"
            )),
            "{plan}"
        );
    }

    #[test]
    fn a_pass_stopped_at_its_deadline_says_so_and_what_it_left() {
        let mut sync = sync_with(
            Vec::new(),
            &[SkipReason::UpToDate, SkipReason::Deadline, SkipReason::Deadline],
        );
        sync.stopped = Some(StopCause::Deadline);
        let text = render(&Report { syncs: vec![sync] }, Duration::ZERO);
        assert!(
            text.contains(
                "  STOPPED: the pass ran past its max_pass_duration; 2 images left for the next pass (deadline)\n"
            ),
            "{text}"
        );
        assert!(text.contains("  skipped library/alpine:t1: deadline\n"), "{text}");
    }
}
