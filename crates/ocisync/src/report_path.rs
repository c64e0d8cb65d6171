//! Where a `--report` file goes: checked before a pass starts, then written without
//! destroying what the path names.
//!
//! A regular file (or a new path) is replaced through a temporary file in the same
//! directory and a rename, so readers never see half a report. A character device
//! (`/dev/stdout`, `/dev/null`) or a FIFO is opened and written: renaming a file over it
//! would delete the node. A symbolic link is followed and its target written; the link
//! stays. A directory, socket or block device is refused.

use std::fs;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// Symbolic links followed before giving up, as Linux does (`ELOOP`).
const MAX_SYMLINKS: usize = 40;

/// How a report reaches its path.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// A regular file or a new path: a temporary file beside it, renamed over it.
    Replace(PathBuf),
    /// A character device or a FIFO: opened and written in place.
    WriteThrough(PathBuf),
}

/// Fails, naming the reason, when a report could not be written to `path`; for use
/// before any work, so that a bad path costs nothing.
pub fn check(path: &Path) -> anyhow::Result<()> {
    let target = resolve(path).with_context(|| cannot_write(path))?;
    if let Target::Replace(file) = &target {
        // Creating (and dropping) a file beside it is the one sure test of the
        // directory: permissions, a read-only filesystem, a full inode table.
        temporary_beside(file).with_context(|| cannot_write(path))?;
    }
    Ok(())
}

/// Puts `bytes` at `path` (see the module docs for what each kind of path gets).
pub fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let written = match resolve(path) {
        Ok(Target::Replace(file)) => replace(&file, bytes),
        Ok(Target::WriteThrough(file)) => write_through(&file, bytes),
        Err(error) => Err(error),
    };
    written.with_context(|| cannot_write(path))
}

fn cannot_write(path: &Path) -> String {
    format!("cannot write report {}", path.display())
}

/// What `path` names once symbolic links are followed, and how to write it.
fn resolve(path: &Path) -> anyhow::Result<Target> {
    if path.as_os_str().as_bytes().ends_with(b"/") {
        bail!("the path names a directory");
    }
    let mut current = path.to_owned();
    for _ in 0..=MAX_SYMLINKS {
        let metadata = match fs::symlink_metadata(&current) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let directory = directory_of(&current);
                return match fs::metadata(directory) {
                    Ok(metadata) if metadata.is_dir() => Ok(Target::Replace(current)),
                    Ok(_) => bail!("{} is not a directory", directory.display()),
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                        bail!("directory {} does not exist", directory.display())
                    }
                    Err(error) => Err(error).with_context(|| directory.display().to_string()),
                };
            }
            Err(error) => return Err(error).with_context(|| current.display().to_string()),
        };
        let kind = metadata.file_type();
        if kind.is_symlink() {
            let link = fs::read_link(&current).with_context(|| current.display().to_string())?;
            // A relative link is relative to the directory holding it.
            current = directory_of(&current).join(link);
            continue;
        }
        if kind.is_file() {
            return Ok(Target::Replace(current));
        }
        if kind.is_char_device() || kind.is_fifo() {
            return Ok(Target::WriteThrough(current));
        }
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_block_device() {
            "a block device"
        } else {
            "not a file"
        };
        bail!(
            "{} is {what}; name a file, a FIFO or a character device",
            current.display()
        );
    }
    bail!("too many levels of symbolic links")
}

/// The directory a path's last component sits in (`.` for a bare file name).
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// A new, empty file in `file`'s directory, removed when dropped unless persisted.
fn temporary_beside(file: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    let directory = directory_of(file);
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        // What File::create asks for; the umask applies.
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(directory)
        .with_context(|| format!("cannot create a file in {}", directory.display()))
}

fn replace(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut temporary = temporary_beside(file)?;
    // A report replaced keeps its permissions: whoever reads it still can.
    if let Ok(existing) = fs::metadata(file) {
        temporary.as_file().set_permissions(existing.permissions())?;
    }
    temporary.write_all(bytes)?;
    temporary.as_file().sync_all()?;
    // On failure the temporary file is dropped, and so removed.
    temporary.persist(file).map_err(|failure| failure.error)?;
    Ok(())
}

