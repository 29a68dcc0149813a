//! The gallery: labelled support embeddings, and the ranking of classes from scores.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::eval::Aggregation;
use crate::{Error, Result};

/// Shots scored by one task of [`Gallery::logits`]: large enough that a task's work
/// (`SCORE_CHUNK × D` differences a query) dwarfs rayon's cost, small enough that its rows
/// (384 KiB at the compact network's width) stay in a core's L2 cache while every query of
/// a batch is scored against them.
const SCORE_CHUNK: usize = 256;

/// One class of a ranking: its label and its score against the query.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Match {
    /// The class label.
    pub label: String,
    /// Probability that the query shows this class: the sigmoid of [`Match::logit`].
    pub probability: f32,
    /// The head's logits against the class's shots, aggregated as the
    /// [`Aggregation`] says (mean or max): the value classes are ranked by, as in the
    /// evaluator.
    pub logit: f32,
}

/// Labelled support embeddings: every shot embedded once and kept in memory, row by row,
/// where the head's weighted L1 scores them on every core (a query against 100,000 shots
/// never builds a `[S, D]` difference tensor on the device).
///
/// Classes keep the order in which their labels were first added; shots keep the order in
/// which they were added.
#[derive(Clone, Debug, Default)]
pub(super) struct Gallery {
    /// Class labels, distinct.
    pub labels: Vec<String>,
    /// The class (index into `labels`) of each shot.
    pub shot_class: Vec<usize>,
    /// `shots × dim` values, row by row.
    pub embeddings: Vec<f32>,
    /// Width `D` of a row (0 while there are none).
    pub dim: usize,
    /// Each label's class, so that adding a shot costs no search through the labels.
    index: HashMap<String, usize>,
}

impl Gallery {
    /// A gallery of `labels` whose shots are of classes `shot_class`, rows of `embeddings`.
    pub fn new(
        labels: Vec<String>,
        shot_class: Vec<usize>,
        embeddings: Vec<f32>,
        dim: usize,
    ) -> Self {
        let index = labels
            .iter()
            .enumerate()
            .map(|(class, label)| (label.clone(), class))
            .collect();
        Self {
            labels,
            shot_class,
            embeddings,
            dim,
            index,
        }
    }

    /// Adds shots: `labels[i]` is the label of row `i` of `embeddings` (`labels.len()` rows
    /// of `dim`). A label already present gets more shots.
    pub fn push(&mut self, labels: Vec<String>, embeddings: Vec<f32>, dim: usize) {
        debug_assert_eq!(labels.len() * dim, embeddings.len());
        debug_assert!(self.dim == 0 || self.dim == dim, "one width per gallery");
        for label in labels {
            let class = match self.index.get(&label) {
                Some(&class) => class,
                None => {
                    let class = self.labels.len();
                    self.index.insert(label.clone(), class);
                    self.labels.push(label);
                    class
                }
            };
            self.shot_class.push(class);
        }
        self.embeddings.extend(embeddings);
        self.dim = dim;
    }

    /// Shots in the gallery.
    pub fn num_shots(&self) -> usize {
        self.shot_class.len()
    }

    /// The head's logits of every query (rows of `queries`, each `dim` wide) against every
    /// shot, query by query (`[Q, S]` row by row): `sum_j weight_j |q_j - s_j| + bias`. The
    /// shots are shared out over the cores in chunks of [`SCORE_CHUNK`] rows, and each chunk
    /// scores every query while its rows are in cache, so that a batch of queries reads the
    /// gallery once.
    pub fn logits(&self, queries: &[f32], weight: &[f32], bias: f32) -> Vec<f32> {
        let dim = self.dim;
        debug_assert_eq!(weight.len(), dim);
        let shots = self.num_shots();
        let n_queries = queries.len() / dim.max(1);
        let mut logits = vec![0f32; n_queries * shots];
        if shots == 0 {
            return logits;
        }
        let chunks: Vec<Vec<f32>> = self
            .embeddings
            .par_chunks(SCORE_CHUNK * dim)
            .map(|rows| {
                let n = rows.len() / dim;
                let mut out = vec![0f32; n_queries * n];
                for (query, out) in queries.chunks_exact(dim).zip(out.chunks_mut(n)) {
                    for (logit, row) in out.iter_mut().zip(rows.chunks_exact(dim)) {
                        *logit = weighted_l1(query, row, weight) + bias;
                    }
                }
                out
            })
            .collect();
        for (c, chunk) in chunks.iter().enumerate() {
            let (start, n) = (c * SCORE_CHUNK, chunk.len() / n_queries);
            for (q, scores) in chunk.chunks_exact(n).enumerate() {
                logits[q * shots + start..q * shots + start + n].copy_from_slice(scores);
            }
        }
        logits
    }

