//! Deleting tags and manifests (distribution-spec "Content Management"), and telling a
//! registry that cannot from one that failed.

use ocisync_oci::{Deletion, Reference, RepoName, StoreError};
use reqwest::{Method, StatusCode};

use super::RegistryStore;
use crate::client::Scope;
use crate::status::error_from_response;

/// What distribution 2.x answers a tag delete with: it parses the reference as a
/// digest (400 `DIGEST_INVALID`), because it deletes manifests by digest only.
const DIGEST_INVALID: &str = "DIGEST_INVALID";
/// The error code of a registry whose deletes are disabled (405).
const UNSUPPORTED: &str = "UNSUPPORTED";

impl RegistryStore {
    /// `DELETE /v2/<name>/manifests/<reference>`: 202 deleted, 404 absent; a refusal
    /// that says the registry does not delete this way is [`Deletion::Unsupported`].
    pub(super) async fn delete_reference(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<Deletion, StoreError> {
        let what = self.what("delete manifest", repo, reference);
        let url = self.manifest_url(repo, reference);
        let response = self
            .endpoint
            .send(Scope::Delete(repo), &what, Method::DELETE, &url, |r| r)
            .await?;
        match response.status() {
            StatusCode::ACCEPTED | StatusCode::OK | StatusCode::NO_CONTENT => return Ok(Deletion::Deleted),
            StatusCode::NOT_FOUND => return Ok(Deletion::Absent),
            _ => {}
        }
        let error = error_from_response(what, response).await;
        Ok(match unsupported_reason(&error, reference) {
            Some(reason) => Deletion::Unsupported { reason },
            None => return Err(error),
        })
    }
}

/// Why a refused delete means "not this way" rather than a failure, if it does.
fn unsupported_reason(error: &StoreError, reference: &Reference) -> Option<String> {
    let StoreError::Rejected { status, detail, .. } = error else {
        return None;
    };
    if *status == 405 || detail.contains(UNSUPPORTED) {
        return Some(format!(
            "the registry refuses deletes ({status} {UNSUPPORTED}; distribution needs storage.delete.enabled: true)"
        ));
    }
    if *status == 400 && detail.contains(DIGEST_INVALID) && matches!(reference, Reference::Tag(_)) {
        return Some("the registry deletes manifests by digest only (distribution 2.x)".to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(status: u16, detail: &str) -> StoreError {
        StoreError::Rejected {
            what: "registry r delete manifest a:b".to_owned(),
            status,
            detail: detail.to_owned(),
        }
    }

    #[test]
    fn refusals_that_mean_unsupported() {
        let tag = Reference::Tag("v1".parse().unwrap());
        let digest = Reference::Digest(format!("sha256:{}", "a".repeat(64)).parse().unwrap());
        let disabled = r#"{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}"#;
        let by_digest = r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match"}]}"#;
        assert!(unsupported_reason(&rejected(405, disabled), &tag)
            .unwrap()
            .contains("refuses deletes"));
        assert!(unsupported_reason(&rejected(405, ""), &digest).is_some());
        assert!(unsupported_reason(&rejected(400, by_digest), &tag)
            .unwrap()
            .contains("by digest only"));
        // A digest the registry calls invalid is a real error, as is any other refusal.
        assert!(unsupported_reason(&rejected(400, by_digest), &digest).is_none());
        assert!(unsupported_reason(&rejected(400, "TAG_INVALID"), &tag).is_none());
        let denied = StoreError::Denied { what: String::new() };
        assert!(unsupported_reason(&denied, &tag).is_none());
    }
}
