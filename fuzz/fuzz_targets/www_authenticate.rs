//! `WWW-Authenticate` challenges and the token realm they name.
//!
//! Properties: the parse is deterministic; a realm that credentials would be sent to
//! from an HTTPS registry is `https`, whatever its spelling.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocisync_registry::fuzzing::{challenge_realm, realm_scheme_with_credentials};

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    let parsed = challenge_realm(header);
    assert_eq!(challenge_realm(header), parsed);
    if let Some(Some(realm)) = parsed {
        if let Some(scheme) = realm_scheme_with_credentials(&realm) {
            assert_eq!(scheme, "https", "credentials to {realm:?}");
        }
    }
    if let Some(scheme) = realm_scheme_with_credentials(header) {
        assert_eq!(scheme, "https", "credentials to {header:?}");
    }
});
