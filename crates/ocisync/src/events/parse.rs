//! Reading a notification body: distribution's envelope, a single distribution-shaped
//! event (Azure Container Registry's webhooks), or Harbor's default webhook JSON.
//!
//! Only what names the change is read (action, repository, tag, digest, media type,
//! time). URLs in an event (`target.url`, Harbor's `resource_url`, `request.host`)
//! are never read: ocisync talks only to the registry's configured URLs.
//!
//! A body that is none of the three shapes is refused (400). One event in it that
//! names nothing usable (an invalid repository name, say) is only ignored: distribution
//! retries a refused body for ever, which would hold up every event after it.

use std::time::{Duration, SystemTime};

use ocisync_oci::media_type::classify;
use ocisync_oci::{Digest, RepoName, Tag};
use serde::Deserialize;

/// What an event says happened, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventKind {
    Push,
    Delete,
    Pull,
    /// Anything else (a blob mount, a Harbor scan or quota event).
    Other,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Push => "push",
            EventKind::Delete => "delete",
            EventKind::Pull => "pull",
            EventKind::Other => "other",
        }
    }

    fn of_action(action: &str) -> EventKind {
        match action {
            "push" => EventKind::Push,
            "delete" => EventKind::Delete,
            "pull" => EventKind::Pull,
            _ => EventKind::Other,
        }
    }
}

/// One event of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEvent {
    pub kind: EventKind,
    /// What changed; `None` when the event names nothing ocisync can act on.
    pub target: Option<EventTarget>,
    /// When the registry says it happened (the start of the mirror lag).
    pub occurred_at: Option<SystemTime>,
}

/// The repository, and the tag or digest, an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTarget {
    pub repository: RepoName,
    pub tag: Option<Tag>,
    pub digest: Option<Digest>,
    /// A manifest (as opposed to a blob): a push of one by digest alone is a child of
    /// an index or a referrer, which arrive with their tag's own event.
    pub is_manifest: bool,
}

/// Why a body was refused: one line, quoting no more of the body than a field name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadNotification(pub String);

impl std::fmt::Display for BadNotification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The events of a notification body.
pub fn parse_notification(body: &[u8]) -> Result<Vec<RegistryEvent>, BadNotification> {
    let document: serde_json::Value =
        serde_json::from_slice(body).map_err(|error| BadNotification(format!("the body is not JSON: {error}")))?;
    let Some(object) = document.as_object() else {
        return Err(BadNotification("the body is not a JSON object".into()));
    };
    let shape_error = |shape: &str, error: serde_json::Error| BadNotification(format!("{shape}: {error}"));
    if object.contains_key("events") {
        let envelope: Envelope =
            serde_json::from_value(document).map_err(|error| shape_error("distribution envelope", error))?;
        Ok(envelope.events.into_iter().map(DistributionEvent::into_event).collect())
    } else if object.contains_key("action") && object.contains_key("target") {
        let event: DistributionEvent =
            serde_json::from_value(document).map_err(|error| shape_error("distribution event", error))?;
        Ok(vec![event.into_event()])
    } else if object.contains_key("type") && object.contains_key("event_data") {
        harbor_events(document)
    } else if object.contains_key("specversion") {
        Err(BadNotification(
            "a CloudEvents body; set the Harbor webhook's payload format to Default".into(),
        ))
    } else {
        Err(BadNotification(
            "not a distribution envelope (events), a distribution event (action, target) or a Harbor webhook (type, event_data)"
                .into(),
        ))
    }
}

/// `application/vnd.docker.distribution.events.v1+json`.
#[derive(Deserialize)]
struct Envelope {
    events: Vec<DistributionEvent>,
}

#[derive(Deserialize)]
struct DistributionEvent {
    action: String,
    target: DistributionTarget,
    #[serde(default)]
    timestamp: Option<String>,
}

#[derive(Deserialize)]
struct DistributionTarget {
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    digest: Option<String>,
}

impl DistributionEvent {
    fn into_event(self) -> RegistryEvent {
        let target = &self.target;
        let tag = non_empty(target.tag.as_deref()).and_then(|tag| tag.parse().ok());
        let is_manifest = tag.is_some() || target.media_type.as_deref().and_then(classify).is_some();
        RegistryEvent {
            kind: EventKind::of_action(&self.action),
            target: non_empty(target.repository.as_deref())
                .and_then(|repository| repository.parse().ok())
                .map(|repository| EventTarget {
                    repository,
                    tag,
                    digest: non_empty(target.digest.as_deref()).and_then(|digest| digest.parse().ok()),
                    is_manifest,
                }),
            occurred_at: self.timestamp.as_deref().and_then(parse_rfc3339),
        }
    }
}

/// Harbor's `Default` payload: one artifact, with a resource per tag.
#[derive(Deserialize)]
struct HarborWebhook {
    #[serde(default)]
    occur_at: Option<i64>,
    event_data: HarborEventData,
}

