//! Platform selection for multi-arch images: which index entries a rule keeps.

use std::fmt;
use std::str::FromStr;

use ocisync_oci::{Descriptor, Platform};

use super::rule_error::RuleError;

/// Annotation that ties a Docker/buildkit attestation manifest to the image it describes.
const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";

/// One wanted platform, written `os/architecture[/variant]`. Without a variant it
/// matches every variant of that architecture (`linux/arm` takes v6 and v7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    /// `linux`, `windows`, …
    pub os: String,
    /// `amd64`, `arm64`, …
    pub architecture: String,
    /// `v7`, `v8`, …; `None`: any.
    pub variant: Option<String>,
}

impl FromStr for PlatformSpec {
    type Err = RuleError;

    fn from_str(text: &str) -> Result<Self, RuleError> {
        let parts: Vec<&str> = text.split('/').collect();
        let valid = |part: &&str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.' || c == '-')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(valid) {
            return Err(RuleError::Platform { text: text.to_owned() });
        }
        Ok(PlatformSpec {
            os: parts[0].to_owned(),
            architecture: parts[1].to_owned(),
            variant: parts.get(2).map(|variant| (*variant).to_owned()),
        })
    }
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl PlatformSpec {
    /// Whether an index entry's platform is this one (any variant when none is given).
    pub fn matches(&self, platform: &Platform) -> bool {
        self.os == platform.os
            && self.architecture == platform.architecture
            && self
                .variant
                .as_ref()
                .is_none_or(|variant| platform.variant.as_deref() == Some(variant.as_str()))
    }
}

/// The entries of an index that `wanted` keeps, in their original order. An entry
/// without a platform is kept only when it is an attestation of a kept entry, so
/// provenance and SBOM attestations travel with the platforms they describe.
pub fn select_platforms(entries: &[Descriptor], wanted: &[PlatformSpec]) -> Vec<Descriptor> {
    let is_kept = |entry: &Descriptor| {
        entry
            .platform
            .as_ref()
            .is_some_and(|platform| platform.os != "unknown" && wanted.iter().any(|spec| spec.matches(platform)))
    };
    let kept_digests: Vec<String> = entries
        .iter()
        .filter(|entry| is_kept(entry))
        .map(|entry| entry.digest.to_string())
        .collect();
    entries
        .iter()
        .filter(|entry| {
            is_kept(entry)
                || entry
                    .annotations
                    .as_ref()
                    .and_then(|annotations| annotations.get(REFERENCE_DIGEST))
                    .is_some_and(|subject| kept_digests.contains(subject))
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ocisync_oci::Digest;

    use super::*;

    fn entry(n: u8, platform: Option<(&str, &str, Option<&str>)>) -> Descriptor {
        let mut descriptor = Descriptor::new(
            "application/vnd.oci.image.manifest.v1+json",
            Digest::sha256_of(&[n]),
            100,
        );
        descriptor.platform = platform.map(|(os, architecture, variant)| Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
            os_version: None,
        });
        descriptor
    }

    fn attestation_of(n: u8, subject: &Descriptor) -> Descriptor {
        let mut descriptor = entry(n, Some(("unknown", "unknown", None)));
        descriptor.annotations = Some(BTreeMap::from([
            (REFERENCE_DIGEST.to_owned(), subject.digest.to_string()),
            (
                "vnd.docker.reference.type".to_owned(),
                "attestation-manifest".to_owned(),
            ),
        ]));
        descriptor
    }

    fn specs(texts: &[&str]) -> Vec<PlatformSpec> {
        texts.iter().map(|text| text.parse().unwrap()).collect()
    }

    #[test]
    fn selects_wanted_platforms_and_their_attestations() {
        let amd64 = entry(1, Some(("linux", "amd64", None)));
        let arm64 = entry(2, Some(("linux", "arm64", Some("v8"))));
        let armv7 = entry(3, Some(("linux", "arm", Some("v7"))));
        let windows = entry(4, Some(("windows", "amd64", None)));
        let amd64_attestation = attestation_of(5, &amd64);
        let armv7_attestation = attestation_of(6, &armv7);
        let no_platform = entry(7, None);
        let all = vec![
            amd64.clone(),
            arm64.clone(),
            armv7.clone(),
            windows,
            amd64_attestation.clone(),
            armv7_attestation,
            no_platform,
        ];
        // (wanted, digests kept)
        let cases: Vec<(Vec<PlatformSpec>, Vec<&Descriptor>)> = vec![
            (specs(&["linux/amd64"]), vec![&amd64, &amd64_attestation]),
            (specs(&["linux/arm64"]), vec![&arm64]),
            (
                specs(&["linux/arm64/v8", "linux/amd64"]),
                vec![&amd64, &arm64, &amd64_attestation],
            ),
            (specs(&["linux/arm64/v9"]), vec![]),
            (specs(&["linux/arm"]), vec![&armv7, &all[5]]),
            (specs(&["linux/arm/v6"]), vec![]),
            (specs(&["darwin/arm64"]), vec![]),
        ];
        for (wanted, expected) in cases {
            let kept = select_platforms(&all, &wanted);
            let expected: Vec<Descriptor> = expected.into_iter().cloned().collect();
            assert_eq!(kept, expected, "{wanted:?}");
        }
    }

    #[test]
    fn platform_specs_parse_strictly() {
        assert_eq!(
            "linux/arm/v7".parse::<PlatformSpec>().unwrap().to_string(),
            "linux/arm/v7"
        );
        for bad in ["linux", "linux/", "Linux/amd64", "linux/amd64/v8/x", "/amd64", ""] {
            assert!(bad.parse::<PlatformSpec>().is_err(), "{bad}");
        }
    }
}
