//! The crate's file access, below every other module: reading a user's files with a bound
//! on their size, reading a zip and its extracted folder alike, and writing the crate's
//! own files atomically.

mod archive;
mod bounded;
mod write;

pub(crate) use archive::{Archive, list_folder};
pub(crate) use bounded::{FileKind, open_regular, read_bounded, read_text};
pub(crate) use write::write_atomically;
