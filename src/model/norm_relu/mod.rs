//! Batch normalisation followed by ReLU, fused into one operation on the CPU backends.
//!
//! Burn's `BatchNorm` in training mode, then `relu`, record about twenty element-wise
//! operations (two of them transposing copies of the whole activation) and as many in the
//! backward pass; on a CPU they cost more than the convolution they follow. On Flex and
//! NdArray [`forward`] is instead one Burn backend extension with its own backward pass:
//! three passes over the activation forward, two backward (see `kernels`). Elsewhere (wgpu)
//! it is burn-nn's `BatchNorm::forward` and `relu`.
//!
//! The parameters and running statistics are those of burn-nn's [`BatchNorm`], updated the
//! same way, so records load unchanged.

// The extension names burn-ndarray's backend type, which burn deprecates.
#[cfg(any(feature = "flex", feature = "ndarray"))]
#[allow(deprecated)]
mod ext;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod kernels;

use burn::nn::BatchNorm;
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::cpu_tensor::kernels_available;

/// `relu(norm.forward(x))`: batch statistics and a running-statistics update on an
/// autodiff device (unless the layer's training flag is off), the running statistics
/// otherwise, as burn-nn's [`BatchNorm::forward`] decides.
///
/// # Shapes
/// - x: `[batch, channels, height, width]`
/// - output: `[batch, channels, height, width]`
pub fn forward(norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    if !kernels_available(&x.device()) {
        return relu(norm.forward(x));
    }
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    {
        use burn::backend::Dispatch;
        use ext::NormReluBackend;

        let device = x.device();
        if device.is_autodiff() && norm.training.is_enabled() {
            let (output, mean, var) = <Dispatch as NormReluBackend>::batch_norm_relu_train(
                x.into_dispatch(),
                norm.gamma.val().into_dispatch(),
                norm.beta.val().into_dispatch(),
                norm.epsilon,
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
        );
        Tensor::from_dispatch(output)
    }
    #[cfg(not(any(feature = "flex", feature = "ndarray")))]
    unreachable!("no CPU kernels are compiled in")
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

    crate::device_tests! {
        fn training_equals_burns_batch_norm_and_relu(device) {
            let autodiff = device.clone().autodiff();
            for shape in [[8, 3, 7, 7], [2, 16, 1, 1], [1, 4, 13, 11]] {
                let x = Tensor::<4>::random(shape, Distribution::Normal(0.3, 1.5), &device);
                let probe = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
                let base = norm(shape[1], &device);
                let mut results = Vec::new();
                for fused in [true, false] {
                    let norm = base.clone().train();
                    let x = Tensor::<4>::from_data(x.to_data(), &autodiff).require_grad();
                    let y = match fused {
                        true => forward(&norm, x.clone()),
                        false => relu(norm.forward(x.clone())),
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
                let [(y, dx, dg, db, rm, rv), (y2, dx2, dg2, db2, rm2, rv2)] = <[_; 2]>::try_from(results).unwrap();
                assert_close(y, y2, "output");
                assert_close(dx, dx2, "dx");
                assert_close(dg, dg2, "dγ");
                assert_close(db, db2, "dβ");
                assert_close(rm, rm2, "running mean");
                assert_close(rv, rv2, "running variance");
            }
        }

        fn inference_equals_burns_batch_norm_and_relu(device) {
            let norm = norm(5, &device);
            let x = Tensor::<4>::random([3, 5, 4, 6], Distribution::Normal(0.0, 2.0), &device);
            let fused = forward(&norm, x.clone());
            let burns = relu(norm.forward(x));
            // Burn's own order of operations: equal, not merely close.
            fused.into_data().assert_eq(&burns.into_data(), true);
        }

        fn a_frozen_layer_on_an_autodiff_device_uses_its_running_statistics(device) {
            let autodiff = device.clone().autodiff();
            let norm = norm(3, &device).train().freeze();
            let before = norm.running_mean.value();
            let x = Tensor::<4>::random([4, 3, 5, 5], Distribution::Default, &autodiff);
            let y = forward(&norm, x.clone());
            assert_close(y.inner(), relu(norm.forward(x)).inner(), "output");
            assert_close(norm.running_mean.value(), before, "running mean");
        }
    }
}
