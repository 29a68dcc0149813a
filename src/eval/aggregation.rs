//! How the scores of a class's shots become the class's score: for the evaluator's
//! episodes and the matcher's gallery alike.

use burn::prelude::*;

/// How the K scores of a class's support images become the class's score.
///
/// ```
/// use siamese::eval::Aggregation;
///
/// assert_eq!(Aggregation::Mean.combine(&[1.0, 2.0, 6.0]), 3.0);
/// assert_eq!(Aggregation::Max.combine(&[1.0, 2.0, 6.0]), 6.0);
/// ```
#[derive(Config, Debug, PartialEq, Eq, Copy)]
#[non_exhaustive]
pub enum Aggregation {
    /// The mean of the K scores (logits for the network, negated distances for baselines).
    Mean,
    /// The best of the K scores: nearest-neighbour over the support images.
    Max,
}

impl Aggregation {
    /// The score of a class from the scores of its shots, summed in order for the mean.
    /// No shots score `NaN` for the mean and minus infinity for the max.
    pub fn combine(self, shots: &[f32]) -> f32 {
        match self {
            Aggregation::Mean => shots.iter().sum::<f32>() / shots.len() as f32,
            Aggregation::Max => shots.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        }
    }

    /// The score of each of `classes` classes from shot scores, `class_of[i]` being the
    /// class of shot `i`.
    pub(crate) fn by_class(self, scores: &[f32], class_of: &[usize], classes: usize) -> Vec<f32> {
        let mut shots = vec![Vec::new(); classes];
        for (&class, &score) in class_of.iter().zip(scores) {
            shots[class].push(score);
        }
        shots.iter().map(|shots| self.combine(shots)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_scored_from_their_own_shots() {
        let scores = [1.0, 4.0, -2.0, 0.5];
        let class_of = [0, 1, 0, 1];
        assert_eq!(
            Aggregation::Mean.by_class(&scores, &class_of, 2),
            [-0.5, 2.25]
        );
        assert_eq!(Aggregation::Max.by_class(&scores, &class_of, 2), [1.0, 4.0]);
        assert_eq!(Aggregation::Max.combine(&[]), f32::NEG_INFINITY);
        assert!(Aggregation::Mean.combine(&[]).is_nan());
    }
}
