//! The in-memory store of labelled images: an index of groups, classes and instances over
//! pixels kept at the size a network reads.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use image::{DynamicImage, GrayImage, RgbImage};

use super::canonical::NATIVE_SIZE;
use super::preprocess::Preprocess;
use crate::{Error, Result};

const PIXELS: usize = (NATIVE_SIZE * NATIVE_SIZE) as usize;
/// Bytes of one bit-packed 105 × 105 image: 11,025 bits.
const PACKED_BYTES: usize = PIXELS.div_ceil(8);

/// One image with its labels, to build an [`ImageSet`] from memory
/// ([`ImageSet::from_images`]).
#[derive(Clone, Debug)]
pub struct LabeledImage {
    /// The group the class belongs to: an Omniglot alphabet (`Latin`), an emoji category.
    pub group: String,
    /// The class within its group: an Omniglot character (`character01`), an emoji.
    pub class: String,
    /// Which instance of the class this is, from 1: an Omniglot drawer, a vendor, a session.
    /// Episodes can take supports and queries from different instances.
    pub instance: u32,
    /// The image, already prepared (an [`InputSpec`](super::InputSpec) prepares one):
    /// `Luma8` or `Rgb8`, square, every image of a set the same kind and size.
    pub image: DynamicImage,
}

/// How a set keeps its pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Store {
    /// 105 × 105 at one bit a pixel (ink: 128 and above): Omniglot's binary drawings.
    Bits,
    /// `side × side` grey levels.
    Grey(u32),
    /// `side × side` RGB.
    Rgb(u32),
}

impl Store {
    /// Bytes of one image.
    fn bytes(self) -> usize {
        match self {
            Store::Bits => PACKED_BYTES,
            Store::Grey(side) => (side * side) as usize,
            Store::Rgb(side) => 3 * (side * side) as usize,
        }
    }

    /// Side of the stored images.
    fn side(self) -> u32 {
        match self {
            Store::Bits => NATIVE_SIZE,
            Store::Grey(side) | Store::Rgb(side) => side,
        }
    }

    /// The store of a prepared picture, and its bytes.
    fn of(image: &DynamicImage) -> std::result::Result<(Store, Vec<u8>), String> {
        let (width, height) = (image.width(), image.height());
        if width != height || width == 0 {
            return Err(format!("is {width}×{height}: prepared images are square"));
        }
        match image {
            DynamicImage::ImageLuma8(grey) => Ok((Store::Grey(width), grey.as_raw().clone())),
            DynamicImage::ImageRgb8(rgb) => Ok((Store::Rgb(width), rgb.as_raw().clone())),
            other => Err(format!(
                "is {:?}: prepared images are Luma8 or Rgb8",
                other.color()
            )),
        }
    }

    /// The picture in `bytes`.
    fn picture(self, bytes: &[u8]) -> DynamicImage {
        match self {
            Store::Bits => {
                let raw = (0..PIXELS)
                    .map(|p| {
                        if bytes[p >> 3] >> (p & 7) & 1 == 1 {
                            255
                        } else {
                            0
                        }
                    })
                    .collect();
                DynamicImage::ImageLuma8(
                    GrayImage::from_raw(NATIVE_SIZE, NATIVE_SIZE, raw).expect("105 × 105"),
                )
            }
            Store::Grey(side) => DynamicImage::ImageLuma8(
                GrayImage::from_raw(side, side, bytes.to_vec()).expect("side × side"),
            ),
            Store::Rgb(side) => DynamicImage::ImageRgb8(
                RgbImage::from_raw(side, side, bytes.to_vec()).expect("side × side × 3"),
            ),
        }
    }
}

