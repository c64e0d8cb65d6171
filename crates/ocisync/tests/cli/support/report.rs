//! `Report`: a JSON report as `--report` writes it, and the questions tests ask of it.

use std::collections::BTreeMap;
use std::path::Path;

use super::read_json;

/// A JSON report as `--report` writes it; indexes like the JSON (`report["totals"]`).
#[derive(Debug)]
pub struct Report(serde_json::Value);

impl Report {
    pub fn read(path: &Path) -> Report {
        Report(read_json(path))
    }

    /// A report of one of this report's syncs alone.
    pub fn sync(&self, index: usize) -> Report {
        Report(serde_json::json!({ "syncs": [self["syncs"][index].clone()] }))
    }

    /// Every tag entry: (source repository, entry).
    pub fn tags(&self) -> Vec<(String, serde_json::Value)> {
        let mut entries = Vec::new();
        for sync in self["syncs"].as_array().unwrap() {
            for repo in sync["repositories"].as_array().unwrap() {
                for tag in repo["tags"].as_array().unwrap() {
                    entries.push((repo["source"].as_str().unwrap().to_owned(), tag.clone()));
                }
            }
        }
        entries
    }

    /// The entry of `repo:tag`; fails the test when there is none.
    pub fn tag(&self, repo: &str, tag: &str) -> serde_json::Value {
        self.tags()
            .into_iter()
            .find(|(source, entry)| source == repo && entry["tag"] == tag)
            .unwrap_or_else(|| panic!("{repo}:{tag} not reported"))
            .1
    }

    /// What became of `repo:tag`: its outcome (`copied`), a skipped tag's with its
    /// reason (`skipped:unsigned`).
    pub fn outcome(&self, repo: &str, tag: &str) -> String {
        let entry = self.tag(repo, tag);
        let outcome = entry["outcome"].as_str().unwrap();
        match entry["reason"].as_str() {
            Some(reason) => format!("{outcome}:{reason}"),
            None => outcome.to_owned(),
        }
    }

    /// The tag entries whose outcome or skip reason is `what` (`copied`, `up-to-date`).
    pub fn tags_that(&self, what: &str) -> Vec<serde_json::Value> {
        self.tags()
            .into_iter()
            .map(|(_, entry)| entry)
            .filter(|entry| entry["outcome"] == what || entry["reason"] == what)
            .collect()
    }

    /// How many tags each skip reason, or else outcome, has.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (_, entry) in self.tags() {
            let key = entry["reason"].as_str().or(entry["outcome"].as_str()).unwrap();
            *counts.entry(key.to_owned()).or_default() += 1;
        }
        counts
    }

    /// Retries over every endpoint (registry url) of every sync.
    pub fn endpoint_retries(&self) -> u64 {
        let syncs = self["syncs"].as_array().unwrap();
        let endpoints = syncs.iter().flat_map(|sync| sync["endpoints"].as_array().unwrap());
        endpoints.map(|endpoint| endpoint["retries"].as_u64().unwrap()).sum()
    }

    /// Whether the pass failed, by the rule the exit code follows (the engine's
    /// `Report::has_failures`): a failed sync, rule, repository or tag, a used-up pull
    /// quota, a pass past its deadline, or a prune's failed delete.
    pub fn has_failures(&self) -> bool {
        let totals = &self["totals"];
        let prune = &totals["prune"];
        let prune_failures = ["tags_failed", "repositories_failed"]
            .iter()
            .map(|key| {
                prune[key]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no totals.prune.{key} in {totals}"))
            })
            .sum::<u64>();
        let failing = [
            "syncs_failed",
            "rules_failed",
            "repositories_failed",
            "tags_failed",
            "tags_rate_limited",
            "syncs_past_deadline",
        ];
        failing
            .iter()
            .map(|key| {
                totals[key]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no totals.{key} in {totals}"))
            })
            .sum::<u64>()
            + prune_failures
            > 0
    }
}

impl std::ops::Deref for Report {
    type Target = serde_json::Value;

    fn deref(&self) -> &serde_json::Value {
        &self.0
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, formatter)
    }
}
