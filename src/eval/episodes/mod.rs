//! Where episodes come from: the official runs ([`LakeRuns`]), Koch's protocol
//! ([`KochProtocolConfig`]) and random N-way K-shot draws ([`RandomEpisodesConfig`]), all
//! as [`Episode`]s.

mod episode;
mod koch;
mod lake_runs;
mod random_episodes;

pub use episode::Episode;
pub use koch::KochProtocolConfig;
pub use lake_runs::LakeRuns;
pub use random_episodes::{EpisodeScope, RandomEpisodesConfig};
