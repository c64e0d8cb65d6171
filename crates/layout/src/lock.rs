//! Advisory file locks (`flock`) that other processes honour: one around every
//! read-modify-write of a repository's `index.json`, and one on every temporary file
//! while its writer lives, so the sweep of stale temporary files can tell them apart.
//!
//! `flock` locks belong to an open file, not to a process: two stores in one process
//! exclude each other too (on local file systems; NFS emulates `flock` with per-process
//! POSIX locks, which is why a process also keeps one store per directory).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

// Called as `fs4::FileExt::…`: since Rust 1.89 `File` has inherent methods of the same
// names, which the workspace's minimum Rust version (1.88) does not have.
use fs4::TryLockError;
use ocisync_oci::Result;

use crate::error::io_error;

/// Held while a repository's `index.json` is read, changed and replaced. Dropping it
/// closes the lock file, which releases the lock (also when the process dies).
pub struct IndexLock {
    _file: File,
}

/// Waits (on a blocking thread) until this process holds the lock file at `path`,
/// creating it if needed.
pub async fn lock_index(path: PathBuf, what: String) -> Result<IndexLock> {
    let locked = tokio::task::spawn_blocking(move || -> io::Result<IndexLock> {
        let file = open_for_locking(&path, true)?;
        fs4::FileExt::lock(&file)?;
        Ok(IndexLock { _file: file })
    })
    .await
    .map_err(|error| io_error(what.clone(), io::Error::other(error)))?;
    locked.map_err(|error| io_error(format!("{what}: lock"), error))
}

/// Opens `path` for locking. Read and write access, as NFS requires for an exclusive lock.
pub fn open_for_locking(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
}

/// Takes `file`'s exclusive lock if no one holds it. `Ok(false)`: someone does.
pub fn try_lock(file: &File) -> io::Result<bool> {
    match fs4::FileExt::try_lock(file) {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(error)) => Err(error),
    }
}
