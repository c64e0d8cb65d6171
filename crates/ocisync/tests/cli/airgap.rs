//! The air-gapped pipeline: registry → layout directory → (carried across) → registry.

use ocisync_testkit::{assert_mirror_complete, corpus, manifest, small_corpus};

use crate::support::{same_names, Mirror};

#[tokio::test(flavor = "multi_thread")]
async fn export_to_a_directory_then_import_keeps_every_digest() {
    // The upstream is the connected registry, the mirror the isolated one.
    let world = Mirror::start();
    let (connected, isolated) = (&world.upstream, &world.mirror);
    let images = small_corpus();
    corpus::seed(&connected.url(), &images).await;
    let transfer = world.dir().join("transfer");

    world.write_config(
        "version: 1\nregistries:\n  upstream:\n    urls: [\"{upstream}\"]\n  disk:\n    layout: transfer\nsyncs:\n  - from: upstream\n    to: disk\n",
    );
    world.once().expect_code(0);
    assert!(transfer.join("library/alpine/oci-layout").is_file());
    assert!(transfer.join("library/alpine/index.json").is_file());
    // Exporting again transfers nothing: the directory is recognised as current.
    world.once().expect_code(0);
    let second = world.report();
    assert_eq!(second["totals"]["tags_copied"], 0);
    assert_eq!(second["totals"]["bytes"], 0);

    // "Carry" the directory: a copy somewhere else, imported from there.
    let carried = world.dir().join("carried");
    copy_tree(&transfer, &carried);
    world.write_config(
        "version: 1\nregistries:\n  disk:\n    layout: carried\n  isolated:\n    urls: [\"{mirror}\"]\nsyncs:\n  - from: disk\n    to: isolated\n",
    );
    world.run(&["once"]).expect_code(0);
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
