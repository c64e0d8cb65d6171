//! Layout directories shared and abused: two writers at once, repository names that
//! collide with layout entries, roots that cannot be used.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ocisync_testkit::{push_image, small_image, TestRegistry};

use crate::support::{
    export_config_with_syncs, ocisync, ocisync_command, read_json, without_proxies, Export, Run, Workdir, NOWHERE,
};

/// Tags each writer exports; enough that an unlocked read-modify-write loses some.
const TAGS_PER_WRITER: usize = 40;

/// `app:a0…` and `app:b0…`, one image under every tag.
async fn seed_two_tag_families(upstream: &TestRegistry) {
    let shared = small_image("shared", 11);
    for family in ["a", "b"] {
        for number in 0..TAGS_PER_WRITER {
            push_image(&upstream.url(), "app", &format!("{family}{number}"), &shared).await;
        }
    }
}

/// A sync of `app` tags `<family>N` into the layout.
fn family_sync(family: &str, schedule: &str) -> String {
    format!(
        "  - name: family-{family}\n    from: upstream\n    to: disk\n{schedule}    content:\n      - repositories: [app]\n        tags: {{include: ['{family}\\d+']}}\n"
    )
}

/// The tags `index.json` of the layout `repo` names, sorted.
fn layout_tags(layout: &Path, repo: &str) -> Vec<String> {
    let index = read_json(&layout.join(repo).join("index.json"));
    let mut tags: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_owned)
        .collect();
    tags.sort();
    tags
}

