//! Labelled pictures of one's own: a folder or a zip of class folders, read into an
//! [`ImageSet`] prepared for a network.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use image::ImageFormat;

use super::canonical::MAX_IMAGE_BYTES;
use super::image_set::{ImageSet, PackedEntry};
use super::preprocess::InputSpec;
use crate::io::{Archive, FileKind};
use crate::{Error, Result};

/// What a picture of a folder may weigh, as [`load_image`](super::load_image) allows.
const PICTURE: FileKind = FileKind::new("a picture", MAX_IMAGE_BYTES);

/// A folder or a zip of labelled pictures, laid out `root/<class>/<pictures>` or
/// `root/<group>/<class>/<pictures>`, in any format the `image` crate reads, any number of
/// pictures a class. Each picture is named by its file stem (a vendor, a drawer, a session):
/// the stems are the set's instances, so that episodes can take supports and queries from
/// different named instances (`google.png` against `twitter.png`).
///
/// A zip whose entries all lie in one top folder is read from inside it. Hidden files and
/// folders (a leading `.`) and `__MACOSX/` are skipped; any other file that is not a
/// picture, or a picture out of place, is an error that names it. With the first layout the
/// classes form one group named after the folder or zip.
///
/// [`LabeledFolder::open`] lists the files; [`LabeledFolder::load`] decodes them on all
/// cores (bounded as [`load_image`](super::load_image) is) and prepares each for the
/// network that will read them, so the set holds pictures at the network's input size.
///
/// ```
/// use image::{Rgb, RgbImage};
/// use siamese::data::{InputSpec, LabeledFolder, Preprocess};
///
/// let dir = tempfile::tempdir().unwrap();
/// for (class, colour) in [("red", [200, 0, 0]), ("blue", [0, 0, 200])] {
///     std::fs::create_dir_all(dir.path().join("icons").join(class)).unwrap();
///     for vendor in ["google", "twitter"] {
///         let picture = RgbImage::from_pixel(48, 30, Rgb(colour));
///         picture.save(dir.path().join(format!("icons/{class}/{vendor}.png"))).unwrap();
///     }
/// }
/// let folder = LabeledFolder::open(dir.path().join("icons"))?;
/// assert_eq!((folder.len(), folder.is_grouped()), (4, false));
/// let set = folder.load(&InputSpec::new(3, 32, Preprocess::picture())?)?;
/// assert_eq!(set.class_names(), ["icons/blue", "icons/red"]);
/// assert_eq!((set.side(), set.channels()), (32, 3));
/// let twitter = set.instance_named("twitter")?;
/// let red = set.class_index("icons/red")?;
/// let picture = set.picture(set.image_of(red, twitter).unwrap()).into_rgb8();
/// assert_eq!(picture.get_pixel(16, 16).0, [200, 0, 0]);
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct LabeledFolder {
    path: PathBuf,
    name: String,
    /// Entry names inside the archive, in order, with their labels.
    files: Vec<(String, Label)>,
    grouped: bool,
}

/// The labels of one picture: group, class, file stem.
#[derive(Clone, Debug)]
struct Label {
    group: String,
    class: String,
    stem: String,
}

