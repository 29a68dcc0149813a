//! What a training step minimises: Koch's pair loss, or a loss on the head's all-pairs
//! logits of a grouped batch.

use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, log_softmax};

use crate::data::GroupedBatchConfig;
use crate::{Error, Result};

/// The training loss. The network is Koch's in every case (twin encoder, weighted L1 head,
/// sigmoid); what changes is which comparisons a step learns from.
///
/// Koch's pairs pay two encoder passes for one same/different label. A grouped batch of
/// `m` characters × `k` drawings pays `m × k` passes for `(mk)² / 2` comparisons, most of
/// them between characters of one alphabet, as in a one-shot trial. On 2 CPU cores the
/// episode loss reaches in 8 minutes the one-shot accuracy that Koch's pairs reached in
/// 2.7 hours (the README's "Training recipes").
///
/// ```
/// use siamese::train::{LossConfig, TrainingConfig};
/// use siamese::SiameseConfig;
///
/// let config = TrainingConfig::new(SiameseConfig::compact())
///     .with_loss(Some(LossConfig::episode(32))) // 32 characters × 2 drawings a step
///     .with_pairs_per_epoch(8_000);
/// assert_eq!(config.images_per_step(), 64);
/// assert_eq!(config.steps_per_epoch(), 250); // 16,000 images, as 8,000 pairs would take
/// assert_eq!(TrainingConfig::new(SiameseConfig::compact()).loss(), LossConfig::Pairs);
/// config.validate()?;
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Config, Debug, PartialEq)]
#[non_exhaustive]
pub enum LossConfig {
    /// Koch's recipe: binary cross-entropy on same / different pairs, `batch_size` pairs a
    /// step, half of them same ([`crate::data::PairDataset`]).
    Pairs,
    /// Binary cross-entropy over every pair of a grouped batch's images
    /// ([`all_pairs_loss`]): the positives (same character) and the negatives each make up
    /// their share of the loss, so that the rare positives count.
    AllPairs {
        /// What each batch holds.
        batch: GroupedBatchConfig,
        /// Weight of the positives' mean loss; the negatives' mean gets the rest (0.5:
        /// balanced, as Koch's half-same pairs are).
        positive_share: f64,
    },
    /// The one-shot task as the training signal ([`episode_loss`]): every drawing of a
    /// grouped batch is a query of a `m`-way episode against one drawing of each character
    /// (every other drawing index in turn), scored by softmax cross-entropy over its
    /// logits. Plus `all_pairs_weight` × the balanced all-pairs loss, which alone moves the
    /// head's bias (a softmax ignores it), so that the sigmoid stays a probability.
    Episode {
        /// What each batch holds.
        batch: GroupedBatchConfig,
        /// Weight of the balanced all-pairs loss added to the episode loss (0: none).
        all_pairs_weight: f64,
    },
}

impl LossConfig {
    /// The N-way episode loss on batches of `characters` × 2 drawings from 2 alphabets,
    /// with a tenth of the all-pairs loss to keep the sigmoid calibrated.
    pub fn episode(characters: usize) -> Self {
        LossConfig::Episode {
            batch: GroupedBatchConfig::new().with_characters(characters),
            all_pairs_weight: 0.1,
        }
    }

    /// The balanced all-pairs loss on batches of `characters` × 2 drawings from 2 alphabets.
    pub fn all_pairs(characters: usize) -> Self {
        LossConfig::AllPairs {
            batch: GroupedBatchConfig::new().with_characters(characters),
            positive_share: 0.5,
        }
    }

    /// What each grouped batch holds; `None` for Koch's pairs.
    pub fn batch(&self) -> Option<&GroupedBatchConfig> {
        match self {
            LossConfig::Pairs => None,
            LossConfig::AllPairs { batch, .. } | LossConfig::Episode { batch, .. } => Some(batch),
        }
    }