/// One stored image on its way into an [`ImageSet`].
pub(crate) struct PackedEntry {
    pub alphabet: String,
    pub character: String,
    pub drawer: u32,
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

/// Labelled images, decoded once and kept in memory at the size a network reads: an index
/// of **groups** (Omniglot's alphabets, emoji categories), their **classes** (characters,
/// emoji) and each class's **instances** (drawers, vendors), over the pixels.
///
/// Omniglot's binary drawings are kept bit-packed at 105 × 105 (1.4 KB an image: 27 MB for
/// the 19,280 background images, [`Omniglot`](super::Omniglot)); other sets keep grey or
/// RGB bytes at their prepared side ([`LabeledFolder`](super::LabeledFolder), 12 KB for a
/// 64 × 64 colour picture).
///
/// Images are ordered by group name, then class name, then instance, so that the classes
/// of a group and the images of a class are contiguous ranges. Every class has at least
/// one image, every group at least one class.
///
/// ```
/// use image::{GrayImage, Luma};
/// use siamese::data::{ImageSet, LabeledImage};
///
/// let image = |group: &str, class: &str, instance| LabeledImage {
///     group: group.into(),
///     class: class.into(),
///     instance,
///     image: GrayImage::from_pixel(105, 105, Luma([instance as u8 * 10])).into(),
/// };
/// let set = ImageSet::from_images("toy", [
///     image("Latin", "character01", 1),
///     image("Latin", "character01", 2),
///     image("Latin", "character02", 1),
///     image("Greek", "character01", 1),
/// ])?;
/// assert_eq!((set.num_groups(), set.num_classes(), set.len()), (2, 3, 4));
/// assert_eq!(set.group_names(), ["Greek", "Latin"]);
///
/// let latin = set.group_index("Latin")?;
/// let first = set.classes_of_group(latin).start;
/// assert_eq!(set.class_name(first), "Latin/character01");
/// assert_eq!(set.images_of_class(first).len(), 2);
/// let image = set.image_of(first, 2).expect("instance 2 drew it");
/// assert_eq!((set.class_of(image), set.instance_of(image)), (first, 2));
///
/// let instance_one = set.subset(None, Some(&[1]))?;
/// assert_eq!((instance_one.num_groups(), instance_one.len()), (2, 3));
/// // Latin/character02 has no image by instance 2: an error, not a silent drop.
/// assert!(set.subset(Some(&["Latin"]), Some(&[2])).is_err());
/// assert!(set.subset(Some(&["Klingon"]), None).is_err());
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    name: String,
    groups: Vec<String>,
    /// Classes of group `g`: `group_starts[g]..group_starts[g + 1]`.
    group_starts: Vec<usize>,
    /// Full class names, `group/class`.
    classes: Vec<String>,
    class_group: Vec<u32>,
    /// Images of class `c`: `class_starts[c]..class_starts[c + 1]`.
    class_starts: Vec<usize>,
    image_class: Vec<u32>,
    image_instance: Vec<u32>,
    /// The distinct instances, sorted.
    instances: Vec<u32>,
    /// Names of the instances that have one (a vendor, a file stem).
    instance_names: BTreeMap<u32, String>,
    store: Store,
    preprocess: Preprocess,
    bytes: Vec<u8>,
}

