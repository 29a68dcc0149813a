//! A zip or an extracted folder, read alike: the Omniglot loader and the official runs
//! list entries and read files through [`Archive`] without knowing which they have, and
//! every listing (the matcher's folders too) skips the same hidden names.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use zip::ZipArchive;

use super::bounded::{FileKind, check_length, read_bounded};
use crate::{Error, Result};

/// Whether a file or folder called `name` is skipped by every reader of a folder or a zip
/// (the Omniglot loader, the official runs, the matcher's folders): hidden names (`.name`,
/// which also covers `.` and `..`) and the `__MACOSX` resource forks that archivers add.
pub(crate) fn is_hidden(name: &str) -> bool {
    name.starts_with('.') || name == "__MACOSX"
}

/// The entries of folder `dir` that are not hidden, sorted by name, with whether each is a
/// folder (a link counts as what it points to).
///
/// # Errors
/// [`Error::Io`] naming the folder or the entry that cannot be read.
pub(crate) fn list_folder(dir: &Path) -> Result<Vec<(PathBuf, bool)>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if is_hidden(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        let is_dir = fs::metadata(&path)
            .map_err(|e| Error::io(&path, e))?
            .is_dir();
        entries.push((path, is_dir));
    }
    entries.sort();
    Ok(entries)
}

/// One file or folder of an [`Archive`], named by its path inside it with `/` between
/// the components (`images_background/Latin/character01/0690_01.png`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry {
    /// The path inside the archive, without a leading or trailing `/`.
    pub(crate) name: String,
    /// Whether it is a folder.
    pub(crate) is_dir: bool,
}

impl Entry {
    /// The components of the name.
    pub(crate) fn parts(&self) -> Vec<&str> {
        self.name.split('/').collect()
    }
}

/// A zip file or a folder, listed and read alike.
///
/// A zip's names are used as they are in its directory; the folders its files imply are
/// listed too, so a zip and its extracted folder list the same entries. Reads are bounded
/// by a [`FileKind`], whatever the zip's headers claim.
pub(crate) struct Archive<'a> {
    path: PathBuf,
    zip: Option<Zip<'a>>,
}

/// A zip's reader and the index of each of its files by entry name.
struct Zip<'a> {
    archive: ZipArchive<Box<dyn ReadSeek + 'a>>,
    files: HashMap<String, usize>,
}

/// A zip file or bytes in memory.
trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

