//! `once --push-metrics URL`: each sync's pass metrics go to a Prometheus Pushgateway,
//! grouped by job (`ocisync`) and sync (and shard, for an Indexed Job), so a CronJob's
//! last run stays visible after its pod is gone.
//!
//! Every push is a `POST`, which replaces only the families it carries: one before
//! the pass (running since when), one after it (everything). A failed pass carries no
//! `ocisync_last_success_timestamp_seconds`, so the last success stays on the gateway
//! for the "mirror is stale" alert. A push that fails is logged and changes nothing
//! else: the mirror matters more than its metrics.

use std::time::Duration;

use base64::Engine as _;
use futures_util::future::join_all;
use ocisync_engine::{Report, Shard, SyncReport};
use tracing::{debug, warn};
use url::Url;

use crate::metrics::{Metrics, SyncSettings};

/// The `job` of every group ocisync pushes.
pub const JOB: &str = "ocisync";

/// A push that takes longer than this is given up (and logged).
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// A Pushgateway at a base URL, for one `once` process.
pub struct Pushgateway {
    client: reqwest::Client,
    base: Url,
    shard: Option<Shard>,
}

/// Checks a Pushgateway URL from the command line or the config: http or https, and
/// no user or password (which would end up in logs and process listings).
pub fn parse_url(text: &str) -> Result<Url, String> {
    // The text is not repeated: a mistyped URL may still hold a password.
    let url = Url::parse(text).map_err(|error| format!("invalid URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must be an http:// or https:// URL, not {}://", url.scheme()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a Pushgateway URL may not contain a user or password".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("give the Pushgateway's base URL, without a query or fragment".into());
    }
    Ok(url)
}

impl Pushgateway {
    pub fn new(base: Url, shard: Option<Shard>) -> anyhow::Result<Pushgateway> {
        let client = reqwest::Client::builder()
            .timeout(PUSH_TIMEOUT)
            .build()
            .map_err(|error| anyhow::anyhow!("cannot set up the Pushgateway client: {error}"))?;
        Ok(Pushgateway { client, base, shard })
    }

    /// Before a pass: each sync is marked running, with its start time, so a pass
    /// that never ends shows too.
    pub async fn pass_started(&self, syncs: &[SyncSettings]) {
        join_all(syncs.iter().map(|settings| {
            let metrics = Metrics::new([settings.clone()]);
            metrics.pass_started(&settings.name);
            self.push(&settings.name, metrics.render_pass_start_for_push())
        }))
        .await;
    }

    /// After a pass: every sync of `report` with its numbers.
    pub async fn pass_finished(&self, syncs: &[SyncSettings], report: &Report) {
        join_all(report.syncs.iter().map(|sync_report| {
            let settings = syncs
                .iter()
                .find(|settings| settings.name == sync_report.name)
                .cloned()
                .unwrap_or_else(|| SyncSettings {
                    name: sync_report.name.clone(),
                    max_pass_duration: None,
                    schedule_interval: None,
                });
            self.push(&sync_report.name, finished_pass(settings, sync_report))
        }))
        .await;
    }

    async fn push(&self, sync: &str, body: String) {
        let url = self.group_url(sync);
        let response = self
            .client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "text/plain; version=0.0.4")
            .body(body)
            .send()
            .await;
        match response {
            Ok(response) if response.status().is_success() => {
                debug!(sync = %sync, url = %url, "metrics pushed");
            }
            Ok(response) => {
                let status = response.status();
                // The gateway says why (an inconsistent family, say); a line of it will do.
                let reason = response.text().await.unwrap_or_default();
                let reason: String = reason.lines().next().unwrap_or("").chars().take(300).collect();
                warn!(sync = %sync, url = %url, status = status.as_u16(), error = %reason, "the Pushgateway refused the metrics");
            }
            Err(error) => {
                warn!(sync = %sync, url = %url, error = %error_chain(error), "cannot push metrics");
            }
        }
    }

    /// `BASE/metrics/job/ocisync/sync/NAME[/shard/INDEX/COUNT]`, each value spelled so
    /// the gateway reads it back exactly.
    fn group_url(&self, sync: &str) -> Url {
        let mut url = self.base.clone();
        let mut labels = vec![("job", JOB.to_owned()), ("sync", sync.to_owned())];
        if let Some(shard) = self.shard {
            labels.push(("shard", shard.to_string()));
        }
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("metrics");
            for (name, value) in labels {
                let (name, value) = grouping_segment(name, &value);
                segments.push(&name).push(&value);
            }
        }
        url
    }
}

/// One grouping label as two path segments. Values outside a safe set (a `/` above
/// all, which would split the path) go base64url-encoded as `NAME@base64/VALUE`, the
/// Pushgateway's escape for them.
fn grouping_segment(name: &str, value: &str) -> (String, String) {
    let safe = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if safe {
        (name.to_owned(), value.to_owned())
    } else {
        let encoded = base64::engine::general_purpose::URL_SAFE.encode(value);
        (
            format!("{name}@base64"),
            if encoded.is_empty() { "=".into() } else { encoded },
        )
    }
}

/// The metrics of one finished sync, as one push.
fn finished_pass(settings: SyncSettings, sync_report: &SyncReport) -> String {
    let name = settings.name.clone();
    let metrics = Metrics::new([settings]);
    let report = Report {
        syncs: vec![sync_report.clone()],
    };
    metrics.pass_finished(&name, &report, Duration::from_secs_f64(sync_report.duration_seconds));
    metrics.render_for_push()
}

/// reqwest's error with its causes (a refused connection, a timeout), without the
/// URL the log line already has.
fn error_chain(error: reqwest::Error) -> String {
    ocisync_registry::with_causes(&error.without_url())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_job_sync_and_shard_with_odd_values_encoded() {
        let gateway = Pushgateway::new(parse_url("http://127.0.0.1:9091/").unwrap(), None).unwrap();
        assert_eq!(
            gateway.group_url("hub").as_str(),
            "http://127.0.0.1:9091/metrics/job/ocisync/sync/hub"
        );
        assert_eq!(
            gateway.group_url("a/b c").as_str(),
            "http://127.0.0.1:9091/metrics/job/ocisync/sync@base64/YS9iIGM="
        );
        let sharded = Pushgateway::new(
            parse_url("https://gateway.example/prefix").unwrap(),
            Some("1/4".parse().unwrap()),
        )
        .unwrap();
        assert_eq!(
            sharded.group_url("hub").as_str(),
            "https://gateway.example/prefix/metrics/job/ocisync/sync/hub/shard@base64/MS80"
        );
    }

    #[test]
    fn urls_with_credentials_or_other_schemes_are_refused() {
        assert!(parse_url("http://user:secret@gateway:9091")
            .unwrap_err()
            .contains("user or password"));
        assert!(parse_url("ftp://gateway").unwrap_err().contains("http"));
        assert!(parse_url("gateway:9091").is_err());
        assert!(parse_url("http://gateway:9091/?x=1").unwrap_err().contains("query"));
    }
}
