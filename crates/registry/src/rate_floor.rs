//! `min_transfer_rate`: the slowest a blob download may be. A layer of many GiB on a
//! slow but honest link completes; an upstream that drips a byte now and then (which
//! reqwest's read timeout, restarted by every read, lets through) fails as a transient
//! transport error, which the engine may retry.
//!
//! Only time spent waiting for the upstream counts: while the consumer is busy (a slow
//! destination taking the upload this download feeds), the clock of the window stands
//! still, so a slow destination is not blamed on the source.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use ocisync_oci::{BlobStream, StoreError};
use tokio::time::{Instant, Sleep};

/// The slowest a blob download may be: at least `bytes_per_second`, averaged over each
/// `window` spent waiting for the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinTransferRate {
    pub bytes_per_second: u64,
    pub window: Duration,
}

impl MinTransferRate {
    /// The window `min_transfer_rate` is averaged over unless a caller sets another.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30);
    /// The floor unless set: 8 KiB/s over 30 s, far below any link worth mirroring
    /// over, far above a drip.
    pub const DEFAULT: MinTransferRate = MinTransferRate {
        bytes_per_second: 8 * 1024,
        window: Self::DEFAULT_WINDOW,
    };

    /// At least `bytes_per_second`, averaged over [`Self::DEFAULT_WINDOW`].
    pub fn per_second(bytes_per_second: u64) -> MinTransferRate {
        MinTransferRate {
            bytes_per_second,
            window: Self::DEFAULT_WINDOW,
        }
    }

    /// Bytes one window must bring.
    fn per_window(&self) -> u128 {
        u128::from(self.bytes_per_second) * self.window.as_millis() / 1000
    }
}

/// The blob arrived slower than the floor.
#[derive(Debug, thiserror::Error)]
#[error(
    "slower than min_transfer_rate ({} bytes/s): {received} bytes in {:?} of waiting",
    .floor.bytes_per_second,
    .floor.window
)]
pub struct TooSlow {
    floor: MinTransferRate,
    received: u64,
}

/// `stream`, failing once a window of waiting brings less than `floor` asks.
pub fn with_rate_floor(stream: BlobStream, floor: MinTransferRate, what: String) -> BlobStream {
    Box::pin(RateFloor {
        inner: stream,
        floor,
        what,
        waited: Duration::ZERO,
        received: 0,
        waiting_since: None,
        timer: Box::pin(tokio::time::sleep(floor.window)),
        ended: false,
    })
}

struct RateFloor {
    inner: BlobStream,
    floor: MinTransferRate,
    what: String,
    /// Time spent waiting for the upstream in this window, up to the current wait.
    waited: Duration,
    /// Bytes received in this window.
    received: u64,
    /// When the current wait began (the inner stream last had nothing).
    waiting_since: Option<Instant>,
    /// Wakes the task when the current wait completes the window.
    timer: Pin<Box<Sleep>>,
    ended: bool,
}

impl RateFloor {
    /// At the end of a window: the error if it brought too little, else a new window.
    fn close_window(&mut self) -> Option<StoreError> {
        if self.waited < self.floor.window {
            return None;
        }
        if u128::from(self.received) < self.floor.per_window() {
            self.ended = true;
            return Some(StoreError::Transport {
                what: self.what.clone(),
                source: Box::new(TooSlow {
                    floor: self.floor,
                    received: self.received,
                }),
            });
        }
        self.waited = Duration::ZERO;
        self.received = 0;
        None
    }
}

impl Stream for RateFloor {
    type Item = Result<Bytes, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        let now = Instant::now();
        if let Some(since) = this.waiting_since.take() {
            this.waited += now - since;
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.received += chunk.len() as u64;
                match this.close_window() {
                    Some(error) => Poll::Ready(Some(Err(error))),
                    None => Poll::Ready(Some(Ok(chunk))),
                }
            }
            Poll::Ready(other) => Poll::Ready(other),
            Poll::Pending => {
                if let Some(error) = this.close_window() {
                    return Poll::Ready(Some(Err(error)));
                }
                this.waiting_since = Some(now);
                this.timer.as_mut().reset(now + (this.floor.window - this.waited));
                // Registers the wake-up; the window is judged when it comes.
                let _ = this.timer.as_mut().poll(cx);
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt as _;

    fn floor(bytes_per_second: u64, window_ms: u64) -> MinTransferRate {
        MinTransferRate {
            bytes_per_second,
            window: Duration::from_millis(window_ms),
        }
    }

    /// `count` chunks of `size` bytes, one every `interval_ms`.
    fn paced(count: usize, size: usize, interval_ms: u64) -> BlobStream {
        Box::pin(futures_util::stream::iter(0..count).then(move |_| async move {
            tokio::time::sleep(Duration::from_millis(interval_ms)).await;
            Ok(Bytes::from(vec![0; size]))
        }))
    }

    #[tokio::test]
    async fn a_drip_fails_and_ends() {
        let mut stream = with_rate_floor(paced(1000, 1, 20), floor(1000, 100), "blob x".into());
        let mut received = 0;
        let error = loop {
            match stream.next().await.expect("fails before it ends") {
                Ok(chunk) => received += chunk.len(),
                Err(error) => break error,
            }
        };
        assert!(received < 1000, "{received}");
        assert!(error.is_transient());
        let text = format!("{error} {:?}", std::error::Error::source(&error));
        assert!(
            text.contains("blob x") && text.contains("min_transfer_rate (1000 bytes/s)"),
            "{text}"
        );
        assert!(stream.next().await.is_none(), "nothing after the error");
    }

    #[tokio::test]
    async fn a_steady_stream_above_the_floor_passes_whole() {
        let stream = with_rate_floor(paced(40, 1024, 5), floor(1024, 50), "blob x".into());
        let chunks: Vec<_> = stream.collect().await;
        assert_eq!(chunks.len(), 40);
        assert!(chunks.iter().all(Result::is_ok));
    }

    #[tokio::test]
    async fn time_the_consumer_spends_does_not_count() {
        // One byte arrives at once every time it is asked for; the consumer takes 30 ms
        // per byte. Judged on wall time this would be 33 B/s, under the floor.
        let chunks = futures_util::stream::iter(0..20).map(|_| Ok(Bytes::from_static(b"x")));
        let mut stream = with_rate_floor(Box::pin(chunks), floor(1000, 50), "blob x".into());
        let mut received = 0;
        while let Some(chunk) = stream.next().await {
            received += chunk.unwrap().len();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        assert_eq!(received, 20);
    }
}
