//! Image references on the command line, as docker, skopeo and crane take them:
//! `[docker://][host[:port]/]repository[:tag][@digest]`.
//!
//! The first component is a registry host when it contains a `.` or a `:` or is
//! `localhost` (docker's rule); otherwise the reference is on Docker Hub, where a
//! one-component name means `library/NAME`. Hub's names all become its API host.

use ocisync_oci::{Digest, RepoName, Tag};

use crate::docker_hub::{hub_repository, is_hub_host, HUB_API_HOST};

/// What an image reference names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every tag of the repository.
    Repository,
    Tag(Tag),
    Digest(Digest),
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `host[:port]`; `registry-1.docker.io` for Docker Hub.
    pub host: String,
    pub repository: RepoName,
    pub target: Target,
}

/// Whether the first component of a reference names a registry (docker's rule).
fn is_registry_host(component: &str) -> bool {
    component.contains(['.', ':']) || component == "localhost"
}

impl std::str::FromStr for ImageRef {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let rest = text.strip_prefix("docker://").unwrap_or(text);
        let (host, path) = match rest.split_once('/') {
            Some((first, path)) if is_registry_host(first) => (first, path),
            _ => (HUB_API_HOST, rest),
        };
        if path.is_empty() {
            return Err(format!(
                "\"{text}\" has no repository; expected [host[:port]/]repository[:tag][@digest]"
            ));
        }
        // A digest wins over a tag written beside it (`name:tag@sha256:…`), as in docker.
        let (name_and_tag, digest) = match path.split_once('@') {
            Some((name_and_tag, digest)) => (
                name_and_tag,
                Some(digest.parse::<Digest>().map_err(|error| error.to_string())?),
            ),
            None => (path, None),
        };
        // A ':' after the last '/' starts the tag.
        let last_part_start = name_and_tag.rfind('/').map_or(0, |slash| slash + 1);
        let (name, tag) = match name_and_tag[last_part_start..].find(':') {
            Some(colon) => {
                let split = last_part_start + colon;
                let tag = name_and_tag[split + 1..]
                    .parse::<Tag>()
                    .map_err(|error| error.to_string())?;
                (&name_and_tag[..split], Some(tag))
            }
            None => (name_and_tag, None),
        };
        let (host, name) = if is_hub_host(host) {
            (HUB_API_HOST, hub_repository(name))
        } else {
            (host, name.to_owned())
        };
        let repository = name.parse::<RepoName>().map_err(|error| error.to_string())?;
        let target = match (digest, tag) {
            (Some(digest), _) => Target::Digest(digest),
            (None, Some(tag)) => Target::Tag(tag),
            (None, None) => Target::Repository,
        };
        Ok(ImageRef {
            host: host.to_owned(),
            repository,
            target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUB: &str = "registry-1.docker.io";

    fn tag(name: &str) -> Target {
        Target::Tag(name.parse().unwrap())
    }

    #[test]
    fn parses_what_docker_skopeo_and_crane_take() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let by_digest = Target::Digest(digest.parse().unwrap());
        let cases: Vec<(String, &str, &str, Target)> = vec![
            ("alpine".into(), HUB, "library/alpine", Target::Repository),
            ("alpine:3.20".into(), HUB, "library/alpine", tag("3.20")),
            ("docker.io/alpine".into(), HUB, "library/alpine", Target::Repository),
            ("docker.io/library/alpine:3".into(), HUB, "library/alpine", tag("3")),
            ("index.docker.io/bitnami/redis:7".into(), HUB, "bitnami/redis", tag("7")),
            (
                "registry-1.docker.io/library/alpine:3.20".into(),
                HUB,
                "library/alpine",
                tag("3.20"),
            ),
            ("bitnami/redis".into(), HUB, "bitnami/redis", Target::Repository),
            ("docker://alpine:edge".into(), HUB, "library/alpine", tag("edge")),
            (format!("alpine@{digest}"), HUB, "library/alpine", by_digest.clone()),
            (
                format!("alpine:3.20@{digest}"),
                HUB,
                "library/alpine",
                by_digest.clone(),
            ),
            ("ghcr.io/org/app:1.2".into(), "ghcr.io", "org/app", tag("1.2")),
            ("ghcr.io/app".into(), "ghcr.io", "app", Target::Repository),
            ("localhost:5000/app".into(), "localhost:5000", "app", Target::Repository),
            ("localhost/app:v1".into(), "localhost", "app", tag("v1")),
            (
                "docker://127.0.0.1:5000/team/app".into(),
                "127.0.0.1:5000",
                "team/app",
                Target::Repository,
            ),
            (
                format!("localhost/a/b/c@{digest}"),
                "localhost",
                "a/b/c",
                by_digest.clone(),
            ),
            (format!("q.io/a:v1@{digest}"), "q.io", "a", by_digest),
            ("[::1]:5000/x:v1".into(), "[::1]:5000", "x", tag("v1")),
        ];
        for (text, host, repository, target) in cases {
            let parsed: ImageRef = text.parse().unwrap_or_else(|error| panic!("{text}: {error}"));
            assert_eq!(
                (parsed.host.as_str(), parsed.repository.as_str(), &parsed.target),
                (host, repository, &target),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_what_it_cannot_place() {
        for bad in [
            "",
            "docker://",
            "Alpine",
            "host.io/",
            "host.io/Upper",
            "host.io/a:bad tag",
            "host.io/a@sha256:xyz",
            "alpine:",
        ] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad}");
        }
    }
}
