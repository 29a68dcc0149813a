//! Koch's random affine distortions.

use burn::prelude::*;
use image::{DynamicImage, GrayImage, Luma, Rgb};
use imageproc::geometric_transformations::{Border, Interpolation, Projection, warp};
use rand::{Rng, RngExt, SeedableRng};

use crate::{Error, Result};

/// Configuration of Koch's affine distortions (Koch et al. 2015, section 3.2): rotation,
/// shear, scale and translation, each component drawn with probability
/// `component_probability` and otherwise left at identity. The defaults are the paper's.
#[derive(Config, Debug, PartialEq)]
pub struct DistortionConfig {
    /// Largest rotation, in degrees: θ ∈ [−max, max].
    #[config(default = 10.0)]
    pub max_rotation_degrees: f32,
    /// Largest shear: ρx, ρy ∈ [−max, max].
    #[config(default = 0.3)]
    pub max_shear: f32,
    /// Smallest scale factor: sx, sy ∈ [min_scale, max_scale].
    #[config(default = 0.8)]
    pub min_scale: f32,
    /// Largest scale factor.
    #[config(default = 1.2)]
    pub max_scale: f32,
    /// Largest translation, in pixels at the native 105 × 105: tx, ty ∈ [−max, max].
    #[config(default = 2.0)]
    pub max_translation: f32,
    /// Probability that each of the seven components is drawn rather than left at identity.
    #[config(default = 0.5)]
    pub component_probability: f64,
}

impl DistortionConfig {
    /// Koch's distortions (the defaults).
    pub fn koch() -> Self {
        Self::new()
    }

    /// Checks that every range is finite and well ordered.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let fields = [
            ("max_rotation_degrees", self.max_rotation_degrees),
            ("max_shear", self.max_shear),
            ("max_translation", self.max_translation),
        ];
        for (name, value) in fields {
            if !(value.is_finite() && value >= 0.0) {
                return Err(Error::invalid(
                    name,
                    format!("{value} must be finite and ≥ 0"),
                ));
            }
        }
        if !(self.min_scale.is_finite() && self.max_scale.is_finite() && 0.0 < self.min_scale)
            || self.min_scale > self.max_scale
        {
            return Err(Error::invalid(
                "min_scale",
                format!(
                    "scale range [{}, {}] must be finite, positive and ordered",
                    self.min_scale, self.max_scale
                ),
            ));
        }
        if self.max_shear >= 1.0 {
            return Err(Error::invalid(
                "max_shear",
                format!(
                    "{} must be below 1 so that the transform stays invertible",
                    self.max_shear
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.component_probability) {
            return Err(Error::invalid(
                "component_probability",
                format!("{} is not a probability", self.component_probability),
            ));
        }
        Ok(())
    }

    /// Draws one distortion.
    ///
    /// # Panics
    /// When the configuration is invalid (see [`DistortionConfig::validate`]).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> AffineDistortion {
        let p = self.component_probability;
        let mut component = |lo: f32, hi: f32, identity: f32| {
            if rng.random_bool(p) {
                rng.random_range(lo..=hi)
            } else {
                identity
            }
        };
        let r = self.max_rotation_degrees.to_radians();
        AffineDistortion {
            rotation: component(-r, r, 0.0),
            shear_x: component(-self.max_shear, self.max_shear, 0.0),
            shear_y: component(-self.max_shear, self.max_shear, 0.0),
            scale_x: component(self.min_scale, self.max_scale, 1.0),
            scale_y: component(self.min_scale, self.max_scale, 1.0),
            translate_x: component(-self.max_translation, self.max_translation, 0.0),
            translate_y: component(-self.max_translation, self.max_translation, 0.0),
        }
    }

    /// Draws one distortion and applies it to `image`.
    ///
    /// ```
    /// use image::{GrayImage, Luma};
    /// use rand::SeedableRng;
    /// use siamese::data::DistortionConfig;
    ///
    /// let mut image = GrayImage::new(105, 105);
    /// for y in 20..85 { image.put_pixel(52, y, Luma([255])); } // a vertical stroke
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    /// let distorted = DistortionConfig::koch().distort(&image, &mut rng);
    /// assert_eq!(distorted.dimensions(), (105, 105));
    /// ```
    pub fn distort<R: Rng + ?Sized>(&self, image: &GrayImage, rng: &mut R) -> GrayImage {
        self.sample(rng).apply(image)
    }

    /// Draws one distortion and applies it to a prepared picture, filling what it
    /// uncovers with `background` ([`AffineDistortion::apply_picture`]).
    pub fn distort_picture<R: Rng + ?Sized>(
        &self,
        image: &DynamicImage,
        background: [u8; 3],
        rng: &mut R,
    ) -> DynamicImage {
        self.sample(rng).apply_picture(image, background)
    }

    /// `n` distortions drawn with `seed`: fixed views of every image for test-time
    /// augmentation ([`SiameseScorer::with_views`](crate::eval::SiameseScorer::with_views)).
    /// The same `n` and `seed` give the same views.
    ///
    /// # Panics
    /// When the configuration is invalid (see [`DistortionConfig::validate`]).
    pub fn views(&self, n: usize, seed: u64) -> Vec<AffineDistortion> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| self.sample(&mut rng)).collect()
    }
}

