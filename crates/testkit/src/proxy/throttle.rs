//! [`ThrottledBody`]: a response body delivered no faster than a set rate.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

use super::body::BoxError;

/// Wraps an upstream body: frames pass unchanged, each held back until the bytes so far
/// fit `bytes_per_second` since the response started: one slow link per connection, as
/// a far-away upstream gives each download.
pub(super) struct ThrottledBody {
    inner: Incoming,
    bytes_per_second: u64,
    started: Instant,
    sent: u64,
    held: Option<(Frame<Bytes>, Pin<Box<Sleep>>)>,
}

impl ThrottledBody {
    pub(super) fn new(inner: Incoming, bytes_per_second: u64) -> ThrottledBody {
        ThrottledBody {
            inner,
            bytes_per_second: bytes_per_second.max(1),
            started: Instant::now(),
            sent: 0,
            held: None,
        }
    }
}

impl Body for ThrottledBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.held.is_none() {
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    this.sent += frame.data_ref().map_or(0, |data| data.len() as u64);
                    let due = this.started + Duration::from_secs_f64(this.sent as f64 / this.bytes_per_second as f64);
                    this.held = Some((frame, Box::pin(tokio::time::sleep_until(due))));
                }
                other => return Poll::Ready(other.map(|result| result.map_err(Into::into))),
            }
        }
        if let Some((_, wait)) = &mut this.held {
            ready!(wait.as_mut().poll(cx));
        }
        Poll::Ready(this.held.take().map(|(frame, _)| Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
