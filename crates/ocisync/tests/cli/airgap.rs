//! The air-gapped pipeline: registry → layout directory → (carried across) → registry.

use ocisync_testkit::{assert_mirror_complete, corpus, manifest, small_corpus, TestRegistry};

use crate::support::{ocisync, read_json, same_names};

fn write(path: &std::path::Path, text: String) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn export_to_a_directory_then_import_keeps_every_digest() {
    let connected = TestRegistry::start();
    let isolated = TestRegistry::start();
    let images = small_corpus();
    corpus::seed(&connected.url(), &images).await;
    let dir = tempfile::tempdir().unwrap();
    let transfer = dir.path().join("transfer");

    let export = dir.path().join("export.yaml");
    write(
        &export,
        format!(
            "version: 1\nregistries:\n  upstream:\n    urls: [\"{}\"]\n  disk:\n    layout: transfer\nsyncs:\n  - from: upstream\n    to: disk\n",
            connected.url()
        ),
    );
    let report = dir.path().join("export.json");
    let run_export = || {
        ocisync(&[
            "once",
            "--config",
            export.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ])
    };
    run_export().expect_code(0);
    assert!(transfer.join("library/alpine/oci-layout").is_file());
    assert!(transfer.join("library/alpine/index.json").is_file());
    // Exporting again transfers nothing: the directory is recognised as current.
    run_export().expect_code(0);
    let second = read_json(&report);
    assert_eq!(second["totals"]["tags_copied"], 0);
    assert_eq!(second["totals"]["bytes"], 0);

    // "Carry" the directory: a copy somewhere else, imported from there.
    let carried = dir.path().join("carried");
    copy_tree(&transfer, &carried);
    let import = dir.path().join("import.yaml");
    write(
        &import,
        format!(
            "version: 1\nregistries:\n  disk:\n    layout: carried\n  isolated:\n    urls: [\"{}\"]\nsyncs:\n  - from: disk\n    to: isolated\n",
            isolated.url()
        ),
    );
    ocisync(&["once", "--config", import.to_str().unwrap()]).expect_code(0);
    let repos = corpus::repos(&images);
    assert_mirror_complete(&connected.url(), &isolated.url(), &same_names(&repos)).await;
    for image in &images {
        let (_, _, digest) = manifest(&isolated.url(), &image.repo, &image.tag).await.unwrap();
        assert_eq!(digest, image.image.digest(), "{}:{}", image.repo, image.tag);
    }
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
