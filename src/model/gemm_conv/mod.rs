//! A 2-D convolution whose CPU gradients are matrix products.
//!
//! Burn computes a convolution's weight gradient as another convolution, with the output
//! gradient as its kernel, which on a CPU costs several times the forward pass. On the
//! Flex and NdArray backends [`conv2d`] is instead a Burn backend extension with its own
//! backward step: `dW = Σ dY · im2col(X)ᵀ`, one GEMM an image. The forward pass and the
//! input gradient are GEMMs on the NCHW activation too: NdArray's own are direct loops, and
//! Flex's own re-lay the activation out as NHWC and back, which measured slower on 2 cores.
//! On every other backend (wgpu) it is Burn's `conv2d`.
//!
//! The parameters are those of Burn's [`Conv2d`], so a record saved before loads unchanged.

// The extension names burn-ndarray's backend type, which burn deprecates.
#[cfg(any(feature = "flex", feature = "ndarray"))]
#[allow(deprecated)]
mod ext;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod kernels;

use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;

/// Whether [`conv2d`] takes the GEMM path on `device` (with or without autodiff).
pub fn gemm_available(device: &Device) -> bool {
    super::cpu_tensor::kernels_available(device)
}

/// `conv2d(x, weight) + bias`, the same as [`burn::tensor::module::conv2d`], with
/// GEMM-shaped gradients on the CPU backends (see the module docs).
///
/// # Shapes
/// - x: `[batch, in_channels, height, width]`
/// - weight: `[out_channels, in_channels / groups, kernel_height, kernel_width]`
/// - bias: `[out_channels]`
/// - output: `[batch, out_channels, out_height, out_width]`
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if gemm_available(&x.device()) {
        use burn::backend::Dispatch;
        use ext::GemmConvBackend;
        let bias = bias.unwrap_or_else(|| Tensor::zeros([weight.dims()[0]], &weight.device()));
        let output = <Dispatch as GemmConvBackend>::gemm_conv2d(
            x.into_dispatch(),
            weight.into_dispatch(),
            bias.into_dispatch(),
            options,
        );
        return Tensor::from_dispatch(output);
    }
    burn::tensor::module::conv2d(x, weight, bias, options)
}

/// [`Conv2d::forward`] through [`conv2d`]: the same padding, stride, dilation and groups.
///
/// # Shapes
/// - input: `[batch, in_channels, height, width]`
/// - output: `[batch, out_channels, out_height, out_width]`
pub fn forward(conv: &Conv2d, input: Tensor<4>) -> Tensor<4> {
    let [_, _, height, width] = input.dims();
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [(0, 0); 2],
        PaddingConfig2d::Same => [
            same_padding(conv.kernel_size[0], conv.stride[0], height),
            same_padding(conv.kernel_size[1], conv.stride[1], width),
        ],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
    };
    let options = ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups);
    conv2d(
        input,
        conv.weight.val(),
        conv.bias.as_ref().map(Param::val),
        options,
    )
}

