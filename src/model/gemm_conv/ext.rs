//! The convolution as a Burn backend extension: one operation with its own backward pass,
//! routed to Flex or NdArray (with or without autodiff) by Burn's `Dispatch`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, TensorMetadata, backend_extension};
use burn::tensor::DType;
use burn::tensor::ops::ConvOptions;

use super::kernels::{self, Geometry};
use crate::model::cpu_tensor::CpuTensor;

/// A CPU backend whose convolution the kernels compute: forward, input gradient and weight
/// gradient alike. (Flex's own forward pass and input gradient re-lay the activation out as
/// NHWC and back; on 2 cores the kernels measured faster on both presets.)
pub trait CpuConv: CpuTensor {
    /// The forward pass without autodiff.
    fn conv_forward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let g = geometry::<Self>(&x, &weight, &options);
        let y = Self::with_f32(&x, |x| {
            Self::with_f32(&weight, |w| {
                Self::with_f32(&bias, |b| kernels::forward(x, w, b, &g))
            })
        });
        Self::from_f32(y, &[g.n, g.o, g.oh, g.ow])
    }

    /// The input gradient.
    fn conv_input_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let g = geometry::<Self>(&x, &weight, &options);
        let dx = Self::with_f32(&weight, |w| {
            Self::with_f32(&output_grad, |dy| kernels::input_grad(w, dy, &g))
        });
        Self::from_f32(dx, &[g.n, g.c, g.h, g.w])
    }
}

/// Whether the kernels handle these operands (f32, groups 1); anything else takes Burn's
/// own convolution.
pub fn supported<B: Backend>(
    x: &FloatTensor<B>,
    weight: &FloatTensor<B>,
    options: &ConvOptions<2>,
) -> bool {
    options.groups == 1 && x.dtype() == DType::F32 && weight.dtype() == DType::F32
}

/// The geometry of `conv2d(x, weight)` under `options`.
pub fn geometry<B: Backend>(
    x: &FloatTensor<B>,
    weight: &FloatTensor<B>,
    options: &ConvOptions<2>,
) -> Geometry {
    let [n, c, h, w] = x.shape().dims();
    let [o, _, kh, kw] = weight.shape().dims();
    let [(top, bottom), (left, right)] = options.padding;
    let extent =
        |size: usize, before: usize, after: usize, k: usize, stride: usize, dilation: usize| {
            (size + before + after - dilation * (k - 1) - 1) / stride + 1
        };
    Geometry {
        n,
        c,
        h,
        w,
        o,
        kh,
        kw,
        stride: options.stride,
        pad: [top, left],
        dilation: options.dilation,
        oh: extent(h, top, bottom, kh, options.stride[0], options.dilation[0]),
        ow: extent(w, left, right, kw, options.stride[1], options.dilation[1]),
    }
}

/// The weight gradient through the kernels.
fn weight_grad<B: CpuConv>(
    x: &FloatTensor<B>,
    output_grad: &FloatTensor<B>,
    g: &Geometry,
) -> FloatTensor<B> {
    let dw = B::with_f32(x, |x| {
        B::with_f32(output_grad, |dy| kernels::weight_grad(x, dy, g))
    });
    B::from_f32(dw, &[g.o, g.c, g.kh, g.kw])
}

/// The bias gradient: the output gradient summed over images and pixels.
fn bias_grad<B: CpuConv>(output_grad: &FloatTensor<B>, g: &Geometry) -> FloatTensor<B> {
    let db = B::with_f32(output_grad, |dy| kernels::bias_grad(dy, g));
    B::from_f32(db, &[g.o])
}

#[backend_extension(Flex: cfg(feature = "flex"), NdArray: cfg(feature = "ndarray"), Autodiff)]
pub trait GemmConvBackend: burn::backend::Backend {
    /// `conv2d(x, weight) + bias`, NCHW, with GEMM-shaped gradients.
    fn gemm_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
}

/// Implements the extension for a plain CPU backend through the kernels.
macro_rules! cpu_backend {
    ($feature:literal, $backend:path) => {
        #[cfg(feature = $feature)]
        impl CpuConv for $backend {}

        #[cfg(feature = $feature)]
        impl GemmConvBackend for $backend {
            fn gemm_conv2d(
                x: FloatTensor<Self>,
                weight: FloatTensor<Self>,
                bias: FloatTensor<Self>,
                options: ConvOptions<2>,
            ) -> FloatTensor<Self> {
                if supported::<Self>(&x, &weight, &options) {
                    Self::conv_forward(x, weight, bias, options)
                } else {
                    Self::conv2d(x, weight, Some(bias), options)
                }
            }
        }
    };
}

cpu_backend!("flex", burn::backend::Flex);
cpu_backend!("ndarray", burn::backend::NdArray);

/// The backward step: the input's and weight's forward values are checkpointed as Burn's
/// own convolution does; the bias needs none.
#[derive(Debug)]
struct GemmConvBackward;

impl<B: CpuConv> Backward<B, 3> for GemmConvBackward {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let output_grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        let g = geometry::<B>(&x, &weight, &options);
        if let Some(node) = node_weight {
            grads.register::<B>(node.id, weight_grad::<B>(&x, &output_grad, &g));
        }
        if let Some(node) = node_bias {
            grads.register::<B>(node.id, bias_grad::<B>(&output_grad, &g));
        }
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::conv_input_grad(x, weight, output_grad, options));
        }
    }
}

impl<B: CpuConv + GemmConvBackend, C: CheckpointStrategy> GemmConvBackend for Autodiff<B, C> {
    fn gemm_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        if !supported::<B>(x.primitive(), weight.primitive(), &options) {
            return Self::conv2d(x, weight, Some(bias), options);
        }
        match GemmConvBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let output = B::conv_forward(
                    x.primitive().clone(),
                    weight.primitive().clone(),
                    bias.primitive().clone(),
                    options.clone(),
                );
                prep.finish((x_state, weight_state, options), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::conv_forward(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                options,
            )),
        }
    }
}
