//! The in-memory store of labelled Omniglot images.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use image::GrayImage;

use super::canonical::NATIVE_SIZE;
use crate::{Error, Result};

const PIXELS: usize = (NATIVE_SIZE * NATIVE_SIZE) as usize;
/// Bytes of one bit-packed 105 × 105 image: 11,025 bits.
const PACKED_BYTES: usize = PIXELS.div_ceil(8);

/// One image with its labels, to build an [`ImageSet`] from memory
/// ([`ImageSet::from_images`]).
#[derive(Clone, Debug)]
pub struct LabeledImage {
    /// Alphabet name, for example `Latin`.
    pub alphabet: String,
    /// Character name within the alphabet, for example `character01`.
    pub character: String,
    /// Drawer number (the `_NN` suffix of an Omniglot file), from 1.
    pub drawer: u8,
    /// The image, ink-high (ink 255, background 0), 105 × 105. Stored at one bit per pixel:
    /// values of 128 and above are ink.
    pub image: GrayImage,
}

/// One decoded, bit-packed image on its way into an [`ImageSet`].
pub(crate) struct PackedEntry {
    pub alphabet: String,
    pub character: String,
    pub drawer: u8,
    pub bits: Box<[u8]>,
    /// The file it came from, for error messages.
    pub source: PathBuf,
}

/// Packs an ink-high 105 × 105 image at one bit per pixel (ink: 128 and above).
pub(crate) fn pack(image: &GrayImage) -> Box<[u8]> {
    debug_assert_eq!(image.dimensions(), (NATIVE_SIZE, NATIVE_SIZE));
    let mut bits = vec![0u8; PACKED_BYTES].into_boxed_slice();
    for (p, &v) in image.as_raw().iter().enumerate() {
        if v >= 128 {
            bits[p >> 3] |= 1 << (p & 7);
        }
    }
    bits
}

/// Labelled Omniglot images, decoded once and kept bit-packed in memory (1.4 KB an image:
/// 27 MB for the 19,280 background images).
///
/// Images are ordered by alphabet name, then character name, then drawer, so that the
/// characters (classes) of an alphabet and the images of a character are contiguous
/// ranges. Every character has at least one image, every alphabet at least one character.
///
/// ```
/// use image::{GrayImage, Luma};
/// use siamese::data::{ImageSet, LabeledImage};
///
/// let image = |alphabet: &str, character: &str, drawer| LabeledImage {
///     alphabet: alphabet.into(),
///     character: character.into(),
///     drawer,
///     image: GrayImage::from_pixel(105, 105, Luma([drawer * 10])),
/// };
/// let set = ImageSet::from_images("toy", [
///     image("Latin", "character01", 1),
///     image("Latin", "character01", 2),
///     image("Latin", "character02", 1),
///     image("Greek", "character01", 1),
/// ])?;
/// assert_eq!((set.num_alphabets(), set.num_classes(), set.len()), (2, 3, 4));
/// assert_eq!(set.alphabet_names(), ["Greek", "Latin"]);
///
/// let latin = set.alphabet_index("Latin")?;
/// let first = set.classes_of_alphabet(latin).start;
/// assert_eq!(set.character_name(first), "Latin/character01");
/// assert_eq!(set.images_of_class(first).len(), 2);
/// let image = set.image_of(first, 2).expect("drawer 2 drew it");
/// assert_eq!((set.class_of(image), set.drawer_of(image)), (first, 2));
///
/// let drawer_one = set.subset(None, Some(&[1]))?;
/// assert_eq!((drawer_one.num_alphabets(), drawer_one.len()), (2, 3));
/// // Latin/character02 has no drawing by drawer 2: an error, not a silent drop.
/// assert!(set.subset(Some(&["Latin"]), Some(&[2])).is_err());
/// assert!(set.subset(Some(&["Klingon"]), None).is_err());
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    name: String,
    alphabets: Vec<String>,
    /// Classes of alphabet `a`: `alphabet_starts[a]..alphabet_starts[a + 1]`.
    alphabet_starts: Vec<usize>,
    /// Full character names, `Alphabet/character`.
    characters: Vec<String>,
    class_alphabet: Vec<u32>,
    /// Images of class `c`: `class_starts[c]..class_starts[c + 1]`.
    class_starts: Vec<usize>,
    image_class: Vec<u32>,
    image_drawer: Vec<u8>,
    /// The distinct drawers, sorted.
    drawers: Vec<u8>,
    /// `lookup[c * max_drawer + d - 1]`: the image of class `c` by drawer `d`, or `u32::MAX`.
    lookup: Vec<u32>,
    max_drawer: usize,
    bits: Vec<u8>,
}

