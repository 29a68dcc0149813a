//! The Siamese network: one encoder applied to both images, and the L1 distance head.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::nn::Initializer;
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::activation::sigmoid;
use image::DynamicImage;

use super::encoder::{Encoder, EncoderConfig, KOCH_BIAS_INIT, KOCH_FC_INIT};
use super::head::{L1DistanceHead, L1DistanceHeadConfig};
use crate::data::{InputSpec, Preprocess};
use crate::io::FileKind;
use crate::{Error, Result};

/// A network's weights (`.bpk`): Koch's network takes 156 MB.
const WEIGHTS: FileKind = FileKind::new("a weights file", 1 << 30);

/// The JSON configuration beside the weights.
const CONFIG: FileKind = FileKind::new("a configuration", 1 << 20);

/// Configuration of a [`Siamese`] network.
#[derive(Config, Debug)]
pub struct SiameseConfig {
    /// The twin encoder.
    pub encoder: EncoderConfig,
    /// Initializer of the head's weights `alpha` (Koch: normal, mean 0, std 0.2).
    #[config(default = "KOCH_FC_INIT")]
    pub head_initializer: Initializer,
    /// Initializer of the head's bias (Koch: normal, mean 0.5, std 0.01).
    #[config(default = "KOCH_BIAS_INIT")]
    pub head_bias_initializer: Initializer,
    /// How pictures are prepared for the network ([`Preprocess`]): the rule the trainer,
    /// the evaluator and the matcher all follow. `None`, what a configuration written
    /// before it existed loads as, is [`Preprocess::Ink`].
    pub preprocess: Option<Preprocess>,
}

impl SiameseConfig {
    /// The paper's network: [`EncoderConfig::koch`] and Koch's head.
    pub fn koch() -> Self {
        Self::new(EncoderConfig::koch())
    }

    /// The CPU-friendly network: [`EncoderConfig::compact`] and Koch's head.
    pub fn compact() -> Self {
        Self::new(EncoderConfig::compact())
    }

    /// The compact network for colour pictures: three input channels, pictures fitted on
    /// a white background ([`Preprocess::picture`]).
    pub fn compact_pictures() -> Self {
        Self::new(EncoderConfig::compact().with_channels(Some(3)))
            .with_preprocess(Some(Preprocess::picture()))
    }

    /// A weights file of this configuration: at most 8 bytes a parameter and statistic (all
    /// stored as `f64`) and 1 MiB of names and headers, within [`WEIGHTS`].
    fn weights_kind(&self) -> FileKind {
        let values = self.encoder.parameter_count().unwrap_or(usize::MAX / 8) as u64
            + self.encoder.output_size() as u64
            + 1;
        let bound = values.saturating_mul(8).saturating_add(1 << 20);
        FileKind::new(
            "a weights file of this configuration",
            bound.min(WEIGHTS.limit()),
        )
    }

    /// What the network reads: its channels, side and preprocessing.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the encoder's channels or side are not a valid
    /// input ([`InputSpec::new`]).
    pub fn input_spec(&self) -> Result<InputSpec> {
        InputSpec::new(
            self.encoder.in_channels(),
            self.encoder.input_size,
            self.preprocess.clone().unwrap_or(Preprocess::Ink),
        )
    }

    /// Reads a configuration from JSON (as [`Siamese::save`] writes it beside the weights),
    /// checked by [`EncoderConfig::validate`]: how a network described in a file is trained.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, [`Error::Checkpoint`] naming it when it
    /// is not a valid configuration.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let json = crate::io::read_text(path, CONFIG)?;
        Self::parse(&json).map_err(|reason| Error::checkpoint(path, reason))
    }

    /// Parses and validates a JSON configuration, or says why it is not one.
    fn parse(json: &str) -> std::result::Result<Self, String> {
        let config: Self =
            serde_json::from_str(json).map_err(|e| format!("invalid configuration: {e}"))?;
        config.encoder.validate().map_err(|e| e.to_string())?;
        config.input_spec().map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// Initialize a new [`Siamese`] network.
    ///
    /// # Panics
    /// When the encoder configuration is invalid (see [`EncoderConfig::validate`]).
    pub fn init(&self, device: &Device) -> Siamese {
        let encoder = self.encoder.init(device);
        let head = L1DistanceHeadConfig::new(self.encoder.output_size())
            .with_initializer(self.head_initializer.clone())
            .with_bias_initializer(self.head_bias_initializer.clone())
            .init(device);
        Siamese {
            encoder,
            head,
            config: self.clone(),
        }
    }
}

