//! Solved and missed one-shot trials drawn as one picture.

use std::path::Path;

use ab_glyph::{FontRef, PxScale};
use burn::prelude::*;
use image::imageops::{self, FilterType};
use image::{DynamicImage, Rgb, RgbImage};
use imageproc::drawing::{draw_hollow_rect_mut, draw_text_mut};
use imageproc::rect::Rect;

use super::episodes::Episode;
use super::evaluator::Evaluation;
use crate::{Error, Result};

const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const BLACK: Rgb<u8> = Rgb([20, 20, 20]);
const GREEN: Rgb<u8> = Rgb([30, 150, 60]);
const RED: Rgb<u8> = Rgb([200, 40, 40]);
const GAP: u32 = 8;
const HEADER: u32 = 64;
const LABELS: u32 = 22;

/// How [`EpisodeSheet`] lays out trials: two panels side by side, solved trials on the
/// left (framed green) and missed ones on the right (framed red). Each row is one trial:
/// the query, the support the scorer chose, and the right support, drawn dark on light as
/// people write.
///
/// Trials are picked evenly spread over the episodes, so the sheet shows many alphabets
/// rather than the first episode's queries.
///
/// ```no_run
/// use siamese::eval::{EpisodeSheetConfig, EvaluatorConfig, LakeRuns, PixelNearestNeighbour};
///
/// let runs = LakeRuns::open("../shared/omniglot")?;
/// let result = EvaluatorConfig::new().init()?.evaluate(&PixelNearestNeighbour, runs.episodes())?;
/// EpisodeSheetConfig::new()
///     .with_rows(6)
///     .init()?
///     .save(runs.episodes(), &result, "pixel nearest neighbour", "episodes.png")?;
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Config, Debug)]
pub struct EpisodeSheetConfig {
    /// Trials drawn in each panel (at most; fewer when fewer were solved or missed).
    #[config(default = 8)]
    pub rows: usize,
    /// Side of each image on the sheet, in pixels (Omniglot's native 105 by default).
    #[config(default = 105)]
    pub cell: u32,
}

impl EpisodeSheetConfig {
    /// Checks the layout.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `rows` is 0 or `cell` is under 16 pixels.
    pub fn init(&self) -> Result<EpisodeSheet> {
        if self.rows == 0 {
            return Err(Error::invalid("rows", "must be positive"));
        }
        if self.cell < 16 {
            return Err(Error::invalid(
                "cell",
                format!("{} pixels is too small to draw a character", self.cell),
            ));
        }
        Ok(EpisodeSheet {
            rows: self.rows,
            cell: self.cell,
            font: FontRef::try_from_slice(dejavu::sans::regular())
                .expect("the DejaVu font shipped in the dejavu crate parses"),
        })
    }
}

/// Draws the solved and missed trials of an [`Evaluation`]; see [`EpisodeSheetConfig`].
#[derive(Debug)]
pub struct EpisodeSheet {
    rows: usize,
    cell: u32,
    font: FontRef<'static>,
}

/// One trial to draw: episode and query index, and whether it was solved.
struct Trial {
    episode: usize,
    query: usize,
    predicted: usize,
    label: usize,
}

