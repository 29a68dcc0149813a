//! The evaluator: runs a [`Scorer`] over episodes and reports the accuracy.

use std::collections::HashMap;
use std::fmt;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use burn::prelude::*;
use image::DynamicImage;
use indicatif::{ProgressBar, ProgressStyle};

use super::aggregation::Aggregation;
use super::episodes::Episode;
use super::scorers::Scorer;
use super::wilson::{Interval, Z_95};
use crate::{Error, Result};

/// Configuration of an [`Evaluator`].
#[derive(Config, Debug)]
pub struct EvaluatorConfig {
    /// Most images given to [`Scorer::embed`] at once (a batch on the device).
    #[config(default = 64)]
    pub batch_size: usize,
    /// Most episodes whose images are embedded together. Each distinct image is embedded
    /// once per group, and a group's embeddings are held at once, so this bounds memory.
    #[config(default = 200)]
    pub episodes_per_group: usize,
    /// How a class's K scores are combined when K > 1.
    #[config(default = "Aggregation::Mean")]
    pub aggregation: Aggregation,
    /// Whether to show a progress bar (never shown when stderr is not a terminal).
    #[config(default = true)]
    pub progress: bool,
}

impl EvaluatorConfig {
    /// Initialize a new [`Evaluator`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `batch_size` or `episodes_per_group` is zero.
    pub fn init(&self) -> Result<Evaluator> {
        if self.batch_size == 0 {
            return Err(Error::invalid("batch_size", "must be positive"));
        }
        if self.episodes_per_group == 0 {
            return Err(Error::invalid("episodes_per_group", "must be positive"));
        }
        Ok(Evaluator {
            config: self.clone(),
        })
    }
}

/// Scores episodes with a [`Scorer`]: embeds each distinct image once, scores all queries
/// of an episode against all its supports, and predicts the class with the best
/// aggregated score. Ties go to the first such class.
///
/// ```
/// use std::sync::Arc;
/// use image::{GrayImage, Luma};
/// use siamese::eval::{Episode, EvaluatorConfig, PixelNearestNeighbour};
///
/// let image = |v: u8| Arc::new(GrayImage::from_pixel(4, 4, Luma([v])).into());
/// let episode = Episode::new(
///     vec![vec![image(0)], vec![image(200)]],
///     vec![image(10), image(190)],
///     vec![0, 1],
/// )?;
/// let evaluator = EvaluatorConfig::new().with_progress(false).init()?;
/// let result = evaluator.evaluate(&PixelNearestNeighbour, &[episode])?;
/// assert_eq!(result.accuracy(), 1.0);
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Evaluator {
    config: EvaluatorConfig,
}

impl Evaluator {
    /// The configuration.
    pub fn config(&self) -> &EvaluatorConfig {
        &self.config
    }

    /// Evaluates `scorer` on `episodes`.
    ///
    /// # Errors
    /// What the scorer returns, [`Error::InvalidArgument`] when `episodes` is empty, and
    /// [`Error::InvalidArgument`] naming the scorer when it returns the wrong number of
    /// scores or a NaN.
    pub fn evaluate<S: Scorer>(&self, scorer: &S, episodes: &[Episode]) -> Result<Evaluation> {
        if episodes.is_empty() {
            return Err(Error::invalid("episodes", "nothing to evaluate"));
        }
        let start = Instant::now();
        let groups: Vec<Group<'_>> = episodes
            .chunks(self.config.episodes_per_group)
            .map(Group::new)
            .collect();
        let work: usize = groups.iter().map(|g| g.pool.len() + g.episodes.len()).sum();
        let bar = self.progress_bar(work as u64, &scorer.name());

        let mut outcomes = Vec::with_capacity(episodes.len());
        for group in &groups {
            let mut batches = Vec::new();
            for batch in group.pool.chunks(self.config.batch_size) {
                batches.push(scorer.embed(batch)?);
                bar.inc(batch.len() as u64);
            }
            let embeddings = scorer.concat(batches)?;
            for (episode, ids) in group.episodes.iter().zip(&group.ids) {
                let scores = scorer.score(&embeddings, &ids.queries, &ids.supports)?;
                outcomes.push(self.predict(&scorer.name(), episode, &scores)?);
                bar.inc(1);
            }
        }
        bar.finish_and_clear();
        Ok(Evaluation {
            scorer: scorer.name(),
            episodes: outcomes,
            elapsed: start.elapsed(),
        })
    }

