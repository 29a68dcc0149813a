//! One-shot matching on your own images: a trained network and a gallery of labelled
//! examples.
//!
//! A [`Matcher`] holds a trained [`Siamese`](crate::Siamese) network and a gallery: a few labelled
//! example images ("shots") per class, each embedded once. It ranks the gallery's classes
//! for a query image ([`Matcher::classify`]), tells whether two images show the same
//! class ([`Matcher::verify`], with a threshold [`Matcher::calibrate`]d on labelled pairs),
//! and saves its gallery so that a service does not embed it again on start
//! ([`Matcher::save`], [`Matcher::load`]).
//!
//! Images can be of any size, colour type and polarity: every image goes through
//! [`prepare`](crate::data::prepare) (see [`ImageInput`](crate::data::ImageInput)), the same preprocessing as the
//! training data's, then [`to_input`](crate::data::to_input).
//!
//! ```no_run
//! use std::path::Path;
//! use siamese::matcher::Matcher;
//!
//! let device = siamese::device::by_name("flex")?;
//! let mut matcher = Matcher::new(siamese::pretrained::compact(&device)?);
//! matcher.add_folder("gallery")?; // gallery/<label>/<any images>
//! for m in matcher.top_k(Path::new("query.png"), 3)? {
//!     println!("{:>6.3}  {}", m.probability, m.label);
//! }
//! # Ok::<(), siamese::Error>(())
//! ```

mod base;
mod calibration;
mod folder;
mod gallery;
mod gallery_file;

pub use base::{DEFAULT_BATCH_SIZE, Matcher};
pub use calibration::Calibration;
pub use folder::image_files;
pub use gallery::Match;
