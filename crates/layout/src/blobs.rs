//! Files written all-or-nothing and read in chunks.
//!
//! Every file (blob, manifest, `index.json`, `oci-layout`) is written to a temporary
//! name in its final directory, synced, then renamed: a reader or an interrupted
//! export never sees a half-written file under its final name, so a resumed export
//! can trust every blob it finds. The temporary file is removed on any failure,
//! including a dropped (cancelled) write, and is locked until it is renamed or removed,
//! so a sweep (`sweep.rs`) removes only the files of writers that died.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use futures_util::{stream, StreamExt};
use ocisync_oci::{BlobStream, Descriptor, DigestHasher, Result, StoreError};
use tokio::fs::{self, File};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{invalid, io_error};

/// Chunk size of blob reads: small enough that memory does not grow with blob size.
pub const READ_CHUNK: usize = 64 * 1024;

/// Prefix of temporary files; never a valid digest, so never mistaken for a blob.
pub const TEMP_PREFIX: &str = ".tmp-";

/// How many temporary names are tried before giving up (a clash needs another writer
/// with the same pid, counter and clock reading).
const TEMP_ATTEMPTS: u32 = 16;

/// Removes the temporary file when dropped, unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    renamed: bool,
    /// The file, open and locked (`flock`) until this is dropped, after the rename or
    /// removal: a sweep never takes a file from a live writer.
    _lock: Option<std::fs::File>,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.renamed {
            // Best effort: the write already failed or was cancelled; a leftover is only
            // a `.tmp-` file that readers ignore.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A fresh temporary file name: `.tmp-<pid>-<counter>-<nanoseconds>`.
pub fn temp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{TEMP_PREFIX}{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

async fn create_temp(dir: &Path, what: &str) -> Result<(File, TempFile)> {
    fs::create_dir_all(dir)
        .await
        .map_err(|error| io_error(format!("{what}: create {}", dir.display()), error))?;
    for _ in 0..TEMP_ATTEMPTS {
        let path = dir.join(temp_name());
        let created = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || create_locked(&path))
                .await
                .map_err(|error| io_error(what.to_owned(), io::Error::other(error)))?
        };
        match created {
            Ok((file, lock)) => {
                let temp = TempFile {
                    path,
                    renamed: false,
                    _lock: lock,
                };
                return Ok((File::from_std(file), temp));
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => {
                return Err(io_error(
                    format!("{what}: create temporary file in {}", dir.display()),
                    error,
                ))
            }
        }
    }
    Err(invalid(
        what.to_owned(),
        format!("no free temporary file name in {}", dir.display()),
    ))
}

/// Creates a new file at `path` and locks it; returns it and a second handle that holds
/// the lock (`None` where the file system has no locks: the sweep's age rule remains).
fn create_locked(path: &Path) -> io::Result<(std::fs::File, Option<std::fs::File>)> {
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    let lock = match crate::lock::try_lock(&file) {
        Ok(true) => Some(file.try_clone()?),
        Ok(false) | Err(_) => {
            tracing::debug!(path = %path.display(), "temporary file not locked");
            None
        }
    };
    Ok((file, lock))
}

/// Writes `body` to `destination` (whose parent directory is created) all-or-nothing.
/// With `expected`, the content must have exactly its size and digest: excess bytes
/// fail at once, a short or wrong blob fails at the end, and nothing is renamed into
/// place. The stream's own first error aborts the write and is returned.
pub async fn write_atomically(
    destination: &Path,
    mut body: BlobStream,
    expected: Option<&Descriptor>,
    what: &str,
) -> Result<u64> {
    let dir = destination
        .parent()
        .ok_or_else(|| invalid(what.to_owned(), "destination has no parent directory"))?;
    let (mut file, mut temp) = create_temp(dir, what).await?;
    let write_failed = |error| io_error(format!("{what}: write {}", temp_path_text(dir)), error);
    let mut hasher = expected.map(|descriptor| DigestHasher::new(descriptor.digest.algorithm()));
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        written += chunk.len() as u64;
        if let Some(descriptor) = expected.filter(|descriptor| written > descriptor.size) {
            return Err(size_mismatch(what, descriptor, written));
        }
        if let Some(hasher) = hasher.as_mut() {
            hasher.update(&chunk);
        }
        file.write_all(&chunk).await.map_err(write_failed)?;
    }
    if let (Some(descriptor), Some(hasher)) = (expected, hasher) {
        if written != descriptor.size {
            return Err(size_mismatch(what, descriptor, written));
        }
        let actual = hasher.finish();
        if actual != descriptor.digest {
            return Err(StoreError::DigestMismatch {
                what: what.to_owned(),
                expected: descriptor.digest.clone(),
                actual,
            });
        }
    }
    file.flush().await.map_err(write_failed)?;
    file.sync_all().await.map_err(write_failed)?;
    drop(file);
    fs::rename(&temp.path, destination)
        .await
        .map_err(|error| io_error(format!("{what}: rename into {}", destination.display()), error))?;
    temp.renamed = true;
    sync_dir(dir)
        .await
        .map_err(|error| io_error(format!("{what}: sync {}", dir.display()), error))?;
    Ok(written)
}

