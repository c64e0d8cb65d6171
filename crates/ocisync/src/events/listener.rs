//! `POST /notifications/<registry>` on the `run` listener: token, size cap, parse,
//! match, queue; the answer says which.
//!
//! - 401: no `Authorization: Bearer <token>` with the registry's token; the body is
//!   not read and nothing happens.
//! - 413: a body over [`MAX_BODY_BYTES`]; 408: a body that does not arrive in time.
//! - 400: a body that is not a notification (one line says why).
//! - 503 with `Retry-After`: the queue is full (what could be queued stays queued;
//!   distribution retries the whole body, which then merges with it).
//! - 202: everything else, including events no rule takes, which are ignored without
//!   a request to either registry.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode};
use tracing::{debug, info};

use super::matching::{pushed_tag, wanted};
use super::parse::{parse_notification, RegistryEvent};
use super::queue::{EventQueue, Offer};
use super::token::NotificationToken;
use crate::config::Config;
use crate::health::text;
use crate::metrics::{EventOutcome, Metrics};
use crate::passes::PreparedSync;

/// Where notifications arrive: this, then the registry's name from the config.
pub const NOTIFICATIONS_PATH: &str = "/notifications/";

/// Largest body read: distribution sends a few events per request, a few hundred
/// bytes each; Harbor one artifact.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Longest wait for a body once its headers are in.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// What `run` needs to take notifications: each registry's token and the syncs that
/// read from it, the queue, the metrics.
pub struct EventIntake {
    registries: BTreeMap<String, RegistryIntake>,
    syncs: Vec<Arc<PreparedSync>>,
    queue: Arc<EventQueue>,
    metrics: Arc<Metrics>,
}

struct RegistryIntake {
    token: NotificationToken,
    /// Positions in `EventIntake::syncs` of the syncs whose `from` is this registry.
    syncs: Vec<usize>,
}

/// How the events of one accepted body were disposed of.
#[derive(Default)]
struct Tally {
    queued: usize,
    coalesced: usize,
    ignored: usize,
    rejected: usize,
}

impl EventIntake {
    /// `None` when no registry takes notifications. `syncs` are those `run` runs, in
    /// the order of their queue positions.
    pub fn new(
        config: &Config,
        syncs: Vec<Arc<PreparedSync>>,
        queue: Arc<EventQueue>,
        metrics: Arc<Metrics>,
    ) -> Option<EventIntake> {
        let registries: BTreeMap<String, RegistryIntake> = config
            .registries
            .iter()
            .filter_map(|(name, registry)| {
                let settings = registry.notifications.as_ref()?;
                let reading = (syncs.iter().enumerate())
                    .filter(|(_, sync)| &sync.config.from == name)
                    .map(|(index, _)| index)
                    .collect();
                Some((
                    name.clone(),
                    RegistryIntake {
                        token: NotificationToken::new(&settings.token),
                        syncs: reading,
                    },
                ))
            })
            .collect();
        if registries.is_empty() {
            return None;
        }
        metrics.events_enabled();
        Some(EventIntake {
            registries,
            syncs,
            queue,
            metrics,
        })
    }

    /// The registries that take notifications, by name.
    pub fn registry_names(&self) -> impl Iterator<Item = &str> {
        self.registries.keys().map(String::as_str)
    }

    pub async fn respond(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let name = request
            .uri()
            .path()
            .strip_prefix(NOTIFICATIONS_PATH)
            .unwrap_or_default();
        let Some((name, registry)) = self.registries.get_key_value(name) else {
            // The name is not echoed: it is whatever the client sent.
            return text(
                StatusCode::NOT_FOUND,
                "no registry of that name takes notifications (registries.NAME.notifications)\n".into(),
            );
        };
        let response = self.respond_for(name, registry, request).await;
        self.metrics.notification_answered(name, response.status().as_u16());
        response
    }

