//! Crash-safe checkpoints: one zip file, written to a temporary name and renamed.
//!
//! A checkpoint holds the weights (burnpack), the optimiser state (burnpack) and the run's
//! state (JSON: epochs and steps done, best score, patience counter, history). Randomness
//! needs no state of its own: the initial weights come from the seed, and every batch of
//! epoch `e` from `(seed, e, step)`, so the epoch and step numbers are the RNG state. The zip's CRCs make a
//! corrupted file an error that names it, never a silently wrong resume.

use std::io::{Cursor, Read, Write};
use std::path::Path;

use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use zip::write::SimpleFileOptions;

use crate::history::EpochRecord;
use crate::io::FileKind;
use crate::{Error, Result, Siamese};

/// A checkpoint holds the weights and the optimiser's two moments: three networks' worth.
const CHECKPOINT: FileKind = FileKind::new("a checkpoint", 4 << 30);

/// Where a run stands after an epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunState {
    /// Epochs completed: the next epoch to train.
    pub epochs_done: usize,
    /// Best validation accuracy so far; minus infinity before the first validation,
    /// which JSON writes as `null` (a checkpoint written within the first epoch).
    #[serde(deserialize_with = "null_is_minus_infinity")]
    pub best_accuracy: f64,
    /// Epoch (0-based) of the best validation accuracy.
    pub best_epoch: usize,
    /// Epochs since the best one.
    pub epochs_without_gain: usize,
    /// The seed of the run (the RNG state together with `epochs_done`).
    pub seed: u64,
    /// One record per epoch done.
    pub history: Vec<EpochRecord>,
    /// Steps of epoch `epochs_done` already trained when the checkpoint was written
    /// mid-epoch; 0 at an epoch's end (and in checkpoints written before the field).
    #[serde(default)]
    pub steps_done: usize,
    /// The sum of those steps' losses, for the epoch's mean loss.
    #[serde(default)]
    pub loss_sum: f64,
    /// Training seconds spent on those steps.
    #[serde(default)]
    pub epoch_seconds: f64,
}

impl RunState {
    /// Why a run could not continue from this state, if it could not: numbers that no run
    /// writes (a negative time, an accuracy outside `[0, 1]`, a history of another length
    /// than the epochs done).
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        let accuracy = |a: f64| (0.0..=1.0).contains(&a);
        if !(self.best_accuracy == f64::NEG_INFINITY || accuracy(self.best_accuracy)) {
            return Err(format!(
                "best accuracy {} is not in [0, 1]",
                self.best_accuracy
            ));
        }
        if self.history.len() != self.epochs_done {
            return Err(format!(
                "{} epochs done but {} in the history",
                self.epochs_done,
                self.history.len()
            ));
        }
        if self.epochs_done > 0 && self.best_epoch >= self.epochs_done {
            return Err(format!(
                "best epoch {} of {} done",
                self.best_epoch, self.epochs_done
            ));
        }
        if self.epochs_without_gain > self.epochs_done {
            return Err(format!(
                "{} epochs without gain of {} done",
                self.epochs_without_gain, self.epochs_done
            ));
        }
        let seconds = self.epoch_seconds.is_finite() && self.epoch_seconds >= 0.0;
        if !self.loss_sum.is_finite() || !seconds {
            return Err("its step totals are not finite".into());
        }
        for (i, record) in self.history.iter().enumerate() {
            let finite = [
                record.train_loss,
                record.learning_rate,
                record.momentum,
                record.pairs_per_second,
                record.seconds,
            ]
            .iter()
            .all(|v| v.is_finite());
            if record.epoch != i || !finite || !accuracy(record.val_accuracy) {
                return Err(format!("history record {i} is damaged: {record:?}"));
            }
        }
        Ok(())
    }
}

/// Reads `null` (how JSON writes minus infinity) as minus infinity.
fn null_is_minus_infinity<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NEG_INFINITY))
}

const STATE: &str = "state.json";
const MODEL_CONFIG: &str = "model.json";
const MODEL: &str = "model.bpk";
const OPTIMIZER: &str = "optimizer.bpk";

