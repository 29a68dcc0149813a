//! Batch norm + ReLU (+ pool), and ReLU + pool, as a Burn backend extension: operations with
//! their own backward passes, routed to Flex or NdArray (with or without autodiff) by
//! Burn's `Dispatch`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::ops::{ActivationOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, TensorMetadata, backend_extension};
use burn::tensor::DType;

use super::kernels::{self, Affine, Planes};
use crate::model::cpu_tensor::CpuTensor;

/// The planes of an NCHW activation.
fn planes<B: Backend>(x: &FloatTensor<B>) -> Planes {
    let [n, c, h, w] = x.shape().dims();
    Planes { n, c, h, w }
}

/// The shape of the output: the input's, or pooled.
fn output_shape(p: Planes, pool: bool) -> [usize; 4] {
    let q = if pool { p.pooled() } else { p };
    [q.n, q.c, q.h, q.w]
}

/// Whether the kernels handle these operands (f32, NCHW); anything else takes Burn's own
/// batch norm, ReLU and pool.
fn supported<B: Backend>(tensors: &[&FloatTensor<B>]) -> bool {
    tensors[0].shape().num_dims() == 4 && tensors.iter().all(|t| t.dtype() == DType::F32)
}

/// Burn's 2 × 2 max-pool of stride 2 (floor mode), when `pool`.
fn burn_pool<B: Backend>(x: FloatTensor<B>, pool: bool) -> FloatTensor<B> {
    match pool {
        true => B::max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], false),
        false => x,
    }
}

/// The training forward pass through the kernels: output, and the factors for backward.
fn train_forward<B: CpuTensor>(
    x: &FloatTensor<B>,
    gamma: &FloatTensor<B>,
    beta: &FloatTensor<B>,
    epsilon: f64,
    pool: bool,
) -> (FloatTensor<B>, Affine) {
    let p = planes::<B>(x);
    let (y, affine) = B::with_f32(x, |x| {
        B::with_f32(gamma, |g| {
            B::with_f32(beta, |b| kernels::train_forward(x, g, b, epsilon, p, pool))
        })
    });
    (B::from_f32(y, &output_shape(p, pool)), affine)
}

/// Burn's own operations, for the operands the kernels do not take.
fn burn_train<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    epsilon: f64,
    pool: bool,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let result = B::batch_norm_train(x, gamma, beta, epsilon);
    let output = burn_pool::<B>(B::relu(result.output), pool);
    (output, result.mean, result.variance)
}

#[backend_extension(Flex: cfg(feature = "flex"), NdArray: cfg(feature = "ndarray"), Autodiff)]
pub trait NormReluBackend: burn::backend::Backend {
    /// `relu(batch_norm(x))` with the batch's own statistics, max-pooled 2 × 2 with
    /// stride 2 when `pool`: the output, and the batch mean and biased variance per channel
    /// (for the running statistics).
    fn batch_norm_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        pool: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// `relu(batch_norm(x))` with the given statistics, max-pooled when `pool`, for
    /// inference.
    fn batch_norm_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        epsilon: f64,
        pool: bool,
    ) -> FloatTensor<Self>;

    /// `relu(x)` max-pooled 2 × 2 with stride 2, for a block without batch norm.
    fn relu_pool(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// The plain (no autodiff) CPU implementation, one for Flex and NdArray.
fn cpu_train<B: CpuTensor>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    epsilon: f64,
    pool: bool,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    if !supported::<B>(&[&x, &gamma, &beta]) {
        return burn_train::<B>(x, gamma, beta, epsilon, pool);
    }
    let (y, affine) = train_forward::<B>(&x, &gamma, &beta, epsilon, pool);
    let c = affine.mean.len();
    (
        y,
        B::from_f32(affine.mean, &[c]),
        B::from_f32(affine.var, &[c]),
    )
}

fn cpu_inference<B: CpuTensor>(
    x: FloatTensor<B>,
    [gamma, beta, mean, var]: [FloatTensor<B>; 4],
    epsilon: f64,
    pool: bool,
) -> FloatTensor<B> {
    if !supported::<B>(&[&x, &gamma, &beta, &mean, &var]) {
        let y = B::relu(B::batch_norm(x, gamma, beta, mean, var, epsilon));
        return burn_pool::<B>(y, pool);
    }
    let p = planes::<B>(&x);
    let y = B::with_f32(&x, |x| {
        B::with_f32(&gamma, |g| {
            B::with_f32(&beta, |b| {
                B::with_f32(&mean, |m| {
                    B::with_f32(&var, |v| {
                        kernels::inference(x, [g, b, m, v], epsilon, p, pool)
                    })
                })
            })
        })
    });
    B::from_f32(y, &output_shape(p, pool))
}

/// `relu_pool` through the kernels (supported operands only).
fn relu_pool_forward<B: CpuTensor>(x: &FloatTensor<B>) -> FloatTensor<B> {
    let p = planes::<B>(x);
    let y = B::with_f32(x, |x| kernels::relu_pool(x, p));
    B::from_f32(y, &output_shape(p, true))
}

