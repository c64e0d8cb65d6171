//! The pass-wide queue of blob streams: a few at a time, the largest waiting one first.
//!
//! Tags are discovered in catalog order, but a pass ends when its longest stream does.
//! A 10 GiB layer found late runs alone at the end while everything else has finished;
//! started first (longest-processing-time first), it overlaps the small work instead.
//! Only streams queue here: mounts, existence checks and manifests never take a slot.
//! A slot is the source link's: it is given back once the source has delivered a
//! blob's last byte ([`TransferSlot::until_end_of`]), not when the destination has
//! committed it, so the next stream starts while the destination writes the last one.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::{Stream, StreamExt};
use ocisync_oci::BlobStream;
use tokio::sync::oneshot;

/// At most `slots` blob streams at once; waiting ones start largest first, and in the
/// order they came among equal sizes.
#[derive(Clone)]
pub struct TransferQueue {
    shared: Arc<Mutex<QueueState>>,
}

struct QueueState {
    free: usize,
    waiting: BinaryHeap<Waiter>,
    arrivals: u64,
}

struct Waiter {
    size: u64,
    arrival: Reverse<u64>,
    wake: oneshot::Sender<TransferSlot>,
}

impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.size, self.arrival).cmp(&(other.size, other.arrival))
    }
}

impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Waiter {}

/// The right to stream one blob; the next waiting stream starts when it is dropped.
pub struct TransferSlot {
    /// `None` once the slot has been passed on (it must not be freed twice).
    shared: Option<Arc<Mutex<QueueState>>>,
}

impl TransferQueue {
    /// A queue of `slots` streams at once (at least one).
    pub fn new(slots: usize) -> Self {
        TransferQueue {
            shared: Arc::new(Mutex::new(QueueState {
                free: slots.max(1),
                waiting: BinaryHeap::new(),
                arrivals: 0,
            })),
        }
    }

    /// Waits for a slot to stream a blob of `size` bytes.
    pub async fn enter(&self, size: u64) -> TransferSlot {
        let turn = {
            let mut state = self.shared.lock().unwrap();
            if state.free > 0 && state.waiting.is_empty() {
                state.free -= 1;
                return TransferSlot {
                    shared: Some(Arc::clone(&self.shared)),
                };
            }
            let (wake, turn) = oneshot::channel();
            state.arrivals += 1;
            let arrival = Reverse(state.arrivals);
            state.waiting.push(Waiter { size, arrival, wake });
            turn
        };
        turn.await.expect("a waiter is only dropped after it is woken")
    }
}

impl TransferSlot {
    /// `stream` holding this slot until it ends (its last byte delivered and checked)
    /// or fails, or is dropped: whichever comes first gives the slot back.
    pub fn until_end_of(self, stream: BlobStream) -> BlobStream {
        Box::pin(HeldStream {
            stream,
            slot: Some(self),
        })
    }
}

/// A source stream and the transfer slot it holds while bytes are still to come.
struct HeldStream {
    stream: BlobStream,
    slot: Option<TransferSlot>,
}

impl Stream for HeldStream {
    type Item = <BlobStream as Stream>::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.stream.poll_next_unpin(cx);
        if matches!(next, Poll::Ready(None | Some(Err(_)))) {
            self.slot = None;
        }
        next
    }
}

impl Drop for TransferSlot {
    fn drop(&mut self) {
        let Some(shared) = self.shared.take() else {
            return;
        };
        loop {
            let waiter = {
                let mut state = shared.lock().unwrap();
                match state.waiting.pop() {
                    Some(waiter) => waiter,
                    None => {
                        state.free += 1;
                        return;
                    }
                }
            };
            let slot = TransferSlot {
                shared: Some(Arc::clone(&shared)),
            };
            // A waiter that gave up (its copy was cancelled) hands the slot on: the
            // returned slot is disarmed and this loop offers it to the next waiter.
            match waiter.wake.send(slot) {
                Ok(()) => return,
                Err(mut unused) => unused.shared = None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Lets spawned tasks run up to their next wait.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn the_largest_waiting_stream_starts_first_and_equal_sizes_keep_their_order() {
        let queue = TransferQueue::new(1);
        let held = queue.enter(5).await;
        let (started, mut order) = tokio::sync::mpsc::unbounded_channel();
        for (name, size) in [
            ("small", 1_u64),
            ("huge", 1 << 30),
            ("medium-a", 1 << 20),
            ("medium-b", 1 << 20),
        ] {
            let (queue, started) = (queue.clone(), started.clone());
            tokio::spawn(async move {
                let _slot = queue.enter(size).await;
                started.send(name).unwrap();
                settle().await;
            });
            settle().await;
        }
        assert!(order.try_recv().is_err(), "nobody starts while the one slot is held");
        drop(held);
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(order.recv().await.unwrap());
        }
        assert_eq!(seen, ["huge", "medium-a", "medium-b", "small"]);
    }

    #[tokio::test]
    async fn slots_run_side_by_side_and_a_cancelled_waiter_hands_its_turn_on() {
        let queue = TransferQueue::new(2);
        let both = tokio::time::timeout(Duration::from_secs(5), async {
            (queue.enter(1).await, queue.enter(1).await)
        });
        let (first, _second) = both.await.expect("two slots are taken at once without waiting");
        let gave_up = tokio::spawn({
            let queue = queue.clone();
            async move {
                let _slot = queue.enter(100).await;
            }
        });
        settle().await;
        let patient = tokio::spawn({
            let queue = queue.clone();
            async move {
                let _slot = queue.enter(10).await;
            }
        });
        settle().await;
        gave_up.abort();
        let _ = gave_up.await;
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), patient)
            .await
            .expect("the slot of the cancelled waiter went to the next one")
            .unwrap();
        let third = tokio::time::timeout(Duration::from_secs(5), queue.enter(1))
            .await
            .expect("the slot came back when the last waiter finished");
        drop((third, _second));
        assert_eq!(Arc::strong_count(&queue.shared), 1, "no slot outlives its holder");
        assert_eq!(queue.shared.lock().unwrap().free, 2, "every slot is free again");
    }
}
