//! Batch normalisation, ReLU and a 2 × 2 max-pool, fused into one operation on the CPU
//! backends.
//!
//! Burn's `BatchNorm` in training mode, then `relu`, record about twenty element-wise
//! operations (two of them transposing copies of the whole activation) and as many in the
//! backward pass, and the pool after them writes and reads the activation again; on a CPU
//! they cost more than the convolution they follow. On Flex and NdArray [`forward`] is
//! instead one Burn backend extension with its own backward pass: three passes over the
//! activation forward, two backward (see `kernels`), and the pool's window maxima taken in
//! the last forward pass and recomputed backward instead of stored. Elsewhere (wgpu) it is
//! burn-nn's `BatchNorm::forward`, `relu` and `MaxPool2d::forward`.
//!
//! The parameters and running statistics are those of burn-nn's [`BatchNorm`], updated the
//! same way, so records load unchanged.
//!
//! Blocks without batch norm (`koch`) take [`relu_pool`]: ReLU and the pool in one pass,
//! the same values and gradients as Burn's `relu` then `MaxPool2d`.

// The extension names burn-ndarray's backend type, which burn deprecates.
#[cfg(any(feature = "flex", feature = "ndarray"))]
#[allow(deprecated)]
mod ext;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod kernels;

use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::cpu_tensor::kernels_available;

/// `pool.forward(relu(norm.forward(x)))` (no pool when `None`): batch statistics and a
/// running-statistics update on an autodiff device (unless the layer's training flag is
/// off), the running statistics otherwise, as burn-nn's [`BatchNorm::forward`] decides.
/// The kernels take a 2 × 2 pool of stride 2 (floor mode); any other pool runs after them.
///
/// # Shapes
/// - x: `[batch, channels, height, width]`
/// - output: `[batch, channels, height, width]`, or `[batch, channels, height / 2, width / 2]`
///   after a 2 × 2 pool of stride 2
pub fn forward(norm: &BatchNorm, pool: Option<&MaxPool2d>, x: Tensor<4>) -> Tensor<4> {
    let fused = pool.is_none_or(halves);
    if !kernels_available(&x.device()) || !fused {
        let y = relu(norm.forward(x));
        return match pool {
            Some(pool) => pool.forward(y),
            None => y,
        };
    }
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    {
        let pool = pool.is_some();
        use burn::backend::Dispatch;
        use ext::NormReluBackend;

        let device = x.device();
        if device.is_autodiff() && norm.training.is_enabled() {
            let (output, mean, var) = <Dispatch as NormReluBackend>::batch_norm_relu_train(
                x.into_dispatch(),
                norm.gamma.val().into_dispatch(),
                norm.beta.val().into_dispatch(),
                norm.epsilon,
                pool,
            );
            let (mean, var) = (
                Tensor::<1>::from_dispatch(mean),
                Tensor::<1>::from_dispatch(var),
            );
            // burn-nn's update, term for term.
            let momentum = norm.momentum;
            let running_mean = norm.running_mean.value_sync().to_device(&device);
            let running_var = norm.running_var.value_sync().to_device(&device);
            let running_mean = running_mean
                .mul_scalar(1.0 - momentum)
                .add(mean.detach().mul_scalar(momentum));
            let running_var = running_var
                .mul_scalar(1.0 - momentum)
                .add(var.detach().mul_scalar(momentum));
            norm.running_mean.update(running_mean.detach());
            norm.running_var.update(running_var.detach());
            return Tensor::from_dispatch(output);
        }
        let output = <Dispatch as NormReluBackend>::batch_norm_relu(
            x.into_dispatch(),
            norm.gamma.val().into_dispatch(),
            norm.beta.val().into_dispatch(),
            norm.running_mean.value().to_device(&device).into_dispatch(),
            norm.running_var.value().to_device(&device).into_dispatch(),
            norm.epsilon,
            pool,
        );
        Tensor::from_dispatch(output)
    }
    #[cfg(not(any(feature = "flex", feature = "ndarray")))]
    unreachable!("no CPU kernels are compiled in")
}

