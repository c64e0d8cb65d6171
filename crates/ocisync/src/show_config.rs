//! `ocisync config`: the effective configuration as YAML, defaults filled in and
//! secrets redacted (the password's source is shown, never its value; a rule's
//! signature policy names its key files, never the keys).

use std::collections::BTreeMap;

use ocisync_engine::{BackupTemplate, Concurrency, ContentRule, ImageReference, RuleSource};
use ocisync_oci::Reference;
use serde::Serialize;

use crate::config::{format_size, show_rate, Config, RegistryConfig, SyncConfig};
use crate::schedule::Schedule;

#[derive(Serialize)]
struct Effective<'a> {
    version: u32,
    defaults: Defaults,
    registries: BTreeMap<&'a str, Registry<'a>>,
    syncs: Vec<Sync<'a>>,
}

#[derive(Serialize)]
struct Registry<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    urls: Vec<&'a str>,
    /// Shown only for Docker Hub, where one-component names mean `library/NAME`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    docker_hub: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    layout: Option<String>,
    username: Option<&'a str>,
    password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential_helper_timeout: Option<String>,
    tls_verify: bool,
    ca_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_cert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_key: Option<String>,
    connect_timeout: String,
    read_timeout: String,
    request_timeout: String,
    min_transfer_rate: String,
    retry: Retry,
    cool_down: String,
    max_requests_in_flight: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit: Option<RateLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_blob_size: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notifications: Option<Notifications>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bandwidth: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chunked_upload: Option<ChunkedUploadView>,
}

#[derive(Serialize)]
struct ChunkedUploadView {
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    above: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chunk_size: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resumable_above: Option<String>,
}

#[derive(Serialize)]
struct Notifications {
    token: String,
    endpoint: String,
}

#[derive(Serialize)]
struct RateLimit {
    reserve: u64,
}

#[derive(Serialize)]
struct Retry {
    max_attempts: u32,
    initial_delay: String,
    max_delay: String,
    max_elapsed: String,
}

#[derive(Serialize)]
struct Defaults {
    concurrency: Concurrency,
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    push_metrics: Option<String>,
}

#[derive(Serialize)]
struct Sync<'a> {
    name: &'a str,
    from: &'a str,
    to: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_pass_duration: Option<String>,
    /// Spelled out so nobody has to remember the default.
    runs: &'static str,
    content: Vec<Rule<'a>>,
}

#[derive(Serialize)]
struct Rule<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repositories: Option<Vec<String>>,
    /// The images now, the `images_file`'s included.
    #[serde(skip_serializing_if = "Option::is_none")]
    images: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    images_file: Option<String>,
    tags: Tags,
    platforms: Vec<String>,
    strip_prefix: Option<&'a str>,
    destination: Option<&'a str>,
    /// Shown even when false: a reviewer should not have to know the default.
    signed_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    verify: Option<Verify>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prune: Option<Prune>,
}

/// A rule's `prune`, shown only when enabled (a disabled one deletes nothing).
#[derive(Serialize)]
struct Prune {
    enabled: bool,
    max_fraction: f64,
    keep: Vec<String>,
}

/// The key files, never the key material.
#[derive(Serialize)]
struct Verify {
    cosign_public_keys: Vec<String>,
}

#[derive(Serialize)]
struct Tags {
    include: Vec<String>,
    exclude: Vec<String>,
    semver: Option<String>,
    latest: Option<usize>,
    immutable: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_age: Option<String>,
}

pub fn render(config: &Config) -> anyhow::Result<String> {
    let effective = Effective {
        version: 1,
        defaults: Defaults {
            concurrency: config.concurrency,
            listen: config.listen.map(|address| address.to_string()),
            push_metrics: config.push_metrics.as_ref().map(ToString::to_string),
        },
        registries: config
            .registries
            .iter()
            .map(|(name, registry)| (name.as_str(), registry_view(registry)))
            .collect(),
        syncs: config.syncs.iter().map(sync_view).collect(),
    };
    Ok(serde_yaml::to_string(&effective)?)
}

