//! Lists an upstream sends: bounded in names and bytes however it pages, one bad name
//! skipped (with one warning) rather than failing the list, and referrers bounded per
//! subject.

use std::sync::{Arc, Mutex};

use ocisync_oci::{Digest, RepoName, Store, StoreError, Tag};
use ocisync_registry::{RegistryOptions, RegistryStore};
use ocisync_testkit::{HostileAnswer, HostileServer};
use serde_json::json;

use crate::{printed, repo};

/// The number in `key=N` of a request path, if any.
fn query_number(path: &str, key: &str) -> Option<usize> {
    let start = path.find(&format!("{key}="))? + key.len() + 1;
    path[start..].split('&').next()?.parse().ok()
}

/// `pages` pages of a list; `page(k)` is the JSON of page `k`, each but the last with a
/// `Link` to the next.
fn paged_list(pages: usize, page: impl Fn(usize) -> Vec<u8> + Send + Sync + 'static) -> HostileServer {
    HostileServer::start(move |request| {
        let index = query_number(&request.path, "page").unwrap_or(0);
        let mut answer = HostileAnswer::new(200).header("Content-Type", "application/json");
        if index + 1 < pages {
            let path = request.path.split('?').next().unwrap_or_default();
            answer = answer.header("Link", &format!("<{path}?page={}>; rel=\"next\"", index + 1));
        }
        answer.body(ocisync_testkit::HostileBody::Bytes(page(index)))
    })
}

fn store(url: &str) -> RegistryStore {
    RegistryStore::new(RegistryOptions::new(url)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_that_keeps_growing_stops_at_the_name_cap() {
    // 11 pages of 100 000 new names each: 1.1 million names.
    let registry = paged_list(11, |index| {
        let names: Vec<String> = (0..100_000).map(|i| format!("r/{:07}", index * 100_000 + i)).collect();
        serde_json::to_vec(&json!({ "repositories": names })).unwrap()
    });
    let error = store(&registry.url()).catalog().await.unwrap_err();
    let text = printed(&error);
    assert!(matches!(error, StoreError::Invalid { .. }), "{text}");
    assert!(text.contains("catalog") && text.contains("1000000 names"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_of_padded_pages_stops_at_the_byte_cap() {
    // 18 pages of 15 MiB (each under the page cap), each adding one tag: 270 MiB in all.
    let registry = paged_list(18, |index| {
        let mut page = format!(r#"{{"tags":["t{index}"]"#).into_bytes();
        page.resize(15 * 1024 * 1024 - 1, b' ');
        page.push(b'}');
        page
    });
    let error = store(&registry.url()).tags(&repo()).await.unwrap_err();
    let text = printed(&error);
    assert!(matches!(error, StoreError::Invalid { .. }), "{text}");
    assert!(text.contains("tags of team/app") && text.contains("MiB"), "{text}");
}

/// Log lines written while `run` runs on this thread.
fn captured_log<T>(run: impl FnOnce() -> T) -> (T, Vec<String>) {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let result = tracing::subscriber::with_default(subscriber, run);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (result, text.lines().map(str::to_owned).collect())
}

#[test]
fn one_bad_name_is_skipped_with_one_warning_not_the_whole_list() {
    let mut bad_tags: Vec<String> = (0..10_000).map(|i| format!("-bad{i}")).collect();
    bad_tags.insert(5_000, "2".into());
    bad_tags.insert(0, "1".into());
    let registry = HostileServer::start(move |request| {
        let body = if request.path.contains("_catalog") {
            json!({ "repositories": ["good/a", "Not A Name", "good/b"] })
        } else {
            json!({ "tags": bad_tags })
        };
        HostileAnswer::new(200).text(&body.to_string())
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = store(&registry.url());

    let (catalog, log) = captured_log(|| runtime.block_on(store.catalog()));
    let expected: Vec<RepoName> = vec!["good/a".parse().unwrap(), "good/b".parse().unwrap()];
    assert_eq!(catalog.unwrap(), expected);
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(
        log[0].contains("WARN") && log[0].contains("catalog") && log[0].contains("Not A Name"),
        "{log:?}"
    );

    let (tags, log) = captured_log(|| runtime.block_on(store.tags(&repo())));
    let expected: Vec<Tag> = vec!["1".parse().unwrap(), "2".parse().unwrap()];
    assert_eq!(tags.unwrap(), expected);
    assert_eq!(log.len(), 1, "ten thousand bad tags, one line: {log:?}");
    assert!(
        log[0].contains("tags of team/app") && log[0].contains("10000"),
        "{log:?}"
    );
    assert!(log[0].len() < 1000, "{log:?}");
}

/// A referrers page (an image index) listing the artifacts numbered `numbers`.
fn referrers_page(numbers: std::ops::Range<usize>) -> Vec<u8> {
    let manifests: Vec<_> = numbers
        .map(|number| {
            json!({
                "mediaType": ocisync_oci::media_type::OCI_MANIFEST,
                "digest": Digest::sha256_of(number.to_string().as_bytes()).to_string(),
                "size": 100,
                "artifactType": "application/vnd.example.signature",
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": ocisync_oci::media_type::OCI_INDEX,
        "manifests": manifests,
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn referrers_are_deduplicated_across_pages_and_capped_per_subject() {
    // Two pages that overlap by 1000: 9000 distinct referrers, then 11 000.
    let within = paged_list(2, |index| referrers_page(if index == 0 { 0..6000 } else { 5000..9000 }));
    let subject = Digest::sha256_of(b"subject");
    let referrers = store(&within.url())
        .referrers(&repo(), &subject)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(referrers.len(), 9000);

    let beyond = paged_list(2, |index| {
        referrers_page(if index == 0 { 0..6000 } else { 5000..11_000 })
    });
    let error = store(&beyond.url()).referrers(&repo(), &subject).await.unwrap_err();
    let text = printed(&error);
    assert!(matches!(error, StoreError::Invalid { .. }), "{text}");
    assert!(text.contains("10000 referrers"), "{text}");
}
