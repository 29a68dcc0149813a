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
//! Images can be of any size and colour type: every image is prepared as the network's
//! configuration says ([`Siamese::input_spec`](crate::Siamese::input_spec), see
//! [`ImageInput`](crate::data::ImageInput)), the preprocessing its training data had, then
//! converted with [`InputSpec::to_input`](crate::data::InputSpec::to_input). The shipped
//! compact network reads ink on paper ([`Preprocess::Ink`](crate::data::Preprocess::Ink):
//! any polarity); a network trained on colour pictures
//! ([`Preprocess::Picture`](crate::data::Preprocess::Picture)) matches colour pictures.
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
