//! `backup: "{tag}-{date}"`: before a tag that moved upstream is moved at the
//! destination, the manifest it pointed at there is tagged with the rendered name (the
//! same bytes, in the same repository: no blob moves), so a rollback is one retag away.
//!
//! A backup is a record: an existing backup name is never pointed elsewhere. When the
//! rendered name already holds another digest, the tag is not moved and fails with a
//! line saying so; `{digest}` in the template gives every old digest a name of its own.

use std::fmt;

use chrono::{DateTime, Utc};
use ocisync_oci::{Digest, Reference, RepoName, Store, Tag};
use regex::Regex;
use tracing::info;

use super::TagBackup;
use crate::error::CopyError;

/// The longest tag the distribution spec allows.
const MAX_TAG_LENGTH: usize = 128;
/// `{date}` renders as `YYYYMMDD`.
const DATE_LENGTH: usize = 8;
/// `{digest}` renders as the first 12 hex digits of the old digest.
const SHORT_DIGEST_LENGTH: usize = 12;

/// A checked backup name template: literal tag characters and the placeholders
/// `{tag}` (the moved tag), `{date}` (the day of the move, `YYYYMMDD` UTC) and
/// `{digest}` (the first 12 hex digits of the old digest).
#[derive(Debug, Clone)]
pub struct BackupTemplate {
    text: String,
    parts: Vec<Part>,
    /// Whole names this template can render, for [`BackupTemplate::matches`].
    names: Regex,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Tag,
    Date,
    Digest,
}

/// Why a backup template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// An empty template.
    #[error("is empty")]
    Empty,
    /// A placeholder other than `{tag}`, `{date}` and `{digest}`.
    #[error("has an unknown placeholder {{{0}}}: the placeholders are {{tag}}, {{date}} and {{digest}}")]
    UnknownPlaceholder(String),
    /// A `{` not closed.
    #[error("has a `{{` without its `}}`")]
    Unclosed,
    /// A `}` not opened.
    #[error("has a `}}` without its `{{`")]
    Unopened,
    /// A character no tag may hold.
    #[error("has {0:?}, which a tag cannot hold: letters, digits, `_`, `.` and `-` only")]
    InvalidCharacter(char),
    /// A first character no tag may start with.
    #[error("starts with {0:?}: a tag starts with a letter, a digit or `_`")]
    InvalidStart(char),
    /// No `{tag}`.
    #[error("has no {{tag}}: backups of different tags would share one name")]
    NoTag,
    /// Neither `{date}` nor `{digest}`.
    #[error(
        "has neither {{date}} nor {{digest}}: every later move of a tag would need the name its first backup holds"
    )]
    NoDistinction,
    /// Fixed parts of this many characters, which leave a tag no room.
    #[error("renders {0} characters besides {{tag}}, which leaves no room for a tag within the 128 a tag may have")]
    TooLong(usize),
}