    /// A short name for logs and tables: `pairs`, `all-pairs` or `episode`.
    pub fn name(&self) -> &'static str {
        match self {
            LossConfig::Pairs => "pairs",
            LossConfig::AllPairs { .. } => "all-pairs",
            LossConfig::Episode { .. } => "episode",
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if let Some(batch) = self.batch() {
            batch.validate()?;
        }
        match self {
            LossConfig::AllPairs { positive_share, .. }
                if !(0.0..=1.0).contains(positive_share) =>
            {
                Err(Error::invalid(
                    "positive_share",
                    format!("{positive_share} is not in [0, 1]"),
                ))
            }
            LossConfig::Episode {
                all_pairs_weight, ..
            } if !(*all_pairs_weight >= 0.0 && all_pairs_weight.is_finite()) => {
                Err(Error::invalid(
                    "all_pairs_weight",
                    format!("{all_pairs_weight} is negative"),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The loss of a grouped batch from its all-pairs logits (`head.forward_all(e, e)` of
    /// the batch's embeddings `e`, drawing-major as [`crate::data::GroupDataset`] yields
    /// them).
    ///
    /// # Shapes
    /// - logits: `[B, B]` with `B = characters × drawings`
    /// - output: `[1]`
    ///
    /// # Panics
    /// For [`LossConfig::Pairs`], whose batches are pairs, or logits of another shape.
    pub fn grouped(&self, logits: Tensor<2>, characters: usize, drawings: usize) -> Tensor<1> {
        match self {
            LossConfig::Pairs => panic!("Koch's pair loss takes pairs, not a grouped batch"),
            LossConfig::AllPairs { positive_share, .. } => {
                all_pairs_loss(logits, characters, drawings, *positive_share)
            }
            LossConfig::Episode {
                all_pairs_weight, ..
            } => {
                let episode = episode_loss(logits.clone(), characters, drawings);
                if *all_pairs_weight > 0.0 {
                    episode
                        + all_pairs_loss(logits, characters, drawings, 0.5)
                            .mul_scalar(*all_pairs_weight)
                } else {
                    episode
                }
            }
        }
    }
}

/// Koch's loss: mean binary cross-entropy of pair logits against same (1) / different (0).
///
/// # Shapes
/// - logits, targets: `[B]`
/// - output: `[1]`
pub fn pair_loss(logits: Tensor<1>, targets: Tensor<1>) -> Tensor<1> {
    BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(&logits.device())
        .forward(logits, targets.int())
}

fn check_shape(logits: &Tensor<2>, characters: usize, drawings: usize) -> usize {
    let b = characters * drawings;
    assert!(
        characters >= 2 && drawings >= 2 && logits.dims() == [b, b],
        "a grouped batch of {characters} characters x {drawings} drawings has [{b}, {b}] \
         logits, not {:?}",
        logits.dims()
    );
    b
}

/// The N-way episode loss of a grouped batch. Row `q = j·m + c` (drawing `j` of character
/// `c`) is a query; for every other drawing index `j'`, its logits against the `m` images
/// `j'·m + 0 .. j'·m + m` are a `m`-way episode whose answer is `j'·m + c`. The loss is the
/// mean softmax cross-entropy over the `m·k·(k − 1)` episodes.
///
/// # Shapes
/// - logits: `[B, B]`, `B = characters × drawings`, drawing-major
/// - output: `[1]`
pub fn episode_loss(logits: Tensor<2>, characters: usize, drawings: usize) -> Tensor<1> {
    let b = check_shape(&logits, characters, drawings);
    let device = logits.device();
    // [B, k, m]: each (query, support drawing) row is one m-way episode.
    let log_p = log_softmax(logits.reshape([b, drawings, characters]), 2);
    let mut answers = vec![0f32; b * b];
    for q in 0..b {
        let (j, c) = (q / characters, q % characters);
        for other in (0..drawings).filter(|&other| other != j) {
            answers[q * b + other * characters + c] = 1.0;
        }
    }
    let answers =
        Tensor::<3>::from_data(TensorData::new(answers, [b, drawings, characters]), &device);
    (log_p * answers)
        .sum()
        .mul_scalar(-1.0 / (b * (drawings - 1)) as f64)
}

/// Binary cross-entropy over every pair of a grouped batch's images (each unordered pair
/// once, no image with itself): `positive_share` × the positives' mean plus
/// `1 − positive_share` × the negatives' mean. A batch of `m × k` images has `m·k(k − 1)/2`
/// positives among `mk(mk − 1)/2` pairs (32 of 2,016 for 32 × 2), so an unweighted mean
/// would teach little but "different".
///
/// # Shapes
/// - logits: `[B, B]`, `B = characters × drawings`, drawing-major
/// - output: `[1]`
pub fn all_pairs_loss(
    logits: Tensor<2>,
    characters: usize,
    drawings: usize,
    positive_share: f64,
) -> Tensor<1> {
    let b = check_shape(&logits, characters, drawings);
    let device = logits.device();
    let positives = characters * drawings * (drawings - 1) / 2;
    let negatives = b * (b - 1) / 2 - positives;
    let (mut pos, mut neg) = (vec![0f32; b * b], vec![0f32; b * b]);
    for i in 0..b {
        for j in i + 1..b {
            if i % characters == j % characters {
                pos[i * b + j] = (positive_share / positives as f64) as f32;
            } else {
                neg[i * b + j] = ((1.0 - positive_share) / negatives as f64) as f32;
            }
        }
    }
    let mask =
        |weights: Vec<f32>| Tensor::<2>::from_data(TensorData::new(weights, [b, b]), &device);
    // BCE(x, 1) = -log σ(x), BCE(x, 0) = -log σ(-x).
    let same = log_sigmoid(logits.clone()) * mask(pos);
    let different = log_sigmoid(logits.neg()) * mask(neg);
    (same + different).sum().neg()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logits of 2 characters × 2 drawings (rows and columns: a1, b1, a2, b2).
    const LOGITS: [[f32; 4]; 4] = [
        [9.0, -1.0, 2.0, 0.5],
        [-1.0, 9.0, -0.5, 1.0],
        [2.0, -0.5, 9.0, 0.0],
        [0.5, 1.0, 0.0, 9.0],
    ];

    fn ln_sigmoid(x: f64) -> f64 {
        -(1.0 + (-x).exp()).ln()
    }

    fn value(t: Tensor<1>) -> f64 {
        f64::from(t.into_scalar::<f32>())
    }

    crate::device_tests! {
        fn episode_loss_matches_a_hand_computation(device) {
            let logits = Tensor::<2>::from_data(LOGITS, &device);
            // Queries a1 and b1 against {a2, b2}; a2 and b2 against {a1, b1}.
            let ce = |right: f64, wrong: f64| -(right - (right.exp() + wrong.exp()).ln());
            let expected = (ce(2.0, 0.5) + ce(1.0, -0.5) + ce(2.0, -0.5) + ce(1.0, 0.5)) / 4.0;
            let got = value(episode_loss(logits, 2, 2));
            assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
        }

        fn all_pairs_loss_matches_a_hand_computation(device) {
            let logits = Tensor::<2>::from_data(LOGITS, &device);
            // Positives: (a1, a2) = 2.0, (b1, b2) = 1.0; negatives: (a1, b1) = -1,
            // (a1, b2) = 0.5, (b1, a2) = -0.5, (a2, b2) = 0.0.
            let pos = -(ln_sigmoid(2.0) + ln_sigmoid(1.0)) / 2.0;
            let neg = -[-1.0, 0.5, -0.5, 0.0].iter().map(|&x: &f64| ln_sigmoid(-x)).sum::<f64>() / 4.0;
            for share in [0.5, 0.8] {
                let expected = share * pos + (1.0 - share) * neg;
                let got = value(all_pairs_loss(logits.clone(), 2, 2, share));
                assert!((got - expected).abs() < 1e-5, "share {share}: {got} vs {expected}");
            }
        }

        fn the_mixed_loss_adds_its_weighted_parts(device) {
            let logits = Tensor::<2>::from_data(LOGITS, &device);
            let batch = GroupedBatchConfig::new().with_characters(2);
            let mixed = LossConfig::Episode { batch: batch.clone(), all_pairs_weight: 0.25 };
            let expected = value(episode_loss(logits.clone(), 2, 2))
                + 0.25 * value(all_pairs_loss(logits.clone(), 2, 2, 0.5));
            assert!((value(mixed.grouped(logits.clone(), 2, 2)) - expected).abs() < 1e-5);
            let pure = LossConfig::Episode { batch, all_pairs_weight: 0.0 };
            assert!((value(pure.grouped(logits.clone(), 2, 2)) - value(episode_loss(logits, 2, 2))).abs() < 1e-6);
        }

        fn pair_loss_is_binary_cross_entropy(device) {
            let logits = Tensor::<1>::from_data([2.0, -1.0], &device);
            let targets = Tensor::<1>::from_data([1.0, 1.0], &device);
            let expected = -(ln_sigmoid(2.0) + ln_sigmoid(-1.0)) / 2.0;
            assert!((value(pair_loss(logits, targets)) - expected).abs() < 1e-5);
        }
    }

    /// Gradient descent on the logits themselves: every loss pushes positive logits up
    /// (the episode loss: up relative to their episode) and negative ones down.
    #[test]
    fn a_step_raises_positive_logits_and_lowers_negative_ones() {
        let device = crate::device::default_device().unwrap().autodiff();
        let m = 3;
        let b = 2 * m;
        let start: Vec<f32> = (0..b * b)
            .map(|i| ((i * 7) % 11) as f32 / 5.0 - 1.0)
            .collect();
        let same = |i: usize, j: usize| i != j && i % m == j % m;
        for loss in ["episode", "all-pairs"] {
            let logits = Tensor::<2>::from_data(TensorData::new(start.clone(), [b, b]), &device)
                .require_grad();
            let value = match loss {
                "episode" => episode_loss(logits.clone(), m, 2),
                _ => all_pairs_loss(logits.clone(), m, 2, 0.5),
            };
            let grads = value.backward();
            let grad: Vec<f32> = logits
                .grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec()
                .unwrap();
            for i in 0..b {
                for j in 0..b {
                    let g = grad[i * b + j];
                    let counted = match loss {
                        "episode" => i / m != j / m, // other drawing: in an episode
                        _ => i < j,                  // each unordered pair once
                    };
                    if !counted {
                        assert_eq!(g, 0.0, "{loss}: ({i}, {j}) is not in the loss");
                    } else if same(i, j) {
                        assert!(g < 0.0, "{loss}: positive ({i}, {j}) has gradient {g}");
                    } else {
                        assert!(g > 0.0, "{loss}: negative ({i}, {j}) has gradient {g}");
                    }
                }
            }
        }
    }

    /// One optimiser step of each grouped loss, on a real network and batch, widens the
    /// gap between the batch's positive and negative logits.
    #[test]
    fn a_training_step_raises_positive_logits_above_negative_ones() {
        use crate::data::toy_set;
        use crate::data::{GroupBatcher, GroupDatasetConfig};
        use crate::train::OptimizerConfig;
        use crate::{Siamese, SiameseConfig};
        use burn::data::dataloader::batcher::Batcher;
        use burn::optim::GradientsParams;
        use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;

        let device = crate::device::default_device().unwrap().autodiff();
        let (m, k) = (4, 2);
        let groups = GroupDatasetConfig::new(GroupedBatchConfig::new().with_characters(m))
            .init(toy_set(2, 4, 3))
            .unwrap();
        let items = (0..m * k).map(|i| groups.item(0, i)).collect();
        let batch = GroupBatcher::new(52).unwrap().batch(items, &device);
        let logits = |model: &Siamese| {
            let e = model.embed(batch.images.clone());
            model.head.forward_all(e.clone(), e)
        };
        let gap = |model: &Siamese| {
            let values: Vec<f32> = logits(model).into_data().try_to_vec().unwrap();
            let (mut pos, mut neg) = (Vec::new(), Vec::new());
            for i in 0..m * k {
                for j in (0..m * k).filter(|&j| j != i) {
                    let v = f64::from(values[i * m * k + j]);
                    if i % m == j % m {
                        pos.push(v)
                    } else {
                        neg.push(v)
                    }
                }
            }
            pos.iter().sum::<f64>() / pos.len() as f64 - neg.iter().sum::<f64>() / neg.len() as f64
        };
        for loss in [LossConfig::episode(m), LossConfig::all_pairs(m)] {
            device.seed(1);
            let model = SiameseConfig::compact().init(&device);
            let before = gap(&model);
            let value = loss.grouped(logits(&model), m, k);
            let grads = GradientsParams::from_grads(value.backward(), &model);
            let mut optim = OptimizerConfig::adam().init(0);
            let model = optim.step(ModuleLearningRate::from(1e-3), model, grads);
            let after = gap(&model);
            assert!(after > before, "{}: gap {before} -> {after}", loss.name());
        }
    }

    #[test]
    fn bad_settings_are_named() {
        let batch = GroupedBatchConfig::new();
        for (config, field) in [
            (
                LossConfig::AllPairs {
                    batch: batch.clone(),
                    positive_share: 1.5,
                },
                "positive_share",
            ),
            (
                LossConfig::Episode {
                    batch: batch.clone(),
                    all_pairs_weight: -1.0,
                },
                "all_pairs_weight",
            ),
            (
                LossConfig::Episode {
                    batch: batch.clone().with_drawings(1),
                    all_pairs_weight: 0.0,
                },
                "drawings",
            ),
            (
                LossConfig::Episode {
                    batch: batch.with_characters(1),
                    all_pairs_weight: 0.0,
                },
                "characters",
            ),
        ] {
            let message = config.validate().unwrap_err().to_string();
            assert!(message.contains(field), "{message}");
        }
        assert!(LossConfig::Pairs.validate().is_ok());
        assert!(LossConfig::episode(32).validate().is_ok());
    }
}