    /// Removes a class and all its shots; returns how many shots it had.
    pub fn remove(&mut self, label: &str) -> Result<usize> {
        let class = self.class_index(label)?;
        let keep: Vec<usize> = (0..self.shot_class.len())
            .filter(|&shot| self.shot_class[shot] != class)
            .collect();
        let removed = self.shot_class.len() - keep.len();
        let dim = self.dim;
        self.embeddings = keep
            .iter()
            .flat_map(|&shot| {
                self.embeddings[shot * dim..(shot + 1) * dim]
                    .iter()
                    .copied()
            })
            .collect();
        self.shot_class = keep
            .iter()
            .map(|&shot| {
                let c = self.shot_class[shot];
                if c > class { c - 1 } else { c }
            })
            .collect();
        self.labels.remove(class);
        *self = Self::new(
            std::mem::take(&mut self.labels),
            std::mem::take(&mut self.shot_class),
            std::mem::take(&mut self.embeddings),
            dim,
        );
        Ok(removed)
    }

    /// Index of `label`.
    pub fn class_index(&self, label: &str) -> Result<usize> {
        self.index
            .get(label)
            .copied()
            .ok_or_else(|| Error::NotFound {
                kind: "label",
                name: label.into(),
                available: self.labels.clone(),
            })
    }

    /// Shots of each class.
    pub fn shots_per_class(&self) -> Vec<usize> {
        let mut counts = vec![0; self.labels.len()];
        for &class in &self.shot_class {
            counts[class] += 1;
        }
        counts
    }