#[derive(Deserialize)]
struct HarborEventData {
    #[serde(default)]
    resources: Vec<HarborResource>,
    repository: HarborRepository,
}

#[derive(Deserialize)]
struct HarborRepository {
    repo_full_name: String,
}

#[derive(Deserialize)]
struct HarborResource {
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    digest: Option<String>,
}

fn harbor_events(document: serde_json::Value) -> Result<Vec<RegistryEvent>, BadNotification> {
    let kind = match document.get("type").and_then(serde_json::Value::as_str) {
        Some("PUSH_ARTIFACT") => EventKind::Push,
        Some("DELETE_ARTIFACT") => EventKind::Delete,
        Some("PULL_ARTIFACT") => EventKind::Pull,
        // Scans, quotas, replication, retention: their event_data has another shape.
        Some(_) => {
            return Ok(vec![RegistryEvent {
                kind: EventKind::Other,
                target: None,
                occurred_at: None,
            }])
        }
        None => return Err(BadNotification("Harbor webhook: `type` is not a string".into())),
    };
    let webhook: HarborWebhook =
        serde_json::from_value(document).map_err(|error| BadNotification(format!("Harbor webhook: {error}")))?;
    let occurred_at = webhook
        .occur_at
        .and_then(|seconds| u64::try_from(seconds).ok())
        .map(|seconds| SystemTime::UNIX_EPOCH + Duration::from_secs(seconds));
    let repository: Option<RepoName> = webhook.event_data.repository.repo_full_name.parse().ok();
    let event = |tag: Option<Tag>, digest: Option<Digest>| RegistryEvent {
        kind,
        target: repository.clone().map(|repository| EventTarget {
            repository,
            tag,
            digest,
            is_manifest: true,
        }),
        occurred_at,
    };
    if webhook.event_data.resources.is_empty() {
        return Ok(vec![event(None, None)]);
    }
    Ok(webhook
        .event_data
        .resources
        .iter()
        .map(|resource| {
            event(
                non_empty(resource.tag.as_deref()).and_then(|tag| tag.parse().ok()),
                non_empty(resource.digest.as_deref()).and_then(|digest| digest.parse().ok()),
            )
        })
        .collect())
}

fn non_empty(text: Option<&str>) -> Option<&str> {
    text.filter(|text| !text.is_empty())
}

fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(SystemTime::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:80f0d5c8786bb9e621a45ece0db56d11cdc624ad20da9fe62e9d25490f331d7d";

    fn target(repository: &str, tag: Option<&str>, digest: Option<&str>, is_manifest: bool) -> Option<EventTarget> {
        Some(EventTarget {
            repository: repository.parse().unwrap(),
            tag: tag.map(|tag| tag.parse().unwrap()),
            digest: digest.map(|digest| digest.parse().unwrap()),
            is_manifest,
        })
    }

    fn at(seconds: u64, nanos: u32) -> Option<SystemTime> {
        Some(SystemTime::UNIX_EPOCH + Duration::new(seconds, nanos))
    }

    #[test]
    fn a_distribution_envelope_gives_each_event() {
        // The shape distribution 2.8 sends: a manifest push by tag, a layer push, a
        // pull and a tag delete, with the URLs and request details ocisync ignores.
        let body = format!(
            r#"{{"events": [
              {{"id": "1", "timestamp": "2017-11-17T16:52:01.343145347Z", "action": "push",
                "target": {{"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 524,
                  "digest": "{DIGEST}", "length": 524, "repository": "team/app",
                  "url": "http://evil.example/v2/team/app/manifests/{DIGEST}", "tag": "v1"}},
                "request": {{"id": "r", "addr": "10.0.0.1", "host": "registry:5000", "method": "PUT"}},
                "actor": {{}}, "source": {{"addr": "registry:5000", "instanceID": "i"}}}},
              {{"id": "2", "timestamp": "2017-11-17T16:52:00Z", "action": "push",
                "target": {{"mediaType": "application/octet-stream", "digest": "{DIGEST}", "repository": "team/app"}}}},
              {{"id": "3", "action": "pull", "target": {{"repository": "team/app", "tag": "v1"}}}},
              {{"id": "4", "action": "delete", "target": {{"repository": "team/app", "tag": "old"}}}}
            ]}}"#
        );
        let events = parse_notification(body.as_bytes()).unwrap();
        assert_eq!(
            events,
            [
                RegistryEvent {
                    kind: EventKind::Push,
                    target: target("team/app", Some("v1"), Some(DIGEST), true),
                    occurred_at: at(1_510_937_521, 343_145_347),
                },
                RegistryEvent {
                    kind: EventKind::Push,
                    target: target("team/app", None, Some(DIGEST), false),
                    occurred_at: at(1_510_937_520, 0),
                },
                RegistryEvent {
                    kind: EventKind::Pull,
                    target: target("team/app", Some("v1"), None, true),
                    occurred_at: None,
                },
                RegistryEvent {
                    kind: EventKind::Delete,
                    target: target("team/app", Some("old"), None, true),
                    occurred_at: None,
                },
            ]
        );
    }

    #[test]
    fn a_single_event_as_azure_container_registry_sends_it() {
        let body = format!(
            r#"{{"id": "cb8c", "timestamp": "2017-11-17T16:52:01.343145347Z", "action": "push",
               "target": {{"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                 "size": 524, "digest": "{DIGEST}", "length": 524, "repository": "hello-world", "tag": "v1"}},
               "request": {{"id": "3cbb", "host": "myregistry.azurecr.io", "method": "PUT", "useragent": "docker"}}}}"#
        );
        let events = parse_notification(body.as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].target, target("hello-world", Some("v1"), Some(DIGEST), true));
    }

    #[test]
    fn harbor_default_payloads_give_one_event_per_resource() {
        // Harbor's documented `Default` format for PUSH_ARTIFACT.
        let body = format!(
            r#"{{"type": "PUSH_ARTIFACT", "occur_at": 1586922308, "operator": "admin",
               "event_data": {{
                 "resources": [
                   {{"digest": "{DIGEST}", "tag": "latest", "resource_url": "harbor.example/library/nginx:latest"}},
                   {{"digest": "{DIGEST}", "tag": "1.27", "resource_url": "harbor.example/library/nginx:1.27"}}
                 ],
                 "repository": {{"date_created": 1586922308, "name": "nginx", "namespace": "library",
                   "repo_full_name": "library/nginx", "repo_type": "private"}}}}}}"#
        );
        let events = parse_notification(body.as_bytes()).unwrap();
        let tags: Vec<_> = events
            .iter()
            .map(|event| (event.kind, event.target.clone().unwrap().tag.unwrap().to_string()))
            .collect();
        assert_eq!(
            tags,
            [(EventKind::Push, "latest".into()), (EventKind::Push, "1.27".into())]
        );
        assert_eq!(events[0].occurred_at, at(1_586_922_308, 0));
        assert_eq!(events[0].target.as_ref().unwrap().repository.as_str(), "library/nginx");

        let delete = r#"{"type": "DELETE_ARTIFACT", "occur_at": 1586922400, "operator": "admin",
            "event_data": {"resources": [{"digest": "sha256:80f0d5c8786bb9e621a45ece0db56d11cdc624ad20da9fe62e9d25490f331d7d", "tag": "old"}],
              "repository": {"name": "nginx", "namespace": "library", "repo_full_name": "library/nginx", "repo_type": "private"}}}"#;
        assert_eq!(
            parse_notification(delete.as_bytes()).unwrap()[0].kind,
            EventKind::Delete
        );

        // A scan result has another event_data; it is an event ocisync ignores, not an error.
        let scan = r#"{"type": "SCANNING_COMPLETED", "occur_at": 1, "operator": "auto",
            "event_data": {"resources": [{"scan_overview": {}}], "repository": {"repo_full_name": "library/nginx"}}}"#;
        assert_eq!(
            parse_notification(scan.as_bytes()).unwrap(),
            [RegistryEvent {
                kind: EventKind::Other,
                target: None,
                occurred_at: None
            }]
        );
    }

    #[test]
    fn an_event_naming_nothing_valid_is_kept_without_a_target() {
        let body = r#"{"events": [{"action": "push", "target": {"repository": "Not/Valid", "tag": "v1"}}]}"#;
        let events = parse_notification(body.as_bytes()).unwrap();
        assert_eq!(events[0].target, None);
    }

    #[test]
    fn other_bodies_are_refused_with_one_line() {
        let cases: &[(&str, &str)] = &[
            ("not json", "the body is not JSON"),
            ("[1, 2]", "the body is not a JSON object"),
            ("{}", "not a distribution envelope (events)"),
            (r#"{"events": 3}"#, "distribution envelope: invalid type"),
            (
                r#"{"events": [{"action": "push"}]}"#,
                "distribution envelope: missing field `target`",
            ),
            (
                r#"{"type": "PUSH_ARTIFACT", "event_data": {}}"#,
                "Harbor webhook: missing field `repository`",
            ),
            (
                r#"{"type": 7, "event_data": {}}"#,
                "Harbor webhook: `type` is not a string",
            ),
            (
                r#"{"specversion": "1.0", "type": "harbor.artifact.pushed"}"#,
                "set the Harbor webhook's payload format to Default",
            ),
        ];
        for (body, expected) in cases {
            let error = parse_notification(body.as_bytes()).expect_err(body).to_string();
            assert!(error.contains(expected), "{body}: {error}");
            assert!(!error.contains('\n'), "one line: {error}");
        }
    }
}