fn size_mismatch(what: &str, descriptor: &Descriptor, actual: u64) -> StoreError {
    StoreError::SizeMismatch {
        what: what.to_owned(),
        expected: descriptor.size,
        actual,
    }
}

fn temp_path_text(dir: &Path) -> String {
    format!("{}/{TEMP_PREFIX}*", dir.display())
}

/// Writes small in-memory content (manifests, `index.json`) all-or-nothing.
pub async fn write_bytes_atomically(destination: &Path, bytes: Bytes, what: &str) -> Result<u64> {
    write_atomically(destination, Box::pin(stream::iter([Ok(bytes)])), None, what).await
}

/// Makes a rename durable: the directory entry is on disk once this returns.
#[cfg(unix)]
async fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).await?.sync_all().await
}

#[cfg(not(unix))]
async fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Whether a regular file exists at `path`.
pub async fn is_file(path: &Path, what: &str) -> Result<bool> {
    match fs::metadata(path).await {
        Ok(metadata) => Ok(metadata.is_file()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(io_error(format!("{what}: {}", path.display()), error)),
    }
}

/// Streams a file in chunks of [`READ_CHUNK`] bytes. A missing file is `NotFound`.
pub async fn read_chunks(path: &Path, what: String) -> Result<BlobStream> {
    let file = File::open(path).await.map_err(|error| io_error(what.clone(), error))?;
    let chunks = stream::try_unfold((file, what), |(mut file, what)| async move {
        let mut buffer = BytesMut::with_capacity(READ_CHUNK);
        let read = file
            .read_buf(&mut buffer)
            .await
            .map_err(|error| io_error(what.clone(), error))?;
        if read == 0 {
            return Ok(None);
        }
        Ok(Some((buffer.freeze(), (file, what))))
    });
    Ok(Box::pin(chunks))
}

/// Reads a whole small file, refusing one larger than `limit` bytes.
pub async fn read_small(path: &Path, limit: u64, what: &str) -> Result<Bytes> {
    let mut file = File::open(path)
        .await
        .map_err(|error| io_error(what.to_owned(), error))?;
    let size = file
        .metadata()
        .await
        .map_err(|error| io_error(what.to_owned(), error))?
        .len();
    if size > limit {
        return Err(invalid(
            what.to_owned(),
            format!("{size} bytes is more than the limit of {limit}"),
        ));
    }
    let mut content = Vec::with_capacity(size as usize);
    // `take` bounds the read even if the file grows after the size check.
    (&mut file)
        .take(limit + 1)
        .read_to_end(&mut content)
        .await
        .map_err(|error| io_error(what.to_owned(), error))?;
    if content.len() as u64 > limit {
        return Err(invalid(
            what.to_owned(),
            format!("more than the limit of {limit} bytes"),
        ));
    }
    Ok(Bytes::from(content))
}

/// Gives `destination` the content of `source` without copying when possible: a hard
/// link names the same complete file, so it is as atomic as a rename. Where links are
/// not possible (another file system, a file system without links) the content is
/// copied through a temporary file. An existing `destination` is kept.
pub async fn link_or_copy(source: &Path, destination: &Path, what: &str) -> Result<()> {
    if let Some(dir) = destination.parent() {
        fs::create_dir_all(dir)
            .await
            .map_err(|error| io_error(format!("{what}: create {}", dir.display()), error))?;
    }
    match fs::hard_link(source, destination).await {
        Ok(()) => return Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(io_error(what.to_owned(), error)),
        Err(error) => tracing::debug!(error = %error, "hard link failed, copying instead"),
    }
    let content = read_chunks(source, what.to_owned()).await?;
    write_atomically(destination, content, None, what).await?;
    Ok(())
}