    /// Aggregates an episode's `[Q, N × K]` scores per class and picks the best class.
    fn predict(&self, scorer: &str, episode: &Episode, scores: &[f32]) -> Result<EpisodeOutcome> {
        let (n, k, q) = (episode.n_way(), episode.k_shot(), episode.n_queries());
        if scores.len() != q * n * k {
            return Err(Error::invalid(
                "scores",
                format!(
                    "scorer {scorer:?} gave {} scores for {q} queries × {} supports",
                    scores.len(),
                    n * k
                ),
            ));
        }
        let mut predictions = Vec::with_capacity(q);
        for (query, row) in scores.chunks(n * k).enumerate() {
            if row.iter().any(|s| s.is_nan()) {
                return Err(Error::invalid(
                    "scores",
                    format!("scorer {scorer:?} gave NaN for query {query}"),
                ));
            }
            let class_scores = row
                .chunks(k)
                .map(|shots| self.config.aggregation.combine(shots));
            predictions.push(argmax_first(class_scores));
        }
        Ok(EpisodeOutcome {
            predictions,
            labels: episode.labels().to_vec(),
        })
    }

    fn progress_bar(&self, len: u64, name: &str) -> ProgressBar {
        if !self.config.progress || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let style = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
            .expect("valid template")
            .progress_chars("=> ");
        ProgressBar::new(len)
            .with_style(style)
            .with_message(name.to_string())
    }
}

/// Index of the first largest value (`-inf` loses to everything else, so a class that
/// cannot match is never picked unless every class is `-inf`).
fn argmax_first(values: impl Iterator<Item = f32>) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// Episodes whose distinct images are embedded together.
struct Group<'a> {
    episodes: &'a [Episode],
    /// Distinct images, in order of first appearance.
    pool: Vec<&'a DynamicImage>,
    /// Per episode, indices into `pool`.
    ids: Vec<EpisodeIds>,
}

struct EpisodeIds {
    queries: Vec<usize>,
    /// Class-major: class `c`, shot `k` at `c * K + k`.
    supports: Vec<usize>,
}

impl<'a> Group<'a> {
    /// Deduplicates by content, so that the same drawing loaded twice is embedded once.
    fn new(episodes: &'a [Episode]) -> Self {
        let mut pool = Vec::new();
        let mut index: HashMap<(u32, u32, &'a [u8]), usize> = HashMap::new();
        let mut id = |image: &'a DynamicImage| {
            *index
                .entry((image.width(), image.height(), image.as_bytes()))
                .or_insert_with(|| {
                    pool.push(image);
                    pool.len() - 1
                })
        };
        let ids = episodes
            .iter()
            .map(|episode| EpisodeIds {
                supports: episode
                    .supports()
                    .iter()
                    .flatten()
                    .map(|image| id(image))
                    .collect(),
                queries: episode.queries().iter().map(|image| id(image)).collect(),
            })
            .collect();
        Self {
            episodes,
            pool,
            ids,
        }
    }
}

/// The predictions on one episode.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EpisodeOutcome {
    /// Predicted class of each query.
    pub predictions: Vec<usize>,
    /// True class of each query.
    pub labels: Vec<usize>,
}

impl EpisodeOutcome {
    /// Queries predicted right.
    pub fn correct(&self) -> usize {
        self.predictions
            .iter()
            .zip(&self.labels)
            .filter(|(p, l)| p == l)
            .count()
    }

    /// Fraction of queries predicted right.
    pub fn accuracy(&self) -> f64 {
        self.correct() as f64 / self.labels.len() as f64
    }
}

/// The result of [`Evaluator::evaluate`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Evaluation {
    /// Name of the scorer.
    pub scorer: String,
    /// Per episode, in the order given.
    pub episodes: Vec<EpisodeOutcome>,
    /// Wall-clock time of the whole evaluation (embedding included).
    pub elapsed: Duration,
}

impl Evaluation {
    /// Queries predicted right, over all episodes.
    pub fn correct(&self) -> usize {
        self.episodes.iter().map(EpisodeOutcome::correct).sum()
    }

    /// Queries, over all episodes (one-shot trials).
    pub fn total(&self) -> usize {
        self.episodes.iter().map(|e| e.labels.len()).sum()
    }

