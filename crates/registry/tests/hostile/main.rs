//! What a hostile or broken upstream may send, against the registry store, one module
//! per theme: credentials and TLS leniency stay with the registry's own origin
//! (`origins`), nothing is waited for without a deadline or a rate floor (`slow`), and
//! lists are bounded and survive a bad entry (`lists`).
//!
//! The upstreams are testkit's [`HostileServer`](ocisync_testkit::HostileServer)s,
//! scripted raw answers on loopback, some behind a [`TlsFront`](ocisync_testkit::TlsFront).

mod lists;
mod origins;
mod slow;

use ocisync_oci::RepoName;
use ocisync_registry::{Credentials, RegistryOptions, Secret};

pub const READER: (&str, &str) = ("reader", "reader-secret-5e1a");

pub fn repo() -> RepoName {
    "team/app".parse().unwrap()
}

/// Options for `url` with the reader's password.
pub fn with_password(url: &str) -> RegistryOptions {
    let mut options = RegistryOptions::new(url);
    options.credentials = Some(Credentials::password(READER.0, Secret::new(READER.1)));
    options
}

/// Everything an error prints: its message and its whole source chain.
pub fn printed(error: &dyn std::error::Error) -> String {
    let mut text = format!("{error} {error:?}");
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(" {cause} {cause:?}"));
        source = cause.source();
    }
    text
}
