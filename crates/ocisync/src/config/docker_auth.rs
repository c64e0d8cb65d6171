//! Credentials from a Docker `config.json` (`docker login` writes it; Kubernetes
//! `dockerconfigjson` Secrets hold the same document).
//!
//! For a registry host, in this order: a helper named in `credHelpers` for the host,
//! else an `auths` entry holding credentials (`auth`, the base64 of `user:password`;
//! `username` + `password`; or `identitytoken`), else the `credsStore` helper. An
//! `auths` entry without credentials (`{}`, which docker writes beside a `credsStore`)
//! is no entry. Helpers are only named here; they run at every pass
//! ([`crate::credential_helper`]).

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use ocisync_registry::{read_small_text, Credentials, Secret, SMALL_FILE_LIMIT};
use serde::Deserialize;
use url::Url;

use crate::docker_hub::is_hub_host;

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

impl AuthEntry {
    fn is_empty(&self) -> bool {
        [&self.auth, &self.username, &self.password, &self.identitytoken]
            .iter()
            .all(|field| field.as_deref().is_none_or(str::is_empty))
    }
}

/// Where a Docker config sends ocisync for one registry's credentials.
#[derive(Debug, PartialEq, Eq)]
pub enum DockerCredentials {
    /// Held in the file (`auths`).
    Stored(Credentials),
    /// To be asked of `docker-credential-NAME` about `url` (`credHelpers` or `credsStore`).
    Helper { name: String, url: Url },
}

/// What `path` says about the first of `urls` it knows. Errors never contain
/// credential material.
pub fn credentials_from_docker_config(path: &Path, urls: &[Url]) -> Result<Option<DockerCredentials>, String> {
    let text =
        read_small_text(path, SMALL_FILE_LIMIT).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    docker_credentials(&text, urls).map_err(|reason| format!("{}{reason}", path.display()))
}

/// [`credentials_from_docker_config`] of the file's text; an error is what follows the
/// file's name in the message.
pub(crate) fn docker_credentials(text: &str, urls: &[Url]) -> Result<Option<DockerCredentials>, String> {
    let config: DockerConfig = serde_json::from_str(text)
        .map_err(|error| format!(" is not a Docker config.json: {}", json_problem(&error)))?;
    for url in urls {
        let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
        let helper = config
            .cred_helpers
            .iter()
            .find(|(key, _)| same_registry(&key_host(key), host));
        if let Some((_, name)) = helper {
            return Ok(Some(DockerCredentials::Helper {
                name: name.clone(),
                url: url.clone(),
            }));
        }
        let entry = config
            .auths
            .iter()
            .find(|(key, entry)| !entry.is_empty() && same_registry(&key_host(key), host));
        if let Some((key, entry)) = entry {
            return decode(entry)
                .map(|credentials| Some(DockerCredentials::Stored(credentials)))
                .map_err(|reason| format!(": the entry for \"{key}\" {reason}"));
        }
    }
    Ok(match (&config.creds_store, urls.first()) {
        (Some(name), Some(url)) if !name.is_empty() => Some(DockerCredentials::Helper {
            name: name.clone(),
            url: url.clone(),
        }),
        _ => None,
    })
}

/// serde_json's message without the value it quotes: a type error quotes the offending
/// value (`invalid type: string "dXNlcjpwYXNz", expected struct AuthEntry`), and here
/// that value can be a credential. Syntax errors quote nothing.
fn json_problem(error: &serde_json::Error) -> String {
    let position = format!("line {} column {}", error.line(), error.column());
    if error.classify() != serde_json::error::Category::Data {
        return error.to_string();
    }
    let message = error.to_string();
    let message = message.strip_suffix(&format!(" at {position}")).unwrap_or(&message);
    // What serde expected comes last and names a type of ours, never input.
    let problem = match message.rsplit_once(", expected ") {
        Some((_, expected)) => format!("a value of the wrong type or form (expected {expected})"),
        // `missing field `auths``, `duplicate field `auth``: field names of ours.
        None if message.starts_with("missing field `") || message.starts_with("duplicate field `") => {
            message.to_owned()
        }
        None => "a value of the wrong type or form".to_owned(),
    };
    format!("{problem} at {position}")
}

fn decode(entry: &AuthEntry) -> Result<Credentials, &'static str> {
    if let Some(token) = entry.identitytoken.as_deref().filter(|token| !token.is_empty()) {
        return Ok(Credentials::IdentityToken(Secret::new(token)));
    }
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(Credentials::password(username.clone(), Secret::new(password.clone())));
    }
    let encoded = entry
        .auth
        .as_deref()
        .ok_or("has neither auth nor username and password nor identitytoken")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| "has an auth value that is not base64")?;
    let decoded = String::from_utf8(decoded).map_err(|_| "has an auth value that is not UTF-8")?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or("has an auth value without a ':' between user and password")?;
    Ok(Credentials::password(username, Secret::new(password)))
}

/// `https://index.docker.io/v1/` → `index.docker.io`; `host:5000` stays as it is.
fn key_host(key: &str) -> String {
    let without_scheme = key.split_once("://").map_or(key, |(_, rest)| rest);
    without_scheme.split('/').next().unwrap_or("").to_ascii_lowercase()
}