/// One affine distortion: `x ↦ R(θ) · Sh(ρx, ρy) · Sc(sx, sy) · (x − c) + c + t`, about the
/// image centre `c`, with `Sh = [[1, ρx], [ρy, 1]]` and `Sc = diag(sx, sy)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AffineDistortion {
    /// Rotation θ, in radians.
    pub rotation: f32,
    /// Horizontal shear ρx.
    pub shear_x: f32,
    /// Vertical shear ρy.
    pub shear_y: f32,
    /// Horizontal scale sx.
    pub scale_x: f32,
    /// Vertical scale sy.
    pub scale_y: f32,
    /// Horizontal translation tx, in pixels.
    pub translate_x: f32,
    /// Vertical translation ty, in pixels.
    pub translate_y: f32,
}

impl AffineDistortion {
    /// The distortion that changes nothing.
    pub const IDENTITY: AffineDistortion = AffineDistortion {
        rotation: 0.0,
        shear_x: 0.0,
        shear_y: 0.0,
        scale_x: 1.0,
        scale_y: 1.0,
        translate_x: 0.0,
        translate_y: 0.0,
    };

    /// The transform for an image of `width × height`, mapping input to output positions.
    ///
    /// # Panics
    /// When the linear part is singular (a shear of ±1 in both directions, or a zero scale).
    pub fn projection(&self, width: u32, height: u32) -> Projection {
        let (sin, cos) = self.rotation.sin_cos();
        let rotation = [[cos, -sin], [sin, cos]];
        let shear = [[1.0, self.shear_x], [self.shear_y, 1.0]];
        let rs = multiply(rotation, shear);
        let a = multiply(rs, [[self.scale_x, 0.0], [0.0, self.scale_y]]);
        let linear = Projection::from_matrix([
            a[0][0], a[0][1], 0.0, //
            a[1][0], a[1][1], 0.0, //
            0.0, 0.0, 1.0,
        ])
        .expect("an affine distortion with |shear| < 1 and scale > 0 is invertible");
        let (cx, cy) = ((width as f32 - 1.0) / 2.0, (height as f32 - 1.0) / 2.0);
        Projection::translate(cx + self.translate_x, cy + self.translate_y)
            * linear
            * Projection::translate(-cx, -cy)
    }

    /// Warps an ink-high image (bilinear; what comes from outside the image is background),
    /// keeping its size.
    pub fn apply(&self, image: &GrayImage) -> GrayImage {
        if *self == Self::IDENTITY {
            return image.clone();
        }
        warp(
            image,
            self.projection(image.width(), image.height()),
            Interpolation::Bilinear,
            Border::Constant(Luma([0])),
        )
    }

    /// Applies the distortion to a prepared picture (`Luma8` or `Rgb8`), filling what it
    /// uncovers with `background` (its luminance for a grey picture): what the samplers do
    /// with [`Preprocess::background`](super::Preprocess::background). For an ink-high
    /// picture (background black) it is [`AffineDistortion::apply`].
    pub fn apply_picture(&self, image: &DynamicImage, background: [u8; 3]) -> DynamicImage {
        if *self == Self::IDENTITY {
            return image.clone();
        }
        let projection = self.projection(image.width(), image.height());
        super::preprocess::map_picture(
            image,
            |grey| {
                let fill = super::preprocess::grey_fill(background);
                warp(
                    grey,
                    projection,
                    Interpolation::Bilinear,
                    Border::Constant(fill),
                )
            },
            |rgb| {
                warp(
                    rgb,
                    projection,
                    Interpolation::Bilinear,
                    Border::Constant(Rgb(background)),
                )
            },
        )
    }
}

