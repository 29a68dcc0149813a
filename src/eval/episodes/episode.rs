//! An N-way K-shot episode: the unit of one-shot evaluation.

use std::sync::Arc;

use image::DynamicImage;

use crate::{Error, Result};

/// N classes with K support images each, and queries with their true classes.
///
/// Images are ink-high ([`GrayImage`], ink 255, background 0) behind an [`Arc`], so that
/// episodes drawn from one image set share their images and clone cheaply. The
/// [`Evaluator`](crate::eval::Evaluator) scores each distinct image once per call, however many
/// episodes hold it.
///
/// ```
/// use std::sync::Arc;
/// use image::{DynamicImage, GrayImage};
/// use siamese::eval::Episode;
///
/// let image = |v: u8| -> Arc<DynamicImage> {
///     Arc::new(GrayImage::from_pixel(4, 4, image::Luma([v])).into())
/// };
/// // 2-way 1-shot, two queries.
/// let episode = Episode::new(
///     vec![vec![image(0)], vec![image(255)]],
///     vec![image(255), image(0)],
///     vec![1, 0],
/// )?;
/// assert_eq!((episode.n_way(), episode.k_shot(), episode.n_queries()), (2, 1, 2));
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Episode {
    supports: Vec<Vec<Arc<DynamicImage>>>,
    queries: Vec<Arc<DynamicImage>>,
    labels: Vec<usize>,
    class_names: Vec<String>,
}

impl Episode {
    /// An episode from `supports[class][shot]`, the queries, and the class of each query
    /// (an index into `supports`). Classes are named `0`, `1`, ... until
    /// [`Episode::with_class_names`] names them.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when there are no classes or no queries, a class has no
    /// support image or another number than the first class, the labels and queries
    /// differ in number, or a label is not a class.
    pub fn new(
        supports: Vec<Vec<Arc<DynamicImage>>>,
        queries: Vec<Arc<DynamicImage>>,
        labels: Vec<usize>,
    ) -> Result<Self> {
        let n_way = supports.len();
        if n_way == 0 {
            return Err(Error::invalid(
                "supports",
                "an episode needs at least one class",
            ));
        }
        let k_shot = supports[0].len();
        if k_shot == 0 {
            return Err(Error::invalid(
                "supports",
                "every class needs at least one support image (K >= 1)",
            ));
        }
        if let Some((class, images)) = supports.iter().enumerate().find(|(_, s)| s.len() != k_shot)
        {
            return Err(Error::invalid(
                "supports",
                format!(
                    "class {class} has {} support images but class 0 has {k_shot}",
                    images.len()
                ),
            ));
        }
        if queries.is_empty() {
            return Err(Error::invalid(
                "queries",
                "an episode needs at least one query",
            ));
        }
        if labels.len() != queries.len() {
            return Err(Error::invalid(
                "labels",
                format!("{} labels for {} queries", labels.len(), queries.len()),
            ));
        }
        if let Some((query, label)) = labels.iter().enumerate().find(|(_, l)| **l >= n_way) {
            return Err(Error::invalid(
                "labels",
                format!("query {query} has class {label}, but the episode has {n_way} classes"),
            ));
        }
        Ok(Self {
            supports,
            queries,
            labels,
            class_names: (0..n_way).map(|c| c.to_string()).collect(),
        })
    }

    /// Names the classes (for example `Tengwar/character07`), in class order.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when there are not exactly N names.
    pub fn with_class_names(mut self, names: Vec<String>) -> Result<Self> {
        if names.len() != self.n_way() {
            return Err(Error::invalid(
                "class_names",
                format!("{} names for {} classes", names.len(), self.n_way()),
            ));
        }
        self.class_names = names;
        Ok(self)
    }

    /// Number of classes N.
    pub fn n_way(&self) -> usize {
        self.supports.len()
    }

    /// Support images per class K.
    pub fn k_shot(&self) -> usize {
        self.supports[0].len()
    }

    /// Number of queries.
    pub fn n_queries(&self) -> usize {
        self.queries.len()
    }

    /// Support images, `[class][shot]`.
    pub fn supports(&self) -> &[Vec<Arc<DynamicImage>>] {
        &self.supports
    }

    /// Query images.
    pub fn queries(&self) -> &[Arc<DynamicImage>] {
        &self.queries
    }

    /// True class of each query.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Class names, in class order.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Arc<DynamicImage> {
        Arc::new(image::GrayImage::new(3, 3).into())
    }

    #[test]
    fn bad_episodes_are_refused_with_the_reason() {
        let message = |r: Result<Episode>| r.unwrap_err().to_string();
        assert!(
            message(Episode::new(vec![], vec![image()], vec![0])).contains("at least one class")
        );
        assert!(message(Episode::new(vec![vec![]], vec![image()], vec![0])).contains("K >= 1"));
        let ragged = vec![vec![image()], vec![image(), image()]];
        assert!(message(Episode::new(ragged, vec![image()], vec![0])).contains("class 1 has 2"));
        assert!(message(Episode::new(vec![vec![image()]], vec![], vec![])).contains("one query"));
        let m = message(Episode::new(vec![vec![image()]], vec![image()], vec![0, 0]));
        assert!(m.contains("2 labels for 1 queries"), "{m}");
        let m = message(Episode::new(vec![vec![image()]], vec![image()], vec![1]));
        assert!(m.contains("class 1") && m.contains("1 classes"), "{m}");
    }

    #[test]
    fn names_default_to_indices_and_must_match_n() {
        let episode =
            Episode::new(vec![vec![image()], vec![image()]], vec![image()], vec![1]).unwrap();
        assert_eq!(episode.class_names(), ["0", "1"]);
        assert!(episode.clone().with_class_names(vec!["a".into()]).is_err());
        let named = episode
            .with_class_names(vec!["a".into(), "b".into()])
            .unwrap();
        assert_eq!(named.class_names(), ["a", "b"]);
    }
}