fn write_through(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    // No create, no truncate: the node exists and is not a regular file. Opening a FIFO
    // waits for its reader.
    let mut node = fs::OpenOptions::new().write(true).open(file)?;
    node.write_all(bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
        assert!(status.success(), "mkfifo {}", path.display());
    }

    /// The names in `directory`, sorted.
    fn names(directory: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(directory)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn each_kind_of_path_is_replaced_written_through_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("sub")).unwrap();
        fs::write(root.join("sub/existing.json"), "old").unwrap();
        mkfifo(&root.join("fifo"));
        std::os::unix::fs::symlink("sub/existing.json", root.join("relative-link")).unwrap();
        std::os::unix::fs::symlink("relative-link", root.join("link-to-link")).unwrap();
        std::os::unix::fs::symlink("sub/new.json", root.join("dangling")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        fs::write(root.join("plain"), "").unwrap();
        let socket = std::os::unix::net::UnixListener::bind(root.join("socket")).unwrap();

        let cases: Vec<(PathBuf, Result<Target, &str>)> = vec![
            (root.join("new.json"), Ok(Target::Replace(root.join("new.json")))),
            (
                root.join("sub/existing.json"),
                Ok(Target::Replace(root.join("sub/existing.json"))),
            ),
            (
                root.join("link-to-link"),
                Ok(Target::Replace(root.join("sub/existing.json"))),
            ),
            (root.join("dangling"), Ok(Target::Replace(root.join("sub/new.json")))),
            (root.join("fifo"), Ok(Target::WriteThrough(root.join("fifo")))),
            ("/dev/null".into(), Ok(Target::WriteThrough("/dev/null".into()))),
            (root.join("sub"), Err("sub is a directory")),
            (root.join("sub/"), Err("the path names a directory")),
            (root.join("missing/report.json"), Err("missing does not exist")),
            (root.join("plain/report.json"), Err("Not a directory")),
            (root.join("loop"), Err("too many levels of symbolic links")),
            (root.join("socket"), Err("socket is a socket")),
        ];
        for (path, expected) in cases {
            let resolved = resolve(&path).map_err(|error| format!("{error:#}"));
            match (&resolved, expected) {
                (Ok(target), Ok(expected)) => assert_eq!(target, &expected, "{}", path.display()),
                (Err(message), Err(expected)) => {
                    assert!(message.contains(expected), "{}: {message}", path.display());
                    let checked = format!("{:#}", check(&path).unwrap_err());
                    assert!(
                        checked.starts_with(&format!("cannot write report {}: ", path.display())),
                        "{checked}"
                    );
                }
                _ => panic!("{}: {resolved:?}", path.display()),
            }
        }
        drop(socket);
        assert_eq!(
            names(&root.join("sub")),
            ["existing.json"],
            "check leaves nothing behind"
        );
    }

    #[test]
    fn a_symlink_stays_and_its_target_gets_the_report() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("reports")).unwrap();
        let target = dir.path().join("reports/report.json");
        fs::write(&target, "old").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("report.json");
        std::os::unix::fs::symlink("reports/report.json", &link).unwrap();
        check(&link).unwrap();
        write(&link, b"{}").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"{}");
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o640,
            "a replaced report keeps its permissions"
        );
        assert_eq!(names(dir.path()), ["report.json", "reports"]);
        assert_eq!(names(&dir.path().join("reports")), ["report.json"]);
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("report.json");
        // A directory where the file should be: the rename fails after the temporary
        // file was written.
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("inside"), "").unwrap();
        let error = replace(&blocked, b"{}").unwrap_err();
        assert!(format!("{error:#}").contains("directory"), "{error:#}");
        assert_eq!(names(dir.path()), ["report.json"]);
    }

    #[test]
    fn a_fifo_gets_the_bytes_and_stays_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("report.fifo");
        mkfifo(&fifo);
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read(fifo).unwrap())
        };
        write(&fifo, b"{\"syncs\": []}").unwrap();
        assert_eq!(reader.join().unwrap(), b"{\"syncs\": []}");
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    }
}
