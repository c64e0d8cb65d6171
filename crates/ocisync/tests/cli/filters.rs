//! Content filters end to end: each tag filter alone and combined, prefix globs,
//! destination names and platform narrowing, against real registries.

use ocisync_testkit::{image, index, layer, manifest, push_image, small_image, CountingProxy, Format};

use crate::support::{config_with_syncs, Mirror};

/// Tags of several shapes (semver with and without `v`, a release candidate, `latest`,
/// a date, a name), each with the filter cases of
/// `each_tag_filter_alone_and_combined_selects_exactly_its_tags` that keep it.
const TAGS: &[(&str, &[&str])] = &[
    ("latest", &["semver"]),
    ("1.19.9", &["include", "exclude"]),
    ("v1.20.0", &["include", "exclude", "semver"]),
    ("1.20.1", &["include", "exclude", "semver"]),
    ("1.21.0-rc1", &[]),
    ("1.21.0", &["include", "exclude", "semver", "combined"]),
    ("v1.22.3", &["include", "exclude", "semver", "latest", "combined"]),
    ("2.0.0", &["include", "exclude", "latest"]),
    ("20240101", &["exclude", "semver"]),
    ("stable", &["exclude", "semver"]),
];

/// The tags the filter case `case` keeps, sorted.
fn kept_by(case: &str) -> Vec<String> {
    let kept: Vec<&str> = TAGS
        .iter()
        .filter(|(_, cases)| cases.contains(&case))
        .map(|(tag, _)| *tag)
        .collect();
    sorted(&kept)
}

async fn sorted_tags(url: &str, repo: &str) -> Vec<String> {
    let mut tags = ocisync_testkit::tags(url, repo).await;
    tags.sort();
    tags
}

fn sorted(tags: &[&str]) -> Vec<String> {
    let mut tags: Vec<String> = tags.iter().map(|tag| (*tag).to_owned()).collect();
    tags.sort();
    tags
}

