//! Checking a registry's `notifications` key: the bearer token its push notifications
//! must carry, from an environment variable or a file, never the config text.

use std::collections::BTreeMap;
use std::path::Path;

use ocisync_registry::Secret;

use super::raw::RawNotifications;
use super::{Checker, RegistryConfig, SyncConfig};

/// Shortest token accepted: a guessable token would let anyone trigger syncs.
const MIN_TOKEN_CHARS: usize = 16;

/// A registry's notification settings (`registries.NAME.notifications`).
#[derive(Debug, Clone)]
pub struct NotificationSettings {
    /// What `Authorization: Bearer …` must carry.
    pub token: Secret,
    /// Where the token came from (`env NAME`, `file PATH`), for `ocisync config`.
    pub token_source: String,
}

impl Checker {
    pub(super) fn check_notifications(
        &mut self,
        key: &str,
        raw: Option<&RawNotifications>,
        is_layout: bool,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<NotificationSettings> {
        let raw = raw?;
        let key = format!("{key}.notifications");
        if is_layout {
            self.problem(key, "a layout directory sends no notifications".into());
            return None;
        }
        let (token, token_source, field) = match (&raw.token_env, &raw.token_file) {
            (Some(_), Some(_)) => {
                self.problem(
                    format!("{key}.token_env"),
                    "set token_env or token_file, not both".into(),
                );
                return None;
            }
            (None, None) => {
                self.problem(
                    key,
                    "needs token_env or token_file: notifications are accepted only with a bearer token".into(),
                );
                return None;
            }
            (Some(variable), None) => match env(variable) {
                Some(value) => (value, format!("env {variable}"), "token_env"),
                None => {
                    self.problem(
                        format!("{key}.token_env"),
                        format!("environment variable {variable} is not set"),
                    );
                    return None;
                }
            },
            (None, Some(path)) => {
                let path = base_dir.join(path);
                match ocisync_registry::read_small_text(&path, ocisync_registry::SMALL_FILE_LIMIT) {
                    Ok(value) => (
                        value.trim_end_matches(['\r', '\n']).to_owned(),
                        format!("file {}", path.display()),
                        "token_file",
                    ),
                    Err(error) => {
                        self.problem(
                            format!("{key}.token_file"),
                            format!("cannot read {}: {error}", path.display()),
                        );
                        return None;
                    }
                }
            }
        };
        // The token is never quoted back: only its length and what is wrong with it.
        if !token.bytes().all(|byte| byte.is_ascii_graphic()) {
            self.problem(
                format!("{key}.{field}"),
                format!("the token from {token_source} must be printable ASCII without spaces (it travels in an HTTP header)"),
            );
            return None;
        }
        if token.chars().count() < MIN_TOKEN_CHARS {
            self.problem(
                format!("{key}.{field}"),
                format!(
                    "the token from {token_source} has {} characters; use at least {MIN_TOKEN_CHARS} (e.g. `openssl rand -hex 32`)",
                    token.chars().count()
                ),
            );
            return None;
        }
        Some(NotificationSettings {
            token: Secret::new(token),
            token_source,
        })
    }
}

impl Checker {
    /// Notifications only reach syncs that `run` runs: scheduled ones reading from
    /// the registry.
    pub(super) fn warn_unused_notifications(
        &mut self,
        registries: &BTreeMap<String, RegistryConfig>,
        syncs: &[SyncConfig],
    ) {
        for (name, registry) in registries {
            let used = syncs.iter().any(|sync| &sync.from == name && sync.schedule.is_some());
            if registry.notifications.is_some() && !used {
                self.warning(
                    format!("registries.{name}.notifications"),
                    format!("no scheduled sync reads from {name}; its notifications would be acknowledged and ignored"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    const TOKEN: &str = "0123456789abcdef0123";

    fn load(notifications: &str) -> Result<Config, String> {
        let text = format!(
            "version: 1
registries:
  upstream:
    urls: [\"http://127.0.0.1:5001\"]
    notifications: {notifications}
  mirror:
    urls: [\"http://127.0.0.1:5002\"]
syncs:
  - from: upstream
    to: mirror
    interval: 1h
"
        );
        let env = |name: &str| match name {
            "HOOK_TOKEN" => Some(TOKEN.to_owned()),
            "SHORT_TOKEN" => Some("short".to_owned()),
            "SPACED_TOKEN" => Some("a token with spaces in it".to_owned()),
            _ => None,
        };
        Config::from_yaml(&text, Path::new("ocisync.yaml"), &env).map_err(|error| error.to_string())
    }

    #[test]
    fn a_token_from_the_environment_enables_notifications_and_never_prints() {
        let config = load("{token_env: HOOK_TOKEN}").unwrap();
        let settings = config.registries["upstream"].notifications.as_ref().unwrap();
        assert_eq!(settings.token.expose(), TOKEN);
        assert_eq!(settings.token_source, "env HOOK_TOKEN");
        assert!(!format!("{config:?}").contains(TOKEN));
        assert!(config.registries["mirror"].notifications.is_none());
    }

    #[test]
    fn a_token_file_is_read_without_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
        let config = load(&format!("{{token_file: \"{}\"}}", path.display())).unwrap();
        assert_eq!(
            config.registries["upstream"]
                .notifications
                .as_ref()
                .unwrap()
                .token
                .expose(),
            TOKEN
        );
    }

    #[test]
    fn each_problem_names_its_key() {
        let cases = [
            ("{}", "registries.upstream.notifications: needs token_env or token_file"),
            (
                "{token_env: HOOK_TOKEN, token_file: /x}",
                "registries.upstream.notifications.token_env: set token_env or token_file, not both",
            ),
            (
                "{token_env: UNSET}",
                "registries.upstream.notifications.token_env: environment variable UNSET is not set",
            ),
            (
                "{token_file: /nonexistent/token}",
                "registries.upstream.notifications.token_file: cannot read /nonexistent/token",
            ),
            (
                "{token_env: SHORT_TOKEN}",
                "registries.upstream.notifications.token_env: the token from env SHORT_TOKEN has 5 characters; use at least 16",
            ),
            (
                "{token_env: SPACED_TOKEN}",
                "must be printable ASCII without spaces",
            ),
            ("{token: x}", "unknown field `token`"),
        ];
        for (notifications, expected) in cases {
            let error = load(notifications).expect_err(notifications);
            assert!(error.contains(expected), "{notifications}: {error}");
            assert!(
                !error.contains("a token with spaces"),
                "the token is never quoted: {error}"
            );
        }
    }
}