/// `pool.forward(relu(x))`, for a block without batch norm (`koch`): on the CPU backends
/// one pass over the activation forward and one backward, where Burn's ReLU and pool each
/// write and read it (and its gradient) again; elsewhere, or for a pool other than 2 × 2
/// of stride 2, Burn's own `relu` and `MaxPool2d::forward`.
///
/// # Shapes
/// - x: `[batch, channels, height, width]`
/// - output: `[batch, channels, height', width']` as `pool` gives
pub fn relu_pool(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    if !kernels_available(&x.device()) || !halves(pool) {
        return pool.forward(relu(x));
    }
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    {
        use burn::backend::Dispatch;
        use ext::NormReluBackend;

        Tensor::from_dispatch(<Dispatch as NormReluBackend>::relu_pool(x.into_dispatch()))
    }
    #[cfg(not(any(feature = "flex", feature = "ndarray")))]
    unreachable!("no CPU kernels are compiled in")
}

/// Whether `pool` is the 2 × 2 max-pool of stride 2 (floor mode) that the kernels take.
fn halves(pool: &MaxPool2d) -> bool {
    pool.kernel_size == [2, 2]
        && pool.stride == [2, 2]
        && pool.dilation == [1, 1]
        && !pool.ceil_mode
        && matches!(
            pool.padding,
            PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0)
        )
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::nn::BatchNormConfig;
    use burn::tensor::Distribution;

    use super::*;

    /// A batch norm with non-trivial parameters and running statistics.
    fn norm(channels: usize, device: &Device) -> BatchNorm {
        let mut norm = BatchNormConfig::new(channels).init(device);
        norm.gamma = norm.gamma.map(|g| {
            g.add_scalar(0.5)
                * Tensor::arange(0..channels as i64, device)
                    .float()
                    .div_scalar(4.0)
                    .add_scalar(0.25)
        });
        norm.beta = norm.beta.map(|b| b.add_scalar(0.1));
        let x = Tensor::<4>::random(
            [6, channels, 5, 5],
            Distribution::Normal(0.5, 2.0),
            &device.clone().autodiff(),
        );
        // One training step moves the running statistics off their initial values.
        let trained = norm.clone().fork(&device.clone().autodiff());
        let _ = trained.forward(x);
        trained.valid()
    }

    fn assert_close<const D: usize>(got: Tensor<D>, expected: Tensor<D>, what: &str) {
        let scale = expected.clone().abs().max().into_scalar::<f32>().max(1.0);
        let error = (got - expected).abs().max().into_scalar::<f32>();
        assert!(
            error <= 1e-4 * scale,
            "{what}: off by {error} (scale {scale})"
        );
    }

    /// No pool, the 2 × 2 pool of stride 2 the kernels take, and a 3 × 3 pool they do not.
    fn pools() -> [Option<MaxPool2d>; 3] {
        use burn::nn::pool::MaxPool2dConfig;
        [
            None,
            Some(MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init()),
            Some(MaxPool2dConfig::new([3, 3]).with_strides([1, 1]).init()),
        ]
    }

    /// Burn's own layers, one after the other.
    fn burns(norm: &BatchNorm, pool: Option<&MaxPool2d>, x: Tensor<4>) -> Tensor<4> {
        let y = relu(norm.forward(x));
        match pool {
            Some(pool) => pool.forward(y),
            None => y,
        }
    }

    crate::device_tests! {
        fn training_equals_burns_batch_norm_relu_and_pool(device) {
            let autodiff = device.clone().autodiff();
            for shape in [[8, 3, 7, 7], [2, 16, 3, 3], [1, 4, 13, 10]] {
                for pool in pools() {
                    let x = Tensor::<4>::random(shape, Distribution::Normal(0.3, 1.5), &device);
                    let base = norm(shape[1], &device);
                    let out_shape = burns(&base, pool.as_ref(), x.clone()).shape();
                    let probe = Tensor::<4>::random(out_shape, Distribution::Normal(0.0, 1.0), &device);
                    let mut results = Vec::new();
                    for fused in [true, false] {
                        let norm = base.clone().train();
                        let x = Tensor::<4>::from_data(x.to_data(), &autodiff).require_grad();
                        let y = match fused {
                            true => forward(&norm, pool.as_ref(), x.clone()),
                            false => burns(&norm, pool.as_ref(), x.clone()),
                        };
                        let grads = (y.clone() * Tensor::from_data(probe.to_data(), &autodiff)).sum().backward();
                        results.push((
                            y.inner(),
                            x.grad(&grads).unwrap(),
                            norm.gamma.grad(&grads).unwrap(),
                            norm.beta.grad(&grads).unwrap(),
                            norm.running_mean.value(),
                            norm.running_var.value(),
                        ));
                    }
                    let what = format!("{shape:?}, {pool:?}");
                    let [(y, dx, dg, db, rm, rv), (y2, dx2, dg2, db2, rm2, rv2)] = <[_; 2]>::try_from(results).unwrap();
                    assert_close(y, y2, &format!("output of {what}"));
                    assert_close(dx, dx2, &format!("dx of {what}"));
                    assert_close(dg, dg2, &format!("dγ of {what}"));
                    assert_close(db, db2, &format!("dβ of {what}"));
                    assert_close(rm, rm2, &format!("running mean of {what}"));
                    assert_close(rv, rv2, &format!("running variance of {what}"));
                }
            }
        }

        fn inference_equals_burns_batch_norm_relu_and_pool(device) {
            let norm = norm(5, &device);
            let x = Tensor::<4>::random([3, 5, 5, 6], Distribution::Normal(0.0, 2.0), &device);
            for pool in pools() {
                let fused = forward(&norm, pool.as_ref(), x.clone());
                let burns = burns(&norm, pool.as_ref(), x.clone());
                // Burn's own order of operations: equal, not merely close.
                fused.into_data().assert_eq(&burns.into_data(), true);
            }
        }

        fn relu_pool_equals_burns_relu_and_pool(device) {
            let autodiff = device.clone().autodiff();
            for shape in [[4, 3, 8, 8], [2, 5, 7, 9], [1, 2, 3, 5]] {
                for pool in pools().into_iter().flatten() {
                    let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
                    let out_shape = pool.forward(x.clone()).shape();
                    let probe = Tensor::<4>::random(out_shape, Distribution::Normal(0.0, 1.0), &device);
                    let mut results = Vec::new();
                    for fused in [true, false] {
                        let x = Tensor::<4>::from_data(x.to_data(), &autodiff).require_grad();
                        let y = match fused {
                            true => relu_pool(&pool, x.clone()),
                            false => pool.forward(relu(x.clone())),
                        };
                        let probe = Tensor::from_data(probe.to_data(), &autodiff);
                        let grads = (y.clone() * probe).sum().backward();
                        results.push((y.inner().into_data(), x.grad(&grads).unwrap().into_data()));
                    }
                    // Same values and the same winners: equal, not merely close.
                    let what = format!("{shape:?}, {pool:?}");
                    assert_eq!(results[0].0, results[1].0, "output of {what}");
                    assert_eq!(results[0].1, results[1].1, "dx of {what}");
                    // Inference too.
                    let plain = relu_pool(&pool, x.clone());
                    plain.into_data().assert_eq(&pool.forward(relu(x.clone())).into_data(), true);
                }
            }
        }

        fn a_frozen_layer_on_an_autodiff_device_uses_its_running_statistics(device) {
            let autodiff = device.clone().autodiff();
            let norm = norm(3, &device).train().freeze();
            let before = norm.running_mean.value();
            let x = Tensor::<4>::random([4, 3, 5, 5], Distribution::Default, &autodiff);
            let pool = &pools()[1];
            let y = forward(&norm, pool.as_ref(), x.clone());
            assert_close(y.inner(), burns(&norm, pool.as_ref(), x).inner(), "output");
            assert_close(norm.running_mean.value(), before, "running mean");
        }
    }
}
