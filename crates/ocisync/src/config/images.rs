//! The exact images of an `images` rule: `NAME:TAG` or `NAME@sha256:…`, written in the
//! config or one per line in an `images_file`.

use std::path::{Path, PathBuf};

use ocisync_engine::ImageReference;
use ocisync_oci::{Digest, Reference, RepoName, Tag};

use crate::docker_hub::{hub_repository, is_hub_host};

/// Largest images file read: a list of references, not a data set.
const MAX_IMAGES_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// An `images_file` of a rule, read when the config loads and again before every pass.
#[derive(Debug, Clone)]
pub struct ImagesFile {
    /// The rule's position in its sync's `content`.
    pub rule: usize,
    pub path: PathBuf,
    /// The rule's `images` written in the config, which come first.
    pub inline: Vec<ImageReference>,
    /// Whether the rule's registry is Docker Hub (one-component names mean `library/`).
    pub docker_hub: bool,
}

impl ImagesFile {
    /// The rule's images now: the inline ones, then the file's. Every bad line is in
    /// the error, each with the file and its line number.
    pub fn read(&self) -> Result<Vec<ImageReference>, String> {
        let mut images = self.inline.clone();
        images.extend(read_images_file(&self.path, self.docker_hub)?);
        Ok(images)
    }
}

/// One reference as written: `NAME:TAG`, `NAME@DIGEST` or `NAME:TAG@DIGEST` (the digest
/// wins, as docker decides). On Docker Hub `alpine` is `library/alpine`, and a leading
/// `docker.io/` is dropped.
pub fn parse_image_reference(text: &str, docker_hub: bool) -> Result<ImageReference, String> {
    let text = text.trim();
    let (name, reference) = if let Some((before, digest)) = text.split_once('@') {
        let digest = digest
            .parse::<Digest>()
            .map_err(|error| format!("invalid reference \"{text}\": {error}"))?;
        // A tag before the digest is informative only.
        let name = match before.rfind(':') {
            Some(colon) if !before[colon..].contains('/') => &before[..colon],
            _ => before,
        };
        (name, Reference::Digest(digest))
    } else {
        let last_part_start = text.rfind('/').map_or(0, |slash| slash + 1);
        let Some(colon) = text[last_part_start..].find(':') else {
            return Err(format!(
                "invalid reference \"{text}\": name a tag or a digest (NAME:TAG or NAME@sha256:…); for every tag use `repositories:`"
            ));
        };
        let split = last_part_start + colon;
        let tag = text[split + 1..]
            .parse::<Tag>()
            .map_err(|error| format!("invalid reference \"{text}\": {error}"))?;
        (&text[..split], Reference::Tag(tag))
    };
    let repository =
        repository_name(name, docker_hub).map_err(|error| format!("invalid reference \"{text}\": {error}"))?;
    Ok(ImageReference { repository, reference })
}

/// A repository name of a `repositories` or `images` entry, with Docker Hub's
/// conventions applied when the registry is Docker Hub.
pub fn repository_name(name: &str, docker_hub: bool) -> Result<RepoName, String> {
    let name = if docker_hub {
        let without_host = match name.split_once('/') {
            Some((host, rest)) if is_hub_host(host) => rest,
            _ => name,
        };
        hub_repository(without_host)
    } else {
        name.to_owned()
    };
    name.parse::<RepoName>().map_err(|error| error.to_string())
}

/// Reads an images file: one reference per line; blank lines and `#` comments are
/// ignored. Every bad line is reported, each as `FILE:LINE: problem`.
pub fn read_images_file(path: &Path, docker_hub: bool) -> Result<Vec<ImageReference>, String> {
    let text = ocisync_registry::read_small_text(path, MAX_IMAGES_FILE_BYTES)
        .map_err(|error| format!("cannot read images file {}: {error}", path.display()))?;
    let mut images = Vec::new();
    let mut problems = Vec::new();
    for (index, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        let content = line.split_once('#').map_or(line, |(before, _)| before).trim();
        if content.is_empty() {
            continue;
        }
        match parse_image_reference(content, docker_hub) {
            Ok(image) => images.push(image),
            Err(problem) => problems.push(format!("{}:{}: {problem}", path.display(), index + 1)),
        }
    }
    if problems.is_empty() {
        Ok(images)
    } else {
        Err(problems.join("\n  "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str, docker_hub: bool) -> Result<(String, String), String> {
        parse_image_reference(text, docker_hub).map(|image| {
            let separator = if matches!(image.reference, Reference::Digest(_)) {
                "@"
            } else {
                ":"
            };
            (image.repository.to_string(), format!("{separator}{}", image.reference))
        })
    }

    #[test]
    fn references_with_and_without_docker_hub_conventions() {
        let digest = format!("sha256:{}", "c".repeat(64));
        let cases: Vec<(String, bool, &str, String)> = vec![
            ("alpine:3.20".into(), true, "library/alpine", ":3.20".into()),
            ("docker.io/nginx:1.27".into(), true, "library/nginx", ":1.27".into()),
            ("bitnami/redis:7".into(), true, "bitnami/redis", ":7".into()),
            ("alpine:3.20".into(), false, "alpine", ":3.20".into()),
            (format!("team/app@{digest}"), false, "team/app", format!("@{digest}")),
            (
                format!("busybox:1.36@{digest}"),
                true,
                "library/busybox",
                format!("@{digest}"),
            ),
            ("a/b/c:v1.0.0-rc.1".into(), false, "a/b/c", ":v1.0.0-rc.1".into()),
        ];
        for (text, hub, repository, reference) in cases {
            assert_eq!(
                parsed(&text, hub),
                Ok((repository.to_owned(), reference)),
                "{text} (hub: {hub})"
            );
        }
    }

    #[test]
    fn malformed_references_say_what_is_wrong() {
        for (text, expected) in [
            ("alpine", "name a tag or a digest"),
            ("Alpine:1", "invalid reference \"Alpine:1\""),
            ("app:bad tag", "invalid reference"),
            ("app@sha256:xyz", "invalid reference"),
            ("app:", "invalid reference"),
        ] {
            let error = parsed(text, false).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn images_file_skips_comments_and_names_every_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images.txt");
        std::fs::write(
            &path,
            "\u{feff}# mirrored for prod\nalpine:3.20\n\n  nginx:1.27   # web\nnot a ref\nteam/app\n",
        )
        .unwrap();
        let error = read_images_file(&path, true).unwrap_err();
        let shown = path.display().to_string();
        assert!(
            error.contains(&format!("{shown}:5: invalid reference \"not a ref\"")),
            "{error}"
        );
        assert!(
            error.contains(&format!("{shown}:6: invalid reference \"team/app\"")),
            "{error}"
        );
        assert!(!error.contains(":2:") && !error.contains(":4:"), "{error}");
        std::fs::write(&path, "alpine:3.20\n  nginx:1.27   # web\n").unwrap();
        let images = read_images_file(&path, true).unwrap();
        let names: Vec<String> = images.iter().map(|image| image.repository.to_string()).collect();
        assert_eq!(names, ["library/alpine", "library/nginx"]);
        assert!(read_images_file(&dir.path().join("missing.txt"), true)
            .unwrap_err()
            .contains("cannot read images file"));
    }
}
