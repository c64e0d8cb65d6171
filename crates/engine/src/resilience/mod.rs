//! Retries with backoff and failover across mirrors, as [`Store`](ocisync_oci::Store) decorators.
//!
//! Stores never retry; these decorators do, and compose as
//! `Failover<Retrying<RegistryStore>>`: each mirror URL retries its own transient
//! failures ([`Retrying`], per a [`RetryPolicy`]), and when one still fails, [`Failover`]
//! cools it down and sends the same call to the next mirror. Which failures count as
//! transient is [`StoreError::is_transient`](ocisync_oci::StoreError::is_transient), in
//! one place.

mod failover;
mod policy;
mod retrying;

#[cfg(test)]
mod tests;

pub use failover::{Failover, ServedCount, DEFAULT_COOL_DOWN};
pub use policy::RetryPolicy;
pub use retrying::Retrying;