impl BackupTemplate {
    /// Parses and checks a template: only tag characters, known placeholders, `{tag}`
    /// and one of `{date}` or `{digest}`, and room for a tag within 128 characters. A
    /// long tag can still render a name over 128: that tag fails when it moves.
    pub fn parse(text: &str) -> Result<BackupTemplate, TemplateError> {
        if text.is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('{') {
                let end = after.find('}').ok_or(TemplateError::Unclosed)?;
                let name = &after[..end];
                parts.push(match name {
                    "tag" => Part::Tag,
                    "date" => Part::Date,
                    "digest" => Part::Digest,
                    _ if name.contains('{') => return Err(TemplateError::Unclosed),
                    _ => return Err(TemplateError::UnknownPlaceholder(name.to_owned())),
                });
                rest = &after[end + 1..];
            } else {
                let end = rest.find('{').unwrap_or(rest.len());
                let literal = &rest[..end];
                if literal.contains('}') {
                    return Err(TemplateError::Unopened);
                }
                if let Some(bad) = literal.chars().find(|c| !is_tag_char(*c)) {
                    return Err(TemplateError::InvalidCharacter(bad));
                }
                parts.push(Part::Literal(literal.to_owned()));
                rest = &rest[end..];
            }
        }
        if let Some(Part::Literal(first)) = parts.first() {
            let start = first.chars().next().unwrap_or('_');
            if !(start.is_ascii_alphanumeric() || start == '_') {
                return Err(TemplateError::InvalidStart(start));
            }
        }
        if !parts.contains(&Part::Tag) {
            return Err(TemplateError::NoTag);
        }
        if !parts.contains(&Part::Date) && !parts.contains(&Part::Digest) {
            return Err(TemplateError::NoDistinction);
        }
        let fixed: usize = parts
            .iter()
            .map(|part| match part {
                Part::Literal(literal) => literal.len(),
                Part::Tag => 0,
                Part::Date => DATE_LENGTH,
                Part::Digest => SHORT_DIGEST_LENGTH,
            })
            .sum();
        if fixed >= MAX_TAG_LENGTH {
            return Err(TemplateError::TooLong(fixed));
        }
        let pattern: String = parts
            .iter()
            .map(|part| match part {
                Part::Literal(literal) => regex::escape(literal),
                Part::Tag => "[A-Za-z0-9_][A-Za-z0-9_.-]*".to_owned(),
                Part::Date => format!("[0-9]{{{DATE_LENGTH}}}"),
                Part::Digest => format!("[0-9a-f]{{{SHORT_DIGEST_LENGTH}}}"),
            })
            .collect();
        let names = Regex::new(&format!("^(?:{pattern})$")).expect("escaped literals and fixed classes");
        Ok(BackupTemplate {
            text: text.to_owned(),
            parts,
            names,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The backup name of `tag`, which pointed at `old`, moved at `now`; `Err` with the
    /// text rendered when that is no valid tag (a long `{tag}` can pass 128 characters).
    pub fn render(&self, tag: &Tag, old: &Digest, now: DateTime<Utc>) -> Result<Tag, String> {
        let rendered: String = self
            .parts
            .iter()
            .map(|part| match part {
                Part::Literal(literal) => literal.clone(),
                Part::Tag => tag.to_string(),
                Part::Date => now.format("%Y%m%d").to_string(),
                Part::Digest => old.hex().chars().take(SHORT_DIGEST_LENGTH).collect(),
            })
            .collect();
        rendered.parse().map_err(|_| rendered)
    }

    /// Whether `tag` is a name this template renders: a backup, which the rule that
    /// made it must never prune nor take for an upstream tag.
    pub fn matches(&self, tag: &Tag) -> bool {
        self.names.is_match(tag.as_str())
    }

    /// The whole-name regex behind [`BackupTemplate::matches`].
    pub(crate) fn names(&self) -> &Regex {
        &self.names
    }
}

impl fmt::Display for BackupTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Tags `old` (what `tag` points at in `repo` now) with its backup name before the tag
/// moves; in a dry run, only renders the name and checks that it is free. The name
/// holding `old` already (an earlier pass backed it up, then failed to move the tag)
/// is done. Any error means the tag must not move.
pub(crate) async fn back_up<D: Store>(
    destination: &D,
    repo: &RepoName,
    tag: &Tag,
    old: &Digest,
    template: &BackupTemplate,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<TagBackup, CopyError> {
    let name = template
        .render(tag, old, now)
        .map_err(|rendered| CopyError::BackupName {
            tag: tag.clone(),
            rendered,
        })?;
    let failed = |source| CopyError::Backup {
        name: name.clone(),
        old: old.clone(),
        source: Box::new(source),
    };
    let by_name = Reference::Tag(name.clone());
    let held = destination.head_manifest(repo, &by_name).await.map_err(failed)?;
    let backup = TagBackup {
        name: name.clone(),
        digest: old.clone(),
    };
    match held {
        Some(held) if held.digest == *old => return Ok(backup),
        Some(held) => {
            return Err(CopyError::BackupTaken {
                name,
                held: held.digest,
                old: old.clone(),
            })
        }
        None if dry_run => return Ok(backup),
        None => {}
    }
    let manifest = destination
        .manifest(repo, &Reference::Digest(old.clone()))
        .await
        .map_err(failed)?;
    destination
        .put_manifest(repo, &by_name, &manifest)
        .await
        .map_err(failed)?;
    info!(repo = %repo, tag = %tag, digest = %old, backup = %name, "backed up before the tag moves");
    Ok(backup)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(text: &str) -> Tag {
        text.parse().unwrap()
    }

    fn old() -> Digest {
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            .parse()
            .unwrap()
    }

    fn may_day() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-01T23:59:59Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn templates_render_tag_date_and_short_digest() {
        // (template, tag, rendered)
        let cases = [
            ("{tag}-{date}", "latest", "latest-20240501"),
            ("{tag}.{digest}", "v1", "v1.0123456789ab"),
            ("bak_{date}_{tag}_{digest}", "v1.2", "bak_20240501_v1.2_0123456789ab"),
            ("{date}-{tag}", "_x", "20240501-_x"),
        ];
        for (text, moved, expected) in cases {
            let template = BackupTemplate::parse(text).unwrap();
            assert_eq!(
                template.render(&tag(moved), &old(), may_day()).unwrap().as_str(),
                expected
            );
            assert!(template.matches(&tag(expected)), "{text} matches {expected}");
            assert_eq!(template.as_str(), text);
        }
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        use TemplateError::*;
        let long = format!("{}{{tag}}{{date}}", "x".repeat(120));
        let cases = [
            ("", Empty),
            ("{tag}-{when}", UnknownPlaceholder("when".into())),
            ("{tag}-{TAG}{date}", UnknownPlaceholder("TAG".into())),
            ("{tag}-{date", Unclosed),
            ("{tag}-{{date}", Unclosed),
            ("{tag}-date}", Unopened),
            ("{tag}/{date}", InvalidCharacter('/')),
            ("{tag}:{date}", InvalidCharacter(':')),
            ("{tag} {date}", InvalidCharacter(' ')),
            ("{tag}-ä{date}", InvalidCharacter('ä')),
            ("-{tag}-{date}", InvalidStart('-')),
            (".{tag}{digest}", InvalidStart('.')),
            ("backup-{date}", NoTag),
            ("{tag}-previous", NoDistinction),
            ("{tag}", NoDistinction),
            (long.as_str(), TooLong(128)),
        ];
        for (text, expected) in cases {
            assert_eq!(BackupTemplate::parse(text).unwrap_err(), expected, "{text:?}");
        }
        let message = BackupTemplate::parse("{tag}-{when}").unwrap_err().to_string();
        assert_eq!(
            message,
            "has an unknown placeholder {when}: the placeholders are {tag}, {date} and {digest}"
        );
    }

    #[test]
    fn a_long_tag_can_still_render_past_128_characters() {
        let template = BackupTemplate::parse("{tag}-{date}").unwrap();
        let long = tag(&"t".repeat(120));
        let rendered = template.render(&long, &old(), may_day()).unwrap_err();
        assert_eq!(rendered.len(), 129);
        let fits = tag(&"t".repeat(119));
        assert_eq!(template.render(&fits, &old(), may_day()).unwrap().as_str().len(), 128);
    }

    #[test]
    fn only_names_the_template_renders_match() {
        let template = BackupTemplate::parse("{tag}-bak-{date}").unwrap();
        for name in ["latest-bak-20240501", "v1.2.3-bak-19991231", "a-bak-b-bak-20240501"] {
            assert!(template.matches(&tag(name)), "{name}");
        }
        for name in [
            "latest",
            "latest-bak-2024050",
            "latest-bak-202405011",
            "latest-bak-2024O501",
            "-bak-20240501x",
        ] {
            assert!(name.parse::<Tag>().is_err() || !template.matches(&tag(name)), "{name}");
        }
        let by_digest = BackupTemplate::parse("{tag}.{digest}").unwrap();
        assert!(by_digest.matches(&tag("v1.0123456789ab")));
        assert!(!by_digest.matches(&tag("v1.0123456789AB")));
        assert!(!by_digest.matches(&tag("v1x0123456789ab")), "the dot is literal");
    }
}
