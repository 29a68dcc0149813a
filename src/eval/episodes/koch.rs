//! Koch's one-shot protocol: 20-way trials between two drawers of one alphabet.

use std::collections::HashMap;
use std::sync::Arc;

use burn::prelude::*;
use image::DynamicImage;
use rand::SeedableRng;
use rand::seq::index;
use rand_chacha::ChaCha8Rng;

use super::episode::Episode;
use crate::data::ImageSet;
use crate::{Error, Result};

/// Koch et al.'s (2015, section 4.3) one-shot protocol. For each alphabet, `runs_per_alphabet`
/// times: pick `n_way` of its characters uniformly at random and two of its drawers; each
/// of the first drawer's drawings is a query against the second drawer's drawings (one
/// `n_way`-way one-shot trial each). One run is one [`Episode`] of `n_way` queries.
///
/// Koch ran it twice per alphabet over the 10 evaluation alphabets of the official runs
/// ([`EVALUATION_RUN_ALPHABETS`](crate::data::EVALUATION_RUN_ALPHABETS)): 400 trials.
///
/// ```no_run
/// use siamese::data::{Omniglot, EVALUATION_RUN_ALPHABETS};
/// use siamese::eval::KochProtocolConfig;
///
/// let evaluation = Omniglot::open("../shared/omniglot")?.evaluation()?;
/// let episodes = KochProtocolConfig::new()
///     .with_seed(1)
///     .episodes(&evaluation, Some(&EVALUATION_RUN_ALPHABETS))?;
/// assert_eq!(episodes.iter().map(|e| e.n_queries()).sum::<usize>(), 400);
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Config, Debug)]
pub struct KochProtocolConfig {
    /// Characters (classes) per trial: Koch's 20.
    #[config(default = 20)]
    pub n_way: usize,
    /// Runs per alphabet, each with its own characters and drawers: Koch's 2.
    #[config(default = 2)]
    pub runs_per_alphabet: usize,
    /// Seed of the draws: the same seed gives the same episodes.
    #[config(default = 0)]
    pub seed: u64,
}

impl KochProtocolConfig {
    /// The episodes on the alphabets `alphabets` of `set` (`None`: every alphabet of the
    /// set), alphabet after alphabet in the order given. Drawers are picked among those
    /// that drew all the picked characters.
    ///
    /// # Errors
    /// - [`Error::NotFound`] for an alphabet that `set` does not have;
    /// - [`Error::InvalidArgument`] when `n_way` or `runs_per_alphabet` is 0, `n_way` is
    ///   larger than an alphabet's characters, or fewer than two drawers drew the
    ///   picked characters.
    pub fn episodes(&self, set: &ImageSet, alphabets: Option<&[&str]>) -> Result<Vec<Episode>> {
        if self.n_way == 0 {
            return Err(Error::invalid("n_way", "must be positive"));
        }
        if self.runs_per_alphabet == 0 {
            return Err(Error::invalid("runs_per_alphabet", "must be positive"));
        }
        let alphabets = set.group_indices(alphabets)?;
        for &alphabet in &alphabets {
            let characters = set.classes_of_group(alphabet).len();
            if self.n_way > characters {
                return Err(Error::invalid(
                    "n_way",
                    format!(
                        "{}-way trials need {} characters, but alphabet {} has {characters}",
                        self.n_way,
                        self.n_way,
                        set.group_names()[alphabet]
                    ),
                ));
            }
        }

        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut cache = HashMap::new();
        let mut episodes = Vec::with_capacity(alphabets.len() * self.runs_per_alphabet);
        for &alphabet in &alphabets {
            let classes = set.classes_of_group(alphabet);
            for _ in 0..self.runs_per_alphabet {
                let picked: Vec<usize> = index::sample(&mut rng, classes.len(), self.n_way)
                    .into_iter()
                    .map(|i| classes.start + i)
                    .collect();
                let drawers: Vec<u32> = set
                    .instances()
                    .iter()
                    .copied()
                    .filter(|&d| picked.iter().all(|&c| set.image_of(c, d).is_some()))
                    .collect();
                if drawers.len() < 2 {
                    return Err(Error::invalid(
                        "set",
                        format!(
                            "Koch's trials need two drawers, but only {drawers:?} drew all of \
                             the {} characters picked in alphabet {}",
                            self.n_way,
                            set.group_names()[alphabet]
                        ),
                    ));
                }
                let pair = index::sample(&mut rng, drawers.len(), 2);
                let (query_drawer, support_drawer) =
                    (drawers[pair.index(0)], drawers[pair.index(1)]);
                let mut image = |class: usize, drawer: u32| {
                    let id = set.image_of(class, drawer).expect("filtered above");
                    shared_image(set, &mut cache, id)
                };
                let supports = picked
                    .iter()
                    .map(|&c| vec![image(c, support_drawer)])
                    .collect();
                let queries = picked.iter().map(|&c| image(c, query_drawer)).collect();
                let names = picked
                    .iter()
                    .map(|&c| set.class_name(c).to_string())
                    .collect();
                episodes.push(
                    Episode::new(supports, queries, (0..self.n_way).collect())?
                        .with_class_names(names)?,
                );
            }
        }
        Ok(episodes)
    }
}

