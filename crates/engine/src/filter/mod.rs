//! Content rules: which repositories a sync takes, under which names, and which tags.
//!
//! Rules are built here from what a config says ([`ContentRule::new`]), so a bad
//! pattern is a config error, named by its [`RulePart`], and never a skip at run time.

mod platforms;
mod rule_error;
mod tags;

use globset::{GlobBuilder, GlobMatcher};
use ocisync_oci::{Reference, RepoName};
use serde::Serialize;

use crate::lifecycle::BackupTemplate;
use crate::prune::{PrunePolicy, PruneSpec};
use crate::signatures::SignaturePolicy;

pub(crate) use platforms::select_platforms;
pub use platforms::PlatformSpec;
pub use rule_error::{RuleError, RulePart, RuleProblem};
pub(crate) use tags::{source_pattern, whole_tag_regex, Dropped};
pub use tags::{TagFilter, TagPatterns};

/// One content rule. A repository is synced by the first rule that takes it.
#[derive(Debug, Clone)]
pub struct ContentRule {
    pub(crate) source: RuleSource,
    pub(crate) tags: TagFilter,
    pub(crate) platforms: Vec<PlatformSpec>,
    pub(crate) strip_prefix: Option<String>,
    pub(crate) destination: Option<String>,
    pub(crate) signatures: SignaturePolicy,
    pub(crate) prune: Option<PrunePolicy>,
    pub(crate) backup: Option<BackupTemplate>,
}

/// A content rule as a config writes it: [`ContentRule::new`] builds the rule.
#[derive(Debug, Clone)]
pub struct RuleSpec {
    /// Where the rule's repositories come from.
    pub source: SourceSpec,
    /// Which tags it keeps.
    pub tags: TagPatterns,
    /// Platforms kept from multi-arch indexes (`linux/arm64`); empty copies indexes
    /// whole and byte-exact.
    pub platforms: Vec<String>,
    /// Removed from the source name before `destination` is prepended.
    pub strip_prefix: Option<String>,
    /// Prefix of destination names.
    pub destination: Option<String>,
    /// Which images are copied at all: signed ones only, or verified ones only.
    pub signatures: SignaturePolicy,
    /// Delete destination tags the rule no longer selects upstream (not for `images`).
    pub prune: Option<PruneSpec>,
    /// Before a tag moves at the destination, its old manifest is tagged with this
    /// name template (`{tag}`, `{date}`, `{digest}`).
    pub backup: Option<String>,
}

impl RuleSpec {
    /// A rule taking `source`'s repositories whole: every tag and platform, the same
    /// names, no signature check, no prune, no backups.
    pub fn new(source: SourceSpec) -> RuleSpec {
        RuleSpec {
            source,
            tags: TagPatterns::default(),
            platforms: Vec::new(),
            strip_prefix: None,
            destination: None,
            signatures: SignaturePolicy::default(),
            prune: None,
            backup: None,
        }
    }
}

/// Where a rule's repositories come from, as written.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    /// The upstream catalog's repositories whose name matches this glob, in which `*`
    /// stays within one path component and `**` crosses them.
    Prefix(String),
    /// Exactly these repositories.
    Named(Vec<RepoName>),
    /// Exactly these images.
    Images(Vec<ImageReference>),
}

/// Where a rule's repositories come from. Most public registries refuse their catalog,
/// so only `Catalog` asks for it.
#[derive(Debug, Clone)]
pub enum RuleSource {
    /// The upstream catalog's repositories whose name matches the glob.
    Catalog(RepoGlob),
    /// Exactly these repositories; their tags are listed and filtered.
    Named(Vec<RepoName>),
    /// Exactly these images: no catalog and no tag list.
    Images(Vec<ImageReference>),
}

/// The kind of a [`RuleSource`], for reports: where a rule's repositories came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleSourceKind {
    /// A glob on the upstream catalog.
    Catalog,
    /// Named repositories.
    Named,
    /// Named images.
    Images,
}