impl ImageSet {
    /// Builds a set from labelled images in any order.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when there are no images, a name is empty or holds a `/`,
    /// a drawer is 0, an image is not 105 × 105, or two images share alphabet, character
    /// and drawer.
    pub fn from_images(
        name: impl Into<String>,
        images: impl IntoIterator<Item = LabeledImage>,
    ) -> Result<Self> {
        let entries = images
            .into_iter()
            .map(|item| {
                for (what, value) in [("alphabet", &item.alphabet), ("character", &item.character)]
                {
                    if value.is_empty() || value.contains('/') {
                        return Err(Error::invalid(
                            "images",
                            format!("{what} name {value:?} must be non-empty and without '/'"),
                        ));
                    }
                }
                let source = PathBuf::from(format!(
                    "{}/{}/drawer {}",
                    item.alphabet, item.character, item.drawer
                ));
                if item.image.dimensions() != (NATIVE_SIZE, NATIVE_SIZE) {
                    let (w, h) = item.image.dimensions();
                    return Err(Error::invalid(
                        "images",
                        format!(
                            "{} is {w}×{h}, expected {NATIVE_SIZE}×{NATIVE_SIZE}",
                            source.display()
                        ),
                    ));
                }
                Ok(PackedEntry {
                    bits: pack(&item.image),
                    alphabet: item.alphabet,
                    character: item.character,
                    drawer: item.drawer,
                    source,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Self::from_entries(name.into(), entries).map_err(|e| match e {
            Error::Layout { reason, .. } => Error::invalid("images", reason),
            other => other,
        })
    }

    /// Sorts and indexes decoded images.
    ///
    /// # Errors
    /// [`Error::Layout`] naming the file of a duplicate (alphabet, character, drawer) or a
    /// drawer 0; [`Error::InvalidArgument`] when `entries` is empty.
    pub(crate) fn from_entries(name: String, mut entries: Vec<PackedEntry>) -> Result<Self> {
        if entries.is_empty() {
            return Err(Error::invalid("images", format!("{name}: no images")));
        }
        entries.sort_unstable_by(|a, b| {
            (&a.alphabet, &a.character, a.drawer).cmp(&(&b.alphabet, &b.character, b.drawer))
        });
        let n = entries.len();
        let mut set = ImageSet {
            name,
            alphabets: Vec::new(),
            alphabet_starts: Vec::new(),
            characters: Vec::new(),
            class_alphabet: Vec::new(),
            class_starts: Vec::new(),
            image_class: Vec::with_capacity(n),
            image_drawer: Vec::with_capacity(n),
            drawers: Vec::new(),
            lookup: Vec::new(),
            max_drawer: 0,
            bits: Vec::with_capacity(n * PACKED_BYTES),
        };
        for (i, entry) in entries.iter().enumerate() {
            if entry.drawer == 0 {
                return Err(Error::Layout {
                    path: entry.source.clone(),
                    reason: "drawer 0: drawers are numbered from 1".into(),
                });
            }
            let previous = i.checked_sub(1).map(|p| &entries[p]);
            let new_alphabet = previous.is_none_or(|p| p.alphabet != entry.alphabet);
            let new_class =
                new_alphabet || previous.is_some_and(|p| p.character != entry.character);
            if let Some(p) = previous
                && !new_class
                && p.drawer == entry.drawer
            {
                return Err(Error::Layout {
                    path: entry.source.clone(),
                    reason: format!(
                        "drawer {} of {}/{} appears twice (also {})",
                        entry.drawer,
                        entry.alphabet,
                        entry.character,
                        p.source.display()
                    ),
                });
            }
            if new_alphabet {
                set.alphabets.push(entry.alphabet.clone());
                set.alphabet_starts.push(set.characters.len());
            }
            if new_class {
                set.characters
                    .push(format!("{}/{}", entry.alphabet, entry.character));
                set.class_alphabet.push((set.alphabets.len() - 1) as u32);
                set.class_starts.push(i);
            }
            set.image_class.push((set.characters.len() - 1) as u32);
            set.image_drawer.push(entry.drawer);
            set.bits.extend_from_slice(&entry.bits);
            set.max_drawer = set.max_drawer.max(usize::from(entry.drawer));
        }
        set.alphabet_starts.push(set.characters.len());
        set.class_starts.push(n);
        set.drawers = {
            let mut seen = [false; 256];
            set.image_drawer
                .iter()
                .for_each(|&d| seen[usize::from(d)] = true);
            (1..=255u8).filter(|&d| seen[usize::from(d)]).collect()
        };
        set.lookup = vec![u32::MAX; set.characters.len() * set.max_drawer];
        for (i, (&class, &drawer)) in set.image_class.iter().zip(&set.image_drawer).enumerate() {
            set.lookup[class as usize * set.max_drawer + usize::from(drawer) - 1] = i as u32;
        }
        Ok(set)
    }

    /// The set's name: the zip's top folder or the folder name, e.g. `images_background`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.image_class.len()
    }

    /// Whether the set has no images (never true for a loaded set).
    pub fn is_empty(&self) -> bool {
        self.image_class.is_empty()
    }

    /// Number of characters (classes).
    pub fn num_classes(&self) -> usize {
        self.characters.len()
    }

    /// Number of alphabets.
    pub fn num_alphabets(&self) -> usize {
        self.alphabets.len()
    }

    /// Alphabet names, sorted; the position is the alphabet index.
    pub fn alphabet_names(&self) -> &[String] {
        &self.alphabets
    }

    /// Index of the alphabet called `name`.
    ///
    /// # Errors
    /// [`Error::NotFound`] listing the alphabets of this set.
    pub fn alphabet_index(&self, name: &str) -> Result<usize> {
        self.alphabets
            .binary_search_by(|a| a.as_str().cmp(name))
            .map_err(|_| Error::NotFound {
                kind: "alphabet",
                name: name.into(),
                available: self.alphabets.clone(),
            })
    }

    /// Indices of the alphabets called `names`, or of every alphabet for `None`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for the first name that is not an alphabet of this set.
    pub fn alphabet_indices(&self, names: Option<&[&str]>) -> Result<Vec<usize>> {
        match names {
            None => Ok((0..self.num_alphabets()).collect()),
            Some(names) => names.iter().map(|name| self.alphabet_index(name)).collect(),
        }
    }

    /// Full name of a character: `Alphabet/character`, e.g. `Latin/character01`.
    pub fn character_name(&self, class: usize) -> &str {
        &self.characters[class]
    }

    /// Full names of all characters; the position is the class index.
    pub fn character_names(&self) -> &[String] {
        &self.characters
    }

    /// Index of the character with full name `Alphabet/character` (a linear search).
    ///
    /// # Errors
    /// [`Error::NotFound`] when no character has that name.
    pub fn class_index(&self, name: &str) -> Result<usize> {
        self.characters
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| Error::NotFound {
                kind: "character",
                name: name.into(),
                available: Vec::new(),
            })
    }

    /// The classes (characters) of alphabet `alphabet`.
    pub fn classes_of_alphabet(&self, alphabet: usize) -> Range<usize> {
        self.alphabet_starts[alphabet]..self.alphabet_starts[alphabet + 1]
    }

    /// The alphabet of class `class`.
    pub fn alphabet_of_class(&self, class: usize) -> usize {
        self.class_alphabet[class] as usize
    }

    /// The images of class `class`, in drawer order.
    pub fn images_of_class(&self, class: usize) -> Range<usize> {
        self.class_starts[class]..self.class_starts[class + 1]
    }

    /// The class (character) of image `image`.
    pub fn class_of(&self, image: usize) -> usize {
        self.image_class[image] as usize
    }

    /// The alphabet of image `image`.
    pub fn alphabet_of(&self, image: usize) -> usize {
        self.alphabet_of_class(self.class_of(image))
    }

    /// The drawer (from 1) of image `image`.
    pub fn drawer_of(&self, image: usize) -> u8 {
        self.image_drawer[image]
    }

    /// The distinct drawers in this set, sorted (1 to 20 for a full Omniglot set).
    pub fn drawers(&self) -> &[u8] {
        &self.drawers
    }

    /// The image of class `class` drawn by `drawer`, if there is one. O(1).
    pub fn image_of(&self, class: usize, drawer: u8) -> Option<usize> {
        let d = usize::from(drawer);
        if d == 0 || d > self.max_drawer || class >= self.num_classes() {
            return None;
        }
        let i = self.lookup[class * self.max_drawer + d - 1];
        (i != u32::MAX).then_some(i as usize)
    }

    /// Image `image` at its native 105 × 105, ink-high: ink 255, background 0.
    pub fn image(&self, image: usize) -> GrayImage {
        let bits = &self.bits[image * PACKED_BYTES..(image + 1) * PACKED_BYTES];
        let raw = (0..PIXELS)
            .map(|p| {
                if bits[p >> 3] >> (p & 7) & 1 == 1 {
                    255
                } else {
                    0
                }
            })
            .collect();
        GrayImage::from_raw(NATIVE_SIZE, NATIVE_SIZE, raw).expect("105 × 105 pixels")
    }

    /// Number of ink pixels of image `image`.
    pub fn ink_pixels(&self, image: usize) -> usize {
        self.bits[image * PACKED_BYTES..(image + 1) * PACKED_BYTES]
            .iter()
            .map(|b| b.count_ones() as usize)
            .sum()
    }

    /// The images of some alphabets (`None`: all) by some drawers (`None`: all), in this
    /// set's order. Repeated names or drawers count once.
    ///
    /// # Errors
    /// - [`Error::NotFound`] for an alphabet or drawer that this set does not have;
    /// - [`Error::InvalidArgument`] for an empty list, or when a kept character has none
    ///   of the drawers asked for.
    pub fn subset(&self, alphabets: Option<&[&str]>, drawers: Option<&[u8]>) -> Result<ImageSet> {
        let keep_alphabet = match alphabets {
            None => vec![true; self.num_alphabets()],
            Some([]) => {
                return Err(Error::invalid(
                    "alphabets",
                    "the list is empty: it keeps nothing",
                ));
            }
            Some(names) => {
                let mut keep = vec![false; self.num_alphabets()];
                for name in names {
                    keep[self.alphabet_index(name)?] = true;
                }
                keep
            }
        };
        let keep_drawer: HashSet<u8> = match drawers {
            None => self.drawers.iter().copied().collect(),
            Some([]) => {
                return Err(Error::invalid(
                    "drawers",
                    "the list is empty: it keeps nothing",
                ));
            }
            Some(list) => {
                for &d in list {
                    if self.drawers.binary_search(&d).is_err() {
                        return Err(Error::NotFound {
                            kind: "drawer",
                            name: d.to_string(),
                            available: self.drawers.iter().map(u8::to_string).collect(),
                        });
                    }
                }
                list.iter().copied().collect()
            }
        };

        let mut entries = Vec::new();
        for (a, alphabet) in self
            .alphabets
            .iter()
            .enumerate()
            .filter(|(a, _)| keep_alphabet[*a])
        {
            for class in self.classes_of_alphabet(a) {
                let before = entries.len();
                let character = self.characters[class]
                    .split_once('/')
                    .map_or("", |(_, c)| c)
                    .to_string();
                for image in self.images_of_class(class) {
                    if keep_drawer.contains(&self.image_drawer[image]) {
                        entries.push(self.entry(image, alphabet, &character));
                    }
                }
                if entries.len() == before {
                    return Err(Error::invalid(
                        "drawers",
                        format!(
                            "character {} has none of drawers {:?}",
                            self.characters[class],
                            drawers.unwrap_or_default()
                        ),
                    ));
                }
            }
        }
        Self::from_entries(self.name.clone(), entries)
    }

    /// One set, named `name`, of the images of all of `sets`: the background set and
    /// some evaluation alphabets, say, to train on both.
    ///
    /// ```
    /// # use image::{GrayImage, Luma};
    /// # use siamese::data::{ImageSet, LabeledImage};
    /// # let set = |alphabet: &str| ImageSet::from_images(alphabet, (1..=2).map(|d| LabeledImage {
    /// #     alphabet: alphabet.into(), character: "c1".into(), drawer: d,
    /// #     image: GrayImage::from_pixel(105, 105, Luma([0])),
    /// # })).unwrap();
    /// let (latin, greek) = (set("Latin"), set("Greek"));
    /// let both = ImageSet::union("both", &[&latin, &greek])?;
    /// assert_eq!((both.num_alphabets(), both.len()), (2, 4));
    /// assert!(ImageSet::union("twice", &[&latin, &latin]).is_err());
    /// # Ok::<(), siamese::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `sets` is empty, or when two of them hold an image
    /// of the same alphabet, character and drawer (named).
    pub fn union(name: impl Into<String>, sets: &[&ImageSet]) -> Result<ImageSet> {
        let mut entries = Vec::with_capacity(sets.iter().map(|set| set.len()).sum());
        for set in sets {
            for class in 0..set.num_classes() {
                let (alphabet, character) = set.characters[class]
                    .split_once('/')
                    .expect("character names are Alphabet/character");
                for image in set.images_of_class(class) {
                    entries.push(set.entry(image, alphabet, character));
                }
            }
        }
        Self::from_entries(name.into(), entries).map_err(|e| match e {
            Error::Layout { reason, .. } => Error::invalid("sets", reason),
            other => other,
        })
    }

    /// Image `image` of this set as an entry of a new one.
    fn entry(&self, image: usize, alphabet: &str, character: &str) -> PackedEntry {
        PackedEntry {
            alphabet: alphabet.to_string(),
            character: character.to_string(),
            drawer: self.image_drawer[image],
            bits: self.bits[image * PACKED_BYTES..(image + 1) * PACKED_BYTES].into(),
            source: PathBuf::from(format!("{}/{}", self.name, alphabet)),
        }
    }
}

impl fmt::Display for ImageSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} alphabets, {} characters, {} images",
            self.name,
            self.num_alphabets(),
            self.num_classes(),
            self.len()
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use image::Luma;

