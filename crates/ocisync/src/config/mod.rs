//! Loading and validating the config file (version 1).
//!
//! Two stages: serde reads [`raw::RawConfig`] (unknown keys are errors, with line and
//! column), then [`Config::from_yaml`] checks meaning and reports every problem at
//! once, each with its key path and position. In between, `${VAR}` in string values
//! is taken from the environment (`variables.rs`). Secrets are read here, into
//! [`Secret`]s that never print.

mod docker_auth;
#[cfg(feature = "fuzzing")]
pub(crate) use docker_auth::{docker_credentials, DockerCredentials};
mod durations;
mod error;
mod images;
mod locate;
mod notifications;
mod rates;
mod raw;
mod registry;
mod rules;
mod schema;
mod signing;
mod sizes;
mod variables;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ocisync_registry::RegistryOptions;
use url::Url;

use crate::credential_helper::CredentialHelper;
use crate::schedule::{parse_time_zone, CronSchedule, Schedule};

pub use error::{ConfigError, ConfigProblem};
use images::ImagesFile;
use locate::key_positions;
pub use notifications::NotificationSettings;
use ocisync_engine::{Concurrency, ContentRule, RetryPolicy};
pub(crate) use rates::show_rate;
use raw::{RawConfig, RawSync};
pub(crate) use registry::DEFAULT_MAX_REQUESTS_IN_FLIGHT;
use rules::RulePlace;
pub use schema::json_schema;
pub(crate) use sizes::format_size;

use durations::{INTERVAL, PASS_LIMIT};

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub registries: BTreeMap<String, RegistryConfig>,
    pub syncs: Vec<SyncConfig>,
    pub concurrency: Concurrency,
    /// `run`: where /metrics, /healthz and /readyz are served (`defaults.listen`); `None`: not served.
    pub listen: Option<SocketAddr>,
    /// `once`: the Pushgateway each sync's metrics go to (`defaults.push_metrics`).
    pub push_metrics: Option<Url>,
    /// What loads but is probably not what the user meant (`signed_only` without `verify`).
    pub warnings: Vec<ConfigProblem>,
}

/// One registry: equivalent URLs, credentials, TLS, timeouts and retries.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    pub name: String,
    /// Docker Hub's API host (any name for Hub is rewritten to it): one-component
    /// repository names there mean `library/NAME`.
    pub docker_hub: bool,
    pub urls: Vec<Url>,
    /// An OCI image-layout directory; set instead of `urls`.
    pub layout: Option<PathBuf>,
    /// How each of its URLs is reached, as the registry client takes it: credentials
    /// (`client.credentials`, `None` with a helper), TLS (`client_cert` and `client_key`
    /// are `client_identity`), timeouts, the transfer floor, `rate_limit.reserve`,
    /// `chunked_upload`. Its `url`, `request_limit` and `bandwidth` are left unset: the
    /// store sets them for each URL (the limit and the cap shared by all of them).
    pub client: RegistryOptions,
    /// A docker credential helper, asked at the start of every pass instead of `client.credentials`.
    pub credential_helper: Option<CredentialHelper>,
    /// Where the password comes from (`env NAME`, `file PATH`), for `ocisync config`.
    pub password_source: Option<String>,
    pub retry: RetryPolicy,
    /// How long a failed URL rests before it is tried again.
    pub cool_down: Duration,
    /// HTTP requests in flight at once, over all its URLs.
    pub max_requests_in_flight: usize,
    /// `max_blob_size` in bytes: as a sync's source, an image referencing a larger
    /// blob is skipped `blob-too-large`; `None`: no limit.
    pub max_blob_size: Option<u64>,
    /// `notifications`: `run` accepts this registry's push events with this token.
    pub notifications: Option<NotificationSettings>,
    /// `bandwidth` in bytes per second: blob transfers to and from the registry, all
    /// syncs of the process together; `None`: no cap.
    pub bandwidth: Option<u64>,
}

