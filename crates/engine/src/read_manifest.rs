//! A manifest read by digest and checked against the descriptor that named it: the copy
//! and `tags.min_age` read child manifests this one way.

use ocisync_oci::{Descriptor, Manifest, Reference, RepoName, Store, StoreError};

use crate::error::CopyError;

/// Reads manifest `descriptor.digest` of `repo` from `source`; bytes that do not hash to
/// the digest, or are not the descriptor's size, are the source's error.
pub(crate) async fn read_checked_manifest<S: Store>(
    source: &S,
    repo: &RepoName,
    descriptor: &Descriptor,
) -> Result<Manifest, CopyError> {
    let manifest = source
        .manifest(repo, &Reference::Digest(descriptor.digest.clone()))
        .await
        .map_err(CopyError::Source)?;
    let actual = descriptor.digest.recompute(&manifest.bytes);
    if actual != descriptor.digest {
        return Err(CopyError::Source(StoreError::DigestMismatch {
            what: format!("manifest {repo}@{}", descriptor.digest),
            expected: descriptor.digest.clone(),
            actual,
        }));
    }
    if manifest.bytes.len() as u64 != descriptor.size {
        return Err(CopyError::Source(StoreError::SizeMismatch {
            what: format!("manifest {repo}@{}", descriptor.digest),
            expected: descriptor.size,
            actual: manifest.bytes.len() as u64,
        }));
    }
    Ok(manifest)
}
