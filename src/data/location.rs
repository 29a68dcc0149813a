//! Where the Omniglot data is: one rule for every example, test and bench.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::loader::Omniglot;
use crate::{Error, Result};

/// The environment variable that names the Omniglot data folder.
pub const OMNIGLOT_DIR: &str = "OMNIGLOT_DIR";

/// The per-user folder that [`download`](crate::data::download()) fills by default:
/// `siamese/omniglot` in the platform's cache folder (`~/.cache` on Linux,
/// `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows). `None` when the platform has
/// no home folder.
pub fn cache_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|cache| cache.join("siamese").join("omniglot"))
}

impl Omniglot {
    /// Opens the data folder by the crate's one rule, which every example, test and bench
    /// follows: `folder` (a `--data` flag) when given, then `$OMNIGLOT_DIR` when set, then
    /// the [`cache_dir`] that [`download`](crate::data::download()) fills, when it exists.
    /// A folder named by the flag or the variable must exist: the rule never falls back
    /// past a name the user gave.
    ///
    /// ```no_run
    /// use siamese::data::Omniglot;
    ///
    /// let omniglot = Omniglot::find(None)?; // $OMNIGLOT_DIR, or the download cache
    /// println!("{}", omniglot.root().display());
    /// # Ok::<(), siamese::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NoData`] saying where it looked and how to download the data set.
    pub fn find(folder: Option<&Path>) -> Result<Omniglot> {
        let root = find_in(folder, std::env::var_os(OMNIGLOT_DIR), cache_dir())?;
        Omniglot::open(root)
    }
}

/// The rule of [`Omniglot::find`], apart from the process's environment.
fn find_in(
    folder: Option<&Path>,
    variable: Option<OsString>,
    cache: Option<PathBuf>,
) -> Result<PathBuf> {
    let must_exist = |dir: PathBuf, named_by: &str| {
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(Error::NoData {
                looked: format!("{named_by} names {}, which is not a folder", dir.display()),
            })
        }
    };
    if let Some(folder) = folder {
        return must_exist(folder.to_path_buf(), "--data");
    }
    if let Some(variable) = variable.filter(|v| !v.is_empty()) {
        return must_exist(PathBuf::from(variable), OMNIGLOT_DIR);
    }
    match cache {
        Some(cache) if cache.is_dir() => Ok(cache),
        Some(cache) => Err(Error::NoData {
            looked: format!(
                "no --data, {OMNIGLOT_DIR} is not set and the download cache {} does not exist",
                cache.display()
            ),
        }),
        None => Err(Error::NoData {
            looked: format!(
                "no --data, {OMNIGLOT_DIR} is not set and this platform has no cache folder"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_comes_first_then_the_variable_then_the_cache() {
        let flag = tempfile::tempdir().unwrap();
        let variable = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let var = || Some(variable.path().as_os_str().to_owned());
        let cached = || Some(cache.path().to_path_buf());

        assert_eq!(
            find_in(Some(flag.path()), var(), cached()).unwrap(),
            flag.path()
        );
        assert_eq!(find_in(None, var(), cached()).unwrap(), variable.path());
        assert_eq!(find_in(None, None, cached()).unwrap(), cache.path());
        // An empty variable counts as unset.
        assert_eq!(
            find_in(None, Some(OsString::new()), cached()).unwrap(),
            cache.path()
        );
    }

    #[test]
    fn a_named_folder_that_is_missing_is_an_error_not_a_fallback() {
        let cache = tempfile::tempdir().unwrap();
        let missing = cache.path().join("nowhere");
        let cached = || Some(cache.path().to_path_buf());

        let err = find_in(Some(&missing), None, cached()).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::NoData { .. }), "{err}");
        assert!(
            message.contains("--data names") && message.contains("nowhere"),
            "{message}"
        );
        assert!(message.contains("--download"), "{message}");

        let err = find_in(None, Some(missing.clone().into_os_string()), cached()).unwrap_err();
        assert!(err.to_string().contains("OMNIGLOT_DIR names"), "{err}");
    }

    #[test]
    fn no_data_anywhere_says_where_it_looked_and_how_to_download() {
        let cache = tempfile::tempdir().unwrap().path().join("siamese/omniglot");
        let message = find_in(None, None, Some(cache.clone()))
            .unwrap_err()
            .to_string();
        assert!(message.contains(&cache.display().to_string()), "{message}");
        assert!(message.contains("OMNIGLOT_DIR is not set"), "{message}");
        assert!(message.contains("--download"), "{message}");
        let message = find_in(None, None, None).unwrap_err().to_string();
        assert!(message.contains("no cache folder"), "{message}");
    }

    #[test]
    fn the_cache_folder_is_siamese_omniglot_in_the_platform_cache() {
        if let Some(dir) = cache_dir() {
            assert!(dir.ends_with("siamese/omniglot"), "{}", dir.display());
        }
    }
}
