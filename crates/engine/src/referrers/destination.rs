//! Putting referrers at the destination so that clients there find them.
//!
//! A destination with the referrers API indexes a manifest by its `subject` when it is
//! pushed. One without it (distribution 2.8) needs the referrers tag schema: "the client
//! MUST pull the tag index, append the descriptor (no duplicates) and push it back".

use ocisync_oci::media_type::OCI_INDEX;
use ocisync_oci::{referrers_tag, Descriptor, Digest, MalformedManifest, Manifest, ManifestContent, Reference, Store};
use serde_json::{json, Value};

use super::carried::{Carried, TravelError};
use crate::copy::Pass;
use crate::error::CopyError;
use crate::plan::SyncTask;
use crate::work::Work;

/// Copies each of `referrers` of `subject` that the destination does not list yet, and
/// lists it: by the registry's own index, or in the tag schema index. Reads nothing at
/// the destination when there is nothing to place.
pub(super) async fn place_referrers<S: Store, D: Store>(
    pass: &Pass<'_, S, D>,
    task: &SyncTask,
    subject: &Digest,
    referrers: &[Descriptor],
    carried: &mut Carried,
) -> Result<(), TravelError> {
    if referrers.is_empty() {
        return Ok(());
    }
    let listed = pass
        .destination
        .referrers(&task.destination, subject)
        .await
        .map_err(CopyError::Destination)?;
    let schema_index = match &listed {
        Some(_) => None,
        None => Some(read_schema_index(pass, task, subject).await?),
    };
    let known: Vec<&Digest> = match (&listed, &schema_index) {
        (Some(listed), _) => listed.iter().map(|d| &d.digest).collect(),
        (None, Some(index)) => index.entries.iter().map(|d| &d.digest).collect(),
        (None, None) => Vec::new(),
    };
    let missing: Vec<&Descriptor> = referrers.iter().filter(|r| !known.contains(&&r.digest)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    for referrer in &missing {
        let reference = Reference::Digest(referrer.digest.clone());
        let copy = pass.copy_reference(task, &reference, &reference).await;
        carried.add(&reference, &copy)?;
    }
    if let Some(index) = schema_index {
        let updated = index.with(&missing).map_err(|source| CopyError::Malformed {
            digest: subject.clone(),
            source,
        })?;
        pass.destination
            .put_manifest(&task.destination, &Reference::Tag(referrers_tag(subject)), &updated)
            .await
            .map_err(CopyError::Destination)?;
        carried.work += Work::manifest();
        tracing::info!(repo = %task.destination, %subject, added = missing.len(), "referrers tag schema index updated");
    }
    Ok(())
}

/// The destination's tag schema index of one subject, as found (maybe absent).
struct SchemaIndex {
    /// The JSON document, to keep what ocisync does not model; `None` when absent.
    document: Option<Value>,
    entries: Vec<Descriptor>,
}

impl SchemaIndex {
    /// The index with `added` appended to `manifests`.
    fn with(self, added: &[&Descriptor]) -> Result<Manifest, MalformedManifest> {
        let mut document = self
            .document
            .unwrap_or_else(|| json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}));
        let Some(Value::Array(manifests)) = document.get_mut("manifests") else {
            return Err(MalformedManifest::new("referrers index has no manifests array"));
        };
        for descriptor in added {
            let entry = serde_json::to_value(descriptor).map_err(|error| MalformedManifest::new(error.to_string()))?;
            manifests.push(entry);
        }
        let bytes = serde_json::to_vec(&document).map_err(|error| MalformedManifest::new(error.to_string()))?;
        Ok(Manifest::from_bytes(bytes, OCI_INDEX))
    }
}

async fn read_schema_index<S: Store, D: Store>(
    pass: &Pass<'_, S, D>,
    task: &SyncTask,
    subject: &Digest,
) -> Result<SchemaIndex, CopyError> {
    let tag = Reference::Tag(referrers_tag(subject));
    let manifest = match pass.destination.manifest(&task.destination, &tag).await {
        Ok(manifest) => manifest,
        Err(error) if error.is_not_found() => {
            return Ok(SchemaIndex {
                document: None,
                entries: Vec::new(),
            })
        }
        Err(error) => return Err(CopyError::Destination(error)),
    };
    let malformed = |source| CopyError::Malformed {
        digest: manifest.digest.clone(),
        source,
    };
    let entries = match manifest.content().map_err(malformed)? {
        ManifestContent::Index { manifests } => manifests,
        _ => {
            return Err(malformed(MalformedManifest::new(
                "referrers tag schema entry is not an index",
            )))
        }
    };
    let document = serde_json::from_slice(&manifest.bytes)
        .map_err(|error| malformed(MalformedManifest::new(error.to_string())))?;
    Ok(SchemaIndex {
        document: Some(document),
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appending_keeps_existing_entries_and_unknown_fields() {
        let first = Descriptor::new(OCI_INDEX, Digest::sha256_of(b"a"), 1);
        let mut second = Descriptor::new(OCI_INDEX, Digest::sha256_of(b"b"), 2);
        second.artifact_type = Some("application/spdx+json".to_owned());
        let empty = SchemaIndex {
            document: None,
            entries: Vec::new(),
        };
        let one = empty.with(&[&first]).unwrap();
        let ManifestContent::Index { manifests } = one.content().unwrap() else {
            panic!("not an index")
        };
        assert_eq!(manifests, vec![first.clone()]);
        let mut document: Value = serde_json::from_slice(&one.bytes).unwrap();
        document["annotations"] = json!({"kept": "yes"});
        let existing = SchemaIndex {
            document: Some(document),
            entries: manifests,
        };
        let two = existing.with(&[&second]).unwrap();
        let value: Value = serde_json::from_slice(&two.bytes).unwrap();
        assert_eq!(value["annotations"]["kept"], "yes");
        assert_eq!(value["manifests"][1]["artifactType"], "application/spdx+json");
        assert_eq!(value["manifests"].as_array().unwrap().len(), 2);
    }
}
