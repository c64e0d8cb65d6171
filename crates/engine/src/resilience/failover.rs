//! A [`Store`] over equivalent mirrors: each call goes to the first one that is not cooling down.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use ocisync_oci::{BlobPlacement, BlobStream, Descriptor, Digest, Manifest, Reference, RepoName, Result, Store, Tag};
use tokio::time::Instant;

/// How long a store that failed with a transient error is passed over.
pub const DEFAULT_COOL_DOWN: Duration = Duration::from_secs(60);

/// Calls answered by one store of a [`Failover`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedCount {
    /// The store's label (its URL).
    pub label: String,
    /// Calls it answered successfully.
    pub calls: u64,
}

/// Stores holding the same content (mirrors of one registry), tried in order.
///
/// A call goes to the first store that is not cooling down. A transient failure (after
/// that store's own retries, when it is a [`Retrying`](super::Retrying)) puts the store
/// into cool-down and sends the same call to the next store that is not. When every
/// store is cooling down, the one whose cool-down ends first is tried, so a call is never
/// refused untried. Errors that are not transient (404, 403, …) return at once: the
/// mirrors are equivalent, so another would answer the same. Each store is tried at most
/// once per call. Once its cool-down ends, the first store takes over again.
///
/// A used-up pull quota, or a manifest `GET` held back for the quota's reserve, is not
/// transient either, so it does not move the call: the URLs of one registry are often
/// names of one service whose quota they share, where the next URL would spend the
/// reserve or collect another 429. The store itself stops such requests for the rest
/// of the pass without sending them, so later calls cost nothing; a later pass retries.
///
/// Two calls cannot fail over: `put_blob` (its body stream is consumed by the first
/// try) and the rest of a blob stream after it started. Both still put a store that
/// failed transiently into cool-down, so the caller's next try goes elsewhere.
///
/// [`Store::label`] is every store's label joined with ` | `, in order: a log line or
/// report names the whole group, and each error names the store that produced it.
pub struct Failover<S> {
    members: Vec<Member<S>>,
    label: String,
    cool_down: Duration,
    failovers: AtomicU64,
    last_served: AtomicUsize,
}

struct Member<S> {
    store: S,
    health: Arc<Health>,
    served: AtomicU64,
}

/// When a store's cool-down ends; shared with the blob streams it serves.
#[derive(Default)]
struct Health {
    down_until: Mutex<Option<Instant>>,
}

impl Health {
    fn down_until(&self) -> Option<Instant> {
        *self.down_until.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_down(&self, now: Instant) -> bool {
        self.down_until().is_some_and(|until| until > now)
    }

    fn set(&self, until: Option<Instant>) {
        *self.down_until.lock().unwrap_or_else(PoisonError::into_inner) = until;
    }
}

/// `last_served` before any call succeeded.
const NONE_SERVED: usize = usize::MAX;

impl<S: Store> Failover<S> {
    /// Stores in order of preference; at least one, so there is always one to try.
    pub fn new(first: S, others: impl IntoIterator<Item = S>) -> Self {
        let members: Vec<Member<S>> = std::iter::once(first)
            .chain(others)
            .map(|store| Member {
                store,
                health: Arc::default(),
                served: AtomicU64::new(0),
            })
            .collect();
        let label = members
            .iter()
            .map(|member| member.store.label())
            .collect::<Vec<_>>()
            .join(" | ");
        Failover {
            members,
            label,
            cool_down: DEFAULT_COOL_DOWN,
            failovers: AtomicU64::new(0),
            last_served: AtomicUsize::new(NONE_SERVED),
        }
    }

    /// How long a store that failed is passed over.
    pub fn with_cool_down(mut self, cool_down: Duration) -> Self {
        self.cool_down = cool_down;
        self
    }

    /// The stores, in order of preference (to read their own counters).
    pub fn stores(&self) -> impl Iterator<Item = &S> {
        self.members.iter().map(|member| &member.store)
    }

    /// Times a call moved from one store to the next.
    pub fn failovers(&self) -> u64 {
        self.failovers.load(Ordering::Relaxed)
    }

