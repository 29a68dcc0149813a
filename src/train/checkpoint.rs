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

use super::history::EpochRecord;
use crate::{Error, Result, Siamese};

/// Where a run stands after an epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunState {
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
pub fn save(path: &Path, state: &RunState, model: &Siamese, optim: &ModuleOptimizer) -> Result<()> {
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
    crate::model::write_atomically(path, &bytes)
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
    let bytes = crate::io::read_bounded(path, crate::io::FileKind::Checkpoint)?;
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
        let limit = crate::io::FileKind::Checkpoint.limit();
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
    let config = String::from_utf8(entry(MODEL_CONFIG)?).map_err(|e| fail(MODEL_CONFIG, &e))?;
    let model = Siamese::from_parts(&config, entry(MODEL)?, device).map_err(|e| fail(MODEL, &e))?;
    let optim = optim
        .from_bytes(burn::tensor::Bytes::from_bytes_vec(entry(OPTIMIZER)?))
        .map_err(|e| fail(OPTIMIZER, &e))?;
    Ok((state, model, optim))
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
}
