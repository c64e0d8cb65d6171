//! Finding what is attached to a manifest at the source.

use ocisync_oci::{referrers_tag, Digest, ManifestContent, Reference, RepoName, Store};

use super::{Attached, RepoAttachments};
use crate::error::CopyError;

/// The cosign tags (from the tag list) and OCI referrers of `subject` in `repo`:
/// one referrers API call, plus one manifest read when the store has no API and the
/// tag list holds the subject's tag schema index.
pub(super) async fn discover(
    source: &impl Store,
    repo: &RepoName,
    subject: &Digest,
    attachments: &RepoAttachments,
) -> Result<Attached, CopyError> {
    let cosign = attachments.cosign_tags_of(subject);
    let listed = source.referrers(repo, subject).await.map_err(CopyError::Source)?;
    let referrers = match listed {
        Some(referrers) => referrers,
        // "If the referrers API returns a 404, the client MUST fallback to pulling the
        // referrers tag schema." The tag list says whether there is one to pull.
        None if attachments.has_schema_tag(subject) => {
            let index = source
                .manifest(repo, &Reference::Tag(referrers_tag(subject)))
                .await
                .map_err(CopyError::Source)?;
            match index.content() {
                Ok(ManifestContent::Index { manifests }) => manifests,
                Ok(_) => {
                    return Err(CopyError::Malformed {
                        digest: index.digest.clone(),
                        source: ocisync_oci::MalformedManifest::new("referrers tag schema entry is not an index"),
                    })
                }
                Err(source) => {
                    return Err(CopyError::Malformed {
                        digest: index.digest.clone(),
                        source,
                    })
                }
            }
        }
        None => Vec::new(),
    };
    Ok(Attached { cosign, referrers })
}
