//! Crash-safe checkpoints: one zip file, written to a temporary name and renamed.
//!
//! A checkpoint holds the weights (burnpack), the optimiser state (burnpack) and the run's
//! state (JSON: epochs done, best score, patience counter, history). Randomness needs no
//! state of its own: the initial weights come from the seed, and every pair of epoch `e`
//! from `(seed, e, index)`, so the epoch number is the RNG state. The zip's CRCs make a
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
    /// Best validation accuracy so far.
    pub best_accuracy: f64,
    /// Epoch (0-based) of the best validation accuracy.
    pub best_epoch: usize,
    /// Epochs since the best one.
    pub epochs_without_gain: usize,
    /// The seed of the run (the RNG state together with `epochs_done`).
    pub seed: u64,
    /// One record per epoch done.
    pub history: Vec<EpochRecord>,
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
    let model_bytes = model
        .clone()
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
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
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
        file.read_to_end(&mut out).map_err(|e| fail(name, &e))?;
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
