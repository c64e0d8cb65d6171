//! `tags.min_age`: an image is copied only once it is at least that old, by the
//! `created` time of its config (for an index, of its youngest platform image among
//! those the rule keeps). A freshly pushed tag is where a hijacked upstream account does
//! its damage; waiting out the first hours leaves time for it to be noticed.
//!
//! `created` is what the image says of itself: a forger can write any time there, so
//! this guards against a compromise noticed within `min_age`, not against a forger who
//! back-dates. An image without a readable `created` (artifacts, some reproducible
//! builds) is never old enough: it is refused (`no-created-time`), not waved through.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::StreamExt;
use ocisync_oci::{verify_blob_stream, Descriptor, Manifest, ManifestContent, RepoName, Store};

use super::format_time;
use crate::error::CopyError;
use crate::outcome::SkipReason;
use crate::read_manifest::read_checked_manifest;

/// Configs are small JSON documents; one larger than this is not read to learn its age.
const MAX_CONFIG_SIZE: u64 = 4 * 1024 * 1024;

/// Index nesting followed to find platform images (the copy itself allows 8).
const MAX_DEPTH: usize = 8;

/// Whether an image is old enough to be copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AgeVerdict {
    OldEnough,
    /// Copied once `eligible_at` has passed.
    TooYoung {
        created: DateTime<Utc>,
        eligible_at: DateTime<Utc>,
    },
    /// No `created` time could be read; the detail says where.
    NoCreatedTime(String),
}

/// How a verdict shows in the report: why the tag waits, and until when.
pub(crate) struct AgeSkip {
    pub reason: SkipReason,
    pub detail: String,
    pub eligible_at: Option<DateTime<Utc>>,
}

impl AgeVerdict {
    /// The skip this verdict means; `None`: the image is old enough to copy.
    pub(crate) fn skip(self) -> Option<AgeSkip> {
        match self {
            AgeVerdict::OldEnough => None,
            AgeVerdict::TooYoung { created, eligible_at } => Some(AgeSkip {
                reason: SkipReason::TooYoung,
                detail: format!(
                    "created {}, younger than min_age; eligible at {}",
                    format_time(&created),
                    format_time(&eligible_at)
                ),
                eligible_at: Some(eligible_at),
            }),
            AgeVerdict::NoCreatedTime(detail) => Some(AgeSkip {
                reason: SkipReason::NoCreatedTime,
                detail: format!("{detail}: its age is unknown, and min_age copies only images old enough"),
                eligible_at: None,
            }),
        }
    }
}

/// The verdict on an image, and the child manifests read to reach it (handed to the
/// copy, so that each is read once).
pub(crate) struct AgeCheck {
    pub verdict: AgeVerdict,
    pub children: Vec<Manifest>,
}

/// Judges the image `content` describes (after platform narrowing) against `min_age`
/// at `now`: one config `GET` per platform image, plus the child manifests of an index.
pub(crate) async fn judge_age<S: Store>(
    source: &S,
    repo: &RepoName,
    content: &ManifestContent,
    min_age: Duration,
    now: DateTime<Utc>,
) -> Result<AgeCheck, CopyError> {
    let mut children = Vec::new();
    let verdict = match youngest_created(source, repo, content, 0, &mut children).await? {
        Ok(created) => verdict(created, min_age, now),
        Err(detail) => AgeVerdict::NoCreatedTime(detail),
    };
    Ok(AgeCheck { verdict, children })
}