/// The padding before and after that keeps `ceil(size / stride)` outputs, split as Burn's
/// `PaddingConfig2d::Same` splits it (its helper is private to burn-nn).
fn same_padding(kernel: usize, stride: usize, size: usize) -> (usize, usize) {
    let outputs = size.div_ceil(stride);
    let total = if outputs > 0 {
        ((outputs - 1) * stride + kernel).saturating_sub(size)
    } else {
        0
    };
    (total / 2, total - total / 2)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tolerance};
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// A convolution to compare: input `[n, c, h, w]`, `o` filters of `k × k`, options.
    #[derive(Debug, Clone)]
    struct Case {
        input: [usize; 4],
        out: usize,
        kernel: usize,
        options: ConvOptions<2>,
    }

    fn case(
        input: [usize; 4],
        out: usize,
        kernel: usize,
        padding: [(usize, usize); 2],
        stride: usize,
        dilation: usize,
    ) -> Case {
        Case {
            input,
            out,
            kernel,
            options: ConvOptions::new_with_padding([stride; 2], padding, [dilation; 2], 1),
        }
    }

    /// The ranges: kernels 3, 4, 7 and 10, padding 0 and 1 (and uneven), batches
    /// 1 to 64, channels 1 to 256; the presets' own layers among them.
    fn cases() -> Vec<Case> {
        let mut cases = vec![
            case([64, 1, 52, 52], 32, 3, [(1, 1); 2], 1, 1), // compact, first layer
            case([8, 64, 13, 13], 64, 3, [(1, 1); 2], 1, 1), // compact, third
            case([2, 1, 40, 40], 16, 10, [(0, 0); 2], 1, 1), // Koch's first kernel
            case([3, 16, 20, 20], 8, 7, [(0, 0); 2], 1, 1),  // Koch's second kernel
            case([1, 256, 6, 6], 4, 4, [(0, 0); 2], 1, 1),   // one image, wide input
            case([4, 3, 11, 9], 5, 4, [(1, 2), (0, 3)], 1, 1), // uneven padding, not square
            case([5, 2, 12, 12], 3, 3, [(1, 1); 2], 2, 1),   // stride 2
            case([2, 3, 12, 12], 4, 3, [(2, 2); 2], 1, 2),   // dilation 2
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..4 {
            let kernel = [3, 4, 7, 10][rng.random_range(0..4)];
            let pad = rng.random_range(0..2);
            let side = kernel + rng.random_range(0..12);
            let input = [rng.random_range(1..9), rng.random_range(1..33), side, side];
            cases.push(case(
                input,
                rng.random_range(1..33),
                kernel,
                [(pad, pad); 2],
                1,
                1,
            ));
        }
        cases
    }

    fn assert_close(got: Tensor<4>, expected: Tensor<4>, what: &str, case: &Case) {
        let scale = expected.clone().abs().max().into_scalar::<f32>().max(1.0);
        let error = (got - expected).abs().max().into_scalar::<f32>();
        assert!(
            error <= 1e-4 * scale,
            "{what} of {case:?}: off by {error} (scale {scale})"
        );
    }

    /// Output, input, weight and bias gradients of `conv` on `device` under the upstream
    /// gradient `probe` (the loss is `Σ output · probe`).
    fn differentiate(
        conv: impl Fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>, ConvOptions<2>) -> Tensor<4>,
        case: &Case,
        tensors: &(Tensor<4>, Tensor<4>, Tensor<1>, Tensor<4>),
        device: &Device,
    ) -> [Tensor<4>; 4] {
        let (x, w, b, probe) = tensors;
        let x = Tensor::<4>::from_data(x.to_data(), device).require_grad();
        let w = Tensor::<4>::from_data(w.to_data(), device).require_grad();
        let b = Tensor::<1>::from_data(b.to_data(), device).require_grad();
        let y = conv(x.clone(), w.clone(), Some(b.clone()), case.options.clone());
        let probe = Tensor::<4>::from_data(probe.to_data(), device);
        let grads = (y.clone() * probe).sum().backward();
        let bias = b.grad(&grads).unwrap().reshape([case.out, 1, 1, 1]);
        [y, x.grad(&grads).unwrap(), w.grad(&grads).unwrap(), bias]
    }

    crate::device_tests! {
        fn forward_and_gradients_equal_burns_conv2d(device) {
            let autodiff = device.clone().autodiff();
            // Elsewhere (wgpu) both sides are Burn's own convolution: one small case shows
            // that the fallback runs, without compiling shaders for every shape.
            let mut cases = cases();
            if !gemm_available(&device) {
                cases.truncate(1);
                cases[0].input[0] = 2;
            }
            for case in cases {
                let c = case.input[1];
                let x = Tensor::<4>::random(case.input, Distribution::Normal(0.0, 1.0), &device);
                let w = Tensor::<4>::random([case.out, c, case.kernel, case.kernel], Distribution::Normal(0.0, 0.3), &device);
                let b = Tensor::<1>::random([case.out], Distribution::Normal(0.0, 1.0), &device);
                // Without autodiff: the same forward.
                let plain = conv2d(x.clone(), w.clone(), Some(b.clone()), case.options.clone());
                let reference = burn::tensor::module::conv2d(x.clone(), w.clone(), Some(b.clone()), case.options.clone());
                let probe = Tensor::<4>::random(reference.shape(), Distribution::Normal(0.0, 1.0), &device);
                assert_close(plain, reference, "plain output", &case);
                let tensors = (x, w, b, probe);
                let ours = differentiate(conv2d, &case, &tensors, &autodiff);
                let burns = differentiate(burn::tensor::module::conv2d, &case, &tensors, &autodiff);
                for ((got, expected), what) in ours.into_iter().zip(burns).zip(["output", "dX", "dW", "dB"]) {
                    assert_close(got, expected, what, &case);
                }
            }
        }

        fn an_input_without_gradient_gets_none_and_checkpointing_agrees(device) {
            let case = case([3, 2, 9, 9], 4, 3, [(1, 1); 2], 1, 1);
            let x = Tensor::<4>::random(case.input, Distribution::Default, &device);
            let w = Tensor::<4>::random([4, 2, 3, 3], Distribution::Default, &device);
            let mut grads_of = Vec::new();
            for autodiff in [device.clone().autodiff(), device.clone().autodiff().gradient_checkpointing()] {
                let x = Tensor::<4>::from_data(x.to_data(), &autodiff);
                let w = Tensor::<4>::from_data(w.to_data(), &autodiff).require_grad();
                let y = burn::tensor::activation::relu(conv2d(x.clone(), w.clone(), None, case.options.clone()));
                let grads = y.sum().backward();
                assert!(x.grad(&grads).is_none());
                grads_of.push(w.grad(&grads).unwrap());
            }
            let [plain, checkpointed] = <[_; 2]>::try_from(grads_of).unwrap();
            plain.into_data().assert_approx_eq::<f32>(&checkpointed.into_data(), Tolerance::default());
        }

        fn the_gemm_path_is_taken_on_the_cpu_backends_only(device) {
            let backend = crate::device::BackendKind::of(&device).map(|b| b.name());
            let cpu = matches!(backend, Some("flex" | "ndarray"));
            assert_eq!(gemm_available(&device), cpu);
            assert_eq!(gemm_available(&device.clone().autodiff()), cpu);
        }
    }
}
