//! A fully connected layer whose weight is stored in column blocks.
//!
//! Koch's fc1 weight is 9216 × 4096 floats (151 MB). WebGPU's default limits and software
//! Vulkan (lavapipe) cap one storage buffer near 128 MiB, so a single weight tensor that size
//! cannot be allocated there. Storing the weight as column blocks of at most
//! [`MAX_BLOCK_ELEMENTS`] floats computes exactly `x W + b` on every device, and since the
//! block layout depends only on the layer's shape, the saved format is the same everywhere.

use burn::module::Param;
use burn::nn::Initializer;
use burn::prelude::*;

/// Most elements in one weight block: 2^24 floats, 64 MiB in f32, half of the smallest
/// buffer limit seen in practice.
pub(crate) const MAX_BLOCK_ELEMENTS: usize = 1 << 24;

/// Configuration of a [`BlockedLinear`] layer.
#[derive(Config, Debug)]
pub struct BlockedLinearConfig {
    /// Size of each input sample.
    pub d_input: usize,
    /// Size of each output sample.
    pub d_output: usize,
    /// Initializer of the weight.
    #[config(default = "Initializer::Normal { mean: 0.0, std: 0.2 }")]
    pub initializer: Initializer,
    /// Initializer of the bias.
    #[config(default = "Initializer::Normal { mean: 0.5, std: 0.01 }")]
    pub bias_initializer: Initializer,
    /// Most floats in one weight block. Part of the saved format (it fixes the blocks), so
    /// change it only for tests or exotic devices.
    #[config(default = "MAX_BLOCK_ELEMENTS")]
    pub max_block_elements: usize,
}

/// `y = x W + b`, with `W` (`[d_input, d_output]`) stored as column blocks.
#[derive(Module, Debug)]
pub struct BlockedLinear {
    /// Column blocks of the weight, each `[d_input, width]`, in output order.
    pub blocks: Vec<Param<Tensor<2>>>,
    /// Bias, `[d_output]`.
    pub bias: Param<Tensor<1>>,
}

impl BlockedLinearConfig {
    /// Widths of the column blocks: powers of two (for GPU tiling), each block at most
    /// `max_block_elements` floats (or one column, whichever is more), the last one
    /// taking the rest.
    pub fn block_widths(&self) -> Vec<usize> {
        let max_width = (self.max_block_elements / self.d_input.max(1)).max(1);
        let width = if max_width >= self.d_output {
            self.d_output
        } else {
            1 << max_width.ilog2()
        };
        let mut widths = vec![width; self.d_output / width];
        if !self.d_output.is_multiple_of(width) {
            widths.push(self.d_output % width);
        }
        widths
    }

    /// Initialize a new [`BlockedLinear`] layer.
    pub fn init(&self, device: &Device) -> BlockedLinear {
        let blocks = self
            .block_widths()
            .into_iter()
            .map(|width| {
                self.initializer.init_with(
                    [self.d_input, width],
                    Some(self.d_input),
                    Some(self.d_output),
                    device,
                )
            })
            .collect();
        let bias = self.bias_initializer.init_with(
            [self.d_output],
            Some(self.d_input),
            Some(self.d_output),
            device,
        );
        BlockedLinear { blocks, bias }
    }
}

impl BlockedLinear {
    /// Applies the layer.
    ///
    /// # Shapes
    /// - input: `[batch, d_input]`
    /// - output: `[batch, d_output]`
    pub fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        let outputs: Vec<Tensor<2>> = self
            .blocks
            .iter()
            .map(|block| input.clone().matmul(block.val()))
            .collect();
        let output = if outputs.len() == 1 {
            outputs.into_iter().next().expect("one block")
        } else {
            Tensor::cat(outputs, 1)
        };
        output + self.bias.val().unsqueeze()
    }

    /// The whole weight `[d_input, d_output]` as one tensor (for inspection and tests;
    /// it may exceed a device's buffer limit).
    pub fn weight(&self) -> Tensor<2> {
        Tensor::cat(self.blocks.iter().map(|b| b.val()).collect(), 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{TensorData, Tolerance};

    #[test]
    fn koch_fc1_is_four_blocks_under_the_limit() {
        let config = BlockedLinearConfig::new(9216, 4096);
        assert_eq!(config.block_widths(), vec![1024; 4]);
        let largest = config.block_widths().into_iter().max().unwrap() * 9216;
        assert!(
            largest <= MAX_BLOCK_ELEMENTS,
            "{largest} floats in one block"
        );
    }

    #[test]
    fn small_layers_are_one_block_and_ragged_ones_keep_every_column() {
        assert_eq!(BlockedLinearConfig::new(64, 10).block_widths(), vec![10]);
        let widths = BlockedLinearConfig::new(1 << 20, 37)
            .with_max_block_elements(1 << 24)
            .block_widths();
        assert_eq!(widths, vec![16, 16, 5]);
        assert_eq!(widths.iter().sum::<usize>(), 37);
    }

    crate::device_tests! {
        fn blocked_forward_equals_one_matmul(device) {
            // 40 inputs and at most 160 floats a block: 4 columns per block.
            let config = BlockedLinearConfig::new(40, 9).with_max_block_elements(160);
            assert_eq!(config.block_widths(), vec![4, 4, 1]);
            let layer = config.init(&device);
            assert_eq!(layer.blocks.len(), 3);
            let input = Tensor::<2>::random([2, 40], burn::tensor::Distribution::Default, &device);
            let expected = input.clone().matmul(layer.weight()) + layer.bias.val().unsqueeze();
            let output = layer.forward(input);
            assert_eq!(output.dims(), [2, 9]);
            output
                .into_data()
                .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-5));
        }

        fn known_values(device) {
            let layer = BlockedLinear {
                blocks: vec![Param::from_data([[1.0, 2.0], [3.0, 4.0]], &device)],
                bias: Param::from_data([0.5, -0.5], &device),
            };
            let output = layer.forward(Tensor::from_data([[1.0, 1.0]], &device));
            output
                .into_data()
                .assert_approx_eq::<f32>(&TensorData::from([[4.5, 5.5]]), Tolerance::absolute(1e-6));
        }
    }
}
