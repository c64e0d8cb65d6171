//! Checking registries and the `defaults` they inherit: URLs, credentials (from an
//! environment variable, a file, or a Docker `config.json`), TLS, timeouts, retries,
//! the pull quota's reserve.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ocisync_engine::{RetryPolicy, DEFAULT_COOL_DOWN};
use ocisync_registry::{ChunkedUpload, ClientIdentity, Credentials, MinTransferRate, RegistryOptions, Secret};
use url::Url;

use super::docker_auth::{credentials_from_docker_config, DockerCredentials};
use super::durations::{PASS_LIMIT, TIMEOUT};
use super::raw::{RawChunkedUpload, RawDefaults, RawRegistry, RawRetry};
use ocisync_engine::Concurrency;

use super::{Checker, RegistryConfig};
use crate::credential_helper::{self, CredentialHelper};
use crate::docker_hub::{hub_api_url, HUB_API_HOST};

/// Requests one registry may have in flight unless the config says otherwise: the
/// engine's default (`REQUESTS_IN_FLIGHT`, where the reasons are).
pub(crate) const DEFAULT_MAX_REQUESTS_IN_FLIGHT: usize = ocisync_engine::REQUESTS_IN_FLIGHT;

/// The smallest `chunked_upload.chunk_size`: below, requests would outnumber megabytes.
const MIN_CHUNK_SIZE: u64 = 1 << 20;

/// What registries inherit unless they say otherwise.
pub(super) struct Defaults {
    pub retry: RetryPolicy,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub request_timeout: Duration,
    pub min_transfer_rate: Option<u64>,
    pub cool_down: Duration,
    pub concurrency: Concurrency,
    pub max_requests_in_flight: usize,
    pub listen: Option<SocketAddr>,
    pub max_pass_duration: Option<Duration>,
    pub push_metrics: Option<Url>,
}

/// The most of anything at once (requests in flight, repositories, tags, blobs,
/// transfers): far beyond what one process can use, and a huge count once panicked
/// where it sized a semaphore.
const MAX_AT_ONCE: usize = 65_536;

impl Checker {
    pub(super) fn check_defaults(&mut self, raw: &RawDefaults) -> Defaults {
        let concurrency = raw.concurrency.as_ref();
        // Unset values are the engine's defaults.
        let default = Concurrency::default();
        let concurrency = Concurrency {
            repositories: self.at_least_one(
                "defaults.concurrency.repositories",
                concurrency.and_then(|c| c.repositories),
                default.repositories,
            ),
            tags: self.at_least_one(
                "defaults.concurrency.tags",
                concurrency.and_then(|c| c.tags),
                default.tags,
            ),
            blobs: self.at_least_one(
                "defaults.concurrency.blobs",
                concurrency.and_then(|c| c.blobs),
                default.blobs,
            ),
            transfers: self.at_least_one(
                "defaults.concurrency.transfers",
                concurrency.and_then(|c| c.transfers),
                default.transfers,
            ),
        };
        let max_requests_in_flight = self.at_least_one(
            "defaults.max_requests_in_flight",
            raw.max_requests_in_flight,
            DEFAULT_MAX_REQUESTS_IN_FLIGHT,
        );
        Defaults {
            max_requests_in_flight,
            retry: self.check_retry("defaults.retry", raw.retry.as_ref(), &RetryPolicy::default()),
            connect_timeout: self.duration_in(
                "defaults.connect_timeout",
                raw.connect_timeout.as_deref(),
                Duration::from_secs(10),
                TIMEOUT,
            ),
            read_timeout: self.duration_in(
                "defaults.read_timeout",
                raw.read_timeout.as_deref(),
                Duration::from_secs(60),
                TIMEOUT,
            ),
            request_timeout: self.duration_in(
                "defaults.request_timeout",
                raw.request_timeout.as_deref(),
                RegistryOptions::DEFAULT_REQUEST_TIMEOUT,
                TIMEOUT,
            ),
            min_transfer_rate: self.transfer_rate(
                "defaults.min_transfer_rate",
                raw.min_transfer_rate.as_ref(),
                Some(MinTransferRate::DEFAULT.bytes_per_second),
            ),
            cool_down: self.duration("defaults.cool_down", raw.cool_down.as_deref(), DEFAULT_COOL_DOWN),
            concurrency,
            listen: raw.listen.as_deref().and_then(|text| self.listen_address(text)),
            push_metrics: raw.push_metrics.as_deref().and_then(|text| {
                crate::pushgateway::parse_url(text)
                    .map_err(|problem| self.problem("defaults.push_metrics".into(), problem))
                    .ok()
            }),
            max_pass_duration: self.optional_duration_in(
                "defaults.max_pass_duration",
                raw.max_pass_duration.as_deref(),
                PASS_LIMIT,
            ),
        }
    }