/// Twin encoders with tied weights and a weighted L1 distance head
/// (Koch, Zemel and Salakhutdinov 2015).
///
/// ```
/// use burn::prelude::*;
/// use siamese::SiameseConfig;
///
/// let device = siamese::device::default_device()?;
/// let model = SiameseConfig::compact().init(&device);
/// let [s, _] = model.input_shape();
/// let a = Tensor::<4>::zeros([1, 1, s, s], &device);
/// let b = Tensor::<4>::ones([1, 1, s, s], &device);
/// let p: f32 = model.score(a, b).into_scalar();
/// assert!((0.0..=1.0).contains(&p));
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Siamese {
    /// The encoder shared by both inputs.
    pub encoder: Encoder,
    /// The distance head.
    pub head: L1DistanceHead,
    /// The configuration the network was built from (saved beside the weights).
    #[module(skip)]
    pub config: SiameseConfig,
}

impl Siamese {
    /// Side of the square images the network takes, twice (`[height, width]`).
    pub fn input_shape(&self) -> [usize; 2] {
        [self.config.encoder.input_size; 2]
    }

    /// What the network reads, and how a picture is prepared for it: what the trainer, the
    /// evaluator and the matcher take from it.
    pub fn input_spec(&self) -> InputSpec {
        self.config
            .input_spec()
            .expect("a network is built from a validated configuration")
    }

    /// Width `D` of the embeddings.
    pub fn embedding_size(&self) -> usize {
        self.config.encoder.output_size()
    }

    /// Pair logits. Both batches go through the encoder as one batch, so batch norm (where
    /// configured) sees the same statistics for both sides.
    ///
    /// # Shapes
    /// - left, right: `[B, C, S, S]`
    /// - output: `[B, 1]` (logits; `sigmoid` gives the probability of "same class")
    pub fn forward(&self, left: Tensor<4>, right: Tensor<4>) -> Tensor<2> {
        let batch = left.dims()[0];
        assert_eq!(
            batch,
            right.dims()[0],
            "left and right batches differ in size"
        );
        let embeddings = self.embed(Tensor::cat(vec![left, right], 0));
        let left = embeddings.clone().narrow(0, 0, batch);
        let right = embeddings.narrow(0, batch, batch);
        self.head.forward(left, right)
    }

    /// The device the network's weights are on.
    pub fn device(&self) -> Device {
        self.head.bias.val().device()
    }

    /// Embeds prepared pictures ([`InputSpec::prepare`]; any size: each is resized to the
    /// network's input with [`InputSpec::to_input`]) in one batch on the network's device:
    /// the one way from pictures to the network.
    ///
    /// ```
    /// use image::{DynamicImage, GrayImage};
    /// use siamese::SiameseConfig;
    ///
    /// let device = siamese::device::default_device()?;
    /// let model = SiameseConfig::compact().init(&device);
    /// let images: [DynamicImage; 2] = [GrayImage::new(105, 105).into(), GrayImage::new(30, 40).into()];
    /// let embeddings = model.embed_images(&images.iter().collect::<Vec<_>>())?;
    /// assert_eq!(embeddings.dims(), [2, model.embedding_size()]);
    /// assert!(model.embed_images(&[]).is_err());
    /// # Ok::<(), siamese::Error>(())
    /// ```
    ///
    /// # Shapes
    /// - output: `[images.len(), D]`
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `images` is empty.
    pub fn embed_images(&self, images: &[&DynamicImage]) -> Result<Tensor<2>> {
        if images.is_empty() {
            return Err(Error::invalid("images", "nothing to embed"));
        }
        Ok(self.embed(self.input_spec().batch(images, &self.device())))
    }

