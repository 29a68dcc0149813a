//! Small tensor helpers shared by the batchers, the scorers and the matcher: floats to
//! network input, ids to index tensors, tensors back to floats. The bottom floor: it
//! imports nothing from the crate.

use burn::prelude::*;
use burn::tensor::TensorData;

/// `batch` images of `channels` planes of `side × side` floats, row-major, as a network
/// input.
///
/// # Shapes
/// - output: `[batch, channels, side, side]`
pub(crate) fn input_tensor(
    pixels: Vec<f32>,
    batch: usize,
    channels: usize,
    side: usize,
    device: &Device,
) -> Tensor<4> {
    Tensor::from_data(
        TensorData::new(pixels, [batch, channels, side, side]),
        device,
    )
}

/// `ids` as an index tensor.
pub(crate) fn index_tensor(ids: &[usize], device: &Device) -> Tensor<1, Int> {
    let ids: Vec<i32> = ids
        .iter()
        .map(|&i| i32::try_from(i).expect("fewer than 2^31 rows"))
        .collect();
    let len = ids.len();
    Tensor::from_ints(TensorData::new(ids, [len]), device)
}

/// Reads a tensor back as `f32`s.
pub(crate) fn to_f32s<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("a float tensor reads back as f32")
}

/// Joins tensors along the first (batch) dimension.
pub(crate) fn cat_batches<const D: usize>(mut batches: Vec<Tensor<D>>) -> Tensor<D> {
    if batches.len() == 1 {
        batches.pop().expect("one batch")
    } else {
        Tensor::cat(batches, 0)
    }
}
