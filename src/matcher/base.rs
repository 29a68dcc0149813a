//! The [`Matcher`]: a network and a gallery, and everything asked of them.

use std::path::Path;

use burn::prelude::*;
use image::DynamicImage;
use rayon::prelude::*;

use super::calibration::{self, Calibration};
use super::folder;
use super::gallery::{Gallery, Match, sigmoid};
use super::gallery_file;
use crate::data::{ImageInput, InputSpec};
use crate::eval::Aggregation;
use crate::tensors::{cat_batches, to_f32s};
use crate::{Error, Result, Siamese};

/// Images embedded in one batch by default.
pub const DEFAULT_BATCH_SIZE: usize = 64;

/// Matches images against a gallery of labelled examples with a trained [`Siamese`]
/// network.
///
/// The gallery holds classes, each with one or more shots (example images), every shot
/// embedded once when it is added. A query is embedded once and scored against every shot
/// by the network's head; a class's score aggregates its shots' logits as the evaluator
/// does ([`Aggregation::Mean`] by default, or [`Aggregation::Max`]).
///
/// Adding a label that is already in the gallery adds shots to that class: it never makes
/// a second class of the same name. Methods that take several images prepare them all
/// before changing anything, so a bad image leaves the gallery as it was.
///
/// ```
/// use image::{GrayImage, Luma};
/// use siamese::SiameseConfig;
/// use siamese::matcher::Matcher;
///
/// let device = siamese::device::default_device()?;
/// let mut matcher = Matcher::new(SiameseConfig::compact().init(&device));
///
/// // Any images: here a vertical and a horizontal bar, black on white.
/// let bar = |vertical: bool| GrayImage::from_fn(60, 60, |x, y| {
///     let on = if vertical { (28..32).contains(&x) } else { (28..32).contains(&y) };
///     Luma([if on { 0 } else { 255 }])
/// });
/// matcher.add("vertical", &bar(true))?;
/// matcher.add("horizontal", &bar(false))?;
/// assert_eq!(matcher.labels(), ["vertical", "horizontal"]);
///
/// let ranking = matcher.classify(&bar(true))?;
/// assert_eq!(ranking.len(), 2);
/// assert!(ranking[0].probability >= ranking[1].probability);
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Matcher {
    model: Siamese,
    /// What the network reads, and how every picture is prepared for it.
    input: InputSpec,
    gallery: Gallery,
    aggregation: Aggregation,
    threshold: f32,
    batch_size: usize,
}

