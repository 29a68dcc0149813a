//! Random N-way K-shot episodes.

use std::collections::HashMap;

use burn::prelude::*;
use rand::SeedableRng;
use rand::seq::index;
use rand_chacha::ChaCha8Rng;

use super::episode::Episode;
use super::koch::shared_image;
use crate::data::ImageSet;
use crate::{Error, Result};

/// Where an episode's classes come from.
#[derive(Config, Debug, PartialEq, Eq, Copy)]
#[non_exhaustive]
pub enum EpisodeScope {
    /// All from one alphabet, picked uniformly among those with enough characters: the
    /// harder task (characters of one alphabet look alike), as in Koch's protocol.
    WithinAlphabet,
    /// From all the alphabets together.
    AcrossAlphabets,
}

/// Random N-way K-shot episodes: N characters picked uniformly, and for each, K + Q
/// distinct drawings (so distinct drawers): K supports and Q queries.
///
/// ```
/// use image::{GrayImage, Luma};
/// use siamese::data::{ImageSet, LabeledImage};
/// use siamese::eval::RandomEpisodesConfig;
///
/// let images = (1..=4).flat_map(|c| (1..=6).map(move |drawer| LabeledImage {
///     group: "Toy".into(),
///     class: format!("character{c:02}"),
///     instance: drawer,
///     image: GrayImage::from_pixel(105, 105, Luma([(c * 40 + drawer) as u8])).into(),
/// }));
/// let set = ImageSet::from_images("toy", images)?;
/// let episodes = RandomEpisodesConfig::new(3, 5).with_episodes(2).episodes(&set, None)?;
/// assert_eq!(episodes.len(), 2);
/// assert_eq!((episodes[0].n_way(), episodes[0].k_shot(), episodes[0].n_queries()), (3, 5, 3));
///
/// // Six drawers: K = 6 leaves none for the query.
/// assert!(RandomEpisodesConfig::new(3, 6).episodes(&set, None).is_err());
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Config, Debug)]
pub struct RandomEpisodesConfig {
    /// Classes per episode N.
    pub n_way: usize,
    /// Support images per class K (at least 1).
    pub k_shot: usize,
    /// Queries per class Q.
    #[config(default = 1)]
    pub queries_per_class: usize,
    /// Number of episodes.
    #[config(default = 100)]
    pub episodes: usize,
    /// Where the classes of an episode come from.
    #[config(default = "EpisodeScope::WithinAlphabet")]
    pub scope: EpisodeScope,
    /// Seed of the draws: the same seed gives the same episodes.
    #[config(default = 0)]
    pub seed: u64,
}

