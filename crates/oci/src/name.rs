//! Repository names, tags and references, validated as the distribution spec defines them.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::digest::Digest;
use crate::error::ParseError;

/// A repository name: `/`-separated components of `[a-z0-9]+` joined by `.`, `_`, `__` or `-+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

impl RepoName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    // Separators: one '.', one or two '_', or any run of '-', always between alphanumerics.
    let mut index = 0;
    while index < bytes.len() {
        if alnum(bytes[index]) {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && !alnum(bytes[index]) {
            index += 1;
        }
        let separator = &component[start..index];
        let allowed = separator == "." || separator == "_" || separator == "__" || separator.bytes().all(|b| b == b'-');
        if !allowed {
            return false;
        }
    }
    true
}

impl FromStr for RepoName {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() > 255 {
            return Err(ParseError::new("repository name", text, "longer than 255 characters"));
        }
        if !text.split('/').all(is_valid_component) {
            return Err(ParseError::new(
                "repository name",
                text,
                "components must be lowercase alphanumerics joined by '.', '_', '__' or '-'",
            ));
        }
        Ok(RepoName(text.to_owned()))
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for RepoName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = text.as_bytes();
        let first_ok = bytes.first().is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        let rest_ok = bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !first_ok || !rest_ok || bytes.len() > 128 {
            return Err(ParseError::new(
                "tag",
                text,
                "must match [A-Za-z0-9_][A-Za-z0-9._-]{0,127}",
            ));
        }
        Ok(Tag(text.to_owned()))
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Tag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// What a manifest is addressed by: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl Reference {
    /// The tag, when the reference is one.
    pub fn tag(&self) -> Option<&Tag> {
        match self {
            Reference::Tag(tag) => Some(tag),
            Reference::Digest(_) => None,
        }
    }

    /// The digest, when the reference is one.
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Reference::Tag(_) => None,
            Reference::Digest(digest) => Some(digest),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(tag) => tag.fmt(f),
            Reference::Digest(digest) => digest.fmt(f),
        }
    }
}

impl From<Tag> for Reference {
    fn from(tag: Tag) -> Self {
        Reference::Tag(tag)
    }
}

impl From<Digest> for Reference {
    fn from(digest: Digest) -> Self {
        Reference::Digest(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for good in [
            "alpine",
            "library/alpine",
            "a/b/c",
            "my-app",
            "my--app",
            "a_b",
            "a__b",
            "a.b",
            "0",
        ] {
            assert!(good.parse::<RepoName>().is_ok(), "{good:?} should parse");
        }
        for bad in [
            "", "Alpine", "a//b", "/a", "a/", "-a", "a-", "a___b", "a..b", "a_.b", "a b", "a:b",
        ] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn tags() {
        for good in ["latest", "v1.2.3", "1.0-rc1", "_x", "A"] {
            assert!(good.parse::<Tag>().is_ok(), "{good:?} should parse");
        }
        let too_long = "a".repeat(129);
        for bad in ["", ".x", "-x", "a/b", "a:b", too_long.as_str()] {
            assert!(bad.parse::<Tag>().is_err(), "{bad:?} should not parse");
        }
    }
}
