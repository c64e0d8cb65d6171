//! Layout directories shared and abused: two writers at once, repository names that
//! collide with layout entries, roots that cannot be used.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ocisync_testkit::{image, layer, push_image, Format, Image, TestRegistry};

use crate::support::{ocisync, ocisync_command, read_json, run_once, without_proxies, Daemon, Report, Run};

/// Tags each writer exports; enough that an unlocked read-modify-write loses some.
const TAGS_PER_WRITER: usize = 40;

fn small_image(label: &str) -> Image {
    image(
        Format::Oci,
        ("linux", "amd64"),
        vec![layer(Format::Oci, 11, 512)],
        label,
    )
}

/// `app:a0…` and `app:b0…`, one image under every tag.
async fn seed_two_tag_families(upstream: &TestRegistry) {
    let shared = small_image("shared");
    for family in ["a", "b"] {
        for number in 0..TAGS_PER_WRITER {
            push_image(&upstream.url(), "app", &format!("{family}{number}"), &shared).await;
        }
    }
}

/// A config exporting `upstream` into the layout `disk` (relative to `dir`), with `syncs`.
fn export_config(dir: &Path, name: &str, upstream: &str, syncs: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let text = format!(
        "version: 1\nregistries:\n  upstream:\n    urls: [\"{upstream}\"]\n  disk:\n    layout: disk\nsyncs:\n{syncs}"
    );
    std::fs::write(&path, text).unwrap();
    path
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
    let upstream = TestRegistry::start();
    seed_two_tag_families(&upstream).await;
    let dir = tempfile::tempdir().unwrap();
    let writers: Vec<std::process::Child> = ["a", "b"]
        .iter()
        .map(|family| {
            let config = export_config(
                dir.path(),
                &format!("{family}.yaml"),
                &upstream.url(),
                &family_sync(family, ""),
            );
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
    assert_eq!(layout_tags(&dir.path().join("disk"), "app"), every_tag());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_syncs_of_one_daemon_into_one_layout_keep_every_tag() {
    let upstream = TestRegistry::start();
    seed_two_tag_families(&upstream).await;
    let dir = tempfile::tempdir().unwrap();
    let hourly = "    interval: 1h\n";
    let syncs = family_sync("a", hourly) + &family_sync("b", hourly);
    let config = export_config(dir.path(), "run.yaml", &upstream.url(), &syncs);
    let mut daemon = Daemon::spawn(&["--config", config.to_str().unwrap()]);
    daemon.wait_for_log("both first passes", Duration::from_secs(120), |log| {
        log.iter().filter(|line| line.contains("pass finished")).count() >= 2
    });
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    let log = daemon.log.join("\n");
    assert!(!log.contains("failed=1") && !log.contains("image failed"), "{log}");
    assert_eq!(layout_tags(&dir.path().join("disk"), "app"), every_tag());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repository_named_after_a_layout_entry_fails_alone_and_its_parent_keeps_working() {
    let upstream = TestRegistry::start();
    for repo in ["x", "x/index.json", "x/oci-layout"] {
        push_image(&upstream.url(), repo, "v1", &small_image(repo)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let export = |name: &str, repositories: &str| {
        let syncs = format!("  - from: upstream\n    to: disk\n    content:\n      - repositories: [{repositories}]\n");
        let config = export_config(dir.path(), name, &upstream.url(), &syncs);
        run_once(&config, &report)
    };
    // The colliding names first: before the fix they took `x`'s index.json and oci-layout.
    let run = export("reserved.yaml", "x/index.json, x/oci-layout");
    run.expect_code(1);
    let entries = Report::read(&report).tags();
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
    let layout = dir.path().join("disk");
    assert!(!layout.join("x").exists(), "nothing was written for the refused names");

    export("parent.yaml", "x").expect_code(0);
    assert_eq!(layout_tags(&layout, "x"), vec!["v1"]);
    export("parent.yaml", "x").expect_code(0);
    let again = Report::read(&report);
    assert_eq!(again["totals"]["tags_up_to_date"], 1, "{again}");
}

/// `ocisync once` exporting into `layout:` (written as is into the config).
fn export_into(dir: &Path, layout: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let config = dir.join("export.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\nregistries:\n  upstream:\n    urls: [\"http://127.0.0.1:9\"]\n  disk:\n    layout: {}\nsyncs:\n  - from: upstream\n    to: disk\n",
            layout.display()
        ),
    )
    .unwrap();
    (config, dir.join("report.json"))
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
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, "x").unwrap();
    let (config, report) = export_into(dir.path(), &file);
    let run = run_once(&config, &report);
    assert_one_setup_error(&run, &file, "not a directory");
    assert!(!report.exists());
    // Below a file is no better: it can never be created.
    let below = file.join("export");
    let (config, _) = export_into(dir.path(), &below);
    assert_one_setup_error(
        &ocisync(&["once", "--config", config.to_str().unwrap()]),
        &below,
        "not a directory",
    );
}

#[test]
fn a_missing_source_layout_is_one_setup_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("import.yaml");
    std::fs::write(
        &config,
        "version: 1\nregistries:\n  disk:\n    layout: nowhere\n  isolated:\n    urls: [\"http://127.0.0.1:9\"]\nsyncs:\n  - from: disk\n    to: isolated\n",
    )
    .unwrap();
    let run = ocisync(&["once", "--config", config.to_str().unwrap()]);
    assert_one_setup_error(&run, &dir.path().join("nowhere"), "does not exist");
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
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("read-only");
    std::fs::create_dir(&layout).unwrap();
    let (config, _) = export_into(dir.path(), &layout);
    let Some(run) = ocisync_with_read_only(&layout, &["once", "--config", config.to_str().unwrap()]) else {
        eprintln!("skipped: neither a read-only bind mount nor chattr +i is possible here");
        return;
    };
    assert_one_setup_error(&run, &layout, "cannot be written");
}
