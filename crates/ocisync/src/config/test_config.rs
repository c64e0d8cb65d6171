//! The smallest valid config, which the config's test modules vary.

use std::path::Path;

use super::{Config, ConfigError};

/// Two registries on loopback and one sync between them, named `upstream-to-mirror`.
pub(super) const MINIMAL: &str = "version: 1
registries:
  upstream:
    urls: [\"http://127.0.0.1:5001\"]
  mirror:
    urls: [\"http://127.0.0.1:5002\"]
syncs:
  - from: upstream
    to: mirror
";

/// [`MINIMAL`] with `rules` (list items indented by 6) as the sync's `content`, loaded
/// from `ocisync.yaml` with no environment.
pub(super) fn load_with_rules(rules: &str) -> Result<Config, ConfigError> {
    let text = format!("{MINIMAL}    content:\n{rules}");
    Config::from_yaml(&text, Path::new("ocisync.yaml"), &|_| None)
}
