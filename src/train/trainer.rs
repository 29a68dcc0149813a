//! The training loop, written once for every device.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::module::Module;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use super::checkpoint::{self, RunState};
use super::config::TrainingConfig;
use super::curve;
use super::parallel::{Batch, Replicas};
use crate::data::{
    DistortionConfig, GroupBatcher, GroupDataset, GroupDatasetConfig, ImageSet, PairBatcher,
    PairDataset, PairDatasetConfig,
};
use crate::eval::{Episode, Evaluator, EvaluatorConfig, SiameseScorer};
use crate::history::{self, EpochRecord};
use crate::{Error, Result, Siamese};

/// File names inside the output folder.
const CONFIG: &str = "config.json";
const CHECKPOINT: &str = "checkpoint.zip";
const BEST: &str = "best.bpk";
const HISTORY: &str = "history.csv";
const CURVE: &str = "learning_curve.png";

/// A run's saved settings (`config.json`).
const SETTINGS: crate::io::FileKind = crate::io::FileKind::new("a configuration", 1 << 20);

/// Trains a [`Siamese`] network, validating one-shot accuracy on fixed episodes after every
/// epoch.
///
/// The loop is Koch's: the loss of [`TrainingConfig::loss`] (binary cross-entropy on
/// same / different pairs by default, or a loss on the all-pairs logits of grouped
/// batches), the optimiser of [`TrainingConfig::optimizer`] with its per-epoch schedule,
/// the best model kept, and a stop after `patience` epochs without gain. After every epoch it writes, in
/// `output_dir`: `checkpoint.zip` (resume from it with [`Trainer::resume`]), `best.bpk` and
/// `best.json` (the best model so far), `history.csv` and `learning_curve.png`.
///
/// ```no_run
/// use siamese::data::{Omniglot, KOCH_TRAIN_DRAWERS, EVALUATION_OTHER_ALPHABETS};
/// use siamese::eval::KochProtocolConfig;
/// use siamese::train::{Trainer, TrainingConfig};
/// use siamese::SiameseConfig;
///
/// let omniglot = Omniglot::open("../shared/omniglot")?;
/// let train = omniglot.background()?;
/// let validation = KochProtocolConfig::new()
///     .episodes(&omniglot.evaluation()?, Some(&EVALUATION_OTHER_ALPHABETS))?;
/// let config = TrainingConfig::new(SiameseConfig::compact()).with_epochs(10);
/// let device = siamese::device::default_device()?;
/// let outcome = Trainer::new(config, train, validation, &device)?.fit()?;
/// println!("best one-shot accuracy {:.1}%", 100.0 * outcome.best_accuracy);
/// # Ok::<(), siamese::Error>(())
/// ```
pub struct Trainer {
    config: TrainingConfig,
    train: Arc<ImageSet>,
    validation: Vec<Episode>,
    /// The main device: the model, the optimiser, validation and checkpoints.
    device: Device,
    /// Every device a step's batch is split across, the main device first.
    devices: Vec<Device>,
    evaluator: Evaluator,
    initial: Option<Siamese>,
    progress: bool,
    keep_epochs: bool,
}

/// What a finished (or early-stopped) run gives back.
#[derive(Debug)]
#[non_exhaustive]
pub struct TrainingOutcome {
    /// The best model (highest validation accuracy), in evaluation mode.
    pub model: Siamese,
    /// One record per epoch trained, resumed epochs included.
    pub history: Vec<EpochRecord>,
    /// Its validation accuracy.
    pub best_accuracy: f64,
    /// Epoch (0-based) it was reached at.
    pub best_epoch: usize,
    /// Whether the run stopped for lack of progress before its last epoch.
    pub stopped_early: bool,
}

