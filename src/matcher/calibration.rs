//! Choosing the "same class" threshold of [`Matcher::verify`](super::Matcher::verify) from
//! labelled pairs.

use crate::{Error, Result};

/// What [`Matcher::calibrate`](super::Matcher::calibrate) chose, and how well it does on
/// the pairs it was chosen on.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// Pairs scoring at least this probability are called the same class.
    pub threshold: f32,
    /// Mean of the accuracies on same-class and on different-class pairs at `threshold`
    /// (the quantity maximised, so that unbalanced pair sets do not pull the threshold
    /// towards the commoner kind).
    pub balanced_accuracy: f32,
    /// Share of all pairs called right at `threshold`.
    pub accuracy: f32,
    /// Same-class pairs calibrated on.
    pub same_pairs: usize,
    /// Different-class pairs calibrated on.
    pub different_pairs: usize,
}

/// The numbers of same-class and different-class pairs.
///
/// # Errors
/// [`Error::InvalidArgument`] when either is 0.
pub(super) fn count_kinds(same: &[bool]) -> Result<(usize, usize)> {
    let same_pairs = same.iter().filter(|&&s| s).count();
    let different_pairs = same.len() - same_pairs;
    if same_pairs == 0 || different_pairs == 0 {
        return Err(Error::invalid(
            "pairs",
            format!(
                "calibration needs both same-class and different-class pairs; got \
                 {same_pairs} same and {different_pairs} different"
            ),
        ));
    }
    Ok((same_pairs, different_pairs))
}

/// The threshold on `probabilities` that best separates pairs marked `same` from the
/// others: the one with the highest balanced accuracy, halfway between two neighbouring
/// probabilities; the lowest such threshold on ties.
///
/// # Errors
/// [`Error::InvalidArgument`] when the lengths differ, when there are no same-class or
/// no different-class pairs, or when a probability is NaN.
pub(super) fn best_threshold(probabilities: &[f32], same: &[bool]) -> Result<Calibration> {
    if probabilities.len() != same.len() {
        return Err(Error::invalid(
            "pairs",
            format!(
                "{} probabilities for {} pairs",
                probabilities.len(),
                same.len()
            ),
        ));
    }
    let (same_pairs, different_pairs) = count_kinds(same)?;
    if probabilities.iter().any(|p| p.is_nan()) {
        return Err(Error::invalid("pairs", "a pair scored NaN"));
    }
    let mut order: Vec<usize> = (0..same.len()).collect();
    order.sort_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]));
    let sorted: Vec<f32> = order.iter().map(|&i| probabilities[i]).collect();

    // Split k: pairs sorted[k..] are called "same". Start with everything "same".
    let (mut true_same, mut true_different) = (same_pairs, 0);
    let balanced = |ts: usize, td: usize| {
        (ts as f32 / same_pairs as f32 + td as f32 / different_pairs as f32) / 2.0
    };
    let mut best = (
        0,
        balanced(true_same, true_different),
        true_same + true_different,
    );
    for k in 1..=sorted.len() {
        if same[order[k - 1]] {
            true_same -= 1;
        } else {
            true_different += 1;
        }
        let splits = k == sorted.len() || sorted[k - 1] < sorted[k];
        let score = balanced(true_same, true_different);
        if splits && score > best.1 {
            best = (k, score, true_same + true_different);
        }
    }
    let (k, balanced_accuracy, correct) = best;
    let threshold = if k == 0 {
        sorted[0]
    } else if k == sorted.len() {
        sorted[k - 1].next_up()
    } else {
        let (low, high) = (sorted[k - 1], sorted[k]);
        let middle = low + (high - low) / 2.0;
        if middle > low { middle } else { high }
    };
    Ok(Calibration {
        threshold,
        balanced_accuracy,
        accuracy: correct as f32 / same.len() as f32,
        same_pairs,
        different_pairs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Balanced accuracy of `threshold`, counted directly.
    fn balanced_at(threshold: f32, probabilities: &[f32], same: &[bool]) -> f32 {
        let rate = |kind: bool| {
            let pairs: Vec<usize> = (0..same.len()).filter(|&i| same[i] == kind).collect();
            let right = pairs
                .iter()
                .filter(|&&i| (probabilities[i] >= threshold) == kind)
                .count();
            right as f32 / pairs.len() as f32
        };
        (rate(true) + rate(false)) / 2.0
    }

    #[test]
    fn separable_pairs_get_a_threshold_in_the_gap() {
        let p = [0.9, 0.1, 0.7, 0.3, 0.65, 0.2];
        let same = [true, false, true, false, true, false];
        let c = best_threshold(&p, &same).unwrap();
        assert!((c.threshold - 0.475).abs() < 1e-6, "{c:?}");
        assert_eq!((c.balanced_accuracy, c.accuracy), (1.0, 1.0));
        assert_eq!((c.same_pairs, c.different_pairs), (3, 3));
    }

    #[test]
    fn the_threshold_is_the_best_of_every_candidate() {
        // Overlapping, unbalanced, with ties: brute force agrees.
        let p = [0.2, 0.8, 0.5, 0.5, 0.6, 0.1, 0.9, 0.5, 0.3, 0.7];
        let same = [
            false, true, true, false, false, false, true, true, true, false,
        ];
        let c = best_threshold(&p, &same).unwrap();
        let mut candidates: Vec<f32> = p.to_vec();
        candidates.extend([0.0, 1.0, 0.95, 0.55, 0.25]);
        let best = candidates
            .iter()
            .map(|&t| balanced_at(t, &p, &same))
            .fold(0.0, f32::max);
        assert_eq!(c.balanced_accuracy, best);
        assert_eq!(balanced_at(c.threshold, &p, &same), best);
    }

    #[test]
    fn extreme_thresholds_are_reachable() {
        // "Same" scores lowest: the best rule calls nothing same... or everything: both
        // score 0.5; the lowest (everything same) wins the tie.
        let c = best_threshold(&[0.1, 0.9], &[true, false]).unwrap();
        assert_eq!(c.balanced_accuracy, 0.5);
        assert_eq!(c.threshold, 0.1);
        // Probabilities of exactly 1: the threshold still separates.
        let c = best_threshold(&[1.0, 1.0, 0.99], &[true, true, false]).unwrap();
        assert_eq!(c.balanced_accuracy, 1.0);
        assert!(c.threshold > 0.99 && c.threshold <= 1.0, "{c:?}");
    }

    #[test]
    fn one_kind_of_pair_is_an_error() {
        for same in [[true, true], [false, false]] {
            let err = best_threshold(&[0.3, 0.6], &same).unwrap_err();
            assert!(err.to_string().contains("both"), "{err}");
        }
        assert!(best_threshold(&[], &[]).is_err());
        assert!(best_threshold(&[f32::NAN, 0.5], &[true, false]).is_err());
    }
}
