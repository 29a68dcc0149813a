//! What training did, epoch by epoch: a CSV and a PNG learning curve.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One epoch of training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch, from 0.
    pub epoch: usize,
    /// Mean training loss over the epoch's steps (binary cross-entropy for Koch's pairs).
    pub train_loss: f64,
    /// One-shot accuracy on the validation episodes, in `[0, 1]`.
    pub val_accuracy: f64,
    /// Learning rate used in the epoch.
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
pub fn write_csv(history: &[EpochRecord], path: &Path) -> Result<()> {
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

/// Reads a history written by [`write_csv`].
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, [`Error::Checkpoint`] naming the line that
/// does not parse.
pub fn read_csv(path: &Path) -> Result<Vec<EpochRecord>> {
    let text = crate::io::read_text(path, crate::io::FileKind::History)?;
    parse_csv(&text, path)
}

/// Parses a history in the form [`write_csv`] writes; `source` names it in errors.
///
/// # Errors
/// [`Error::Checkpoint`] naming `source` and the line that does not parse.
pub fn parse_csv(text: &str, source: impl AsRef<Path>) -> Result<Vec<EpochRecord>> {
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

fn register_font() {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        // DejaVu Sans ships inside the `dejavu` crate: no system fonts needed.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// Draws the learning curve: training loss (left) and validation one-shot accuracy (right)
/// by epoch, as a PNG.
///
/// # Errors
/// [`Error::Io`] naming the file when it cannot be written; [`Error::InvalidArgument`] for
/// an empty history.
pub fn plot_learning_curve(history: &[EpochRecord], title: &str, path: &Path) -> Result<()> {
    if history.is_empty() {
        return Err(Error::invalid("history", "no epoch to plot"));
    }
    register_font();
    let (width, height) = (1200u32, 480u32);
    let mut buffer = vec![0u8; (width * height * 3) as usize];
    let draw_error = |e: String| Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    };
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_error(e.to_string()))?;
        let root = root
            .titled(title, ("sans-serif", 22))
            .map_err(|e| draw_error(e.to_string()))?;
        let (left, right) = root.split_horizontally(width / 2);
        let last = history.last().map(|r| r.epoch).unwrap_or(0) as f64 + 1.0;
        let max_loss = history.iter().map(|r| r.train_loss).fold(0.0, f64::max) * 1.1;
        let points = |f: fn(&EpochRecord) -> f64| -> Vec<(f64, f64)> {
            history
                .iter()
                .map(|r| (r.epoch as f64 + 1.0, f(r)))
                .collect()
        };
        let panels = [
            (
                &left,
                "training loss (BCE)",
                max_loss.max(1e-3),
                points(|r| r.train_loss),
                BLUE,
            ),
            (
                &right,
                "validation one-shot accuracy (%)",
                100.0,
                points(|r| 100.0 * r.val_accuracy),
                RED,
            ),
        ];
        for (area, label, y_max, series, color) in panels {
            let mut chart = ChartBuilder::on(area)
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..last.max(2.0), 0.0..y_max)
                .map_err(|e| draw_error(e.to_string()))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc(label)
                .label_style(("sans-serif", 14))
                .draw()
                .map_err(|e| draw_error(e.to_string()))?;
            chart
                .draw_series(LineSeries::new(series.clone(), color.stroke_width(2)))
                .map_err(|e| draw_error(e.to_string()))?;
            chart
                .draw_series(
                    series
                        .into_iter()
                        .map(|p| Circle::new(p, 3, color.filled())),
                )
                .map_err(|e| draw_error(e.to_string()))?;
        }
        root.present().map_err(|e| draw_error(e.to_string()))?;
    }
    let image = image::RgbImage::from_raw(width, height, buffer).expect("buffer of the right size");
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| draw_error(e.to_string()))?;
    crate::io::write_atomically(path, &png)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history() -> Vec<EpochRecord> {
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

    #[test]
    fn learning_curve_is_a_png_with_ink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curve.png");
        plot_learning_curve(&history(), "test run", &path).unwrap();
        let image = image::open(&path).unwrap().to_rgb8();
        assert_eq!(image.dimensions(), (1200, 480));
        let non_white = image.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(non_white > 5_000, "only {non_white} drawn pixels");
        let red = image.pixels().filter(|p| p.0 == [255, 0, 0]).count();
        assert!(
            red > 100,
            "the accuracy curve is missing ({red} red pixels)"
        );
        assert!(plot_learning_curve(&[], "empty", &path).is_err());
    }
}