impl LabeledFolder {
    /// Lists a folder or a zip of labelled pictures.
    ///
    /// # Errors
    /// - [`Error::Io`] when `path` does not exist or cannot be read;
    /// - [`Error::Layout`] naming the entry when the zip is unreadable, a file is not a
    ///   picture (by its extension), files lie at different depths or beside the classes, a
    ///   class folder holds a folder, two pictures of a class share a stem, a name holds a
    ///   control character or is another's in a different Unicode form, or there is no
    ///   picture at all.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let archive = Archive::open(path)?;
        let entries = archive.entries(5)?;
        // A zip of one top folder (`emoji/...`) is read from inside it.
        let tops: BTreeSet<&str> = entries
            .iter()
            .map(|e| e.name.split('/').next().unwrap_or(""))
            .collect();
        let inside = match (archive.is_zip(), tops.iter().next()) {
            (true, Some(top))
                if tops.len() == 1 && entries.iter().any(|e| e.name.contains('/')) =>
            {
                Some(top.to_string())
            }
            _ => None,
        };
        let name = inside.clone().unwrap_or_else(|| {
            let name = if archive.is_zip() {
                path.file_stem()
            } else {
                path.file_name()
            };
            name.and_then(|n| n.to_str())
                .filter(|n| !n.is_empty())
                .unwrap_or("pictures")
                .to_string()
        });
        let mut files = Vec::new();
        let mut forms = HashMap::new();
        let mut depth = None;
        for entry in entries.iter().filter(|e| !e.is_dir) {
            let parts = entry.parts();
            let relative = match &inside {
                Some(_) => &parts[1..],
                None => &parts[..],
            };
            let shown = archive.shown(&entry.name);
            if !matches!(relative.len(), 2 | 3) {
                return Err(Error::Layout {
                    path: shown,
                    reason: format!("file out of place: {EXPECTED}"),
                });
            }
            if *depth.get_or_insert(relative.len()) != relative.len() {
                return Err(Error::Layout {
                    path: shown,
                    reason: format!(
                        "lies {} folders deep, where the first picture lies {}: {EXPECTED}",
                        relative.len() - 1,
                        depth.expect("set above") - 1
                    ),
                });
            }
            let file = relative[relative.len() - 1];
            if ImageFormat::from_path(file).is_err() {
                return Err(Error::Layout {
                    path: shown,
                    reason: "is not a picture in a format the `image` crate reads (by its \
                             extension)"
                        .into(),
                });
            }
            let stem = Path::new(file)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or(file)
                .to_string();
            if let Some(name) = relative.iter().find(|n| n.chars().any(char::is_control)) {
                return Err(Error::Layout {
                    path: shown,
                    reason: format!("{name:?} holds a control character"),
                });
            }
            // Names are compared and kept in Unicode's composed form (NFC): `é` typed as
            // one character or as `e` and an accent is one label, and a folder that holds
            // both forms is refused rather than shown as two identical lines.
            for end in 1..=relative.len() {
                let raw = relative[..end].join("/");
                if let Some(other) = forms.insert(nfc(&raw), raw.clone())
                    && other != raw
                {
                    return Err(Error::Layout {
                        path: shown,
                        reason: format!(
                            "{raw:?} and {other:?} are one name written in two Unicode forms \
                             (composed and decomposed): rename one"
                        ),
                    });
                }
            }
            let stem = nfc(&stem);
            let (group, class) = match relative {
                [group, class, _] => (nfc(group), nfc(class)),
                [class, _] => (nfc(&name), nfc(class)),
                _ => unreachable!("checked above"),
            };
            files.push((entry.name.clone(), Label { group, class, stem }));
        }
        // A folder inside a class folder shows as an entry too deep for the layout.
        let Some(depth) = depth else {
            return Err(Error::Layout {
                path: path.to_path_buf(),
                reason: format!("no picture: {EXPECTED}"),
            });
        };
        if let Some(deep) = entries
            .iter()
            .filter(|e| e.is_dir)
            .find(|e| e.parts().len() - usize::from(inside.is_some()) >= depth)
        {
            return Err(Error::Layout {
                path: archive.shown(&deep.name),
                reason: format!("a folder where pictures belong: {EXPECTED}"),
            });
        }
        let mut seen = BTreeMap::new();
        for (entry, label) in &files {
            let key = (&label.group, &label.class, &label.stem);
            if let Some(other) = seen.insert(key, entry) {
                return Err(Error::Layout {
                    path: archive.shown(entry),
                    reason: format!(
                        "two pictures of one class are named {:?} (also {}): the stem names \
                         the instance",
                        label.stem,
                        archive.shown(other).display()
                    ),
                });
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            name,
            files,
            grouped: depth == 3,
        })
    }

    /// The set's name: the folder's, the zip's stem, or the zip's top folder.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The folder or zip.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of pictures.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there is no picture (never true for an opened folder).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Whether the layout is `root/<group>/<class>/<pictures>`.
    pub fn is_grouped(&self) -> bool {
        self.grouped
    }

    /// Decodes every picture on all cores and prepares it for a network that reads
    /// `input`: the set stores the prepared pictures, names its instances by file stem
    /// (numbered from 1 in sorted order) and remembers the preprocessing.
    ///
    /// # Errors
    /// What [`InputSpec::load`] returns for a picture (named), and [`Error::Layout`] when
    /// the folder changed since it was opened.
    pub fn load(&self, input: &InputSpec) -> Result<ImageSet> {
        let mut archive = Archive::open(&self.path)?;
        let stems: BTreeSet<&str> = self.files.iter().map(|(_, l)| l.stem.as_str()).collect();
        let ids: BTreeMap<&str, u32> = stems
            .iter()
            .enumerate()
            .map(|(i, &stem)| (stem, i as u32 + 1))
            .collect();
        let names: Vec<String> = self.files.iter().map(|(name, _)| name.clone()).collect();
        let pictures = archive.map_files(&names, PICTURE, |source, bytes| {
            input.decode(&bytes, source)
        })?;
        let entries = self
            .files
            .iter()
            .zip(pictures)
            .map(|((name, label), picture)| PackedEntry {
                alphabet: label.group.clone(),
                character: label.class.clone(),
                drawer: ids[label.stem.as_str()],
                bits: picture.into_bytes().into_boxed_slice(),
                source: archive.shown(name),
            })
            .collect();
        let names = ids
            .iter()
            .map(|(&stem, &id)| (id, stem.to_string()))
            .collect();
        ImageSet::from_prepared(self.name.clone(), entries, input)?.with_instance_names(names)
    }
}