impl Matcher {
    /// A matcher with an empty gallery, the network in evaluation mode on its own device,
    /// [`Aggregation::Mean`], a "same class" threshold of 0.5 and batches of
    /// [`DEFAULT_BATCH_SIZE`] images. Every picture it is given is prepared as the network
    /// says ([`Siamese::input_spec`]): a network trained on colour pictures matches colour.
    pub fn new(model: Siamese) -> Self {
        Self {
            input: model.input_spec(),
            model: model.valid(),
            gallery: Gallery::default(),
            aggregation: Aggregation::Mean,
            threshold: 0.5,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }

    /// Sets how the shots of a class are aggregated (mean or max of their logits).
    pub fn with_aggregation(mut self, aggregation: Aggregation) -> Self {
        self.aggregation = aggregation;
        self
    }

    /// Sets the most images embedded in one batch.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] when `batch_size` is 0.
    pub fn with_batch_size(mut self, batch_size: usize) -> crate::Result<Self> {
        if batch_size == 0 {
            return Err(crate::Error::invalid("batch_size", "must be positive"));
        }
        self.batch_size = batch_size;
        Ok(self)
    }

    /// The network, in evaluation mode.
    pub fn model(&self) -> &Siamese {
        &self.model
    }

    /// How the shots of a class are aggregated.
    pub fn aggregation(&self) -> Aggregation {
        self.aggregation
    }

    /// The probability from which [`Matcher::same_class`] says "same".
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Sets the "same class" threshold by hand (see [`Matcher::calibrate`]).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `threshold` is NaN or infinite.
    pub fn set_threshold(&mut self, threshold: f32) -> Result<()> {
        if !threshold.is_finite() {
            return Err(Error::invalid(
                "threshold",
                format!("{threshold} is not a finite probability"),
            ));
        }
        self.threshold = threshold;
        Ok(())
    }

    /// The class labels, in the order they were first added.
    pub fn labels(&self) -> &[String] {
        &self.gallery.labels
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.gallery.labels.len()
    }

    /// Number of shots, all classes together.
    pub fn num_shots(&self) -> usize {
        self.gallery.shot_class.len()
    }

    /// Number of shots of class `label` (0 when there is no such class).
    pub fn shots(&self, label: &str) -> usize {
        self.gallery
            .class_index(label)
            .map_or(0, |class| self.gallery.shots_per_class()[class])
    }

    /// Whether the gallery has no class.
    pub fn is_empty(&self) -> bool {
        self.gallery.labels.is_empty()
    }

    /// Adds one shot of class `label`: a new class, or one more shot of an existing one.
    ///
    /// ```
    /// use image::{GrayImage, Luma};
    /// use siamese::{SiameseConfig, matcher::Matcher};
    ///
    /// let device = siamese::device::default_device()?;
    /// let mut matcher = Matcher::new(SiameseConfig::compact().init(&device));
    /// let dot = GrayImage::from_fn(105, 105, |x, y| Luma([if x.abs_diff(50) + y.abs_diff(50) < 9 { 255 } else { 0 }]));
    /// matcher.add("dot", &dot)?;
    /// matcher.add("dot", &dot)?; // a second shot, not a second class
    /// assert_eq!((matcher.num_classes(), matcher.num_shots(), matcher.shots("dot")), (1, 2, 2));
    /// assert!(matcher.add("", &dot).is_err());
    /// assert!(matcher.add("empty", &GrayImage::new(0, 0)).is_err());
    /// # Ok::<(), siamese::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty label, and what [`ImageInput::prepare_for`]
    /// returns for an image that cannot be read or has no pixels.
    pub fn add(&mut self, label: impl Into<String>, image: impl ImageInput) -> Result<()> {
        let label = checked_label(label.into())?;
        let image = image.prepare_for(&self.input)?;
        let embeddings = to_f32s(self.embed(&[image]));
        self.gallery
            .push(vec![label], embeddings, self.model.embedding_size());
        Ok(())
    }

    /// The embedding of `image`, prepared as every picture of this matcher is: what
    /// [`Matcher::add_embeddings`] takes, to keep a gallery's embeddings elsewhere (a file, a
    /// database) and register them again without the images.
    ///
    /// # Errors
    /// What [`ImageInput::prepare_for`] returns for the image.
    pub fn embedding(&self, image: impl ImageInput) -> Result<Vec<f32>> {
        let image = image.prepare_for(&self.input)?;
        Ok(to_f32s(self.embed(&[image])))
    }

    /// Adds shots from embeddings computed earlier by this matcher's network
    /// ([`Matcher::embedding`]): `rows` holds one row of [`Siamese::embedding_size`] values
    /// for each label, row after row. Returns the number of shots added; nothing is added on
    /// error.
    ///
    /// ```
    /// use image::{GrayImage, Luma};
    /// use siamese::{SiameseConfig, matcher::Matcher};
    ///
    /// let device = siamese::device::default_device()?;
    /// let mut matcher = Matcher::new(SiameseConfig::compact().init(&device));
    /// let page = |x0: u32| GrayImage::from_fn(105, 105, |x, _| Luma([if x / 10 == x0 { 255 } else { 0 }]));
    /// let rows = [matcher.embedding(&page(2))?, matcher.embedding(&page(8))?].concat();
    /// assert_eq!(matcher.add_embeddings(["left", "right"], rows)?, 2);
    /// assert_eq!(matcher.classify(&page(2))?.len(), 2);
    /// assert!(matcher.add_embeddings(["short"], vec![0.5; 3]).is_err());
    /// # Ok::<(), siamese::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty label, rows of another width than the
    /// network's embeddings, or a value that is not finite.
    pub fn add_embeddings<L: Into<String>>(
        &mut self,
        labels: impl IntoIterator<Item = L>,
        rows: Vec<f32>,
    ) -> Result<usize> {
        let labels = labels
            .into_iter()
            .map(|label| checked_label(label.into()))
            .collect::<Result<Vec<_>>>()?;
        let dim = self.model.embedding_size();
        if rows.len() != labels.len() * dim {
            return Err(Error::invalid(
                "rows",
                format!(
                    "{} values for {} labels: the network's embeddings are {dim} wide",
                    rows.len(),
                    labels.len()
                ),
            ));
        }
        if let Some(at) = rows.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "rows",
                format!("value {} of row {} is {}", at % dim, at / dim, rows[at]),
            ));
        }
        let added = labels.len();
        self.gallery.push(labels, rows, dim);
        Ok(added)
    }

    /// Adds many shots at once, embedding them in batches; labels may repeat (more shots of
    /// one class). Returns the number of shots added. Nothing is added when one item fails.
    ///
    /// ```
    /// use image::{GrayImage, Luma};
    /// use siamese::{SiameseConfig, matcher::Matcher};
    ///
    /// let device = siamese::device::default_device()?;
    /// let mut matcher = Matcher::new(SiameseConfig::compact().init(&device));
    /// let page = |v: u8| GrayImage::from_fn(105, 105, |x, _| Luma([if x < 10 * u32::from(v) { 255 } else { 0 }]));
    /// let added = matcher.add_many([("a", page(1)), ("b", page(2)), ("a", page(3))])?;
    /// assert_eq!((added, matcher.num_classes(), matcher.shots("a")), (3, 2, 2));
    ///
    /// let bad = matcher.add_many([("c", page(4)), ("d", GrayImage::new(0, 0))]);
    /// assert!(bad.is_err());
    /// assert_eq!(matcher.num_classes(), 2); // "c" was not added either
    /// # Ok::<(), siamese::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Matcher::add`] for the first item at fault (its position is in the message
    /// of an in-memory image's error).
    pub fn add_many<L, I>(&mut self, items: impl IntoIterator<Item = (L, I)>) -> Result<usize>
    where
        L: Into<String>,
        I: ImageInput + Sync,
    {
        let (labels, images): (Vec<String>, Vec<I>) = items
            .into_iter()
            .map(|(label, image)| (label.into(), image))
            .unzip();
        let labels = labels
            .into_iter()
            .map(checked_label)
            .collect::<Result<Vec<_>>>()?;
        if labels.is_empty() {
            return Ok(0);
        }
        let images = prepare_all(&images, &self.input)?;
        let embeddings = to_f32s(self.embed(&images));
        self.gallery
            .push(labels, embeddings, self.model.embedding_size());
        Ok(images.len())
    }

    /// Adds every image of a gallery folder: one subfolder per class, named by its label,
    /// holding any number of images in any format the `image` crate reads. Hidden entries
    /// and files that are not images (by extension) are skipped; classes are added in
    /// order of their folder names. Returns the number of shots added.
    ///
    /// ```
    /// use image::{GrayImage, Luma};
    /// use siamese::{SiameseConfig, matcher::Matcher};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// for (class, shots) in [("alpha", 2), ("beta", 1)] {
    ///     std::fs::create_dir(dir.path().join(class)).unwrap();
    ///     for shot in 0..shots {
    ///         let page = GrayImage::from_fn(64, 48, |x, _| Luma([if x == 10 + shot { 0 } else { 255 }]));
    ///         page.save(dir.path().join(class).join(format!("{shot}.png"))).unwrap();
    ///     }
    /// }
    /// let device = siamese::device::default_device()?;
    /// let mut matcher = Matcher::new(SiameseConfig::compact().init(&device));
    /// assert_eq!(matcher.add_folder(dir.path())?, 3);
    /// assert_eq!(matcher.labels(), ["alpha", "beta"]);
    /// assert_eq!(matcher.shots("alpha"), 2);
    /// # Ok::<(), siamese::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] when a folder cannot be listed or an image read; [`Error::Layout`] when
    /// `dir` has no subfolder or a subfolder no image; [`Error::Image`] naming the first
    /// image that does not decode. Nothing is added on error.
    pub fn add_folder(&mut self, dir: impl AsRef<Path>) -> Result<usize> {
        let items: Vec<(String, std::path::PathBuf)> = folder::class_folders(dir.as_ref())?
            .into_iter()
            .flat_map(|(label, files)| files.into_iter().map(move |f| (label.clone(), f)))
            .collect();
        self.add_many(items)
    }

    /// Removes class `label` and all its shots; returns how many shots it had.
    ///
    /// # Errors
    /// [`Error::NotFound`] listing the labels when there is no such class.
    pub fn remove(&mut self, label: &str) -> Result<usize> {
        self.gallery.remove(label)
    }

    /// Ranks every class of the gallery for `image`, best first (ties keep the order in
    /// which the classes were added).
    ///
    /// ```
    /// use image::{GrayImage, Luma};
    /// use siamese::{SiameseConfig, matcher::Matcher};
    ///
    /// let device = siamese::device::default_device()?;
    /// let mut matcher = Matcher::new(SiameseConfig::compact().init(&device));
    /// assert!(matcher.classify(&GrayImage::new(9, 9)).is_err()); // empty gallery
    ///
    /// let page = |x0: u32| GrayImage::from_fn(105, 105, |x, _| Luma([if x / 10 == x0 { 255 } else { 0 }]));
    /// matcher.add_many([("left", page(2)), ("right", page(8))])?;
    /// let ranking = matcher.classify(&page(2))?;
    /// assert_eq!(ranking.len(), 2);
    /// assert!(ranking.iter().all(|m| (0.0..=1.0).contains(&m.probability)));
    /// # Ok::<(), siamese::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the gallery is empty, and what
    /// [`ImageInput::prepare_for`] returns for the image.
    pub fn classify(&self, image: impl ImageInput) -> Result<Vec<Match>> {
        self.check_not_empty()?;
        let query = image.prepare_for(&self.input)?;
        let mut rankings = self.rank(&[query])?;
        Ok(rankings.pop().expect("one query, one ranking"))
    }

    /// The `k` best classes for `image` (all of them when the gallery has fewer).
    ///
    /// ```
    /// use image::{GrayImage, Luma};
    /// use siamese::{SiameseConfig, matcher::Matcher};
    ///
    /// let device = siamese::device::default_device()?;
    /// let mut matcher = Matcher::new(SiameseConfig::compact().init(&device));
    /// let page = |v: u32| GrayImage::from_fn(105, 105, |x, y| Luma([if (x + y) % v == 0 { 255 } else { 0 }]));
    /// matcher.add_many((3..8).map(|v| (format!("every {v}"), page(v))))?;
    /// let best = matcher.top_k(&page(5), 2)?;
    /// assert_eq!(best.len(), 2);
    /// assert_eq!(best, matcher.classify(&page(5))?[..2]);
    /// assert!(matcher.top_k(&page(5), 0).is_err());
    /// # Ok::<(), siamese::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Matcher::classify`], and [`Error::InvalidArgument`] when `k` is 0.
    pub fn top_k(&self, image: impl ImageInput, k: usize) -> Result<Vec<Match>> {
        if k == 0 {
            return Err(Error::invalid("k", "must be at least 1"));
        }
        let mut ranking = self.classify(image)?;
        ranking.truncate(k);
        Ok(ranking)
    }

    /// Ranks the gallery's classes for each of `images`, embedding them in batches: the
    /// same rankings as [`Matcher::classify`] on each.
    ///
    /// ```
    /// use image::{GrayImage, Luma};
    /// use siamese::{SiameseConfig, matcher::Matcher};
    ///
    /// let device = siamese::device::default_device()?;
    /// let mut matcher = Matcher::new(SiameseConfig::compact().init(&device));
    /// let page = |v: u32| GrayImage::from_fn(105, 105, |x, _| Luma([if x % v == 0 { 255 } else { 0 }]));
    /// matcher.add_many([("a", page(3)), ("b", page(7))])?;
    /// let queries = [page(3), page(5), page(7)];
    /// let rankings = matcher.classify_batch(&queries)?;
    /// assert_eq!(rankings.len(), 3);
    /// assert_eq!(rankings[1][0].label, matcher.classify(&queries[1])?[0].label);
    /// # Ok::<(), siamese::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Matcher::classify`], for the first image at fault.
    pub fn classify_batch<I: ImageInput + Sync>(&self, images: &[I]) -> Result<Vec<Vec<Match>>> {
        self.check_not_empty()?;
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let queries = prepare_all(images, &self.input)?;
        self.rank(&queries)
    }

    /// Probability that `a` and `b` show the same class (the network's score of the pair;
    /// the gallery plays no part). Symmetric: `verify(a, b) == verify(b, a)` exactly.
    ///
    /// ```
    /// use image::{GrayImage, Luma};
    /// use siamese::{SiameseConfig, matcher::Matcher};
    ///
    /// let device = siamese::device::default_device()?;
    /// let matcher = Matcher::new(SiameseConfig::compact().init(&device));
    /// let a = GrayImage::from_fn(105, 105, |x, _| Luma([if x == 50 { 255 } else { 0 }]));
    /// let b = GrayImage::from_fn(105, 105, |_, y| Luma([if y == 50 { 255 } else { 0 }]));
    /// let p = matcher.verify(&a, &b)?;
    /// assert!((0.0..=1.0).contains(&p));
    /// assert_eq!(p, matcher.verify(&b, &a)?);
    /// assert_eq!(matcher.same_class(&a, &b)?, p >= matcher.threshold());
    /// # Ok::<(), siamese::Error>(())
    /// ```
    ///
    /// # Errors
    /// What [`ImageInput::prepare_for`] returns for either image.
    pub fn verify(&self, a: impl ImageInput, b: impl ImageInput) -> Result<f32> {
        let (a, b) = (a.prepare_for(&self.input)?, b.prepare_for(&self.input)?);
        // Always embed the two in the same order, so that the result is exactly symmetric.
        let pair = if a.as_bytes() <= b.as_bytes() {
            [a, b]
        } else {
            [b, a]
        };
        let embeddings = self.embed(&pair);
        let logit = self.model.head.forward(
            embeddings.clone().narrow(0, 0, 1),
            embeddings.narrow(0, 1, 1),
        );
        Ok(sigmoid(to_f32s(logit)[0]))
    }

    /// Whether `a` and `b` show the same class: [`Matcher::verify`] at least
    /// [`Matcher::threshold`].
    ///
    /// # Errors
    /// As [`Matcher::verify`].
    pub fn same_class(&self, a: impl ImageInput, b: impl ImageInput) -> Result<bool> {
        Ok(self.verify(a, b)? >= self.threshold)
    }

    /// Sets the "same class" threshold from labelled pairs `(a, b, same)`: the threshold
    /// with the best balanced accuracy on them (the mean of the accuracies on same-class
    /// and different-class pairs). Returns what was chosen and how well it does there;
    /// measure it on other pairs for an honest figure.
    ///
    /// ```
    /// use image::{GrayImage, Luma};
    /// use siamese::{SiameseConfig, matcher::Matcher};
    ///
    /// let device = siamese::device::default_device()?;
    /// let mut matcher = Matcher::new(SiameseConfig::compact().init(&device));
    /// let bar = |x0: u32| GrayImage::from_fn(105, 105, |x, _| Luma([if x.abs_diff(x0) < 3 { 255 } else { 0 }]));
    /// let pairs = [
    ///     (bar(30), bar(31), true),
    ///     (bar(70), bar(71), true),
    ///     (bar(30), bar(70), false),
    ///     (bar(20), bar(80), false),
    /// ];
    /// let calibration = matcher.calibrate(&pairs)?;
    /// assert_eq!(matcher.threshold(), calibration.threshold);
    /// assert_eq!((calibration.same_pairs, calibration.different_pairs), (2, 2));
    /// assert!(calibration.balanced_accuracy >= 0.5);
    /// assert!(matcher.calibrate(&pairs[..2]).is_err()); // no different-class pair
    /// # Ok::<(), siamese::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when there is not at least one same-class and one
    /// different-class pair, and what [`ImageInput::prepare_for`] returns for an image.
    /// The threshold is unchanged on error.
    pub fn calibrate<I: ImageInput + Sync>(
        &mut self,
        pairs: &[(I, I, bool)],
    ) -> Result<Calibration> {
        let same: Vec<bool> = pairs.iter().map(|p| p.2).collect();
        // Check the kinds before embedding anything.
        calibration::count_kinds(&same)?;
        let images: Vec<&I> = pairs
            .iter()
            .map(|p| &p.0)
            .chain(pairs.iter().map(|p| &p.1))
            .collect();
        let images = prepare_all(&images, &self.input)?;
        let embeddings = self.embed(&images);
        let n = pairs.len();
        let logits = self.model.head.forward(
            embeddings.clone().narrow(0, 0, n),
            embeddings.narrow(0, n, n),
        );
        let probabilities: Vec<f32> = to_f32s(logits).into_iter().map(sigmoid).collect();
        let calibration = calibration::best_threshold(&probabilities, &same)?;
        self.threshold = calibration.threshold;
        Ok(calibration)
    }

    /// Saves the gallery (labels and embeddings), the aggregation and the threshold to
    /// `path`, with what identifies the network: its input size, embedding width and the
    /// embeddings of two fixed probe images. [`Matcher::load`] refuses the file with
    /// another network. Written through a temporary file and a rename.
    ///
    /// ```
    /// use image::{GrayImage, Luma};
    /// use siamese::{SiameseConfig, matcher::Matcher};
    ///
    /// let device = siamese::device::default_device()?;
    /// let model = SiameseConfig::compact().init(&device);
    /// let mut matcher = Matcher::new(model.clone());
    /// let page = |v: u32| GrayImage::from_fn(105, 105, |x, _| Luma([if x % v == 0 { 255 } else { 0 }]));
    /// matcher.add_many([("a", page(3)), ("b", page(7))])?;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("gallery.siam");
    /// matcher.save(&path)?;
    /// let loaded = Matcher::load(model, &path)?;
    /// assert_eq!(loaded.classify(&page(5))?, matcher.classify(&page(5))?);
    ///
    /// let other = SiameseConfig::compact().init(&device); // other (random) weights
    /// let err = Matcher::load(other, &path).unwrap_err();
    /// assert!(err.to_string().contains("other weights"));
    /// # Ok::<(), siamese::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Checkpoint`] naming the file that could not be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        gallery_file::save(
            path.as_ref(),
            &self.model,
            self.probe(),
            &self.gallery,
            self.aggregation,
            self.threshold,
        )
    }

    /// A matcher with `model` and the gallery, aggregation and threshold saved at `path`
    /// by [`Matcher::save`] (example there). The gallery's embeddings are used as saved,
    /// not recomputed.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read; [`Error::Checkpoint`] naming it when it
    /// is not a gallery file, is truncated or inconsistent, or was made by another network
    /// (another input size or embedding width, or other weights).
    pub fn load(model: Siamese, path: impl AsRef<Path>) -> Result<Self> {
        let mut matcher = Self::new(model);
        let (gallery, aggregation, threshold) =
            gallery_file::load(path.as_ref(), &matcher.model, &matcher.probe())?;
        matcher.gallery = gallery;
        matcher.aggregation = aggregation;
        matcher.threshold = threshold;
        Ok(matcher)
    }

    /// Embeds canonical images in batches.
    ///
    /// # Shapes
    /// - output: `[images.len(), D]`
    fn embed(&self, images: &[DynamicImage]) -> Tensor<2> {
        let batches = images
            .chunks(self.batch_size)
            .map(|chunk| {
                let chunk: Vec<&DynamicImage> = chunk.iter().collect();
                self.model
                    .embed_images(&chunk)
                    .expect("callers embed at least one image")
            })
            .collect();
        cat_batches(batches)
    }

    /// Rankings of canonical queries against the gallery (which must not be empty).
    fn rank(&self, queries: &[DynamicImage]) -> Result<Vec<Vec<Match>>> {
        let queries = to_f32s(self.embed(queries));
        let weight = to_f32s(self.model.head.weight.val());
        let bias = to_f32s(self.model.head.bias.val())[0];
        let logits = self.gallery.logits(&queries, &weight, bias);
        logits
            .chunks(self.num_shots())
            .map(|row| self.gallery.rank(row, self.aggregation))
            .collect()
    }

    /// The probe images' embeddings, which identify the network in a gallery file.
    fn probe(&self) -> Vec<f32> {
        to_f32s(self.embed(&gallery_file::probe_images()))
    }

    fn check_not_empty(&self) -> Result<()> {
        if self.is_empty() {
            return Err(Error::invalid(
                "gallery",
                "it is empty; add labelled images first (add, add_many, add_folder)",
            ));
        }
        Ok(())
    }
}

