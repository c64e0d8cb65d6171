//! Registry keys that shape blob transfers: `bandwidth`.

use std::path::Path;

use super::*;

const TEXT: &str = "version: 1
registries:
  upstream:
    urls: [\"http://127.0.0.1:5001\"]
    bandwidth: 50MiB/s
  mirror:
    urls: [\"http://127.0.0.1:5002\"]
syncs:
  - from: upstream
    to: mirror
";

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_yaml(text, Path::new("ocisync.yaml"), &|_| None)
}

fn errors(text: &str) -> String {
    load(text).expect_err("config should be rejected").to_string()
}

#[test]
fn bandwidth_is_a_rate_per_registry_and_absent_means_no_cap() {
    let config = load(TEXT).unwrap();
    assert_eq!(config.registries["upstream"].bandwidth, Some(50 << 20));
    assert_eq!(config.registries["mirror"].bandwidth, None);
    let plain_number = load(&TEXT.replace("50MiB/s", "1048576")).unwrap();
    assert_eq!(plain_number.registries["upstream"].bandwidth, Some(1 << 20));
    let zero = load(&TEXT.replace("50MiB/s", "0")).unwrap();
    assert_eq!(zero.registries["upstream"].bandwidth, None, "0: no cap");
}

#[test]
fn a_bad_bandwidth_names_its_key_and_a_layout_has_none() {
    let output = errors(&TEXT.replace("50MiB/s", "fast"));
    assert!(
        output.contains("ocisync.yaml:5:5: registries.upstream.bandwidth: invalid rate \"fast\": bytes per second"),
        "{output}"
    );
    let on_layout = TEXT.replace("urls: [\"http://127.0.0.1:5001\"]", "layout: /srv/export");
    let output = errors(&on_layout);
    assert!(
        output.contains("registries.upstream.bandwidth: has no meaning for a layout directory"),
        "{output}"
    );
}
