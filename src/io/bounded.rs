//! Reading a file that a user names, with a bound on the bytes its kind may have.
//!
//! A size from `metadata()` is no bound: it is 0 for a device or a pipe, and a link can
//! point at `/dev/zero`. Every read of a user-named file goes through [`read_bounded`],
//! which stops one byte past the limit of its [`FileKind`] whatever the file is. The one
//! exception is an image that is a regular file: its length is its size, so
//! [`load_image`](crate::data::load_image) checks that and lets the decoder read the file
//! as it goes, without a copy in memory.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// What a file is read as, and so the most bytes it may have. Each module declares the
/// kinds it reads beside the code that reads them (`model::siamese::WEIGHTS`, ...), so
/// this floor knows nothing of images or weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileKind {
    /// What the file is, as errors say it: "a weights file".
    name: &'static str,
    /// The most bytes accepted.
    limit: u64,
}

impl FileKind {
    /// A kind called `name` ("a gallery file") of at most `limit` bytes.
    pub(crate) const fn new(name: &'static str, limit: u64) -> Self {
        Self { name, limit }
    }

    /// The most bytes a file of this kind may have.
    pub(crate) const fn limit(self) -> u64 {
        self.limit
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
            what: kind.name,
            limit: kind.limit,
        });
    }
    Ok(())
}

/// At most `limit + 1` bytes of `path`: one more than the limit tells the caller, who
/// words the refusal for its kind of file, that the file is too large.
///
/// # Errors
/// [`Error::Io`] naming the file when it cannot be opened or read.
fn read_up_to(path: &Path, limit: u64) -> Result<Vec<u8>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: FileKind = FileKind::new("a configuration", 1 << 20);

    #[test]
    fn a_file_within_its_limit_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, b"{\"a\": 1}").unwrap();
        assert_eq!(read_bounded(&path, CONFIG).unwrap(), b"{\"a\": 1}");
        assert_eq!(read_text(&path, CONFIG).unwrap(), "{\"a\": 1}");
    }

    #[test]
    fn one_byte_past_the_limit_is_refused_with_the_file_and_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.json");
        let limit = CONFIG.limit() as usize;
        std::fs::write(&path, vec![b' '; limit]).unwrap();
        assert_eq!(read_bounded(&path, CONFIG).unwrap().len(), limit);
        std::fs::write(&path, vec![b' '; limit + 1]).unwrap();
        let err = read_bounded(&path, CONFIG).unwrap_err();
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
        let err = read_bounded(Path::new("/dev/zero"), CONFIG).unwrap_err();
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
        let err = read_bounded(Path::new("no/such/weights.bpk"), CONFIG).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(err.to_string().contains("no/such/weights.bpk"), "{err}");
    }
}
