//! What scores a query against supports: the [`Scorer`] trait, the network
//! ([`SiameseScorer`], and [`PairwiseScorer`], Koch's slower reference) and the baselines
//! ([`PixelNearestNeighbour`], [`ModifiedHausdorff`]).

mod hausdorff;
mod pairwise;
mod pixel;
mod scorer;
mod siamese;

pub use hausdorff::{InkPoints, ModifiedHausdorff};
pub use pairwise::PairwiseScorer;
pub use pixel::PixelNearestNeighbour;
pub use scorer::Scorer;
pub use siamese::SiameseScorer;
