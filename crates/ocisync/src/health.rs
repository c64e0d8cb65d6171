//! The HTTP listener of `run`: `/metrics`, `/healthz` and `/readyz` (hyper, HTTP/1),
//! and `POST /notifications/<registry>` when a registry sends events (`events/`).
//!
//! `/healthz` answers while the process can answer at all: a liveness probe restarts
//! a hung process, not a slow pass. `/readyz` fails while a pass runs past its
//! `max_pass_duration`, so a stuck sync shows without killing the copies under way.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{header, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::events::{EventIntake, NOTIFICATIONS_PATH};
use crate::metrics::Metrics;

/// Binds the address up front, so a port in use is a startup error (exit 2).
pub async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))
}

/// Serves until the process ends; `events` adds `POST /notifications/<registry>`.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, events: Option<Arc<EventIntake>>) {
    if let Ok(address) = listener.local_addr() {
        match &events {
            Some(events) => info!(
                address = %address,
                registries = %events.registry_names().collect::<Vec<_>>().join(", "),
                "serving /metrics, /healthz, /readyz and /notifications/<registry>"
            ),
            None => info!(address = %address, "serving /metrics, /healthz and /readyz"),
        }
    }
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, usually: wait a moment instead of spinning.
                warn!(error = %error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        let events = events.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let metrics = Arc::clone(&metrics);
                let events = events.clone();
                async move {
                    let response = match events {
                        Some(events) if request.uri().path().starts_with(NOTIFICATIONS_PATH) => {
                            events.respond(request).await
                        }
                        _ => respond(&metrics, request.method(), request.uri().path()),
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(error = %error, "metrics connection ended with an error");
            }
        });
    }
}

fn respond(metrics: &Metrics, method: &Method, path: &str) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match path {
        "/metrics" => {
            let mut response = text(StatusCode::OK, metrics.render());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => match metrics.readiness() {
            Ok(()) => text(StatusCode::OK, "ready\n".into()),
            Err(reasons) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready:\n{reasons}\n")),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

pub fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::SyncSettings;

    #[test]
    fn paths_and_statuses() {
        let metrics = Metrics::new([SyncSettings {
            max_pass_duration: Some(Duration::from_millis(1)),
            ..SyncSettings::named("hub")
        }]);
        let status = |method: &Method, path: &str| respond(&metrics, method, path).status();
        assert_eq!(status(&Method::GET, "/healthz"), StatusCode::OK);
        assert_eq!(status(&Method::GET, "/readyz"), StatusCode::OK);
        assert_eq!(status(&Method::GET, "/metrics"), StatusCode::OK);
        assert_eq!(status(&Method::GET, "/"), StatusCode::NOT_FOUND);
        assert_eq!(status(&Method::POST, "/metrics"), StatusCode::METHOD_NOT_ALLOWED);
        metrics.pass_started("hub");
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(status(&Method::GET, "/readyz"), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            status(&Method::GET, "/healthz"),
            StatusCode::OK,
            "liveness ignores slow passes"
        );
    }
}