    /// Successful calls per store, in order of preference.
    pub fn served(&self) -> Vec<ServedCount> {
        self.members
            .iter()
            .map(|member| ServedCount {
                label: member.store.label().to_owned(),
                calls: member.served.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// The label of the store that answered the latest successful call.
    pub fn last_served(&self) -> Option<&str> {
        let index = self.last_served.load(Ordering::Relaxed);
        self.members.get(index).map(|member| member.store.label())
    }

    /// The first store not cooling down, else the one whose cool-down ends first.
    fn first_choice(&self) -> usize {
        let now = Instant::now();
        let up = self.members.iter().position(|member| !member.health.is_down(now));
        up.unwrap_or_else(|| {
            (0..self.members.len())
                .min_by_key(|&index| self.members[index].health.down_until())
                .unwrap_or(0)
        })
    }

    /// The first store not cooling down and not yet tried by this call.
    fn next_untried(&self, tried: &[bool]) -> Option<usize> {
        let now = Instant::now();
        (0..self.members.len()).find(|&index| !tried[index] && !self.members[index].health.is_down(now))
    }

    fn cool_down_until(&self) -> Instant {
        Instant::now() + self.cool_down
    }

    /// Runs `op` against the stores in turn, as the type's documentation says; returns
    /// which store answered, for callers that keep watching that store.
    async fn call<'a, T, F, Fut>(&'a self, operation: &str, mut op: F) -> Result<(usize, T)>
    where
        F: FnMut(&'a S) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut tried = vec![false; self.members.len()];
        let mut current = self.first_choice();
        // Each turn marks one more store tried, so this ends within `members.len()` turns.
        loop {
            tried[current] = true;
            let member = &self.members[current];
            match op(&member.store).await {
                Ok(value) => {
                    member.health.set(None);
                    member.served.fetch_add(1, Ordering::Relaxed);
                    self.last_served.store(current, Ordering::Relaxed);
                    return Ok((current, value));
                }
                Err(error) if !error.is_transient() => {
                    // It answered, so it is up; the others hold the same content.
                    member.health.set(None);
                    return Err(error);
                }
                Err(error) => {
                    member.health.set(Some(self.cool_down_until()));
                    let Some(next) = self.next_untried(&tried) else {
                        return Err(error);
                    };
                    self.failovers.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        registry = member.store.label(),
                        to = self.members[next].store.label(),
                        operation,
                        cool_down = ?self.cool_down,
                        error = %error,
                        "failing over"
                    );
                    current = next;
                }
            }
        }
    }

    async fn call_value<'a, T, F, Fut>(&'a self, operation: &str, op: F) -> Result<T>
    where
        F: FnMut(&'a S) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.call(operation, op).await.map(|(_, value)| value)
    }
}

impl<S: Store> Store for Failover<S> {
    fn label(&self) -> &str {
        &self.label
    }

    async fn catalog(&self) -> Result<Vec<RepoName>> {
        self.call_value("catalog", |store| store.catalog()).await
    }

    async fn tags(&self, repo: &RepoName) -> Result<Vec<Tag>> {
        self.call_value("tags", |store| store.tags(repo)).await
    }

    async fn head_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<Option<Descriptor>> {
        self.call_value("head manifest", |store| store.head_manifest(repo, reference))
            .await
    }

    async fn manifest(&self, repo: &RepoName, reference: &Reference) -> Result<Manifest> {
        self.call_value("manifest", |store| store.manifest(repo, reference))
            .await
    }

    async fn put_manifest(&self, repo: &RepoName, reference: &Reference, manifest: &Manifest) -> Result<()> {
        self.call_value("put manifest", |store| store.put_manifest(repo, reference, manifest))
            .await
    }

    async fn has_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool> {
        self.call_value("has blob", |store| store.has_blob(repo, digest)).await
    }

    async fn blob(&self, repo: &RepoName, descriptor: &Descriptor) -> Result<BlobStream> {
        let (index, stream) = self.call("blob", |store| store.blob(repo, descriptor)).await?;
        // A store that cuts a stream short is cooled down like one that refused to start
        // it, so the caller's next attempt at the whole blob goes to another mirror.
        let health = Arc::clone(&self.members[index].health);
        let label = self.members[index].store.label().to_owned();
        let cool_down = self.cool_down;
        let watched = stream.inspect(move |item| {
            if let Err(error) = item {
                if error.is_transient() {
                    health.set(Some(Instant::now() + cool_down));
                    tracing::warn!(registry = %label, cool_down = ?cool_down, error = %error, "blob stream failed; cooling down");
                }
            }
        });
        Ok(Box::pin(watched))
    }

    async fn put_blob(&self, repo: &RepoName, descriptor: &Descriptor, body: BlobStream) -> Result<()> {
        let index = self.first_choice();
        let member = &self.members[index];
        let result = member.store.put_blob(repo, descriptor, body).await;
        match &result {
            Ok(()) => {
                member.health.set(None);
                member.served.fetch_add(1, Ordering::Relaxed);
                self.last_served.store(index, Ordering::Relaxed);
            }
            Err(error) if error.is_transient() => {
                member.health.set(Some(self.cool_down_until()));
                tracing::warn!(registry = member.store.label(), cool_down = ?self.cool_down, error = %error, "blob upload failed; cooling down");
            }
            Err(_) => member.health.set(None),
        }
        result
    }

    async fn mount_blob(&self, repo: &RepoName, from: &RepoName, digest: &Digest) -> Result<bool> {
        self.call_value("mount blob", |store| store.mount_blob(repo, from, digest))
            .await
    }

    async fn prepare_blob(&self, repo: &RepoName, digest: &Digest, from: &RepoName) -> Result<BlobPlacement> {
        // The upload session it may open belongs to the store that answered; `put_blob`
        // goes to that same store unless it failed meanwhile (then it opens a new one).
        self.call_value("prepare blob", |store| store.prepare_blob(repo, digest, from))
            .await
    }

    async fn referrers(&self, repo: &RepoName, digest: &Digest) -> Result<Option<Vec<Descriptor>>> {
        self.call_value("referrers", |store| store.referrers(repo, digest))
            .await
    }
}
