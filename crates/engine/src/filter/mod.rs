//! Content rules: which repositories a sync takes, under which names, and which tags.
//!
//! Patterns arrive compiled (the binary compiles them when the config loads), so a bad
//! pattern is a config error and never a skip at run time.

mod platforms;
mod tags;

use globset::GlobMatcher;
use ocisync_oci::RepoName;

use crate::signatures::SignaturePolicy;

pub use platforms::{select_platforms, PlatformSpec};
pub use tags::{parse_version, source_pattern, whole_tag_regex, Dropped, TagFilter};

/// One content rule. A repository is synced by the first rule whose prefix matches it.
#[derive(Debug, Clone)]
pub struct ContentRule {
    /// Glob on repository names; `*` does not cross `/`.
    pub prefix: GlobMatcher,
    pub tags: TagFilter,
    /// Platforms kept from multi-arch indexes; empty copies indexes whole and byte-exact.
    pub platforms: Vec<PlatformSpec>,
    /// Removed from the source name before `destination` is prepended.
    pub strip_prefix: Option<String>,
    /// Prefix of destination names.
    pub destination: Option<String>,
    /// Which images are copied at all: signed ones only, or verified ones only.
    pub signatures: SignaturePolicy,
}

impl ContentRule {
    /// The destination name of `source`, if this rule takes it.
    pub fn destination_for(&self, source: &RepoName) -> Option<Result<RepoName, String>> {
        if !self.prefix.is_match(source.as_str()) {
            return None;
        }
        let mut name = source.as_str();
        if let Some(strip) = &self.strip_prefix {
            name = name.strip_prefix(strip.as_str()).unwrap_or(name);
        }
        let mapped = match &self.destination {
            Some(prefix) => format!("{}/{}", prefix.trim_end_matches('/'), name),
            None => name.to_owned(),
        };
        Some(mapped.parse::<RepoName>().map_err(|error| error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use globset::GlobBuilder;

    fn rule(prefix: &str, strip: Option<&str>, destination: Option<&str>) -> ContentRule {
        ContentRule {
            prefix: GlobBuilder::new(prefix)
                .literal_separator(true)
                .build()
                .unwrap()
                .compile_matcher(),
            tags: TagFilter::default(),
            platforms: Vec::new(),
            strip_prefix: strip.map(str::to_owned),
            destination: destination.map(str::to_owned),
            signatures: SignaturePolicy::default(),
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
