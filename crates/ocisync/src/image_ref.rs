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

/// `host[:port]` alone, as docker takes it: DNS labels (letters, digits, inner `-`)
/// or a bracketed IPv6 address, then an optional port. Anything else would end up in
/// the registry URL as something more: `user:password@host` sends the one and asks
/// the other, `host?x` or `host#x` reach another path than the one meant.
fn check_host(host: &str) -> Result<(), &'static str> {
    let (name, port) = match host.strip_prefix('[') {
        Some(bracketed) => {
            let (address, after) = bracketed.split_once(']').ok_or("has no closing ']'")?;
            address
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| "is not an IPv6 address in brackets")?;
            match after {
                "" => (None, None),
                _ => (
                    None,
                    Some(
                        after
                            .strip_prefix(':')
                            .ok_or("has something after ']' that is no port")?,
                    ),
                ),
            }
        }
        None => match host.split_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(host), None),
        },
    };
    if let Some(name) = name {
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if !name.split('.').all(label_ok) {
            return Err("is not host[:port] (letters, digits, '-' and '.' only)");
        }
    }
    if let Some(port) = port {
        let canonical = port
            .parse::<u16>()
            .is_ok_and(|number| number > 0 && number.to_string() == port);
        if !canonical {
            return Err("has a port that is not a number from 1 to 65535 (no leading zeros)");
        }
    }
    // The URL reads numbers its own way (`1.2.3` is 1.2.0.3, `0x7f.1` is 127.0.0.1,
    // `[::015]` is [::15]): the host must be written as the address it reaches.
    let url = url::Url::parse(&format!("https://{host}/")).map_err(|_| "is not a valid host")?;
    let written = host
        .rsplit_once(':')
        .filter(|_| port.is_some())
        .map_or(host, |(name, _)| name);
    if !url
        .host_str()
        .is_some_and(|reached| reached.eq_ignore_ascii_case(written))
    {
        return Err("is not written as the address it reaches");
    }
    Ok(())
}

impl std::str::FromStr for ImageRef {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let rest = text.strip_prefix("docker://").unwrap_or(text);
        let (host, path) = match rest.split_once('/') {
            Some((first, path)) if is_registry_host(first) => (first, path),
            _ => (HUB_API_HOST, rest),
        };
        if host != HUB_API_HOST {
            check_host(host).map_err(|problem| format!("\"{text}\": registry host \"{host}\" {problem}"))?;
        }
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

    #[test]
    fn a_host_part_that_is_not_host_and_port_alone_is_refused() {
        // Each of these once became the registry URL `https://HOST`: credentials in
        // the URL, another host than it reads as, a query or fragment, a path.
        for bad in [
            "user:secret@evil.example/app:v1",
            "evil.example@good.example/app",
            "good.example#.evil/app",
            "good.example?x=1/app",
            "good.example\\evil/app",
            "good.example:5000:6000/app",
            "good.example:99999/app",
            "good.example:/app",
            "good..example/app",
            "-good.example/app",
            "good_example.io/app",
            "[::1/app",
            "[not:v6]:5000/app",
            "[::1]x/app",
            // Found by the image_ref fuzz target: read as [::15]:0.
            "[::015]:00/x:v1",
            "good.example:0/app",
            "1.2.3/app",
            "0x7f.1/app",
            "999.1.1.1/app",
        ] {
            let error = bad.parse::<ImageRef>().unwrap_err();
            assert!(error.contains("registry host"), "{bad}: {error}");
        }
        let parsed: ImageRef = "[::1]/x".parse().unwrap();
        assert_eq!(parsed.host, "[::1]");
    }
}
