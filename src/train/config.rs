//! What a training run does, as one JSON-serialisable configuration.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use burn::prelude::*;

use super::layer_lr::LayerLearningRates;
use super::loss::LossConfig;
use super::schedule::LrSchedule;
use crate::SiameseConfig;
use crate::{Error, Result};

/// The optimiser and its schedule.
#[derive(Config, Debug, PartialEq)]
#[non_exhaustive]
pub enum OptimizerConfig {
    /// Koch's SGD with momentum: the learning rate decays by `lr_decay` every epoch and the
    /// momentum rises linearly from `momentum_start` to `momentum_end` over
    /// `momentum_epochs` epochs. No dampening (Burn's `MomentumConfig` defaults to 0.1;
    /// Koch's rule has none).
    Sgd {
        /// Learning rate of the first epoch.
        learning_rate: f64,
        /// Factor applied to the learning rate after every epoch (Koch: 0.99).
        lr_decay: f64,
        /// Momentum of the first epoch (Koch: 0.5).
        momentum_start: f64,
        /// Momentum reached after `momentum_epochs` epochs.
        momentum_end: f64,
        /// Epochs over which the momentum rises.
        momentum_epochs: usize,
        /// L2 penalty on every weight.
        weight_decay: f64,
    },
    /// Adam, with the same per-epoch learning-rate decay.
    Adam {
        /// Learning rate of the first epoch.
        learning_rate: f64,
        /// Factor applied to the learning rate after every epoch.
        lr_decay: f64,
        /// L2 penalty on every weight.
        weight_decay: f64,
    },
}

impl OptimizerConfig {
    /// Koch's recipe: SGD, learning rate 0.01 decaying 1% per epoch, momentum from 0.5 to
    /// 0.9 over 50 epochs, L2 penalty 2e-4.
    pub fn koch() -> Self {
        OptimizerConfig::Sgd {
            learning_rate: 0.01,
            lr_decay: 0.99,
            momentum_start: 0.5,
            momentum_end: 0.9,
            momentum_epochs: 50,
            weight_decay: 2e-4,
        }
    }

    /// Adam with learning rate 1e-3 decaying 1% per epoch and a small L2 penalty.
    pub fn adam() -> Self {
        OptimizerConfig::Adam {
            learning_rate: 1e-3,
            lr_decay: 0.99,
            weight_decay: 1e-5,
        }
    }

    /// Replaces the first epoch's learning rate and the per-epoch decay where given,
    /// whichever the optimiser (command-line overrides).
    pub fn with_schedule(mut self, learning_rate: Option<f64>, lr_decay: Option<f64>) -> Self {
        let (lr, decay) = self.schedule_mut();
        *lr = learning_rate.unwrap_or(*lr);
        *decay = lr_decay.unwrap_or(*decay);
        self
    }

    /// Replaces the L2 penalty where given, whichever the optimiser (a command-line
    /// override).
    ///
    /// ```
    /// use siamese::train::OptimizerConfig;
    ///
    /// let adam = OptimizerConfig::adam().with_weight_decay(Some(5e-4));
    /// assert_eq!(adam.weight_decay(), 5e-4);
    /// assert_eq!(OptimizerConfig::koch().with_weight_decay(None).weight_decay(), 2e-4);
    /// ```
    pub fn with_weight_decay(mut self, weight_decay: Option<f64>) -> Self {
        if let Some(penalty) = weight_decay {
            match &mut self {
                OptimizerConfig::Sgd { weight_decay, .. }
                | OptimizerConfig::Adam { weight_decay, .. } => *weight_decay = penalty,
            }
        }
        self
    }

    /// The L2 penalty on every weight.
    pub fn weight_decay(&self) -> f64 {
        match self {
            OptimizerConfig::Sgd { weight_decay, .. }
            | OptimizerConfig::Adam { weight_decay, .. } => *weight_decay,
        }
    }

    /// The learning rate of `epoch` (0-based).
    pub fn learning_rate(&self, epoch: usize) -> f64 {
        let mut copy = self.clone(); // a few floats: one match serves both accessors
        let (lr, decay) = copy.schedule_mut();
        *lr * decay.powi(epoch as i32)
    }