impl RuleSourceKind {
    /// The name used in reports: `catalog`, `named` or `images`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleSourceKind::Catalog => "catalog",
            RuleSourceKind::Named => "named",
            RuleSourceKind::Images => "images",
        }
    }
}

impl RuleSource {
    /// Which of the three it is.
    pub fn kind(&self) -> RuleSourceKind {
        match self {
            RuleSource::Catalog(_) => RuleSourceKind::Catalog,
            RuleSource::Named(_) => RuleSourceKind::Named,
            RuleSource::Images(_) => RuleSourceKind::Images,
        }
    }

    /// What the rule names, for reports: `prefix team/*`, `3 repositories`, `2 images`.
    pub fn describe(&self) -> String {
        match self {
            RuleSource::Catalog(glob) => format!("prefix {}", glob.as_str()),
            RuleSource::Named(names) => plural(names.len(), "repository", "repositories"),
            RuleSource::Images(images) => plural(images.len(), "image", "images"),
        }
    }
}

fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// One exact image of an `images` rule: a repository and a tag or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// The repository, at the source.
    pub repository: RepoName,
    /// A tag or a digest in it.
    pub reference: Reference,
}

/// A glob on repository names in which `*` stays within one path component and `**`
/// crosses them, as the config documents.
#[derive(Debug, Clone)]
pub struct RepoGlob(GlobMatcher);

impl RepoGlob {
    /// The one place a glob's `*` is kept from crossing `/`.
    pub(crate) fn new(pattern: &str) -> Result<RepoGlob, RuleError> {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|source| RuleError::Glob {
                pattern: pattern.to_owned(),
                source,
            })?;
        Ok(RepoGlob(glob.compile_matcher()))
    }

    /// Whether the glob matches the whole name.
    pub fn is_match(&self, name: &RepoName) -> bool {
        self.0.is_match(name.as_str())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.0.glob().glob()
    }
}

impl ContentRule {
    /// Builds a rule: its glob, tag patterns, platforms and destination prefix checked.
    /// Every problem is returned, each with the part of the rule it is about.
    pub fn new(spec: RuleSpec) -> Result<ContentRule, Vec<RuleProblem>> {
        let mut problems = Vec::new();
        let source = match spec.source {
            SourceSpec::Prefix(pattern) => RepoGlob::new(&pattern)
                .map(RuleSource::Catalog)
                .map_err(|error| problems.push(RuleProblem::at(RulePart::Prefix, error)))
                .ok(),
            SourceSpec::Named(names) => Some(RuleSource::Named(names)),
            SourceSpec::Images(images) => Some(RuleSource::Images(images)),
        };
        let tags = TagFilter::compile(&spec.tags)
            .map_err(|tag_problems| problems.extend(tag_problems))
            .ok();
        let mut platforms = Vec::with_capacity(spec.platforms.len());
        for (index, text) in spec.platforms.iter().enumerate() {
            match text.parse::<PlatformSpec>() {
                Ok(platform) => platforms.push(platform),
                Err(error) => problems.push(RuleProblem::at(RulePart::Platform(index), error)),
            }
        }
        if let Some(prefix) = &spec.destination {
            if prefix.trim_end_matches('/').parse::<RepoName>().is_err() {
                let error = RuleError::DestinationPrefix { prefix: prefix.clone() };
                problems.push(RuleProblem::at(RulePart::Destination, error));
            }
        }
        let mut prune = None;
        if let Some(spec) = &spec.prune {
            if matches!(source, Some(RuleSource::Images(_))) {
                problems.push(RuleProblem::at(RulePart::Prune, RuleError::PruneImages));
            }
            match PrunePolicy::compile(spec) {
                Ok(policy) => prune = policy,
                Err(prune_problems) => problems.extend(prune_problems),
            }
        }
        let backup = match spec.backup.as_deref().map(BackupTemplate::parse) {
            None => None,
            Some(Ok(template)) => Some(template),
            Some(Err(source)) => {
                let template = spec.backup.clone().unwrap_or_default();
                problems.push(RuleProblem::at(
                    RulePart::Backup,
                    RuleError::Backup { template, source },
                ));
                None
            }
        };
        if let (Some(policy), Some(template)) = (prune.as_mut(), &backup) {
            // A backup is a record the rule made, not an upstream tag that went away.
            policy.protect(template.names().clone());
        }
        match (source, tags) {
            (Some(source), Some(tags)) if problems.is_empty() => Ok(ContentRule {
                source,
                tags,
                platforms,
                strip_prefix: spec.strip_prefix,
                destination: spec.destination,
                signatures: spec.signatures,
                prune,
                backup,
            }),
            _ => Err(problems),
        }
    }

