//! Tag selection: whole-tag include/exclude regexes, a semver range, and `latest: N`.
//!
//! Every tag gets a verdict that names the filter that dropped it, so that `check`
//! and the report can say why a tag is missing from the mirror.

use std::cmp::Reverse;
use std::time::Duration;

use ocisync_oci::Tag;
use regex::Regex;
use semver::{Version, VersionReq};

use super::rule_error::{regex_reason, RuleError, RulePart, RuleProblem};
use crate::outcome::SkipReason;

/// A rule's tag filters as written: what [`TagFilter::compile`] builds a filter from,
/// and what [`TagFilter::patterns`] gives back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagPatterns {
    /// Regexes a kept tag must match whole (one of them); empty keeps all.
    pub include: Vec<String>,
    /// Regexes that drop a tag they match whole.
    pub exclude: Vec<String>,
    /// Regexes naming tags that never move once published.
    pub immutable: Vec<String>,
    /// A semver range (`>=1.20, <2`).
    pub semver: Option<String>,
    /// Keep only the N highest versions.
    pub latest: Option<usize>,
    /// Not a filter: a kept tag whose image (by its config's `created`) is younger than
    /// this is not copied yet, nor moved at the destination (`lifecycle/min_age.rs`).
    pub min_age: Option<Duration>,
}

/// Tag filters of a content rule, applied in order: include, exclude, semver, latest.
/// Built only by [`TagFilter::compile`] (or empty, by `default`), so a bad pattern is
/// a config error and never a skip at run time.
#[derive(Debug, Clone, Default)]
pub struct TagFilter {
    /// Kept if any matches the whole tag; empty keeps all.
    include: Vec<Regex>,
    /// Dropped if any matches the whole tag.
    exclude: Vec<Regex>,
    /// Range applied to tags that parse as semver; other tags pass it untouched.
    semver: Option<VersionReq>,
    /// After the other filters, keep only the N highest semver tags (others are dropped).
    latest: Option<usize>,
    /// Not a filter: kept tags matching one of these are taken never to move upstream
    /// once published (release versions), so one the destination already lists is left
    /// alone, with no request of its own on either side.
    immutable: Vec<Regex>,
    /// Not a filter: a kept tag whose image (by its config's `created`) is younger than
    /// this is not copied yet, nor moved at the destination (`lifecycle/min_age.rs`).
    min_age: Option<Duration>,
}

/// Why one tag was left out, with the pattern or range responsible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub reason: SkipReason,
    pub detail: String,
}