impl<'a> Archive<'a> {
    /// Opens `path`: a folder is read as it is, anything else as a zip.
    ///
    /// # Errors
    /// [`Error::Io`] naming `path` when it does not exist or cannot be read;
    /// [`Error::Layout`] naming it when it is neither a folder nor a readable zip.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let metadata = fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if metadata.is_dir() {
            return Ok(Self {
                path: path.to_path_buf(),
                zip: None,
            });
        }
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        Self::zip(BufReader::new(file), path.to_path_buf())
    }

    /// The zip read from `reader`, shown as `path` in errors.
    ///
    /// # Errors
    /// [`Error::Layout`] naming `path` when `reader` is not a readable zip or an entry's
    /// name is not UTF-8, and naming the entry when its name holds `..` or repeats an
    /// earlier entry's.
    pub(crate) fn zip(reader: impl Read + Seek + 'a, path: PathBuf) -> Result<Self> {
        let reader: Box<dyn ReadSeek + 'a> = Box::new(reader);
        let archive = ZipArchive::new(reader).map_err(|e| Error::Layout {
            path: path.clone(),
            reason: format!("not a readable zip: {e}"),
        })?;
        let mut files = HashMap::new();
        for (index, name) in archive.file_names().enumerate() {
            let name = name.map_err(|e| Error::Layout {
                path: path.clone(),
                reason: format!("entry {index} has a bad name: {e}"),
            })?;
            let layout = |reason: String| Error::Layout {
                path: path.join(name.as_ref()),
                reason,
            };
            // A zip made to climb out of the folder it is extracted to, or to hide one
            // file behind another of the same name, is not a data set.
            if name.split(['/', '\\']).any(|part| part == "..") {
                return Err(layout(format!(
                    "entry {index} climbs out of the archive (a `..` in its name)"
                )));
            }
            if !name.ends_with('/') && files.insert(normalize(&name), index).is_some() {
                return Err(layout(format!(
                    "entry {index} has the name of an earlier entry: which one is meant?"
                )));
            }
        }
        Ok(Self {
            path,
            zip: Some(Zip { archive, files }),
        })
    }

    /// The zip file or the folder.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is a zip rather than a folder.
    pub(crate) fn is_zip(&self) -> bool {
        self.zip.is_some()
    }

    /// How the entry `name` is shown in errors: the archive's path followed by the name
    /// (`images_background.zip/images_background/Latin`).
    pub(crate) fn shown(&self, name: &str) -> PathBuf {
        if name.is_empty() {
            self.path.clone()
        } else {
            self.path.join(name)
        }
    }

    /// Every file and folder at most `depth` components deep, sorted by name. Hidden
    /// entries ([`is_hidden`]) are skipped with all they hold. A folder `depth` deep is
    /// listed but not entered, so anything deeper shows as that folder.
    ///
    /// # Errors
    /// [`Error::Io`] naming a folder that cannot be listed; [`Error::Layout`] naming an
    /// entry whose name is not UTF-8.
    pub(crate) fn entries(&self, depth: usize) -> Result<Vec<Entry>> {
        let mut entries = BTreeMap::new();
        match &self.zip {
            Some(zip) => {
                for name in zip.archive.file_names().filter_map(|name| name.ok()) {
                    let is_dir = name.ends_with('/');
                    let name = normalize(&name);
                    let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
                    if parts.iter().any(|part| is_hidden(part)) {
                        continue;
                    }
                    // Each folder on the way, then the entry itself if it is not too deep.
                    let shallow = parts.len().min(depth);
                    for end in 1..=shallow {
                        let is_dir = end < parts.len() || is_dir;
                        let entry = entries.entry(parts[..end].join("/")).or_insert(is_dir);
                        *entry |= is_dir;
                    }
                }
            }
            None => self.walk(&self.path, "", depth, &mut entries)?,
        }
        Ok(entries
            .into_iter()
            .map(|(name, is_dir)| Entry { name, is_dir })
            .collect())
    }

    /// Adds the entries of folder `dir` (named `prefix` inside the archive) to `entries`,
    /// `depth` levels down.
    fn walk(
        &self,
        dir: &Path,
        prefix: &str,
        depth: usize,
        entries: &mut BTreeMap<String, bool>,
    ) -> Result<()> {
        if depth == 0 {
            return Ok(());
        }
        for (path, is_dir) in list_folder(dir)? {
            let file_name = path.file_name().expect("a listed entry has a name");
            let file_name = file_name.to_str().ok_or_else(|| Error::Layout {
                path: path.clone(),
                reason: "the name is not valid UTF-8".into(),
            })?;
            let name = if prefix.is_empty() {
                file_name.to_string()
            } else {
                format!("{prefix}/{file_name}")
            };
            if is_dir {
                self.walk(&path, &name, depth - 1, entries)?;
            }
            entries.insert(name, is_dir);
        }
        Ok(())
    }

    /// The bytes of the file `name` (as [`Archive::entries`] names it), or `None` when no
    /// such file is there.
    ///
    /// # Errors
    /// [`Error::TooLarge`] naming the entry when it has more bytes than `kind` allows;
    /// [`Error::Io`] or [`Error::Layout`] naming it when it cannot be read.
    pub(crate) fn read(&mut self, name: &str, kind: FileKind) -> Result<Option<Vec<u8>>> {
        let shown = self.shown(name);
        let bytes = match &mut self.zip {
            Some(zip) => {
                let Some(&index) = zip.files.get(name) else {
                    return Ok(None);
                };
                let entry = zip.archive.by_index(index).map_err(|e| Error::Layout {
                    path: shown.clone(),
                    reason: format!("unreadable zip entry: {e}"),
                })?;
                // The header's size is only a hint: the read stops one byte past the limit.
                check_length(&shown, kind, entry.size())?;
                let mut bytes = Vec::with_capacity(entry.size() as usize);
                entry
                    .take(kind.limit() + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| Error::Layout {
                        path: shown.clone(),
                        reason: format!("cannot be read from the zip: {e}"),
                    })?;
                bytes
            }
            None => {
                let path = self.path.join(name);
                if !path.exists() {
                    return Ok(None);
                }
                return read_bounded(&path, kind).map(Some);
            }
        };
        check_length(&shown, kind, bytes.len() as u64)?;
        Ok(Some(bytes))
    }

    /// `f` applied, on all cores, to each file of `names` with the path that shows it and
    /// its bytes. A folder's files are read on all cores too; a zip's are read in order
    /// first, as its entries share one reader. The first failure in `names` order wins.
    ///
    /// # Errors
    /// As [`Archive::read`], [`Error::Layout`] naming a file that is not there, and the
    /// errors of `f`.
    pub(crate) fn map_files<T: Send>(
        &mut self,
        names: &[String],
        kind: FileKind,
        f: impl Fn(PathBuf, Vec<u8>) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        let missing = |shown: PathBuf| Error::Layout {
            path: shown,
            reason: "listed, but not there when read".into(),
        };
        let results: Vec<Result<T>> = if self.is_zip() {
            let mut files = Vec::with_capacity(names.len());
            for name in names {
                let bytes = self.read(name, kind)?;
                files.push((self.shown(name), bytes));
            }
            files
                .into_par_iter()
                .map(|(shown, bytes)| f(shown.clone(), bytes.ok_or_else(|| missing(shown))?))
                .collect()
        } else {
            let root = &self.path;
            names
                .par_iter()
                .map(|name| {
                    let shown = root.join(name);
                    let bytes = read_bounded(&shown, kind)?;
                    f(shown, bytes)
                })
                .collect()
        };
        results.into_iter().collect()
    }
}

