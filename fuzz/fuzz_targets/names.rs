//! Repository names, tags, digests and the referrer tag names (`sha256-<hex>.sig`, the
//! tag schema) that come from catalogs, tag lists and manifests.
//!
//! Property: whatever parses re-displays to an equal parse; a referrer tag names its
//! subject so that building the tag again gives the same tag.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocisync_oci::{cosign_tag, referrers_tag, Digest, ReferrerTag, RepoName, Tag};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(name) = text.parse::<RepoName>() {
        assert_eq!(name.to_string().parse::<RepoName>().as_ref(), Ok(&name));
        assert_eq!(name.as_str(), text);
    }
    if let Ok(digest) = text.parse::<Digest>() {
        assert_eq!(digest.to_string().parse::<Digest>().as_ref(), Ok(&digest));
    }
    if let Ok(tag) = text.parse::<Tag>() {
        assert_eq!(tag.to_string().parse::<Tag>().as_ref(), Ok(&tag));
        assert_eq!(tag.as_str(), text);
        match ReferrerTag::parse(&tag) {
            Some(ReferrerTag::Cosign { subject, kind }) => {
                assert_eq!(cosign_tag(&subject, kind).as_ref(), Some(&tag), "{text}");
            }
            Some(ReferrerTag::Schema { subject }) => assert_eq!(referrers_tag(&subject), tag, "{text}"),
            None => {}
        }
    }
});