impl RandomEpisodesConfig {
    /// Draws the episodes from the alphabets `alphabets` of `set` (`None`: all).
    ///
    /// # Errors
    /// - [`Error::NotFound`] for an alphabet that `set` does not have;
    /// - [`Error::InvalidArgument`] when a count is 0, `n_way` is larger than the
    ///   characters available (in the largest alphabet, within alphabets), or
    ///   `k_shot + queries_per_class` is larger than the drawings of some character.
    pub fn episodes(&self, set: &ImageSet, alphabets: Option<&[&str]>) -> Result<Vec<Episode>> {
        for (name, value) in [
            ("n_way", self.n_way),
            ("k_shot", self.k_shot),
            ("queries_per_class", self.queries_per_class),
            ("episodes", self.episodes),
        ] {
            if value == 0 {
                return Err(Error::invalid(name, "must be positive"));
            }
        }
        let alphabets = set.group_indices(alphabets)?;
        // The class pools episodes are drawn from.
        let pools: Vec<Vec<usize>> = match self.scope {
            EpisodeScope::WithinAlphabet => {
                let largest = alphabets
                    .iter()
                    .map(|&a| set.classes_of_group(a).len())
                    .max()
                    .unwrap_or(0);
                if self.n_way > largest {
                    return Err(Error::invalid(
                        "n_way",
                        format!(
                            "{}-way episodes within an alphabet need {} characters, but the \
                             largest alphabet has {largest}",
                            self.n_way, self.n_way
                        ),
                    ));
                }
                alphabets
                    .iter()
                    .map(|&a| set.classes_of_group(a).collect::<Vec<_>>())
                    .filter(|classes| classes.len() >= self.n_way)
                    .collect()
            }
            EpisodeScope::AcrossAlphabets => {
                let all: Vec<usize> = alphabets
                    .iter()
                    .flat_map(|&a| set.classes_of_group(a))
                    .collect();
                if self.n_way > all.len() {
                    return Err(Error::invalid(
                        "n_way",
                        format!(
                            "{}-way episodes need {} characters, but there are {}",
                            self.n_way,
                            self.n_way,
                            all.len()
                        ),
                    ));
                }
                vec![all]
            }
        };
        let drawings = self.k_shot + self.queries_per_class;
        if let Some(&class) = pools
            .iter()
            .flatten()
            .find(|&&c| set.images_of_class(c).len() < drawings)
        {
            return Err(Error::invalid(
                "k_shot",
                format!(
                    "{}-shot episodes with {} queries per class need {drawings} drawings of a \
                     character, but {} has {}",
                    self.k_shot,
                    self.queries_per_class,
                    set.class_name(class),
                    set.images_of_class(class).len()
                ),
            ));
        }

        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut cache = HashMap::new();
        (0..self.episodes)
            .map(|_| {
                let pool = &pools[index::sample(&mut rng, pools.len(), 1).index(0)];
                let classes: Vec<usize> = index::sample(&mut rng, pool.len(), self.n_way)
                    .into_iter()
                    .map(|i| pool[i])
                    .collect();
                let mut supports = Vec::with_capacity(self.n_way);
                let mut queries = Vec::with_capacity(self.n_way * self.queries_per_class);
                let mut labels = Vec::with_capacity(queries.capacity());
                for (label, &class) in classes.iter().enumerate() {
                    let images = set.images_of_class(class);
                    let mut picked = index::sample(&mut rng, images.len(), drawings)
                        .into_iter()
                        .map(|i| shared_image(set, &mut cache, images.start + i));
                    supports.push(picked.by_ref().take(self.k_shot).collect());
                    queries.extend(picked);
                    labels.extend(std::iter::repeat_n(label, self.queries_per_class));
                }
                let names = classes
                    .iter()
                    .map(|&c| set.class_name(c).to_string())
                    .collect();
                Episode::new(supports, queries, labels)?.with_class_names(names)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::koch::tests::{label, toy_set};
    use super::*;

    #[test]
    fn episodes_have_the_asked_shape_and_distinct_drawings() {
        let set = toy_set(&[5, 7, 3], &[1, 2, 3, 4, 5, 6]);
        let episodes = RandomEpisodesConfig::new(4, 3)
            .with_queries_per_class(2)
            .with_episodes(30)
            .episodes(&set, None)
            .unwrap();
        assert_eq!(episodes.len(), 30);
        for episode in &episodes {
            assert_eq!(
                (episode.n_way(), episode.k_shot(), episode.n_queries()),
                (4, 3, 8)
            );
            // Within one alphabet, never the 3-character one.
            let alphabet = episode.class_names()[0].split('/').next().unwrap();
            assert_ne!(alphabet, "alphabet2");
            for (class, name) in episode.class_names().iter().enumerate() {
                assert!(name.starts_with(alphabet), "{name}");
                let mut drawers: Vec<u32> = episode.supports()[class]
                    .iter()
                    .map(|s| {
                        let (character, drawer) = label(&set, s);
                        assert_eq!(&character, name);
                        drawer
                    })
                    .collect();
                for (query, _) in episode
                    .labels()
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| **l == class)
                {
                    let (character, drawer) = label(&set, &episode.queries()[query]);
                    assert_eq!(&character, name);
                    drawers.push(drawer);
                }
                drawers.sort();
                drawers.dedup();
                assert_eq!(
                    drawers.len(),
                    5,
                    "3 supports and 2 queries, all different drawers"
                );
            }
        }
    }

    #[test]
    fn across_alphabets_mixes_them() {
        let set = toy_set(&[3, 3, 3], &[1, 2]);
        let episodes = RandomEpisodesConfig::new(6, 1)
            .with_scope(EpisodeScope::AcrossAlphabets)
            .with_episodes(10)
            .episodes(&set, None)
            .unwrap();
        assert!(episodes.iter().any(|e| {
            let alphabets: std::collections::HashSet<_> = e
                .class_names()
                .iter()
                .map(|n| n.split('/').next().unwrap())
                .collect();
            alphabets.len() > 1
        }));
        // Six characters are not in any one alphabet.
        let message = RandomEpisodesConfig::new(6, 1)
            .episodes(&set, None)
            .unwrap_err()
            .to_string();
        assert!(message.contains("largest alphabet has 3"), "{message}");
    }

    #[test]
    fn same_seed_same_episodes() {
        let set = toy_set(&[8, 8], &[1, 2, 3, 4]);
        let draw = |seed| {
            RandomEpisodesConfig::new(3, 2)
                .with_seed(seed)
                .with_episodes(5)
                .episodes(&set, None)
                .unwrap()
                .iter()
                .flat_map(|e| {
                    e.queries()
                        .iter()
                        .map(|q| label(&set, q))
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(4), draw(4));
        assert_ne!(draw(4), draw(5));
    }

    #[test]
    fn bad_requests_name_the_value() {
        let set = toy_set(&[4, 4], &[1, 2, 3]);
        let message = RandomEpisodesConfig::new(2, 3)
            .episodes(&set, None)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("3-shot") && message.contains("need 4 drawings"),
            "{message}"
        );
        assert!(message.contains("has 3"), "{message}");
        let message = RandomEpisodesConfig::new(9, 1)
            .with_scope(EpisodeScope::AcrossAlphabets)
            .episodes(&set, None)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("9-way") && message.contains("there are 8"),
            "{message}"
        );
        let message = RandomEpisodesConfig::new(2, 1)
            .episodes(&set, Some(&["alphabet0", "Klingon"]))
            .unwrap_err()
            .to_string();
        assert!(message.contains("Klingon"), "{message}");
        assert!(
            RandomEpisodesConfig::new(2, 0)
                .episodes(&set, None)
                .is_err()
        );
    }
}