/// `created` + `min_age` against `now`. A time so far ahead that adding overflows is
/// never eligible.
pub(crate) fn verdict(created: DateTime<Utc>, min_age: Duration, now: DateTime<Utc>) -> AgeVerdict {
    let eligible_at = TimeDelta::from_std(min_age)
        .ok()
        .and_then(|delta| created.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    if now >= eligible_at {
        AgeVerdict::OldEnough
    } else {
        AgeVerdict::TooYoung { created, eligible_at }
    }
}

/// The latest `created` among the platform images of `content`; the inner `Err` says
/// which image has none.
async fn youngest_created<S: Store>(
    source: &S,
    repo: &RepoName,
    content: &ManifestContent,
    depth: usize,
    children: &mut Vec<Manifest>,
) -> Result<Result<DateTime<Utc>, String>, CopyError> {
    match content {
        ManifestContent::Image { config, .. } => config_created(source, repo, config).await,
        ManifestContent::Schema1 => Ok(Err("a schema1 manifest has no image config".to_owned())),
        ManifestContent::Index { manifests } => {
            if depth >= MAX_DEPTH {
                return Ok(Err(format!("index nested more than {MAX_DEPTH} levels deep")));
            }
            // Attestation manifests (platform unknown/unknown) describe an image; they
            // are not one, and buildkit gives them no `created`.
            let platform_images: Vec<&Descriptor> = manifests
                .iter()
                .filter(|entry| entry.platform.as_ref().is_none_or(|platform| platform.os != "unknown"))
                .collect();
            if platform_images.is_empty() {
                return Ok(Err("the index has no platform image".to_owned()));
            }
            let mut youngest: Option<DateTime<Utc>> = None;
            for entry in platform_images {
                let child = read_checked_manifest(source, repo, entry).await?;
                let child_content = child.content().map_err(|error| CopyError::Malformed {
                    digest: child.digest.clone(),
                    source: error,
                })?;
                children.push(child);
                let created = Box::pin(youngest_created(source, repo, &child_content, depth + 1, children)).await?;
                match created {
                    Ok(created) => youngest = Some(youngest.map_or(created, |known| known.max(created))),
                    Err(detail) => return Ok(Err(format!("platform image {}: {detail}", entry.digest))),
                }
            }
            Ok(youngest.ok_or_else(|| "the index has no platform image".to_owned()))
        }
    }
}

/// The `created` time of an image config; the inner `Err` says why there is none.
async fn config_created<S: Store>(
    source: &S,
    repo: &RepoName,
    config: &Descriptor,
) -> Result<Result<DateTime<Utc>, String>, CopyError> {
    if config.size > MAX_CONFIG_SIZE {
        return Ok(Err(format!(
            "config {} is {} bytes, more than the {MAX_CONFIG_SIZE} read for its created time",
            config.digest, config.size
        )));
    }
    let stream = source.blob(repo, config).await.map_err(CopyError::Source)?;
    let what = format!("{} config {repo}@{}", source.label(), config.digest);
    let mut stream = verify_blob_stream(stream, config, what);
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.map_err(CopyError::Source)?);
    }
    Ok(created_of(&bytes).map_err(|reason| format!("config {}: {reason}", config.digest)))
}

/// The `created` field of a config document.
pub(crate) fn created_of(config: &[u8]) -> Result<DateTime<Utc>, String> {
    let document: serde_json::Value =
        serde_json::from_slice(config).map_err(|_| "not a JSON image config".to_owned())?;
    let created = match document.get("created") {
        None | Some(serde_json::Value::Null) => return Err("no created time".to_owned()),
        Some(serde_json::Value::String(text)) => text,
        Some(other) => return Err(format!("created is {other}, not an RFC 3339 time")),
    };
    DateTime::parse_from_rfc3339(created)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| format!("created \"{created}\" is not an RFC 3339 time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn an_image_is_old_enough_from_created_plus_min_age_on() {
        let created = time("2024-05-01T12:00:00Z");
        let eligible_at = time("2024-05-04T12:00:00Z");
        // (now, verdict)
        let cases = [
            ("2024-05-01T12:00:00Z", false),
            ("2024-05-04T11:59:59Z", false),
            ("2024-05-04T12:00:00Z", true),
            ("2025-01-01T00:00:00Z", true),
            // A `created` in the future waits until it is min_age past it.
            ("2024-04-01T00:00:00Z", false),
        ];
        for (now, old_enough) in cases {
            let expected = if old_enough {
                AgeVerdict::OldEnough
            } else {
                AgeVerdict::TooYoung { created, eligible_at }
            };
            assert_eq!(verdict(created, 72 * HOUR, time(now)), expected, "now {now}");
        }
        let far = DateTime::<Utc>::MAX_UTC;
        assert!(matches!(
            verdict(far, HOUR, time("2024-01-01T00:00:00Z")),
            AgeVerdict::TooYoung { .. }
        ));
    }

    #[test]
    fn created_is_read_as_rfc_3339_or_refused_with_a_reason() {
        assert_eq!(
            created_of(br#"{"created":"2024-05-01T12:00:00.123456789Z","os":"linux"}"#).unwrap(),
            time("2024-05-01T12:00:00.123456789Z")
        );
        assert_eq!(
            created_of(br#"{"created":"2024-05-01T14:00:00+02:00"}"#).unwrap(),
            time("2024-05-01T12:00:00Z")
        );
        let refused = [
            (&br#"{"os":"linux"}"#[..], "no created time"),
            (br#"{"created":null}"#, "no created time"),
            (br#"{"created":""}"#, "created \"\" is not an RFC 3339 time"),
            (
                br#"{"created":"yesterday"}"#,
                "created \"yesterday\" is not an RFC 3339 time",
            ),
            (
                br#"{"created":1714564800}"#,
                "created is 1714564800, not an RFC 3339 time",
            ),
            (b"\x00\x01", "not a JSON image config"),
        ];
        for (config, reason) in refused {
            assert_eq!(created_of(config).unwrap_err(), reason);
        }
    }
}