    /// A toy set: `alphabets × characters × drawers` images, each with a different dot.
    pub(crate) fn toy_set(alphabets: usize, characters: usize, drawers: u8) -> ImageSet {
        let mut images = Vec::new();
        for a in 0..alphabets {
            for c in 0..characters {
                for d in 1..=drawers {
                    let mut image = GrayImage::new(105, 105);
                    let k = (a * characters + c) as u32;
                    for y in 30..75 {
                        image.put_pixel(k % 105, y, Luma([255]));
                        image.put_pixel(30 + u32::from(d), y, Luma([255]));
                    }
                    images.push(LabeledImage {
                        alphabet: format!("alphabet{a:02}"),
                        character: format!("character{:02}", c + 1),
                        drawer: d,
                        image,
                    });
                }
            }
        }
        ImageSet::from_images("toy", images).unwrap()
    }

    #[test]
    fn pack_round_trips() {
        let image = GrayImage::from_fn(105, 105, |x, y| {
            Luma([if (x * 7 + y * 3) % 5 == 0 { 255 } else { 0 }])
        });
        let set = ImageSet::from_images(
            "one",
            [LabeledImage {
                alphabet: "A".into(),
                character: "c".into(),
                drawer: 3,
                image: image.clone(),
            }],
        )
        .unwrap();
        assert_eq!(set.image(0), image);
        assert_eq!(
            set.ink_pixels(0),
            image.iter().filter(|&&v| v == 255).count()
        );
    }