    /// Embeds a batch of images.
    ///
    /// # Shapes
    /// - images: `[B, C, S, S]`
    /// - output: `[B, D]`
    pub fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        self.encoder.forward(images)
    }

    /// Probability that each pair shows the same class.
    ///
    /// # Shapes
    /// - left, right: `[B, C, S, S]`
    /// - output: `[B]`
    pub fn score(&self, left: Tensor<4>, right: Tensor<4>) -> Tensor<1> {
        sigmoid(self.forward(left, right)).flatten(0, 1)
    }

    /// Probability that each query shows the class of each support, embedding every image
    /// once (`Q + S` encoder passes instead of `Q × S`).
    ///
    /// # Shapes
    /// - queries: `[Q, C, S, S]`
    /// - supports: `[N, C, S, S]`
    /// - output: `[Q, N]`
    pub fn score_all(&self, queries: Tensor<4>, supports: Tensor<4>) -> Tensor<2> {
        sigmoid(
            self.head
                .forward_all(self.embed(queries), self.embed(supports)),
        )
    }

    /// Saves the weights to `path` (burnpack, conventionally `.bpk`) and the configuration
    /// beside them (same name, `.json`). Each file is written to a
    /// temporary name first and then renamed, so a crash never leaves a half-written file.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Checkpoint`] naming the file that could not be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let json = self.config.to_string();
        crate::io::write_atomically(&config_path(path), json.as_bytes())?;
        let bytes = self
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| Error::checkpoint(path, e))?;
        crate::io::write_atomically(path, &bytes)
    }

    /// Loads a network saved by [`Siamese::save`] onto `device`.
    ///
    /// # Errors
    /// [`Error::Io`] when a file is missing, [`Error::Checkpoint`] when the weights are
    /// truncated or corrupt, or do not match the configuration (the message names the
    /// tensors at fault).
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        // The weights first, so that a missing .bpk is reported as such, not as its .json;
        // then the configuration, which says how large the weights can be: a file longer
        // than that is refused from its length, before any of it is read.
        crate::io::open_regular(path, WEIGHTS)?;
        let config = SiameseConfig::read(config_path(path))?;
        let weights = crate::io::read_bounded(path, config.weights_kind())?;
        Self::assemble(&config, weights, device).map_err(|reason| Error::checkpoint(path, reason))
    }

    /// Builds a network from a configuration (JSON, as [`Siamese::save`] writes it) and
    /// burnpack bytes: the way to load weights embedded with `include_bytes!`.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when either part is corrupt or they do not match; its path is
    /// `<config>` or `<weights>`.
    pub fn from_parts(config_json: &str, weights: Vec<u8>, device: &Device) -> Result<Self> {
        let config =
            SiameseConfig::parse(config_json).map_err(|r| Error::checkpoint("<config>", r))?;
        Self::assemble(&config, weights, device).map_err(|r| Error::checkpoint("<weights>", r))
    }

    /// The network of `config` with `weights` loaded, or why they do not go together.
    fn assemble(
        config: &SiameseConfig,
        weights: Vec<u8>,
        device: &Device,
    ) -> std::result::Result<Self, String> {
        let bytes = burn::tensor::Bytes::from_bytes_vec(weights);
        let fresh = config.init(device);
        check_float_tensors(&fresh, bytes.clone())?;
        let record =
            ModuleRecord::from_bytes(bytes).map_err(|e| format!("unreadable weights: {e}"))?;
        let model = fresh
            .try_load_record(record)
            .map_err(|e| format!("weights do not match the configuration: {e}"))?
            .map(&mut ToF32);
        let mut check = ParamCheck {
            check_values: true,
            ..ParamCheck::default()
        };
        model.visit(&mut check);
        match check.found {
            // NaN or infinite weights would score every pair NaN, and rank by it silently.
            Some(found) => Err(format!("weights hold an impossible value: {found}")),
            None => Ok(model),
        }
    }
}

/// Checks what Burn's record loading would otherwise panic on ("Expected float dtype"):
/// every tensor stored for one of `model`'s float parameters holds floats.
fn check_float_tensors(
    model: &Siamese,
    weights: burn::tensor::Bytes,
) -> std::result::Result<(), String> {
    let mut paths = ParamCheck::default();
    model.visit(&mut paths);
    let tensors = burn_pack::Reader::from_bytes(weights)
        .and_then(burn_pack::Reader::into_tensors)
        .map_err(|e| format!("unreadable weights: {e}"))?;
    match tensors
        .iter()
        .find(|t| !t.dtype.is_float() && paths.floats.contains(&t.name))
    {
        Some(t) => Err(format!(
            "{} is stored as {:?}, not as floating-point numbers",
            t.name, t.dtype
        )),
        None => Ok(()),
    }
}

