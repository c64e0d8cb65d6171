//! The config file as written: serde structs that reject unknown keys. Their doc
//! comments are the descriptions of the JSON Schema `ocisync config --schema` prints.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The config format: 1.
    #[expect(dead_code, reason = "checked before typed parsing, in config::parse")]
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// What registries and syncs inherit unless they say otherwise.
    #[serde(default)]
    pub defaults: RawDefaults,
    #[serde(default)]
    pub registries: BTreeMap<String, RawRegistry>,
    #[serde(default)]
    pub syncs: Vec<RawSync>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    #[serde(default)]
    pub urls: Vec<String>,
    /// An OCI image-layout directory instead of a registry (one layout per repository).
    pub layout: Option<PathBuf>,
    pub username: Option<String>,
    /// Name of an environment variable holding the password.
    pub password_env: Option<String>,
    /// Path of a file holding the password (a mounted Kubernetes Secret).
    pub password_file: Option<PathBuf>,
    /// Path of a Docker `config.json` to take the credentials from (`auths`,
    /// `credHelpers`, `credsStore`).
    pub docker_config: Option<PathBuf>,
    /// `NAME` of a docker credential helper (`docker-credential-NAME`) asked at every pass.
    pub credential_helper: Option<String>,
    /// Longest wait for a credential helper (default 30s).
    pub credential_helper_timeout: Option<String>,
    pub tls_verify: Option<bool>,
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate presented to a registry behind mutual TLS (with `client_key`).
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    pub connect_timeout: Option<String>,
    pub read_timeout: Option<String>,
    /// Longest time for one whole request but a blob's body (default 2m).
    pub request_timeout: Option<String>,
    /// The slowest a blob download may be (default 8KiB/s; 0: no floor).
    pub min_transfer_rate: Option<RawAmount>,
    pub retry: Option<RawRetry>,
    pub cool_down: Option<String>,
    pub max_requests_in_flight: Option<usize>,
    /// What to do about the registry's pull quota (`ratelimit-*` headers).
    pub rate_limit: Option<RawAmountLimit>,
    /// As a source: images referencing a larger blob are skipped. Bytes, or a
    /// string with a unit (`2GiB`, `500MB`); checked in `config/sizes.rs`.
    #[schemars(with = "Option<RawAmount>")]
    pub max_blob_size: Option<serde_yaml::Value>,
    /// `run` only: accept this registry's push notifications on
    /// `POST /notifications/<registry>` of the listener, with this bearer token.
    pub notifications: Option<RawNotifications>,
    /// Blob bytes per second to and from this registry at most, downloads and uploads
    /// of every sync together (e.g. `50MiB/s`; 0: no cap, the default).
    pub bandwidth: Option<RawAmount>,
    /// As a destination: blobs above a size are uploaded in chunks into one session
    /// (default: above 64MiB, in 16MiB chunks), which a broken chunk continues for blobs
    /// above another (default 512MiB).
    pub chunked_upload: Option<RawChunkedUpload>,
}

/// Chunked uploads of large blobs to a registry.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawChunkedUpload {
    /// `false`: every blob in one `PUT`. Default `true`.
    pub enabled: Option<bool>,
    /// Blobs larger than this go in chunks (default 64MiB): the registry writes them out
    /// chunk by chunk rather than all after the last byte.
    #[schemars(with = "Option<RawAmount>")]
    pub above: Option<serde_yaml::Value>,
    /// Bytes per chunk, at least 1MiB (default 16MiB); each resumable upload holds one in memory.
    #[schemars(with = "Option<RawAmount>")]
    pub chunk_size: Option<serde_yaml::Value>,
    /// Chunked blobs larger than this keep the chunk under way in memory, so a broken
    /// chunk is sent again rather than the whole blob (default 512MiB).
    #[schemars(with = "Option<RawAmount>")]
    pub resumable_above: Option<serde_yaml::Value>,
}