fn every_tag() -> Vec<String> {
    let mut tags: Vec<String> = ["a", "b"]
        .iter()
        .flat_map(|family| (0..TAGS_PER_WRITER).map(move |number| format!("{family}{number}")))
        .collect();
    tags.sort();
    tags
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_exporting_into_one_layout_keep_every_tag() {
    let world = Export::start();
    seed_two_tag_families(&world.upstream).await;
    let writers: Vec<std::process::Child> = ["a", "b"]
        .iter()
        .map(|family| {
            let syncs = family_sync(family, "");
            let config = world.write_other_config(&format!("{family}.yaml"), &export_config_with_syncs(&syncs));
            ocisync_command(&["once", "--config", config.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for writer in writers {
        Run::of(writer.wait_with_output().unwrap()).expect_code(0);
    }
    assert_eq!(layout_tags(&world.layout(), "app"), every_tag());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_syncs_of_one_daemon_into_one_layout_keep_every_tag() {
    let world = Export::start();
    seed_two_tag_families(&world.upstream).await;
    let hourly = "    interval: 1h\n";
    let syncs = family_sync("a", hourly) + &family_sync("b", hourly);
    world.write_config(&export_config_with_syncs(&syncs));
    let mut daemon = world.daemon(&[]);
    daemon.wait_for_log("both first passes", Duration::from_secs(120), |log| {
        log.iter().filter(|line| line.contains("pass finished")).count() >= 2
    });
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    let log = daemon.log.join("\n");
    assert!(!log.contains("failed=1") && !log.contains("image failed"), "{log}");
    assert_eq!(layout_tags(&world.layout(), "app"), every_tag());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repository_named_after_a_layout_entry_fails_alone_and_its_parent_keeps_working() {
    let world = Export::start();
    for repo in ["x", "x/index.json", "x/oci-layout"] {
        push_image(&world.upstream.url(), repo, "v1", &small_image(repo, 11)).await;
    }
    let export = |repositories: &str| {
        let syncs = format!("  - from: upstream\n    to: disk\n    content:\n      - repositories: [{repositories}]\n");
        world.write_config(&export_config_with_syncs(&syncs));
        world.once()
    };
    // The colliding names first: before the fix they took `x`'s index.json and oci-layout.
    let run = export("x/index.json, x/oci-layout");
    run.expect_code(1);
    let entries = world.report().tags();
    assert_eq!(entries.len(), 2, "{entries:?}");
    for (repo, entry) in &entries {
        assert_eq!(entry["outcome"], "failed", "{repo}: {entry}");
        let error = entry["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("reserved") && error.contains(repo.as_str()),
            "{repo}: {error}"
        );
    }
    assert!(run.stdout.contains("reserved"), "the summary says why:\n{}", run.stdout);
    let layout = world.layout();
    assert!(!layout.join("x").exists(), "nothing was written for the refused names");

    export("x").expect_code(0);
    assert_eq!(layout_tags(&layout, "x"), vec!["v1"]);
    export("x").expect_code(0);
    let again = world.report();
    assert_eq!(again["totals"]["tags_up_to_date"], 1, "{again}");
}

/// A config exporting an upstream where nothing listens into `layout:` (written as is).
fn write_export_into(work: &Workdir, layout: &Path) {
    let disk = format!("  disk:\n    layout: {}\n", layout.display());
    let yaml =
        export_config_with_syncs("  - from: upstream\n    to: disk\n").replace("  disk:\n    layout: disk\n", &disk);
    work.write_config_filled(&yaml, &NOWHERE);
}

/// The run failed before any work, with one error line naming `path`.
fn assert_one_setup_error(run: &Run, path: &Path, why: &str) {
    run.expect_code(2);
    let errors: Vec<&str> = run.stderr.lines().filter(|line| line.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one error line:\n{}", run.stderr);
    assert!(errors[0].contains(&path.display().to_string()), "{}", errors[0]);
    assert!(errors[0].contains(why), "{}", errors[0]);
    assert!(run.stdout.is_empty(), "no pass ran:\n{}", run.stdout);
}

#[test]
fn a_regular_file_as_layout_root_is_one_setup_error() {
    let work = Workdir::new();
    let file = work.dir().join("not-a-directory");
    std::fs::write(&file, "x").unwrap();
    write_export_into(&work, &file);
    assert_one_setup_error(&work.once(), &file, "not a directory");
    assert!(!work.report_path().exists());
    // Below a file is no better: it can never be created.
    let below = file.join("export");
    write_export_into(&work, &below);
    assert_one_setup_error(&work.run(&["once"]), &below, "not a directory");
}

#[test]
fn a_missing_source_layout_is_one_setup_error() {
    let work = Workdir::new();
    work.write_config_filled(
        "version: 1\nregistries:\n  disk:\n    layout: nowhere\n  isolated:\n    urls: [\"{mirror}\"]\nsyncs:\n  - from: disk\n    to: isolated\n",
        &NOWHERE,
    );
    let run = work.run(&["once"]);
    assert_one_setup_error(&run, &work.dir().join("nowhere"), "does not exist");
}

/// Makes `dir` read-only in a new mount namespace (a read-only bind mount), then runs
/// the rest of the arguments there.
const READ_ONLY_BIND: &str =
    "mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\" \"$1\" && shift && exec \"$@\"";

/// Runs `ocisync ARGS` with `dir` read-only for it. Root writes through permission bits,
/// so this takes a read-only bind mount in a mount namespace of its own, else the
/// immutable attribute. `None` when this machine allows neither.
fn ocisync_with_read_only(dir: &Path, args: &[&str]) -> Option<Run> {
    let in_namespace = |command: &[&str]| {
        // The shell runs the binary here: its proxy variables are cleared on the way in.
        without_proxies(&mut Command::new("unshare"))
            .args(["--mount", "sh", "-c", READ_ONLY_BIND, "sh", dir.to_str().unwrap()])
            .args(command)
            .output()
    };
    let bind_works = in_namespace(&["true"]).is_ok_and(|output| output.status.success());
    if bind_works {
        let output = in_namespace(&[&[env!("CARGO_BIN_EXE_ocisync")], args].concat()).unwrap();
        return Some(Run::of(output));
    }
    let immutable = Command::new("chattr")
        .arg("+i")
        .arg(dir)
        .status()
        .is_ok_and(|status| status.success());
    if !immutable {
        return None;
    }
    let run = ocisync(args);
    Command::new("chattr").arg("-i").arg(dir).status().unwrap();
    Some(run)
}

#[test]
fn a_read_only_layout_root_is_one_setup_error() {
    let work = Workdir::new();
    let layout = work.dir().join("read-only");
    std::fs::create_dir(&layout).unwrap();
    write_export_into(&work, &layout);
    let config = work.config_path();
    let Some(run) = ocisync_with_read_only(&layout, &["once", "--config", config.to_str().unwrap()]) else {
        eprintln!("skipped: neither a read-only bind mount nor chattr +i is possible here");
        return;
    };
    assert_one_setup_error(&run, &layout, "cannot be written");
}