/// One sync: from an upstream registry into a destination registry.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub name: String,
    pub from: String,
    pub to: String,
    /// When `run` starts a pass; `None`: only with `once`.
    pub schedule: Option<Schedule>,
    /// A pass running longer than this is stopped (no new image, then the grace
    /// period, then the rest abandoned) and fails; `run`'s /readyz fails meanwhile.
    /// `None`: no limit.
    pub max_pass_duration: Option<Duration>,
    /// Compiled content rules; empty means every repository and tag, same names.
    pub content: Vec<ContentRule>,
    /// Rules whose images come (partly) from a file, read again before every pass.
    pub images_files: Vec<ImagesFile>,
}

impl SyncConfig {
    /// The content rules for a pass starting now: every `images_file` read again. A
    /// file that cannot be read (or has bad lines) leaves its rule with its inline
    /// images only, and the problem is returned with the rule's position.
    pub fn rules_for_pass(&self) -> (Vec<ContentRule>, Vec<(usize, String)>) {
        let mut rules = self.content.clone();
        let mut problems = Vec::new();
        for file in &self.images_files {
            let images = file.read().unwrap_or_else(|problem| {
                problems.push((file.rule, problem));
                file.inline.clone()
            });
            if let Some(rule) = rules.get_mut(file.rule) {
                rule.set_images(images);
            }
        }
        (rules, problems)
    }
}

impl Config {
    /// Reads and validates a config file; its warnings are logged.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_config_file(path).map_err(|message| ConfigError {
            file: path.to_owned(),
            problems: vec![ConfigProblem {
                key: String::new(),
                line: None,
                column: None,
                message,
            }],
        })?;
        let config = Config::from_yaml(&text, path, &|name| std::env::var(name).ok())?;
        for warning in &config.warnings {
            tracing::warn!("{}{warning}", path.display());
        }
        Ok(config)
    }

    /// Parses and validates config text. `file` names it in errors; `env` looks up
    /// environment variables (a parameter so that tests need not touch the process).
    pub fn from_yaml(text: &str, file: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let fail = |problems| ConfigError {
            file: file.to_owned(),
            problems,
        };
        // Editors on Windows save UTF-8 with a byte-order mark; YAML allows one at the start.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let (mut document, raw) = parse(text).map_err(|problem| fail(vec![problem]))?;
        // The typed parse above saw the text as written, so its errors (with positions)
        // never hold a variable's value; the document is read again only if it changed.
        let expansion = variables::expand_document(&mut document, env);
        let raw = if expansion.changed {
            serde_yaml::from_value(document).map_err(|error| {
                fail(vec![ConfigProblem {
                    key: String::new(),
                    line: None,
                    column: None,
                    message: format!("after expanding ${{VAR}}: {error}"),
                }])
            })?
        } else {
            raw
        };
        let mut checker = Checker {
            positions: key_positions(text),
            problems: Vec::new(),
            warnings: Vec::new(),
            expansion,
        };
        let mut config = checker.check(raw, file, env);
        config.warnings = std::mem::take(&mut checker.warnings);
        let mut problems = std::mem::take(&mut checker.expansion.problems)
            .into_iter()
            .map(|(key, message)| checker.located(key, message))
            .collect::<Vec<_>>();
        // A value whose variable is missing was checked as written; what that found
        // follows from the missing variable and is left out.
        let unexpanded: HashSet<String> = problems.iter().map(|problem| problem.key.clone()).collect();
        problems.extend(
            checker
                .problems
                .into_iter()
                .filter(|problem| !unexpanded.contains(&problem.key)),
        );
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(fail(problems))
        }
    }
}