/// Writes a checkpoint atomically.
///
/// # Errors
/// [`Error::Io`] or [`Error::Checkpoint`] naming the file.
pub(crate) fn save(
    path: &Path,
    state: &RunState,
    model: &Siamese,
    optim: &ModuleOptimizer,
) -> Result<()> {
    let fail = |e: &dyn std::fmt::Display| Error::checkpoint(path, e);
    // `valid()` first: Burn's batch-norm running statistics are recorded from a value that
    // lags their last update until they are synced, which `valid()` does. Without it a
    // checkpoint written mid-epoch resumes with statistics one step old.
    let model_bytes = model
        .valid()
        .into_record()
        .into_bytes()
        .map_err(|e| fail(&e))?;
    let optim_bytes = optim.into_bytes().map_err(|e| fail(&e))?;
    let state_json = serde_json::to_vec_pretty(state).map_err(|e| fail(&e))?;
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    // Tensors barely compress; storing them keeps checkpoints fast.
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in [
        (STATE, &state_json[..]),
        (MODEL_CONFIG, model.config.to_string().as_bytes()),
        (MODEL, &model_bytes[..]),
        (OPTIMIZER, &optim_bytes[..]),
    ] {
        zip.start_file(name, stored).map_err(|e| fail(&e))?;
        zip.write_all(bytes).map_err(|e| fail(&e))?;
    }
    let bytes = zip.finish().map_err(|e| fail(&e))?.into_inner();
    crate::io::write_atomically(path, &bytes)
}

/// Reads a checkpoint: the run state, the model on `device` and the optimiser state
/// loaded into `optim`.
///
/// # Errors
/// [`Error::Io`] when the file is missing; [`Error::Checkpoint`] naming the file when it is
/// truncated or corrupt.
pub fn load(
    path: &Path,
    device: &Device,
    optim: ModuleOptimizer,
) -> Result<(RunState, Siamese, ModuleOptimizer)> {
    let bytes = crate::io::read_bounded(path, CHECKPOINT)?;
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Error::checkpoint(
            path,
            format!("{what}: {e} (the file is damaged; delete it to start over)"),
        )
    };
    let mut zip =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| fail("not a checkpoint", &e))?;
    let mut entry = |name: &str| -> Result<Vec<u8>> {
        let mut file = zip.by_name(name).map_err(|e| fail(name, &e))?;
        let mut out = Vec::new();
        // An entry cannot unpack to more than the checkpoint may hold.
        let limit = CHECKPOINT.limit();
        (&mut file)
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| fail(name, &e))?;
        if out.len() as u64 > limit {
            return Err(fail(name, &format!("unpacks to more than {limit} bytes")));
        }
        Ok(out)
    };
    let state: RunState = serde_json::from_slice(&entry(STATE)?).map_err(|e| fail(STATE, &e))?;
    state.check().map_err(|e| fail(STATE, &e))?;
    let config = String::from_utf8(entry(MODEL_CONFIG)?).map_err(|e| fail(MODEL_CONFIG, &e))?;
    let model = Siamese::from_parts(&config, entry(MODEL)?, device).map_err(|e| fail(MODEL, &e))?;
    let optim_bytes = burn::tensor::Bytes::from_bytes_vec(entry(OPTIMIZER)?);
    check_optimizer_state(optim_bytes.clone()).map_err(|e| fail(OPTIMIZER, &e))?;
    // Burn panics on some damaged states that the check above cannot foresee: such a
    // panic is this file's error too, not a crash.
    let optim = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        optim.from_bytes(optim_bytes)
    }))
    .map_err(|panic| {
        let reason = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        fail(OPTIMIZER, &format!("Burn could not read it ({reason})"))
    })?
    .map_err(|e| fail(OPTIMIZER, &e))?;
    Ok((state, model, optim))
}

