//! Table tests of credential helpers in the config and of Docker Hub's names.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::credential_helper::CredentialHelper;
use ocisync_registry::Credentials;

/// A directory to put on PATH, holding an executable `docker-credential-found`.
fn path_with_helper() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let helper = dir.path().join("docker-credential-found");
    std::fs::write(&helper, "#!/bin/sh\nexit 1\n").unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Loads a config whose `mirror` registry has `mirror_keys` (YAML lines, indented by 4),
/// from `dir`, with `dir` as PATH.
fn load_in(dir: &Path, mirror_urls: &str, mirror_keys: &str) -> Result<Config, ConfigError> {
    let text = format!(
        "version: 1\nregistries:\n  upstream:\n    urls: [\"http://127.0.0.1:5001\"]\n  mirror:\n    urls: [{mirror_urls}]\n{mirror_keys}syncs:\n  - from: upstream\n    to: mirror\n"
    );
    let path = dir.display().to_string();
    let env = move |name: &str| (name == "PATH").then(|| path.clone());
    Config::from_yaml(&text, &dir.join("ocisync.yaml"), &env)
}

fn helper(name: &str, server: &str, timeout: Duration) -> Option<CredentialHelper> {
    Some(CredentialHelper {
        name: name.to_owned(),
        server: server.to_owned(),
        timeout,
    })
}

const LOCAL: &str = "\"http://127.0.0.1:5002\"";
const DEFAULT: Duration = crate::credential_helper::DEFAULT_TIMEOUT;

#[test]
fn credential_helper_is_named_and_found_on_path() {
    let dir = path_with_helper();
    let config = load_in(dir.path(), LOCAL, "    credential_helper: found\n").unwrap();
    let mirror = &config.registries["mirror"];
    assert_eq!(mirror.credential_helper, helper("found", "127.0.0.1:5002", DEFAULT));
    assert_eq!(mirror.client.credentials, None, "asked at every pass, not at load");
    let config = load_in(
        dir.path(),
        LOCAL,
        "    credential_helper: found\n    credential_helper_timeout: 2s\n",
    )
    .unwrap();
    assert_eq!(
        config.registries["mirror"].credential_helper,
        helper("found", "127.0.0.1:5002", Duration::from_secs(2))
    );
    let shown = crate::show_config::render(&config).unwrap();
    assert!(shown.contains("credential helper docker-credential-found"), "{shown}");
}

#[test]
fn credential_helper_mistakes_are_config_errors() {
    let dir = path_with_helper();
    let cases = [
        (
            "    credential_helper: absent\n",
            "registries.mirror.credential_helper: unknown credential helper \"absent\": docker-credential-absent is not on PATH",
        ),
        (
            "    credential_helper: ../found\n",
            "registries.mirror.credential_helper: invalid credential helper name",
        ),
        (
            "    credential_helper: found\n    password_env: X\n",
            "set one of password_env, password_file, docker_config and credential_helper",
        ),
        (
            "    credential_helper: found\n    username: bot\n",
            "registries.mirror.username: the username comes from the credential helper",
        ),
        (
            "    credential_helper_timeout: 5s\n",
            "registries.mirror.credential_helper_timeout: has no meaning without credential_helper or docker_config",
        ),
        (
            "    credential_helper: found\n    credential_helper_timeout: 0s\n",
            "registries.mirror.credential_helper_timeout: must be more than 0s",
        ),
    ];
    for (keys, expected) in cases {
        let error = load_in(dir.path(), LOCAL, keys).unwrap_err().to_string();
        assert!(error.contains(expected), "{keys}:\n{error}");
    }
    let layout = "version: 1\nregistries:\n  upstream:\n    urls: [\"http://127.0.0.1:5001\"]\n  mirror:\n    layout: out\n    credential_helper: found\nsyncs:\n  - from: upstream\n    to: mirror\n";
    let error = Config::from_yaml(layout, Path::new("ocisync.yaml"), &|_| None)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("registries.mirror.credential_helper: has no meaning for a layout directory"),
        "{error}"
    );
}

#[test]
fn docker_config_helpers_are_checked_at_load() {
    let dir = path_with_helper();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"credsStore": "found", "credHelpers": {"127.0.0.1:5003": "missing"}}"#,
    )
    .unwrap();
    let config = load_in(dir.path(), LOCAL, "    docker_config: config.json\n").unwrap();
    assert_eq!(
        config.registries["mirror"].credential_helper,
        helper("found", "127.0.0.1:5002", DEFAULT)
    );
    let error = load_in(
        dir.path(),
        "\"http://127.0.0.1:5003\"",
        "    docker_config: config.json\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains(
            "registries.mirror.docker_config: unknown credential helper \"missing\": docker-credential-missing is not on PATH"
        ),
        "{error}"
    );
}

#[test]
fn docker_hub_names_become_its_api_host() {
    let dir = path_with_helper();
    for name in [
        "https://docker.io",
        "https://index.docker.io",
        "https://registry-1.docker.io",
    ] {
        let config = load_in(dir.path(), &format!("\"{name}\""), "").unwrap();
        let mirror = &config.registries["mirror"];
        assert_eq!(mirror.urls[0].as_str(), "https://registry-1.docker.io/", "{name}");
        assert!(mirror.docker_hub, "{name}");
        assert!(!config.registries["upstream"].docker_hub);
        let shown = crate::show_config::render(&config).unwrap();
        assert!(shown.contains("https://registry-1.docker.io/"), "{shown}");
        if !name.contains("registry-1") {
            assert!(!shown.contains(name), "{shown}");
        }
    }
    // A login stored under docker's Hub key serves every Hub name; a helper is asked
    // about Hub the way docker asks it.
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"auths": {"https://index.docker.io/v1/": {"auth": "Ym90OnMzY3JldA=="}}}"#,
    )
    .unwrap();
    let config = load_in(dir.path(), "\"https://docker.io\"", "    docker_config: config.json\n").unwrap();
    assert_eq!(
        config.registries["mirror"].client.credentials,
        Some(Credentials::password("bot", ocisync_registry::Secret::new("s3cret")))
    );
    let config = load_in(dir.path(), "\"https://docker.io\"", "    credential_helper: found\n").unwrap();
    assert_eq!(
        config.registries["mirror"].credential_helper,
        helper("found", "https://index.docker.io/v1/", DEFAULT)
    );
}
