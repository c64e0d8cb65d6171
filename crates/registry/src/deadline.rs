//! `request_timeout`: one deadline for a whole request, from sending it to the end of its
//! answer's body. reqwest's read timeout restarts with every read, so an upstream that
//! sends a byte now and then would hold a request forever without it.
//!
//! Blob bodies are not held to it (a large layer takes as long as it takes); they have
//! a rate floor instead ([`crate::rate_floor`]). Their answer's head is.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use ocisync_oci::StoreError;
use reqwest::{RequestBuilder, Response};
use tokio::time::{Instant, Sleep};

use crate::status::transport_error;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The deadline of one request: `request_timeout` from when it is sent.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    limit: Duration,
}

/// The request was not answered in full within `request_timeout`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no whole answer within request_timeout ({limit:?})")]
pub struct RequestTimedOut {
    limit: Duration,
}

impl Deadline {
    /// A deadline `limit` from now.
    pub fn start(limit: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + limit,
            limit,
        }
    }

    /// Sends `request`; its answer's head must arrive before the deadline. `what` names
    /// the request in errors.
    pub async fn send(&self, what: &str, request: RequestBuilder) -> Result<Response, StoreError> {
        match tokio::time::timeout_at(self.at, request.send()).await {
            Ok(sent) => sent.map_err(|error| transport_error(what.to_owned(), error)),
            Err(_) => Err(StoreError::Transport {
                what: what.to_owned(),
                source: Box::new(RequestTimedOut { limit: self.limit }),
            }),
        }
    }

    /// `response` with a body that fails with [`RequestTimedOut`] at the deadline, so
    /// whoever reads it (a manifest, a list page, a token, an error body) is bounded.
    pub fn bound_body(&self, response: Response) -> Response {
        let mut head = http::Response::new(());
        *head.status_mut() = response.status();
        *head.version_mut() = response.version();
        *head.headers_mut() = response.headers().clone();
        let body = BoundedBody {
            body: Box::pin(response.bytes_stream()),
            timer: Box::pin(tokio::time::sleep_until(self.at)),
            limit: self.limit,
            ended: false,
        };
        let (parts, ()) = head.into_parts();
        Response::from(http::Response::from_parts(parts, reqwest::Body::wrap_stream(body)))
    }
}

/// A response body that ends with an error at the deadline.
struct BoundedBody {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    timer: Pin<Box<Sleep>>,
    limit: Duration,
    ended: bool,
}

impl Stream for BoundedBody {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = self.body.as_mut().poll_next(cx) {
            return Poll::Ready(item.map(|chunk| chunk.map_err(BoxError::from)));
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.ended = true;
                Poll::Ready(Some(Err(Box::new(RequestTimedOut { limit: self.limit }))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt as _;

    #[tokio::test]
    async fn a_body_that_never_ends_fails_at_the_deadline_with_what_it_had_before() {
        let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"a"))])
            .chain(futures_util::stream::pending());
        let response = Response::from(
            http::Response::builder()
                .status(200)
                .header("content-type", "text/plain")
                .body(reqwest::Body::wrap_stream(chunks))
                .unwrap(),
        );
        let deadline = Deadline::start(Duration::from_millis(50));
        let bounded = deadline.bound_body(response);
        assert_eq!(bounded.status(), 200);
        assert_eq!(bounded.headers()["content-type"], "text/plain");
        let mut body = bounded.bytes_stream();
        assert_eq!(body.next().await.unwrap().unwrap(), "a");
        let error = body.next().await.unwrap().unwrap_err();
        let text = transport_error("x".into(), error).to_string();
        assert_eq!(text, "x: no whole answer within request_timeout (50ms)");
    }
}