    fn check_retry(&mut self, key: &str, raw: Option<&RawRetry>, inherited: &RetryPolicy) -> RetryPolicy {
        let Some(raw) = raw else {
            return inherited.clone();
        };
        if raw.max_attempts == Some(0) {
            self.problem(
                format!("{key}.max_attempts"),
                "must be at least 1 (1 = no retries)".into(),
            );
        }
        RetryPolicy {
            max_attempts: raw.max_attempts.unwrap_or(inherited.max_attempts).max(1),
            initial_delay: self.duration(
                &format!("{key}.initial_delay"),
                raw.initial_delay.as_deref(),
                inherited.initial_delay,
            ),
            max_delay: self.duration(
                &format!("{key}.max_delay"),
                raw.max_delay.as_deref(),
                inherited.max_delay,
            ),
            max_elapsed: self.duration(
                &format!("{key}.max_elapsed"),
                raw.max_elapsed.as_deref(),
                inherited.max_elapsed,
            ),
        }
    }

    /// `client_cert` and `client_key` come together; their files are read when the
    /// registry's stores are set up (exit 2 when they cannot be used).
    fn check_client_identity(&mut self, key: &str, raw: &RawRegistry, base_dir: &Path) -> Option<ClientIdentity> {
        match (&raw.client_cert, &raw.client_key) {
            (Some(certificate), Some(client_key)) => Some(ClientIdentity {
                certificate: base_dir.join(certificate),
                key: base_dir.join(client_key),
            }),
            (Some(_), None) => {
                self.problem(
                    format!("{key}.client_key"),
                    "client_cert needs client_key, the PEM file of its private key".into(),
                );
                None
            }
            (None, Some(_)) => {
                self.problem(
                    format!("{key}.client_cert"),
                    "client_key needs client_cert, the PEM file of its certificate".into(),
                );
                None
            }
            (None, None) => None,
        }
    }

    fn listen_address(&mut self, text: &str) -> Option<SocketAddr> {
        text.parse()
            .map_err(|_| {
                self.problem(
                    "defaults.listen".into(),
                    format!("invalid address \"{text}\": use IP:PORT, e.g. 0.0.0.0:9090 or 127.0.0.1:9090"),
                )
            })
            .ok()
    }

