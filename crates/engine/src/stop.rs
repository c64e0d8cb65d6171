//! Telling a pass to stop, in two steps: first no new image starts (copies under way
//! go on), then, if they take too long, the copies under way are abandoned. Why the
//! pass stopped decides how the images it left are reported.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;

use futures_util::future::{select, BoxFuture, Either};
use serde::Serialize;
use tokio::sync::watch;

use crate::outcome::SkipReason;

/// Why a pass was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopCause {
    /// The worker is shutting down (SIGTERM or SIGINT to `run`). Not a failure: the
    /// next start carries on.
    Shutdown,
    /// The pass ran longer than its `max_pass_duration`. A failure: the pass did not
    /// fit the time it was given.
    Deadline,
}

impl StopCause {
    /// How an image this stop left behind is reported.
    pub fn skip_reason(self) -> SkipReason {
        match self {
            StopCause::Shutdown => SkipReason::Interrupted,
            StopCause::Deadline => SkipReason::Deadline,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Running,
    /// No new image starts.
    Stopping(StopCause),
    /// Copies under way end now too.
    Abandoning(StopCause),
}

impl Stage {
    fn cause(&self) -> Option<StopCause> {
        match *self {
            Stage::Running => None,
            Stage::Stopping(cause) | Stage::Abandoning(cause) => Some(cause),
        }
    }

    fn is_abandoning(&self) -> bool {
        matches!(self, Stage::Abandoning(_))
    }
}

/// A signal shared by everything working on a pass: once raised, no new image starts;
/// once abandoned, images under way end at once (reported as left by the stop).
///
/// A [`child`](StopSignal::child) follows its parent and can also be raised alone: a
/// pass's own deadline under a worker-wide shutdown.
#[derive(Debug, Clone)]
pub struct StopSignal(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    stage: watch::Sender<Stage>,
    parent: Option<StopSignal>,
}

impl Default for StopSignal {
    fn default() -> Self {
        StopSignal::under(None)
    }
}

impl StopSignal {
    fn under(parent: Option<StopSignal>) -> StopSignal {
        StopSignal(Arc::new(Shared {
            stage: watch::Sender::new(Stage::Running),
            parent,
        }))
    }

    /// A signal raised and abandoned with this one, which can also be raised alone.
    pub fn child(&self) -> StopSignal {
        StopSignal::under(Some(self.clone()))
    }

    /// No new image starts from now on. The first cause given (here or in a parent) is
    /// the one that stays.
    pub fn raise(&self, cause: StopCause) {
        let cause = self.cause().unwrap_or(cause);
        self.0.stage.send_if_modified(|stage| {
            if *stage != Stage::Running {
                return false;
            }
            *stage = Stage::Stopping(cause);
            true
        });
    }

    /// Images under way end now; raises the signal first if it was not yet.
    pub fn abandon(&self, cause: StopCause) {
        let cause = self.cause().unwrap_or(cause);
        self.0.stage.send_if_modified(|stage| match *stage {
            Stage::Running => {
                *stage = Stage::Abandoning(cause);
                true
            }
            Stage::Stopping(first) => {
                *stage = Stage::Abandoning(first);
                true
            }
            Stage::Abandoning(_) => false,
        });
    }

    /// Why the pass was told to stop (here, else in a parent); `None` while it runs.
    pub fn cause(&self) -> Option<StopCause> {
        let own = self.0.stage.borrow().cause();
        own.or_else(|| self.0.parent.as_ref()?.cause())
    }

    /// Whether the pass was told to stop (here or in a parent): no new image starts.
    pub fn is_raised(&self) -> bool {
        self.cause().is_some()
    }

    /// Whether the images under way are abandoned too (the grace period ran out).
    pub fn is_abandoned(&self) -> bool {
        self.0.stage.borrow().is_abandoning() || self.0.parent.as_ref().is_some_and(StopSignal::is_abandoned)
    }

    /// How an image left by this stop is reported (`interrupted` when no cause is known).
    pub fn skip_reason(&self) -> SkipReason {
        self.cause().map_or(SkipReason::Interrupted, StopCause::skip_reason)
    }

    /// Runs `work` unless the signal is raised first; `None` then, and `work` is dropped.
    pub(crate) async fn unless_raised<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        self.unless(work, |stage| stage.cause().is_some()).await
    }

    /// Runs `work` unless the signal is abandoned first; `None` then, and `work` is
    /// dropped (a copy cut off this way has written children before parents, so it
    /// leaves at most unreferenced blobs and manifests behind).
    pub(crate) async fn unless_abandoned<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        self.unless(work, Stage::is_abandoning).await
    }

    async fn unless<T>(&self, work: impl Future<Output = T>, stage: fn(&Stage) -> bool) -> Option<T> {
        match select(pin!(work), self.reached(stage)).await {
            Either::Left((value, _)) => Some(value),
            Either::Right(_) => None,
        }
    }

    /// Resolves once this signal or a parent reaches a stage `wanted` accepts.
    fn reached(&self, wanted: fn(&Stage) -> bool) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let mut own = self.0.stage.subscribe();
            // The sender lives as long as `self`: waiting cannot fail.
            let own = async move {
                let _ = own.wait_for(wanted).await;
            };
            match &self.0.parent {
                None => own.await,
                Some(parent) => {
                    select(pin!(own), parent.reached(wanted)).await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_child_follows_its_parent_and_keeps_its_own_cause() {
        let worker = StopSignal::default();
        let pass = worker.child();
        assert_eq!(pass.cause(), None);
        pass.raise(StopCause::Deadline);
        worker.raise(StopCause::Shutdown);
        assert_eq!(pass.cause(), Some(StopCause::Deadline), "the first cause stays");
        assert_eq!(
            worker.cause(),
            Some(StopCause::Shutdown),
            "a child never raises its parent"
        );
        assert!(!pass.is_abandoned());
        let late = worker.child();
        late.raise(StopCause::Deadline);
        assert_eq!(late.cause(), Some(StopCause::Shutdown), "the worker's stop came first");

        let other_pass = worker.child();
        assert_eq!(other_pass.skip_reason(), SkipReason::Interrupted);
        let work = std::future::pending::<()>();
        let waiting = other_pass.unless_abandoned(work);
        worker.abandon(StopCause::Shutdown);
        let outcome = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert_eq!(outcome, Ok(None), "abandoning the parent ends the child's work");
        assert!(other_pass.is_abandoned() && !StopSignal::default().is_abandoned());
    }

    #[tokio::test]
    async fn work_that_finishes_first_keeps_its_result() {
        let signal = StopSignal::default();
        assert_eq!(signal.unless_raised(async { 7 }).await, Some(7));
        signal.abandon(StopCause::Deadline);
        assert_eq!(signal.cause(), Some(StopCause::Deadline), "abandoning raises too");
        assert_eq!(signal.unless_raised(std::future::pending::<u8>()).await, None);
        assert_eq!(signal.skip_reason(), SkipReason::Deadline);
    }

    #[tokio::test]
    async fn a_raised_signal_lets_the_work_under_way_go_on() {
        let signal = StopSignal::default();
        signal.raise(StopCause::Shutdown);
        let work = tokio::time::sleep(Duration::from_millis(50));
        assert_eq!(signal.unless_abandoned(work).await, Some(()), "raised is not abandoned");
        let child = signal.child();
        let work = tokio::time::sleep(Duration::from_millis(50));
        assert_eq!(child.unless_abandoned(work).await, Some(()));
    }
}
