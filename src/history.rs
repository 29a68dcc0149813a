//! What training did, epoch by epoch, as CSV: what a run writes beside its checkpoints and
//! what the shipped weights carry (below `train` and `pretrained`, which both read it).

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::io::FileKind;
use crate::{Error, Result};

/// A training history: a line an epoch, some hundred bytes each.
const HISTORY: FileKind = FileKind::new("a training history", 64 << 20);

/// One epoch of training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch, from 0.
    pub epoch: usize,
    /// Mean training loss over the epoch's steps (binary cross-entropy for Koch's pairs).
    pub train_loss: f64,
    /// One-shot accuracy on the validation episodes, in `[0, 1]`.
    pub val_accuracy: f64,
    /// Learning rate of the epoch's first step (an [`LrSchedule`](crate::train::LrSchedule)
    /// lowers it within the epoch).
    pub learning_rate: f64,
    /// Momentum used in the epoch (SGD; 0 for Adam).
    pub momentum: f64,
    /// Pairs trained per second (validation excluded); for grouped losses, images encoded
    /// per second / 2, the encoder work of that many pairs.
    pub pairs_per_second: f64,
    /// Wall time of the epoch, validation included, in seconds.
    pub seconds: f64,
}

const CSV_HEADER: &str =
    "epoch,train_loss,val_accuracy,learning_rate,momentum,pairs_per_second,seconds";

/// Writes `history` as CSV (one header line, one line per epoch).
///
/// # Errors
/// [`Error::Io`] naming the file.
pub(crate) fn write_csv(history: &[EpochRecord], path: &Path) -> Result<()> {
    let mut text = String::from(CSV_HEADER);
    text.push('\n');
    for r in history {
        text.push_str(&format!(
            "{},{:.6},{:.6},{:.6e},{:.4},{:.2},{:.2}\n",
            r.epoch,
            r.train_loss,
            r.val_accuracy,
            r.learning_rate,
            r.momentum,
            r.pairs_per_second,
            r.seconds
        ));
    }
    crate::io::write_atomically(path, text.as_bytes())
}

/// Reads the `history.csv` a training run writes beside its checkpoints.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, [`Error::Checkpoint`] naming the line that
/// does not parse.
pub fn read_csv(path: &Path) -> Result<Vec<EpochRecord>> {
    let text = crate::io::read_text(path, HISTORY)?;
    parse_csv(&text, path)
}

/// Parses a history in the form [`write_csv`] writes; `source` names it in errors.
///
/// # Errors
/// [`Error::Checkpoint`] naming `source` and the line that does not parse.
pub(crate) fn parse_csv(text: &str, source: impl AsRef<Path>) -> Result<Vec<EpochRecord>> {
    let path = source.as_ref();
    let mut lines = text.lines();
    if lines.next() != Some(CSV_HEADER) {
        return Err(Error::checkpoint(
            path,
            "not a training history (bad header)",
        ));
    }
    lines
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let bad =
                || Error::checkpoint(path, format!("line {} does not parse: {line:?}", i + 2));
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 7 {
                return Err(bad());
            }
            let num = |s: &str| s.parse::<f64>().map_err(|_| bad());
            Ok(EpochRecord {
                epoch: f[0].parse().map_err(|_| bad())?,
                train_loss: num(f[1])?,
                val_accuracy: num(f[2])?,
                learning_rate: num(f[3])?,
                momentum: num(f[4])?,
                pairs_per_second: num(f[5])?,
                seconds: num(f[6])?,
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Five epochs of a made-up run.
    pub(crate) fn history() -> Vec<EpochRecord> {
        (0..5)
            .map(|epoch| EpochRecord {
                epoch,
                train_loss: 0.7 / (epoch as f64 + 1.0),
                val_accuracy: 0.2 + 0.1 * epoch as f64,
                learning_rate: 0.01 * 0.99f64.powi(epoch as i32),
                momentum: 0.5,
                pairs_per_second: 100.0,
                seconds: 2.5,
            })
            .collect()
    }

    #[test]
    fn csv_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.csv");
        write_csv(&history(), &path).unwrap();
        let back = read_csv(&path).unwrap();
        assert_eq!(back.len(), 5);
        for (a, b) in back.iter().zip(history()) {
            assert_eq!(a.epoch, b.epoch);
            assert!((a.train_loss - b.train_loss).abs() < 1e-6);
            assert!((a.val_accuracy - b.val_accuracy).abs() < 1e-6);
        }
    }

    #[test]
    fn malformed_csv_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.csv");
        std::fs::write(
            &path,
            format!("{CSV_HEADER}\n0,1,2,3,4,5,6\n1,x,2,3,4,5,6\n"),
        )
        .unwrap();
        let message = read_csv(&path).unwrap_err().to_string();
        assert!(
            message.contains("line 3") && message.contains("history.csv"),
            "{message}"
        );
    }
}
