//! The one interface every way of scoring a query against a support goes through.

use image::DynamicImage;

use crate::Result;

/// Scores query images against support images, in two steps: [`Scorer::embed`] computes
/// whatever the scorer needs from each image (a network embedding, pixels, ink points)
/// once per distinct image, then [`Scorer::score`] compares them.
///
/// The [`Evaluator`](crate::eval::Evaluator) does everything else (deduplication, batching,
/// class aggregation, accuracy), so the Siamese network and the baselines are measured by
/// the very same code.
///
/// ```
/// use image::DynamicImage;
/// use siamese::eval::Scorer;
///
/// /// Scores by how close the amounts of ink are.
/// struct InkAmount;
///
/// impl Scorer for InkAmount {
///     type Embeddings = Vec<f32>;
///
///     fn name(&self) -> String {
///         "ink amount".into()
///     }
///     fn embed(&self, images: &[&DynamicImage]) -> siamese::Result<Vec<f32>> {
///         Ok(images.iter().map(|i| i.as_bytes().iter().map(|&v| v as f32).sum()).collect())
///     }
///     fn concat(&self, batches: Vec<Vec<f32>>) -> siamese::Result<Vec<f32>> {
///         Ok(batches.concat())
///     }
///     fn score(&self, ink: &Vec<f32>, queries: &[usize], supports: &[usize]) -> siamese::Result<Vec<f32>> {
///         Ok(queries
///             .iter()
///             .flat_map(|&q| supports.iter().map(move |&s| -(ink[q] - ink[s]).abs()))
///             .collect())
///     }
/// }
/// ```
pub trait Scorer {
    /// What [`Scorer::embed`] computes for a batch of images, indexable by image.
    type Embeddings;

    /// A short name for reports (`"pixel nearest neighbour"`).
    fn name(&self) -> String;

    /// Computes the embeddings of a batch of ink-high images. The evaluator calls it with
    /// at most [`EvaluatorConfig::batch_size`](crate::eval::EvaluatorConfig::batch_size) images.
    ///
    /// # Errors
    /// When an image cannot be used (the scorer's own reasons).
    fn embed(&self, images: &[&DynamicImage]) -> Result<Self::Embeddings>;

    /// Joins the embeddings of consecutive batches, in order: image `i` of the result is
    /// image `i` of the batches laid end to end.
    ///
    /// # Errors
    /// When the batches cannot be joined (the scorer's own reasons).
    fn concat(&self, batches: Vec<Self::Embeddings>) -> Result<Self::Embeddings>;

    /// Scores every query against every support, both given as indices into
    /// `embeddings`. Higher means more likely the same class (distances are negated).
    ///
    /// # Shapes
    /// - output: `queries.len() × supports.len()` scores, row-major (query `q`, support
    ///   `s` at `q * supports.len() + s`)
    ///
    /// # Errors
    /// When the embeddings cannot be compared (the scorer's own reasons).
    fn score(
        &self,
        embeddings: &Self::Embeddings,
        queries: &[usize],
        supports: &[usize],
    ) -> Result<Vec<f32>>;
}
