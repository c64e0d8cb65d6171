//! Event-driven sync: `run` takes registries' push notifications and mirrors the
//! pushed tag within seconds; the schedule stays as the net that catches whatever an
//! event missed.
//!
//! A request to `POST /notifications/<registry>` (`listener.rs`, served by
//! `health.rs`) must carry the registry's bearer token (`token.rs`). Its body is read
//! as distribution's envelope, a single distribution-shaped event (ACR) or Harbor's
//! webhook (`parse.rs`); each push of a tag is matched against the rules of every
//! scheduled sync that reads from the registry (`matching.rs`) and offered to a
//! bounded queue that merges work per repository (`queue.rs`). One worker per sync
//! (`worker.rs`) takes the sync's turn (`gate.rs`: passes and events never overlap)
//! and syncs the waiting repositories through the engine (`sync_one.rs`, the only
//! file that calls it). Deletes are acknowledged and ignored: pruning is not built.

mod gate;
mod listener;
mod matching;
mod parse;
mod queue;
mod sync_one;
mod token;
mod worker;

pub use gate::SyncGate;
pub use listener::{EventIntake, NOTIFICATIONS_PATH};
pub use queue::{EventQueue, DEFAULT_CAPACITY};
pub use worker::EventWorker;
