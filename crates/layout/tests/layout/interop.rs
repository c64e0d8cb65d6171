//! Interoperability with skopeo's `oci:` transport, through real registries:
//! registry → ocisync → layout → skopeo → registry, and
//! registry → skopeo → layout → ocisync → registry, digests preserved both ways.
//!
//! These tests need `skopeo` (Debian's 1.9 in CI) and fail if it is absent.

use std::path::Path;
use std::process::Command;

use ocisync_engine::{run_sync, CopyOptions, Outcome, SyncLabel};
use ocisync_layout::LayoutStore;
use ocisync_oci::media_type::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use ocisync_oci::{Reference, Store};
use ocisync_registry::{RegistryOptions, RegistryStore};
use ocisync_testkit::{assert_closure, image, index, layer, manifest, push_image, Format, Image, TestRegistry};

use crate::support::*;

const REPO: &str = "team/app";
const TAGS: [&str; 2] = ["multi", "single"];

fn registry_store(registry: &TestRegistry) -> RegistryStore {
    RegistryStore::new(RegistryOptions::new(registry.url())).unwrap()
}

/// A single-platform image and a two-platform index, in `format`.
fn images(format: Format) -> [(&'static str, Image); 2] {
    let single = image(
        format,
        ("linux", "amd64"),
        vec![layer(format, 1, 300_000), layer(format, 2, 1_000)],
        "single",
    );
    let multi = index(
        format,
        vec![
            image(format, ("linux", "amd64"), vec![layer(format, 3, 2_000)], "amd64"),
            image(format, ("linux", "arm64"), vec![layer(format, 4, 2_000)], "arm64"),
        ],
    );
    [("single", single), ("multi", multi)]
}

async fn seeded_registry(format: Format) -> TestRegistry {
    let registry = TestRegistry::start();
    for (tag_name, image) in images(format) {
        push_image(&registry.url(), REPO, tag_name, &image).await;
    }
    registry
}

/// One ocisync pass from `source` to `destination`; every tag must be copied.
async fn ocisync_copy<S: Store, D: Store>(source: &S, destination: &D) {
    let label = SyncLabel {
        name: "interop".into(),
        from: source.label().into(),
        to: destination.label().into(),
    };
    let report = run_sync(source, destination, &label, &[], &CopyOptions::default()).await;
    assert_eq!(report.error, None);
    let outcomes: Vec<(String, String, Outcome)> = report
        .repositories
        .iter()
        .flat_map(|r| {
            r.tags
                .iter()
                .map(|t| (r.source.to_string(), t.reference_suffix(), t.outcome.clone()))
        })
        .collect();
    assert_eq!(outcomes.len(), TAGS.len(), "{report:?}");
    for (repo_name, tag_name, outcome) in outcomes {
        assert_eq!(outcome, Outcome::Copied, "{repo_name}{tag_name}");
    }
}

/// Runs `skopeo copy --all --preserve-digests <args>` and fails the test on a non-zero exit.
fn skopeo_copy(source: &str, destination: &str, extra: &[&str]) {
    let output = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--all", "--preserve-digests"])
        .args(extra)
        .args([source, destination])
        .output()
        .expect("skopeo must be installed (CI installs Debian's skopeo)");
    assert!(
        output.status.success(),
        "skopeo copy {source} {destination} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn oci_ref(dir: &Path, tag_name: &str) -> String {
    format!("oci:{}/{REPO}:{tag_name}", dir.display())
}

/// Every tag has the same digest in both registries and nothing dangles in `copy`.
async fn assert_same_digests(original: &TestRegistry, copy: &TestRegistry) {
    for tag_name in TAGS {
        let (_, _, expected) = manifest(&original.url(), REPO, tag_name).await.unwrap();
        let Some((_, _, actual)) = manifest(&copy.url(), REPO, tag_name).await else {
            panic!("{REPO}:{tag_name} missing from the copy");
        };
        assert_eq!(actual, expected, "{REPO}:{tag_name}");
    }
    assert_closure(&copy.url(), REPO).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn layout_written_by_ocisync_is_read_by_skopeo() {
    let source = seeded_registry(Format::Oci).await;
    let dir = tempfile::tempdir().unwrap();
    ocisync_copy(&registry_store(&source), &LayoutStore::new(dir.path())).await;

    let destination = TestRegistry::start();
    for tag_name in TAGS {
        let target = format!("docker://{}/{REPO}:{tag_name}", destination.host());
        skopeo_copy(&oci_ref(dir.path(), tag_name), &target, &["--dest-tls-verify=false"]);
    }
    assert_same_digests(&source, &destination).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn layout_written_by_skopeo_is_read_by_ocisync() {
    let source = seeded_registry(Format::Oci).await;
    let dir = tempfile::tempdir().unwrap();
    // skopeo creates the layout directory, not its parents.
    std::fs::create_dir_all(dir.path().join("team")).unwrap();
    for tag_name in TAGS {
        let origin = format!("docker://{}/{REPO}:{tag_name}", source.host());
        skopeo_copy(&origin, &oci_ref(dir.path(), tag_name), &["--src-tls-verify=false"]);
    }

    let layout = LayoutStore::new(dir.path());
    assert_eq!(layout.catalog().await.unwrap(), vec![repo(REPO)]);
    assert_eq!(
        layout.tags(&repo(REPO)).await.unwrap(),
        vec![tag("multi"), tag("single")]
    );
    let multi = layout.manifest(&repo(REPO), &reference("multi")).await.unwrap();
    assert_eq!(multi.media_type, OCI_INDEX);
    let single = layout.manifest(&repo(REPO), &reference("single")).await.unwrap();
    assert_eq!(single.media_type, OCI_MANIFEST);

    let destination = TestRegistry::start();
    ocisync_copy(&layout, &registry_store(&destination)).await;
    assert_same_digests(&source, &destination).await;
}

/// skopeo's layouts hold OCI types only; ocisync keeps Docker manifests byte-exact
/// (a converted manifest would change its digest), so a Docker image round-trips.
#[tokio::test(flavor = "multi_thread")]
async fn docker_media_types_survive_a_round_trip_through_a_layout() {
    let source = seeded_registry(Format::Docker).await;
    let dir = tempfile::tempdir().unwrap();
    let layout = LayoutStore::new(dir.path());
    ocisync_copy(&registry_store(&source), &layout).await;

    let index = index_json(dir.path(), REPO);
    let mut types: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["mediaType"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(types, vec![DOCKER_MANIFEST_LIST, DOCKER_MANIFEST]);
    let multi = layout.manifest(&repo(REPO), &reference("multi")).await.unwrap();
    let ocisync_oci::ManifestContent::Index { manifests } = multi.content().unwrap() else {
        panic!("multi is not an index");
    };
    let child = layout
        .manifest(&repo(REPO), &Reference::Digest(manifests[0].digest.clone()))
        .await
        .unwrap();
    assert_eq!(child.media_type, DOCKER_MANIFEST, "a child's type comes from its body");

    let destination = TestRegistry::start();
    ocisync_copy(&layout, &registry_store(&destination)).await;
    assert_same_digests(&source, &destination).await;
}
