//! Compiling content rules: what each takes (a catalog glob, named repositories or
//! exact images), tag patterns, semver ranges and platforms.

use std::path::Path;

use ocisync_engine::{whole_tag_regex, BackupTemplate, ContentRule, PlatformSpec, RepoGlob, RuleSource, TagFilter};

use super::durations::MIN_AGE;
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
        let base_dir = place.base_dir;
        let signatures = self.check_signatures(key, raw.signed_only, raw.verify.as_ref(), base_dir);
        let checked_source = self.check_rule_source(place, &raw);
        let mut compile = |field: &str, patterns: &[String]| -> Option<Vec<regex::Regex>> {
            let mut compiled = Some(Vec::new());
            for (index, pattern) in patterns.iter().enumerate() {
                match whole_tag_regex(pattern) {
                    Ok(regex) => {
                        if let Some(all) = compiled.as_mut() {
                            all.push(regex);
                        }
                    }
                    Err(error) => {
                        let reason = error
                            .to_string()
                            .lines()
                            .last()
                            .unwrap_or("")
                            .trim()
                            .trim_start_matches("error: ")
                            .to_owned();
                        self.problem(
                            format!("{key}.tags.{field}[{index}]"),
                            format!("invalid regex \"{pattern}\": {reason}"),
                        );
                        compiled = None;
                    }
                }
            }
            compiled
        };
        let include = compile("include", &raw.tags.include);
        let exclude = compile("exclude", &raw.tags.exclude);
        let immutable = compile("immutable", &raw.tags.immutable);
        if !raw.tags.immutable.is_empty() && (raw.signed_only || raw.verify.is_some()) {
            // A settled tag is never judged, so its signature tags would travel unjudged.
            self.problem(
                format!("{key}.tags.immutable"),
                "cannot be combined with signed_only or verify: every tag's signatures are judged on every pass".into(),
            );
        }
        let semver = match &raw.tags.semver {
            None => Some(None),
            Some(range) => match semver::VersionReq::parse(range) {
                Ok(range) => Some(Some(range)),
                Err(error) => {
                    self.problem(
                        format!("{key}.tags.semver"),
                        format!("invalid semver range \"{range}\": {error}"),
                    );
                    None
                }
            },
        };
        if raw.tags.latest == Some(0) {
            self.problem(
                format!("{key}.tags.latest"),
                "must be at least 1 (0 would keep no tag)".into(),
            );
        }
        let min_age = self.optional_duration_in(&format!("{key}.tags.min_age"), raw.tags.min_age.as_deref(), MIN_AGE);
        let min_age_valid = raw.tags.min_age.is_none() || min_age.is_some();
        let backup = match raw.backup.as_deref().map(BackupTemplate::parse) {
            None => Some(None),
            Some(Ok(template)) => Some(Some(template)),
            Some(Err(error)) => {
                let text = raw.backup.as_deref().unwrap_or_default();
                self.problem(format!("{key}.backup"), format!("\"{text}\" {error}"));
                None
            }
        };
        let mut platforms = Some(Vec::new());
        for (index, text) in raw.platforms.iter().enumerate() {
            match text.parse::<PlatformSpec>() {
                Ok(platform) => {
                    if let Some(all) = platforms.as_mut() {
                        all.push(platform);
                    }
                }
                Err(message) => {
                    self.problem(format!("{key}.platforms[{index}]"), message);
                    platforms = None;
                }
            }
        }
        if let Some(destination) = &raw.destination {
            let trimmed = destination.trim_end_matches('/');
            if trimmed.parse::<ocisync_oci::RepoName>().is_err() {
                self.problem(
                    format!("{key}.destination"),
                    format!("\"{destination}\" is not a repository name prefix"),
                );
            }
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
        let (source, images_file) = checked_source?;
        let rule = ContentRule {
            source: source?,
            tags: TagFilter {
                include: include?,
                exclude: exclude?,
                semver: semver?,
                latest: raw.tags.latest,
                immutable: immutable?,
                min_age: min_age_valid.then_some(min_age)?,
            },
            platforms: platforms?,
            strip_prefix: raw.strip_prefix,
            destination: raw.destination,
            signatures: signatures?,
            backup: backup?,
        };
        Some((rule, images_file))
    }

    /// Exactly one of `prefix`, `repositories` and `images` (with or without
    /// `images_file`). The outer `None`: the rule is unusable; the inner: a part of it
    /// is invalid (already recorded).
    fn check_rule_source(
        &mut self,
        place: &RulePlace<'_>,
        raw: &RawContentRule,
    ) -> Option<(Option<RuleSource>, Option<ImagesFile>)> {
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
            let glob = RepoGlob::new(pattern)
                .map_err(|error| {
                    self.problem(
                        format!("{key}.prefix"),
                        format!("invalid glob \"{pattern}\": {}", error.kind()),
                    )
                })
                .ok();
            return Some((glob.map(RuleSource::Catalog), None));
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
            return Some((valid.map(RuleSource::Named), None));
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
            return Some((Some(RuleSource::Images(inline)), None));
        };
        let file = ImagesFile {
            rule: place.index,
            path: place.base_dir.join(path),
            inline,
            docker_hub: place.docker_hub,
        };
        match file.read() {
            Ok(images) => Some((Some(RuleSource::Images(images)), Some(file))),
            Err(problems) => {
                self.problem(format!("{key}.images_file"), problems);
                Some((None, None))
            }
        }
    }
}
