//! Manifest and index bytes as an upstream sends them: media type detection
//! (`Content-Type`, else the body) and `Manifest::content`.
//!
//! Input: a `Content-Type` line, then the body. Properties: the digest is the body's;
//! parsing is deterministic; every digest a parsed manifest references re-displays to
//! an equal parse; a `Content-Type` naming a manifest type is the one detected.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocisync_oci::media_type::{self, classify};
use ocisync_oci::{detect_media_type, Descriptor, Digest, Manifest, ManifestContent};

const MEDIA_TYPES: [&str; 6] = [
    media_type::OCI_MANIFEST,
    media_type::OCI_INDEX,
    media_type::DOCKER_MANIFEST,
    media_type::DOCKER_MANIFEST_LIST,
    media_type::DOCKER_SCHEMA1,
    media_type::DOCKER_SCHEMA1_SIGNED,
];

fn check_descriptor(descriptor: &Descriptor) {
    let shown = descriptor.digest.to_string();
    assert_eq!(shown.parse::<Digest>().as_ref(), Ok(&descriptor.digest), "{shown}");
}

fn check(manifest: &Manifest) {
    let Ok(content) = manifest.content() else { return };
    assert_eq!(manifest.content().as_ref(), Ok(&content), "parsing is deterministic");
    match &content {
        ManifestContent::Index { manifests } => manifests.iter().for_each(check_descriptor),
        ManifestContent::Image { config, layers, subject } => {
            check_descriptor(config);
            layers.iter().for_each(check_descriptor);
            subject.iter().for_each(check_descriptor);
        }
        ManifestContent::Schema1 => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|byte| *byte == b'\n') {
        Some(end) => (std::str::from_utf8(&data[..end]).ok(), &data[end + 1..]),
        None => (None, data),
    };
    let detected = detect_media_type(body, content_type);
    if let Some(content_type) = content_type {
        let bare = content_type.split(';').next().unwrap_or("").trim();
        if classify(bare).is_some() {
            assert_eq!(detected.as_deref(), Some(bare), "the Content-Type wins");
        }
    }
    if let Some(detected) = detected {
        let manifest = Manifest::from_bytes(body.to_vec(), detected);
        assert_eq!(manifest.digest, Digest::sha256_of(body));
        check(&manifest);
    }
    for media_type in MEDIA_TYPES {
        check(&Manifest::from_bytes(body.to_vec(), media_type));
    }
});