    async fn respond_for(
        &self,
        name: &str,
        registry: &RegistryIntake,
        request: Request<Incoming>,
    ) -> Response<Full<Bytes>> {
        if request.method() != Method::POST {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only POST\n".into());
        }
        if !registry.token.admits(request.headers().get(header::AUTHORIZATION)) {
            info!(registry = %name, "notification refused: no valid bearer token");
            let mut response = text(
                StatusCode::UNAUTHORIZED,
                "a valid Authorization: Bearer token is required\n".into(),
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            return response;
        }
        let body = match read_body(request).await {
            Ok(body) => body,
            Err(response) => return response,
        };
        let events = match parse_notification(&body) {
            Ok(events) => events,
            Err(reason) => {
                info!(registry = %name, reason = %reason, "notification refused: malformed body");
                return text(StatusCode::BAD_REQUEST, format!("{reason}\n"));
            }
        };
        let received_at = SystemTime::now();
        let mut tally = Tally::default();
        for event in &events {
            let outcome = self.dispatch(registry, event, received_at);
            self.metrics.event_received(name, event.kind.as_str(), outcome);
            match outcome {
                EventOutcome::Queued => tally.queued += 1,
                EventOutcome::Coalesced => tally.coalesced += 1,
                EventOutcome::Ignored => tally.ignored += 1,
                EventOutcome::Rejected => tally.rejected += 1,
            }
        }
        self.metrics.event_queue_depth(self.queue.depth());
        debug!(
            registry = %name,
            queued = tally.queued,
            coalesced = tally.coalesced,
            ignored = tally.ignored,
            rejected = tally.rejected,
            "notification"
        );
        if tally.rejected > 0 {
            let mut response = text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the queue is full ({} repositories wait); retry later\n",
                    self.queue.capacity()
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return response;
        }
        text(
            StatusCode::ACCEPTED,
            format!(
                "accepted: {} queued, {} coalesced, {} ignored\n",
                tally.queued, tally.coalesced, tally.ignored
            ),
        )
    }

    /// Offers the work `event` asks of each sync reading from the registry.
    fn dispatch(&self, registry: &RegistryIntake, event: &RegistryEvent, received_at: SystemTime) -> EventOutcome {
        let (repository, tag) = match pushed_tag(event) {
            Ok(pushed) => pushed,
            Err(reason) => {
                debug!(kind = event.kind.as_str(), reason, "event ignored");
                return EventOutcome::Ignored;
            }
        };
        let occurred_at = event.occurred_at.unwrap_or(received_at);
        let mut outcome = EventOutcome::Ignored;
        for &index in &registry.syncs {
            // Images files are read as a pass would: a changed list applies at once.
            let (rules, _) = self.syncs[index].config.rules_for_pass();
            let Some(work) = wanted(&rules, repository, tag) else {
                continue;
            };
            let offered = match self.queue.offer(index, repository, work, occurred_at) {
                Offer::Queued => EventOutcome::Queued,
                Offer::Coalesced => EventOutcome::Coalesced,
                Offer::Full => EventOutcome::Rejected,
            };
            // Over the syncs: rejected beats queued beats coalesced beats ignored.
            outcome = match (outcome, offered) {
                (EventOutcome::Rejected, _) | (_, EventOutcome::Rejected) => EventOutcome::Rejected,
                (EventOutcome::Queued, _) | (_, EventOutcome::Queued) => EventOutcome::Queued,
                _ => EventOutcome::Coalesced,
            };
        }
        if outcome == EventOutcome::Ignored {
            debug!(repo = %repository, tag = %tag, "no rule of a sync from this registry takes the event");
        }
        outcome
    }
}

/// The body, at most [`MAX_BODY_BYTES`], within [`BODY_TIMEOUT`].
async fn read_body(request: Request<Incoming>) -> Result<Bytes, Response<Full<Bytes>>> {
    let too_large = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a notification is at most {MAX_BODY_BYTES} bytes\n"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let body = Limited::new(request.into_body(), MAX_BODY_BYTES);
    match tokio::time::timeout(BODY_TIMEOUT, body.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(_)) => Err(text(StatusCode::BAD_REQUEST, "the body could not be read\n".into())),
        Err(_) => Err(text(
            StatusCode::REQUEST_TIMEOUT,
            "the body did not arrive in time\n".into(),
        )),
    }
}
