//! The check made once when a layout directory is opened, so an unusable root is one
//! clear error before any work instead of the same failure for every image.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::blobs::temp_name;

/// What the user of a layout directory will do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A source: the directory must exist and be readable.
    Read,
    /// A destination: the directory must be writable, or creatable by the first write.
    Write,
}

/// Why a layout directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("layout directory {path} does not exist")]
    Missing { path: PathBuf },
    #[error("layout directory {path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("layout directory {path} cannot be created: {blocker} is not a directory")]
    Blocked { path: PathBuf, blocker: PathBuf },
    #[error("layout directory {path} cannot be read")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("layout directory {path} cannot be written (a test file in {probed} could not be created)")]
    NotWritable {
        path: PathBuf,
        probed: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Checks that `root` can serve as `access` says, and returns the path that identifies
/// the directory (symbolic links and `.` resolved), so that a process can keep one store
/// per directory however a config spells its path.
///
/// A missing destination is not created here (`check` writes nothing); the directory
/// it would be created in must be writable. Writability is tested by creating and
/// removing a file, as permission bits say nothing when running as root and a
/// read-only mount shows only on a write.
pub fn check_root(root: &Path, access: Access) -> Result<PathBuf, OpenError> {
    let path = root.to_path_buf();
    let absolute = std::path::absolute(root).map_err(|source| OpenError::Unreadable {
        path: path.clone(),
        source,
    })?;
    let existing = match fs::metadata(&absolute) {
        Ok(metadata) if metadata.is_dir() => absolute.clone(),
        Ok(_) => return Err(OpenError::NotADirectory { path }),
        // NotADirectory: a file further up, which `nearest_existing_dir` names.
        Err(error) if matches!(error.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => match access {
            Access::Read => return Err(OpenError::Missing { path }),
            Access::Write => nearest_existing_dir(root, &absolute)?,
        },
        Err(source) => return Err(OpenError::Unreadable { path, source }),
    };
    match access {
        Access::Read => {
            fs::read_dir(&absolute).map_err(|source| OpenError::Unreadable {
                path: path.clone(),
                source,
            })?;
        }
        Access::Write => probe_writable(&existing).map_err(|source| OpenError::NotWritable {
            path: path.clone(),
            probed: existing.clone(),
            source,
        })?,
    }
    let canonical = fs::canonicalize(&existing).map_err(|source| OpenError::Unreadable {
        path: path.clone(),
        source,
    })?;
    let missing_part = absolute.strip_prefix(&existing).unwrap_or(Path::new(""));
    Ok(canonical.join(missing_part))
}

/// The closest ancestor of a missing `root` (`absolute` is the same path made absolute)
/// that exists; it must be a directory.
fn nearest_existing_dir(root: &Path, absolute: &Path) -> Result<PathBuf, OpenError> {
    for ancestor in absolute.ancestors().skip(1) {
        match fs::metadata(ancestor) {
            Ok(metadata) if metadata.is_dir() => return Ok(ancestor.to_path_buf()),
            Ok(_) => {
                return Err(OpenError::Blocked {
                    path: root.to_path_buf(),
                    blocker: ancestor.to_path_buf(),
                })
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            // A file further up: the loop reaches it.
            Err(error) if error.kind() == io::ErrorKind::NotADirectory => continue,
            Err(source) => {
                return Err(OpenError::Unreadable {
                    path: root.to_path_buf(),
                    source,
                })
            }
        }
    }
    Err(OpenError::Missing {
        path: root.to_path_buf(),
    })
}

/// Creates and removes a temporary file in `dir`.
fn probe_writable(dir: &Path) -> io::Result<()> {
    let probe = dir.join(temp_name());
    fs::OpenOptions::new().write(true).create_new(true).open(&probe)?;
    fs::remove_file(&probe)
}
