//! The Wilson score interval for an accuracy.
//!
//! An accuracy measured on a few hundred trials is uncertain by several points; reports
//! give the interval beside the figure. Wilson's interval stays inside `[0, 1]` and keeps
//! a sensible width at accuracies near 0 or 1, where the normal approximation does not.

use std::fmt;

/// The normal quantile of a two-sided 95% interval.
pub const Z_95: f64 = 1.959964;

/// A confidence interval for a proportion, both ends in `[0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// Lower end.
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
}

impl Interval {
    /// The Wilson score interval of `successes` out of `trials` at normal quantile `z`
    /// (use [`Z_95`] for 95%).
    ///
    /// With no trials nothing is known, and the interval is `[0, 1]`.
    ///
    /// ```
    /// use siamese::eval::{Interval, Z_95};
    ///
    /// let interval = Interval::wilson(5, 10, Z_95);
    /// assert!((interval.lower - 0.2366).abs() < 1e-4);
    /// assert!((interval.upper - 0.7634).abs() < 1e-4);
    /// ```
    ///
    /// # Panics
    /// When `successes > trials`.
    pub fn wilson(successes: usize, trials: usize, z: f64) -> Self {
        assert!(
            successes <= trials,
            "{successes} successes out of {trials} trials"
        );
        if trials == 0 {
            return Self {
                lower: 0.0,
                upper: 1.0,
            };
        }
        let n = trials as f64;
        let p = successes as f64 / n;
        let z2 = z * z;
        let denominator = 1.0 + z2 / n;
        let centre = (p + z2 / (2.0 * n)) / denominator;
        let half = z / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
        Self {
            lower: (centre - half).max(0.0),
            upper: (centre + half).min(1.0),
        }
    }

    /// Whether `value` lies in the interval (ends included).
    pub fn contains(&self, value: f64) -> bool {
        (self.lower..=self.upper).contains(&value)
    }
}

impl fmt::Display for Interval {
    /// In percent, one decimal: `[23.7%, 76.3%]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:.1}%, {:.1}%]",
            100.0 * self.lower,
            100.0 * self.upper
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(interval: Interval, lower: f64, upper: f64) {
        // The references are rounded to 4 decimals.
        assert!(
            (interval.lower - lower).abs() <= 5e-5 && (interval.upper - upper).abs() <= 5e-5,
            "{interval:?}, expected [{lower}, {upper}]"
        );
    }

    #[test]
    fn known_values() {
        // Newcombe (1998), "Two-sided confidence intervals for the single proportion",
        // Statistics in Medicine 17, table II, method 3 (Wilson score).
        close(Interval::wilson(81, 263, Z_95), 0.2553, 0.3662);
        close(Interval::wilson(15, 148, Z_95), 0.0624, 0.1605);
        close(Interval::wilson(0, 20, Z_95), 0.0, 0.1611);
        close(Interval::wilson(1, 29, Z_95), 0.0061, 0.1718);
        // Half and all of 10.
        close(Interval::wilson(5, 10, Z_95), 0.2366, 0.7634);
        close(Interval::wilson(10, 10, Z_95), 0.7225, 1.0);
    }

    #[test]
    fn narrows_with_more_trials_and_holds_the_estimate() {
        let small = Interval::wilson(30, 40, Z_95);
        let large = Interval::wilson(300, 400, Z_95);
        assert!(large.upper - large.lower < small.upper - small.lower);
        assert!(small.contains(0.75) && large.contains(0.75));
        assert_eq!(
            Interval::wilson(0, 0, Z_95),
            Interval {
                lower: 0.0,
                upper: 1.0
            }
        );
        assert_eq!(Interval::wilson(5, 10, Z_95).to_string(), "[23.7%, 76.3%]");
    }

    #[test]
    #[should_panic(expected = "11 successes out of 10 trials")]
    fn more_successes_than_trials_is_a_bug() {
        Interval::wilson(11, 10, Z_95);
    }
}