    /// Fraction of all queries predicted right.
    pub fn accuracy(&self) -> f64 {
        self.correct() as f64 / self.total() as f64
    }

    /// The Wilson 95% interval of [`Evaluation::accuracy`], counting each query as a trial.
    pub fn interval(&self) -> Interval {
        Interval::wilson(self.correct(), self.total(), Z_95)
    }

    /// Accuracy of each episode.
    pub fn episode_accuracies(&self) -> Vec<f64> {
        self.episodes.iter().map(EpisodeOutcome::accuracy).collect()
    }

    /// Every prediction, episode after episode.
    pub fn predictions(&self) -> Vec<usize> {
        self.episodes
            .iter()
            .flat_map(|e| e.predictions.iter().copied())
            .collect()
    }
}

impl fmt::Display for Evaluation {
    /// `pixel nearest neighbour: 26.5% [22.4%, 31.0%] of 400 (20 episodes) in 0.81 s`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {:.1}% {} of {} ({} episodes) in {:.2} s",
            self.scorer,
            100.0 * self.accuracy(),
            self.interval(),
            self.total(),
            self.episodes.len(),
            self.elapsed.as_secs_f64()
        )
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::sync::Arc;

    use image::Luma;

    use super::*;

    /// Images whose first pixel is the class; the rest tells drawings apart.
    fn drawing(class: u8, drawing: u8) -> Arc<DynamicImage> {
        let mut image = image::GrayImage::new(2, 1);
        image.put_pixel(0, 0, Luma([class]));
        image.put_pixel(1, 0, Luma([drawing]));
        Arc::new(image.into())
    }

    /// Knows the class from the first pixel; counts the images it embeds.
    #[derive(Default)]
    struct Oracle {
        embedded: Cell<usize>,
        batches: RefCell<Vec<usize>>,
    }

    impl Scorer for Oracle {
        type Embeddings = Vec<u8>;
        fn name(&self) -> String {
            "oracle".into()
        }
        fn embed(&self, images: &[&DynamicImage]) -> Result<Vec<u8>> {
            self.embedded.set(self.embedded.get() + images.len());
            self.batches.borrow_mut().push(images.len());
            Ok(images.iter().map(|i| i.as_bytes()[0]).collect())
        }
        fn concat(&self, batches: Vec<Vec<u8>>) -> Result<Vec<u8>> {
            Ok(batches.concat())
        }
        fn score(&self, e: &Vec<u8>, queries: &[usize], supports: &[usize]) -> Result<Vec<f32>> {
            Ok(queries
                .iter()
                .flat_map(|&q| supports.iter().map(move |&s| f32::from(e[q] == e[s])))
                .collect())
        }
    }

    /// A 3-way 2-shot episode over classes `classes`, queries in the given class order.
    fn episode(classes: [u8; 3], queries: &[usize]) -> Episode {
        Episode::new(
            classes
                .iter()
                .map(|&c| vec![drawing(c, 1), drawing(c, 2)])
                .collect(),
            queries.iter().map(|&q| drawing(classes[q], 3)).collect(),
            queries.to_vec(),
        )
        .unwrap()
    }

    fn evaluator(batch_size: usize, episodes_per_group: usize) -> Evaluator {
        EvaluatorConfig::new()
            .with_batch_size(batch_size)
            .with_episodes_per_group(episodes_per_group)
            .with_progress(false)
            .init()
            .unwrap()
    }

    #[test]
    fn an_oracle_is_always_right_and_each_image_is_embedded_once() {
        let episodes = [
            episode([1, 2, 3], &[2, 0, 1]),
            episode([3, 1, 2], &[0, 0, 2]),
        ];
        let oracle = Oracle::default();
        let result = evaluator(4, 10).evaluate(&oracle, &episodes).unwrap();
        assert_eq!(result.accuracy(), 1.0);
        assert_eq!(result.correct(), 6);
        assert_eq!(result.predictions(), vec![2, 0, 1, 0, 0, 2]);
        assert_eq!(result.episode_accuracies(), vec![1.0, 1.0]);
        // Classes 1, 2, 3 with drawings 1, 2, 3: 9 distinct images in batches of 4.
        assert_eq!(oracle.embedded.get(), 9);
        assert_eq!(*oracle.batches.borrow(), vec![4, 4, 1]);

        // One episode a group: the second group embeds its own images again: 6 supports
        // and 2 distinct queries (its first two queries are the same drawing).
        let oracle = Oracle::default();
        evaluator(64, 1).evaluate(&oracle, &episodes).unwrap();
        assert_eq!(*oracle.batches.borrow(), vec![9, 8]);
    }

    /// Scores every pair with `scores[support]`, whatever the query.
    struct Fixed(Vec<f32>);

    impl Scorer for Fixed {
        type Embeddings = ();
        fn name(&self) -> String {
            "fixed".into()
        }
        fn embed(&self, _: &[&DynamicImage]) -> Result<()> {
            Ok(())
        }
        fn concat(&self, _: Vec<()>) -> Result<()> {
            Ok(())
        }
        fn score(&self, _: &(), queries: &[usize], supports: &[usize]) -> Result<Vec<f32>> {
            assert_eq!(supports.len(), self.0.len());
            Ok(queries.iter().flat_map(|_| self.0.clone()).collect())
        }
    }

    #[test]
    fn mean_and_max_aggregate_the_k_scores_and_ties_go_first() {
        let e = [episode([1, 2, 3], &[0])];
        // Class 0: mean 0.5, max 1.0; class 1: mean 0.6, max 0.6; class 2: mean 0.55, max 0.9.
        let scores = vec![0.0, 1.0, 0.6, 0.6, 0.2, 0.9];
        let mean = evaluator(64, 10)
            .evaluate(&Fixed(scores.clone()), &e)
            .unwrap();
        assert_eq!(mean.predictions(), vec![1]);
        let max = EvaluatorConfig::new()
            .with_aggregation(Aggregation::Max)
            .with_progress(false)
            .init()
            .unwrap()
            .evaluate(&Fixed(scores), &e)
            .unwrap();
        assert_eq!(max.predictions(), vec![0]);

        let tie = vec![0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        assert_eq!(
            evaluator(64, 10)
                .evaluate(&Fixed(tie), &e)
                .unwrap()
                .predictions(),
            vec![1]
        );
        let hopeless = vec![f32::NEG_INFINITY; 6];
        let result = evaluator(64, 10).evaluate(&Fixed(hopeless), &e).unwrap();
        assert_eq!(result.predictions(), vec![0]);
    }

    #[test]
    fn wrong_scores_are_named_errors() {
        let e = [episode([1, 2, 3], &[0])];
        let mut nan = vec![0.0; 6];
        nan[3] = f32::NAN;
        let message = evaluator(64, 10)
            .evaluate(&Fixed(nan), &e)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("\"fixed\" gave NaN for query 0"),
            "{message}"
        );

        struct Short;
        impl Scorer for Short {
            type Embeddings = ();
            fn name(&self) -> String {
                "short".into()
            }
            fn embed(&self, _: &[&DynamicImage]) -> Result<()> {
                Ok(())
            }
            fn concat(&self, _: Vec<()>) -> Result<()> {
                Ok(())
            }
            fn score(&self, _: &(), _: &[usize], _: &[usize]) -> Result<Vec<f32>> {
                Ok(vec![1.0])
            }
        }
        let message = evaluator(64, 10)
            .evaluate(&Short, &e)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("gave 1 scores for 1 queries × 6 supports"),
            "{message}"
        );
        assert!(evaluator(64, 10).evaluate(&Short, &[]).is_err());
        assert!(EvaluatorConfig::new().with_batch_size(0).init().is_err());
    }

    #[test]
    fn report_counts_every_query() {
        let result = Evaluation {
            scorer: "x".into(),
            episodes: vec![
                EpisodeOutcome {
                    predictions: vec![0, 1, 1, 0],
                    labels: vec![0, 1, 0, 0],
                },
                EpisodeOutcome {
                    predictions: vec![2],
                    labels: vec![1],
                },
            ],
            elapsed: Duration::from_millis(1500),
        };
        assert_eq!((result.correct(), result.total()), (3, 5));
        assert_eq!(result.episode_accuracies(), vec![0.75, 0.0]);
        assert_eq!(result.interval(), Interval::wilson(3, 5, Z_95));
        assert_eq!(
            result.to_string(),
            format!("x: 60.0% {} of 5 (2 episodes) in 1.50 s", result.interval())
        );
    }
}
