//! Tests of the decorators against `MemoryStore`, with a test double that fails on cue.
//!
//! Timings are real but small (milliseconds): the workspace's tokio has no `test-util`,
//! so time cannot be paused. Assertions use lower bounds, or upper bounds with slack.

mod failover;
mod flaky;
mod policy;
mod retrying;