fn registry_view(registry: &RegistryConfig) -> Registry<'_> {
    Registry {
        urls: registry.urls.iter().map(url::Url::as_str).collect(),
        docker_hub: registry.docker_hub,
        layout: registry.layout.as_ref().map(|path| path.display().to_string()),
        username: (registry.client.credentials.as_ref()).and_then(|credentials| credentials.username()),
        password: registry
            .password_source
            .as_ref()
            .map(|source| format!("<redacted> (from {source})")),
        credential_helper_timeout: registry
            .credential_helper
            .as_ref()
            .map(|helper| duration(helper.timeout)),
        tls_verify: registry.client.tls_verify,
        ca_file: registry.client.ca_file.as_ref().map(|path| path.display().to_string()),
        client_cert: (registry.client.client_identity.as_ref())
            .map(|identity| identity.certificate.display().to_string()),
        client_key: (registry.client.client_identity.as_ref()).map(|identity| identity.key.display().to_string()),
        connect_timeout: duration(registry.client.connect_timeout),
        read_timeout: duration(registry.client.read_timeout),
        request_timeout: duration(registry.client.request_timeout),
        min_transfer_rate: show_rate(registry.client.min_transfer_rate.map(|floor| floor.bytes_per_second)),
        retry: Retry {
            max_attempts: registry.retry.max_attempts,
            initial_delay: duration(registry.retry.initial_delay),
            max_delay: duration(registry.retry.max_delay),
            max_elapsed: duration(registry.retry.max_elapsed),
        },
        cool_down: duration(registry.cool_down),
        max_requests_in_flight: registry.max_requests_in_flight,
        rate_limit: registry.client.rate_limit_reserve.map(|reserve| RateLimit { reserve }),
        max_blob_size: registry.max_blob_size.map(format_size),
        notifications: registry.notifications.as_ref().map(|settings| Notifications {
            token: format!("<redacted> (from {})", settings.token_source),
            endpoint: format!("POST /notifications/{} on the `run` listener", registry.name),
        }),
        bandwidth: registry.bandwidth.map(|rate| show_rate(Some(rate))),
        // Uploads are a registry's; a layout directory has none.
        chunked_upload: registry.layout.is_none().then(|| {
            let chunking = registry.client.chunked_upload;
            ChunkedUploadView {
                enabled: chunking.is_some(),
                above: chunking.map(|chunking| format_size(chunking.above)),
                chunk_size: chunking.map(|chunking| format_size(chunking.chunk_size)),
                resumable_above: chunking.map(|chunking| format_size(chunking.resumable_above)),
            }
        }),
    }
}

fn duration(value: std::time::Duration) -> String {
    humantime::format_duration(value).to_string()
}

fn sync_view(sync: &SyncConfig) -> Sync<'_> {
    let (schedule, timezone, interval, runs) = match &sync.schedule {
        Some(Schedule::Cron(cron)) => (
            Some(cron.expression()),
            Some(cron.time_zone().name().to_owned()),
            None,
            "on its schedule with `run`; any time with `once`",
        ),
        Some(Schedule::Interval(interval)) => (
            None,
            None,
            Some(humantime::format_duration(*interval).to_string()),
            "every interval with `run`; any time with `once`",
        ),
        None => (None, None, None, "only with `once` (no schedule or interval)"),
    };
    Sync {
        name: &sync.name,
        from: &sync.from,
        to: &sync.to,
        schedule,
        timezone,
        interval,
        max_pass_duration: sync.max_pass_duration.map(duration),
        runs,
        content: if sync.content.is_empty() {
            vec![Rule {
                prefix: Some("**"),
                repositories: None,
                images: None,
                images_file: None,
                tags: Tags {
                    include: Vec::new(),
                    exclude: Vec::new(),
                    semver: None,
                    latest: None,
                    immutable: Vec::new(),
                    min_age: None,
                },
                platforms: Vec::new(),
                strip_prefix: None,
                destination: None,
                signed_only: false,
                verify: None,
                backup: None,
                prune: None,
            }]
        } else {
            sync.content
                .iter()
                .enumerate()
                .map(|(index, rule)| {
                    let file = sync.images_files.iter().find(|file| file.rule == index);
                    rule_view(rule, file.map(|file| file.path.display().to_string()))
                })
                .collect()
        },
    }
}

fn rule_view(rule: &ContentRule, images_file: Option<String>) -> Rule<'_> {
    let (prefix, repositories, images) = match rule.source() {
        RuleSource::Catalog(glob) => (Some(glob.as_str()), None, None),
        RuleSource::Named(names) => (None, Some(names.iter().map(ToString::to_string).collect()), None),
        RuleSource::Images(images) => (None, None, Some(images.iter().map(image_text).collect())),
    };
    let patterns = rule.tags().patterns();
    let signatures = rule.signatures();
    Rule {
        prefix,
        repositories,
        images,
        images_file,
        tags: Tags {
            include: patterns.include,
            exclude: patterns.exclude,
            semver: patterns.semver,
            latest: patterns.latest,
            immutable: patterns.immutable,
            min_age: patterns.min_age.map(duration),
        },
        platforms: rule.platforms().iter().map(ToString::to_string).collect(),
        strip_prefix: rule.strip_prefix(),
        destination: rule.destination(),
        signed_only: signatures.signed_only,
        verify: (!signatures.cosign_keys.is_empty()).then(|| Verify {
            cosign_public_keys: signatures.cosign_keys.iter().map(|key| key.name().to_owned()).collect(),
        }),
        backup: rule.backup().map(BackupTemplate::as_str),
        prune: rule.prune().map(|policy| Prune {
            enabled: true,
            max_fraction: policy.max_fraction(),
            keep: policy.keep(),
        }),
    }
}

/// `library/alpine:3.20` or `team/app@sha256:…`.
fn image_text(image: &ImageReference) -> String {
    match &image.reference {
        Reference::Tag(tag) => format!("{}:{tag}", image.repository),
        Reference::Digest(digest) => format!("{}@{digest}", image.repository),
    }
}
