//! Loading Omniglot from the official zips or their extracted folders.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use super::decode::{OMNIGLOT_PNG, decode_png};
use super::image_set::{ImageSet, PackedEntry, pack};
use crate::io::Archive;
use crate::{Error, Result};

/// The four image archives of Omniglot, by their official names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// `images_background`: 30 alphabets, 964 characters, 19,280 images.
    Background,
    /// `images_evaluation`: 20 alphabets, 659 characters, 13,180 images.
    Evaluation,
    /// `images_background_small1`: 5 background alphabets, 2,720 images.
    BackgroundSmall1,
    /// `images_background_small2`: 5 other background alphabets, 3,120 images.
    BackgroundSmall2,
}

impl Part {
    /// Every part.
    pub const ALL: [Part; 4] = [
        Part::Background,
        Part::Evaluation,
        Part::BackgroundSmall1,
        Part::BackgroundSmall2,
    ];

    /// The official name: the zip's stem and its top folder.
    pub fn name(self) -> &'static str {
        match self {
            Part::Background => "images_background",
            Part::Evaluation => "images_evaluation",
            Part::BackgroundSmall1 => "images_background_small1",
            Part::BackgroundSmall2 => "images_background_small2",
        }
    }

    /// Alphabets in the official part.
    pub fn alphabets(self) -> usize {
        match self {
            Part::Background => 30,
            Part::Evaluation => 20,
            Part::BackgroundSmall1 | Part::BackgroundSmall2 => 5,
        }
    }

    /// Characters in the official part.
    pub fn characters(self) -> usize {
        match self {
            Part::Background => 964,
            Part::Evaluation => 659,
            Part::BackgroundSmall1 => 136,
            Part::BackgroundSmall2 => 156,
        }
    }

    /// Images in the official part: 20 drawings of each character.
    pub fn images(self) -> usize {
        20 * self.characters()
    }

    /// Whether `set` has the official part's counts of alphabets, characters and images.
    ///
    /// # Errors
    /// [`Error::Layout`] naming `path` and the counts that differ.
    pub fn check(self, set: &ImageSet, path: &Path) -> Result<()> {
        let found = (set.num_groups(), set.num_classes(), set.len());
        let expected = (self.alphabets(), self.characters(), self.images());
        if found != expected {
            return Err(Error::Layout {
                path: path.into(),
                reason: format!(
                    "{self} has {} alphabets, {} characters and {} images, but this has \
                     {}, {} and {}",
                    expected.0, expected.1, expected.2, found.0, found.1, found.2
                ),
            });
        }
        Ok(())
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A folder holding the Omniglot zips (`images_background.zip`, ...) or their extracted
/// folders (`images_background/<Alphabet>/characterNN/<id>_<drawer>.png`); each part is
/// read from whichever is there, the zip first.
///
/// ```no_run
/// use siamese::data::{Omniglot, Part};
///
/// let omniglot = Omniglot::open("../shared/omniglot")?;
/// let background = omniglot.background()?; // about 1 s on 2 cores
/// assert_eq!(background.len(), 19_280);
/// let small = omniglot.load(Part::BackgroundSmall1)?;
/// println!("{small}"); // images_background_small1: 5 groups, 136 classes, 2720 images
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Omniglot {
    root: PathBuf,
}

impl Omniglot {
    /// Opens the folder `root`; nothing is read until a part is loaded.
    ///
    /// # Errors
    /// [`Error::Io`] when `root` does not exist; [`Error::Layout`] when it is not a folder.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        let metadata = fs::metadata(root).map_err(|e| Error::io(root, e))?;
        if !metadata.is_dir() {
            return Err(Error::Layout {
                path: root.into(),
                reason: "not a folder: Omniglot::open wants the folder holding \
                         images_background.zip etc. (ImageSet::open reads one zip)"
                    .into(),
            });
        }
        Ok(Self { root: root.into() })
    }

    /// The folder this was opened on.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `part` is: `<root>/<name>.zip`, or else the folder `<root>/<name>`.
    ///
    /// # Errors
    /// [`Error::Layout`] when neither exists.
    pub fn locate(&self, part: Part) -> Result<PathBuf> {
        let zip = self.root.join(format!("{}.zip", part.name()));
        if zip.is_file() {
            return Ok(zip);
        }
        let folder = self.root.join(part.name());
        if folder.is_dir() {
            return Ok(folder);
        }
        Err(Error::Layout {
            path: self.root.clone(),
            reason: format!(
                "neither {0}.zip nor a folder {0}/ is here; `cargo run --release --example \
                 omniglot_20way -- --download --data {1}` (or `siamese::data::download`) \
                 fetches it",
                part.name(),
                self.root.display()
            ),
        })
    }

    /// Loads `part` (see [`ImageSet::open`]).
    ///
    /// # Errors
    /// As [`Omniglot::locate`] and [`ImageSet::open`].
    pub fn load(&self, part: Part) -> Result<ImageSet> {
        ImageSet::open(self.locate(part)?)
    }

    /// Loads `images_background`.
    ///
    /// # Errors
    /// As [`Omniglot::load`].
    pub fn background(&self) -> Result<ImageSet> {
        self.load(Part::Background)
    }

    /// Loads `images_evaluation`.
    ///
    /// # Errors
    /// As [`Omniglot::load`].
    pub fn evaluation(&self) -> Result<ImageSet> {
        self.load(Part::Evaluation)
    }
}