    fn schedule_mut(&mut self) -> (&mut f64, &mut f64) {
        match self {
            OptimizerConfig::Sgd {
                learning_rate,
                lr_decay,
                ..
            }
            | OptimizerConfig::Adam {
                learning_rate,
                lr_decay,
                ..
            } => (learning_rate, lr_decay),
        }
    }

    /// The momentum of `epoch` (0-based); 0 for Adam.
    pub fn momentum(&self, epoch: usize) -> f64 {
        match self {
            OptimizerConfig::Sgd {
                momentum_start,
                momentum_end,
                momentum_epochs,
                ..
            } => {
                let t = if *momentum_epochs == 0 {
                    1.0
                } else {
                    (epoch as f64 / *momentum_epochs as f64).min(1.0)
                };
                momentum_start + t * (momentum_end - momentum_start)
            }
            OptimizerConfig::Adam { .. } => 0.0,
        }
    }

    /// A Burn optimiser for `epoch`. SGD's momentum changes by epoch, so the trainer builds
    /// a new optimiser each epoch and moves the state (the velocities) over.
    pub fn init(&self, epoch: usize) -> ModuleOptimizer {
        match self {
            OptimizerConfig::Sgd { weight_decay, .. } => SgdConfig::new()
                .with_momentum(Some(
                    MomentumConfig::new()
                        .with_momentum(self.momentum(epoch))
                        .with_dampening(0.0)
                        .with_nesterov(false),
                ))
                .with_weight_decay(decay(*weight_decay))
                .init(),
            OptimizerConfig::Adam { weight_decay, .. } => AdamConfig::new()
                .with_weight_decay(decay(*weight_decay))
                .init(),
        }
    }

    fn validate(&self) -> Result<()> {
        let (lr, decay, wd) = match self {
            OptimizerConfig::Sgd {
                learning_rate,
                lr_decay,
                weight_decay,
                momentum_start,
                momentum_end,
                ..
            } => {
                for (name, m) in [
                    ("momentum_start", momentum_start),
                    ("momentum_end", momentum_end),
                ] {
                    if !(0.0..1.0).contains(m) {
                        return Err(Error::invalid(name, format!("{m} is not in [0, 1)")));
                    }
                }
                (learning_rate, lr_decay, weight_decay)
            }
            OptimizerConfig::Adam {
                learning_rate,
                lr_decay,
                weight_decay,
            } => (learning_rate, lr_decay, weight_decay),
        };
        if !(*lr > 0.0 && lr.is_finite()) {
            return Err(Error::invalid(
                "learning_rate",
                format!("{lr} is not positive"),
            ));
        }
        if !(*decay > 0.0 && *decay <= 1.0) {
            return Err(Error::invalid(
                "lr_decay",
                format!("{decay} is not in (0, 1]"),
            ));
        }
        if !(*wd >= 0.0 && wd.is_finite()) {
            return Err(Error::invalid("weight_decay", format!("{wd} is negative")));
        }
        Ok(())
    }
}

fn decay(penalty: f64) -> Option<WeightDecayConfig> {
    (penalty > 0.0).then(|| WeightDecayConfig::new(penalty as f32))
}

