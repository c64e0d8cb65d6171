//! End-to-end tests of the `ocisync` binary against real registries.

mod bad_input;
mod faults;
mod filters;
mod mirror;
mod modes;
mod support;