fn cpu_relu_pool<B: CpuTensor>(x: FloatTensor<B>) -> FloatTensor<B> {
    match supported::<B>(&[&x]) {
        true => relu_pool_forward::<B>(&x),
        false => burn_pool::<B>(B::relu(x), true),
    }
}

/// Implements the extension for a plain CPU backend through the kernels.
macro_rules! cpu_backend {
    ($feature:literal, $backend:path) => {
        #[cfg(feature = $feature)]
        #[allow(deprecated)]
        impl NormReluBackend for $backend {
            fn batch_norm_relu_train(
                x: FloatTensor<Self>,
                gamma: FloatTensor<Self>,
                beta: FloatTensor<Self>,
                epsilon: f64,
                pool: bool,
            ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
                cpu_train::<Self>(x, gamma, beta, epsilon, pool)
            }

            fn batch_norm_relu(
                x: FloatTensor<Self>,
                gamma: FloatTensor<Self>,
                beta: FloatTensor<Self>,
                mean: FloatTensor<Self>,
                var: FloatTensor<Self>,
                epsilon: f64,
                pool: bool,
            ) -> FloatTensor<Self> {
                cpu_inference::<Self>(x, [gamma, beta, mean, var], epsilon, pool)
            }

            fn relu_pool(x: FloatTensor<Self>) -> FloatTensor<Self> {
                cpu_relu_pool::<Self>(x)
            }
        }
    };
}

cpu_backend!("flex", burn::backend::Flex);
cpu_backend!("ndarray", burn::backend::NdArray);

/// The backward step: the input's forward value is checkpointed as Burn's own batch norm
/// does; the per-channel factors come along as the forward computed them.
#[derive(Debug)]
struct NormReluBackward;

impl<B: CpuTensor> Backward<B, 3> for NormReluBackward {
    type State = (NodeId, Affine, bool);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let output_grad = grads.consume::<B>(&ops.node);
        let (x_state, affine, pool) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let p = planes::<B>(&x);
        let (dx, dgamma, dbeta) = B::with_f32(&x, |x| {
            B::with_f32(&output_grad, |dy| {
                kernels::train_backward(x, dy, &affine, p, pool)
            })
        });
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::from_f32(dx, x.shape().as_slice()));
        }
        if let Some(node) = node_gamma {
            grads.register::<B>(node.id, B::from_f32(dgamma, &[p.c]));
        }
        if let Some(node) = node_beta {
            grads.register::<B>(node.id, B::from_f32(dbeta, &[p.c]));
        }
    }
}

/// The backward step of `relu_pool`: the winners are recomputed from the checkpointed input.
#[derive(Debug)]
struct ReluPoolBackward;

impl<B: CpuTensor> Backward<B, 1> for ReluPoolBackward {
    type State = NodeId;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let output_grad = grads.consume::<B>(&ops.node);
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(ops.state);
        if let Some(node) = node_x {
            let p = planes::<B>(&x);
            let dx = B::with_f32(&x, |x| {
                B::with_f32(&output_grad, |dy| kernels::relu_pool_backward(x, dy, p))
            });
            grads.register::<B>(node.id, B::from_f32(dx, x.shape().as_slice()));
        }
    }
}

impl<B: CpuTensor + NormReluBackend, C: CheckpointStrategy> NormReluBackend for Autodiff<B, C> {
    fn batch_norm_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        pool: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        if !supported::<B>(&[x.primitive(), gamma.primitive(), beta.primitive()]) {
            return burn_train::<Self>(x, gamma, beta, epsilon, pool);
        }
        let statistics = |affine: Affine| {
            let c = affine.mean.len();
            let mean = B::from_f32(affine.mean, &[c]);
            let var = B::from_f32(affine.var, &[c]);
            (
                <FloatTensor<Self>>::new(mean),
                <FloatTensor<Self>>::new(var),
            )
        };
        match NormReluBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let (y, affine) = train_forward::<B>(
                    x.primitive(),
                    gamma.primitive(),
                    beta.primitive(),
                    epsilon,
                    pool,
                );
                let output = prep.finish((x_state, affine.clone(), pool), y);
                let (mean, var) = statistics(affine);
                (output, mean, var)
            }
            OpsKind::UnTracked(prep) => {
                let (y, affine) = train_forward::<B>(
                    x.primitive(),
                    gamma.primitive(),
                    beta.primitive(),
                    epsilon,
                    pool,
                );
                let (mean, var) = statistics(affine);
                (prep.finish(y), mean, var)
            }
        }
    }

    /// A batch norm in inference mode on an autodiff device (a frozen layer that gradients
    /// still pass through) is rare: Burn's own operations serve it.
    fn batch_norm_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        epsilon: f64,
        pool: bool,
    ) -> FloatTensor<Self> {
        let y = Self::relu(Self::batch_norm(x, gamma, beta, mean, var, epsilon));
        burn_pool::<Self>(y, pool)
    }

    fn relu_pool(x: FloatTensor<Self>) -> FloatTensor<Self> {
        if !supported::<B>(&[x.primitive()]) {
            return burn_pool::<Self>(Self::relu(x), true);
        }
        match ReluPoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let y = relu_pool_forward::<B>(x.primitive());
                prep.finish(x_state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(relu_pool_forward::<B>(x.primitive())),
        }
    }
}
