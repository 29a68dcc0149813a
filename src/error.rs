//! The crate's one error type.
//!
//! Every fallible function returns [`Result<T>`]. Variants carry the file, value or name
//! that caused them, so that a message alone tells a user what to fix.

use std::path::PathBuf;

/// Everything that can go wrong in `siamese`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// An image could not be decoded or does not have the expected form.
    #[error("image {}: {reason}", path.display())]
    Image {
        /// The image file (or `archive.zip/entry.png` for an image inside a zip).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A data set (zip or folder) does not follow the expected layout.
    #[error("{}: {reason}", path.display())]
    Layout {
        /// The archive, folder or entry at fault.
        path: PathBuf,
        /// What was expected.
        reason: String,
    },

    /// No Omniglot data folder where the data-folder rule looks (see
    /// [`Omniglot::find`](crate::data::Omniglot::find)).
    #[error(
        "no Omniglot data folder: {looked}; fetch the data set with \
         `cargo run --release --example omniglot_20way -- --download` (or \
         `siamese::data::download`), or pass the folder holding images_background.zip \
         and images_evaluation.zip with --data or OMNIGLOT_DIR"
    )]
    NoData {
        /// Where it looked, and what it found there.
        looked: String,
    },

    /// Downloading a file failed: no connection, an HTTP error, a body cut short, or a file
    /// that fails its check. Nothing is left behind that looks complete.
    #[error("download of {url} failed: {reason}")]
    Download {
        /// The address asked for.
        url: String,
        /// What went wrong.
        reason: String,
    },

    /// A file has more bytes than its kind may have (a device, a pipe, or a file that is
    /// not what it claims to be): it is refused before it can fill the memory.
    #[error("{}: more than {limit} bytes, the most {what} may have", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// What it was read as ("a weights file", "an image", ...).
        what: &'static str,
        /// The most bytes accepted.
        limit: u64,
    },

    /// A named item (alphabet, character, drawer, label) does not exist.
    #[error("{kind} {name:?} not found{}", available_hint(available))]
    NotFound {
        /// What was looked for: "alphabet", "drawer", ...
        kind: &'static str,
        /// The name or value asked for.
        name: String,
        /// What exists instead (may be empty).
        available: Vec<String>,
    },

    /// An argument is out of range or inconsistent with the data or the model.
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// The argument (for example `n_way`).
        name: &'static str,
        /// Why it is invalid, with the offending value.
        reason: String,
    },

    /// A backend was asked for that does not exist or was not compiled in.
    #[error("backend {name:?} is not available: {reason}")]
    Backend {
        /// The name asked for.
        name: String,
        /// Why, including the backends that are available.
        reason: String,
    },

    /// A model, checkpoint or config file is missing, truncated, corrupt or does not match.
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// Training diverged or could not go on.
    #[error("training stopped at epoch {epoch}, step {step}: {reason}")]
    Training {
        /// Epoch (0-based) at which it happened.
        epoch: usize,
        /// Step within the epoch (0-based).
        step: usize,
        /// What happened.
        reason: String,
    },
}

fn available_hint(available: &[String]) -> String {
    match available.len() {
        0 => String::new(),
        n if n <= 12 => format!(" (available: {})", available.join(", ")),
        n => format!(
            " (available: {}, ... {n} in all)",
            available[..12].join(", ")
        ),
    }
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::InvalidArgument`].
    pub fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            name,
            reason: reason.into(),
        }
    }

    /// An [`Error::Checkpoint`] for `path`.
    pub fn checkpoint(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        Error::Checkpoint {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_and_value() {
        let err = Error::checkpoint("weights/model.bpk", "truncated");
        assert_eq!(err.to_string(), "checkpoint weights/model.bpk: truncated");

        let err = Error::NotFound {
            kind: "alphabet",
            name: "Klingon".into(),
            available: vec!["Latin".into(), "Greek".into()],
        };
        assert_eq!(
            err.to_string(),
            "alphabet \"Klingon\" not found (available: Latin, Greek)"
        );

        let many: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        let err = Error::NotFound {
            kind: "drawer",
            name: "99".into(),
            available: many,
        };
        assert!(err.to_string().ends_with("... 20 in all)"), "{err}");
    }
}
