//! Weight averaging: one network whose every weight (and batch-norm running statistic) is
//! the mean of several networks' of the same configuration.
//!
//! Late checkpoints of one run sit around the same minimum, each a step of noise away from
//! it; their mean sits nearer its centre (Izmailov et al., 2018, "Averaging Weights Leads
//! to Wider Optima and Better Generalization"). Networks of different runs have unrelated
//! features, and their mean is meaningless: average checkpoints of one run.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::TensorData;

use super::Siamese;
use crate::{Error, Result};

/// The running sum of every float tensor of a module, in the order a module visits them.
#[derive(Default)]
struct Sums {
    tensors: Vec<(Vec<f64>, Vec<usize>)>,
    /// The tensor the visit is at.
    at: usize,
}

impl ModuleVisitor for Sums {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let shape = tensor.dims().to_vec();
        let values = tensor.into_data().convert::<f32>();
        let values = values.iter::<f32>().map(f64::from);
        match self.tensors.get_mut(self.at) {
            Some((sum, _)) => sum.iter_mut().zip(values).for_each(|(s, v)| *s += v),
            None => self.tensors.push((values.collect(), shape)),
        }
        self.at += 1;
    }
}

/// Replaces every float tensor by its sum's mean, in visit order.
struct Means {
    sums: std::vec::IntoIter<(Vec<f64>, Vec<usize>)>,
    count: f64,
}

impl ModuleMapper for Means {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (sum, shape) = self
            .sums
            .next()
            .expect("the same module is visited, then mapped");
        let mean: Vec<f32> = sum.iter().map(|s| (s / self.count) as f32).collect();
        param.map(|tensor| {
            let device = tensor.device();
            Tensor::from_data(
                TensorData::new(mean, shape).convert_dtype(tensor.dtype()),
                &device,
            )
        })
    }
}

impl Siamese {
    /// The network whose every weight and batch-norm running statistic is the mean of
    /// `models`', on the first one's device.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `models` is empty or their configurations differ
    /// (naming the first that differs).
    ///
    /// # Example
    /// ```
    /// use burn::prelude::*;
    /// use siamese::SiameseConfig;
    ///
    /// let device = siamese::device::default_device()?;
    /// let config = SiameseConfig::compact();
    /// let (a, b) = (config.init(&device), config.init(&device));
    /// let mean = siamese::Siamese::average(&[a.clone(), b.clone()])?;
    /// let w = |m: &siamese::Siamese| m.head.weight.val();
    /// let expected = (w(&a) + w(&b)) / 2.0;
    /// assert!(w(&mean).sub(expected).abs().max().into_scalar() < 1e-6);
    /// # Ok::<(), siamese::Error>(())
    /// ```
    pub fn average(models: &[Siamese]) -> Result<Siamese> {
        let (first, rest) = models
            .split_first()
            .ok_or_else(|| Error::invalid("models", "no network to average"))?;
        let config = first.config.to_string();
        if let Some(i) = rest.iter().position(|m| m.config.to_string() != config) {
            return Err(Error::invalid(
                "models",
                format!(
                    "network {} has another configuration than network 0; only checkpoints \
                     of one network can be averaged",
                    i + 1
                ),
            ));
        }
        let mut sums = Sums::default();
        for model in models {
            sums.at = 0;
            model.visit(&mut sums);
        }
        let mut means = Means {
            sums: sums.tensors.into_iter(),
            count: models.len() as f64,
        };
        Ok(first.clone().map(&mut means))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EncoderConfig, SiameseConfig};

    fn floats(model: &Siamese) -> Vec<f32> {
        #[derive(Default)]
        struct All(Vec<f32>);
        impl ModuleVisitor for All {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0.extend(param.val().into_data().iter::<f32>());
            }
        }
        let mut all = All::default();
        model.visit(&mut all);
        all.0
    }

    crate::device_tests! {
        fn the_mean_of_three_networks_is_their_mean_weight_by_weight(device) {
            let config = SiameseConfig::compact();
            let models: Vec<Siamese> = (0..3).map(|_| config.init(&device)).collect();
            let mean = Siamese::average(&models).unwrap();
            let each: Vec<Vec<f32>> = models.iter().map(floats).collect();
            let got = floats(&mean);
            // Conv, norm, running statistics and head: every float the network saves.
            assert_eq!(got.len(), each[0].len());
            assert!(got.len() > 100_000);
            for (i, g) in got.iter().enumerate() {
                let expected = (each[0][i] + each[1][i] + each[2][i]) / 3.0;
                assert!((g - expected).abs() < 1e-6, "weight {i}: {g} vs {expected}");
            }
            // The networks differ, so the mean is none of them.
            assert_ne!(got, each[0]);
        }
    }

    #[test]
    fn a_network_averaged_with_itself_scores_as_before() {
        let device = crate::device::default_device().unwrap();
        let model = SiameseConfig::compact().init(&device);
        let mean = Siamese::average(&[model.clone(), model.clone()]).unwrap();
        assert_eq!(floats(&mean), floats(&model));
    }

    #[test]
    fn no_network_or_other_configurations_are_named_errors() {
        let device = crate::device::default_device().unwrap();
        let err = Siamese::average(&[]).unwrap_err();
        assert!(err.to_string().contains("no network"), "{err}");
        let compact = SiameseConfig::compact().init(&device);
        let other =
            SiameseConfig::new(EncoderConfig::compact().with_batch_norm(false)).init(&device);
        let err = Siamese::average(&[compact.clone(), compact, other]).unwrap_err();
        assert!(err.to_string().contains("network 2"), "{err}");
    }
}