#[tokio::test(flavor = "multi_thread")]
async fn each_tag_filter_alone_and_combined_selects_exactly_its_tags() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let tagged = small_image("nginx", 7);
    for (tag, _) in TAGS {
        push_image(&upstream.url(), "library/nginx", tag, &tagged).await;
    }
    for (repo, tag) in [
        ("vendor/a/tool", "1.0.0"),
        ("vendor/b", "1.0.0"),
        ("team/app", "v1.0.0"),
    ] {
        push_image(&upstream.url(), repo, tag, &small_image(repo, 7)).await;
    }
    // One sync per filter case, each landing under its own destination prefix.
    let cases: &[(&str, &str)] = &[
        ("include", r"include: ['v?\d+\.\d+\.\d+']"),
        ("exclude", r"exclude: ['.*-rc\d*', 'latest']"),
        ("semver", r#"semver: ">=1.20, <2""#),
        ("latest", "latest: 2"),
        (
            "combined",
            r#"{include: ['v?\d+\.\d+\.\d+(-rc\d+)?'], exclude: ['.*-rc\d*'], semver: ">=1.20, <2", latest: 2}"#,
        ),
    ];
    let mut syncs = String::new();
    for (name, filter) in cases {
        let filter = if filter.starts_with('{') {
            (*filter).to_owned()
        } else {
            format!("{{{filter}}}")
        };
        syncs.push_str(&format!(
            "  - name: {name}\n    from: upstream\n    to: mirror\n    content:\n      - prefix: \"library/*\"\n        strip_prefix: \"library/\"\n        destination: \"{name}\"\n        tags: {filter}\n"
        ));
    }
    // Prefix globs: `**` crosses '/', `*` does not.
    syncs.push_str(
        "  - name: globs\n    from: upstream\n    to: mirror\n    content:\n      - prefix: \"vendor/**\"\n        destination: \"deep\"\n      - prefix: \"team/*\"\n        destination: \"shallow\"\n",
    );
    world.write_config(&config_with_syncs(&syncs));
    let run = world.once();
    run.expect_code(0);

    for (name, _) in cases {
        assert_eq!(
            sorted_tags(&mirror.url(), &format!("{name}/nginx")).await,
            kept_by(name),
            "filter case {name}"
        );
    }
    let mut catalog = ocisync_testkit::catalog(&mirror.url()).await;
    catalog.retain(|repo| repo.starts_with("deep/") || repo.starts_with("shallow/"));
    catalog.sort();
    assert_eq!(catalog, ["deep/vendor/a/tool", "deep/vendor/b", "shallow/team/app"]);
    let (_, _, digest) = manifest(&mirror.url(), "latest/nginx", "2.0.0").await.unwrap();
    assert_eq!(digest, tagged.digest(), "filtered copies stay byte-exact");

    // The report says which filter dropped each tag.
    let report = world.report();
    let reason_of = |sync: &str, tag: &str| -> String {
        let index = report["syncs"]
            .as_array()
            .unwrap()
            .iter()
            .position(|s| s["name"] == sync)
            .unwrap();
        report.sync(index).outcome("library/nginx", tag)
    };
    assert_eq!(reason_of("include", "latest"), "skipped:not-included");
    assert_eq!(reason_of("exclude", "1.21.0-rc1"), "skipped:excluded");
    assert_eq!(reason_of("semver", "1.19.9"), "skipped:outside-semver-range");
    assert_eq!(reason_of("latest", "1.21.0"), "skipped:not-among-latest");
    assert_eq!(reason_of("latest", "2.0.0"), "copied");
    assert!(
        run.stdout.contains("filtered out"),
        "summary counts filtered tags:\n{}",
        run.stdout
    );
    let filtered = report["totals"]["tags_filtered"].as_u64().unwrap();
    let expected_filtered: usize = cases.iter().map(|(name, _)| TAGS.len() - kept_by(name).len()).sum();
    assert_eq!(filtered, expected_filtered as u64);
    assert_eq!(report.tags().len(), cases.len() * TAGS.len() + 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn platforms_narrow_an_index_and_a_second_pass_writes_nothing() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let mirror_proxy = CountingProxy::start(&mirror.url());
    let child = |arch: &str, seed: u64| image(Format::Oci, ("linux", arch), vec![layer(Format::Oci, seed, 1024)], arch);
    let multi = index(
        Format::Oci,
        vec![child("amd64", 1), child("arm64", 2), child("s390x", 3)],
    );
    push_image(&upstream.url(), "multi/app", "1.0", &multi).await;
    let docker_list = index(
        Format::Docker,
        vec![
            image(
                Format::Docker,
                ("linux", "amd64"),
                vec![layer(Format::Docker, 4, 1024)],
                "d-amd64",
            ),
            image(
                Format::Docker,
                ("linux", "arm64"),
                vec![layer(Format::Docker, 5, 1024)],
                "d-arm64",
            ),
        ],
    );
    push_image(&upstream.url(), "multi/docker", "1.0", &docker_list).await;
    push_image(
        &upstream.url(),
        "multi/windows-only",
        "1.0",
        &index(
            Format::Oci,
            vec![image(
                Format::Oci,
                ("windows", "amd64"),
                vec![layer(Format::Oci, 6, 256)],
                "win",
            )],
        ),
    )
    .await;

    world.write_config_via(
        &config_with_syncs(
            r#"  - from: upstream
    to: mirror
    content:
      - prefix: "multi/*"
        platforms: ["linux/arm64", "linux/amd64"]
"#,
        ),
        &[("{mirror}", &mirror_proxy.url())],
    );
    world.once().expect_code(0);

    // The OCI index lost s390x: a new index, listing amd64 and arm64 in upstream order.
    let (bytes, _, digest) = manifest(&mirror.url(), "multi/app", "1.0").await.unwrap();
    assert_ne!(digest, multi.digest(), "a narrowed index has its own digest");
    let narrowed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let architectures: Vec<&str> = narrowed["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(architectures, ["amd64", "arm64"]);
    assert_eq!(narrowed["annotations"]["dev.ocisync.source-digest"], multi.digest());
    for kept in &multi.children[..2] {
        assert!(manifest(&mirror.url(), "multi/app", kept.digest()).await.is_some());
    }
    assert!(
        manifest(&mirror.url(), "multi/app", multi.children[2].digest())
            .await
            .is_none(),
        "the left-out platform is not copied"
    );
    ocisync_testkit::assert_closure(&mirror.url(), "multi/app").await;

    // Every platform of the Docker list is wanted: copied whole, byte-exact.
    let (_, _, docker_digest) = manifest(&mirror.url(), "multi/docker", "1.0").await.unwrap();
    assert_eq!(docker_digest, docker_list.digest());
    assert!(ocisync_testkit::tags(&mirror.url(), "multi/windows-only")
        .await
        .is_empty());

    let entries = world.report().tags();
    let entry = |repo: &str| entries.iter().find(|(r, _)| r == repo).unwrap().1.clone();
    assert_eq!(entry("multi/app")["destination_digest"], digest.as_str());
    assert_eq!(entry("multi/app")["digest"], multi.digest());
    assert!(entry("multi/docker").get("destination_digest").is_none());
    assert_eq!(entry("multi/windows-only")["reason"], "no-matching-platform");

    // Second pass: the narrowed index is recognised as current; nothing is written.
    mirror_proxy.reset();
    world.once().expect_code(0);
    assert!(mirror_proxy.writes().is_empty(), "writes: {:?}", mirror_proxy.writes());
    let report = world.report();
    assert_eq!(report["totals"]["tags_up_to_date"], 2);
}

/// Tags declared immutable are settled by the destination's tag list: once there they
/// cost no request of their own on either side and are left alone even if upstream
/// moves them, while a mutable tag is still checked and follows upstream, and an
/// immutable tag the destination lacks is copied as usual.
#[tokio::test(flavor = "multi_thread")]
async fn immutable_tags_at_the_destination_cost_no_request_and_stay_put() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let (first, second) = (small_image("first", 7), small_image("second", 7));
    for tag in ["v1.0.0", "v1.1.0", "latest"] {
        push_image(&upstream.url(), "app", tag, &first).await;
    }
    let upstream_proxy = CountingProxy::start(&upstream.url());
    let mirror_proxy = CountingProxy::start(&mirror.url());
    let syncs = "  - name: releases\n    from: upstream\n    to: mirror\n    content:\n      - prefix: \"**\"\n        tags:\n          immutable: ['v\\d+\\.\\d+\\.\\d+']\n";
    world.write_config_via(
        &config_with_syncs(syncs),
        &[("{upstream}", &upstream_proxy.url()), ("{mirror}", &mirror_proxy.url())],
    );
    world.once().expect_code(0);
    assert_eq!(
        sorted_tags(&mirror.url(), "app").await,
        sorted(&["latest", "v1.0.0", "v1.1.0"])
    );

    // Upstream moves an immutable tag and the mutable one, and publishes a new release.
    push_image(&upstream.url(), "app", "v1.0.0", &second).await;
    push_image(&upstream.url(), "app", "latest", &second).await;
    push_image(&upstream.url(), "app", "v1.2.0", &second).await;
    upstream_proxy.reset();
    mirror_proxy.reset();
    world.once().expect_code(0);

    let digest_at_mirror = |tag: &'static str| {
        let url = mirror.url();
        async move { manifest(&url, "app", tag).await.map(|(_, _, digest)| digest) }
    };
    assert_eq!(
        digest_at_mirror("v1.0.0").await,
        Some(first.digest().to_owned()),
        "left alone"
    );
    assert_eq!(digest_at_mirror("v1.1.0").await, Some(first.digest().to_owned()));
    assert_eq!(
        digest_at_mirror("latest").await,
        Some(second.digest().to_owned()),
        "mutable follows upstream"
    );
    assert_eq!(
        digest_at_mirror("v1.2.0").await,
        Some(second.digest().to_owned()),
        "missing: copied"
    );
    let names = |proxy: &CountingProxy, tag: &str| {
        proxy
            .requests()
            .into_iter()
            .filter(|request| request.path.ends_with(&format!("/manifests/{tag}")))
            .count()
    };
    for tag in ["v1.0.0", "v1.1.0"] {
        assert_eq!(names(&upstream_proxy, tag), 0, "upstream asked about {tag}");
        assert_eq!(names(&mirror_proxy, tag), 0, "mirror asked about {tag}");
    }
    assert!(names(&upstream_proxy, "latest") > 0 && names(&mirror_proxy, "latest") > 0);
    let mirror_tag_lists = mirror_proxy
        .requests()
        .into_iter()
        .filter(|request| request.path.starts_with("/v2/app/tags/list"))
        .count();
    assert_eq!(
        mirror_tag_lists, 1,
        "one destination tag list settles the immutable tags"
    );
    let entries = world.report().tags();
    let entry = |tag: &str| &entries.iter().find(|(_, entry)| entry["tag"] == tag).unwrap().1;
    assert_eq!(entry("v1.0.0")["reason"], "up-to-date");
    assert!(entry("v1.0.0")["detail"].as_str().unwrap().contains("immutable"));
    assert_eq!(entry("latest")["outcome"], "copied");
    assert_eq!(entry("v1.2.0")["outcome"], "copied");
}
