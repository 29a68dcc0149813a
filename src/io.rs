//! Reading the files a user names, with a bound on what each kind may take; writing the
//! crate's own files atomically; the rules every reader of a folder or a zip shares.
//!
//! A size from `metadata()` is no bound: it is 0 for a device or a pipe, and a link can
//! point at `/dev/zero`. Every read of a user-named file goes through [`read_bounded`],
//! which stops one byte past the limit of its [`FileKind`] whatever the file is. The one
//! exception is an image that is a regular file: its length is its size, so
//! [`load_image`](crate::data::load_image) checks that and lets the decoder read the file
//! as it goes, without a copy in memory.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use zip::ZipArchive;

use crate::{Error, Result};

/// Whether a file or folder called `name` is skipped by every reader of a folder or a zip
/// (the Omniglot loader, the official runs, the matcher's folders): hidden names (`.name`)
/// and the `__MACOSX` resource forks that archivers add.
pub(crate) fn is_hidden(name: &str) -> bool {
    name.starts_with('.') || name == "__MACOSX"
}

/// The zip archive read from `reader`, or an [`Error::Layout`] saying that `shown` is not
/// a readable zip.
pub(crate) fn open_zip<R: Read + Seek>(reader: R, shown: &Path) -> Result<ZipArchive<R>> {
    ZipArchive::new(reader).map_err(|e| Error::Layout {
        path: shown.to_path_buf(),
        reason: format!("not a readable zip: {e}"),
    })
}

/// What a file is, and so the most bytes it may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// An image of the user's (any format; [`crate::data::MAX_IMAGE_BYTES`]).
    Image,
    /// A network's weights (`.bpk`): Koch's network takes 156 MB.
    Weights,
    /// A JSON configuration beside weights or in a training folder.
    Config,
    /// A training history (`history.csv`).
    History,
    /// A matcher's saved gallery.
    Gallery,
    /// A training checkpoint (weights, optimiser state and run state).
    Checkpoint,
}

impl FileKind {
    /// The most bytes a file of this kind may have.
    pub(crate) fn limit(self) -> u64 {
        match self {
            FileKind::Image => crate::data::MAX_IMAGE_BYTES,
            FileKind::Weights => 1 << 30,
            FileKind::Config => 1 << 20,
            FileKind::History => 64 << 20,
            FileKind::Gallery => 1 << 30,
            FileKind::Checkpoint => 4 << 30,
        }
    }

    fn name(self) -> &'static str {
        match self {
            FileKind::Image => "an image",
            FileKind::Weights => "a weights file",
            FileKind::Config => "a configuration",
            FileKind::History => "a training history",
            FileKind::Gallery => "a gallery file",
            FileKind::Checkpoint => "a checkpoint",
        }
    }
}

/// The bytes of `path`, refused past the limit of `kind` whether it is a regular file, a
/// device, a pipe or a link to one of those.
///
/// # Errors
/// [`Error::Io`] naming the file when it cannot be opened or read;
/// [`Error::TooLarge`] naming it, the limit and the kind when it has more bytes.
pub(crate) fn read_bounded(path: &Path, kind: FileKind) -> Result<Vec<u8>> {
    let bytes = read_up_to(path, kind.limit())?;
    check_length(path, kind, bytes.len() as u64)?;
    Ok(bytes)
}

/// Refuses `length` bytes of `path` past the limit of `kind`.
///
/// # Errors
/// [`Error::TooLarge`] naming the file, the limit and the kind.
pub(crate) fn check_length(path: &Path, kind: FileKind, length: u64) -> Result<()> {
    if length > kind.limit() {
        return Err(Error::TooLarge {
            path: path.into(),
            what: kind.name(),
            limit: kind.limit(),
        });
    }
    Ok(())
}

/// At most `limit + 1` bytes of `path`: one more than the limit tells the caller, who
/// words the refusal for its kind of file, that the file is too large.
///
/// # Errors
/// [`Error::Io`] naming the file when it cannot be opened or read.
pub(crate) fn read_up_to(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // The size of a regular file sizes the buffer; a device or pipe says 0.
    let hint = file.metadata().map(|m| m.len()).unwrap_or(0).min(limit);
    let mut bytes = Vec::with_capacity(hint as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

/// [`read_bounded`] as UTF-8 text.
///
/// # Errors
/// As [`read_bounded`], and [`Error::Checkpoint`] naming the file when it is not UTF-8.
pub(crate) fn read_text(path: &Path, kind: FileKind) -> Result<String> {
    String::from_utf8(read_bounded(path, kind)?)
        .map_err(|e| Error::checkpoint(path, format!("is not UTF-8 text: {e}")))
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_names_and_resource_forks_are_hidden() {
        for name in [".DS_Store", ".git", "__MACOSX", "._0001_01.png"] {
            assert!(is_hidden(name), "{name}");
        }
        for name in ["Latin", "0001_01.png", "run01", "MACOSX", "a.b"] {
            assert!(!is_hidden(name), "{name}");
        }
    }

    #[test]
    fn a_file_that_is_not_a_zip_is_named() {
        let shown = Path::new("runs/all_runs.zip");
        let message = open_zip(std::io::Cursor::new(b"PK but not a zip"), shown)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("runs/all_runs.zip") && message.contains("not a readable zip"),
            "{message}"
        );
    }

    #[test]
    fn a_file_within_its_limit_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, b"{\"a\": 1}").unwrap();
        assert_eq!(
            read_bounded(&path, FileKind::Config).unwrap(),
            b"{\"a\": 1}"
        );
        assert_eq!(read_text(&path, FileKind::Config).unwrap(), "{\"a\": 1}");
    }

    #[test]
    fn one_byte_past_the_limit_is_refused_with_the_file_and_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.json");
        let limit = FileKind::Config.limit() as usize;
        std::fs::write(&path, vec![b' '; limit]).unwrap();
        assert_eq!(read_bounded(&path, FileKind::Config).unwrap().len(), limit);
        std::fs::write(&path, vec![b' '; limit + 1]).unwrap();
        let err = read_bounded(&path, FileKind::Config).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::TooLarge { .. }), "{message}");
        assert!(
            message.contains("big.json")
                && message.contains("1048576")
                && message.contains("a configuration"),
            "{message}"
        );
    }

    /// A device reports a size of 0 and never ends: the bound still holds.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_endless_device_is_refused_at_the_limit() {
        let err = read_bounded(Path::new("/dev/zero"), FileKind::Config).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooLarge {
                    limit: 1_048_576,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let err = read_bounded(Path::new("no/such/weights.bpk"), FileKind::Weights).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(err.to_string().contains("no/such/weights.bpk"), "{err}");
    }
}