impl EpisodeSheet {
    /// The sheet as an image, titled `title`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `evaluation` is not an evaluation of `episodes`
    /// (another number of episodes or queries, or other labels).
    pub fn render(
        &self,
        episodes: &[Episode],
        evaluation: &Evaluation,
        title: &str,
    ) -> Result<RgbImage> {
        let (solved, missed) = trials(episodes, evaluation)?;
        let cell = self.cell;
        let row_height = cell + 2 * GAP;
        let panel_width = 3 * cell + 6 * GAP;
        let width = 2 * panel_width + 3 * GAP;
        let height = HEADER + LABELS + self.rows as u32 * row_height + GAP;
        let mut sheet = RgbImage::from_pixel(width, height, WHITE);

        let total = solved.len() + missed.len();
        let text = |sheet: &mut RgbImage, x: u32, y: u32, size: f32, s: &str, color| {
            draw_text_mut(
                sheet,
                color,
                x as i32,
                y as i32,
                PxScale::from(size),
                &self.font,
                s,
            )
        };
        text(&mut sheet, GAP, 6, 22.0, title, BLACK);
        for (panel, (name, list, color)) in [("solved", &solved, GREEN), ("missed", &missed, RED)]
            .into_iter()
            .enumerate()
        {
            let x0 = GAP + panel as u32 * (panel_width + GAP);
            text(
                &mut sheet,
                x0,
                34,
                18.0,
                &format!("{name}: {} of {total} trials", list.len()),
                color,
            );
            for (column, label) in ["query", "chosen", "right"].iter().enumerate() {
                let x = x0 + GAP + column as u32 * (cell + 2 * GAP);
                text(&mut sheet, x, HEADER, 16.0, label, BLACK);
            }
            for (row, trial) in spread(list, self.rows).into_iter().enumerate() {
                let y = HEADER + LABELS + row as u32 * row_height;
                let episode = &episodes[trial.episode];
                let images = [
                    &*episode.queries()[trial.query],
                    &*episode.supports()[trial.predicted][0],
                    &*episode.supports()[trial.label][0],
                ];
                for (column, image) in images.into_iter().enumerate() {
                    let x = x0 + GAP + column as u32 * (cell + 2 * GAP);
                    imageops::replace(&mut sheet, &self.ink_on_paper(image), x.into(), y.into());
                }
                let frame =
                    Rect::at(x0 as i32, y as i32 - GAP as i32 / 2).of_size(panel_width, cell + GAP);
                draw_hollow_rect_mut(&mut sheet, frame, color);
                let inner = Rect::at(x0 as i32 + 1, y as i32 - GAP as i32 / 2 + 1)
                    .of_size(panel_width - 2, cell + GAP - 2);
                draw_hollow_rect_mut(&mut sheet, inner, color);
            }
        }
        Ok(sheet)
    }

    /// Renders the sheet and writes it as a PNG to `path`.
    ///
    /// # Errors
    /// As [`EpisodeSheet::render`], and [`Error::Image`] when the file cannot be written.
    pub fn save(
        &self,
        episodes: &[Episode],
        evaluation: &Evaluation,
        title: &str,
        path: impl AsRef<Path>,
    ) -> Result<()> {
        let path = path.as_ref();
        self.render(episodes, evaluation, title)?
            .save(path)
            .map_err(|e| Error::Image {
                path: path.to_path_buf(),
                reason: format!("cannot write the sheet: {e}"),
            })
    }

    /// A picture scaled to the cell: a grey one is ink-high and drawn as dark strokes on
    /// white, a colour one as it is.
    fn ink_on_paper(&self, image: &DynamicImage) -> RgbImage {
        let cell = self.cell;
        let scale = |image: &DynamicImage| {
            if image.width() == cell && image.height() == cell {
                image.clone()
            } else {
                image.resize_exact(cell, cell, FilterType::Triangle)
            }
        };
        match image {
            DynamicImage::ImageLuma8(_) => {
                let scaled = scale(image).into_luma8();
                RgbImage::from_fn(cell, cell, |x, y| {
                    let v = 255 - scaled.get_pixel(x, y).0[0];
                    Rgb([v, v, v])
                })
            }
            _ => scale(image).into_rgb8(),
        }
    }
}

/// The solved and missed trials of `evaluation`, checked against `episodes`.
fn trials(episodes: &[Episode], evaluation: &Evaluation) -> Result<(Vec<Trial>, Vec<Trial>)> {
    if evaluation.episodes.len() != episodes.len() {
        return Err(Error::invalid(
            "evaluation",
            format!(
                "it has {} episodes, but {} episodes were given",
                evaluation.episodes.len(),
                episodes.len()
            ),
        ));
    }
    let (mut solved, mut missed) = (Vec::new(), Vec::new());
    for (e, (episode, outcome)) in episodes.iter().zip(&evaluation.episodes).enumerate() {
        if outcome.labels != episode.labels() || outcome.predictions.len() != outcome.labels.len() {
            return Err(Error::invalid(
                "evaluation",
                format!("its episode {e} has other queries than the episode given"),
            ));
        }
        for (query, (&predicted, &label)) in
            outcome.predictions.iter().zip(&outcome.labels).enumerate()
        {
            if predicted >= episode.n_way() {
                return Err(Error::invalid(
                    "evaluation",
                    format!(
                        "episode {e} predicts class {predicted} of {}",
                        episode.n_way()
                    ),
                ));
            }
            let trial = Trial {
                episode: e,
                query,
                predicted,
                label,
            };
            if predicted == label {
                solved.push(trial);
            } else {
                missed.push(trial);
            }
        }
    }
    Ok((solved, missed))
}

