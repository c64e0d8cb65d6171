//! `${VAR}` in config values: expanded from the environment, an unset one a problem at
//! its key path, and a password-like key's value never shown.

use std::path::Path;

use super::*;
use ocisync_registry::Credentials;

const TEXT: &str = "version: 1
registries:
  upstream:
    urls: [\"${UPSTREAM_URL}\"]
    max_blob_size: ${MAX_BLOB}
  mirror:
    urls: [\"http://${MIRROR_HOST}:5002\"]
    username: ${MIRROR_USER}
    password_env: ${PASSWORD_VARIABLE}
syncs:
  - name: \"nightly-$${NOT_EXPANDED}\"
    from: upstream
    to: mirror
    content:
      - prefix: \"team/**\"
        tags: {include: [\"^v\\\\d+$\"]}
";

fn environment(name: &str) -> Option<String> {
    let value = match name {
        "UPSTREAM_URL" => "https://registry.example.com",
        "MAX_BLOB" => "2GiB",
        "MIRROR_HOST" => "127.0.0.1",
        "MIRROR_USER" => "bot",
        "PASSWORD_VARIABLE" => "MIRROR_PASSWORD",
        "MIRROR_PASSWORD" => "s3cret",
        "PASSWORD_PATH" => "/nonexistent/hidden-directory/password",
        "URL_WITH_PASSWORD" => "https://bot:hunter2@registry.example.com",
        _ => return None,
    };
    Some(value.to_owned())
}

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_yaml(text, Path::new("ocisync.yaml"), &environment)
}

#[test]
fn string_values_come_from_the_environment() {
    let config = load(TEXT).unwrap();
    let upstream = &config.registries["upstream"];
    assert_eq!(upstream.urls[0].as_str(), "https://registry.example.com/");
    assert_eq!(upstream.max_blob_size, Some(2 << 30));
    let mirror = &config.registries["mirror"];
    assert_eq!(mirror.urls[0].as_str(), "http://127.0.0.1:5002/");
    let credentials = mirror.client.credentials.as_ref().unwrap();
    assert_eq!(credentials.username(), Some("bot"));
    assert_eq!(
        credentials,
        &Credentials::password("bot", ocisync_registry::Secret::new("s3cret"))
    );
    // `$${` is a literal `${`; a `$` without a brace is left alone.
    assert_eq!(config.syncs[0].name, "nightly-${NOT_EXPANDED}");
    let shown = crate::show_config::render(&config).unwrap();
    assert!(shown.contains("^v\\d+$"), "{shown}");
}

#[test]
fn an_unset_variable_is_a_problem_at_its_key_path_and_the_others_still_show() {
    let text = TEXT
        .replace("${MIRROR_HOST}", "${MIRROR_HOST_UNSET}")
        .replace("from: upstream", "from: upstrem");
    let error = load(&text).unwrap_err().to_string();
    assert_eq!(
        error,
        "invalid config ocisync.yaml: 2 problems
  ocisync.yaml:7:12: registries.mirror.urls[0]: environment variable MIRROR_HOST_UNSET is not set
  ocisync.yaml:12:5: syncs[0].from: unknown registry \"upstrem\" (defined: mirror, upstream)"
    );
}

#[test]
fn a_variable_in_a_number_is_a_type_error_at_its_place() {
    let text = TEXT.replace(
        "    username:",
        "    max_requests_in_flight: ${IN_FLIGHT}\n    username:",
    );
    let error = load(&text).unwrap_err().to_string();
    assert!(
        error.contains(
            "ocisync.yaml:8:29: registries.mirror.max_requests_in_flight: invalid type: string \"${IN_FLIGHT}\""
        ),
        "{error}"
    );
}

#[test]
fn a_value_expanded_into_a_password_like_key_is_never_shown() {
    // A password file's path is shown as the variable it came from, in errors...
    let text = TEXT.replace("password_env: ${PASSWORD_VARIABLE}", "password_file: ${PASSWORD_PATH}");
    let error = load(&text).unwrap_err().to_string();
    assert!(
        error.contains("registries.mirror.password_file: cannot read ${PASSWORD_PATH}: "),
        "{error}"
    );
    assert!(!error.contains("hidden-directory"), "{error}");
    // ...and in `ocisync config`.
    let shown = crate::show_config::render(&load(TEXT).unwrap()).unwrap();
    assert!(
        shown.contains("password: <redacted> (from env ${PASSWORD_VARIABLE})"),
        "{shown}"
    );
    assert!(
        !shown.contains("MIRROR_PASSWORD") && !shown.contains("s3cret"),
        "{shown}"
    );
}

#[test]
fn a_password_in_a_url_from_the_environment_is_not_quoted() {
    let text = TEXT.replace("${UPSTREAM_URL}", "${URL_WITH_PASSWORD}");
    let error = load(&text).unwrap_err().to_string();
    assert!(error.contains("credentials do not belong in the url"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}