    #[test]
    fn indexes_are_consistent() {
        let set = toy_set(3, 4, 5);
        assert_eq!(
            (set.num_alphabets(), set.num_classes(), set.len()),
            (3, 12, 60)
        );
        assert_eq!(set.drawers(), [1, 2, 3, 4, 5]);
        for a in 0..set.num_alphabets() {
            for class in set.classes_of_alphabet(a) {
                assert_eq!(set.alphabet_of_class(class), a);
                for image in set.images_of_class(class) {
                    assert_eq!(set.class_of(image), class);
                    assert_eq!(set.alphabet_of(image), a);
                    assert_eq!(set.image_of(class, set.drawer_of(image)), Some(image));
                }
            }
        }
        assert_eq!(set.image_of(0, 6), None);
        assert_eq!(set.image_of(0, 0), None);
        assert_eq!(set.image_of(99, 1), None);
        assert_eq!(set.class_index("alphabet01/character02").unwrap(), 5);
        assert!(set.class_index("alphabet01/character99").is_err());
    }

    #[test]
    fn input_order_does_not_matter() {
        let set = toy_set(2, 3, 4);
        let mut images: Vec<LabeledImage> = (0..set.len())
            .rev()
            .map(|i| {
                let (alphabet, character) =
                    set.character_name(set.class_of(i)).split_once('/').unwrap();
                LabeledImage {
                    alphabet: alphabet.into(),
                    character: character.into(),
                    drawer: set.drawer_of(i),
                    image: set.image(i),
                }
            })
            .collect();
        images.swap(0, 7);
        assert_eq!(ImageSet::from_images("toy", images).unwrap(), set);
    }

