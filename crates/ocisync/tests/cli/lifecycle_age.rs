//! `tags.min_age` and `backup` end to end against real registries: images built in the
//! test with chosen `created` times relative to now, a tag retagged upstream between
//! passes, and config errors at their key paths.

use std::time::Duration;

use ocisync_testkit::{
    assert_closure, created_ago, image, image_created, index, layer, manifest, push_image, Format, Image,
};

use crate::support::{config_with_syncs, Mirror, Workdir, NOWHERE};

const HOUR: Duration = Duration::from_secs(3600);

fn aged(platform: (&str, &str), seed: u64, age: Duration) -> Image {
    let layers = vec![layer(Format::Oci, seed, 512)];
    image_created(
        Format::Oci,
        platform,
        layers,
        &format!("image {seed}"),
        &created_ago(age),
    )
}

fn amd64(seed: u64, age: Duration) -> Image {
    aged(("linux", "amd64"), seed, age)
}

async fn digest_at(url: &str, repo: &str, reference: &str) -> Option<String> {
    manifest(url, repo, reference).await.map(|(_, _, digest)| digest)
}

async fn sorted_tags(url: &str, repo: &str) -> Vec<String> {
    let mut tags = ocisync_testkit::tags(url, repo).await;
    tags.sort();
    tags
}

