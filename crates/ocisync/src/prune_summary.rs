//! What the summary and `check`'s plan say about prunes: counts, and every tag or
//! repository a safeguard held back or a delete failed on. The deleted tags with their
//! digests are in the JSON report.

use std::fmt::Write as _;

use ocisync_engine::{PruneOutcome, PruneReport, PruneTotals, RepoReport, SyncReport};

/// The summary's prune lines of one sync (none when no rule prunes).
pub fn summary_lines(sync: &SyncReport) -> String {
    let mut text = String::new();
    let mut totals = PruneTotals::default();
    let pruning: Vec<(&RepoReport, &PruneReport)> = sync
        .repositories
        .iter()
        .filter_map(|repo| repo.prune.as_ref().map(|prune| (repo, prune)))
        .collect();
    if pruning.is_empty() {
        return text;
    }
    for (_, prune) in &pruning {
        totals.add(prune);
    }
    let _ = writeln!(
        text,
        "  prune: {} tags deleted, {} blocked, {} failed; {} repositories refused",
        totals.tags_pruned + totals.tags_would_prune,
        totals.tags_blocked,
        totals.tags_failed,
        totals.repositories_refused
    );
    for (repo, prune) in pruning {
        if let Some(refusal) = &prune.refused {
            let _ = writeln!(
                text,
                "  prune refused {} ({}): {refusal}; nothing deleted",
                repo.destination,
                refusal.as_str()
            );
        }
        if let Some(error) = &prune.error {
            let _ = writeln!(text, "  FAILED prune {}: {error}", repo.destination);
        }
        for tag in &prune.tags {
            match &tag.outcome {
                PruneOutcome::PruneBlocked { reason } => {
                    let _ = writeln!(text, "  prune-blocked {}:{}: {reason}", repo.destination, tag.tag);
                }
                PruneOutcome::Failed { error } => {
                    let _ = writeln!(text, "  FAILED prune {}:{}: {error}", repo.destination, tag.tag);
                }
                PruneOutcome::Pruned | PruneOutcome::WouldPrune { .. } => {}
            }
        }
    }
    text
}

/// `check`'s plan lines for one repository's prune: every tag that would be deleted.
pub fn plan_lines(repo: &RepoReport) -> String {
    let mut text = String::new();
    let Some(prune) = &repo.prune else {
        return text;
    };
    if let Some(refusal) = &prune.refused {
        let _ = writeln!(text, "    prune refused ({}): {refusal}", refusal.as_str());
    }
    if let Some(error) = &prune.error {
        let _ = writeln!(text, "    FAILED prune: {error}");
    }
    for tag in &prune.tags {
        let line = match &tag.outcome {
            PruneOutcome::WouldPrune { note: None } => format!("prune       {} ({})", tag.tag, tag.digest),
            PruneOutcome::WouldPrune { note: Some(note) } => {
                format!("prune       {} ({}): {note}", tag.tag, tag.digest)
            }
            PruneOutcome::Pruned => format!("pruned      {} ({})", tag.tag, tag.digest),
            PruneOutcome::PruneBlocked { reason } => format!("prune-blocked {}: {reason}", tag.tag),
            PruneOutcome::Failed { error } => format!("FAILED prune {}: {error}", tag.tag),
        };
        let _ = writeln!(text, "    {line}");
    }
    text
}
