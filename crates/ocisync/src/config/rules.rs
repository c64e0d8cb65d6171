//! Compiling content rules: what each takes (a catalog glob, named repositories or
//! exact images), tag patterns, semver ranges and platforms.

use std::path::Path;

use ocisync_engine::{ContentRule, RulePart, RuleSpec, SourceSpec, TagPatterns};

use super::images::{parse_image_reference, repository_name, ImagesFile};
use super::raw::RawContentRule;
use super::Checker;

/// Where a rule is: its key path and position, and what its sync reads from.
pub(super) struct RulePlace<'a> {
    pub key: &'a str,
    pub index: usize,
    pub base_dir: &'a Path,
    /// The sync's `from` is Docker Hub: one-component names mean `library/NAME`.
    pub docker_hub: bool,
}

impl Checker {
    /// Compiles one content rule (and its images file, re-read before every pass);
    /// `None` (with problems recorded) when any part is invalid.
    pub(super) fn check_rule(
        &mut self,
        place: &RulePlace<'_>,
        raw: RawContentRule,
    ) -> Option<(ContentRule, Option<ImagesFile>)> {
        let key = place.key;
        let signatures = self.check_signatures(key, raw.signed_only, raw.verify.as_ref(), place.base_dir);
        let checked_source = self.check_rule_source(place, &raw);
        if !raw.tags.immutable.is_empty() && (raw.signed_only || raw.verify.is_some()) {
            // A settled tag is never judged, so its signature tags would travel unjudged.
            self.problem(
                format!("{key}.tags.immutable"),
                "cannot be combined with signed_only or verify: every tag's signatures are judged on every pass".into(),
            );
        }
        if raw.prefix.is_none() && raw.repositories.is_none() {
            // Named images are copied as named: only `immutable` means anything there.
            let filters = [
                ("include", !raw.tags.include.is_empty()),
                ("exclude", !raw.tags.exclude.is_empty()),
                ("semver", raw.tags.semver.is_some()),
                ("latest", raw.tags.latest.is_some()),
            ];
            for (field, set) in filters {
                if set {
                    self.problem(
                        format!("{key}.tags.{field}"),
                        "does not apply to `images`, which are copied exactly as named; use `repositories:` to filter tags".into(),
                    );
                }
            }
        }
        let (source, images_file) = match checked_source {
            Some((Some(source), images_file)) => (Some(source), images_file),
            _ => (None, None),
        };
        // The engine checks the rest even when the source or signatures are unusable,
        // so that one load names every problem.
        let spec = RuleSpec {
            source: source.clone().unwrap_or(SourceSpec::Named(Vec::new())),
            tags: TagPatterns {
                include: raw.tags.include,
                exclude: raw.tags.exclude,
                immutable: raw.tags.immutable,
                semver: raw.tags.semver,
                latest: raw.tags.latest,
            },
            platforms: raw.platforms,
            strip_prefix: raw.strip_prefix,
            destination: raw.destination,
            signatures: signatures.clone().unwrap_or_default(),
        };
        let rule = match ContentRule::new(spec) {
            Ok(rule) => Some(rule),
            Err(problems) => {
                for problem in problems {
                    self.problem(rule_key(key, problem.part), problem.to_string());
                }
                None
            }
        };
        source?;
        signatures?;
        Some((rule?, images_file))
    }

    /// Exactly one of `prefix`, `repositories` and `images` (with or without
    /// `images_file`). The outer `None`: the rule is unusable; the inner: a part of it
    /// is invalid (already recorded).
    fn check_rule_source(
        &mut self,
        place: &RulePlace<'_>,
        raw: &RawContentRule,
    ) -> Option<(Option<SourceSpec>, Option<ImagesFile>)> {
        let key = place.key;
        let has_images = raw.images.is_some() || raw.images_file.is_some();
        let kinds = [
            ("prefix", raw.prefix.is_some()),
            ("repositories", raw.repositories.is_some()),
            ("images", has_images),
        ];
        let given: Vec<&str> = kinds.iter().filter(|(_, set)| *set).map(|(name, _)| *name).collect();
        if given.len() != 1 {
            let message = if given.is_empty() {
                "takes one of prefix (a glob on the catalog), repositories or images; none is set".to_owned()
            } else {
                format!(
                    "takes one of prefix, repositories or images, not {}",
                    given.join(" and ")
                )
            };
            self.problem(key.to_owned(), message);
            return None;
        }
        if let Some(pattern) = &raw.prefix {
            // The engine compiles the glob (see `ContentRule::new`).
            return Some((Some(SourceSpec::Prefix(pattern.clone())), None));
        }
        if let Some(names) = &raw.repositories {
            if names.is_empty() {
                self.problem(
                    format!("{key}.repositories"),
                    "is empty: name at least one repository".into(),
                );
                return Some((None, None));
            }
            let mut valid = Some(Vec::new());
            for (index, name) in names.iter().enumerate() {
                match repository_name(name, place.docker_hub) {
                    Ok(name) => {
                        if let Some(all) = valid.as_mut() {
                            all.push(name);
                        }
                    }
                    Err(error) => {
                        self.problem(
                            format!("{key}.repositories[{index}]"),
                            format!("invalid repository name \"{name}\": {error}"),
                        );
                        valid = None;
                    }
                }
            }
            return Some((valid.map(SourceSpec::Named), None));
        }
        let mut inline = Some(Vec::new());
        for (index, text) in raw.images.iter().flatten().enumerate() {
            match parse_image_reference(text, place.docker_hub) {
                Ok(image) => {
                    if let Some(all) = inline.as_mut() {
                        all.push(image);
                    }
                }
                Err(problem) => {
                    self.problem(format!("{key}.images[{index}]"), problem);
                    inline = None;
                }
            }
        }
        let inline = inline?;
        let Some(path) = &raw.images_file else {
            if inline.is_empty() {
                self.problem(format!("{key}.images"), "is empty: name at least one image".into());
                return Some((None, None));
            }
            return Some((Some(SourceSpec::Images(inline)), None));
        };
        let file = ImagesFile {
            rule: place.index,
            path: place.base_dir.join(path),
            inline,
            docker_hub: place.docker_hub,
        };
        match file.read() {
            Ok(images) => Some((Some(SourceSpec::Images(images)), Some(file))),
            Err(problems) => {
                self.problem(format!("{key}.images_file"), problems);
                Some((None, None))
            }
        }
    }
}

/// The key path of one part of the rule at `key`.
fn rule_key(key: &str, part: RulePart) -> String {
    match part {
        RulePart::Prefix => format!("{key}.prefix"),
        RulePart::Include(index) => format!("{key}.tags.include[{index}]"),
        RulePart::Exclude(index) => format!("{key}.tags.exclude[{index}]"),
        RulePart::Immutable(index) => format!("{key}.tags.immutable[{index}]"),
        RulePart::Semver => format!("{key}.tags.semver"),
        RulePart::Latest => format!("{key}.tags.latest"),
        RulePart::Platform(index) => format!("{key}.platforms[{index}]"),
        RulePart::Destination => format!("{key}.destination"),
    }
}
