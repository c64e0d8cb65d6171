//! Removing the temporary files a killed writer left in a repository's layout.
//!
//! Every writer holds an exclusive lock on its temporary file until the file is renamed
//! into place or removed (`blobs.rs`), and the kernel drops the lock when the writer
//! dies, however it dies. So a temporary file whose lock can be taken has no live
//! writer. It must also be older than [`STALE_AFTER`]: a writer creates its file a
//! moment before it locks it, and a file that young is left alone.

use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::blobs::TEMP_PREFIX;
use crate::lock::{open_for_locking, try_lock};
use crate::paths::RepoPaths;

/// How long a temporary file must be untouched before an unlocked one counts as stale.
pub const STALE_AFTER: Duration = Duration::from_secs(60);

/// Removes stale temporary files from the layout directory and `blobs/<algorithm>/`.
/// Best effort: a file that cannot be examined or removed is left for a later sweep.
/// Returns how many were removed.
pub fn sweep_stale_temp_files(paths: &RepoPaths) -> usize {
    let mut dirs = vec![paths.dir.clone()];
    if let Ok(entries) = fs::read_dir(paths.blobs()) {
        dirs.extend(entries.flatten().map(|entry| entry.path()).filter(|path| path.is_dir()));
    }
    let now = SystemTime::now();
    let mut removed = 0;
    for dir in dirs {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let is_temp = entry
                .file_name()
                .to_str()
                .is_some_and(|name| name.starts_with(TEMP_PREFIX));
            if !is_temp {
                continue;
            }
            let path = entry.path();
            match remove_if_stale(&path, now) {
                Ok(true) => removed += 1,
                Ok(false) => {}
                Err(error) => tracing::debug!(path = %path.display(), error = %error, "temporary file kept"),
            }
        }
    }
    if removed > 0 {
        tracing::info!(dir = %paths.dir.display(), removed, "removed temporary files of interrupted writes");
    }
    removed
}

fn remove_if_stale(path: &Path, now: SystemTime) -> io::Result<bool> {
    let modified = fs::symlink_metadata(path)?.modified()?;
    // A time in the future (another host's clock) is not old.
    let untouched = now.duration_since(modified).unwrap_or_default();
    if untouched < STALE_AFTER {
        return Ok(false);
    }
    let file = open_for_locking(path, false)?;
    if !try_lock(&file)? {
        return Ok(false);
    }
    // The writer may have renamed it into place between our look and our lock: then
    // the name is gone or another file's, and nothing is removed.
    if !still_named(&file, path)? {
        return Ok(false);
    }
    fs::remove_file(path)?;
    Ok(true)
}

/// Whether `path` still names the file `file` has open.
#[cfg(unix)]
fn still_named(file: &File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt as _;
    let open = file.metadata()?;
    match fs::symlink_metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

#[cfg(not(unix))]
fn still_named(_file: &File, path: &Path) -> io::Result<bool> {
    Ok(path.exists())
}
