//! Reading the small files a config names (passwords, tokens, keys, certificates, lists):
//! regular files only, up to a size cap.
//!
//! A path is whatever the config says: `/dev/zero` never ends, a FIFO without a writer
//! blocks the open forever, and a huge file fills memory. Symlinks are followed (a
//! Kubernetes Secret volume is symlinks to regular files).

use std::fs::File;
use std::io::Read as _;
use std::path::Path;

/// The cap of most such files: a certificate bundle or a key is a few KiB.
pub const SMALL_FILE_LIMIT: u64 = 1024 * 1024;

/// Why a small file was not read. The caller names the path and the key; the message
/// says what is wrong, never what the file holds.
#[derive(Debug, thiserror::Error)]
pub enum SmallFileError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("is {kind}, not a regular file")]
    NotRegular { kind: &'static str },
    #[error("is larger than {limit} bytes, the most read")]
    TooLarge { limit: u64 },
    #[error("is not UTF-8 text")]
    NotUtf8,
}

/// The bytes of the regular file at `path`, at most `limit` of them.
pub fn read_small_file(path: &Path, limit: u64) -> Result<Vec<u8>, SmallFileError> {
    // Looked at before the open: opening a FIFO would wait for a writer.
    check_regular(&std::fs::metadata(path)?)?;
    let file = File::open(path)?;
    // And again on what was opened, in case the path changed in between.
    let metadata = file.metadata()?;
    check_regular(&metadata)?;
    if metadata.len() > limit {
        return Err(SmallFileError::TooLarge { limit });
    }
    let mut bytes = Vec::new();
    // What arrives counts too: a file may grow while it is read.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(SmallFileError::TooLarge { limit });
    }
    Ok(bytes)
}

/// [`read_small_file`] as UTF-8 text.
pub fn read_small_text(path: &Path, limit: u64) -> Result<String, SmallFileError> {
    String::from_utf8(read_small_file(path, limit)?).map_err(|_| SmallFileError::NotUtf8)
}

fn check_regular(metadata: &std::fs::Metadata) -> Result<(), SmallFileError> {
    let file_type = metadata.file_type();
    if file_type.is_file() {
        return Ok(());
    }
    Err(SmallFileError::NotRegular {
        kind: file_kind(&file_type),
    })
}

fn file_kind(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file_and_follows_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "hunter2\n").unwrap();
        assert_eq!(read_small_text(&file, 100).unwrap(), "hunter2\n");
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&file, &link).unwrap();
            assert_eq!(read_small_file(&link, 100).unwrap(), b"hunter2\n");
        }
    }

    #[test]
    fn refuses_devices_directories_and_fifos_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let error = read_small_file(dir.path(), 100).unwrap_err();
        assert_eq!(error.to_string(), "is a directory, not a regular file");
        #[cfg(unix)]
        {
            let error = read_small_file(Path::new("/dev/zero"), 100).unwrap_err();
            assert_eq!(error.to_string(), "is a character device, not a regular file");
            let fifo = dir.path().join("fifo");
            let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
            assert!(made.success());
            // No writer: an open would block this test forever.
            let error = read_small_file(&fifo, 100).unwrap_err();
            assert_eq!(error.to_string(), "is a FIFO, not a regular file");
        }
    }

    #[test]
    fn refuses_a_file_over_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big");
        std::fs::write(&file, vec![b'x'; 101]).unwrap();
        let error = read_small_file(&file, 100).unwrap_err();
        assert_eq!(error.to_string(), "is larger than 100 bytes, the most read");
        assert_eq!(read_small_file(&file, 101).unwrap().len(), 101);
        std::fs::write(&file, [0xff, 0xfe]).unwrap();
        assert!(matches!(read_small_text(&file, 100), Err(SmallFileError::NotUtf8)));
    }
}
