//! Credentials from a Docker `config.json` (`docker login` writes it; Kubernetes
//! `dockerconfigjson` Secrets hold the same document).
//!
//! Only the `auths` section is read: `auth` (base64 of `user:password`) or
//! `username` + `password`. Credential helpers (`credsStore`, `credHelpers`) run
//! programs and are not supported; a file that only has those gets a clear error.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use ocisync_registry::{Credentials, Secret};
use serde::Deserialize;
use url::Url;

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
}

/// The credentials `path` holds for the first of `urls` it has an entry for.
/// Errors never contain credential material.
pub fn credentials_from_docker_config(path: &Path, urls: &[Url]) -> Result<Option<Credentials>, String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let config: DockerConfig = serde_json::from_str(&text)
        // serde_json's message names the position, never the content of a value.
        .map_err(|error| format!("{} is not a Docker config.json: {error}", path.display()))?;
    for url in urls {
        let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
        let entry = config.auths.iter().find(|(key, _)| same_registry(&key_host(key), host));
        if let Some((key, entry)) = entry {
            return decode(entry)
                .map(Some)
                .map_err(|reason| format!("{}: the entry for \"{key}\" {reason}", path.display()));
        }
        if config.creds_store.is_some() || config.cred_helpers.keys().any(|key| same_registry(key, host)) {
            return Err(format!(
                "{} uses a credential helper for {host}; helpers are not supported, put the credentials under \"auths\"",
                path.display()
            ));
        }
    }
    Ok(None)
}

fn decode(entry: &AuthEntry) -> Result<Credentials, &'static str> {
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(Credentials {
            username: username.clone(),
            password: Secret::new(password.clone()),
        });
    }
    let encoded = entry
        .auth
        .as_deref()
        .ok_or("has neither auth nor username and password")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| "has an auth value that is not base64")?;
    let decoded = String::from_utf8(decoded).map_err(|_| "has an auth value that is not UTF-8")?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or("has an auth value without a ':' between user and password")?;
    Ok(Credentials {
        username: username.to_owned(),
        password: Secret::new(password),
    })
}

/// `https://index.docker.io/v1/` → `index.docker.io`; `host:5000` stays as it is.
fn key_host(key: &str) -> String {
    let without_scheme = key.split_once("://").map_or(key, |(_, rest)| rest);
    without_scheme.split('/').next().unwrap_or("").to_ascii_lowercase()
}

/// Docker Hub answers under several names; `docker login` stores it as index.docker.io.
fn same_registry(key_host: &str, url_host: &str) -> bool {
    const HUB: [&str; 4] = [
        "index.docker.io",
        "registry-1.docker.io",
        "docker.io",
        "registry.hub.docker.com",
    ];
    let url_host = url_host.to_ascii_lowercase();
    key_host == url_host || (HUB.contains(&key_host) && HUB.contains(&url_host.as_str()))
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

    #[test]
    fn reads_auth_and_username_password_entries() {
        // "bot:pa:ss" — a password may contain ':'.
        let file = write(
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "Ym90OnBhOnNz"},
                "registry.example.com:5000": {"username": "u2", "password": "p2"}
            }}"#,
        );
        let hub = credentials_from_docker_config(file.path(), &urls(&["https://registry-1.docker.io"]))
            .unwrap()
            .unwrap();
        assert_eq!(hub.username, "bot");
        assert_eq!(hub.password.expose(), "pa:ss");
        let other = credentials_from_docker_config(
            file.path(),
            &urls(&["https://down.example.com", "https://registry.example.com:5000"]),
        )
        .unwrap()
        .unwrap();
        assert_eq!((other.username.as_str(), other.password.expose()), ("u2", "p2"));
        assert!(
            credentials_from_docker_config(file.path(), &urls(&["https://registry.example.com"]))
                .unwrap()
                .is_none(),
            "the port is part of the registry"
        );
    }

    #[test]
    fn bad_entries_and_helpers_are_clear_errors_without_secrets() {
        let file = write(r#"{"auths": {"r.example.com": {"auth": "c2VjcmV0LW5vLWNvbG9u"}}}"#);
        let error = credentials_from_docker_config(file.path(), &urls(&["https://r.example.com"])).unwrap_err();
        assert!(error.contains("without a ':'"), "{error}");
        assert!(
            !error.contains("secret-no-colon") && !error.contains("c2VjcmV0"),
            "{error}"
        );
        let file = write(r#"{"credsStore": "desktop"}"#);
        let error = credentials_from_docker_config(file.path(), &urls(&["https://r.example.com"])).unwrap_err();
        assert!(error.contains("credential helper"), "{error}");
        let file = write("not json");
        assert!(
            credentials_from_docker_config(file.path(), &urls(&["https://r.example.com"]))
                .unwrap_err()
                .contains("not a Docker config.json")
        );
    }
}