/// Brings every float tensor to 32 bits: a weights file may store some as F64, F16 or
/// BF16, which Burn loads as they are and then refuses to multiply with 32-bit inputs.
struct ToF32;

impl burn::module::ModuleMapper for ToF32 {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        param.map(|t| {
            if t.dtype() == burn::tensor::DType::F32 {
                t
            } else {
                t.cast(burn::tensor::FloatDType::F32)
            }
        })
    }
}

/// Largest magnitude a loaded weight or statistic may have. Trained networks stay far
/// below it (the shipped compact network's largest is a running variance of about 51);
/// a damaged file's misread bytes often land above it, where activations overflow to NaN.
const MAX_WEIGHT: f32 = 1e6;

/// Walks a network's float parameters and running statistics by path
/// (`encoder.blocks.0.conv.weight`, ...): collects the paths, and with `check_values` finds
/// the first that is NaN, infinite or larger than [`MAX_WEIGHT`], or a running variance
/// below zero.
#[derive(Default)]
struct ParamCheck {
    check_values: bool,
    path: Vec<String>,
    floats: std::collections::HashSet<String>,
    found: Option<String>,
}

impl burn::module::ModuleVisitor for ParamCheck {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        self.floats.insert(self.path.join("."));
        if !self.check_values || self.found.is_some() {
            return;
        }
        // A variance below zero makes batch norm's square root NaN.
        let variance = self.path.last().is_some_and(|name| name == "running_var");
        let values = param.val().into_data();
        let bad = values
            .iter::<f32>()
            .enumerate()
            .find(|&(_, v)| !v.is_finite() || v.abs() > MAX_WEIGHT || (variance && v < 0.0));
        if let Some((index, value)) = bad {
            self.found = Some(format!(
                "{} is {value} at index {index}",
                self.path.join(".")
            ));
        }
    }
}

