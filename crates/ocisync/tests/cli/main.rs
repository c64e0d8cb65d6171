//! End-to-end tests of the `ocisync` binary against real registries.

mod airgap;
mod bad_input;
mod command_docs;
mod crash;
mod credential_helpers;
mod deploy;
mod events;
mod faults;
mod filters;
mod layouts;
mod limits;
mod mirror;
mod modes;
mod msrv;
mod network;
mod observe;
mod push;
mod quota;
mod scheduling;
mod secrets;
mod signatures;
mod support;
mod tls;
mod transfers;
mod upstreams;
