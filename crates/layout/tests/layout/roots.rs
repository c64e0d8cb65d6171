//! The once-per-directory check of a layout root, before any work.

use std::path::Path;

use ocisync_layout::{check_root, Access, OpenError};

#[test]
fn a_source_must_be_an_existing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let error = check_root(&missing, Access::Read).unwrap_err();
    assert!(matches!(error, OpenError::Missing { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        format!("layout directory {} does not exist", missing.display())
    );
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let error = check_root(&file, Access::Read).unwrap_err();
    assert!(matches!(error, OpenError::NotADirectory { .. }), "{error}");
    assert_eq!(
        check_root(dir.path(), Access::Read).unwrap(),
        std::fs::canonicalize(dir.path()).unwrap()
    );
}

#[test]
fn a_destination_may_be_missing_but_not_below_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("new/export");
    let identity = check_root(&missing, Access::Write).unwrap();
    assert_eq!(identity, std::fs::canonicalize(dir.path()).unwrap().join("new/export"));
    assert!(!missing.exists(), "the check creates nothing");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "the probe is removed"
    );

    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let error = check_root(&file, Access::Write).unwrap_err();
    assert!(matches!(error, OpenError::NotADirectory { .. }), "{error}");
    let below = file.join("export");
    let error = check_root(&below, Access::Write).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "layout directory {} cannot be created: {} is not a directory",
            below.display(),
            file.display()
        )
    );
}

#[test]
fn two_spellings_of_one_directory_have_one_identity() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("export")).unwrap();
    let plain = check_root(&dir.path().join("export"), Access::Write).unwrap();
    let dotted = check_root(&dir.path().join("./export/."), Access::Read).unwrap();
    assert_eq!(plain, dotted);
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(dir.path().join("export"), dir.path().join("link")).unwrap();
        assert_eq!(check_root(&dir.path().join("link"), Access::Write).unwrap(), plain);
    }
}

/// Root writes through permission bits; the immutable attribute stops it (where the file
/// system and the capabilities allow setting it).
#[test]
fn an_unwritable_destination_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    if !chattr(&locked, "+i") {
        eprintln!("skipped: chattr +i is not possible here");
        return;
    }
    let result = check_root(&locked, Access::Write);
    let below = check_root(&locked.join("new"), Access::Write);
    let read = check_root(&locked, Access::Read);
    chattr(&locked, "-i");
    let error = result.unwrap_err();
    assert!(matches!(error, OpenError::NotWritable { .. }), "{error}");
    assert!(error.to_string().contains("cannot be written"), "{error}");
    assert!(matches!(below.unwrap_err(), OpenError::NotWritable { .. }));
    assert!(read.is_ok(), "a source needs no writes");
}

fn chattr(path: &Path, flag: &str) -> bool {
    std::process::Command::new("chattr")
        .arg(flag)
        .arg(path)
        .status()
        .is_ok_and(|status| status.success())
}
