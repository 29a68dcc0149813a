//! The gallery: labelled support embeddings, and the ranking of classes from scores.

use burn::prelude::*;

use crate::eval::Aggregation;
use crate::tensors::{cat_batches, index_tensor};
use crate::{Error, Result};

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

/// Labelled support embeddings: every shot embedded once and kept on the device.
///
/// Classes keep the order in which their labels were first added; shots keep the order in
/// which they were added.
#[derive(Clone, Debug, Default)]
pub(super) struct Gallery {
    /// Class labels, distinct.
    pub labels: Vec<String>,
    /// The class (index into `labels`) of each shot.
    pub shot_class: Vec<usize>,
    /// `[shots, D]`; `None` when there are no shots.
    pub embeddings: Option<Tensor<2>>,
}

impl Gallery {
    /// Adds shots: `labels[i]` is the label of row `i` of `embeddings` (`[labels.len(), D]`).
    /// A label already present gets more shots.
    pub fn push(&mut self, labels: Vec<String>, embeddings: Tensor<2>) {
        debug_assert_eq!(labels.len(), embeddings.dims()[0]);
        for label in labels {
            let class = match self.labels.iter().position(|l| *l == label) {
                Some(class) => class,
                None => {
                    self.labels.push(label);
                    self.labels.len() - 1
                }
            };
            self.shot_class.push(class);
        }
        self.embeddings = Some(match self.embeddings.take() {
            None => embeddings,
            Some(old) => cat_batches(vec![old, embeddings]),
        });
    }

    /// Removes a class and all its shots; returns how many shots it had.
    pub fn remove(&mut self, label: &str) -> Result<usize> {
        let class = self.class_index(label)?;
        let keep: Vec<usize> = (0..self.shot_class.len())
            .filter(|&shot| self.shot_class[shot] != class)
            .collect();
        let removed = self.shot_class.len() - keep.len();
        self.embeddings = match self.embeddings.take() {
            Some(embeddings) if !keep.is_empty() => {
                let device = embeddings.device();
                Some(embeddings.select(0, index_tensor(&keep, &device)))
            }
            _ => None,
        };
        self.shot_class = keep
            .iter()
            .map(|&shot| {
                let c = self.shot_class[shot];
                if c > class { c - 1 } else { c }
            })
            .collect();
        self.labels.remove(class);
        Ok(removed)
    }

    /// Index of `label`.
    pub fn class_index(&self, label: &str) -> Result<usize> {
        self.labels
            .iter()
            .position(|l| l == label)
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

/// The logistic function.
pub(super) fn sigmoid(logit: f32) -> f32 {
    1.0 / (1.0 + (-logit).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gallery(labels: &[&str], device: &Device) -> Gallery {
        let mut gallery = Gallery::default();
        let rows: Vec<f32> = (0..labels.len()).map(|i| i as f32).collect();
        let embeddings = Tensor::<2>::from_data(
            burn::tensor::TensorData::new(rows, [labels.len(), 1]),
            device,
        );
        gallery.push(labels.iter().map(|l| l.to_string()).collect(), embeddings);
        gallery
    }

    #[test]
    fn mean_and_max_aggregate_each_class_shots() {
        let device = crate::device::default_device().unwrap();
        let gallery = gallery(&["a", "b", "a", "c", "b"], &device);
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
        let device = crate::device::default_device().unwrap();
        let gallery = gallery(&["x", "y", "z"], &device);
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
        let device = crate::device::default_device().unwrap();
        let mut gallery = gallery(&["a", "b", "a", "c", "b"], &device);
        assert_eq!(gallery.remove("a").unwrap(), 2);
        assert_eq!(gallery.labels, ["b", "c"]);
        assert_eq!(gallery.shot_class, [0, 1, 0]);
        let rows: Vec<f32> = gallery
            .embeddings
            .clone()
            .unwrap()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        assert_eq!(rows, [1.0, 3.0, 4.0]);
        let err = gallery.remove("a").unwrap_err();
        assert!(
            err.to_string()
                .contains("\"a\" not found (available: b, c)"),
            "{err}"
        );
        gallery.remove("b").unwrap();
        gallery.remove("c").unwrap();
        assert!(gallery.embeddings.is_none() && gallery.labels.is_empty());
    }
}