    /// Where the rule's repositories come from.
    pub fn source(&self) -> &RuleSource {
        &self.source
    }

    /// Which tags it keeps.
    pub fn tags(&self) -> &TagFilter {
        &self.tags
    }

    /// Platforms kept from multi-arch indexes; empty copies indexes whole.
    pub fn platforms(&self) -> &[PlatformSpec] {
        &self.platforms
    }

    /// Removed from the source name before the destination prefix is prepended.
    pub fn strip_prefix(&self) -> Option<&str> {
        self.strip_prefix.as_deref()
    }

    /// Prefix of destination names.
    pub fn destination(&self) -> Option<&str> {
        self.destination.as_deref()
    }

    /// What the rule demands of signatures.
    pub fn signatures(&self) -> &SignaturePolicy {
        &self.signatures
    }

    /// What the rule's `prune` deletes and keeps; `None`: it deletes nothing.
    pub fn prune(&self) -> Option<&PrunePolicy> {
        self.prune.as_ref()
    }

    /// The backup name template of tags that move at the destination.
    pub fn backup(&self) -> Option<&BackupTemplate> {
        self.backup.as_ref()
    }

    /// Replaces an `images` rule's images (its images file, read again before a pass).
    pub fn set_images(&mut self, images: Vec<ImageReference>) {
        self.source = RuleSource::Images(images);
    }

    /// Whether this rule takes `source` (by glob, by name, or as one of its images).
    pub fn takes(&self, source: &RepoName) -> bool {
        match &self.source {
            RuleSource::Catalog(glob) => glob.is_match(source),
            RuleSource::Named(names) => names.contains(source),
            RuleSource::Images(images) => images.iter().any(|image| &image.repository == source),
        }
    }

    /// The destination name of `source`, if this rule takes it.
    pub fn destination_for(&self, source: &RepoName) -> Option<Result<RepoName, String>> {
        if !self.takes(source) {
            return None;
        }
        Some(self.map_name(source))
    }

