//! `make demo`: two throwaway registries on loopback, a seeded upstream, one `ocisync once`.
//!
//! Usage: `ocisync-demo PATH/TO/ocisync`. Registries and their storage are removed on exit.

use std::process::{Command, ExitCode};

use ocisync_testkit::{corpus, standard_corpus_with_large_layer, tags, TestRegistry};

#[tokio::main]
async fn main() -> ExitCode {
    let Some(ocisync) = std::env::args().nth(1) else {
        eprintln!("usage: ocisync-demo PATH/TO/ocisync");
        return ExitCode::from(2);
    };
    let upstream = TestRegistry::start();
    let mirror = TestRegistry::start();
    println!("upstream registry: {}", upstream.url());
    println!("mirror registry:   {}", mirror.url());

    let images = standard_corpus_with_large_layer(8 * 1024 * 1024);
    corpus::seed(&upstream.url(), &images).await;
    println!(
        "seeded upstream with {} tags in {} repositories\n",
        images.len(),
        corpus::repos(&images).len()
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("ocisync.yaml");
    let text = format!(
        "version: 1\nregistries:\n  upstream:\n    urls: [\"{}\"]\n  mirror:\n    urls: [\"{}\"]\nsyncs:\n  - from: upstream\n    to: mirror\n",
        upstream.url(),
        mirror.url()
    );
    std::fs::write(&config, &text).expect("write config");
    println!("config:\n{text}");

    for pass in [
        "first pass (copies everything)",
        "second pass (nothing changed upstream)",
    ] {
        println!("$ ocisync once --config ocisync.yaml   # {pass}");
        let status = Command::new(&ocisync)
            .args(["once", "--config"])
            .arg(&config)
            .env("OCISYNC_LOG", "warn")
            .status()
            .expect("run ocisync");
        println!("exit code: {}\n", status.code().unwrap_or(-1));
        if !status.success() {
            return ExitCode::FAILURE;
        }
    }

    println!("mirror now holds:");
    for repo in corpus::repos(&images) {
        println!("  {repo}: {}", tags(&mirror.url(), &repo).await.join(", "));
    }
    println!("\nstopping both registries");
    ExitCode::SUCCESS
}