impl Trainer {
    /// A trainer of `config` on the images of `train`, validated on `validation`, on
    /// `device` (training uses `device.autodiff()`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an invalid configuration, no validation episode,
    /// training images prepared otherwise than the network prepares pictures
    /// ([`ImageSet::preprocess`] against [`SiameseConfig::preprocess`]), or training images
    /// that cannot make pairs.
    ///
    /// [`SiameseConfig::preprocess`]: crate::SiameseConfig::preprocess
    pub fn new(
        config: TrainingConfig,
        train: impl Into<Arc<ImageSet>>,
        validation: Vec<Episode>,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        if validation.is_empty() {
            return Err(Error::invalid("validation", "no validation episode"));
        }
        let train = train.into();
        let input = config.model.input_spec()?;
        if train.preprocess() != input.preprocess() {
            return Err(Error::invalid(
                "train",
                format!(
                    "{} holds pictures prepared as {:?}, but the network prepares them as                      {:?}: load the set with the network's input spec",
                    train.name(),
                    train.preprocess(),
                    input.preprocess()
                ),
            ));
        }
        let device = device.clone().without_autodiff();
        let trainer = Self {
            config,
            train,
            validation,
            devices: vec![device.clone()],
            device,
            evaluator: EvaluatorConfig::new().with_progress(false).init()?,
            initial: None,
            progress: true,
            keep_epochs: false,
        };
        trainer.dataset()?; // refuse data that cannot make pairs now, not mid-run
        Ok(trainer)
    }

    /// Starts from `model`'s weights instead of a fresh initialisation (fine-tuning).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the model's configuration is not the one trained.
    pub fn with_model(mut self, model: Siamese) -> Result<Self> {
        if model.config.to_string() != self.config.model.to_string() {
            return Err(Error::invalid(
                "model",
                "its configuration differs from TrainingConfig::model",
            ));
        }
        self.initial = Some(model);
        Ok(self)
    }

    /// Trains data-parallel on `devices`, through Burn's multi-device optimiser step
    /// ([`ModuleOptimizer::step_multi`]): every step takes one whole batch per device (pairs
    /// or a grouped batch: the episode loss trains on several devices too), each device runs
    /// forward and backward on its batch with a replica of the model, and Burn sums the
    /// gradients and updates each parameter on one of the devices. The first device
    /// replaces the one given to [`Trainer::new`]: it holds the model between steps,
    /// validates, and writes the checkpoints, which count batches, so a run may resume on
    /// another set of devices. One device trains exactly as [`Trainer::new`] alone does.
    ///
    /// The loss of a step is the mean of its batches' losses: with `D` devices a step is
    /// the step of one device on a batch `D` times larger (`D` grouped batches), at the
    /// same learning rate, and an epoch of the same images takes `D` times fewer steps.
    /// Scale the learning rate yourself if the larger batch calls for it. A device listed
    /// twice takes two batches a step (two workers share it).
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use siamese::data::ImageSet;
    /// use siamese::eval::Episode;
    /// use siamese::train::{LossConfig, Trainer, TrainingConfig};
    /// use siamese::SiameseConfig;
    ///
    /// /// Trains Koch's network with the episode loss on `gpus`, for example
    /// /// `Device::wgpu(DeviceKind::DiscreteGpu(i))` for i = 0, 1, ...: with two, each takes
    /// /// a grouped batch of 32 characters × 2 drawings a step.
    /// fn train_on(gpus: &[Device], train: ImageSet, validation: Vec<Episode>) -> siamese::Result<f64> {
    ///     let config = TrainingConfig::new(SiameseConfig::koch())
    ///         .with_loss(Some(LossConfig::episode(32)));
    ///     let outcome = Trainer::new(config, train, validation, &gpus[0])?
    ///         .with_devices(gpus)?
    ///         .fit()?;
    ///     Ok(outcome.best_accuracy)
    /// }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for no device, or more devices than an epoch has batches.
    pub fn with_devices(mut self, devices: &[Device]) -> Result<Self> {
        if devices.is_empty() {
            return Err(Error::invalid("devices", "no device given"));
        }
        let batches = self.config.steps_per_epoch();
        if devices.len() > batches {
            return Err(Error::invalid(
                "devices",
                format!(
                    "{} devices for epochs of {batches} batches: every device needs a batch",
                    devices.len(),
                ),
            ));
        }
        self.devices = devices
            .iter()
            .map(|d| d.clone().without_autodiff())
            .collect();
        self.device = self.devices[0].clone();
        Ok(self)
    }

