//! The benchmark of issue 7 (`make bench`, `make bench-scale`), driven by the
//! `ocisync-bench` binary: skopeo sync against ocisync on a generated corpus, with two
//! plain parallel clients of its own (blobs only; the complete copy), and ocisync's no-op pass on a catalog of thousands of
//! repositories. `make bench-wan` (issue 19) puts the source at a distance behind a slow link.
//!
//! - [`args`]: the command line.
//! - [`corpus`]: the generated corpus and its counts.
//! - [`contender`]: how skopeo and ocisync are started on a source and destination.
//! - [`process`]: a child process timed under GNU time (wall, peak RSS, deadline).
//! - [`link`]: the source's round trip and rate, the link floor and the ratios to it.
//! - [`limit`]: the plain parallel client that streams every distinct blob once.
//! - [`complete`]: the plain parallel client that does the complete copy (issue 7's
//!   reference).
//! - [`standard`]: the rounds of cold and no-op passes, with request counts and checks.
//! - [`scale`]: thousands of tiny repositories and the no-op pass over them.
//! - [`scale_storage`]: seeding them by writing the registry's storage directly.
//! - [`table`]: medians, ratios against the targets, markdown tables.
//! - [`lag`]: mirror lag of `run` with registry notifications, and with the schedule alone.
//! - [`transfer`]: one large layer under a bandwidth cap, through cut downloads and a
//!   broken upload chunk (`make bench-transfers`).

pub mod args;
pub mod complete;
pub mod contender;
pub mod corpus;
pub mod lag;
pub mod limit;
pub mod link;
pub mod process;
pub mod scale;
pub mod scale_storage;
pub mod standard;
pub mod table;
pub mod trace;
pub mod transfer;

#[cfg(test)]
mod tests;
