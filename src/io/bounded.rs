//! Reading a file that a user names, with a bound on the bytes its kind may have.
//!
//! Only regular files are opened ([`open_regular`]): a pipe blocks `open` until a writer
//! comes, and a device (`/dev/zero`) never ends, so both are refused by name from their
//! metadata, before anything is opened or read. A regular file's length is its size: one
//! past its kind's limit is refused from the metadata too. [`read_bounded`] still stops one
//! byte past the limit, should the file grow while it is read.
//! [`load_image`](crate::data::load_image) opens its file the same way and lets the
//! decoder read it as it goes, without a copy in memory.

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
    let bytes = read_up_to(path, kind)?;
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
fn read_up_to(path: &Path, kind: FileKind) -> Result<Vec<u8>> {
    let limit = kind.limit();
    let (file, length) = open_regular(path, kind)?;
    let mut bytes = Vec::with_capacity(length.min(limit) as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

/// Opens `path` for reading if it is a regular file (a link to one included) of at most the
/// limit of `kind`, judged from its metadata before it is opened; returns the file and its
/// length.
///
/// # Errors
/// [`Error::Io`] naming the file when it is missing, cannot be opened, or is not a regular
/// file (a folder, a pipe, a socket, a device); [`Error::TooLarge`] when it is longer than
/// `kind` allows.
pub(crate) fn open_regular(path: &Path, kind: FileKind) -> Result<(File, u64)> {
    let metadata = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !metadata.is_file() {
        let what = if metadata.is_dir() {
            "a folder"
        } else {
            "not a regular file (a pipe, a socket or a device)"
        };
        return Err(Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("is {what}, not {}: refused without reading it", kind.name),
            ),
        ));
    }
    check_length(path, kind, metadata.len())?;
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    Ok((file, metadata.len()))
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

    /// A device reports a size of 0 and never ends: it is refused before it is read.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_endless_device_is_refused_without_reading() {
        let err = read_bounded(Path::new("/dev/zero"), CONFIG).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(
            err.to_string().contains("/dev/zero") && err.to_string().contains("not a regular file"),
            "{err}"
        );
        let folder = tempfile::tempdir().unwrap();
        let err = read_bounded(folder.path(), CONFIG).unwrap_err().to_string();
        assert!(err.contains("is a folder"), "{err}");
    }

    /// A named pipe used to block `open` forever, waiting for a writer.
    #[cfg(unix)]
    #[test]
    fn a_named_pipe_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let pipe = dir.path().join("query.png");
        let made = std::process::Command::new("mkfifo")
            .arg(&pipe)
            .status()
            .unwrap();
        assert!(made.success());
        let (sender, receiver) = std::sync::mpsc::channel();
        let path = pipe.clone();
        std::thread::spawn(move || sender.send(read_bounded(&path, CONFIG).map(|_| ())));
        let result = receiver
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("reading a pipe must not wait for a writer");
        let err = result.unwrap_err().to_string();
        assert!(
            err.contains("query.png") && err.contains("not a regular file"),
            "{err}"
        );
    }

    /// A sparse file far past the limit is refused from its length, not read up to it.
    #[test]
    fn a_file_past_the_limit_is_refused_from_its_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.bpk");
        std::fs::File::create(&path)
            .unwrap()
            .set_len(1 << 40)
            .unwrap();
        let err = read_bounded(&path, CONFIG).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let err = read_bounded(Path::new("no/such/weights.bpk"), CONFIG).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(err.to_string().contains("no/such/weights.bpk"), "{err}");
    }
}
