//! `bandwidth`: a cap on the bytes per second of a registry's blob transfers, downloads
//! and uploads together, shared by every stream of every store holding a clone.
//!
//! A scheduler rather than a bucket that fills up: each chunk of a blob reserves its
//! time on the link (`size ÷ rate`) after every chunk reserved before it, and is let
//! through once its slot is at most [`BURST`] away. So the cap holds over any stretch
//! longer than the burst, bursts stay small, streams take turns in the order they ask,
//! and a link left idle does not save up credit for a later burst. Waiting is a tokio
//! timer, never a busy loop.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use ocisync_oci::BlobStream;
use tokio::time::Instant;

/// How far ahead of its slot a chunk may go: the largest burst is this much of the rate.
pub const BURST: Duration = Duration::from_millis(50);

/// A cap of `bytes_per_second` on the blob bytes of one registry. Clones share it.
#[derive(Debug, Clone)]
pub struct Bandwidth {
    bytes_per_second: u64,
    /// When the link is free again: the end of the last slot reserved (`None`: never used).
    free_at: Arc<Mutex<Option<Instant>>>,
}

impl Bandwidth {
    /// A cap of `bytes_per_second` (at least 1).
    pub fn per_second(bytes_per_second: u64) -> Bandwidth {
        Bandwidth {
            bytes_per_second: bytes_per_second.max(1),
            free_at: Arc::default(),
        }
    }

    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second
    }

    /// Waits until `bytes` more may go over the link.
    pub async fn take(&self, bytes: usize) {
        let release = self.reserve(bytes);
        if release > Instant::now() {
            tokio::time::sleep_until(release).await;
        }
    }

    /// Reserves the slot of `bytes` after every slot reserved so far; returns when the
    /// bytes may go.
    fn reserve(&self, bytes: usize) -> Instant {
        let now = Instant::now();
        let duration = Duration::from_secs_f64(bytes as f64 / self.bytes_per_second as f64);
        let mut free_at = self.free_at.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // An idle link starts now: time it was not used is not saved up.
        let start = free_at.map_or(now, |free_at| free_at.max(now));
        let end = start + duration;
        *free_at = Some(end);
        end.checked_sub(BURST).unwrap_or(now)
    }
}

/// `stream`, each chunk let through only when `bandwidth` has room for it.
pub fn capped(stream: BlobStream, bandwidth: Bandwidth) -> BlobStream {
    Box::pin(stream.then(move |item| {
        let bandwidth = bandwidth.clone();
        async move {
            if let Ok(chunk) = &item {
                bandwidth.take(chunk.len()).await;
            }
            item
        }
    }))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use futures_util::stream;

    use super::*;

    const MIB: u64 = 1 << 20;

    fn chunks(count: usize, size: usize) -> BlobStream {
        Box::pin(stream::iter((0..count).map(move |_| Ok(Bytes::from(vec![0u8; size])))))
    }

    async fn drain(stream: BlobStream) -> u64 {
        stream
            .fold(0u64, |total, item| async move { total + item.unwrap().len() as u64 })
            .await
    }

    #[tokio::test(start_paused = true)]
    async fn one_stream_goes_at_the_rate() {
        let started = Instant::now();
        let bytes = drain(capped(chunks(100, 64 * 1024), Bandwidth::per_second(MIB))).await;
        // 6.25 MiB at 1 MiB/s: 6.25 s, less the one burst let through ahead.
        let elapsed = started.elapsed();
        assert_eq!(bytes, 100 * 64 * 1024);
        assert!(
            elapsed >= Duration::from_millis(6250) - BURST && elapsed <= Duration::from_millis(6250),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn streams_share_one_cap() {
        let bandwidth = Bandwidth::per_second(2 * MIB);
        let started = Instant::now();
        let streams = (0..4).map(|_| tokio::spawn(drain(capped(chunks(64, 16 * 1024), bandwidth.clone()))));
        let mut total = 0;
        for stream in streams {
            total += stream.await.unwrap();
        }
        // 4 MiB over a shared 2 MiB/s: 2 s, not the 0.5 s four separate caps would allow.
        let elapsed = started.elapsed();
        assert_eq!(total, 4 * MIB);
        assert!(elapsed >= Duration::from_secs(2) - BURST, "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_stay_within_the_burst_window() {
        let bandwidth = Bandwidth::per_second(MIB);
        // A long idle moment saves nothing up: right after it, only one burst goes at once.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let mut released = Vec::new();
        let started = Instant::now();
        for _ in 0..20 {
            bandwidth.take(10 * 1024).await;
            released.push(started.elapsed());
        }
        let at_once = released.iter().filter(|at| at.is_zero()).count();
        let burst_bytes = at_once as u64 * 10 * 1024;
        assert!(
            burst_bytes <= MIB * BURST.as_millis() as u64 / 1000 + 10 * 1024,
            "{released:?}"
        );
        // 200 KiB at 1 MiB/s is 195 ms; the last chunk goes one burst early.
        assert!(released[19] >= Duration::from_millis(195 - 50 - 1), "{released:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_chunk_larger_than_the_burst_waits_its_own_time() {
        let bandwidth = Bandwidth::per_second(MIB);
        let started = Instant::now();
        bandwidth.take(MIB as usize).await;
        bandwidth.take(MIB as usize).await;
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_secs(2) - BURST, "{elapsed:?}");
    }
}