/// A training run: the network, the optimiser, the data and validation, and where the
/// checkpoints go. Saved as `config.json` in the output folder.
#[derive(Config, Debug)]
pub struct TrainingConfig {
    /// The network to train.
    pub model: SiameseConfig,
    /// The optimiser and its schedule.
    #[config(default = "OptimizerConfig::koch()")]
    pub optimizer: OptimizerConfig,
    /// Learning-rate multipliers by layer (Koch tuned one rate per layer); `None`, the
    /// default, trains every layer at the run's rate. Optional, so that a `config.json`
    /// written before it existed still loads.
    pub layer_lr: Option<LayerLearningRates>,
    /// How the rate moves from step to step within the run ([`LrSchedule`]); `None`, the
    /// default, keeps each epoch's rate for all its steps. Optional, so that older
    /// `config.json` files load.
    pub schedule: Option<LrSchedule>,
    /// The loss a step minimises; `None` is Koch's pair loss ([`LossConfig::Pairs`]), and
    /// is what a `config.json` written before the field existed loads as.
    pub loss: Option<LossConfig>,
    /// Most epochs (Koch: 200).
    #[config(default = 200)]
    pub epochs: usize,
    /// Pairs drawn per epoch (Koch: 30,000 to 150,000). Grouped losses encode as many
    /// images an epoch (`2 × pairs_per_epoch`, in batches of `characters × drawings`), so
    /// that an epoch costs the encoder the same whatever the loss.
    #[config(default = 30_000)]
    pub pairs_per_epoch: usize,
    /// Pairs per step (Koch: 128); grouped losses set their batch in [`LossConfig`].
    #[config(default = 128)]
    pub batch_size: usize,
    /// Seed of the initial weights and of every pair drawn.
    #[config(default = 42)]
    pub seed: u64,
    /// Koch's affine distortions on training pairs.
    #[config(default = true)]
    pub distortions: bool,
    /// Different pairs drawn from one alphabet (harder negatives), for Koch's pair loss;
    /// grouped losses choose their alphabets in [`LossConfig`].
    #[config(default = false)]
    pub same_alphabet_negatives: bool,
    /// Stop after this many epochs without a better validation accuracy (Koch: 20).
    #[config(default = 20)]
    pub patience: usize,
    /// Folder of the checkpoints, the history and the learning curve.
    #[config(default = "String::from(\"runs/siamese\")")]
    pub output_dir: String,
    /// Also write the checkpoint every this many steps within an epoch, so that a run
    /// killed mid-epoch loses at most these steps ([`Trainer::resume`] continues from the
    /// exact step, with the weights of an unbroken run on a CPU). `None`, the default,
    /// writes it after each epoch only. Optional, so that older `config.json` files load.
    ///
    /// [`Trainer::resume`]: crate::train::Trainer::resume
    pub checkpoint_steps: Option<usize>,
}

