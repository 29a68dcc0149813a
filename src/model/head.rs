//! Koch's weighted L1 distance head.

use burn::module::Param;
use burn::nn::Initializer;
use burn::prelude::*;

/// Most floats the all-pairs form materialises at once (`chunk × S × D`): 2^24, 64 MiB in f32.
pub(crate) const ALL_PAIRS_BUDGET: usize = 1 << 24;

/// Configuration of an [`L1DistanceHead`].
#[derive(Config, Debug)]
pub struct L1DistanceHeadConfig {
    /// Embedding width `D`.
    pub d_embedding: usize,
    /// Initializer of the weights `alpha` (Koch: normal, mean 0, std 0.2).
    #[config(default = "Initializer::Normal { mean: 0.0, std: 0.2 }")]
    pub initializer: Initializer,
    /// Initializer of the bias `b` (Koch: normal, mean 0.5, std 0.01).
    #[config(default = "Initializer::Normal { mean: 0.5, std: 0.01 }")]
    pub bias_initializer: Initializer,
}

/// Scores two embeddings: `logit = sum_j alpha_j |h1_j - h2_j| + b`.
///
/// `sigmoid(logit)` is the paper's probability that both images show the same class. The
/// score is symmetric in its two inputs by construction.
#[derive(Module, Debug)]
pub struct L1DistanceHead {
    /// Per-feature weights `alpha`, `[D, 1]`.
    pub weight: Param<Tensor<2>>,
    /// Bias `b`, `[1]`.
    pub bias: Param<Tensor<1>>,
}

impl L1DistanceHeadConfig {
    /// Initialize a new [`L1DistanceHead`].
    pub fn init(&self, device: &Device) -> L1DistanceHead {
        L1DistanceHead {
            weight: self.initializer.init_with(
                [self.d_embedding, 1],
                Some(self.d_embedding),
                Some(1),
                device,
            ),
            bias: self
                .bias_initializer
                .init_with([1], Some(self.d_embedding), Some(1), device),
        }
    }
}

impl L1DistanceHead {
    /// Pairwise logits: row `i` of `left` against row `i` of `right`.
    ///
    /// # Shapes
    /// - left, right: `[B, D]`
    /// - output: `[B, 1]`
    pub fn forward(&self, left: Tensor<2>, right: Tensor<2>) -> Tensor<2> {
        (left - right).abs().matmul(self.weight.val()) + self.bias.val().unsqueeze()
    }

    /// All-pairs logits: every query against every support.
    ///
    /// The difference tensor is built for a chunk of queries at a time, so this allocates
    /// at most about `max(S × D, ALL_PAIRS_BUDGET)` floats besides the `[Q, S]` output: for a
    /// 20-way episode of the Koch net (20 × 20 × 4096) that is 6.6 MB in one chunk.
    ///
    /// # Shapes
    /// - queries: `[Q, D]`
    /// - supports: `[S, D]`
    /// - output: `[Q, S]`
    pub fn forward_all(&self, queries: Tensor<2>, supports: Tensor<2>) -> Tensor<2> {
        let [n_queries, d] = queries.dims();
        let [n_supports, d_supports] = supports.dims();
        assert_eq!(
            d, d_supports,
            "queries have {d} features but supports have {d_supports}"
        );
        let chunk = (ALL_PAIRS_BUDGET / (n_supports * d).max(1)).max(1);
        let supports: Tensor<3> = supports.unsqueeze_dim(0); // [1, S, D]
        let weight = self.weight.val(); // [D, 1]
        let bias = self.bias.val();
        let rows: Vec<Tensor<2>> = (0..n_queries)
            .step_by(chunk)
            .map(|start| {
                let len = chunk.min(n_queries - start);
                let q: Tensor<3> = queries.clone().narrow(0, start, len).unsqueeze_dim(1); // [c, 1, D]
                let diff = (q - supports.clone()).abs().reshape([len * n_supports, d]);
                diff.matmul(weight.clone()).reshape([len, n_supports])
            })
            .collect();
        let logits = if rows.len() == 1 {
            rows.into_iter().next().expect("one chunk")
        } else {
            Tensor::cat(rows, 0)
        };
        logits + bias.unsqueeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData, Tolerance};

    fn hand_made(device: &Device) -> L1DistanceHead {
        L1DistanceHead {
            weight: Param::from_data([[1.0], [-2.0], [0.5]], device),
            bias: Param::from_data([0.25], device),
        }
    }

    crate::device_tests! {
        fn head_matches_hand_computation(device) {
            let head = hand_made(&device);
            let left = Tensor::<2>::from_data([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], &device);
            let right = Tensor::<2>::from_data([[0.0, 4.0, 1.0], [1.0, -1.0, 4.0]], &device);
            // |1-0|*1 + |2-4|*(-2) + |3-1|*0.5 + 0.25 = 1 - 4 + 1 + 0.25 = -1.75
            // |0-1|*1 + |0+1|*(-2) + |0-4|*0.5 + 0.25 = 1 - 2 + 2 + 0.25 = 1.25
            head.forward(left, right).into_data().assert_approx_eq::<f32>(
                &TensorData::from([[-1.75], [1.25]]),
                Tolerance::absolute(1e-6),
            );
        }

        fn head_is_symmetric(device) {
            let head = L1DistanceHeadConfig::new(16).init(&device);
            let a = Tensor::<2>::random([5, 16], Distribution::Default, &device);
            let b = Tensor::<2>::random([5, 16], Distribution::Default, &device);
            head.forward(a.clone(), b.clone()).into_data().assert_approx_eq::<f32>(
                &head.forward(b, a).into_data(),
                Tolerance::absolute(1e-6),
            );
        }

        fn all_pairs_equals_pairwise(device) {
            let head = L1DistanceHeadConfig::new(8).init(&device);
            let queries = Tensor::<2>::random([3, 8], Distribution::Default, &device);
            let supports = Tensor::<2>::random([4, 8], Distribution::Default, &device);
            let all = head.forward_all(queries.clone(), supports.clone());
            assert_eq!(all.dims(), [3, 4]);
            let all: Vec<f32> = all.into_data().try_to_vec::<f32>().unwrap();
            for q in 0..3 {
                let left = queries.clone().narrow(0, q, 1).repeat_dim(0, 4);
                let pair: Vec<f32> = head.forward(left, supports.clone()).into_data().try_to_vec::<f32>().unwrap();
                for s in 0..4 {
                    assert!((all[q * 4 + s] - pair[s]).abs() < 1e-5, "query {q}, support {s}");
                }
            }
        }

        fn all_pairs_chunks_give_the_same_answer(device) {
            // 3000 supports x 8 features: 24,000 floats per query, so the 2^24 budget
            // splits 800 queries into chunks of 699.
            let head = L1DistanceHeadConfig::new(8).init(&device);
            let queries = Tensor::<2>::random([800, 8], Distribution::Default, &device);
            let supports = Tensor::<2>::random([3000, 8], Distribution::Default, &device);
            let all = head.forward_all(queries.clone(), supports.clone());
            let last = head.forward_all(queries.narrow(0, 799, 1), supports);
            all.narrow(0, 799, 1)
                .into_data()
                .assert_approx_eq::<f32>(&last.into_data(), Tolerance::absolute(1e-5));
        }
    }
}
