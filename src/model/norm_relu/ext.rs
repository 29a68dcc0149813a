//! Batch norm + ReLU as a Burn backend extension: one operation with its own backward pass,
//! routed to Flex or NdArray (with or without autodiff) by Burn's `Dispatch`.

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

/// The planes of an NCHW (or any `[N, C, ...]`) activation.
fn planes<B: Backend>(x: &FloatTensor<B>) -> Planes {
    let dims = x.shape().to_vec();
    Planes {
        n: dims[0],
        c: dims[1],
        plane: dims[2..].iter().product(),
    }
}

/// Whether the kernels handle these operands (f32, at least `[N, C]`); anything else takes
/// Burn's own batch norm and ReLU.
fn supported<B: Backend>(tensors: &[&FloatTensor<B>]) -> bool {
    tensors[0].shape().num_dims() >= 2 && tensors.iter().all(|t| t.dtype() == DType::F32)
}

/// The training forward pass through the kernels: output, and the factors for backward.
fn train_forward<B: CpuTensor>(
    x: &FloatTensor<B>,
    gamma: &FloatTensor<B>,
    beta: &FloatTensor<B>,
    epsilon: f64,
) -> (FloatTensor<B>, Affine) {
    let p = planes::<B>(x);
    let (y, affine) = B::with_f32(x, |x| {
        B::with_f32(gamma, |g| {
            B::with_f32(beta, |b| kernels::train_forward(x, g, b, epsilon, p))
        })
    });
    (B::from_f32(y, x.shape().as_slice()), affine)
}

/// Burn's own operations, for the operands the kernels do not take.
fn burn_train<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    epsilon: f64,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let result = B::batch_norm_train(x, gamma, beta, epsilon);
    (B::relu(result.output), result.mean, result.variance)
}

#[backend_extension(Flex: cfg(feature = "flex"), NdArray: cfg(feature = "ndarray"), Autodiff)]
pub trait NormReluBackend: burn::backend::Backend {
    /// `relu(batch_norm(x))` with the batch's own statistics: the output, and the batch
    /// mean and biased variance per channel (for the running statistics).
    fn batch_norm_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// `relu(batch_norm(x))` with the given statistics, for inference.
    fn batch_norm_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;
}

/// The plain (no autodiff) CPU implementation, one for Flex and NdArray.
fn cpu_train<B: CpuTensor>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    epsilon: f64,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    if !supported::<B>(&[&x, &gamma, &beta]) {
        return burn_train::<B>(x, gamma, beta, epsilon);
    }
    let (y, affine) = train_forward::<B>(&x, &gamma, &beta, epsilon);
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
) -> FloatTensor<B> {
    if !supported::<B>(&[&x, &gamma, &beta, &mean, &var]) {
        return B::relu(B::batch_norm(x, gamma, beta, mean, var, epsilon));
    }
    let p = planes::<B>(&x);
    let y = B::with_f32(&x, |x| {
        B::with_f32(&gamma, |g| {
            B::with_f32(&beta, |b| {
                B::with_f32(&mean, |m| {
                    B::with_f32(&var, |v| kernels::inference(x, [g, b, m, v], epsilon, p))
                })
            })
        })
    });
    B::from_f32(y, x.shape().as_slice())
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
            ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
                cpu_train::<Self>(x, gamma, beta, epsilon)
            }

            fn batch_norm_relu(
                x: FloatTensor<Self>,
                gamma: FloatTensor<Self>,
                beta: FloatTensor<Self>,
                mean: FloatTensor<Self>,
                var: FloatTensor<Self>,
                epsilon: f64,
            ) -> FloatTensor<Self> {
                cpu_inference::<Self>(x, [gamma, beta, mean, var], epsilon)
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
    type State = (NodeId, Affine);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let output_grad = grads.consume::<B>(&ops.node);
        let (x_state, affine) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let p = planes::<B>(&x);
        let (dx, dgamma, dbeta) = B::with_f32(&x, |x| {
            B::with_f32(&output_grad, |dy| {
                kernels::train_backward(x, dy, &affine, p)
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

impl<B: CpuTensor + NormReluBackend, C: CheckpointStrategy> NormReluBackend for Autodiff<B, C> {
    fn batch_norm_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        if !supported::<B>(&[x.primitive(), gamma.primitive(), beta.primitive()]) {
            return burn_train::<Self>(x, gamma, beta, epsilon);
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
                let (y, affine) =
                    train_forward::<B>(x.primitive(), gamma.primitive(), beta.primitive(), epsilon);
                let output = prep.finish((x_state, affine.clone()), y);
                let (mean, var) = statistics(affine);
                (output, mean, var)
            }
            OpsKind::UnTracked(prep) => {
                let (y, affine) =
                    train_forward::<B>(x.primitive(), gamma.primitive(), beta.primitive(), epsilon);
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
    ) -> FloatTensor<Self> {
        Self::relu(Self::batch_norm(x, gamma, beta, mean, var, epsilon))
    }
}