/// Where the bearer token that notifications must carry comes from (one of the two).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotifications {
    /// Name of an environment variable holding the token.
    pub token_env: Option<String>,
    /// Path of a file holding the token (a mounted Kubernetes Secret).
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAmountLimit {
    /// Pulls of the quota left unspent: no manifest `GET` once the remaining is this low.
    pub reserve: u64,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub retry: Option<RawRetry>,
    pub connect_timeout: Option<String>,
    pub read_timeout: Option<String>,
    pub request_timeout: Option<String>,
    pub min_transfer_rate: Option<RawAmount>,
    /// How long a failed URL rests before it is tried again.
    pub cool_down: Option<String>,
    pub concurrency: Option<RawConcurrency>,
    /// HTTP requests each registry may have in flight at once.
    pub max_requests_in_flight: Option<usize>,
    /// `run` only: address of the HTTP listener for /metrics, /healthz and /readyz.
    pub listen: Option<String>,
    /// A pass running longer than this is stopped (and /readyz fails meanwhile).
    pub max_pass_duration: Option<String>,
    /// `once` only: the Prometheus Pushgateway each sync's metrics go to.
    pub push_metrics: Option<String>,
}

/// A number of bytes (or bytes per second): a plain number (`8192`) or text with a
/// unit (`8KiB/s`, `2GiB`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawAmount {
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub max_attempts: Option<u32>,
    pub initial_delay: Option<String>,
    pub max_delay: Option<String>,
    pub max_elapsed: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConcurrency {
    pub repositories: Option<usize>,
    pub tags: Option<usize>,
    pub blobs: Option<usize>,
    pub transfers: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSync {
    pub name: Option<String>,
    pub from: String,
    pub to: String,
    /// 5-field cron expression (Kubernetes CronJob semantics) or @hourly/@daily/...
    pub schedule: Option<String>,
    /// A fixed interval between pass starts, e.g. "30m".
    pub interval: Option<String>,
    /// IANA time zone of `schedule`, e.g. "Europe/Berlin"; default UTC.
    pub timezone: Option<String>,
    /// Overrides `defaults.max_pass_duration` for this sync.
    pub max_pass_duration: Option<String>,
    /// Ordered rules; the first that takes a repository syncs it.
    #[serde(default)]
    pub content: Vec<RawContentRule>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawContentRule {
    /// A glob matched against the upstream catalog.
    pub prefix: Option<String>,
    /// Exact upstream repository names (no catalog needed).
    pub repositories: Option<Vec<String>>,
    /// Exact references, `NAME:TAG` or `NAME@sha256:…` (no catalog, no tag list).
    pub images: Option<Vec<String>>,
    /// A file of references, one per line, relative to the config file.
    pub images_file: Option<PathBuf>,
    #[serde(default)]
    pub tags: RawTags,
    /// `os/architecture[/variant]`; empty copies multi-arch indexes whole.
    #[serde(default)]
    pub platforms: Vec<String>,
    pub destination: Option<String>,
    pub strip_prefix: Option<String>,
    /// Copy only images that have a signature (cosign tag or signature referrer).
    #[serde(default)]
    pub signed_only: bool,
    /// Copy only images whose cosign signature verifies with one of these keys.
    pub verify: Option<RawVerify>,
    /// Before a tag moves at the destination, tag what it pointed at with this name:
    /// `{tag}` and `{date}` (YYYYMMDD, UTC) or `{digest}` (12 hex digits), e.g.
    /// "{tag}-{date}". An existing backup is never overwritten.
    pub backup: Option<String>,
    /// Delete destination tags this rule no longer selects upstream (not for `images`).
    pub prune: Option<RawPrune>,
}

/// A rule's `prune`: what it may delete, and the safeguards.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPrune {
    /// Must be `true` for anything to be deleted.
    pub enabled: bool,
    /// The largest share of a repository's tags one pass may delete, in (0, 1]
    /// (default 0.5); a prune that would delete more is refused whole.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_fraction: Option<f64>,
    /// Whole-tag regexes of tags never deleted.
    #[serde(default)]
    pub keep: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVerify {
    /// PEM public key files (`cosign.pub`), relative to the config file.
    pub cosign_public_keys: Vec<PathBuf>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTags {
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// A semver range such as ">=1.20, <2".
    pub semver: Option<String>,
    /// Keep only the N highest semver tags.
    pub latest: Option<usize>,
    /// Tags that never move upstream once published: left alone once at the destination.
    #[serde(default)]
    pub immutable: Vec<String>,
    /// Copy (or move) a tag only once its image is this old, by its config's `created`
    /// (e.g. "72h"); an image without `created` is not copied.
    pub min_age: Option<String>,
}
