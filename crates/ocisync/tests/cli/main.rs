//! End-to-end tests of the `ocisync` binary against real registries.

mod bad_input;
mod mirror;
mod support;
