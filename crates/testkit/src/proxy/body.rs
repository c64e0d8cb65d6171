//! [`CutBody`]: a response body that delivers a prefix, goes quiet, then breaks off.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::Sleep;

/// Boxed body error, as hyper accepts it.
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The error that ends a [`CutBody`]; hyper reacts by closing the connection.
#[derive(Debug)]
struct BodyCut {
    delivered: u64,
}

impl fmt::Display for BodyCut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "testkit proxy: response body cut after {} bytes", self.delivered)
    }
}

impl std::error::Error for BodyCut {}

enum State {
    /// Passing upstream frames on until `remaining` reaches 0.
    Passing,
    /// The cut point is reached (or the upstream body ended): nothing more is sent.
    Pausing(Pin<Box<Sleep>>),
    /// The error has been returned.
    Done,
}

/// Wraps an upstream body: the first `cut_at` bytes are passed on, then nothing is sent
/// for `pause`, then the body fails, which makes hyper drop the connection.
///
/// The body never ends cleanly, so a client always sees fewer bytes than announced (or
/// no terminating chunk). Its size hint is the upstream one, matching the forwarded
/// `Content-Length`. The pause also gives hyper time to flush the prefix to the socket.
pub(super) struct CutBody {
    inner: Incoming,
    remaining: u64,
    delivered: u64,
    pause: Duration,
    state: State,
}

impl CutBody {
    pub(super) fn new(inner: Incoming, cut_at: u64, pause: Duration) -> CutBody {
        CutBody {
            inner,
            remaining: cut_at,
            delivered: 0,
            pause,
            state: State::Passing,
        }
    }
}

impl Body for CutBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Passing if this.remaining == 0 => {
                    this.state = State::Pausing(Box::pin(tokio::time::sleep(this.pause)));
                }
                State::Passing => match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                    Some(Ok(frame)) => {
                        // Trailers are dropped: a cut body has no end to put them at.
                        let Ok(mut data) = frame.into_data() else { continue };
                        if data.len() as u64 > this.remaining {
                            // Lossless: `remaining` is smaller than a length that fits in usize.
                            data.truncate(this.remaining as usize);
                        }
                        this.remaining -= data.len() as u64;
                        this.delivered += data.len() as u64;
                        if data.is_empty() {
                            continue;
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    Some(Err(error)) => {
                        this.state = State::Done;
                        return Poll::Ready(Some(Err(error.into())));
                    }
                    // Withhold the end: the client must not see a complete body.
                    None => this.remaining = 0,
                },
                State::Pausing(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    this.state = State::Done;
                    let cut = BodyCut {
                        delivered: this.delivered,
                    };
                    return Poll::Ready(Some(Err(cut.into())));
                }
                State::Done => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