    #[test]
    fn subset_keeps_what_was_asked() {
        let set = toy_set(3, 4, 6);
        let sub = set
            .subset(
                Some(&["alphabet02", "alphabet00", "alphabet02"]),
                Some(&[2, 5]),
            )
            .unwrap();
        assert_eq!(sub.alphabet_names(), ["alphabet00", "alphabet02"]);
        assert_eq!((sub.num_classes(), sub.len()), (8, 16));
        assert_eq!(sub.drawers(), [2, 5]);
        for image in 0..sub.len() {
            let class = set
                .class_index(sub.character_name(sub.class_of(image)))
                .unwrap();
            let original = set.image_of(class, sub.drawer_of(image)).unwrap();
            assert_eq!(sub.image(image), set.image(original));
        }
        assert_eq!(set.subset(None, None).unwrap(), set);
    }

    #[test]
    fn a_union_of_disjoint_subsets_is_the_whole() {
        let set = toy_set(3, 4, 6);
        let first = set.subset(Some(&["alphabet01"]), None).unwrap();
        let rest = set
            .subset(Some(&["alphabet02", "alphabet00"]), None)
            .unwrap();
        let union = ImageSet::union("toy", &[&first, &rest]).unwrap();
        assert_eq!(union, set);
        let message = ImageSet::union("twice", &[&set, &first])
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("sets") && message.contains("alphabet01/character01"),
            "{message}"
        );
        assert!(ImageSet::union("none", &[]).is_err());
    }

    #[test]
    fn subset_errors_name_the_value() {
        let set = toy_set(2, 2, 3);
        let message = set
            .subset(Some(&["Klingon"]), None)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("Klingon") && message.contains("alphabet00"),
            "{message}"
        );
        let message = set.subset(None, Some(&[1, 7])).unwrap_err().to_string();
        assert!(message.contains("drawer \"7\""), "{message}");
        assert!(set.subset(Some(&[]), None).is_err());
        assert!(set.subset(None, Some(&[])).is_err());
    }

    #[test]
    fn bad_images_are_refused() {
        let good = LabeledImage {
            alphabet: "A".into(),
            character: "c".into(),
            drawer: 1,
            image: GrayImage::new(105, 105),
        };
        let message = ImageSet::from_images("d", [good.clone(), good.clone()])
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("drawer 1 of A/c appears twice"),
            "{message}"
        );
        let zero = LabeledImage {
            drawer: 0,
            ..good.clone()
        };
        assert!(ImageSet::from_images("z", [zero]).is_err());
        let small = LabeledImage {
            image: GrayImage::new(10, 105),
            ..good.clone()
        };
        assert!(
            ImageSet::from_images("s", [small])
                .unwrap_err()
                .to_string()
                .contains("10×105")
        );
        let slash = LabeledImage {
            alphabet: "A/B".into(),
            ..good
        };
        assert!(ImageSet::from_images("n", [slash]).is_err());
        assert!(ImageSet::from_images("e", []).is_err());
    }
}