/// A label in Unicode's composed form (NFC), refused when empty or holding a control
/// character (a newline in a label would forge a line of whatever prints it).
fn checked_label(label: String) -> Result<String> {
    if label.is_empty() {
        return Err(Error::invalid("label", "is empty"));
    }
    if label.chars().any(char::is_control) {
        return Err(Error::invalid(
            "label",
            format!("{label:?} holds a control character"),
        ));
    }
    // One label however its accents were typed (composed or decomposed): one class.
    use unicode_normalization::UnicodeNormalization;
    Ok(label.nfc().collect())
}

/// `images` prepared for `input` in parallel; the first error in order wins, and an
/// in-memory image's error says which one it was.
fn prepare_all<I: ImageInput + Sync>(images: &[I], input: &InputSpec) -> Result<Vec<DynamicImage>> {
    let prepared: Vec<Result<DynamicImage>> = images
        .par_iter()
        .map(|image| image.prepare_for(input))
        .collect();
    prepared
        .into_iter()
        .enumerate()
        .map(|(i, result)| {
            result.map_err(|e| match e {
                Error::InvalidArgument { name, reason } if images.len() > 1 => {
                    Error::InvalidArgument {
                        name,
                        reason: format!("{reason} (image {i} of {})", images.len()),
                    }
                }
                other => other,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SiameseConfig;
    use image::{GrayImage, Luma};

    fn bar(x0: u32) -> GrayImage {
        GrayImage::from_fn(105, 105, |x, y| {
            Luma([if x.abs_diff(x0) < 3 && y > 20 { 255 } else { 0 }])
        })
    }

    /// A label holding a newline used to forge a line of `match_images`'s output.
    #[test]
    fn labels_with_control_characters_are_refused() {
        let device = crate::device::default_device().unwrap();
        let mut matcher = Matcher::new(crate::testing::tiny_siamese().init(&device));
        for label in ["a\nb", "tab\there", "bell\u{7}"] {
            let message = matcher.add(label, bar(20)).unwrap_err().to_string();
            assert!(message.contains("control character"), "{message}");
        }
        assert!(matcher.is_empty());
        matcher.add("émoji ünïcode", bar(20)).unwrap();
        // The same label typed decomposed (`e` + a combining accent) is the same class.
        matcher.add("e\u{301}moji ünïcode", bar(25)).unwrap();
        assert_eq!(matcher.num_classes(), 1);
    }

    #[test]
    fn a_zero_batch_size_is_a_named_error() {
        let device = crate::device::default_device().unwrap();
        let model = crate::testing::tiny_siamese().init(&device);
        let message = Matcher::new(model)
            .with_batch_size(0)
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains("batch_size"), "{message}");
    }

    crate::device_tests! {
        fn a_gallery_saved_on_the_default_device_loads_on_every_device(device) {
            let dir = tempfile::tempdir().unwrap();
            let home = crate::device::default_device().unwrap();
            let model = SiameseConfig::compact().init(&home);
            model.save(dir.path().join("model.bpk")).unwrap();
            let mut matcher = Matcher::new(model).with_batch_size(2).unwrap();
            matcher.add_many([("a", bar(20)), ("b", bar(50)), ("c", bar(80)), ("a", bar(25))]).unwrap();
            let gallery = dir.path().join("gallery.siam");
            matcher.save(&gallery).unwrap();

            let here = Siamese::load(dir.path().join("model.bpk"), &device).unwrap();
            let loaded = Matcher::load(here, &gallery).unwrap();
            assert_eq!(loaded.labels(), ["a", "b", "c"]);
            let queries = [bar(30), bar(60)];
            let expected = matcher.classify_batch(&queries).unwrap();
            let got = loaded.classify_batch(&queries).unwrap();
            for (expected, got) in expected.iter().zip(&got) {
                for m in expected {
                    let other = got.iter().find(|g| g.label == m.label).unwrap();
                    assert!((m.probability - other.probability).abs() < 1e-4, "{m:?} {other:?}");
                }
            }
            // Batching does not change the answer beyond rounding.
            let one = loaded.classify(&queries[1]).unwrap();
            for (a, b) in one.iter().zip(&got[1]) {
                assert_eq!(a.label, b.label);
                assert!((a.logit - b.logit).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn calibration_leaves_the_threshold_alone_on_error() {
        let device = crate::device::default_device().unwrap();
        let mut matcher = Matcher::new(SiameseConfig::compact().init(&device));
        matcher.set_threshold(0.3).unwrap();
        let only_same = [(bar(20), bar(21), true)];
        assert!(matcher.calibrate(&only_same).is_err());
        let bad_image = [
            (bar(20), bar(21), true),
            (bar(20), GrayImage::new(0, 0), false),
        ];
        let err = matcher.calibrate(&bad_image).unwrap_err();
        assert!(err.to_string().contains("image 3 of 4"), "{err}");
        assert_eq!(matcher.threshold(), 0.3);
        assert!(matcher.set_threshold(f32::NAN).is_err());
        assert_eq!(matcher.threshold(), 0.3);
    }
}