impl ImageSet {
    /// Builds a set from labelled, prepared images in any order, for a network that
    /// prepares its pictures with [`Preprocess::Ink`] (see [`ImageSet::with_preprocess`]).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when there are no images, a name is empty or holds a `/`,
    /// an instance is 0, an image is not square `Luma8` or `Rgb8` or differs in kind or
    /// size from the first, or two images share group, class and instance.
    pub fn from_images(
        name: impl Into<String>,
        images: impl IntoIterator<Item = LabeledImage>,
    ) -> Result<Self> {
        let mut store = None;
        let entries = images
            .into_iter()
            .map(|item| {
                for (what, value) in [("group", &item.group), ("class", &item.class)] {
                    if value.is_empty() || value.contains('/') {
                        return Err(Error::invalid(
                            "images",
                            format!("{what} name {value:?} must be non-empty and without '/'"),
                        ));
                    }
                }
                let source = PathBuf::from(format!(
                    "{}/{}/instance {}",
                    item.group, item.class, item.instance
                ));
                let (kind, bytes) = Store::of(&item.image).map_err(|reason| {
                    Error::invalid("images", format!("{} {reason}", source.display()))
                })?;
                if *store.get_or_insert(kind) != kind {
                    return Err(Error::invalid(
                        "images",
                        format!(
                            "{} is {kind:?}, the first image {:?}: a set holds one kind and size",
                            source.display(),
                            store.expect("set above")
                        ),
                    ));
                }
                Ok(PackedEntry {
                    bits: bytes.into_boxed_slice(),
                    alphabet: item.group,
                    character: item.class,
                    drawer: item.instance,
                    source,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let store = store.unwrap_or(Store::Grey(NATIVE_SIZE));
        Self::from_entries(name.into(), entries, store).map_err(|e| match e {
            Error::Layout { reason, .. } => Error::invalid("images", reason),
            other => other,
        })
    }

    /// Bit-packed Omniglot drawings, sorted and indexed.
    pub(crate) fn from_packed(name: String, entries: Vec<PackedEntry>) -> Result<Self> {
        Self::from_entries(name, entries, Store::Bits)
    }

    /// Pictures prepared by `input` ([`InputSpec::prepare`](super::InputSpec::prepare)),
    /// sorted and indexed.
    pub(crate) fn from_prepared(
        name: String,
        entries: Vec<PackedEntry>,
        input: &super::InputSpec,
    ) -> Result<Self> {
        let side = input.stored_side();
        let store = if input.stored_channels() == 3 {
            Store::Rgb(side)
        } else {
            Store::Grey(side)
        };
        if let Some(entry) = entries.iter().find(|e| e.bits.len() != store.bytes()) {
            return Err(Error::Layout {
                path: entry.source.clone(),
                reason: format!("prepared as {} bytes, not {store:?}", entry.bits.len()),
            });
        }
        Ok(Self::from_entries(name, entries, store)?.with_preprocess(input.preprocess().clone()))
    }

    /// The same set, for a network that prepares pictures with `preprocess`: the colour
    /// that distortions fill uncovered corners with is its background.
    pub fn with_preprocess(mut self, preprocess: Preprocess) -> Self {
        self.preprocess = preprocess;
        self
    }

    /// The same set with instances named (`google`, `twitter`, ...); ids without a name
    /// are shown as their number.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a name is empty or two instances share one.
    pub fn with_instance_names(mut self, names: BTreeMap<u32, String>) -> Result<Self> {
        let mut seen = HashSet::new();
        for (id, name) in &names {
            if name.is_empty() || !seen.insert(name.as_str()) {
                return Err(Error::invalid(
                    "instance_names",
                    format!("instance {id} is named {name:?}: names are non-empty and distinct"),
                ));
            }
        }
        self.instance_names = names;
        Ok(self)
    }

    /// Sorts and indexes stored images.
    ///
    /// # Errors
    /// [`Error::Layout`] naming the file of a duplicate (group, class, instance) or an
    /// instance 0; [`Error::InvalidArgument`] when `entries` is empty.
    fn from_entries(name: String, mut entries: Vec<PackedEntry>, store: Store) -> Result<Self> {
        if entries.is_empty() {
            return Err(Error::invalid("images", format!("{name}: no images")));
        }
        entries.sort_unstable_by(|a, b| {
            (&a.alphabet, &a.character, a.drawer).cmp(&(&b.alphabet, &b.character, b.drawer))
        });
        let n = entries.len();
        let mut set = ImageSet {
            name,
            groups: Vec::new(),
            group_starts: Vec::new(),
            classes: Vec::new(),
            class_group: Vec::new(),
            class_starts: Vec::new(),
            image_class: Vec::with_capacity(n),
            image_instance: Vec::with_capacity(n),
            instances: Vec::new(),
            instance_names: BTreeMap::new(),
            store,
            preprocess: Preprocess::Ink,
            bytes: Vec::with_capacity(n * store.bytes()),
        };
        for (i, entry) in entries.iter().enumerate() {
            if entry.drawer == 0 {
                return Err(Error::Layout {
                    path: entry.source.clone(),
                    reason: "instance 0: instances are numbered from 1".into(),
                });
            }
            debug_assert_eq!(entry.bits.len(), store.bytes());
            let previous = i.checked_sub(1).map(|p| &entries[p]);
            let new_group = previous.is_none_or(|p| p.alphabet != entry.alphabet);
            let new_class = new_group || previous.is_some_and(|p| p.character != entry.character);
            if let Some(p) = previous
                && !new_class
                && p.drawer == entry.drawer
            {
                return Err(Error::Layout {
                    path: entry.source.clone(),
                    reason: format!(
                        "instance {} of {}/{} appears twice (also {})",
                        entry.drawer,
                        entry.alphabet,
                        entry.character,
                        p.source.display()
                    ),
                });
            }
            if new_group {
                set.groups.push(entry.alphabet.clone());
                set.group_starts.push(set.classes.len());
            }
            if new_class {
                set.classes
                    .push(format!("{}/{}", entry.alphabet, entry.character));
                set.class_group.push((set.groups.len() - 1) as u32);
                set.class_starts.push(i);
            }
            set.image_class.push((set.classes.len() - 1) as u32);
            set.image_instance.push(entry.drawer);
            set.bytes.extend_from_slice(&entry.bits);
        }
        set.group_starts.push(set.classes.len());
        set.class_starts.push(n);
        set.instances = {
            let mut seen = set.image_instance.clone();
            seen.sort_unstable();
            seen.dedup();
            seen
        };
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

    /// Number of classes (Omniglot's characters).
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// Number of groups (Omniglot's alphabets).
    pub fn num_groups(&self) -> usize {
        self.groups.len()
    }

    /// Group names, sorted; the position is the group index.
    pub fn group_names(&self) -> &[String] {
        &self.groups
    }

    /// Index of the group called `name`.
    ///
    /// # Errors
    /// [`Error::NotFound`] listing the groups of this set.
    pub fn group_index(&self, name: &str) -> Result<usize> {
        self.groups
            .binary_search_by(|a| a.as_str().cmp(name))
            .map_err(|_| Error::NotFound {
                kind: "group",
                name: name.into(),
                available: self.groups.clone(),
            })
    }

    /// Indices of the groups called `names`, or of every group for `None`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for the first name that is not a group of this set.
    pub fn group_indices(&self, names: Option<&[&str]>) -> Result<Vec<usize>> {
        match names {
            None => Ok((0..self.num_groups()).collect()),
            Some(names) => names.iter().map(|name| self.group_index(name)).collect(),
        }
    }

    /// Full name of a class: `group/class`, e.g. `Latin/character01`.
    pub fn class_name(&self, class: usize) -> &str {
        &self.classes[class]
    }

    /// Full names of all classes; the position is the class index.
    pub fn class_names(&self) -> &[String] {
        &self.classes
    }

    /// Index of the class with full name `group/class` (a linear search).
    ///
    /// # Errors
    /// [`Error::NotFound`] when no class has that name.
    pub fn class_index(&self, name: &str) -> Result<usize> {
        self.classes
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| Error::NotFound {
                kind: "class",
                name: name.into(),
                available: Vec::new(),
            })
    }

    /// The classes of group `group`.
    pub fn classes_of_group(&self, group: usize) -> Range<usize> {
        self.group_starts[group]..self.group_starts[group + 1]
    }

    /// The group of class `class`.
    pub fn group_of_class(&self, class: usize) -> usize {
        self.class_group[class] as usize
    }

    /// The images of class `class`, in instance order.
    pub fn images_of_class(&self, class: usize) -> Range<usize> {
        self.class_starts[class]..self.class_starts[class + 1]
    }

    /// The class of image `image`.
    pub fn class_of(&self, image: usize) -> usize {
        self.image_class[image] as usize
    }

    /// The group of image `image`.
    pub fn group_of(&self, image: usize) -> usize {
        self.group_of_class(self.class_of(image))
    }

    /// The instance (from 1) of image `image`: its drawer, for Omniglot.
    pub fn instance_of(&self, image: usize) -> u32 {
        self.image_instance[image]
    }

    /// The distinct instances in this set, sorted (drawers 1 to 20 for a full Omniglot set).
    pub fn instances(&self) -> &[u32] {
        &self.instances
    }

    /// The name of instance `instance`: its file stem for a [`LabeledFolder`](super::LabeledFolder)
    /// (`google`), else its number.
    pub fn instance_name(&self, instance: u32) -> String {
        self.instance_names
            .get(&instance)
            .cloned()
            .unwrap_or_else(|| instance.to_string())
    }

    /// The instance called `name` (or numbered `name`).
    ///
    /// # Errors
    /// [`Error::NotFound`] listing this set's instances.
    pub fn instance_named(&self, name: &str) -> Result<u32> {
        self.instances
            .iter()
            .copied()
            .find(|&i| self.instance_name(i) == name)
            .ok_or_else(|| Error::NotFound {
                kind: "instance",
                name: name.into(),
                available: self
                    .instances
                    .iter()
                    .map(|&i| self.instance_name(i))
                    .collect(),
            })
    }

    /// The image of class `class` by instance `instance`, if there is one (a binary search
    /// among the class's images).
    pub fn image_of(&self, class: usize, instance: u32) -> Option<usize> {
        if class >= self.num_classes() {
            return None;
        }
        let range = self.images_of_class(class);
        self.image_instance[range.clone()]
            .binary_search(&instance)
            .ok()
            .map(|i| range.start + i)
    }

    /// How the set's pictures were prepared (and what a network trained on it prepares):
    /// [`Preprocess::Ink`] for Omniglot.
    pub fn preprocess(&self) -> &Preprocess {
        &self.preprocess
    }

    /// Side of the stored pictures (105 for Omniglot).
    pub fn side(&self) -> u32 {
        self.store.side()
    }

    /// Channels of the stored pictures: 1 (grey) or 3 (RGB).
    pub fn channels(&self) -> usize {
        match self.store {
            Store::Rgb(_) => 3,
            Store::Bits | Store::Grey(_) => 1,
        }
    }

    fn stored(&self, image: usize) -> &[u8] {
        let n = self.store.bytes();
        &self.bytes[image * n..(image + 1) * n]
    }

    /// Image `image` as stored: `Luma8` (Omniglot: 105 × 105, ink 255, background 0) or
    /// `Rgb8`.
    pub fn picture(&self, image: usize) -> DynamicImage {
        self.store.picture(self.stored(image))
    }

    /// Image `image` in grey (the luminance of a colour picture). For Omniglot: at its
    /// native 105 × 105, ink-high: ink 255, background 0.
    pub fn image(&self, image: usize) -> GrayImage {
        self.picture(image).into_luma8()
    }

    /// Number of ink pixels of image `image` (grey level 128 and above).
    pub fn ink_pixels(&self, image: usize) -> usize {
        match self.store {
            Store::Bits => self
                .stored(image)
                .iter()
                .map(|b| b.count_ones() as usize)
                .sum(),
            _ => self.image(image).iter().filter(|&&v| v >= 128).count(),
        }
    }

    /// The images of some groups (`None`: all) by some instances (`None`: all), in this
    /// set's order. Repeated names or instances count once.
    ///
    /// # Errors
    /// - [`Error::NotFound`] for a group or instance that this set does not have;
    /// - [`Error::InvalidArgument`] for an empty list, or when a kept class has none
    ///   of the instances asked for.
    pub fn subset(&self, groups: Option<&[&str]>, instances: Option<&[u32]>) -> Result<ImageSet> {
        let keep_group = match groups {
            None => vec![true; self.num_groups()],
            Some([]) => {
                return Err(Error::invalid(
                    "groups",
                    "the list is empty: it keeps nothing",
                ));
            }
            Some(names) => {
                let mut keep = vec![false; self.num_groups()];
                for name in names {
                    keep[self.group_index(name)?] = true;
                }
                keep
            }
        };
        let keep_instance: HashSet<u32> = match instances {
            None => self.instances.iter().copied().collect(),
            Some([]) => {
                return Err(Error::invalid(
                    "instances",
                    "the list is empty: it keeps nothing",
                ));
            }
            Some(list) => {
                for &d in list {
                    if self.instances.binary_search(&d).is_err() {
                        return Err(Error::NotFound {
                            kind: "instance",
                            name: self.instance_name(d),
                            available: self
                                .instances
                                .iter()
                                .map(|&i| self.instance_name(i))
                                .collect(),
                        });
                    }
                }
                list.iter().copied().collect()
            }
        };

        let mut entries = Vec::new();
        for (g, group) in self
            .groups
            .iter()
            .enumerate()
            .filter(|(g, _)| keep_group[*g])
        {
            for class in self.classes_of_group(g) {
                let before = entries.len();
                let name = self.classes[class]
                    .split_once('/')
                    .map_or("", |(_, c)| c)
                    .to_string();
                for image in self.images_of_class(class) {
                    if keep_instance.contains(&self.image_instance[image]) {
                        entries.push(self.entry(image, group, &name));
                    }
                }
                if entries.len() == before {
                    return Err(Error::invalid(
                        "instances",
                        format!(
                            "class {} has none of instances {:?}",
                            self.classes[class],
                            instances.unwrap_or_default()
                        ),
                    ));
                }
            }
        }
        self.derived(self.name.clone(), entries, self.instance_names.clone())
    }

    /// The classes of this set for which `keep(class)` holds, with all their images: to
    /// hold some classes out (for validation, say) in a set of a single group.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when no class is kept.
    pub fn subset_classes(&self, keep: impl Fn(usize) -> bool) -> Result<ImageSet> {
        let mut entries = Vec::new();
        for class in (0..self.num_classes()).filter(|&c| keep(c)) {
            let (group, name) = self.classes[class]
                .split_once('/')
                .expect("class names are group/class");
            for image in self.images_of_class(class) {
                entries.push(self.entry(image, group, name));
            }
        }
        if entries.is_empty() {
            return Err(Error::invalid("classes", "the selection keeps no class"));
        }
        self.derived(self.name.clone(), entries, self.instance_names.clone())
    }

    /// A set of `entries` drawn from this one: same store, preprocessing and names.
    fn derived(
        &self,
        name: String,
        entries: Vec<PackedEntry>,
        instance_names: BTreeMap<u32, String>,
    ) -> Result<ImageSet> {
        let mut set = Self::from_entries(name, entries, self.store)?;
        set.preprocess = self.preprocess.clone();
        set.instance_names = instance_names
            .into_iter()
            .filter(|(id, _)| set.instances.binary_search(id).is_ok())
            .collect();
        Ok(set)
    }

    /// One set, named `name`, of the images of all of `sets`: the background set and
    /// some evaluation alphabets, say, to train on both.
    ///
    /// ```
    /// # use image::{GrayImage, Luma};
    /// # use siamese::data::{ImageSet, LabeledImage};
    /// # let set = |group: &str| ImageSet::from_images(group, (1..=2).map(|d| LabeledImage {
    /// #     group: group.into(), class: "c1".into(), instance: d,
    /// #     image: GrayImage::from_pixel(105, 105, Luma([0])).into(),
    /// # })).unwrap();
    /// let (latin, greek) = (set("Latin"), set("Greek"));
    /// let both = ImageSet::union("both", &[&latin, &greek])?;
    /// assert_eq!((both.num_groups(), both.len()), (2, 4));
    /// assert!(ImageSet::union("twice", &[&latin, &latin]).is_err());
    /// # Ok::<(), siamese::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `sets` is empty, when two of them hold an image
    /// of the same group, class and instance (named), store their pictures differently,
    /// or name one instance differently.
    pub fn union(name: impl Into<String>, sets: &[&ImageSet]) -> Result<ImageSet> {
        let Some(first) = sets.first() else {
            return Err(Error::invalid("sets", "no set to join"));
        };
        let mut entries = Vec::with_capacity(sets.iter().map(|set| set.len()).sum());
        let mut names = BTreeMap::new();
        for set in sets {
            if (set.store, &set.preprocess) != (first.store, &first.preprocess) {
                return Err(Error::invalid(
                    "sets",
                    format!(
                        "{} keeps {:?} pictures prepared as {:?}, {} {:?} as {:?}",
                        set.name,
                        set.store,
                        set.preprocess,
                        first.name,
                        first.store,
                        first.preprocess
                    ),
                ));
            }
            for (id, instance) in &set.instance_names {
                if let Some(other) = names.insert(*id, instance.clone())
                    && other != *instance
                {
                    return Err(Error::invalid(
                        "sets",
                        format!("instance {id} is {other:?} in one set, {instance:?} in another"),
                    ));
                }
            }
            for class in 0..set.num_classes() {
                let (group, class_name) = set.classes[class]
                    .split_once('/')
                    .expect("class names are group/class");
                for image in set.images_of_class(class) {
                    entries.push(set.entry(image, group, class_name));
                }
            }
        }
        first
            .derived(name.into(), entries, names)
            .map_err(|e| match e {
                Error::Layout { reason, .. } => Error::invalid("sets", reason),
                other => other,
            })
    }

    /// Image `image` of this set as an entry of a new one.
    fn entry(&self, image: usize, group: &str, class: &str) -> PackedEntry {
        PackedEntry {
            alphabet: group.to_string(),
            character: class.to_string(),
            drawer: self.image_instance[image],
            bits: self.stored(image).into(),
            source: PathBuf::from(format!("{}/{}", self.name, group)),
        }
    }
}

impl fmt::Display for ImageSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} groups, {} classes, {} images",
            self.name,
            self.num_groups(),
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
                for d in 1..=u32::from(drawers) {
                    let mut image = GrayImage::new(105, 105);
                    let k = (a * characters + c) as u32;
                    for y in 30..75 {
                        image.put_pixel(k % 105, y, Luma([255]));
                        image.put_pixel(30 + d, y, Luma([255]));
                    }
                    images.push(LabeledImage {
                        group: format!("alphabet{a:02}"),
                        class: format!("character{:02}", c + 1),
                        instance: d,
                        image: image.into(),
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
        let bits = pack(&image);
        assert_eq!(bits.len(), PACKED_BYTES);
        assert_eq!(
            Store::Bits.picture(&bits),
            DynamicImage::ImageLuma8(image.clone())
        );
        let set = ImageSet::from_packed(
            "one".into(),
            vec![PackedEntry {
                alphabet: "A".into(),
                character: "c".into(),
                drawer: 3,
                bits,
                source: "A/c/3".into(),
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
    fn colour_pictures_are_stored_as_they_are_and_named_instances_are_found() {
        let picture = |v: u8| -> DynamicImage {
            RgbImage::from_fn(8, 8, |x, y| image::Rgb([v, x as u8, y as u8])).into()
        };
        let images = (1..=3).map(|i| LabeledImage {
            group: "faces".into(),
            class: "smile".into(),
            instance: i,
            image: picture(i as u8 * 40),
        });
        let names = BTreeMap::from([
            (1, "google".into()),
            (2, "openmoji".into()),
            (3, "twitter".into()),
        ]);
        let set = ImageSet::from_images("emoji", images)
            .unwrap()
            .with_instance_names(names)
            .unwrap();
        assert_eq!((set.side(), set.channels()), (8, 3));
        assert_eq!(set.picture(1), picture(80));
        assert_eq!(set.instance_named("twitter").unwrap(), 3);
        assert_eq!(set.instance_name(2), "openmoji");
        let message = set.instance_named("apple").unwrap_err().to_string();
        assert!(
            message.contains("apple") && message.contains("google"),
            "{message}"
        );
        let two = set.subset(None, Some(&[1, 3])).unwrap();
        assert_eq!(two.instance_name(3), "twitter");
        assert!(two.instance_named("openmoji").is_err());

        let grey = LabeledImage {
            group: "faces".into(),
            class: "frown".into(),
            instance: 1,
            image: GrayImage::new(8, 8).into(),
        };
        let mixed = (1..=2)
            .map(|i| LabeledImage {
                group: "faces".into(),
                class: "smile".into(),
                instance: i,
                image: picture(0),
            })
            .chain([grey]);
        let message = ImageSet::from_images("mixed", mixed)
            .unwrap_err()
            .to_string();
        assert!(message.contains("faces/frown"), "{message}");
    }

    #[test]
    fn indexes_are_consistent() {
        let set = toy_set(3, 4, 5);
        assert_eq!(
            (set.num_groups(), set.num_classes(), set.len()),
            (3, 12, 60)
        );
        assert_eq!(set.instances(), [1, 2, 3, 4, 5]);
        for a in 0..set.num_groups() {
            for class in set.classes_of_group(a) {
                assert_eq!(set.group_of_class(class), a);
                for image in set.images_of_class(class) {
                    assert_eq!(set.class_of(image), class);
                    assert_eq!(set.group_of(image), a);
                    assert_eq!(set.image_of(class, set.instance_of(image)), Some(image));
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
                    set.class_name(set.class_of(i)).split_once('/').unwrap();
                LabeledImage {
                    group: alphabet.into(),
                    class: character.into(),
                    instance: set.instance_of(i),
                    image: set.picture(i),
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
        assert_eq!(sub.group_names(), ["alphabet00", "alphabet02"]);
        assert_eq!((sub.num_classes(), sub.len()), (8, 16));
        assert_eq!(sub.instances(), [2, 5]);
        for image in 0..sub.len() {
            let class = set
                .class_index(sub.class_name(sub.class_of(image)))
                .unwrap();
            let original = set.image_of(class, sub.instance_of(image)).unwrap();
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
        assert!(message.contains("instance \"7\""), "{message}");
        assert!(set.subset(Some(&[]), None).is_err());
        assert!(set.subset(None, Some(&[])).is_err());
    }

    #[test]
    fn bad_images_are_refused() {
        let good = LabeledImage {
            group: "A".into(),
            class: "c".into(),
            instance: 1,
            image: GrayImage::new(105, 105).into(),
        };
        let message = ImageSet::from_images("d", [good.clone(), good.clone()])
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("instance 1 of A/c appears twice"),
            "{message}"
        );
        let zero = LabeledImage {
            instance: 0,
            ..good.clone()
        };
        assert!(ImageSet::from_images("z", [zero]).is_err());
        let small = LabeledImage {
            image: GrayImage::new(10, 105).into(),
            ..good.clone()
        };
        assert!(
            ImageSet::from_images("s", [small])
                .unwrap_err()
                .to_string()
                .contains("10×105")
        );
        let slash = LabeledImage {
            group: "A/B".into(),
            ..good
        };
        assert!(ImageSet::from_images("n", [slash]).is_err());
        assert!(ImageSet::from_images("e", []).is_err());
    }
}