    /// Shows a progress bar and one line per epoch on stderr (on by default).
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }

    /// Also keeps every epoch's weights, as `epoch-001.bpk` (with its `.json`) and so on in
    /// the output folder, to evaluate the run at every point afterwards (off by default:
    /// 2.3 MB an epoch for the compact network).
    pub fn with_epoch_weights(mut self, keep: bool) -> Self {
        self.keep_epochs = keep;
        self
    }

    /// The output folder.
    pub fn output_dir(&self) -> PathBuf {
        PathBuf::from(&self.config.output_dir)
    }

    /// Trains from the start, replacing any earlier run in the output folder.
    ///
    /// # Errors
    /// [`Error::Io`] when the output folder cannot be written, [`Error::Training`] when the
    /// loss stops being finite (the last good checkpoint stays).
    pub fn fit(&self) -> Result<TrainingOutcome> {
        let device = self.device.clone().autodiff();
        let model = match &self.initial {
            Some(model) => model.clone().to_device(&device).train(),
            None => {
                device.seed(self.config.seed);
                self.config.model.init(&device)
            }
        };
        let state = RunState {
            epochs_done: 0,
            best_accuracy: f64::NEG_INFINITY,
            best_epoch: 0,
            epochs_without_gain: 0,
            seed: self.config.seed,
            history: Vec::new(),
            steps_done: 0,
            loss_sum: 0.0,
            epoch_seconds: 0.0,
        };
        let dir = self.output_dir();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        crate::io::write_atomically(&dir.join(CONFIG), self.config.to_string().as_bytes())?;
        self.run(state, model, self.config.optimizer.init(0))
    }

    /// Continues the run whose checkpoint is in the output folder. With the same seed and
    /// data on a CPU device it ends with the same weights as a run never stopped. The
    /// configuration may raise `epochs` or `patience`; every other setting must be the one
    /// the run started with (its `config.json`), so that a resumed run is never silently
    /// another one.
    ///
    /// # Errors
    /// [`Error::Io`] when there is no checkpoint, [`Error::Checkpoint`] naming the file when
    /// it is corrupt or holds another model, or naming `config.json` and the settings that
    /// differ from the run's.
    pub fn resume(&self) -> Result<TrainingOutcome> {
        let device = self.device.clone().autodiff();
        let path = self.output_dir().join(CHECKPOINT);
        let optim = self.config.optimizer.init(0);
        let (state, model, optim) = checkpoint::load(&path, &device, optim)?;
        if model.config.to_string() != self.config.model.to_string() {
            return Err(Error::checkpoint(
                &path,
                "it holds another model configuration than TrainingConfig::model",
            ));
        }
        let changed = self.changed_settings()?;
        if !changed.is_empty() {
            return Err(Error::checkpoint(
                self.output_dir().join(CONFIG),
                format!(
                    "the run was started with other {}; resume with its settings, or start \
                     a new run (fine-tune from its best.bpk with Trainer::with_model)",
                    changed.join(", ")
                ),
            ));
        }
        if state.seed != self.config.seed {
            return Err(Error::checkpoint(
                &path,
                format!(
                    "it was trained with seed {}, not {}",
                    state.seed, self.config.seed
                ),
            ));
        }
        if state.steps_done > self.config.steps_per_epoch() {
            return Err(Error::checkpoint(
                &path,
                format!(
                    "it is at step {} of an epoch of {} steps: the file is damaged",
                    state.steps_done,
                    self.config.steps_per_epoch()
                ),
            ));
        }
        crate::io::write_atomically(
            &self.output_dir().join(CONFIG),
            self.config.to_string().as_bytes(),
        )?;
        self.run(state, model, optim)
    }

    /// The settings of the run's `config.json` that this trainer's configuration changes,
    /// other than those a resumed run may raise (`epochs`, `patience`) and its folder.
    /// A run without `config.json` (written by older versions) is not checked.
    fn changed_settings(&self) -> Result<Vec<String>> {
        let path = self.output_dir().join(CONFIG);
        if !path.exists() {
            return Ok(Vec::new());
        }
        let text = crate::io::read_text(&path, SETTINGS)?;
        let unreadable =
            |e: serde_json::Error| Error::checkpoint(&path, format!("unreadable settings: {e}"));
        // Read into a config and serialised again, a config.json from before a setting
        // existed shows the setting at its default, as the run used it: only real changes
        // differ.
        let saved: TrainingConfig = serde_json::from_str(&text).map_err(unreadable)?;
        let saved = serde_json::to_value(&saved).map_err(unreadable)?;
        let now = serde_json::to_value(&self.config).map_err(unreadable)?;
        Ok(now
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(key, _)| {
                !["epochs", "patience", "output_dir", "checkpoint_steps"].contains(&key.as_str())
            })
            .filter(|(key, value)| saved.get(key.as_str()) != Some(*value))
            .map(|(key, _)| key.clone())
            .collect())
    }

    fn dataset(&self) -> Result<Sampler> {
        let distortion = self.config.distortions.then(DistortionConfig::koch);
        Ok(match self.config.loss().batch() {
            None => Sampler::Pairs(
                PairDatasetConfig::new()
                    .with_pairs_per_epoch(self.config.pairs_per_epoch)
                    .with_same_alphabet_negatives(self.config.same_alphabet_negatives)
                    .with_distortion(distortion)
                    .with_seed(self.config.seed)
                    .init(self.train.clone())?,
            ),
            Some(batch) => Sampler::Groups(
                GroupDatasetConfig::new(batch.clone())
                    .with_batches_per_epoch(self.config.steps_per_epoch())
                    .with_distortion(distortion)
                    .with_seed(self.config.seed)
                    .init(self.train.clone())?,
            ),
        })
    }

    fn run(
        &self,
        mut state: RunState,
        mut model: Siamese,
        mut optim: ModuleOptimizer,
    ) -> Result<TrainingOutcome> {
        let dir = self.output_dir();
        let dataset = self.dataset()?;
        let input = self.config.model.input_spec()?;
        let batcher = PairBatcher::for_input(input.clone());
        let group_batcher = GroupBatcher::for_input(input);
        let loss = self.config.loss();
        let steps = self.config.steps_per_epoch();
        let mut stopped_early = false;

        for epoch in state.epochs_done..self.config.epochs {
            if state.epochs_without_gain >= self.config.patience {
                stopped_early = true;
                break;
            }
            let started = Instant::now();
            // A run resumed from a mid-epoch checkpoint starts at its step.
            let first_step = state.steps_done;
            let earlier_seconds = state.epoch_seconds;
            let policy = |model: &Siamese, lr: f64| match &self.config.layer_lr {
                Some(layers) => layers.policy(model, lr),
                None => ModuleLearningRate::from(lr),
            };
            let lr = self.config.learning_rate(epoch, 0);
            let mut lr_policy = policy(&model, lr);
            let momentum = |epoch| self.config.optimizer.momentum(epoch);
            if epoch > 0 && momentum(epoch) != momentum(epoch - 1) {
                // SGD's momentum changes by epoch: a new optimiser, the same velocities.
                // (Only then: Burn loads a record's tensors on the default device, which
                // started a wgpu device, and printed Vulkan's warnings, on every epoch of a
                // flex run with Adam.)
                optim = self
                    .config
                    .optimizer
                    .init(epoch)
                    .load_record(optim.to_record());
            }
            let bar = self.progress_bar(epoch, steps);
            bar.set_position(first_step as u64);
            let mut loss_sum = state.loss_sum;
            let device = model.device();
            let result = std::thread::scope(|scope| -> Result<()> {
                // Batches are drawn on another thread, in order, while the model trains:
                // one batch a step on the main device, or one whole batch a device. Steps
                // and checkpoints count batches, so that a run resumes on other devices.
                let (sender, receiver) = sync_channel::<(usize, Vec<Batch>)>(2);
                let producer_devices: Vec<Device> = if self.devices.len() == 1 {
                    vec![device.clone()]
                } else {
                    self.devices.iter().map(|d| d.clone().autodiff()).collect()
                };
                let batch_size = self.config.batch_size;
                let (dataset, batcher, group_batcher) = (&dataset, &batcher, &group_batcher);
                scope.spawn(move || {
                    let mut first = first_step;
                    while first < steps {
                        let end = (first + producer_devices.len()).min(steps);
                        let step: Vec<Batch> = (first..end)
                            .zip(&producer_devices)
                            .map(|(b, device)| match dataset {
                                Sampler::Pairs(pairs) => {
                                    let items = (b * batch_size..(b + 1) * batch_size)
                                        .into_par_iter()
                                        .map(|i| pairs.pair(epoch, i))
                                        .collect();
                                    Batch::Pairs(Box::new(batcher.batch(items, device)))
                                }
                                Sampler::Groups(groups) => Batch::Group(Box::new(
                                    group_batcher.batch(groups.batch(epoch, b), device),
                                )),
                            })
                            .collect();
                        if sender.send((first, step)).is_err() {
                            return;
                        }
                        first = end;
                    }
                });
                let replicas =
                    (self.devices.len() > 1).then(|| Replicas::spawn(scope, &self.devices, &loss));
                let not_finite = |step: usize, value: f64| Error::Training {
                    epoch,
                    step,
                    reason: format!(
                        "the loss is {value}; the last good checkpoint is kept in {}",
                        dir.join(CHECKPOINT).display()
                    ),
                };
                for (step, batches) in receiver.iter() {
                    let taken = batches.len();
                    if self.config.schedule.is_some() {
                        lr_policy = policy(&model, self.config.learning_rate(epoch, step));
                    }
                    let value = match &replicas {
                        None => {
                            let batch = batches.into_iter().next().expect("one batch a step");
                            let loss = batch.loss(&model, &loss);
                            let value = f64::from(loss.clone().into_scalar::<f32>());
                            if !value.is_finite() {
                                return Err(not_finite(step, value));
                            }
                            let grads = GradientsParams::from_grads(loss.backward(), &model);
                            model = optim.step(lr_policy.clone(), model.clone(), grads);
                            value
                        }
                        Some(replicas) => {
                            let (value, grads) =
                                replicas.gradients(&model, batches).map_err(|reason| {
                                    Error::Training {
                                        epoch,
                                        step,
                                        reason,
                                    }
                                })?;
                            if !value.is_finite() {
                                return Err(not_finite(step, value));
                            }
                            // Burn updates each parameter on the device it summed its
                            // gradients on; the model then goes back to the main device,
                            // forked so that its parameters are leaves there (`to_device`
                            // would record the move in the graph, and a replica forked from
                            // that would track nothing).
                            model = optim
                                .step_multi(lr_policy.clone(), model.clone(), grads)
                                .fork(&device);
                            value
                        }
                    };
                    // The loss of each batch of the step, as one device would count it.
                    loss_sum += value * taken as f64;
                    bar.inc(taken as u64);
                    let done = step + taken;
                    bar.set_message(format!("loss {:.4}", loss_sum / done as f64));
                    if done < steps
                        && self
                            .config
                            .checkpoint_steps
                            .is_some_and(|every| done / every > step / every)
                    {
                        state.steps_done = done;
                        state.loss_sum = loss_sum;
                        state.epoch_seconds = earlier_seconds + started.elapsed().as_secs_f64();
                        checkpoint::save(&dir.join(CHECKPOINT), &state, &model, &optim)?;
                    }
                }
                Ok(())
            });
            bar.finish_and_clear();
            result?;
            let train_seconds = earlier_seconds + started.elapsed().as_secs_f64();

            let evaluation = self
                .evaluator
                .evaluate(&SiameseScorer::new(&model), &self.validation)?;
            let record = EpochRecord {
                epoch,
                train_loss: loss_sum / steps as f64,
                val_accuracy: evaluation.accuracy(),
                learning_rate: lr,
                momentum: self.config.optimizer.momentum(epoch),
                pairs_per_second: (steps * self.config.images_per_step()) as f64
                    / 2.0
                    / train_seconds,
                seconds: earlier_seconds + started.elapsed().as_secs_f64(),
            };
            let improved = record.val_accuracy > state.best_accuracy;
            if improved {
                state.best_accuracy = record.val_accuracy;
                state.best_epoch = epoch;
                state.epochs_without_gain = 0;
                model.valid().save(dir.join(BEST))?;
            } else {
                state.epochs_without_gain += 1;
            }
            if self.keep_epochs {
                model.valid().save(dir.join(epoch_weights(epoch)))?;
            }
            if self.progress {
                eprintln!(
                    "epoch {:>3}  loss {:.4}  val one-shot {:5.1}% {}  lr {:.2e}  {:.0} images/s  {:.0} s",
                    epoch + 1,
                    record.train_loss,
                    100.0 * record.val_accuracy,
                    if improved { "*" } else { " " },
                    lr,
                    2.0 * record.pairs_per_second,
                    record.seconds
                );
            }
            state.history.push(record);
            state.epochs_done = epoch + 1;
            state.steps_done = 0;
            state.loss_sum = 0.0;
            state.epoch_seconds = 0.0;
            checkpoint::save(&dir.join(CHECKPOINT), &state, &model, &optim)?;
            history::write_csv(&state.history, &dir.join(HISTORY))?;
            curve::plot_learning_curve(&state.history, &self.curve_title(), &dir.join(CURVE))?;
        }
        if state.epochs_without_gain >= self.config.patience
            && state.epochs_done < self.config.epochs
        {
            stopped_early = true;
        }
        let best = Siamese::load(dir.join(BEST), &self.device)?.valid();
        Ok(TrainingOutcome {
            model: best,
            history: state.history,
            best_accuracy: state.best_accuracy,
            best_epoch: state.best_epoch,
            stopped_early,
        })
    }

    fn curve_title(&self) -> String {
        format!(
            "siamese: {}x{} input, {}-d embedding, seed {}",
            self.config.model.encoder.input_size,
            self.config.model.encoder.input_size,
            self.config.model.encoder.output_size(),
            self.config.seed
        )
    }

    fn progress_bar(&self, epoch: usize, steps: usize) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(steps as u64);
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "epoch {:>3} [{{bar:30}}] {{pos}}/{{len}} steps  {{msg}}  {{per_sec}}  eta {{eta}}",
                epoch + 1
            ))
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar
    }
}

/// Where a run's batches come from.
enum Sampler {
    Pairs(PairDataset),
    Groups(GroupDataset),
}

/// The file [`Trainer::with_epoch_weights`] keeps the weights of `epoch` (0-based) in.
pub fn epoch_weights(epoch: usize) -> String {
    format!("epoch-{:03}.bpk", epoch + 1)
}

/// The checkpoint file of a run in `output_dir`.
pub fn checkpoint_path(output_dir: &Path) -> PathBuf {
    output_dir.join(CHECKPOINT)
}
