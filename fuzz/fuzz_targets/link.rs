//! `Link: <…>; rel="next"` headers of catalog and tag list pages.
//!
//! Input: header values separated by `\n`. Properties: a next page is an absolute URL
//! that is a `rel="next"` target of some value (its target resolved against the
//! request's URL), and the parse is bounded in time (libFuzzer's `-timeout`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocisync_registry::fuzzing::next_link;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let base = Url::parse("https://registry.example:5000/v2/_catalog?n=100").unwrap();
    let values: Vec<&[u8]> = data.split(|byte| *byte == b'\n').collect();
    let Some(next) = next_link(&values, &base) else { return };
    assert!(!next.cannot_be_a_base() || next.scheme() != "https", "{next}");
    assert_eq!(next_link(&values, &base).as_ref(), Some(&next), "deterministic");
    // The target came from between '<' and '>' of some value.
    let found = values.iter().any(|value| {
        String::from_utf8_lossy(value).split(['<', '>']).any(|part| base.join(part).ok().as_ref() == Some(&next))
    });
    assert!(found, "{next} is no target of {values:?}");
});
