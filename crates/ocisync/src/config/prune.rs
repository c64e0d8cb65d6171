//! A content rule's `prune`: `enabled`, `max_fraction` in (0, 1], `keep` regexes.
//!
//! Deletion is opt-in twice over: `prune:` must be written and say `enabled: true`.
//! An `images` rule names its images instead of reading the upstream tag list, so it
//! has nothing to compare the destination with: `prune` there is an error.

use ocisync_engine::{whole_tag_regex, PrunePolicy};

use super::raw::RawPrune;
use super::rules::regex_reason;
use super::Checker;

impl Checker {
    /// The policy of `raw` at `key` (`syncs[0].content[1]`): `Some(None)` when the rule
    /// does not prune, `None` (with problems recorded) when `prune` is invalid.
    pub(super) fn check_prune(
        &mut self,
        key: &str,
        raw: Option<&RawPrune>,
        names_images: bool,
    ) -> Option<Option<PrunePolicy>> {
        let Some(raw) = raw else {
            return Some(None);
        };
        let key = format!("{key}.prune");
        if names_images {
            self.problem(
                key,
                "does not apply to `images`, which read no upstream tag list to compare with; use `repositories:` to prune".into(),
            );
            return None;
        }
        let max_fraction = raw.max_fraction.unwrap_or(PrunePolicy::DEFAULT_MAX_FRACTION);
        let fraction_ok = max_fraction > 0.0 && max_fraction <= 1.0;
        if !fraction_ok {
            self.problem(
                format!("{key}.max_fraction"),
                format!("{max_fraction} is not in (0, 1]: the share of a repository's tags one pass may delete"),
            );
        }
        let mut keep = Some(Vec::new());
        for (index, pattern) in raw.keep.iter().enumerate() {
            match whole_tag_regex(pattern) {
                Ok(regex) => keep.iter_mut().for_each(|all| all.push(regex.clone())),
                Err(error) => {
                    self.problem(
                        format!("{key}.keep[{index}]"),
                        format!("invalid regex \"{pattern}\": {}", regex_reason(&error)),
                    );
                    keep = None;
                }
            }
        }
        let keep = keep?;
        if !fraction_ok {
            return None;
        }
        if !raw.enabled {
            return Some(None);
        }
        Some(Some(PrunePolicy {
            max_fraction,
            keep,
            ..PrunePolicy::default()
        }))
    }
}