impl ImageSet {
    /// Loads one zip (`images_background.zip`, whose entries must all lie under the top
    /// folder named like the zip, `images_background/`) or one extracted folder (holding the
    /// alphabet folders), detected from what `path` is.
    ///
    /// The layout is `<Alphabet>/<character>/<id>_<drawer>.png`. Hidden files (names
    /// starting with `.`) and `__MACOSX/` are skipped. Zip entries are read in order, then
    /// every PNG is decoded on all cores. Nothing is returned unless every image loads.
    ///
    /// ```
    /// # use std::io::Cursor;
    /// # use image::{GrayImage, ImageFormat, Luma};
    /// let dir = tempfile::tempdir().unwrap();
    /// let character = dir.path().join("toy/Latin/character01");
    /// std::fs::create_dir_all(&character).unwrap();
    /// for drawer in 1..=2 {
    ///     let page = GrayImage::from_pixel(105, 105, Luma([255]));
    ///     page.save(character.join(format!("0001_{drawer:02}.png"))).unwrap();
    /// }
    /// let set = siamese::data::ImageSet::open(dir.path().join("toy"))?;
    /// assert_eq!((set.name(), set.num_classes(), set.instances()), ("toy", 1, &[1, 2][..]));
    /// # Ok::<(), siamese::Error>(())
    /// ```
    ///
    /// # Errors
    /// - [`Error::Io`] when `path` does not exist or cannot be read;
    /// - [`Error::Layout`] naming the entry when the zip is unreadable or lacks the top
    ///   folder, a file or folder is out of place, a file name does not follow
    ///   `<id>_<drawer>.png`, or a character or alphabet folder is empty;
    /// - [`Error::TooLarge`] naming the file when a PNG has more than
    ///   [`MAX_PNG_BYTES`](crate::data::MAX_PNG_BYTES);
    /// - [`Error::Image`] naming the file when a PNG does not decode or is not 105 × 105.
    pub fn open(path: impl AsRef<Path>) -> Result<ImageSet> {
        load(Archive::open(path.as_ref())?)
    }

    /// Loads a zip from a reader; `archive` is the zip's path, whose stem names the expected
    /// top folder and which prefixes entry names in errors.
    ///
    /// # Errors
    /// As [`ImageSet::open`].
    pub fn from_zip<R: Read + Seek>(reader: R, archive: impl AsRef<Path>) -> Result<ImageSet> {
        load(Archive::zip(reader, archive.as_ref().to_path_buf())?)
    }
}

/// Lists `archive`, checks its layout, then reads and decodes every PNG on all cores.
fn load(mut archive: Archive<'_>) -> Result<ImageSet> {
    // A zip holds one top folder named like it; a folder holds the alphabets itself.
    let (name, top) = if archive.is_zip() {
        let stem = archive
            .path()
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::Layout {
                path: archive.path().into(),
                reason: "the zip needs a file name".into(),
            })?
            .to_string();
        (stem.clone(), Some(stem))
    } else {
        let name = archive.path().file_name().and_then(|s| s.to_str());
        (name.unwrap_or("images").to_string(), None)
    };
    // <top>/<Alphabet>/<character>/<file>: one level deeper shows as a folder out of place.
    let depth = 3 + usize::from(top.is_some());
    let mut tree = Tree::default();
    let mut files = Vec::new();
    let mut labels = Vec::new();
    for entry in archive.entries(depth)? {
        let source = archive.shown(&entry.name);
        let parts = entry.parts();
        let relative = match &top {
            Some(top) if parts[0] != top => {
                return Err(Error::Layout {
                    path: source,
                    reason: format!("every entry must lie under the top folder `{top}/`"),
                });
            }
            Some(_) => &parts[1..],
            None => &parts[..],
        };
        if entry.is_dir {
            tree.folder(relative, &source)?;
        } else if relative.len() == 1 {
            return Err(Error::Layout {
                path: source,
                reason: format!(
                    "expected only alphabet folders here{}",
                    zips_hint(relative[0])
                ),
            });
        } else {
            labels.push((tree.file(relative, &source)?, source));
            files.push(entry.name);
        }
    }
    let top_path = archive.shown(top.as_deref().unwrap_or(""));
    tree.check(&top_path)?;
    let bits = archive.map_files(&files, OMNIGLOT_PNG, |source, bytes| {
        Ok(pack(&decode_png(&bytes, source)?))
    })?;
    let entries = labels
        .into_iter()
        .zip(bits)
        .map(|((label, source), bits)| PackedEntry {
            alphabet: label.alphabet,
            character: label.character,
            drawer: label.drawer,
            bits,
            source,
        })
        .collect();
    ImageSet::from_packed(name, entries)
}

