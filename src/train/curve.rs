//! The learning curve of a training history, as a PNG.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use crate::history::EpochRecord;
use crate::{Error, Result};

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
        // Infinite and NaN values (a diverged run) are left out of the axes and the
        // curves: a range to infinity never finishes its ticks.
        let max_loss = history
            .iter()
            .map(|r| r.train_loss)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        let max_loss = if (max_loss * 1.1).is_finite() {
            max_loss * 1.1
        } else {
            max_loss
        };
        let points = |f: fn(&EpochRecord) -> f64| -> Vec<(f64, f64)> {
            history
                .iter()
                .map(|r| (r.epoch as f64 + 1.0, f(r)))
                .filter(|(_, y)| y.is_finite())
                .collect()
        };
        let panels = [
            (
                &left,
                "training loss",
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
    use crate::history::tests::history;

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

    /// A history holding an infinite loss used to spin forever drawing the axes.
    #[test]
    fn histories_with_infinite_or_nan_values_still_plot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curve.png");
        for bad in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e308, f64::MAX] {
            let mut records = history();
            records[1].train_loss = bad;
            records[0].val_accuracy = bad;
            plot_learning_curve(&records, "diverged", &path).unwrap();
            assert_eq!(image::open(&path).unwrap().width(), 1200);
        }
    }
}