impl TrainingConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the field.
    pub fn validate(&self) -> Result<()> {
        self.model.encoder.validate()?;
        self.optimizer.validate()?;
        if let Some(layers) = &self.layer_lr {
            layers.validate(&self.model)?;
        }
        if let Some(schedule) = &self.schedule {
            schedule.validate()?;
        }
        if self.checkpoint_steps == Some(0) {
            return Err(Error::invalid("checkpoint_steps", "must be positive"));
        }
        for (name, value) in [
            ("epochs", self.epochs),
            ("pairs_per_epoch", self.pairs_per_epoch),
            ("batch_size", self.batch_size),
            ("patience", self.patience),
        ] {
            if value == 0 {
                return Err(Error::invalid(name, "must be positive"));
            }
        }
        self.loss().validate()?;
        if let Some(batch) = self.loss().batch() {
            if batch.images() > 2 * self.pairs_per_epoch {
                return Err(Error::invalid(
                    "pairs_per_epoch",
                    format!(
                        "{} pairs (twice as many images) do not fill one batch of {} images",
                        self.pairs_per_epoch,
                        batch.images()
                    ),
                ));
            }
        } else if self.batch_size > self.pairs_per_epoch {
            return Err(Error::invalid(
                "batch_size",
                format!(
                    "{} is larger than pairs_per_epoch ({})",
                    self.batch_size, self.pairs_per_epoch
                ),
            ));
        }
        Ok(())
    }

    /// The loss, [`LossConfig::Pairs`] where none is set.
    pub fn loss(&self) -> LossConfig {
        self.loss.clone().unwrap_or(LossConfig::Pairs)
    }

    /// Images one step encodes: two per pair, or a grouped batch.
    pub fn images_per_step(&self) -> usize {
        match self.loss().batch() {
            Some(batch) => batch.images(),
            None => 2 * self.batch_size,
        }
    }

    /// The learning rate of step `step` (0-based) of epoch `epoch`: the optimiser's rate
    /// for the epoch, times the [`LrSchedule`]'s factor where there is one.
    pub fn learning_rate(&self, epoch: usize, step: usize) -> f64 {
        let rate = self.optimizer.learning_rate(epoch);
        match &self.schedule {
            Some(schedule) => {
                let steps = self.steps_per_epoch();
                rate * schedule.factor(epoch * steps + step, self.epochs * steps)
            }
            None => rate,
        }
    }

    /// Steps per epoch: the epoch's `2 × pairs_per_epoch` images in full steps (a last,
    /// partial step is dropped so every step has the same size).
    pub fn steps_per_epoch(&self) -> usize {
        2 * self.pairs_per_epoch / self.images_per_step()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn koch_schedule() {
        let sgd = OptimizerConfig::koch();
        assert!((sgd.learning_rate(0) - 0.01).abs() < 1e-12);
        assert!((sgd.learning_rate(2) - 0.01 * 0.99 * 0.99).abs() < 1e-12);
        assert!((sgd.momentum(0) - 0.5).abs() < 1e-12);
        assert!((sgd.momentum(25) - 0.7).abs() < 1e-12);
        assert!((sgd.momentum(80) - 0.9).abs() < 1e-12);
        assert_eq!(OptimizerConfig::adam().momentum(3), 0.0);
    }

    /// The step's rate is the epoch's times the schedule's factor of the whole run's
    /// progress; a config.json from before schedules loads without one.
    #[test]
    fn a_schedule_spans_the_whole_run() {
        let config = TrainingConfig::new(SiameseConfig::compact())
            .with_optimizer(OptimizerConfig::adam())
            .with_epochs(4)
            .with_pairs_per_epoch(640)
            .with_batch_size(64);
        assert_eq!(config.steps_per_epoch(), 10);
        assert_eq!(
            config.learning_rate(2, 5),
            config.optimizer.learning_rate(2)
        );
        let cosine = config.clone().with_schedule(Some(LrSchedule::cosine()));
        assert_eq!(cosine.learning_rate(0, 0), 1e-3);
        // Step 20 of 40 is half way: half the epoch's rate.
        let half = 0.5 * cosine.optimizer.learning_rate(2);
        assert!((cosine.learning_rate(2, 0) - half).abs() < 1e-15);
        // The last step: (1 + cos(39π/40)) / 2 ≈ 0.0015 of the epoch's rate.
        let last = cosine.learning_rate(3, 9) / cosine.optimizer.learning_rate(3);
        assert!((last - 0.0015).abs() < 1e-4, "{last}");

        let mut json: serde_json::Value = serde_json::from_str(&cosine.to_string()).unwrap();
        json.as_object_mut().unwrap().remove("schedule");
        let old: TrainingConfig = serde_json::from_value(json).unwrap();
        assert_eq!(old.schedule, None);
        let floor = cosine.with_schedule(Some(LrSchedule::Cosine { floor: 1.5 }));
        assert!(floor.validate().unwrap_err().to_string().contains("floor"));
    }

    #[test]
    fn a_config_without_layer_rates_loads_with_multipliers_of_one() {
        let layers = LayerLearningRates::new()
            .with_blocks(vec![0.0, 1.0, 1.0, 2.0])
            .with_head(3.0);
        let config =
            TrainingConfig::new(SiameseConfig::compact()).with_layer_lr(Some(layers.clone()));
        let back: TrainingConfig = serde_json::from_str(&config.to_string()).unwrap();
        assert_eq!(back.layer_lr, Some(layers));

        // A config.json written before per-layer rates existed.
        let mut json: serde_json::Value = serde_json::from_str(&config.to_string()).unwrap();
        json.as_object_mut().unwrap().remove("layer_lr").unwrap();
        let old: TrainingConfig = serde_json::from_value(json).unwrap();
        assert_eq!(old.layer_lr, None);
        assert!(old.validate().is_ok());
    }

    #[test]
    fn a_config_without_a_loss_loads_as_kochs_pairs() {
        let config = TrainingConfig::new(SiameseConfig::compact())
            .with_loss(Some(LossConfig::episode(16)))
            .with_pairs_per_epoch(1000);
        let back: TrainingConfig = serde_json::from_str(&config.to_string()).unwrap();
        assert_eq!(back.loss(), LossConfig::episode(16));
        // 2,000 images in steps of 16 × 2.
        assert_eq!((back.images_per_step(), back.steps_per_epoch()), (32, 62));

        let mut json: serde_json::Value = serde_json::from_str(&config.to_string()).unwrap();
        json.as_object_mut().unwrap().remove("loss").unwrap();
        let old: TrainingConfig = serde_json::from_value(json).unwrap();
        assert_eq!(old.loss(), LossConfig::Pairs);
        // 1,000 pairs in steps of 128.
        assert_eq!((old.images_per_step(), old.steps_per_epoch()), (256, 7));
        assert!(old.validate().is_ok());
    }

    #[test]
    fn configs_from_before_the_poses_load_upright_and_the_poses_round_trip() {
        // The shipped weights trained with quarter turns, before mirrors existed.
        let shipped: TrainingConfig =
            serde_json::from_str(include_str!("../../weights/compact-training.json")).unwrap();
        let batch = shipped.loss().batch().cloned().unwrap();
        assert_eq!(
            (batch.quarter_turns, batch.mirrors, batch.poses()),
            (Some(true), None, 4)
        );
        // A config written before either setting existed has neither key.
        let mut old: serde_json::Value = serde_json::from_str(&shipped.to_string()).unwrap();
        let fields = old["loss"]["Episode"]["batch"].as_object_mut().unwrap();
        assert!(fields.remove("quarter_turns").is_some());
        fields.remove("mirrors");
        let old: TrainingConfig = serde_json::from_value(old).unwrap();
        let batch = old.loss().batch().cloned().unwrap();
        assert_eq!(
            (batch.quarter_turns, batch.mirrors, batch.poses()),
            (None, None, 1)
        );
        let mut posed = old.clone();
        if let Some(LossConfig::Episode { batch, .. }) = &mut posed.loss {
            batch.quarter_turns = Some(true);
            batch.mirrors = Some(true);
        }
        let back: TrainingConfig = serde_json::from_str(&posed.to_string()).unwrap();
        assert_eq!(back.loss().batch().unwrap().poses(), 8);
        assert_eq!(back.loss, posed.loss);
    }

    #[test]
    fn a_grouped_batch_must_fit_an_epoch_and_be_valid() {
        let config = TrainingConfig::new(SiameseConfig::compact())
            .with_loss(Some(LossConfig::episode(32)))
            .with_batch_size(5000); // unused by grouped losses
        assert!(config.validate().is_ok());
        let message = config
            .clone()
            .with_pairs_per_epoch(31)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("pairs_per_epoch") && message.contains("64 images"),
            "{message}"
        );
        let message = config
            .with_loss(Some(LossConfig::all_pairs(1)))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(message.contains("characters"), "{message}");
    }

    #[test]
    fn config_round_trips_and_validates() {
        let config = TrainingConfig::new(SiameseConfig::compact()).with_epochs(3);
        let back: TrainingConfig = serde_json::from_str(&config.to_string()).unwrap();
        assert_eq!(back.epochs, 3);
        assert_eq!(back.optimizer, OptimizerConfig::koch());
        assert!(back.validate().is_ok());

        let bad = config.clone().with_batch_size(0);
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("batch_size")
        );
        let bad = config.clone().with_pairs_per_epoch(10).with_batch_size(20);
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("larger than")
        );
        let bad = config
            .clone()
            .with_layer_lr(Some(LayerLearningRates::new().with_head(-1.0)));
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("layer_lr.head")
        );
        let bad = config.with_optimizer(OptimizerConfig::Adam {
            learning_rate: -1.0,
            lr_decay: 0.99,
            weight_decay: 0.0,
        });
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("learning_rate")
        );
    }
}