/// Largest config file read: a config names registries and rules, not a data set (long
/// lists of images belong in an `images_file`). Unbounded, a 50 MB file took 3 GB of
/// memory just to be rejected.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The config text, refused when larger than [`MAX_CONFIG_BYTES`]: by its size before
/// reading, and by what arrives (a FIFO or a `/proc` file can claim any size).
fn read_config_file(path: &Path) -> Result<String, String> {
    use std::io::Read as _;
    let too_large = |size: &str| format!("the file is {size}; a config is at most {MAX_CONFIG_BYTES} bytes (1 MiB)");
    let file = std::fs::File::open(path).map_err(|error| format!("cannot read the file: {error}"))?;
    let size = file
        .metadata()
        .map_err(|error| format!("cannot read the file: {error}"))?
        .len();
    if size > MAX_CONFIG_BYTES {
        return Err(too_large(&format!("{size} bytes")));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("cannot read the file: {error}"))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_large(&format!("more than {MAX_CONFIG_BYTES} bytes")));
    }
    String::from_utf8(bytes).map_err(|error| format!("the file is not UTF-8: {error}"))
}

/// The document as written and its typed form (errors located by the YAML parser).
fn parse(text: &str) -> Result<(serde_yaml::Value, RawConfig), ConfigProblem> {
    let yaml_problem = |error: serde_yaml::Error| {
        let location = error.location();
        let message = error.to_string();
        // serde_yaml appends " at line L column C"; the position goes in front instead.
        let message = match message.rfind(" at line ") {
            Some(cut) if location.is_some() => message[..cut].to_owned(),
            _ => message,
        };
        ConfigProblem {
            key: String::new(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            message,
        }
    };
    // Check the version first: a file for another version fails on that, not on its keys.
    let document: serde_yaml::Value = serde_yaml::from_str(text).map_err(yaml_problem)?;
    match document.get("version") {
        None => {
            return Err(ConfigProblem {
                key: "version".to_owned(),
                line: None,
                column: None,
                message: "missing; this ocisync reads version: 1".to_owned(),
            })
        }
        Some(version) if version.as_u64() != Some(1) => {
            let position = key_positions(text).get("version").copied();
            return Err(ConfigProblem {
                key: "version".to_owned(),
                line: position.map(|p| p.line),
                column: position.map(|p| p.column),
                message: format!(
                    "unsupported version {}; this ocisync reads version: 1",
                    serde_yaml::to_string(version).unwrap_or_default().trim()
                ),
            });
        }
        Some(_) => {}
    }
    let raw = serde_yaml::from_str(text).map_err(yaml_problem)?;
    Ok((document, raw))
}

struct Checker {
    positions: std::collections::HashMap<String, locate::Position>,
    problems: Vec<ConfigProblem>,
    warnings: Vec<ConfigProblem>,
    /// The `${VAR}`s expanded, whose values of password-like keys no message shows.
    expansion: variables::Expansion,
}

impl Checker {
    fn problem(&mut self, key: String, message: String) {
        let problem = self.located(key, message);
        self.problems.push(problem);
    }

    /// Something that loads but probably does not do what the user meant.
    fn warning(&mut self, key: String, message: String) {
        let warning = self.located(key, message);
        self.warnings.push(warning);
    }

    fn located(&self, key: String, message: String) -> ConfigProblem {
        let position = self.positions.get(&key).copied();
        ConfigProblem {
            key,
            line: position.map(|p| p.line),
            column: position.map(|p| p.column),
            message: self.expansion.redact(&message),
        }
    }

    fn check(&mut self, raw: RawConfig, file: &Path, env: &dyn Fn(&str) -> Option<String>) -> Config {
        if raw.registries.is_empty() {
            self.problem("registries".into(), "no registries defined".into());
        }
        if raw.syncs.is_empty() {
            self.problem("syncs".into(), "no syncs defined".into());
        }
        let base_dir = file.parent().unwrap_or(Path::new("."));
        let defaults = self.check_defaults(&raw.defaults);
        let registries = raw
            .registries
            .into_iter()
            .map(|(name, registry)| {
                let mut checked = self.check_registry(&name, registry, &defaults, base_dir, env);
                checked.password_source = checked.password_source.map(|source| self.expansion.redact(&source));
                (name, checked)
            })
            .collect::<BTreeMap<_, _>>();
        let mut names = HashSet::new();
        let syncs: Vec<SyncConfig> = raw
            .syncs
            .into_iter()
            .enumerate()
            .map(|(index, sync)| self.check_sync(index, sync, &registries, &mut names, base_dir, &defaults))
            .collect();
        self.warn_unused_blob_limits(&registries, &syncs);
        self.warn_unused_notifications(&registries, &syncs);
        Config {
            registries,
            syncs,
            concurrency: defaults.concurrency,
            listen: defaults.listen,
            push_metrics: defaults.push_metrics,
            warnings: Vec::new(),
        }
    }

    fn check_sync(
        &mut self,
        index: usize,
        raw: RawSync,
        registries: &BTreeMap<String, RegistryConfig>,
        names: &mut HashSet<String>,
        base_dir: &Path,
        defaults: &registry::Defaults,
    ) -> SyncConfig {
        let key = format!("syncs[{index}]");
        for (field, registry) in [("from", &raw.from), ("to", &raw.to)] {
            if !registries.contains_key(registry) {
                let known = registries.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
                self.problem(
                    format!("{key}.{field}"),
                    format!("unknown registry \"{registry}\" (defined: {known})"),
                );
            }
        }
        if raw.from == raw.to {
            self.problem(
                format!("{key}.to"),
                format!("copies registry \"{}\" onto itself", raw.to),
            );
        }
        let name = raw.name.unwrap_or_else(|| format!("{}-to-{}", raw.from, raw.to));
        if !names.insert(name.clone()) {
            self.problem(format!("{key}.name"), format!("sync name \"{name}\" is used twice"));
        }
        let schedule = self.check_schedule(
            &key,
            raw.schedule.as_deref(),
            raw.interval.as_deref(),
            raw.timezone.as_deref(),
        );
        let max_pass_duration = match raw.max_pass_duration.as_deref() {
            Some(text) => self.optional_duration_in(&format!("{key}.max_pass_duration"), Some(text), PASS_LIMIT),
            None => defaults.max_pass_duration,
        };
        let docker_hub = registries.get(&raw.from).is_some_and(|registry| registry.docker_hub);
        let mut content = Vec::new();
        let mut images_files = Vec::new();
        for (rule_index, rule) in raw.content.into_iter().enumerate() {
            let place = RulePlace {
                key: &format!("{key}.content[{rule_index}]"),
                // The position among the rules that compiled is the one passes see.
                index: content.len(),
                base_dir,
                docker_hub,
            };
            if let Some((rule, images_file)) = self.check_rule(&place, rule) {
                content.push(rule);
                images_files.extend(images_file);
            }
        }
        SyncConfig {
            name,
            from: raw.from,
            to: raw.to,
            schedule,
            max_pass_duration,
            content,
            images_files,
        }
    }
}

impl Checker {
    fn check_schedule(
        &mut self,
        key: &str,
        schedule: Option<&str>,
        interval: Option<&str>,
        timezone: Option<&str>,
    ) -> Option<Schedule> {
        let time_zone = match timezone {
            None => Some(chrono_tz::UTC),
            Some(name) => parse_time_zone(name)
                .map_err(|error| self.problem(format!("{key}.timezone"), error.to_string()))
                .ok(),
        };
        match (schedule, interval) {
            (Some(_), Some(_)) => {
                self.problem(format!("{key}.interval"), "set schedule or interval, not both".into());
                None
            }
            (Some(expression), None) => {
                let time_zone = time_zone?;
                CronSchedule::parse(expression, time_zone)
                    .map(Schedule::Cron)
                    .map_err(|error| {
                        self.problem(
                            format!("{key}.schedule"),
                            format!("invalid schedule \"{expression}\": {error}"),
                        )
                    })
                    .ok()
            }
            (None, Some(text)) => self
                .optional_duration_in(&format!("{key}.interval"), Some(text), INTERVAL)
                .map(Schedule::Interval),
            (None, None) => {
                if timezone.is_some() {
                    self.problem(format!("{key}.timezone"), "set without a schedule".into());
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod credential_tests;
#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod prune_tests;
#[cfg(test)]
mod test_config;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod transfer_tests;
#[cfg(test)]
mod variable_tests;
