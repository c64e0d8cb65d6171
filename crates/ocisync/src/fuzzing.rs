//! The parsers of the binary, reachable by the fuzz targets (`fuzz/`, feature
//! `fuzzing`): each entry takes text and answers in plain values.

use std::path::Path;

use ocisync_registry::Credentials;

/// What a config that loads turns into, for checking properties.
pub struct LoadedConfig {
    /// `ocisync config`'s output.
    pub rendered: String,
    /// Every registry's secret (password or identity token) and username, if any.
    pub secrets: Vec<(Option<String>, String)>,
}

/// `Config::from_yaml` of `text` as if read from `file` (relative paths start beside
/// it), the environment being `env`; a config error as its message.
pub fn load_config(text: &str, file: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<LoadedConfig, String> {
    let config = crate::config::Config::from_yaml(text, file, env).map_err(|error| error.to_string())?;
    let rendered = crate::show_config::render(&config).map_err(|error| format!("render failed: {error:#}"))?;
    let secrets = config
        .registries
        .values()
        .filter_map(|registry| registry.client.credentials.as_ref())
        .map(|credentials| match credentials {
            Credentials::Password { username, password } => (Some(username.clone()), password.expose().to_owned()),
            Credentials::IdentityToken(token) => (None, token.expose().to_owned()),
        })
        .collect();
    Ok(LoadedConfig { rendered, secrets })
}

/// The credentials a Docker `config.json` holds for `url`: `Ok(Some((username,
/// secret)))` for stored ones, `Ok(None)` for none or a helper, or the error message.
pub fn docker_config(text: &str, url: &url::Url) -> Result<Option<(Option<String>, String)>, String> {
    use crate::config::DockerCredentials;
    Ok(
        match crate::config::docker_credentials(text, std::slice::from_ref(url))? {
            Some(DockerCredentials::Stored(Credentials::Password { username, password })) => {
                Some((Some(username), password.expose().to_owned()))
            }
            Some(DockerCredentials::Stored(Credentials::IdentityToken(token))) => {
                Some((None, token.expose().to_owned()))
            }
            Some(DockerCredentials::Helper { .. }) | None => None,
        },
    )
}

/// An image reference of `ocisync copy`, as (host, repository, `:tag`, `@digest` or "").
pub fn image_ref(text: &str) -> Result<(String, String, String), String> {
    use crate::image_ref::{ImageRef, Target};
    let parsed: ImageRef = text.parse()?;
    let target = match parsed.target {
        Target::Repository => String::new(),
        Target::Tag(tag) => format!(":{tag}"),
        Target::Digest(digest) => format!("@{digest}"),
    };
    Ok((parsed.host, parsed.repository.to_string(), target))
}
