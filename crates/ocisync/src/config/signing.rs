//! A content rule's signature policy: `signed_only` and `verify.cosign_public_keys`.
//!
//! Key files are read and parsed here, when the config loads, so a missing or broken
//! key is a config error naming its key path, never a surprise halfway through a pass.
//! `signed_only` without `verify` loads with a warning: any signature satisfies it.

use std::path::Path;

use ocisync_engine::{CosignPublicKey, SignaturePolicy};

use super::raw::RawVerify;
use super::Checker;

impl Checker {
    /// `None` (with problems recorded) when a key file cannot be read or parsed.
    pub(super) fn check_signatures(
        &mut self,
        key: &str,
        signed_only: bool,
        verify: Option<&RawVerify>,
        base_dir: &Path,
    ) -> Option<SignaturePolicy> {
        if signed_only && verify.is_none() {
            self.warning(
                format!("{key}.signed_only"),
                "without verify, any signature counts: a cosign .sig tag or a signature referrer \
                 is enough, and anyone who can push to the upstream can add one; add \
                 verify.cosign_public_keys to copy only images signed with your keys (even then, \
                 .att and .sbom referrers are copied unchecked)"
                    .to_owned(),
            );
        }
        let mut keys = Some(Vec::new());
        if let Some(verify) = verify {
            if verify.cosign_public_keys.is_empty() {
                self.problem(
                    format!("{key}.verify.cosign_public_keys"),
                    "lists no key; remove `verify` or name at least one key file".to_owned(),
                );
                keys = None;
            }
            for (index, file) in verify.cosign_public_keys.iter().enumerate() {
                let path = base_dir.join(file);
                let parsed = ocisync_registry::read_small_text(&path, ocisync_registry::SMALL_FILE_LIMIT)
                    .map_err(|error| format!("cannot read {}: {error}", path.display()))
                    .and_then(|pem| {
                        CosignPublicKey::from_pem(path.display().to_string(), &pem)
                            .map_err(|error| format!("{}: {error}", path.display()))
                    });
                match parsed {
                    Ok(public_key) => {
                        if let Some(all) = keys.as_mut() {
                            all.push(public_key);
                        }
                    }
                    Err(message) => {
                        self.problem(format!("{key}.verify.cosign_public_keys[{index}]"), message);
                        keys = None;
                    }
                }
            }
        }
        Some(SignaturePolicy {
            signed_only: signed_only || verify.is_some(),
            cosign_keys: keys?,
        })
    }
}