/// A zip entry's name without empty or `.` components and without a trailing `/`.
fn normalize(name: &str) -> String {
    name.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use zip::write::SimpleFileOptions;

    use super::*;

    const SMALL: FileKind = FileKind::new("a small file", 8);

    /// A zip of `files` (names ending in `/` are folders), in memory.
    fn zip_of(files: &[(&str, &[u8])]) -> Archive<'static> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in files {
            if let Some(folder) = name.strip_suffix('/') {
                zip.add_directory(folder, SimpleFileOptions::default())
                    .unwrap();
            } else {
                zip.start_file(*name, SimpleFileOptions::default()).unwrap();
                zip.write_all(bytes).unwrap();
            }
        }
        let bytes = zip.finish().unwrap().into_inner();
        Archive::zip(Cursor::new(bytes), PathBuf::from("test.zip")).unwrap()
    }

    /// The same files written into `dir` (folders made as needed).
    fn folder_of(dir: &Path, files: &[(&str, &[u8])]) -> Archive<'static> {
        for (name, bytes) in files {
            let path = dir.join(name);
            if name.ends_with('/') {
                fs::create_dir_all(&path).unwrap();
            } else {
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, bytes).unwrap();
            }
        }
        Archive::open(dir).unwrap()
    }

    const FILES: &[(&str, &[u8])] = &[
        ("top/b/1.png", b"one"),
        ("top/a/", b""),
        ("top/a/deep/deeper/x.png", b"x"),
        ("top/.hidden/2.png", b"two"),
        ("top/a/._resource", b"fork"),
        ("__MACOSX/top/a/3.png", b"three"),
        ("top/b/2.png", b"second"),
    ];

    fn names(entries: &[Entry]) -> Vec<(&str, bool)> {
        entries
            .iter()
            .map(|e| (e.name.as_str(), e.is_dir))
            .collect()
    }

    /// A zip lists the folders its files imply, as its extracted folder does; hidden
    /// entries and all they hold are skipped; a folder at the depth is not entered.
    #[test]
    fn a_zip_and_its_extracted_folder_list_the_same_entries() {
        let dir = tempfile::tempdir().unwrap();
        let folder = folder_of(dir.path(), FILES);
        let zip = zip_of(FILES);
        let expected = [
            ("top", true),
            ("top/a", true),
            ("top/a/deep", true),
            ("top/b", true),
            ("top/b/1.png", false),
            ("top/b/2.png", false),
        ];
        assert_eq!(names(&zip.entries(3).unwrap()), expected);
        assert_eq!(names(&folder.entries(3).unwrap()), expected);
        assert_eq!(
            names(&zip.entries(1).unwrap()),
            names(&folder.entries(1).unwrap())
        );
        assert_eq!(names(&zip.entries(1).unwrap()), [("top", true)]);
        assert_eq!(
            names(&zip.entries(9).unwrap()),
            names(&folder.entries(9).unwrap())
        );
        assert!(zip.is_zip() && !folder.is_zip());
    }

    #[test]
    fn files_are_read_alike_and_missing_ones_are_none() {
        let dir = tempfile::tempdir().unwrap();
        for mut archive in [folder_of(dir.path(), FILES), zip_of(FILES)] {
            assert_eq!(
                archive.read("top/b/2.png", SMALL).unwrap().as_deref(),
                Some(&b"second"[..])
            );
            assert_eq!(archive.read("top/b/9.png", SMALL).unwrap(), None);
            let names = ["top/b/1.png".to_string(), "top/b/2.png".to_string()];
            let lengths = archive
                .map_files(&names, SMALL, |shown, bytes| {
                    Ok((shown.ends_with("2.png"), bytes.len()))
                })
                .unwrap();
            assert_eq!(lengths, [(false, 3), (true, 6)]);
            let err = archive
                .map_files(&["top/b/9.png".to_string()], SMALL, |_, b| Ok(b))
                .unwrap_err();
            assert!(err.to_string().contains("top/b/9.png"), "{err}");
        }
    }

    /// The bound holds for a folder's file and for a zip entry, whatever its header says.
    #[test]
    fn a_file_past_its_kind_limit_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let files: &[(&str, &[u8])] = &[("big.bin", b"nine bytes"), ("ok.bin", b"eight b.")];
        for mut archive in [folder_of(dir.path(), files), zip_of(files)] {
            assert_eq!(archive.read("ok.bin", SMALL).unwrap().unwrap().len(), 8);
            let err = archive.read("big.bin", SMALL).unwrap_err();
            assert!(
                matches!(err, Error::TooLarge { limit: 8, .. })
                    && err.to_string().contains("big.bin"),
                "{err}"
            );
            let err = archive
                .map_files(&["big.bin".to_string()], SMALL, |_, b| Ok(b))
                .unwrap_err();
            assert!(matches!(err, Error::TooLarge { .. }), "{err}");
        }
    }

    #[test]
    fn hidden_names_and_resource_forks_are_hidden() {
        for name in [".DS_Store", ".git", "__MACOSX", "._0001_01.png", ".", ".."] {
            assert!(is_hidden(name), "{name}");
        }
        for name in ["Latin", "0001_01.png", "run01", "MACOSX", "a.b"] {
            assert!(!is_hidden(name), "{name}");
        }
    }

    #[test]
    fn entries_that_climb_out_or_repeat_a_name_are_named_errors() {
        let zip = |names: &[&str]| {
            let mut bytes = Vec::new();
            let mut writer = zip::ZipWriter::new(Cursor::new(&mut bytes));
            for name in names {
                writer
                    .start_file(*name, SimpleFileOptions::default())
                    .unwrap();
                writer.write_all(b"x").unwrap();
            }
            writer.finish().unwrap();
            Archive::zip(Cursor::new(bytes), PathBuf::from("set.zip")).map(|_| ())
        };
        assert!(zip(&["a/b.png", "a/c.png"]).is_ok());
        for (names, needle) in [
            (&["a/../../evil.png"][..], "climbs out"),
            (&["a\\..\\evil.png"][..], "climbs out"),
            (&["a/b.png", "a//b.png"][..], "earlier entry"),
            (&["a/b.png", "./a/b.png"][..], "earlier entry"),
        ] {
            let err = zip(names).unwrap_err();
            assert!(matches!(err, Error::Layout { .. }), "{err:?}");
            let message = err.to_string();
            assert!(
                message.contains("set.zip") && message.contains(needle),
                "{message}"
            );
        }
    }

    #[test]
    fn a_file_that_is_not_a_zip_is_named() {
        let err = Archive::zip(
            Cursor::new(b"PK but not a zip"),
            PathBuf::from("runs/all_runs.zip"),
        )
        .err()
        .unwrap();
        let message = err.to_string();
        assert!(
            message.contains("runs/all_runs.zip") && message.contains("not a readable zip"),
            "{message}"
        );
        let missing = Archive::open(Path::new("no/such/all_runs.zip"))
            .err()
            .unwrap();
        assert!(matches!(missing, Error::Io { .. }), "{missing}");
    }
}