/// Image `id` of `set`, decoded once per source call and shared between episodes.
pub(super) fn shared_image(
    set: &ImageSet,
    cache: &mut HashMap<usize, Arc<DynamicImage>>,
    id: usize,
) -> Arc<DynamicImage> {
    cache
        .entry(id)
        .or_insert_with(|| Arc::new(set.picture(id)))
        .clone()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::data::LabeledImage;
    use image::Luma;

    /// `characters[a]` characters in alphabet `a` (named `alphabetA`), drawn by `drawers`.
    /// Each image has one ink pixel per (character, drawer), so images tell their labels.
    pub(crate) fn toy_set(characters: &[usize], drawers: &[u32]) -> ImageSet {
        let mut images = Vec::new();
        for (a, &n) in characters.iter().enumerate() {
            for c in 0..n {
                for &drawer in drawers {
                    let mut image = image::GrayImage::new(105, 105);
                    image.put_pixel(a as u32 * 30 + c as u32, drawer, Luma([255]));
                    images.push(LabeledImage {
                        group: format!("alphabet{a}"),
                        class: format!("character{:02}", c + 1),
                        instance: drawer,
                        image: image.into(),
                    });
                }
            }
        }
        ImageSet::from_images("toy", images).unwrap()
    }

    /// (character name, drawer) of an image of `toy_set`.
    pub(crate) fn label(set: &ImageSet, image: &DynamicImage) -> (String, u32) {
        let (x, y, _) = image
            .as_luma8()
            .unwrap()
            .enumerate_pixels()
            .find(|(_, _, p)| p.0[0] == 255)
            .unwrap();
        let class = set.class_index(&format!("alphabet{}/character{:02}", x / 30, x % 30 + 1));
        (set.class_name(class.unwrap()).to_string(), y)
    }

    #[test]
    fn trials_pair_two_drawers_of_one_alphabet() {
        let set = toy_set(&[6, 8], &[1, 2, 3, 4]);
        let episodes = KochProtocolConfig::new()
            .with_n_way(5)
            .with_runs_per_alphabet(3)
            .with_seed(9)
            .episodes(&set, Some(&["alphabet1", "alphabet0"]))
            .unwrap();
        assert_eq!(episodes.len(), 6);
        for (i, episode) in episodes.iter().enumerate() {
            let alphabet = if i < 3 { "alphabet1/" } else { "alphabet0/" };
            assert_eq!(
                (episode.n_way(), episode.k_shot(), episode.n_queries()),
                (5, 1, 5)
            );
            assert_eq!(episode.labels(), [0, 1, 2, 3, 4]);
            let query_drawer = label(&set, &episode.queries()[0]).1;
            let support_drawer = label(&set, &episode.supports()[0][0]).1;
            assert_ne!(query_drawer, support_drawer);
            for class in 0..5 {
                let name = &episode.class_names()[class];
                assert!(name.starts_with(alphabet), "{name}");
                assert_eq!(
                    label(&set, &episode.queries()[class]),
                    (name.clone(), query_drawer)
                );
                assert_eq!(
                    label(&set, &episode.supports()[class][0]),
                    (name.clone(), support_drawer)
                );
            }
            let mut names = episode.class_names().to_vec();
            names.dedup();
            assert_eq!(names.len(), 5, "distinct characters");
        }
    }

    #[test]
    fn same_seed_same_episodes() {
        let set = toy_set(&[10, 10], &[1, 2, 3, 4, 5]);
        let draw = |seed| {
            KochProtocolConfig::new()
                .with_n_way(4)
                .with_seed(seed)
                .episodes(&set, None)
                .unwrap()
                .iter()
                .map(|e| {
                    let queries: Vec<_> = e.queries().iter().map(|q| label(&set, q)).collect();
                    (queries, label(&set, &e.supports()[0][0]))
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }

    #[test]
    fn bad_requests_name_the_value() {
        let set = toy_set(&[6, 8], &[1, 2]);
        let config = KochProtocolConfig::new().with_n_way(7);
        let message = config.episodes(&set, None).unwrap_err().to_string();
        assert!(
            message.contains("7-way") && message.contains("alphabet0 has 6"),
            "{message}"
        );
        assert!(config.episodes(&set, Some(&["alphabet1"])).is_ok());
        let message = config
            .episodes(&set, Some(&["Klingon"]))
            .unwrap_err()
            .to_string();
        assert!(message.contains("\"Klingon\" not found"), "{message}");
        let one_drawer = toy_set(&[6], &[3]);
        let message = KochProtocolConfig::new()
            .with_n_way(6)
            .episodes(&one_drawer, None)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("two drawers") && message.contains("[3]"),
            "{message}"
        );
    }
}
