//! A Docker `config.json` (`registries.*.docker_config`, or a `dockerconfigjson` Secret).
//!
//! Properties: an error never contains a credential-looking string of the file (long
//! base64 or alphanumeric values, anywhere under `auths`), nor the password decoded
//! from an `auth` value; what is found is deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Every string value (not key) in `value`, recursively.
fn strings<'a>(value: &'a Value, out: &mut Vec<&'a str>, keys: &mut Vec<&'a str>) {
    match value {
        Value::String(text) => out.push(text),
        Value::Array(items) => items.iter().for_each(|item| strings(item, out, keys)),
        Value::Object(map) => {
            for (key, item) in map {
                keys.push(key);
                strings(item, out, keys);
            }
        }
        _ => {}
    }
}

/// Long enough, and made of what credentials are made of, to be searched for in a message.
fn looks_secret(text: &str) -> bool {
    text.len() >= 8
        && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"+/=_-".contains(&byte))
        && text.bytes().any(|byte| byte.is_ascii_digit())
        && text.bytes().any(|byte| byte.is_ascii_alphabetic())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let url = url::Url::parse("https://r.example.com").unwrap();
    let outcome = ocisync::fuzzing::docker_config(text, &url);
    assert_eq!(ocisync::fuzzing::docker_config(text, &url), outcome, "deterministic");
    let Err(message) = outcome else { return };
    // The document as serde_json reads it, when it is JSON at all; else every quoted run.
    let mut values = Vec::new();
    let mut keys = Vec::new();
    let document: Option<Value> = serde_json::from_str(text).ok();
    match &document {
        Some(document) => strings(document, &mut values, &mut keys),
        None => values.extend(text.split(['"', '\'', ' ', ':', ',', '{', '}', '[', ']'])),
    }
    for value in values {
        if looks_secret(value) && !keys.contains(&value) && !"r.example.com".contains(value) {
            assert!(!message.contains(value), "{value:?} quoted in {message:?}");
        }
    }
});