/// The same host and port, or two of Docker Hub's names (docker stores Hub under
/// index.docker.io; ocisync talks to registry-1.docker.io).
fn same_registry(key_host: &str, url_host: &str) -> bool {
    let url_host = url_host.to_ascii_lowercase();
    key_host == url_host || (is_hub_host(key_host) && is_hub_host(&url_host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    fn urls(texts: &[&str]) -> Vec<Url> {
        texts.iter().map(|text| Url::parse(text).unwrap()).collect()
    }

    fn lookup(text: &str, registry_urls: &[&str]) -> Option<DockerCredentials> {
        credentials_from_docker_config(write(text).path(), &urls(registry_urls)).unwrap()
    }

    fn stored(username: &str, password: &str) -> Option<DockerCredentials> {
        Some(DockerCredentials::Stored(Credentials::password(
            username,
            Secret::new(password),
        )))
    }

    fn helper(name: &str, url: &str) -> Option<DockerCredentials> {
        Some(DockerCredentials::Helper {
            name: name.to_owned(),
            url: Url::parse(url).unwrap(),
        })
    }

    #[test]
    fn reads_auth_username_password_and_identity_token_entries() {
        // "bot:pa:ss": a password may contain ':'.
        let text = r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "Ym90OnBhOnNz"},
            "registry.example.com:5000": {"username": "u2", "password": "p2"},
            "acr.example.io": {"auth": "", "identitytoken": "refresh-me"}
        }}"#;
        assert_eq!(lookup(text, &["https://registry-1.docker.io"]), stored("bot", "pa:ss"));
        assert_eq!(
            lookup(text, &["https://down.example.com", "https://registry.example.com:5000"]),
            stored("u2", "p2")
        );
        assert_eq!(
            lookup(text, &["https://acr.example.io"]),
            Some(DockerCredentials::Stored(Credentials::IdentityToken(Secret::new(
                "refresh-me"
            ))))
        );
        assert_eq!(
            lookup(text, &["https://registry.example.com"]),
            None,
            "the port is part of the registry"
        );
    }

    #[test]
    fn every_hub_name_matches_every_other() {
        for key in ["docker.io", "https://index.docker.io/v1/", "registry-1.docker.io"] {
            let text = format!(r#"{{"auths": {{"{key}": {{"username": "u", "password": "p"}}}}}}"#);
            for url in ["https://registry-1.docker.io", "https://index.docker.io"] {
                assert_eq!(lookup(&text, &[url]), stored("u", "p"), "{key} for {url}");
            }
        }
    }

    #[test]
    fn helpers_come_first_then_auths_then_the_store() {
        let text = r#"{
            "credsStore": "desktop",
            "credHelpers": {"ecr.example.com": "ecr-login", "docker.io": "hub-helper"},
            "auths": {
                "ecr.example.com": {"auth": "dTpw"},
                "ghcr.io": {"auth": "dTpw"},
                "quay.io": {}
            }
        }"#;
        assert_eq!(
            lookup(text, &["https://ecr.example.com"]),
            helper("ecr-login", "https://ecr.example.com"),
            "credHelpers before auths"
        );
        assert_eq!(
            lookup(text, &["https://ghcr.io"]),
            stored("u", "p"),
            "auths before credsStore"
        );
        assert_eq!(
            lookup(text, &["https://quay.io"]),
            helper("desktop", "https://quay.io"),
            "an empty auths entry is no entry"
        );
        assert_eq!(
            lookup(text, &["https://other.example"]),
            helper("desktop", "https://other.example")
        );
        assert_eq!(
            lookup(text, &["https://registry-1.docker.io"]),
            helper("hub-helper", "https://registry-1.docker.io"),
            "a Hub name in credHelpers"
        );
        assert_eq!(
            lookup(text, &["https://other.example", "https://ghcr.io"]),
            stored("u", "p"),
            "an entry for any url before the default store"
        );
        assert_eq!(lookup(r#"{"auths": {}}"#, &["https://ghcr.io"]), None);
    }

    #[test]
    fn bad_entries_are_clear_errors_without_secrets() {
        let file = write(r#"{"auths": {"r.example.com": {"auth": "c2VjcmV0LW5vLWNvbG9u"}}}"#);
        let error = credentials_from_docker_config(file.path(), &urls(&["https://r.example.com"])).unwrap_err();
        assert!(error.contains("without a ':'"), "{error}");
        assert!(
            !error.contains("secret-no-colon") && !error.contains("c2VjcmV0"),
            "{error}"
        );
        let file = write("not json");
        assert!(
            credentials_from_docker_config(file.path(), &urls(&["https://r.example.com"]))
                .unwrap_err()
                .contains("not a Docker config.json")
        );
    }

    #[test]
    fn a_malformed_entry_is_not_quoted_back() {
        // An entry written as the bare base64 string, a password as a number beside it:
        // serde_json quotes the value it did not expect.
        for (text, quoted) in [
            (
                r#"{"auths": {"r.example.com": "dXNlcjpodW50ZXIy"}}"#,
                "dXNlcjpodW50ZXIy",
            ),
            (r#"{"auths": "dXNlcjpodW50ZXIy"}"#, "dXNlcjpodW50ZXIy"),
            (r#"{"auths": {"r.example.com": {"auth": 12345678901}}}"#, "12345678901"),
            (
                r#"{"auths": {"r.example.com": {"password": ["hunter2-secret"]}}}"#,
                "hunter2-secret",
            ),
        ] {
            let error =
                credentials_from_docker_config(write(text).path(), &urls(&["https://r.example.com"])).unwrap_err();
            assert!(
                error.contains("not a Docker config.json: a value of the wrong type"),
                "{error}"
            );
            assert!(error.contains("line 1 column"), "{error}");
            assert!(!error.contains(quoted), "{error}");
        }
    }

    #[test]
    fn a_device_or_fifo_is_refused_not_read() {
        let error =
            credentials_from_docker_config(Path::new("/dev/zero"), &urls(&["https://r.example.com"])).unwrap_err();
        assert_eq!(
            error,
            "cannot read /dev/zero: is a character device, not a regular file"
        );
    }
}
