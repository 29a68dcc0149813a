//! Finding the images of a gallery folder and of a query folder.

use std::path::{Path, PathBuf};

use image::ImageFormat;

use crate::{Error, Result};

/// The image files directly inside `dir`, sorted by name: those whose extension names a
/// format the `image` crate reads (`.png`, `.jpg`, `.bmp`, ...). Hidden files (`.name`,
/// `__MACOSX`), subfolders and other files are skipped.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// image::GrayImage::new(8, 8).save(dir.path().join("b.png")).unwrap();
/// image::GrayImage::new(8, 8).save(dir.path().join("a.jpg")).unwrap();
/// std::fs::write(dir.path().join("notes.txt"), "skipped").unwrap();
/// let files = siamese::matcher::image_files(dir.path())?;
/// assert_eq!(files, [dir.path().join("a.jpg"), dir.path().join("b.png")]);
///
/// std::fs::remove_file(dir.path().join("a.jpg")).unwrap();
/// std::fs::remove_file(dir.path().join("b.png")).unwrap();
/// assert!(siamese::matcher::image_files(dir.path()).is_err()); // nothing to match
/// # Ok::<(), siamese::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] when `dir` cannot be listed, [`Error::Layout`] naming it when it holds
/// no image file.
pub fn image_files(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    let files: Vec<PathBuf> = crate::io::list_folder(dir)?
        .into_iter()
        .filter(|(path, is_dir)| !is_dir && is_image_name(path))
        .map(|(path, _)| path)
        .collect();
    if files.is_empty() {
        return Err(Error::Layout {
            path: dir.to_path_buf(),
            reason: "holds no image file (.png, .jpg, .bmp, ...)".into(),
        });
    }
    Ok(files)
}

/// The class folders of a gallery folder: its subfolders (hidden ones and `__MACOSX`
/// skipped), sorted, each with its label (the folder's name) and its image files.
///
/// # Errors
/// [`Error::Io`] when a folder cannot be listed; [`Error::Layout`] when `dir` has no
/// is a file or has no subfolder, a subfolder's name is not UTF-8, or a subfolder holds
/// no image file.
pub(super) fn class_folders(dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>> {
    if dir.is_file() {
        return Err(Error::Layout {
            path: dir.to_path_buf(),
            reason: "is a file: a gallery is a folder holding one folder of images per class"
                .into(),
        });
    }
    let folders: Vec<PathBuf> = crate::io::list_folder(dir)?
        .into_iter()
        .filter_map(|(path, is_dir)| is_dir.then_some(path))
        .collect();
    if folders.is_empty() {
        return Err(Error::Layout {
            path: dir.to_path_buf(),
            reason: "has no class subfolders: a gallery holds one folder of images per class"
                .into(),
        });
    }
    folders
        .into_iter()
        .map(|folder| {
            // A label is text: a name that is not UTF-8 is refused, never made lossy (two
            // such folders would merge into one class `\u{FFFD}`).
            let label = folder
                .file_name()
                .expect("a listed entry has a name")
                .to_str()
                .ok_or_else(|| Error::Layout {
                    path: folder.clone(),
                    reason: "the class folder's name is not UTF-8; a class label must be text"
                        .into(),
                })?
                .to_string();
            Ok((label, image_files(&folder)?))
        })
        .collect()
}

/// Whether the extension names a format the `image` crate reads.
fn is_image_name(path: &Path) -> bool {
    ImageFormat::from_path(path).is_ok_and(|format| format.reading_enabled())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_folders_are_sorted_with_their_images() {
        let dir = tempfile::tempdir().unwrap();
        for (class, files) in [("beta", &["2.png", "1.bmp"][..]), ("alpha", &["x.png"])] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
            for file in files {
                image::GrayImage::new(4, 4)
                    .save(dir.path().join(class).join(file))
                    .unwrap();
            }
        }
        // Hidden folders and macOS resource forks (left by unzipping a Mac's zip) are not
        // classes, even with images in them.
        for hidden in [".cache", "__MACOSX"] {
            std::fs::create_dir(dir.path().join(hidden)).unwrap();
            image::GrayImage::new(4, 4)
                .save(dir.path().join(hidden).join("x.png"))
                .unwrap();
        }
        std::fs::write(dir.path().join("README"), "not a class").unwrap();
        let classes = class_folders(dir.path()).unwrap();
        let labels: Vec<&str> = classes.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["alpha", "beta"]);
        assert_eq!(
            classes[1].1,
            [dir.path().join("beta/1.bmp"), dir.path().join("beta/2.png")]
        );
    }

    #[test]
    fn empty_galleries_and_classes_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = class_folders(dir.path()).unwrap_err();
        assert!(err.to_string().contains("no class subfolders"), "{err}");
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let err = class_folders(dir.path()).unwrap_err();
        assert!(matches!(err, Error::Layout { .. }), "{err:?}");
        assert!(err.to_string().contains("empty"), "{err}");
        let err = class_folders(&dir.path().join("absent")).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
    }

    /// Folders `\xff` and `\xfe` used to become one class `\u{FFFD}`.
    #[cfg(unix)]
    #[test]
    fn a_class_folder_whose_name_is_not_utf8_is_named_not_merged() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        for name in [b"\xff".as_slice(), b"\xfe".as_slice()] {
            let folder = dir.path().join(std::ffi::OsStr::from_bytes(name));
            std::fs::create_dir(&folder).unwrap();
            image::GrayImage::new(8, 8)
                .save(folder.join("a.png"))
                .unwrap();
        }
        let err = class_folders(dir.path()).unwrap_err();
        assert!(matches!(err, Error::Layout { .. }), "{err:?}");
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }
}