/// Seconds from now to an RFC 3339 time in a report.
fn seconds_until(time: &serde_json::Value) -> i64 {
    let time = chrono::DateTime::parse_from_rfc3339(time.as_str().expect("a timestamp")).unwrap();
    (time.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds()
}

#[tokio::test(flavor = "multi_thread")]
async fn min_age_copies_old_tags_and_leaves_young_ones_until_they_are_eligible() {
    let world = Mirror::start();
    let up = world.upstream.url();
    let down = world.mirror.url();
    let old = amd64(1, 100 * HOUR);
    let young = amd64(2, HOUR);
    let undated = image(
        Format::Oci,
        ("linux", "amd64"),
        vec![layer(Format::Oci, 3, 512)],
        "undated",
    );
    push_image(&up, "team/app", "old", &old).await;
    push_image(&up, "team/app", "young", &young).await;
    push_image(&up, "team/app", "undated", &undated).await;
    // Mirrored earlier, young as it is: left alone.
    push_image(&up, "team/app", "mirrored", &young).await;
    push_image(&down, "team/app", "mirrored", &young).await;
    // Mirrored earlier at `old`, moved upstream since to a young image: it waits too
    // (the hijack window), and its backup is not made either.
    push_image(&down, "team/app", "latest", &old).await;
    let moved_to = amd64(4, 2 * HOUR);
    push_image(&up, "team/app", "latest", &moved_to).await;
    // One index, amd64 old and arm64 young, under two rules: whole, and amd64 only.
    let multi = index(
        Format::Oci,
        vec![amd64(5, 100 * HOUR), aged(("linux", "arm64"), 6, 3 * HOUR)],
    );
    push_image(&up, "team/multi", "1.0", &multi).await;
    push_image(&up, "team/amd", "1.0", &multi).await;

    let syncs = "  - from: upstream\n    to: mirror\n    content:\n      - repositories: [team/app, team/multi]\n        backup: \"{tag}-{date}\"\n        tags:\n          min_age: 72h\n      - images: [\"team/amd:1.0\"]\n        platforms: [linux/amd64]\n        tags:\n          min_age: 72h\n";
    world.write_config(&config_with_syncs(syncs));

    // `check` shows the wait and when it ends, and writes nothing.
    let run = world.check();
    run.expect_code(0);
    assert!(run.stdout.contains("copy        old ("), "{}", run.stdout);
    let young_line = run.stdout.lines().find(|line| line.contains(" young:")).unwrap();
    assert!(
        young_line.contains("skip        young: too-young (created ") && young_line.contains("eligible at "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("skip        undated: no-created-time"),
        "{}",
        run.stdout
    );
    assert_eq!(digest_at(&down, "team/app", "old").await, None, "check wrote");

    let run = world.once();
    run.expect_code(0);
    let report = world.report();
    assert_eq!(report.outcome("team/app", "old"), "copied");
    assert_eq!(digest_at(&down, "team/app", "old").await.as_deref(), Some(old.digest()));

    let waiting = report.tag("team/app", "young");
    assert_eq!(
        (&waiting["outcome"], &waiting["reason"]),
        (&"skipped".into(), &"too-young".into())
    );
    // Created an hour ago, eligible 72 hours after that.
    let eligible_in = seconds_until(&waiting["eligible_at"]);
    assert!(
        (71 * 3600 - 60..=71 * 3600 + 5).contains(&eligible_in),
        "{eligible_in}s"
    );
    assert_eq!(digest_at(&down, "team/app", "young").await, None);
    let summary_line = format!(
        "  skipped team/app:young: too-young (eligible at {})",
        waiting["eligible_at"].as_str().unwrap()
    );
    assert!(run.stdout.contains(&summary_line), "{}", run.stdout);

    assert_eq!(report.tag("team/app", "mirrored")["reason"], "up-to-date");
    let moved = report.tag("team/app", "latest");
    assert_eq!(moved["reason"], "too-young");
    assert!(moved.get("backup").is_none(), "{moved:#}");
    assert_eq!(
        digest_at(&down, "team/app", "latest").await.as_deref(),
        Some(old.digest())
    );

    let undated_entry = report.tag("team/app", "undated");
    assert_eq!(undated_entry["reason"], "no-created-time");
    assert!(undated_entry.get("eligible_at").is_none());
    assert!(undated_entry["detail"].as_str().unwrap().contains("no created time"));

    // The whole index is as young as its arm64 image; narrowed to amd64 it is old.
    let whole = report.tag("team/multi", "1.0");
    assert_eq!(whole["reason"], "too-young");
    let eligible_in = seconds_until(&whole["eligible_at"]);
    assert!(
        (69 * 3600 - 60..=69 * 3600 + 5).contains(&eligible_in),
        "{eligible_in}s"
    );
    assert_eq!(digest_at(&down, "team/multi", "1.0").await, None);
    assert_eq!(report.tag("team/amd", "1.0")["outcome"], "copied");
    assert!(digest_at(&down, "team/amd", "1.0").await.is_some());
    assert_closure(&down, "team/amd").await;
    assert_eq!(
        sorted_tags(&down, "team/app").await,
        ["latest", "mirrored", "old"],
        "nothing young arrived, no backup was made"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_keeps_what_a_retagged_tag_pointed_at() {
    let world = Mirror::start();
    let up = world.upstream.url();
    let down = world.mirror.url();
    let first = amd64(11, 100 * HOUR);
    push_image(&up, "team/app", "latest", &first).await;
    push_image(&up, "team/app", "stable", &first).await;
    let syncs = "  - from: upstream\n    to: mirror\n    content:\n      - repositories: [team/app]\n        backup: \"{tag}-{date}\"\n";
    world.write_config(&config_with_syncs(syncs));

    // New tags, then unchanged ones: nothing to back up.
    for expected in ["copied", "skipped"] {
        world.once().expect_code(0);
        for (_, tag) in world.report().tags() {
            assert_eq!(tag["outcome"], expected, "{tag:#}");
            assert!(tag.get("backup").is_none(), "{tag:#}");
        }
        assert_eq!(sorted_tags(&down, "team/app").await, ["latest", "stable"]);
    }

    // Upstream retags `latest` and adds `v2`.
    let second = amd64(12, 100 * HOUR);
    push_image(&up, "team/app", "latest", &second).await;
    push_image(&up, "team/app", "v2", &second).await;
    let date_before = chrono::Utc::now().format("%Y%m%d").to_string();

    let run = world.check();
    run.expect_code(0);
    let planned = format!("back up {} as latest-", first.digest());
    assert!(run.stdout.contains(&planned), "{}", run.stdout);
    assert_eq!(
        world.report().tag("team/app", "latest")["backup"]["digest"],
        first.digest()
    );
    assert_eq!(
        sorted_tags(&down, "team/app").await,
        ["latest", "stable"],
        "check wrote"
    );

    let run = world.once();
    run.expect_code(0);
    let date_after = chrono::Utc::now().format("%Y%m%d").to_string();
    let report = world.report();
    let moved = report.tag("team/app", "latest");
    assert_eq!(moved["outcome"], "copied");
    assert_eq!(moved["backup"]["digest"], first.digest());
    let backup_name = moved["backup"]["name"].as_str().unwrap().to_owned();
    assert!(
        [format!("latest-{date_before}"), format!("latest-{date_after}")].contains(&backup_name),
        "{backup_name}"
    );
    assert!(
        report.tag("team/app", "v2").get("backup").is_none(),
        "a new tag has nothing to back up"
    );
    assert!(report.tag("team/app", "stable").get("backup").is_none());
    let summary_line = format!("  backed up team/app:latest (was {}) as {backup_name}", first.digest());
    assert!(run.stdout.contains(&summary_line), "{}", run.stdout);

    // The tag at the new digest, the backup at the old one, both byte for byte.
    let (bytes, _, digest) = manifest(&down, "team/app", "latest").await.unwrap();
    assert_eq!((digest.as_str(), &bytes), (second.digest(), &second.manifest.bytes));
    let (bytes, _, digest) = manifest(&down, "team/app", &backup_name).await.unwrap();
    assert_eq!((digest.as_str(), &bytes), (first.digest(), &first.manifest.bytes));
    let mut expected = vec!["latest".to_owned(), "stable".to_owned(), "v2".to_owned(), backup_name];
    expected.sort();
    assert_eq!(sorted_tags(&down, "team/app").await, expected);
    assert_closure(&down, "team/app").await;

    // The next pass finds everything in place: no further backup.
    world.once().expect_code(0);
    for (_, tag) in world.report().tags() {
        assert_eq!(tag["reason"], "up-to-date", "{tag:#}");
        assert!(tag.get("backup").is_none(), "{tag:#}");
    }
}

#[test]
fn bad_min_ages_and_backup_templates_are_config_errors_at_their_key_paths() {
    let syncs = "  - from: upstream\n    to: mirror\n    content:\n      - prefix: \"team/**\"\n        backup: \"{tag}-{when}\"\n        tags:\n          min_age: 3 fortnights\n      - repositories: [app]\n        backup: \"{tag}:{date}\"\n        tags:\n          min_age: 0s\n      - images: [\"app:1\"]\n        backup: \"{tag}\"\n";
    let work = Workdir::new();
    work.write_config_filled(&config_with_syncs(syncs), &NOWHERE);
    let run = work.run(&["check"]);
    run.expect_code(2);
    for expected in [
        "ocisync.yaml:12:9: syncs[0].content[0].backup: \"{tag}-{when}\" has an unknown placeholder {when}",
        "ocisync.yaml:14:11: syncs[0].content[0].tags.min_age: invalid duration \"3 fortnights\"",
        "ocisync.yaml:16:9: syncs[0].content[1].backup: \"{tag}:{date}\" has ':', which a tag cannot hold",
        "ocisync.yaml:18:11: syncs[0].content[1].tags.min_age: must be more than 0s",
        "ocisync.yaml:20:9: syncs[0].content[2].backup: \"{tag}\" has neither {date} nor {digest}",
    ] {
        assert!(
            run.stderr.contains(expected),
            "expected {expected:?} in\n{}",
            run.stderr
        );
    }
}