    pub(super) fn check_registry(
        &mut self,
        name: &str,
        raw: RawRegistry,
        defaults: &Defaults,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> RegistryConfig {
        let key = format!("registries.{name}");
        match (&raw.layout, raw.urls.is_empty()) {
            (None, true) => self.problem(
                format!("{key}.urls"),
                "needs at least one url (or a layout directory)".into(),
            ),
            (Some(_), false) => self.problem(format!("{key}.layout"), "set urls or layout, not both".into()),
            (Some(_), true) => {
                let network_keys = [
                    ("username", raw.username.is_some()),
                    ("password_env", raw.password_env.is_some()),
                    ("password_file", raw.password_file.is_some()),
                    ("docker_config", raw.docker_config.is_some()),
                    ("credential_helper", raw.credential_helper.is_some()),
                    ("credential_helper_timeout", raw.credential_helper_timeout.is_some()),
                    ("tls_verify", raw.tls_verify.is_some()),
                    ("ca_file", raw.ca_file.is_some()),
                    ("client_cert", raw.client_cert.is_some()),
                    ("client_key", raw.client_key.is_some()),
                    ("rate_limit", raw.rate_limit.is_some()),
                    ("bandwidth", raw.bandwidth.is_some()),
                    ("chunked_upload", raw.chunked_upload.is_some()),
                ];
                for (field, _) in network_keys.iter().filter(|(_, set)| *set) {
                    self.problem(format!("{key}.{field}"), "has no meaning for a layout directory".into());
                }
            }
            (None, false) => {}
        }
        let mut urls = Vec::new();
        for (index, text) in raw.urls.iter().enumerate() {
            match parse_registry_url(text) {
                // Docker Hub's other names are aliases; its API answers on one host.
                Ok(url) => urls.push(hub_api_url(&url).unwrap_or(url)),
                Err(reason) => self.problem(
                    format!("{key}.urls[{index}]"),
                    format!("invalid url \"{}\": {reason}", without_password(text)),
                ),
            }
        }
        let client_identity = self.check_client_identity(&key, &raw, base_dir);
        let notifications =
            self.check_notifications(&key, raw.notifications.as_ref(), raw.layout.is_some(), base_dir, env);
        let (credentials, password_source) = self.check_credentials(&key, &raw, &urls, base_dir, env);
        let (credentials, credential_helper) = match credentials {
            Some(RegistryCredentials::Fixed(credentials)) => (Some(credentials), None),
            Some(RegistryCredentials::Helper(helper)) => (None, Some(helper)),
            None => (None, None),
        };
        RegistryConfig {
            name: name.to_owned(),
            docker_hub: urls.iter().any(|url| url.host_str() == Some(HUB_API_HOST)),
            urls,
            layout: raw.layout.as_ref().map(|path| base_dir.join(path)),
            client: RegistryOptions {
                credentials,
                tls_verify: raw.tls_verify.unwrap_or(true),
                ca_file: raw.ca_file.map(|path| base_dir.join(path)),
                client_identity,
                connect_timeout: self.duration_in(
                    &format!("{key}.connect_timeout"),
                    raw.connect_timeout.as_deref(),
                    defaults.connect_timeout,
                    TIMEOUT,
                ),
                read_timeout: self.duration_in(
                    &format!("{key}.read_timeout"),
                    raw.read_timeout.as_deref(),
                    defaults.read_timeout,
                    TIMEOUT,
                ),
                request_timeout: self.duration_in(
                    &format!("{key}.request_timeout"),
                    raw.request_timeout.as_deref(),
                    defaults.request_timeout,
                    TIMEOUT,
                ),
                min_transfer_rate: self
                    .transfer_rate(
                        &format!("{key}.min_transfer_rate"),
                        raw.min_transfer_rate.as_ref(),
                        defaults.min_transfer_rate,
                    )
                    .map(MinTransferRate::per_second),
                rate_limit_reserve: raw.rate_limit.map(|rate_limit| rate_limit.reserve),
                // A layout directory writes files, not uploads.
                chunked_upload: match raw.layout {
                    Some(_) => None,
                    None => self.check_chunked_upload(&format!("{key}.chunked_upload"), raw.chunked_upload.as_ref()),
                },
                // The store sets the URL, the request limit and the bandwidth cap.
                ..RegistryOptions::new(String::new())
            },
            credential_helper,
            password_source,
            retry: self.check_retry(&format!("{key}.retry"), raw.retry.as_ref(), &defaults.retry),
            cool_down: self.duration(
                &format!("{key}.cool_down"),
                raw.cool_down.as_deref(),
                defaults.cool_down,
            ),
            max_requests_in_flight: self.at_least_one(
                &format!("{key}.max_requests_in_flight"),
                raw.max_requests_in_flight,
                defaults.max_requests_in_flight,
            ),
            max_blob_size: raw
                .max_blob_size
                .as_ref()
                .and_then(|value| self.size(&format!("{key}.max_blob_size"), value)),
            notifications,
            bandwidth: self.transfer_rate(&format!("{key}.bandwidth"), raw.bandwidth.as_ref(), None),
        }
    }

    /// `chunked_upload`: the registry store's default unless set; `enabled: false`: none.
    fn check_chunked_upload(&mut self, key: &str, raw: Option<&RawChunkedUpload>) -> Option<ChunkedUpload> {
        let default = ChunkedUpload::DEFAULT;
        let Some(raw) = raw else {
            return Some(default);
        };
        let above = (raw.above.as_ref())
            .and_then(|value| self.size(&format!("{key}.above"), value))
            .unwrap_or(default.above);
        let chunk_size = (raw.chunk_size.as_ref())
            .and_then(|value| self.size(&format!("{key}.chunk_size"), value))
            .unwrap_or(default.chunk_size);
        if chunk_size < MIN_CHUNK_SIZE {
            self.problem(
                format!("{key}.chunk_size"),
                format!("must be at least 1MiB (one request per chunk), not {chunk_size} bytes"),
            );
        }
        let resumable_above = (raw.resumable_above.as_ref())
            .and_then(|value| self.size(&format!("{key}.resumable_above"), value))
            .unwrap_or(default.resumable_above);
        raw.enabled.unwrap_or(true).then_some(ChunkedUpload {
            above,
            chunk_size,
            resumable_above,
        })
    }

    /// A count that must be at least 1; a problem (and the default) when it is 0.
    fn at_least_one(&mut self, key: &str, value: Option<usize>, default: usize) -> usize {
        match value {
            Some(0) => {
                self.problem(key.to_owned(), "must be at least 1".into());
                default
            }
            Some(value) if value > MAX_AT_ONCE => {
                self.problem(key.to_owned(), format!("must be at most {MAX_AT_ONCE}"));
                default
            }
            Some(value) => value,
            None => default,
        }
    }

    /// Credentials and a description of where the password came from (never the password).
    fn check_credentials(
        &mut self,
        key: &str,
        raw: &RawRegistry,
        urls: &[Url],
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> (Option<RegistryCredentials>, Option<String>) {
        let sources = [
            raw.password_env.is_some(),
            raw.password_file.is_some(),
            raw.docker_config.is_some(),
            raw.credential_helper.is_some(),
        ];
        if sources.iter().filter(|set| **set).count() > 1 {
            self.problem(
                format!("{key}.password_env"),
                "set one of password_env, password_file, docker_config and credential_helper".into(),
            );
            return (None, None);
        }
        let helper_timeout = match raw.credential_helper_timeout.as_deref() {
            Some(_) if raw.credential_helper.is_none() && raw.docker_config.is_none() => {
                self.problem(
                    format!("{key}.credential_helper_timeout"),
                    "has no meaning without credential_helper or docker_config".into(),
                );
                credential_helper::DEFAULT_TIMEOUT
            }
            text => self
                .optional_duration(&format!("{key}.credential_helper_timeout"), text)
                .unwrap_or(credential_helper::DEFAULT_TIMEOUT),
        };
        if let Some(name) = &raw.credential_helper {
            if raw.username.is_some() {
                self.problem(
                    format!("{key}.username"),
                    "the username comes from the credential helper; remove it".into(),
                );
            }
            let Some(url) = urls.first() else {
                return (None, None);
            };
            let helper = self.check_helper(&format!("{key}.credential_helper"), name, url, helper_timeout, env);
            let source = helper
                .as_ref()
                .map(|helper| format!("credential helper {}", helper.program()));
            return (helper.map(RegistryCredentials::Helper), source);
        }
        if let Some(path) = &raw.docker_config {
            let path = base_dir.join(path);
            let field = format!("{key}.docker_config");
            if raw.username.is_some() {
                self.problem(
                    format!("{key}.username"),
                    "the username comes from docker_config; remove it".into(),
                );
            }
            return match credentials_from_docker_config(&path, urls) {
                Ok(Some(DockerCredentials::Stored(credentials))) => (
                    Some(RegistryCredentials::Fixed(credentials)),
                    Some(format!("docker config {}", path.display())),
                ),
                Ok(Some(DockerCredentials::Helper { name, url })) => {
                    let helper = self.check_helper(&field, &name, &url, helper_timeout, env);
                    let source = helper
                        .as_ref()
                        .map(|helper| format!("credential helper {} named in {}", helper.program(), path.display()));
                    (helper.map(RegistryCredentials::Helper), source)
                }
                Ok(None) => {
                    self.problem(
                        field,
                        format!("{} has no credentials for {}", path.display(), hosts(urls)),
                    );
                    (None, None)
                }
                Err(message) => {
                    self.problem(field, message);
                    (None, None)
                }
            };
        }
        let password = match (&raw.password_env, &raw.password_file) {
            (Some(variable), _) => match env(variable) {
                Some(value) => Some((Secret::new(value), format!("env {variable}"))),
                None => {
                    self.problem(
                        format!("{key}.password_env"),
                        format!("environment variable {variable} is not set"),
                    );
                    None
                }
            },
            (None, Some(path)) => {
                let path = base_dir.join(path);
                match ocisync_registry::read_small_text(&path, ocisync_registry::SMALL_FILE_LIMIT) {
                    Ok(value) => Some((
                        Secret::new(value.trim_end_matches(['\r', '\n'])),
                        format!("file {}", path.display()),
                    )),
                    Err(error) => {
                        self.problem(
                            format!("{key}.password_file"),
                            format!("cannot read {}: {error}", path.display()),
                        );
                        None
                    }
                }
            }
            (None, None) => None,
        };
        match (&raw.username, password) {
            (Some(username), Some((password, source))) => (
                Some(RegistryCredentials::Fixed(Credentials::password(
                    username.clone(),
                    password,
                ))),
                Some(source),
            ),
            (Some(_), None) if raw.password_env.is_none() && raw.password_file.is_none() => {
                self.problem(format!("{key}.username"), "needs password_env or password_file".into());
                (None, None)
            }
            (None, Some(_)) => {
                self.problem(format!("{key}.username"), "a password is set but no username".into());
                (None, None)
            }
            _ => (None, None),
        }
    }

    /// A credential helper for `url`, if `docker-credential-NAME` is on PATH: a missing
    /// one is a config error now rather than a failed sync at every pass.
    fn check_helper(
        &mut self,
        key: &str,
        name: &str,
        url: &Url,
        timeout: Duration,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<CredentialHelper> {
        if !credential_helper::valid_name(name) {
            self.problem(
                key.to_owned(),
                format!("invalid credential helper name \"{name}\": the NAME of docker-credential-NAME"),
            );
            return None;
        }
        let program = credential_helper::program_name(name);
        if credential_helper::find_on_path(&program, &env("PATH").unwrap_or_default()).is_none() {
            self.problem(
                key.to_owned(),
                format!("unknown credential helper \"{name}\": {program} is not on PATH"),
            );
            return None;
        }
        Some(CredentialHelper {
            name: name.to_owned(),
            server: credential_helper::server_for(url),
            timeout,
        })
    }
}

/// Where a registry's credentials come from.
enum RegistryCredentials {
    /// Known at load: a password, a `config.json` entry.
    Fixed(Credentials),
    /// Asked of a helper at every pass.
    Helper(CredentialHelper),
}

fn hosts(urls: &[Url]) -> String {
    urls.iter()
        .map(|url| url[url::Position::BeforeHost..url::Position::AfterPort].to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A URL as a message may quote it: a password in it (perhaps from `${VAR}`) left out.
fn without_password(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(None);
            url.to_string()
        }
        _ => text.to_owned(),
    }
}

fn parse_registry_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|error| error.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("scheme must be http or https".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials do not belong in the url; use username and password_env or password_file".into());
    }
    if url.host_str().is_none() {
        return Err("no host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a registry url has no query or fragment".into());
    }
    Ok(url)
}