/// The configuration file that goes with the weights at `weights`: same name, `.json`.
pub(crate) fn config_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    /// A weights file far larger than its configuration needs (1000 MiB of zeros for the
    /// compact network used to be read and copied before its header was checked) is
    /// refused from its length.
    #[test]
    fn weights_longer_than_the_configuration_needs_are_refused_unread() {
        let device = crate::device::default_device().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.bpk");
        SiameseConfig::compact().init(&device).save(&path).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(1000 << 20).unwrap(); // sparse: no disk used
        let err = Siamese::load(&path, &device).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
        assert!(err.to_string().contains("of this configuration"), "{err}");
    }

    /// Weights stored as F64, F16 or BF16 used to load, then panic in the first matrix
    /// product ("dtype mismatch"): they are brought to F32 on load.
    #[test]
    fn weights_of_other_float_types_load_as_32_bit_floats() {
        use burn::tensor::FloatDType;
        let device = crate::device::default_device().unwrap();
        let model = crate::testing::tiny_siamese().init(&device).valid();
        let (a, b) = (
            Tensor::<4>::random([3, 1, 8, 8], Distribution::Default, &device),
            Tensor::<4>::random([3, 1, 8, 8], Distribution::Default, &device),
        );
        let expected = model.score(a.clone(), b.clone());
        let dir = tempfile::tempdir().unwrap();
        for (dtype, tolerance) in [
            (FloatDType::F64, 1e-6),
            (FloatDType::F16, 1e-2),
            (FloatDType::BF16, 5e-2),
        ] {
            let mut other = model.clone();
            other.head.weight = other.head.weight.map(|t| t.cast(dtype));
            let conv = &mut other.encoder.blocks[0].conv;
            conv.weight = conv.weight.clone().map(|t| t.cast(dtype));
            let path = dir.path().join("weights.bpk");
            other.save(&path).unwrap();
            let loaded = Siamese::load(&path, &device).unwrap();
            assert_eq!(loaded.head.weight.val().dtype(), burn::tensor::DType::F32);
            loaded
                .score(a.clone(), b.clone())
                .into_data()
                .assert_approx_eq::<f32>(&expected.to_data(), Tolerance::absolute(tolerance));
        }
    }

    /// Configurations saved before colour and preprocessing existed (the shipped ones
    /// among them) load as one channel of ink; the new fields round-trip.
    #[test]
    fn old_configurations_load_as_ink_and_new_ones_round_trip() {
        let shipped = SiameseConfig::parse(include_str!("../../weights/compact.json")).unwrap();
        assert_eq!(shipped.preprocess, None);
        assert_eq!(shipped.encoder.channels, None);
        assert_eq!(shipped.input_spec().unwrap(), InputSpec::ink(52).unwrap());

        let pictures = SiameseConfig::compact_pictures();
        let back = SiameseConfig::parse(&pictures.to_string()).unwrap();
        assert_eq!(back.preprocess, Some(Preprocess::picture()));
        assert_eq!(back.input_spec().unwrap().channels(), 3);

        let mut two = pictures.clone();
        two.encoder.channels = Some(2);
        let message = SiameseConfig::parse(&two.to_string()).unwrap_err();
        assert!(message.contains("channels"), "{message}");
    }

    #[test]
    fn koch_has_the_papers_parameter_count() {
        let device = crate::device::default_device().unwrap();
        assert_eq!(SiameseConfig::koch().init(&device).num_params(), 38_951_745);
        // 4 conv blocks (320 + 18,496 + 36,928 + 73,856), batch norm scale and shift (576)
        // and running statistics (576, counted by Burn though not trained), fc 1152 -> 384
        // (442,752) and the head (385).
        assert_eq!(SiameseConfig::compact().init(&device).num_params(), 573_889);
    }

    fn images(n: usize, s: usize, device: &Device) -> Tensor<4> {
        Tensor::random([n, 1, s, s], Distribution::Default, device)
    }

    fn assert_shapes(config: SiameseConfig, device: &Device) {
        let model = config.init(device);
        let [s, _] = model.input_shape();
        let (a, b) = (images(3, s, device), images(3, s, device));
        assert_eq!(model.forward(a.clone(), b.clone()).dims(), [3, 1]);
        assert_eq!(model.embed(a.clone()).dims(), [3, model.embedding_size()]);
        assert_eq!(model.score(a.clone(), b.clone()).dims(), [3]);
        assert_eq!(model.score_all(a, images(2, s, device)).dims(), [3, 2]);
    }

    /// Koch's shapes do not depend on the device, and its forward on wgpu is compared with
    /// flex in `tests/backends.rs`; on software Vulkan each of these batch shapes cost
    /// minutes of kernel compilation, so Koch runs here on the default device.
    #[test]
    fn koch_shapes() {
        assert_shapes(
            SiameseConfig::koch(),
            &crate::device::default_device().unwrap(),
        );
    }

    crate::device_tests! {
        fn compact_shapes(device) {
            assert_shapes(SiameseConfig::compact(), &device);
        }

        fn forward_is_symmetric(device) {
            let model = SiameseConfig::compact().init(&device).valid();
            let (a, b) = (images(4, 52, &device), images(4, 52, &device));
            model.forward(a.clone(), b.clone()).into_data().assert_approx_eq::<f32>(
                &model.forward(b, a).into_data(),
                Tolerance::absolute(1e-6),
            );
        }

        fn weights_are_tied(device) {
            let model = SiameseConfig::compact().init(&device).valid();
            let (a, b) = (images(2, 52, &device), images(2, 52, &device));
            let (ea, eb) = (model.embed(a.clone()), model.embed(b.clone()));
            // Change one weight of the (single) encoder: both sides' embeddings move.
            let mut changed = model.clone();
            let w = changed.encoder.blocks[0].conv.weight.val();
            let bump = Tensor::<4>::zeros(w.dims(), &device)
                .slice_assign([0..1, 0..1, 0..1, 0..1], Tensor::ones([1, 1, 1, 1], &device));
            changed.encoder.blocks[0].conv.weight = burn::module::Param::from_tensor(w + bump);
            for (before, after) in [(ea, changed.embed(a)), (eb, changed.embed(b))] {
                let diff: f32 = (before - after).abs().sum().into_scalar();
                assert!(diff > 1e-6, "embedding did not change: {diff}");
            }
        }

        fn score_all_equals_pairwise_scores(device) {
            let model = SiameseConfig::compact().init(&device).valid();
            let (q, s) = (images(3, 52, &device), images(5, 52, &device));
            let all: Vec<f32> = model.score_all(q.clone(), s.clone()).into_data().try_to_vec::<f32>().unwrap();
            for i in 0..3 {
                let left = q.clone().narrow(0, i, 1).repeat_dim(0, 5);
                let pair: Vec<f32> = model.score(left, s.clone()).into_data().try_to_vec::<f32>().unwrap();
                for j in 0..5 {
                    assert!((all[i * 5 + j] - pair[j]).abs() < 1e-5, "query {i}, support {j}");
                }
            }
        }

        fn save_load_round_trip(device) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("model.bpk");
            let model = SiameseConfig::compact().init(&device).valid();
            model.save(&path).unwrap();
            assert!(config_path(&path).exists());
            let loaded = Siamese::load(&path, &device).unwrap().valid();
            let (a, b) = (images(2, 52, &device), images(2, 52, &device));
            model.forward(a.clone(), b.clone()).into_data().assert_approx_eq::<f32>(
                &loaded.forward(a, b).into_data(),
                Tolerance::absolute(0.0),
            );
        }
    }

    #[test]
    fn truncated_missing_and_mismatched_files_are_named_errors() {
        let device = crate::device::default_device().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.bpk");
        SiameseConfig::compact().init(&device).save(&path).unwrap();

        // Missing weights are reported as the weights, not as their configuration.
        let missing = dir.path().join("absent.bpk");
        let err = Siamese::load(&missing, &device).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("absent.bpk"), "{err}");
        // Weights without their configuration name the configuration.
        std::fs::copy(&path, &missing).unwrap();
        let err = Siamese::load(&missing, &device).unwrap_err();
        assert!(err.to_string().contains("absent.json"), "{err}");

        // Truncated weights: half the file.
        let bytes = std::fs::read(&path).unwrap();
        let truncated = dir.path().join("truncated.bpk");
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        std::fs::copy(config_path(&path), config_path(&truncated)).unwrap();
        let err = Siamese::load(&truncated, &device).unwrap_err();
        assert!(matches!(err, Error::Checkpoint { .. }), "{err:?}");
        assert!(err.to_string().contains("truncated.bpk"), "{err}");

        // Config that does not match the weights: another embedding width.
        let config = SiameseConfig::new(EncoderConfig::compact().with_embedding(Some(100)));
        std::fs::write(config_path(&path), config.to_string()).unwrap();
        let err = Siamese::load(&path, &device).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("model.bpk") && message.contains("do not match"),
            "{message}"
        );

        // Corrupt configuration.
        std::fs::write(config_path(&path), "{ not json").unwrap();
        let err = Siamese::load(&path, &device).unwrap_err();
        assert!(err.to_string().contains("model.json"), "{err}");
    }

    /// A configuration that is a link to an endless device is refused without reading it
    /// (it used to be read until the memory ran out).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_configuration_linked_to_an_endless_device_is_refused() {
        let device = crate::device::default_device().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.bpk");
        SiameseConfig::compact().init(&device).save(&path).unwrap();
        std::fs::remove_file(config_path(&path)).unwrap();
        std::os::unix::fs::symlink("/dev/zero", config_path(&path)).unwrap();
        let err = Siamese::load(&path, &device).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(
            err.to_string().contains("model.json") && err.to_string().contains("not a regular"),
            "{err}"
        );
    }

    #[test]
    fn read_gives_the_saved_configuration_and_names_invalid_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net.json");
        let config = SiameseConfig::new(EncoderConfig::compact().with_embedding(Some(100)));
        std::fs::write(&path, config.to_string()).unwrap();
        assert_eq!(
            SiameseConfig::read(&path).unwrap().to_string(),
            config.to_string()
        );

        // Valid JSON, but four pooled blocks do not fit a 10 × 10 input.
        let mut small = SiameseConfig::compact();
        small.encoder.input_size = 10;
        std::fs::write(&path, small.to_string()).unwrap();
        let err = SiameseConfig::read(&path).unwrap_err();
        assert!(matches!(err, Error::Checkpoint { .. }), "{err:?}");
        assert!(err.to_string().contains("net.json"), "{err}");

        let err = SiameseConfig::read(dir.path().join("absent.json")).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
    }

    /// The weights pair, mutated one file at a time: [`Siamese::from_parts`] (what
    /// [`Siamese::load`] runs on the two files' bytes) never panics, and a network it
    /// accepts has the configuration's shape and scores a pair with a finite number.
    #[test]
    fn fuzz_weights_pair() {
        let device = crate::device::default_device().unwrap();
        let model = crate::testing::tiny_siamese().init(&device);
        let json = model.config.to_string().into_bytes();
        let weights = model.clone().into_record().into_bytes().unwrap().to_vec();
        let input = images(2, 8, &device);
        // Weights files whose head and first kernel are stored as F64, F16 and BF16.
        let mut seeds = vec![json.clone(), weights.clone()];
        for dtype in [
            burn::tensor::FloatDType::F64,
            burn::tensor::FloatDType::F16,
            burn::tensor::FloatDType::BF16,
        ] {
            let mut other = model.clone();
            other.head.weight = other.head.weight.map(|t| t.cast(dtype));
            let conv = &mut other.encoder.blocks[0].conv;
            conv.weight = conv.weight.clone().map(|t| t.cast(dtype));
            seeds.push(other.into_record().into_bytes().unwrap().to_vec());
        }
        let report = crate::testing::fuzz::fuzz(
            "weights pair",
            &seeds,
            &[
                b"\"",
                b"{",
                b"}",
                b"null",
                b"-1",
                b"1e400",
                b"0",
                b"99999999999",
                b"[]",
                b"\"Identity\"",
                b"\"blocks\":[]",
            ],
            |which, bytes| {
                let (json, weights) = match which {
                    0 => (bytes.to_vec(), weights.clone()),
                    _ => (json.clone(), bytes.to_vec()),
                };
                let Ok(json) = String::from_utf8(json) else {
                    return Ok(Some("not UTF-8".into()));
                };
                match Siamese::from_parts(&json, weights, &device) {
                    Err(e) => Ok(Some(e.to_string())),
                    Ok(loaded) => {
                        let [side, _] = loaded.input_shape();
                        let input = if side == 8 {
                            input.clone()
                        } else {
                            images(2, side, &device)
                        };
                        let scores: Vec<f32> = loaded
                            .valid()
                            .forward(input.clone(), input.flip([0]))
                            .into_data()
                            .try_to_vec()
                            .unwrap();
                        if scores.iter().all(|s| s.is_finite()) {
                            Ok(None)
                        } else {
                            Err(format!("loaded weights score {scores:?}"))
                        }
                    }
                }
            },
        );
        assert!(
            report.refused > 0 && report.refused < report.executions,
            "{report:?}"
        );
    }

    /// Found by `fuzz_weights_pair`: five bytes inserted into a weights file made a conv
    /// weight 2.7e36, which loaded and scored every pair NaN.
    #[test]
    fn impossible_weights_are_refused_naming_the_tensor() {
        let device = crate::device::default_device().unwrap();
        let json = crate::testing::tiny_siamese().to_string();
        for (value, shown) in [
            (f32::NAN, "NaN"),
            (2.66e36, "2660000"),
            (f32::INFINITY, "inf"),
        ] {
            let mut model = crate::testing::tiny_siamese().init(&device);
            let w = model.encoder.blocks[0].conv.weight.val();
            let bad = w.clone().slice_assign(
                [0..1, 0..1, 1..2, 1..2],
                Tensor::full([1, 1, 1, 1], value, &device),
            );
            model.encoder.blocks[0].conv.weight = burn::module::Param::from_tensor(bad);
            let bytes = model.into_record().into_bytes().unwrap().to_vec();
            let message = Siamese::from_parts(&json, bytes, &device)
                .unwrap_err()
                .to_string();
            assert!(
                message.contains("encoder.blocks.0.conv.weight is") && message.contains(shown),
                "{message}"
            );
            assert!(message.contains("at index 4"), "{message}");
        }
    }

    /// Found by `fuzz_weights_pair` (10-minute run): one byte set in a weights file's
    /// header declared a conv weight as U32, and Burn's record loading panicked.
    #[test]
    fn a_weight_stored_as_integers_is_a_named_error() {
        let device = crate::device::default_device().unwrap();
        let model = crate::testing::tiny_siamese().init(&device);
        let json = model.config.to_string();
        let mut weights = model.into_record().into_bytes().unwrap().to_vec();
        weights[56] = 85;
        let message = Siamese::from_parts(&json, weights, &device)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("not as floating-point numbers"),
            "{message}"
        );
    }
}
