//! Small corpora pushed to a test registry.

use ocisync_testkit::{image, layer, push_image, Blob, Format};

/// `count` repositories `{prefix}/rNN`, each with tags `1.0` and `2.0`: single-arch OCI
/// images whose own layer is `layer_size` bytes (seeded from `seed_base`), on top of
/// `base` when given (a layer every image shares). Returns the repository names.
pub async fn two_tag_repos(
    url: &str,
    prefix: &str,
    count: u64,
    base: Option<&Blob>,
    seed_base: u64,
    layer_size: usize,
) -> Vec<String> {
    let mut repos = Vec::new();
    for index in 0..count {
        let repo = format!("{prefix}/r{index:02}");
        for (tag, seed) in [("1.0", 2 * index), ("2.0", 2 * index + 1)] {
            let layers = base
                .cloned()
                .into_iter()
                .chain([layer(Format::Oci, seed_base + seed, layer_size)])
                .collect();
            let image = image(Format::Oci, ("linux", "amd64"), layers, &format!("{repo}:{tag}"));
            push_image(url, &repo, tag, &image).await;
        }
        repos.push(repo);
    }
    repos
}
