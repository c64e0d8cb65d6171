//! Registry keys that shape blob transfers: `bandwidth`, `chunked_upload`.

use std::path::Path;

use super::*;
use ocisync_registry::ChunkedUpload;

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

#[test]
fn chunked_uploads_have_defaults_can_be_tuned_or_turned_off() {
    let config = load(TEXT).unwrap();
    assert_eq!(
        config.registries["mirror"].client.chunked_upload,
        Some(ChunkedUpload::DEFAULT),
        "on by default"
    );
    let tuned = TEXT.replace(
        "    urls: [\"http://127.0.0.1:5002\"]",
        "    urls: [\"http://127.0.0.1:5002\"]\n    chunked_upload: {above: 1GiB, chunk_size: 64MiB, resumable_above: 2GiB}",
    );
    assert_eq!(
        load(&tuned).unwrap().registries["mirror"].client.chunked_upload,
        Some(ChunkedUpload {
            above: 1 << 30,
            chunk_size: 64 << 20,
            resumable_above: 2 << 30,
        })
    );
    let partly = TEXT.replace(
        "    urls: [\"http://127.0.0.1:5002\"]",
        "    urls: [\"http://127.0.0.1:5002\"]\n    chunked_upload: {above: 1GiB}",
    );
    assert_eq!(
        load(&partly).unwrap().registries["mirror"].client.chunked_upload,
        Some(ChunkedUpload {
            above: 1 << 30,
            ..ChunkedUpload::DEFAULT
        }),
        "what is not set keeps its default"
    );
    let off = TEXT.replace(
        "    urls: [\"http://127.0.0.1:5002\"]",
        "    urls: [\"http://127.0.0.1:5002\"]\n    chunked_upload: {enabled: false}",
    );
    assert_eq!(load(&off).unwrap().registries["mirror"].client.chunked_upload, None);
}

#[test]
fn bad_chunked_upload_settings_name_their_key() {
    for (setting, expected) in [
        (
            "{chunk_size: 64KiB}",
            "registries.mirror.chunked_upload.chunk_size: must be at least 1MiB",
        ),
        ("{above: huge}", "registries.mirror.chunked_upload.above: "),
        (
            "{above: 0}",
            "registries.mirror.chunked_upload.above: must be more than 0 bytes",
        ),
        ("{chunks: 3}", "unknown field `chunks`"),
    ] {
        let text = TEXT.replace(
            "    urls: [\"http://127.0.0.1:5002\"]",
            &format!("    urls: [\"http://127.0.0.1:5002\"]\n    chunked_upload: {setting}"),
        );
        let output = errors(&text);
        assert!(output.contains(expected), "{setting}: {output}");
    }
    let on_layout = TEXT.replace(
        "    urls: [\"http://127.0.0.1:5002\"]",
        "    layout: /srv/export\n    chunked_upload: {above: 1GiB}",
    );
    assert!(errors(&on_layout).contains("registries.mirror.chunked_upload: has no meaning for a layout directory"));
}
