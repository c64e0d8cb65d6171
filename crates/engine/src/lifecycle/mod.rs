//! Lifecycle rules that act on tags as they arrive and move: a minimum age before a
//! tag is mirrored (`min_age.rs`, `tags.min_age`) and a backup name for what a moved
//! tag pointed at before (`backup.rs`, `backup`).
//!
//! Both are called from `Pass::copy_reference` (`copy/image.rs`), where a tag's
//! decisions are made, at one marked spot each: the age once the destination is known
//! to need the image and before anything is written, the backup after the image's
//! references are in place and before its tag is moved.

mod backup;
mod min_age;

use chrono::{DateTime, SecondsFormat, Utc};
use ocisync_oci::{Digest, Tag};
use serde::{Serialize, Serializer};

pub(crate) use backup::back_up;
pub use backup::{BackupTemplate, TemplateError};
pub(crate) use min_age::judge_age;

/// The one clock of the lifecycle rules: ages and backup dates are measured against it.
/// Tests build images whose `created` lies a chosen time before it, so none is faked.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

/// What the lifecycle rules did to one tag, for its report line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TagLifecycle {
    /// When a tag skipped `too-young` becomes old enough to be copied (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "serialize_time")]
    pub eligible_at: Option<DateTime<Utc>>,
    /// The name the destination's previous manifest got before the tag moved (in
    /// `check`: would get).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<TagBackup>,
}

/// A moved tag's previous manifest, tagged under its backup name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagBackup {
    /// The backup tag, rendered from the rule's template.
    pub name: Tag,
    /// The digest the tag pointed at before it moved.
    pub digest: Digest,
}

/// `2024-05-01T12:00:00Z`: seconds are enough for a time a person reads.
pub fn format_time(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn serialize_time<S: Serializer>(time: &Option<DateTime<Utc>>, serializer: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => serializer.serialize_str(&format_time(time)),
        None => serializer.serialize_none(),
    }
}