/// Checks what Burn's `ModuleOptimizer::from_bytes` is known to panic on: every state
/// tensor names the parameter it belongs to, and has the rank recorded for that parameter
/// (its `<id>.__rank` scalar).
fn check_optimizer_state(bytes: burn::tensor::Bytes) -> std::result::Result<(), String> {
    let reader = burn_pack::Reader::from_bytes(bytes).map_err(|e| e.to_string())?;
    let ranks: std::collections::HashMap<String, usize> = reader
        .scalars()
        .iter()
        .filter_map(|(name, value)| {
            let id = name.strip_suffix(".__rank")?;
            Some((id.to_string(), usize::try_from(*value).ok()?))
        })
        .collect();
    for tensor in reader.into_tensors().map_err(|e| e.to_string())? {
        if tensor.param_id.is_none() {
            return Err(format!("state tensor {:?} names no parameter", tensor.name));
        }
        let id = tensor.name.split('.').next().unwrap_or_default();
        if let Some(&rank) = ranks.get(id)
            && rank != tensor.shape.num_dims()
        {
            return Err(format!(
                "state tensor {:?} has {} dimensions, its parameter {rank}",
                tensor.name,
                tensor.shape.num_dims()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Before the first validation the best accuracy is minus infinity, which JSON writes
    /// as `null`: a checkpoint written within the first epoch must still load.
    #[test]
    fn a_state_before_any_validation_round_trips() {
        let state = RunState {
            epochs_done: 0,
            best_accuracy: f64::NEG_INFINITY,
            best_epoch: 0,
            epochs_without_gain: 0,
            seed: 3,
            history: Vec::new(),
            steps_done: 7,
            loss_sum: 4.5,
            epoch_seconds: 1.25,
        };
        let json = serde_json::to_string(&state).unwrap();
        assert!(json.contains("\"best_accuracy\":null"), "{json}");
        assert_eq!(serde_json::from_str::<RunState>(&json).unwrap(), state);
    }

    /// Checkpoints written before mid-epoch checkpoints existed have no step fields.
    #[test]
    fn a_state_without_step_fields_starts_the_epoch_at_step_zero() {
        let json = r#"{"epochs_done": 2, "best_accuracy": 0.5, "best_epoch": 1,
            "epochs_without_gain": 0, "seed": 3, "history": []}"#;
        let state: RunState = serde_json::from_str(json).unwrap();
        assert_eq!((state.steps_done, state.loss_sum), (0, 0.0));
        assert_eq!(state.best_accuracy, 0.5);
    }

    /// A real checkpoint of the tiny network after one Adam step, and its entries.
    fn checkpoint(path: &Path) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
        use burn::optim::GradientsParams;
        let device = crate::device::default_device().unwrap().autodiff();
        let model = crate::testing::tiny_siamese().init(&device);
        let images =
            Tensor::<4>::random([4, 1, 8, 8], burn::tensor::Distribution::Default, &device);
        let loss = model.forward(images.clone(), images.flip([0])).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let mut optim = crate::train::OptimizerConfig::adam().init(0);
        let model = optim.step(1e-3f64, model, grads);
        let state = RunState {
            epochs_done: 1,
            best_accuracy: 0.5,
            best_epoch: 0,
            epochs_without_gain: 0,
            seed: 3,
            history: vec![EpochRecord {
                epoch: 0,
                train_loss: 0.7,
                val_accuracy: 0.5,
                learning_rate: 1e-3,
                momentum: 0.0,
                pairs_per_second: 10.0,
                seconds: 2.0,
            }],
            steps_done: 1,
            loss_sum: 0.6,
            epoch_seconds: 0.5,
        };
        save(path, &state, &model, &optim).unwrap();
        let bytes = std::fs::read(path).unwrap();
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes.clone())).unwrap();
        let entries = (0..zip.len())
            .map(|i| {
                let mut file = zip.by_index(i).unwrap();
                let mut out = Vec::new();
                file.read_to_end(&mut out).unwrap();
                (file.name().unwrap().to_string(), out)
            })
            .collect();
        (bytes, entries)
    }

    fn zip_entries(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in entries {
            zip.start_file(name.as_str(), SimpleFileOptions::default())
                .unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    /// Damaged checkpoints: the whole file, or one entry of it re-zipped whole (so that
    /// the zip's checksums pass and the entry's reader is reached). Loading never panics,
    /// and a state it accepts is one a run can continue from.
    #[test]
    fn fuzz_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.zip");
        let (whole, entries) = checkpoint(&path);
        let mut seeds = vec![whole];
        seeds.extend(entries.iter().map(|(_, bytes)| bytes.clone()));
        let device = crate::device::default_device().unwrap().autodiff();
        let report = crate::testing::fuzz::fuzz(
            "checkpoint",
            &seeds,
            &[
                b"null",
                b"-1",
                b"1e400",
                b"NaN",
                b"18446744073709551615",
                b"[]",
                b"{}",
                b"\"epochs_done\":",
            ],
            |which, bytes| {
                let file = match which {
                    0 => bytes.to_vec(),
                    entry => {
                        let mut mutated = entries.clone();
                        mutated[entry - 1].1 = bytes.to_vec();
                        zip_entries(&mutated)
                    }
                };
                std::fs::write(&path, file).unwrap();
                let optim = crate::train::OptimizerConfig::adam().init(0);
                match load(&path, &device, optim) {
                    Err(e) => Ok(Some(e.to_string())),
                    Ok((state, _, _)) => match state.check() {
                        Ok(()) => Ok(None),
                        Err(reason) => Err(format!("accepted {state:?}: {reason}")),
                    },
                }
            },
        );
        assert!(
            report.refused > 0 && report.refused < report.executions,
            "{report:?}"
        );
    }

    /// Found by `fuzz_checkpoint`: an optimizer state tensor without its parameter id made
    /// Burn panic ("Optimizer record tensors should carry a parameter id").
    #[test]
    fn an_optimizer_state_without_parameter_ids_is_a_named_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.zip");
        let (_, mut entries) = checkpoint(&path);
        let tensor = burn_pack::Tensor::new(
            "1.moment_1".into(),
            burn::tensor::DType::F32,
            [2],
            None,
            burn::tensor::Bytes::from_elems(vec![0.5f32, 0.25]),
        );
        let bytes = burn_pack::Writer::new(vec![tensor]).into_bytes().unwrap();
        let optimizer = entries
            .iter_mut()
            .find(|(name, _)| name == OPTIMIZER)
            .unwrap();
        optimizer.1 = bytes.to_vec();
        std::fs::write(&path, zip_entries(&entries)).unwrap();
        let device = crate::device::default_device().unwrap().autodiff();
        let optim = crate::train::OptimizerConfig::adam().init(0);
        let message = load(&path, &device, optim).err().unwrap().to_string();
        assert!(message.contains("names no parameter"), "{message}");
        assert!(message.contains("checkpoint.zip"), "{message}");
    }

    /// Found by `fuzz_checkpoint` (10-minute run): one bit flipped in the optimizer state's
    /// metadata gave a parameter rank 6 for a 4-dimensional moment, and Burn panicked
    /// ("Given dimensions differ from the tensor rank") inside Adam's state loading.
    #[test]
    fn an_optimizer_state_of_the_wrong_rank_is_a_named_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.zip");
        let (_, mut entries) = checkpoint(&path);
        let optimizer = entries
            .iter_mut()
            .find(|(name, _)| name == OPTIMIZER)
            .unwrap();
        let reader =
            burn_pack::Reader::from_bytes(burn::tensor::Bytes::from_bytes_vec(optimizer.1.clone()))
                .unwrap();
        let scalars = reader.scalars().clone();
        let metadata = reader.metadata().clone();
        let tensors = reader.into_tensors().unwrap();
        let conv = tensors.iter().find(|t| t.shape.num_dims() == 4).unwrap();
        let id = conv.name.split('.').next().unwrap().to_string();
        let mut writer = burn_pack::Writer::new(tensors.clone());
        for (key, value) in &scalars {
            let value = if *key == format!("{id}.__rank") {
                burn_pack::Scalar::from(6u64)
            } else {
                *value
            };
            writer = writer.with_scalar(key, value);
        }
        for (key, value) in &metadata {
            writer = writer.with_metadata(key, value);
        }
        optimizer.1 = writer.into_bytes().unwrap().to_vec();
        std::fs::write(&path, zip_entries(&entries)).unwrap();
        let device = crate::device::default_device().unwrap().autodiff();
        let optim = crate::train::OptimizerConfig::adam().init(0);
        let message = load(&path, &device, optim).err().unwrap().to_string();
        assert!(
            message.contains("optimizer.bpk")
                && message.contains("has 4 dimensions, its parameter 6"),
            "{message}"
        );
    }
}