    /// Ranks the classes from one query's logits against every shot, best first; ties keep
    /// the classes' order (the evaluator's "first such class").
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a logit is NaN (a broken network).
    pub fn rank(&self, logits: &[f32], aggregation: Aggregation) -> Result<Vec<Match>> {
        debug_assert_eq!(logits.len(), self.shot_class.len());
        if let Some(shot) = logits.iter().position(|v| v.is_nan()) {
            return Err(Error::invalid(
                "model",
                format!(
                    "the network scored the query NaN against a shot of {:?}",
                    self.labels[self.shot_class[shot]]
                ),
            ));
        }
        let scores = aggregation.by_class(logits, &self.shot_class, self.labels.len());
        let mut order: Vec<usize> = (0..self.labels.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        Ok(order
            .into_iter()
            .map(|class| Match {
                label: self.labels[class].clone(),
                probability: sigmoid(scores[class]),
                logit: scores[class],
            })
            .collect())
    }
}

/// `sum_j weight_j |a_j - b_j|`, in eight lanes that the compiler keeps in vector
/// registers (a plain fold is one dependent chain of additions).
fn weighted_l1(a: &[f32], b: &[f32], weight: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut sums = [0f32; LANES];
    let (a8, b8, w8) = (
        a.chunks_exact(LANES),
        b.chunks_exact(LANES),
        weight.chunks_exact(LANES),
    );
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .zip(w8.remainder())
        .map(|((x, y), w)| w * (x - y).abs())
        .sum();
    for ((a, b), w) in a8.zip(b8).zip(w8) {
        let a: &[f32; LANES] = a.try_into().expect("chunks of LANES");
        let b: &[f32; LANES] = b.try_into().expect("chunks of LANES");
        let w: &[f32; LANES] = w.try_into().expect("chunks of LANES");
        for lane in 0..LANES {
            sums[lane] += w[lane] * (a[lane] - b[lane]).abs();
        }
    }
    sums.iter().sum::<f32>() + tail
}

/// The logistic function.
pub(super) fn sigmoid(logit: f32) -> f32 {
    1.0 / (1.0 + (-logit).exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;

    fn gallery(labels: &[&str]) -> Gallery {
        let mut gallery = Gallery::default();
        let rows: Vec<f32> = (0..labels.len()).map(|i| i as f32).collect();
        gallery.push(labels.iter().map(|l| l.to_string()).collect(), rows, 1);
        gallery
    }

    #[test]
    fn mean_and_max_aggregate_each_class_shots() {
        let gallery = gallery(&["a", "b", "a", "c", "b"]);
        assert_eq!(gallery.labels, ["a", "b", "c"]);
        assert_eq!(gallery.shots_per_class(), [2, 2, 1]);
        // a: 1 and 5; b: 4 and -2; c: 2.
        let logits = [1.0, 4.0, 5.0, 2.0, -2.0];
        let mean = gallery.rank(&logits, Aggregation::Mean).unwrap();
        let labels: Vec<&str> = mean.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(labels, ["a", "c", "b"]);
        assert_eq!(mean[0].logit, 3.0);
        assert_eq!(mean[2].logit, 1.0);
        assert!((mean[0].probability - 0.952_574_1).abs() < 1e-6);
        let max = gallery.rank(&logits, Aggregation::Max).unwrap();
        let labels: Vec<&str> = max.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(labels, ["a", "b", "c"]);
        assert_eq!(max[1].logit, 4.0);
    }

    #[test]
    fn ties_keep_the_order_of_the_classes() {
        let gallery = gallery(&["x", "y", "z"]);
        let ranked = gallery.rank(&[0.5, 2.0, 0.5], Aggregation::Mean).unwrap();
        let labels: Vec<&str> = ranked.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(labels, ["y", "x", "z"]);
        assert!(
            gallery
                .rank(&[0.5, f32::NAN, 0.5], Aggregation::Mean)
                .is_err()
        );
    }

    #[test]
    fn removing_a_class_keeps_the_others_rows() {
        let mut gallery = gallery(&["a", "b", "a", "c", "b"]);
        assert_eq!(gallery.remove("a").unwrap(), 2);
        assert_eq!(gallery.labels, ["b", "c"]);
        assert_eq!(gallery.shot_class, [0, 1, 0]);
        assert_eq!(gallery.embeddings, [1.0, 3.0, 4.0]);
        assert_eq!(gallery.class_index("c").unwrap(), 1);
        let err = gallery.remove("a").unwrap_err();
        assert!(
            err.to_string()
                .contains("\"a\" not found (available: b, c)"),
            "{err}"
        );
        gallery.push(vec!["b".into(), "d".into()], vec![7.0, 8.0], 1);
        assert_eq!(gallery.labels, ["b", "c", "d"]);
        assert_eq!(gallery.shot_class, [0, 1, 0, 0, 2]);
        for label in ["b", "c", "d"] {
            gallery.remove(label).unwrap();
        }
        assert!(gallery.embeddings.is_empty() && gallery.labels.is_empty());
    }

    /// The gallery's scorer, chunked over the cores, gives the head's own all-pairs logits
    /// (Burn's ops on the device) within float rounding: 3 queries against 2,500 shots of
    /// width 37 (the chunks and the lanes both leave a remainder).
    #[test]
    fn the_parallel_scorer_gives_the_heads_logits() {
        let device = crate::device::default_device().unwrap();
        device.seed(5);
        let head = crate::model::L1DistanceHeadConfig::new(37).init(&device);
        let (q, s, d) = (3, 2_500, 37);
        let random = |n| {
            Tensor::<2>::random(
                [n, d],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                &device,
            )
        };
        let (queries, supports) = (random(q), random(s));
        let expected = crate::tensors::to_f32s(head.forward_all(queries.clone(), supports.clone()));
        let mut gallery = Gallery::default();
        gallery.push(
            (0..s).map(|i| format!("class {i}")).collect(),
            crate::tensors::to_f32s(supports),
            d,
        );
        let weight = crate::tensors::to_f32s(head.weight.val());
        let bias = crate::tensors::to_f32s(head.bias.val())[0];
        let logits = gallery.logits(&crate::tensors::to_f32s(queries), &weight, bias);
        assert_eq!(logits.len(), q * s);
        let worst = expected
            .iter()
            .zip(&logits)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs() / a.abs().max(1.0)));
        assert!(worst < 1e-5, "scorer and head differ by {worst}");
    }
}
