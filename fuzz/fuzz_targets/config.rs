//! The config file: YAML → `Config` (`Config::from_yaml`, with `${VAR}` expansion and
//! every check), then `ocisync config`'s rendering.
//!
//! Every variable is set, each to a value of its own. Properties: a config that loads
//! renders as YAML; the value of a variable the text never writes as `${NAME}` (so it
//! only arrives through `password_env` and the like) appears neither in the rendering
//! nor in any error; the work is bounded in time and memory (libFuzzer's `-timeout`
//! and `-rss_limit_mb`).
#![no_main]

use std::cell::RefCell;
use std::path::Path;

use libfuzzer_sys::fuzz_target;

fn value_of(name: &str) -> String {
    // FNV-1a: a value per name that the text will not spell by chance.
    let hash = name
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    format!("Zq{hash:016x}Secret")
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let asked = RefCell::new(Vec::<(String, String)>::new());
    let env = |name: &str| {
        let value = value_of(name);
        asked.borrow_mut().push((name.to_owned(), value.clone()));
        Some(value)
    };
    let file = Path::new("/nonexistent-ocisync-fuzz/ocisync.yaml");
    let outcome = ocisync::fuzzing::load_config(text, file, &env);
    let shown = match &outcome {
        Ok(loaded) => {
            let reparsed: Result<serde_yaml::Value, _> = serde_yaml::from_str(&loaded.rendered);
            assert!(reparsed.is_ok(), "the rendering is no YAML: {:?}\n{}", reparsed.err(), loaded.rendered);
            // A secret read from a file (an absolute path the fuzzer named) is checked too,
            // when it is long and says nothing else in the config.
            for (username, secret) in &loaded.secrets {
                let distinct = secret.len() >= 12
                    && !text.contains(secret.as_str())
                    && !username.as_deref().is_some_and(|username| username.contains(secret.as_str()))
                    && !asked.borrow().iter().any(|(name, value)| value == secret && text.contains(&format!("${{{name}")));
                if distinct {
                    assert!(!loaded.rendered.contains(secret.as_str()), "a secret in the rendering:\n{}", loaded.rendered);
                }
            }
            &loaded.rendered
        }
        Err(message) => message,
    };
    for (name, value) in asked.borrow().iter() {
        if !text.contains(&format!("${{{name}")) {
            assert!(!shown.contains(value.as_str()), "the value of {name} is shown:\n{shown}");
        }
    }
});
