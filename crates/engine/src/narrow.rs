//! Narrowing a multi-arch index to the configured platforms.
//!
//! The destination gets a new index listing only the kept entries, so its digest
//! differs from upstream. Two annotations record where it came from; they let a
//! later pass see that the destination is current from the destination alone,
//! without reading the upstream index again (upstream manifest reads cost quota).

use ocisync_oci::{Descriptor, Digest, Manifest};
use serde_json::{Map, Value};

use crate::filter::PlatformSpec;

/// The upstream index digest the narrowed index was made from.
pub const SOURCE_DIGEST_ANNOTATION: &str = "dev.ocisync.source-digest";
/// The platforms it was narrowed to, as configured (`linux/amd64,linux/arm64`).
pub const PLATFORMS_ANNOTATION: &str = "dev.ocisync.platforms";

/// Builds the narrowed index: the upstream document with `manifests` cut down to
/// `kept` (each entry's JSON as upstream wrote it) and the two provenance annotations.
pub fn narrowed_index(upstream: &Manifest, kept: &[Descriptor], wanted: &[PlatformSpec]) -> Result<Manifest, String> {
    let mut document: Map<String, Value> =
        serde_json::from_slice(&upstream.bytes).map_err(|error| format!("index is not a JSON object: {error}"))?;
    let entries = match document.remove("manifests") {
        Some(Value::Array(entries)) => entries,
        _ => return Err("index has no manifests array".to_owned()),
    };
    let kept_entries: Vec<Value> = entries
        .into_iter()
        .filter(|entry| {
            entry
                .get("digest")
                .and_then(Value::as_str)
                .and_then(|digest| digest.parse::<Digest>().ok())
                .is_some_and(|digest| kept.iter().any(|descriptor| descriptor.digest == digest))
        })
        .collect();
    document.insert("manifests".to_owned(), Value::Array(kept_entries));
    let annotations = document
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(annotations) = annotations else {
        return Err("index annotations are not an object".to_owned());
    };
    annotations.insert(
        SOURCE_DIGEST_ANNOTATION.to_owned(),
        Value::String(upstream.digest.to_string()),
    );
    annotations.insert(PLATFORMS_ANNOTATION.to_owned(), Value::String(platforms_text(wanted)));
    let bytes = serde_json::to_vec(&document).map_err(|error| error.to_string())?;
    Ok(Manifest::from_bytes(bytes, upstream.media_type.clone()))
}

/// Whether `destination` (bytes of the manifest under the tag at the destination) is
/// the narrowing of upstream `source_digest` to `wanted`.
pub fn is_current_narrowing(destination: &Manifest, source_digest: &Digest, wanted: &[PlatformSpec]) -> bool {
    let Ok(document) = serde_json::from_slice::<Value>(&destination.bytes) else {
        return false;
    };
    let annotation = |key: &str| document.get("annotations")?.get(key)?.as_str().map(str::to_owned);
    annotation(SOURCE_DIGEST_ANNOTATION) == Some(source_digest.to_string())
        && annotation(PLATFORMS_ANNOTATION) == Some(platforms_text(wanted))
}

fn platforms_text(wanted: &[PlatformSpec]) -> String {
    wanted.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use ocisync_oci::ManifestContent;

    use super::*;

    const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":10,"platform":{"os":"linux","architecture":"amd64"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":20,"platform":{"os":"linux","architecture":"arm64","variant":"v8","features":["sse4"]}}
    ],"annotations":{"org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}"#;

    #[test]
    fn keeps_entries_verbatim_and_records_provenance() {
        let upstream = Manifest::from_bytes(INDEX.as_bytes().to_vec(), "application/vnd.oci.image.index.v1+json");
        let ManifestContent::Index { manifests } = upstream.content().unwrap() else {
            panic!("not an index")
        };
        let wanted: Vec<PlatformSpec> = vec!["linux/arm64".parse().unwrap()];
        let narrowed = narrowed_index(&upstream, &manifests[1..], &wanted).unwrap();
        assert_ne!(narrowed.digest, upstream.digest);
        assert_eq!(narrowed.digest, Digest::sha256_of(&narrowed.bytes));
        let ManifestContent::Index { manifests: kept } = narrowed.content().unwrap() else {
            panic!("narrowed is not an index")
        };
        assert_eq!(kept, manifests[1..].to_vec());
        let value: Value = serde_json::from_slice(&narrowed.bytes).unwrap();
        // Fields ocisync does not model survive, and upstream annotations are kept.
        assert_eq!(value["manifests"][0]["platform"]["features"][0], "sse4");
        assert_eq!(
            value["annotations"]["org.opencontainers.image.created"],
            "2026-01-01T00:00:00Z"
        );
        assert!(is_current_narrowing(&narrowed, &upstream.digest, &wanted));
        let other: Vec<PlatformSpec> = vec!["linux/amd64".parse().unwrap()];
        assert!(!is_current_narrowing(&narrowed, &upstream.digest, &other));
        assert!(!is_current_narrowing(&narrowed, &narrowed.digest, &wanted));
        assert!(!is_current_narrowing(&upstream, &upstream.digest, &wanted));
    }
}
