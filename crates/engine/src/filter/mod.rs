//! Content rules: which repositories a sync takes, under which names, and which tags.
//!
//! Patterns arrive compiled (the binary compiles them when the config loads), so a bad
//! pattern is a config error and never a skip at run time.

mod platforms;
mod tags;

use globset::{GlobBuilder, GlobMatcher};
use ocisync_oci::{Reference, RepoName};
use serde::Serialize;

use crate::lifecycle::BackupTemplate;
use crate::signatures::SignaturePolicy;

pub use platforms::{select_platforms, PlatformSpec};
pub use tags::{parse_version, source_pattern, whole_tag_regex, Dropped, TagFilter};

/// One content rule. A repository is synced by the first rule that takes it.
#[derive(Debug, Clone)]
pub struct ContentRule {
    /// Where the rule's repositories come from.
    pub source: RuleSource,
    pub tags: TagFilter,
    /// Platforms kept from multi-arch indexes; empty copies indexes whole and byte-exact.
    pub platforms: Vec<PlatformSpec>,
    /// Removed from the source name before `destination` is prepended.
    pub strip_prefix: Option<String>,
    /// Prefix of destination names.
    pub destination: Option<String>,
    /// Which images are copied at all: signed ones only, or verified ones only.
    pub signatures: SignaturePolicy,
    /// Before a tag moves at the destination, its old manifest is tagged with this name.
    pub backup: Option<BackupTemplate>,
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
    Catalog,
    Named,
    Images,
}

impl RuleSourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleSourceKind::Catalog => "catalog",
            RuleSourceKind::Named => "named",
            RuleSourceKind::Images => "images",
        }
    }
}

impl RuleSource {
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
    pub repository: RepoName,
    pub reference: Reference,
}

/// A glob on repository names in which `*` stays within one path component and `**`
/// crosses them, as the config documents.
#[derive(Debug, Clone)]
pub struct RepoGlob(GlobMatcher);

impl RepoGlob {
    pub fn new(pattern: &str) -> Result<RepoGlob, globset::Error> {
        let glob = GlobBuilder::new(pattern).literal_separator(true).build()?;
        Ok(RepoGlob(glob.compile_matcher()))
    }

    pub fn is_match(&self, name: &RepoName) -> bool {
        self.0.is_match(name.as_str())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.0.glob().glob()
    }
}

impl ContentRule {
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
            backup: None,
        }
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