const EXPECTED: &str = "expected <class>/<picture> or <group>/<class>/<picture>";

/// `name` in Unicode's composed form (NFC).
fn nfc(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Preprocess;
    use image::{GrayImage, ImageEncoder, Luma, Rgb, RgbImage};
    use std::io::Write;

    fn save(root: &Path, relative: &str, value: u8) {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        RgbImage::from_pixel(20, 10, Rgb([value, 0, 255 - value]))
            .save(path)
            .unwrap();
    }

    fn zip_of(dir: &Path, zip: &Path, prefix: &str) {
        let file = std::fs::File::create(zip).unwrap();
        let mut writer = zip::ZipWriter::new(file);
        let mut stack = vec![dir.to_path_buf()];
        while let Some(folder) = stack.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let name = path.strip_prefix(dir).unwrap().to_str().unwrap();
                    writer
                        .start_file(
                            format!("{prefix}{name}"),
                            zip::write::SimpleFileOptions::default(),
                        )
                        .unwrap();
                    writer.write_all(&std::fs::read(&path).unwrap()).unwrap();
                }
            }
        }
        writer.finish().unwrap();
    }

    fn spec() -> InputSpec {
        InputSpec::new(3, 16, Preprocess::picture()).unwrap()
    }

    #[test]
    fn both_layouts_and_a_zip_give_the_same_index() {
        let dir = tempfile::tempdir().unwrap();
        let flat = dir.path().join("flat");
        for (class, v) in [("cat", 10), ("dog", 20), ("émoji ünïcode", 30)] {
            for stem in ["a", "b"] {
                save(&flat, &format!("{class}/{stem}.png"), v);
            }
        }
        save(&flat, "cat/c.png", 40); // a class may have any number of pictures
        std::fs::write(flat.join(".DS_Store"), b"hidden").unwrap();
        std::fs::create_dir_all(flat.join(".git")).unwrap();
        std::fs::write(flat.join(".git/HEAD"), b"hidden").unwrap();
        let set = LabeledFolder::open(&flat).unwrap().load(&spec()).unwrap();
        assert_eq!(
            set.class_names(),
            ["flat/cat", "flat/dog", "flat/émoji ünïcode"]
        );
        assert_eq!((set.num_groups(), set.len()), (1, 7));
        assert_eq!(set.instances(), [1, 2, 3]);
        assert_eq!(set.instance_name(3), "c");
        assert_eq!(set.preprocess(), &Preprocess::picture());

        let zip = dir.path().join("flat.zip");
        zip_of(&flat, &zip, "");
        let from_zip = LabeledFolder::open(&zip).unwrap().load(&spec()).unwrap();
        assert_eq!(from_zip, set);
        // The same files inside one top folder of the zip.
        let wrapped = dir.path().join("wrapped.zip");
        zip_of(&flat, &wrapped, "flat/");
        assert_eq!(
            LabeledFolder::open(&wrapped)
                .unwrap()
                .load(&spec())
                .unwrap(),
            set
        );

        let grouped = dir.path().join("grouped");
        save(&grouped, "animals/cat/a.png", 1);
        save(&grouped, "animals/cat/b.png", 2);
        save(&grouped, "food/pie/a.jpg", 3);
        let folder = LabeledFolder::open(&grouped).unwrap();
        assert!(folder.is_grouped());
        let set = folder.load(&spec()).unwrap();
        assert_eq!(set.group_names(), ["animals", "food"]);
        assert_eq!(set.class_names(), ["animals/cat", "food/pie"]);
        // A class with one picture is kept: it can serve as a support.
        assert_eq!(set.images_of_class(1).len(), 1);
    }

    #[test]
    fn grey_pictures_for_a_grey_network() {
        let dir = tempfile::tempdir().unwrap();
        for class in ["x", "y"] {
            let path = dir.path().join(class);
            std::fs::create_dir_all(&path).unwrap();
            GrayImage::from_pixel(30, 30, Luma([90]))
                .save(path.join("1.bmp"))
                .unwrap();
        }
        let grey = InputSpec::new(1, 12, Preprocess::picture()).unwrap();
        let set = LabeledFolder::open(dir.path())
            .unwrap()
            .load(&grey)
            .unwrap();
        assert_eq!((set.side(), set.channels()), (12, 1));
        assert_eq!(set.image(0).get_pixel(5, 5).0, [90]);
    }

    #[test]
    fn what_does_not_belong_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pics");
        save(&root, "cat/a.png", 1);
        std::fs::write(root.join("cat/notes.txt"), b"not a picture").unwrap();
        let message = LabeledFolder::open(&root).unwrap_err().to_string();
        assert!(
            message.contains("notes.txt") && message.contains("not a picture"),
            "{message}"
        );
        std::fs::remove_file(root.join("cat/notes.txt")).unwrap();

        save(&root, "stray.png", 1);
        let message = LabeledFolder::open(&root).unwrap_err().to_string();
        assert!(
            message.contains("stray.png") && message.contains("out of place"),
            "{message}"
        );
        std::fs::remove_file(root.join("stray.png")).unwrap();

        save(&root, "dog/puppies/a.png", 1);
        let message = LabeledFolder::open(&root).unwrap_err().to_string();
        assert!(message.contains("puppies"), "{message}");
        std::fs::remove_dir_all(root.join("dog")).unwrap();

        save(&root, "cat/a.jpg", 1);
        let message = LabeledFolder::open(&root).unwrap_err().to_string();
        assert!(
            message.contains("a.jpg") && message.contains("\"a\""),
            "{message}"
        );
        std::fs::remove_file(root.join("cat/a.jpg")).unwrap();

        std::fs::write(root.join("cat/b.png"), b"not a png").unwrap();
        let folder = LabeledFolder::open(&root).unwrap();
        let message = folder.load(&spec()).unwrap_err().to_string();
        assert!(message.contains("b.png"), "{message}");

        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(
            LabeledFolder::open(&empty)
                .unwrap_err()
                .to_string()
                .contains("no picture")
        );
        let missing = LabeledFolder::open(dir.path().join("absent")).unwrap_err();
        assert!(missing.to_string().contains("absent"), "{missing}");
    }

    #[test]
    fn names_are_kept_composed_and_two_forms_of_one_name_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pics");
        // "café" decomposed: `e` then a combining acute accent.
        save(&root, "cafe\u{301}/a.png", 1);
        save(&root, "tea/a\u{308}.png", 2);
        let set = LabeledFolder::open(&root).unwrap().load(&spec()).unwrap();
        assert_eq!(set.class_names(), ["pics/café", "pics/tea"]);
        assert_eq!(set.class_names()[0], "pics/caf\u{e9}");
        assert_eq!(set.instance_name(2), "\u{e4}");

        // The same name composed beside it.
        save(&root, "caf\u{e9}/b.png", 3);
        let message = LabeledFolder::open(&root).unwrap_err().to_string();
        assert!(message.contains("two Unicode forms"), "{message}");
    }

    #[test]
    fn a_picture_too_large_is_refused_from_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pics");
        save(&root, "cat/a.png", 1);
        // A PNG header claiming 100000 × 100000 pixels: refused before any pixel is decoded.
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(&[0; 3], 1, 1, image::ExtendedColorType::Rgb8)
            .unwrap();
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        std::fs::write(root.join("cat/huge.png"), png).unwrap();
        let message = LabeledFolder::open(&root)
            .unwrap()
            .load(&spec())
            .unwrap_err()
            .to_string();
        assert!(message.contains("huge.png"), "{message}");
    }
}
