//! Raw f32 access to the CPU backends' tensors, which the hand-written kernels of
//! [`gemm_conv`](super::gemm_conv) and [`norm_relu`](super::norm_relu) read and build.

use burn::tensor::Device;

/// Whether the hand-written CPU kernels serve `device` (with or without autodiff): Flex and
/// NdArray. Any other backend (wgpu) takes Burn's own operations, because an extension
/// called on a backend it does not list panics.
pub fn kernels_available(device: &Device) -> bool {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    {
        use burn::backend::DispatchDevice;
        #[allow(unreachable_patterns)]
        match device.clone().without_autodiff().as_dispatch() {
            #[cfg(feature = "flex")]
            DispatchDevice::Flex(_) => true,
            #[cfg(feature = "ndarray")]
            DispatchDevice::NdArray(_) => true,
            _ => false,
        }
    }
    #[cfg(not(any(feature = "flex", feature = "ndarray")))]
    {
        let _ = device;
        false
    }
}

#[cfg(any(feature = "flex", feature = "ndarray"))]
pub use kernel_access::CpuTensor;

#[cfg(any(feature = "flex", feature = "ndarray"))]
mod kernel_access {
    use burn::backend::Backend;
    use burn::backend::tensor::FloatTensor;

    /// A CPU backend whose f32 tensors the kernels can read and build.
    pub trait CpuTensor: Backend {
        /// Calls `f` on the tensor's values in row-major order (copying only a strided tensor).
        fn with_f32<R>(tensor: &FloatTensor<Self>, f: impl FnOnce(&[f32]) -> R) -> R;

        /// A row-major f32 tensor of `shape` that takes `data` without copying.
        fn from_f32(data: Vec<f32>, shape: &[usize]) -> FloatTensor<Self>;
    }

    #[cfg(feature = "flex")]
    mod flex {
        use burn::backend::Flex;
        use burn::backend::flex::{FlexTensor, Layout};
        use burn::tensor::{Bytes, DType, Shape};

        use super::CpuTensor;

        impl CpuTensor for Flex {
            fn with_f32<R>(tensor: &FlexTensor, f: impl FnOnce(&[f32]) -> R) -> R {
                let dense = tensor.to_contiguous();
                f(dense.storage::<f32>())
            }

            fn from_f32(data: Vec<f32>, shape: &[usize]) -> FlexTensor {
                FlexTensor::new(
                    Bytes::from_elems(data),
                    Layout::contiguous(Shape::from(shape)),
                    DType::F32,
                )
            }
        }
    }

    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    mod ndarray {
        use burn::backend::NdArray;
        use burn::backend::TensorMetadata;
        use burn::backend::ndarray::NdArrayTensor;
        use burn::tensor::TensorData;

        use super::CpuTensor;

        impl CpuTensor for NdArray {
            fn with_f32<R>(tensor: &NdArrayTensor, f: impl FnOnce(&[f32]) -> R) -> R {
                match tensor {
                    NdArrayTensor::F32(storage) => {
                        let view = storage.view();
                        match view.as_slice() {
                            Some(values) => f(values),
                            None => f(&view.iter().copied().collect::<Vec<_>>()),
                        }
                    }
                    other => unreachable!("the CPU kernels take f32 only, not {:?}", other.dtype()),
                }
            }

            fn from_f32(data: Vec<f32>, shape: &[usize]) -> NdArrayTensor {
                NdArrayTensor::from_data(TensorData::new(data, shape))
            }
        }
    }
}