/// A hint when a file beside the alphabets is one of the Omniglot zips.
fn zips_hint(file: &str) -> &'static str {
    if Part::ALL
        .iter()
        .any(|p| file == format!("{}.zip", p.name()))
    {
        " (this looks like the folder holding the zips: use Omniglot::open on it, or \
         ImageSet::open on one zip)"
    } else {
        ""
    }
}

/// Labels parsed from a path: alphabet, character, drawer.
struct Label {
    alphabet: String,
    character: String,
    drawer: u32,
}

/// The folders seen, to catch empty ones: alphabet -> character -> images.
#[derive(Default)]
struct Tree {
    alphabets: BTreeMap<String, BTreeMap<String, usize>>,
}

impl Tree {
    fn folder(&mut self, relative: &[&str], source: &Path) -> Result<()> {
        match relative {
            [] => {}
            [alphabet] => {
                self.alphabets.entry(alphabet.to_string()).or_default();
            }
            [alphabet, character] => {
                self.alphabets
                    .entry(alphabet.to_string())
                    .or_default()
                    .entry(character.to_string())
                    .or_default();
            }
            _ => {
                return Err(Error::Layout {
                    path: source.into(),
                    reason: format!("unexpected folder: {EXPECTED}"),
                });
            }
        }
        Ok(())
    }

    fn file(&mut self, relative: &[&str], source: &Path) -> Result<Label> {
        let [alphabet, character, file] = relative else {
            return Err(Error::Layout {
                path: source.into(),
                reason: format!("file out of place: {EXPECTED}"),
            });
        };
        let drawer = parse_drawer(file).ok_or_else(|| Error::Layout {
            path: source.into(),
            reason: "the file name does not follow <id>_<drawer>.png (digits, drawer from 1)"
                .into(),
        })?;
        *self
            .alphabets
            .entry(alphabet.to_string())
            .or_default()
            .entry(character.to_string())
            .or_default() += 1;
        Ok(Label {
            alphabet: alphabet.to_string(),
            character: character.to_string(),
            drawer,
        })
    }

    /// Every alphabet has a character, every character an image, and there is something.
    fn check(&self, top: &Path) -> Result<()> {
        if self.alphabets.is_empty() {
            return Err(Error::Layout {
                path: top.into(),
                reason: format!("no alphabet folders: {EXPECTED}"),
            });
        }
        for (alphabet, characters) in &self.alphabets {
            if characters.is_empty() {
                return Err(Error::Layout {
                    path: top.join(alphabet),
                    reason: "alphabet folder without character folders".into(),
                });
            }
            if let Some((character, _)) = characters.iter().find(|&(_, &n)| n == 0) {
                return Err(Error::Layout {
                    path: top.join(alphabet).join(character),
                    reason: "character folder without images".into(),
                });
            }
        }
        Ok(())
    }
}

const EXPECTED: &str = "expected <Alphabet>/<character>/<id>_<drawer>.png";

/// The drawer of a file called `<id>_<drawer>.png`.
fn parse_drawer(file: &str) -> Option<u32> {
    let stem = file
        .strip_suffix(".png")
        .or_else(|| file.strip_suffix(".PNG"))?;
    let (id, drawer) = stem.split_once('_')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(id) || !digits(drawer) {
        return None;
    }
    drawer.parse::<u8>().ok().filter(|&d| d > 0).map(u32::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_follow_id_underscore_drawer() {
        assert_eq!(parse_drawer("0709_01.png"), Some(1));
        assert_eq!(parse_drawer("0709_20.png"), Some(20));
        assert_eq!(parse_drawer("1_7.PNG"), Some(7));
        for bad in [
            "0709_00.png",
            "0709_01.jpg",
            "0709-01.png",
            "_01.png",
            "0709_.png",
            "a709_01.png",
            "0709_01_2.png",
            "0709_300.png",
            "0709_01",
        ] {
            assert_eq!(parse_drawer(bad), None, "{bad}");
        }
    }

    #[test]
    fn part_names_are_official() {
        let names: Vec<String> = Part::ALL.iter().map(Part::to_string).collect();
        assert_eq!(
            names,
            [
                "images_background",
                "images_evaluation",
                "images_background_small1",
                "images_background_small2"
            ]
        );
    }

    #[test]
    fn missing_root_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nowhere");
        let err = Omniglot::open(&missing).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(err.to_string().contains("nowhere"));
        let err = Omniglot::open(dir.path())
            .unwrap()
            .background()
            .unwrap_err();
        assert!(err.to_string().contains("images_background.zip"), "{err}");
    }
}