    /// `source` under this rule's `strip_prefix` and `destination`.
    pub fn map_name(&self, source: &RepoName) -> Result<RepoName, String> {
        let mut name = source.as_str();
        if let Some(strip) = &self.strip_prefix {
            name = name.strip_prefix(strip.as_str()).unwrap_or(name);
        }
        let mapped = match &self.destination {
            Some(prefix) => format!("{}/{}", prefix.trim_end_matches('/'), name),
            None => name.to_owned(),
        };
        mapped.parse::<RepoName>().map_err(|error| error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(prefix: &str, strip: Option<&str>, destination: Option<&str>) -> ContentRule {
        ContentRule {
            source: RuleSource::Catalog(RepoGlob::new(prefix).unwrap()),
            tags: TagFilter::default(),
            platforms: Vec::new(),
            strip_prefix: strip.map(str::to_owned),
            destination: destination.map(str::to_owned),
            signatures: SignaturePolicy::default(),
            prune: None,
            backup: None,
        }
    }

    #[test]
    fn every_problem_of_a_rule_is_named_by_its_part() {
        let bad = RuleSpec {
            tags: TagPatterns {
                include: vec!["ok".into(), "v[".into()],
                exclude: vec!["(".into()],
                immutable: vec!["+".into()],
                semver: Some(">=1.2.3.4".into()),
                latest: Some(0),
                min_age: None,
            },
            platforms: vec!["linux/amd64".into(), "Linux".into()],
            destination: Some("Upper/".into()),
            prune: Some(PruneSpec {
                enabled: true,
                max_fraction: Some(1.5),
                keep: vec!["ok".into(), "(".into()],
            }),
            backup: Some("{tag}-{when}".into()),
            ..RuleSpec::new(SourceSpec::Prefix("team/[".into()))
        };
        let problems = ContentRule::new(bad).unwrap_err();
        let found: Vec<(RulePart, String)> = problems
            .iter()
            .map(|problem| (problem.part, problem.to_string()))
            .collect();
        let expected = [
            (
                RulePart::Prefix,
                "invalid glob \"team/[\": unclosed character class; missing ']'",
            ),
            (RulePart::Include(1), "invalid regex \"v[\": unclosed character class"),
            (RulePart::Exclude(0), "invalid regex \"(\": unclosed group"),
            (
                RulePart::Immutable(0),
                "invalid regex \"+\": repetition operator missing expression",
            ),
            (
                RulePart::Semver,
                "invalid semver range \">=1.2.3.4\": expected comma after patch version number, found '.'",
            ),
            (RulePart::Latest, "must be at least 1 (0 would keep no tag)"),
            (
                RulePart::Platform(1),
                "invalid platform \"Linux\": expected os/architecture[/variant] in lower case, e.g. linux/arm64",
            ),
            (RulePart::Destination, "\"Upper/\" is not a repository name prefix"),
            (
                RulePart::PruneMaxFraction,
                "1.5 is not in (0, 1]: the share of a repository's tags one pass may delete",
            ),
            (RulePart::PruneKeep(1), "invalid regex \"(\": unclosed group"),
            (
                RulePart::Backup,
                "\"{tag}-{when}\" has an unknown placeholder {when}: the placeholders are {tag}, {date} and {digest}",
            ),
        ];
        assert_eq!(found.len(), expected.len(), "{found:#?}");
        for ((part, message), (expected_part, expected_message)) in found.iter().zip(expected) {
            assert_eq!((*part, message.as_str()), (expected_part, expected_message));
        }
        assert!(matches!(problems[1].error, RuleError::Regex { .. }));
        assert!(
            std::error::Error::source(&problems[1].error).is_some(),
            "the regex error is kept"
        );
    }

    #[test]
    fn a_prefix_star_stays_within_one_path_component() {
        let rule = ContentRule::new(RuleSpec::new(SourceSpec::Prefix("team/*".into()))).unwrap();
        assert!(rule.takes(&name("team/app")));
        assert!(!rule.takes(&name("team/app/sub")));
        let deep = ContentRule::new(RuleSpec::new(SourceSpec::Prefix("team/**".into()))).unwrap();
        assert!(deep.takes(&name("team/app/sub")));
    }

    fn name(text: &str) -> RepoName {
        text.parse().unwrap()
    }

    #[test]
    fn destination_names() {
        // (prefix glob, strip_prefix, destination, source name, expected destination name)
        type Case<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a str, Option<&'a str>);
        let cases: &[Case] = &[
            ("library/**", None, None, "library/nginx", Some("library/nginx")),
            (
                "library/**",
                Some("library/"),
                Some("mirror/hub"),
                "library/nginx",
                Some("mirror/hub/nginx"),
            ),
            (
                "library/**",
                None,
                Some("mirror/"),
                "library/a/b",
                Some("mirror/library/a/b"),
            ),
            ("library/*", None, None, "library/a/b", None),
            ("library/**", None, None, "library", None),
            ("**", Some("nomatch/"), None, "team/app", Some("team/app")),
        ];
        for (prefix, strip, destination, source, expected) in cases {
            let mapped = rule(prefix, *strip, *destination).destination_for(&name(source));
            let mapped = mapped.map(|result| result.unwrap().to_string());
            assert_eq!(
                mapped.as_deref(),
                *expected,
                "{prefix} {strip:?} {destination:?} {source}"
            );
        }
    }

    #[test]
    fn invalid_destination_name_is_an_error() {
        let mapped = rule("**", None, Some("Upper")).destination_for(&name("a")).unwrap();
        assert!(mapped.is_err());
    }
}