fn multiply(a: [[f32; 2]; 2], b: [[f32; 2]; 2]) -> [[f32; 2]; 2] {
    [
        [
            a[0][0] * b[0][0] + a[0][1] * b[1][0],
            a[0][0] * b[0][1] + a[0][1] * b[1][1],
        ],
        [
            a[1][0] * b[0][0] + a[1][1] * b[1][0],
            a[1][0] * b[0][1] + a[1][1] * b[1][1],
        ],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;

    fn cross() -> GrayImage {
        GrayImage::from_fn(105, 105, |x, y| {
            Luma([
                if (40..65).contains(&x) && (50..55).contains(&y)
                    || (50..55).contains(&x) && (30..75).contains(&y)
                {
                    255
                } else {
                    0
                },
            ])
        })
    }

    fn centroid(image: &GrayImage) -> (f32, f32) {
        let (mut sx, mut sy, mut total) = (0.0, 0.0, 0.0);
        for (x, y, p) in image.enumerate_pixels() {
            let v = f32::from(p.0[0]);
            sx += x as f32 * v;
            sy += y as f32 * v;
            total += v;
        }
        (sx / total, sy / total)
    }

    #[test]
    fn samples_stay_in_koch_ranges_and_components_are_optional() {
        let config = DistortionConfig::koch();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut identity_rotations = 0;
        for _ in 0..2000 {
            let d = config.sample(&mut rng);
            assert!(d.rotation.abs() <= 10f32.to_radians() + 1e-6);
            assert!(d.shear_x.abs() <= 0.3 && d.shear_y.abs() <= 0.3);
            assert!((0.8..=1.2).contains(&d.scale_x) && (0.8..=1.2).contains(&d.scale_y));
            assert!(d.translate_x.abs() <= 2.0 && d.translate_y.abs() <= 2.0);
            identity_rotations += usize::from(d.rotation == 0.0);
        }
        assert!(
            (900..1100).contains(&identity_rotations),
            "{identity_rotations}"
        );
    }

    #[test]
    fn identity_changes_nothing() {
        let image = cross();
        assert_eq!(AffineDistortion::IDENTITY.apply(&image), image);
        let never = DistortionConfig::new().with_component_probability(0.0);
        assert_eq!(
            never.distort(&image, &mut ChaCha8Rng::seed_from_u64(0)),
            image
        );
    }

    #[test]
    fn translation_moves_the_centroid_by_the_offset() {
        let image = cross();
        let shift = AffineDistortion {
            translate_x: 2.0,
            translate_y: -1.0,
            ..AffineDistortion::IDENTITY
        };
        let (x0, y0) = centroid(&image);
        let (x1, y1) = centroid(&shift.apply(&image));
        assert!(
            (x1 - x0 - 2.0).abs() < 0.05 && (y1 - y0 + 1.0).abs() < 0.05,
            "{}, {}",
            x1 - x0,
            y1 - y0
        );
    }

    #[test]
    fn rotation_is_about_the_centre() {
        // A dot at the centre stays there; a dot to its right goes down (y grows downwards)
        // for a positive angle.
        let mut image = GrayImage::new(105, 105);
        image.put_pixel(52, 52, Luma([255]));
        image.put_pixel(82, 52, Luma([255]));
        let quarter = AffineDistortion {
            rotation: std::f32::consts::FRAC_PI_2,
            ..AffineDistortion::IDENTITY
        };
        let turned = quarter.apply(&image);
        assert!(turned.get_pixel(52, 52).0[0] > 200);
        assert!(turned.get_pixel(52, 82).0[0] > 200);
        assert_eq!(turned.get_pixel(82, 52).0[0], 0);
    }

    #[test]
    fn scale_grows_the_ink() {
        let image = cross();
        let ink = |i: &GrayImage| i.iter().map(|&v| f32::from(v)).sum::<f32>();
        let bigger = AffineDistortion {
            scale_x: 1.2,
            scale_y: 1.2,
            ..AffineDistortion::IDENTITY
        }
        .apply(&image);
        let ratio = ink(&bigger) / ink(&image);
        assert!((ratio - 1.44).abs() < 0.1, "{ratio}");
    }

    #[test]
    fn invalid_configs_are_refused() {
        assert!(DistortionConfig::koch().validate().is_ok());
        assert!(
            DistortionConfig::new()
                .with_min_scale(1.5)
                .validate()
                .is_err()
        );
        assert!(
            DistortionConfig::new()
                .with_max_shear(1.0)
                .validate()
                .is_err()
        );
        assert!(
            DistortionConfig::new()
                .with_max_translation(f32::NAN)
                .validate()
                .is_err()
        );
        assert!(
            DistortionConfig::new()
                .with_component_probability(1.5)
                .validate()
                .is_err()
        );
    }

    #[test]
    fn views_are_seeded_and_the_first_of_longer_lists() {
        let koch = DistortionConfig::koch();
        let views = koch.views(6, 3);
        assert_eq!(views.len(), 6);
        assert_eq!(views, koch.views(6, 3));
        assert_eq!(views[..2], koch.views(2, 3)[..]);
        assert_ne!(views, koch.views(6, 4));
        assert!(views.iter().any(|v| *v != AffineDistortion::IDENTITY));
        assert!(koch.views(0, 3).is_empty());
    }
}
