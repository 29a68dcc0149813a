//! How the learning rate moves within a run, step by step.

use burn::prelude::*;

use crate::{Error, Result};

/// How the learning rate moves within a run, on top of the optimiser's per-epoch decay
/// ([`OptimizerConfig`](super::OptimizerConfig)): the rate of a step is the epoch's rate
/// times [`LrSchedule::factor`] of the run's progress. A run without a schedule keeps the
/// epoch's rate for every step of the epoch.
///
/// The progress is that of the whole run, `epochs` long: a run resumed with more epochs
/// ([`Trainer::resume`](super::Trainer::resume) allows it) stretches the schedule over the
/// new length from the step it resumes at.
///
/// ```
/// use siamese::train::LrSchedule;
///
/// let cosine = LrSchedule::cosine();
/// assert_eq!(cosine.factor(0, 100), 1.0);
/// assert!((cosine.factor(50, 100) - 0.5).abs() < 1e-12);
/// assert!(cosine.factor(99, 100) < 1e-3);
/// ```
#[derive(Config, Debug, PartialEq)]
#[non_exhaustive]
pub enum LrSchedule {
    /// Half a cosine, from 1 at the first step down to `floor` after the last (one cycle
    /// of Loshchilov and Hutter's SGDR, no restart): a run of a fixed length ends at a
    /// small rate, where a per-epoch decay would stop it at a large one.
    Cosine {
        /// The factor the run ends at, in `[0, 1)`.
        floor: f64,
    },
}

impl LrSchedule {
    /// A cosine down to 0.
    pub fn cosine() -> Self {
        LrSchedule::Cosine { floor: 0.0 }
    }

    /// The factor of step `step` (0-based) of a run of `steps` steps over all its epochs.
    pub fn factor(&self, step: usize, steps: usize) -> f64 {
        match self {
            LrSchedule::Cosine { floor } => {
                let progress = step as f64 / steps.max(1) as f64;
                floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }

    /// Checks the fields.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `floor` when it is outside `[0, 1)`.
    pub fn validate(&self) -> Result<()> {
        match self {
            LrSchedule::Cosine { floor } if !(0.0..1.0).contains(floor) => Err(Error::invalid(
                "floor",
                format!("{floor} is outside [0, 1): the cosine falls from 1 to its floor"),
            )),
            LrSchedule::Cosine { .. } => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cosine_falls_from_one_to_its_floor_monotonically() {
        let schedule = LrSchedule::Cosine { floor: 0.1 };
        let factors: Vec<f64> = (0..=40).map(|step| schedule.factor(step, 40)).collect();
        assert_eq!(factors[0], 1.0);
        assert!((factors[20] - 0.55).abs() < 1e-12, "{}", factors[20]);
        assert!((factors[40] - 0.1).abs() < 1e-12, "{}", factors[40]);
        assert!(factors.windows(2).all(|w| w[1] < w[0]), "{factors:?}");
        // A quarter of the way: 0.1 + 0.9 × (1 + cos(π/4)) / 2.
        let quarter = 0.1 + 0.9 * 0.5 * (1.0 + std::f64::consts::FRAC_1_SQRT_2);
        assert!((schedule.factor(10, 40) - quarter).abs() < 1e-12);
    }

    #[test]
    fn a_floor_outside_zero_to_one_is_named() {
        assert!(LrSchedule::cosine().validate().is_ok());
        for floor in [-0.1, 1.0, f64::NAN] {
            let err = LrSchedule::Cosine { floor }.validate().unwrap_err();
            assert!(err.to_string().contains("floor"), "{err}");
        }
    }
}