impl TagFilter {
    /// Compiles the patterns: every regex anchored to match whole tags, the semver
    /// range parsed, `latest` at least 1. Every problem is returned, each with its part.
    pub fn compile(patterns: &TagPatterns) -> Result<TagFilter, Vec<RuleProblem>> {
        let mut problems = Vec::new();
        let mut compile_all = |texts: &[String], part: fn(usize) -> RulePart| -> Vec<Regex> {
            let mut compiled = Vec::with_capacity(texts.len());
            for (index, text) in texts.iter().enumerate() {
                match whole_tag_regex(text) {
                    Ok(regex) => compiled.push(regex),
                    Err(error) => problems.push(RuleProblem::at(part(index), error)),
                }
            }
            compiled
        };
        let include = compile_all(&patterns.include, RulePart::Include);
        let exclude = compile_all(&patterns.exclude, RulePart::Exclude);
        let immutable = compile_all(&patterns.immutable, RulePart::Immutable);
        let semver = match &patterns.semver {
            None => None,
            Some(range) => match VersionReq::parse(range) {
                Ok(parsed) => Some(parsed),
                Err(source) => {
                    let error = RuleError::Semver {
                        range: range.clone(),
                        source,
                    };
                    problems.push(RuleProblem::at(RulePart::Semver, error));
                    None
                }
            },
        };
        if patterns.latest == Some(0) {
            problems.push(RuleProblem::at(RulePart::Latest, RuleError::LatestZero));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(TagFilter {
            include,
            exclude,
            semver,
            latest: patterns.latest,
            immutable,
            min_age: patterns.min_age,
        })
    }

    /// The patterns as written, for showing the effective config.
    pub fn patterns(&self) -> TagPatterns {
        let written = |regexes: &[Regex]| regexes.iter().map(|regex| source_pattern(regex).to_owned()).collect();
        TagPatterns {
            include: written(&self.include),
            exclude: written(&self.exclude),
            immutable: written(&self.immutable),
            semver: self.semver.as_ref().map(ToString::to_string),
            latest: self.latest,
            min_age: self.min_age,
        }
    }

    /// `min_age`: how old an image must be before a tag is copied to it.
    pub fn min_age(&self) -> Option<Duration> {
        self.min_age
    }

    /// `latest: N`, which must see every tag of a repository to judge one.
    pub fn latest(&self) -> Option<usize> {
        self.latest
    }

    /// Whether any tag is declared immutable.
    pub fn has_immutable(&self) -> bool {
        !self.immutable.is_empty()
    }

    /// Whether the include, exclude and semver filters keep `tag` (not `latest`,
    /// which needs every tag: see [`TagFilter::select`]).
    pub fn keeps(&self, tag: &Tag) -> bool {
        self.check_one(tag).is_ok()
    }

    /// The verdict for each tag, in the order given: `Ok` to copy, or why it is left out.
    pub fn select(&self, tags: &[Tag]) -> Vec<Result<(), Dropped>> {
        let mut verdicts: Vec<Result<(), Dropped>> = tags.iter().map(|tag| self.check_one(tag)).collect();
        let Some(latest) = self.latest else {
            return verdicts;
        };
        // Rank the survivors by version, highest first; ties (v1.2.3 and 1.2.3) by tag text.
        let mut ranked: Vec<(Version, &str, usize)> = tags
            .iter()
            .enumerate()
            .filter(|(index, _)| verdicts[*index].is_ok())
            .filter_map(|(index, tag)| parse_version(tag.as_str()).map(|version| (version, tag.as_str(), index)))
            .collect();
        ranked.sort_by(|a, b| (Reverse(&a.0), a.1).cmp(&(Reverse(&b.0), b.1)));
        let mut kept = vec![false; tags.len()];
        for (_, _, index) in ranked.iter().take(latest) {
            kept[*index] = true;
        }
        for (index, verdict) in verdicts.iter_mut().enumerate() {
            if verdict.is_ok() && !kept[index] {
                *verdict = Err(Dropped {
                    reason: SkipReason::NotAmongLatest,
                    detail: if parse_version(tags[index].as_str()).is_some() {
                        format!("not among the {latest} highest versions")
                    } else {
                        format!("not a semver tag (latest: {latest} keeps only versions)")
                    },
                });
            }
        }
        verdicts
    }

    /// Whether `tag` is declared immutable (a `tags.immutable` pattern matches it whole).
    pub fn is_immutable(&self, tag: &Tag) -> bool {
        self.immutable
            .iter()
            .any(|pattern| matches_whole(pattern, tag.as_str()))
    }

    fn check_one(&self, tag: &Tag) -> Result<(), Dropped> {
        let text = tag.as_str();
        if !self.include.is_empty() && !self.include.iter().any(|pattern| matches_whole(pattern, text)) {
            return Err(Dropped {
                reason: SkipReason::NotIncluded,
                detail: "matches no include pattern".to_owned(),
            });
        }
        if let Some(pattern) = self.exclude.iter().find(|pattern| matches_whole(pattern, text)) {
            return Err(Dropped {
                reason: SkipReason::Excluded,
                detail: format!("matches exclude pattern \"{}\"", source_pattern(pattern)),
            });
        }
        if let (Some(range), Some(version)) = (&self.semver, parse_version(text)) {
            if !range.matches(&version) {
                return Err(Dropped {
                    reason: SkipReason::OutsideSemverRange,
                    detail: format!("{version} is outside \"{range}\""),
                });
            }
        }
        Ok(())
    }
}

fn matches_whole(pattern: &Regex, text: &str) -> bool {
    pattern.find(text).is_some_and(|m| m.len() == text.len())
}

/// The pattern as the user wrote it, without the anchors added by [`whole_tag_regex`].
pub(crate) fn source_pattern(pattern: &Regex) -> &str {
    let text = pattern.as_str();
    text.strip_prefix("^(?:")
        .and_then(|rest| rest.strip_suffix(")$"))
        .unwrap_or(text)
}

/// Compiles a tag pattern so that it must match the whole tag.
pub(crate) fn whole_tag_regex(pattern: &str) -> Result<Regex, RuleError> {
    let anchored = format!("^(?:{pattern})$");
    regex::RegexBuilder::new(&anchored)
        .size_limit(1 << 20)
        .build()
        .map_err(|source| RuleError::Regex {
            pattern: pattern.to_owned(),
            reason: regex_reason(&anchored, &source),
            source,
        })
}

/// A tag as a semantic version: `MAJOR.MINOR.PATCH[-PRERELEASE]`, with an optional
/// leading `v`. Shorter forms (`1.25`, `3`) and dates are not versions: reading them
/// as such would rank `20240101` above every real release.
pub(crate) fn parse_version(tag: &str) -> Option<Version> {
    let text = tag.strip_prefix('v').unwrap_or(tag);
    Version::parse(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(texts: &[&str]) -> Vec<Tag> {
        texts.iter().map(|text| text.parse().unwrap()).collect()
    }

    fn kept(filter: &TagFilter, all: &[&str]) -> Vec<String> {
        let all = tags(all);
        filter
            .select(&all)
            .iter()
            .zip(&all)
            .filter(|(verdict, _)| verdict.is_ok())
            .map(|(_, tag)| tag.to_string())
            .collect()
    }

    const TAGS: &[&str] = &[
        "latest",
        "1.19.9",
        "v1.20.0",
        "1.20.1",
        "1.21.0-rc1",
        "1.21.0",
        "v1.22.3",
        "2.0.0",
        "1.25",
        "20240101",
        "stable-alpine",
    ];

    /// [`TAGS`] but `dropped`, in order: the expectation of a filter that keeps most.
    fn all_but(dropped: &[&str]) -> Vec<&'static str> {
        TAGS.iter().copied().filter(|tag| !dropped.contains(tag)).collect()
    }

    #[test]
    fn each_filter_alone_and_combined() {
        let re = |pattern: &str| whole_tag_regex(pattern).unwrap();
        let range = |text: &str| Some(VersionReq::parse(text).unwrap());
        // (filter, tags kept)
        let cases: Vec<(TagFilter, Vec<&str>)> = vec![
            (TagFilter::default(), TAGS.to_vec()),
            (
                TagFilter {
                    include: vec![re(r"v?\d+\.\d+\.\d+")],
                    ..TagFilter::default()
                },
                vec!["1.19.9", "v1.20.0", "1.20.1", "1.21.0", "v1.22.3", "2.0.0"],
            ),
            (
                TagFilter {
                    exclude: vec![re(r".*-rc\d*"), re("latest")],
                    ..TagFilter::default()
                },
                all_but(&["latest", "1.21.0-rc1"]),
            ),
            (
                // The range leaves non-semver tags alone; prereleases are outside a plain range.
                TagFilter {
                    semver: range(">=1.20, <2"),
                    ..TagFilter::default()
                },
                all_but(&["1.19.9", "1.21.0-rc1", "2.0.0"]),
            ),
            (
                // latest keeps only semver tags, highest first.
                TagFilter {
                    latest: Some(3),
                    ..TagFilter::default()
                },
                vec!["1.21.0", "v1.22.3", "2.0.0"],
            ),
            (
                TagFilter {
                    include: vec![re(r"v?\d+\.\d+\.\d+(-rc\d+)?")],
                    exclude: vec![re(r".*-rc\d*")],
                    semver: range(">=1.20, <2"),
                    latest: Some(2),
                    // Not filters: they change nothing here.
                    immutable: vec![re(".*")],
                    min_age: Some(std::time::Duration::from_secs(3600)),
                },
                vec!["1.21.0", "v1.22.3"],
            ),
            (
                TagFilter {
                    latest: Some(0),
                    ..TagFilter::default()
                },
                vec![],
            ),
        ];
        for (index, (filter, expected)) in cases.iter().enumerate() {
            assert_eq!(kept(filter, TAGS), *expected, "case {index}");
        }
    }

    #[test]
    fn verdicts_name_the_filter() {
        let filter = TagFilter {
            include: vec![whole_tag_regex(r"v?[\d.]+.*").unwrap()],
            exclude: vec![whole_tag_regex(r".*-rc\d*").unwrap()],
            semver: Some(VersionReq::parse(">=1.20").unwrap()),
            latest: Some(1),
            immutable: Vec::new(),
            min_age: None,
        };
        let all = tags(&["latest", "1.21.0-rc1", "1.19.9", "1.20.0", "1.21.0"]);
        let reasons: Vec<_> = filter
            .select(&all)
            .into_iter()
            .map(|verdict| verdict.err().map(|dropped| (dropped.reason, dropped.detail)))
            .collect();
        assert_eq!(
            reasons,
            vec![
                Some((SkipReason::NotIncluded, "matches no include pattern".to_owned())),
                Some((SkipReason::Excluded, "matches exclude pattern \".*-rc\\d*\"".to_owned())),
                Some((
                    SkipReason::OutsideSemverRange,
                    "1.19.9 is outside \">=1.20\"".to_owned()
                )),
                Some((
                    SkipReason::NotAmongLatest,
                    "not among the 1 highest versions".to_owned()
                )),
                None,
            ]
        );
    }

    #[test]
    fn versions_need_three_parts_and_allow_a_leading_v() {
        assert_eq!(parse_version("v1.2.3"), Some(Version::new(1, 2, 3)));
        assert_eq!(parse_version("1.2.3"), Some(Version::new(1, 2, 3)));
        assert!(parse_version("1.2.3-rc1").is_some_and(|v| !v.pre.is_empty()));
        for not_a_version in ["1.2", "20240101", "latest", "v", "V1.2.3", "1.2.3.4", "01.2.3"] {
            assert_eq!(parse_version(not_a_version), None, "{not_a_version}");
        }
    }

    #[test]
    fn patterns_match_whole_tags() {
        let filter = TagFilter {
            include: vec![whole_tag_regex(r"v?\d+\.\d+\.\d+").unwrap()],
            exclude: vec![whole_tag_regex(r".*-rc\d*").unwrap()],
            ..TagFilter::default()
        };
        let keeps = |tag: &str| filter.keeps(&tag.parse().unwrap());
        assert!(keeps("1.2.3"));
        assert!(keeps("v1.2.3"));
        assert!(!keeps("v1.2.3-rc1"), "excluded");
        assert!(!keeps("v1.2.3-beta"), "include must match the whole tag");
        assert!(!keeps("latest"));
        assert!(TagFilter::default().keeps(&"anything".parse().unwrap()));
        assert!(whole_tag_regex("v[").is_err());
    }

    #[test]
    fn immutable_patterns_match_whole_tags_and_filter_nothing() {
        let filter = TagFilter {
            immutable: vec![whole_tag_regex(r"v?\d+\.\d+\.\d+").unwrap()],
            ..TagFilter::default()
        };
        let tag = |text: &str| -> Tag { text.parse().unwrap() };
        assert!(filter.is_immutable(&tag("1.2.3")));
        assert!(filter.is_immutable(&tag("v1.2.3")));
        assert!(!filter.is_immutable(&tag("v1.2.3-rc1")), "must match the whole tag");
        assert!(!filter.is_immutable(&tag("latest")));
        assert!(filter.keeps(&tag("latest")), "immutable is not a filter");
        assert!(!TagFilter::default().is_immutable(&tag("1.2.3")));
    }
}