/// At most `n` items of `list`, evenly spread over it.
fn spread<T>(list: &[T], n: usize) -> Vec<&T> {
    if list.len() <= n {
        return list.iter().collect();
    }
    (0..n).map(|i| &list[i * list.len() / n]).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::eval::EpisodeOutcome;

    fn episode() -> Episode {
        let image =
            |v: u8| Arc::new(image::GrayImage::from_pixel(105, 105, image::Luma([v])).into());
        Episode::new(
            vec![vec![image(0)], vec![image(255)]],
            vec![image(255), image(0), image(255)],
            vec![1, 0, 1],
        )
        .unwrap()
    }

    fn evaluation(predictions: Vec<usize>, labels: Vec<usize>) -> Evaluation {
        Evaluation {
            scorer: "test".into(),
            episodes: vec![EpisodeOutcome {
                predictions,
                labels,
            }],
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn solved_trials_are_framed_green_and_missed_ones_red() {
        let sheet = EpisodeSheetConfig::new().with_rows(2).init().unwrap();
        // Query 0 solved, query 1 missed (chose class 1, right is 0), query 2 solved.
        let image = sheet
            .render(&[episode()], &evaluation(vec![1, 1, 1], vec![1, 0, 1]), "t")
            .unwrap();
        let panel_width = 3 * 105 + 6 * GAP;
        let y = HEADER + LABELS;
        assert_eq!(*image.get_pixel(GAP, y), GREEN);
        assert_eq!(*image.get_pixel(2 * GAP + panel_width, y), RED);
        // The missed row: the query (class 0, blank) drawn as paper, the chosen support
        // (all ink) drawn dark.
        let x0 = 2 * GAP + panel_width;
        assert_eq!(*image.get_pixel(x0 + GAP + 50, y + 50), WHITE);
        assert_eq!(
            *image.get_pixel(x0 + 2 * GAP + 105 + 50 + GAP, y + 50),
            Rgb([0, 0, 0])
        );
        // Only one missed trial: the second row of the right panel stays blank.
        let second = y + 105 + 2 * GAP + 50;
        assert_eq!(*image.get_pixel(x0 + GAP + 50, second), WHITE);
    }

    #[test]
    fn an_evaluation_of_other_episodes_is_refused() {
        let sheet = EpisodeSheetConfig::new().init().unwrap();
        let err = sheet
            .render(&[episode()], &evaluation(vec![1, 1], vec![1, 0]), "t")
            .unwrap_err();
        assert!(err.to_string().contains("other queries"), "{err}");
        let err = sheet
            .render(
                &[episode(), episode()],
                &evaluation(vec![1, 1, 1], vec![1, 0, 1]),
                "t",
            )
            .unwrap_err();
        assert!(err.to_string().contains("2 episodes were given"), "{err}");
        let err = sheet
            .render(&[episode()], &evaluation(vec![1, 5, 1], vec![1, 0, 1]), "t")
            .unwrap_err();
        assert!(err.to_string().contains("class 5"), "{err}");
    }

    #[test]
    fn bad_layouts_are_refused() {
        assert!(EpisodeSheetConfig::new().with_rows(0).init().is_err());
        assert!(EpisodeSheetConfig::new().with_cell(4).init().is_err());
    }

    #[test]
    fn spread_picks_evenly() {
        let list: Vec<usize> = (0..10).collect();
        assert_eq!(spread(&list, 5), [&0, &2, &4, &6, &8]);
        assert_eq!(spread(&list[..3], 5).len(), 3);
    }
}
