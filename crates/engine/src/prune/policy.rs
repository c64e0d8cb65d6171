//! A content rule's `prune`, as written ([`PruneSpec`]) and as built ([`PrunePolicy`]).

use ocisync_oci::Tag;
use regex::Regex;

use crate::filter::{source_pattern, whole_tag_regex, RuleError, RulePart, RuleProblem};

/// A rule's `prune` as a config writes it; [`crate::ContentRule::new`] checks it.
#[derive(Debug, Clone, Default)]
pub struct PruneSpec {
    /// Must be `true` for anything to be deleted (a disabled prune is still checked).
    pub enabled: bool,
    /// The largest share of a repository's tags one pass may delete, in (0, 1];
    /// `None`: [`PrunePolicy::DEFAULT_MAX_FRACTION`].
    pub max_fraction: Option<f64>,
    /// Whole-tag regexes of tags never pruned.
    pub keep: Vec<String>,
}

/// A content rule's `prune`, built by the rule.
#[derive(Debug, Clone)]
pub struct PrunePolicy {
    /// In (0, 1].
    max_fraction: f64,
    /// Whole-tag regexes of tags never pruned (`keep`).
    keep: Vec<Regex>,
    /// Tags another feature of the rule writes at the destination (moved-tag backups):
    /// never pruned, whatever upstream lists.
    protected: Vec<Regex>,
}

impl PrunePolicy {
    /// `max_fraction` when the config does not say.
    pub const DEFAULT_MAX_FRACTION: f64 = 0.5;

    /// Checks `spec`: `Ok(None)` when it is valid but not enabled.
    pub(crate) fn compile(spec: &PruneSpec) -> Result<Option<PrunePolicy>, Vec<RuleProblem>> {
        let mut problems = Vec::new();
        let max_fraction = spec.max_fraction.unwrap_or(PrunePolicy::DEFAULT_MAX_FRACTION);
        if !(max_fraction > 0.0 && max_fraction <= 1.0) {
            let error = RuleError::MaxFraction { value: max_fraction };
            problems.push(RuleProblem::at(RulePart::PruneMaxFraction, error));
        }
        let mut keep = Vec::with_capacity(spec.keep.len());
        for (index, pattern) in spec.keep.iter().enumerate() {
            match whole_tag_regex(pattern) {
                Ok(regex) => keep.push(regex),
                Err(error) => problems.push(RuleProblem::at(RulePart::PruneKeep(index), error)),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(spec.enabled.then_some(PrunePolicy {
            max_fraction,
            keep,
            protected: Vec::new(),
        }))
    }

    /// The largest share of a repository's tags one pass may delete.
    pub fn max_fraction(&self) -> f64 {
        self.max_fraction
    }

    /// The `keep` patterns as written, for showing the effective config.
    pub fn keep(&self) -> Vec<String> {
        self.keep.iter().map(|regex| source_pattern(regex).to_owned()).collect()
    }

    /// Whether `tag` is never pruned: `keep`, or protected.
    pub fn protects(&self, tag: &Tag) -> bool {
        let name = tag.as_str();
        self.keep
            .iter()
            .chain(&self.protected)
            .any(|pattern| pattern.is_match(name))
    }

    /// Protects every tag `pattern` (a whole-tag regex) matches.
    pub(crate) fn protect(&mut self, pattern: Regex) {
        self.protected.push(pattern);
    }
}
