//! Compiling content rules: globs, tag patterns, semver ranges and platforms.

use std::path::Path;

use ocisync_engine::{whole_tag_regex, ContentRule, PlatformSpec, TagFilter};

use super::raw::RawContentRule;
use super::Checker;

impl Checker {
    /// Compiles one content rule; `None` (with problems recorded) when any part is invalid.
    pub(super) fn check_rule(&mut self, key: &str, raw: RawContentRule, base_dir: &Path) -> Option<ContentRule> {
        let signatures = self.check_signatures(key, raw.signed_only, raw.verify.as_ref(), base_dir);
        let prefix = globset::GlobBuilder::new(&raw.prefix)
            .literal_separator(true)
            .build()
            .map(|glob| glob.compile_matcher())
            .map_err(|error| {
                self.problem(
                    format!("{key}.prefix"),
                    format!("invalid glob \"{}\": {}", raw.prefix, error.kind()),
                )
            })
            .ok();
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
        Some(ContentRule {
            prefix: prefix?,
            tags: TagFilter {
                include: include?,
                exclude: exclude?,
                semver: semver?,
                latest: raw.tags.latest,
                immutable: immutable?,
            },
            platforms: platforms?,
            strip_prefix: raw.strip_prefix,
            destination: raw.destination,
            signatures: signatures?,
        })
    }
}
