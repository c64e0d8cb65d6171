//! Image references on the command line: `[docker://]host[:port]/repository[:tag|@digest]`.

use ocisync_oci::{Digest, RepoName, Tag};

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
    /// `host[:port]`, always explicit: ocisync guesses no default registry.
    pub host: String,
    pub repository: RepoName,
    pub target: Target,
}

impl std::str::FromStr for ImageRef {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let rest = text.strip_prefix("docker://").unwrap_or(text);
        let (host, path) = rest
            .split_once('/')
            .ok_or_else(|| format!("\"{text}\" has no repository; expected host[:port]/repository[:tag|@digest]"))?;
        if host.is_empty() || !(host.contains('.') || host.contains(':') || host == "localhost") {
            return Err(format!(
                "\"{text}\" must start with a registry host (e.g. registry-1.docker.io/ or 127.0.0.1:5000/)"
            ));
        }
        let (name, target) = if let Some((name, digest)) = path.split_once('@') {
            let digest = digest.parse::<Digest>().map_err(|error| error.to_string())?;
            (name, Target::Digest(digest))
        } else {
            // A ':' after the last '/' starts the tag.
            let last_part_start = path.rfind('/').map_or(0, |slash| slash + 1);
            match path[last_part_start..].find(':') {
                Some(colon) => {
                    let split = last_part_start + colon;
                    let tag = path[split + 1..].parse::<Tag>().map_err(|error| error.to_string())?;
                    (&path[..split], Target::Tag(tag))
                }
                None => (path, Target::Repository),
            }
        };
        let repository = name.parse::<RepoName>().map_err(|error| error.to_string())?;
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

    #[test]
    fn parses_tags_digests_and_repositories() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let cases: Vec<(String, &str, &str, Target)> = vec![
            (
                "registry-1.docker.io/library/alpine:3.20".into(),
                "registry-1.docker.io",
                "library/alpine",
                Target::Tag("3.20".parse().unwrap()),
            ),
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
                Target::Digest(digest.parse().unwrap()),
            ),
            (
                "[::1]:5000/x:v1".into(),
                "[::1]:5000",
                "x",
                Target::Tag("v1".parse().unwrap()),
            ),
        ];
        for (text, host, repository, target) in cases {
            let parsed: ImageRef = text.parse().unwrap();
            assert_eq!(parsed.host, host, "{text}");
            assert_eq!(parsed.repository.as_str(), repository, "{text}");
            assert_eq!(parsed.target, target, "{text}");
        }
    }

    #[test]
    fn rejects_what_it_cannot_place() {
        for bad in [
            "alpine",
            "library/alpine:3",
            "host.io/",
            "host.io/Upper",
            "host.io/a:bad tag",
            "host.io/a@sha256:xyz",
        ] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad}");
        }
    }
}
