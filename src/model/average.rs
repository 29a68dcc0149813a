//! Weight averaging: one network whose every weight (and batch-norm running statistic) is
//! the mean of several networks' of the same configuration, and batch-norm statistics
//! recomputed for it.
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
    /// assert!(w(&mean).sub(expected).abs().max().into_scalar::<f32>() < 1e-6);
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

    /// The network with every batch norm's running statistics recomputed on `batches`:
    /// the mean over the batches of each batch's statistics, the old values forgotten. An
    /// [average](Self::average) of weights is not a network any batch norm saw, and the
    /// mean of the checkpoints' statistics only approximates its own; a few dozen training
    /// batches give them exactly (as PyTorch's `update_bn` does for weight averaging).
    /// Nothing else changes, and a network without batch norm comes back as it was.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `batches` is empty or a batch is not
    /// `[B, C, S, S]` images of the network's input channels `C` and side `S` (naming the
    /// batch).
    ///
    /// # Shapes
    /// - each batch: `[B, C, S, S]`, B ≥ 2
    pub fn refresh_batch_norm(
        self,
        batches: impl IntoIterator<Item = Tensor<4>>,
    ) -> Result<Siamese> {
        let mut batches = batches.into_iter().enumerate().peekable();
        if batches.peek().is_none() {
            return Err(Error::invalid(
                "batches",
                "no batch to take statistics from",
            ));
        }
        let device = self.device();
        let mut model = self.to_device(&device.clone().autodiff()).train();
        let momenta: Vec<Option<f64>> = (model.encoder.blocks.iter())
            .map(|block| block.norm.as_ref().map(|norm| norm.momentum))
            .collect();
        let side = model.config.encoder.input_size;
        let c = model.config.encoder.in_channels();
        for (i, batch) in batches {
            let [b, channels, height, width] = batch.dims();
            if b < 2 || [channels, height, width] != [c, side, side] {
                return Err(Error::invalid(
                    "batches",
                    format!(
                        "batch {i} is [{b}, {channels}, {height}, {width}], not [B ≥ 2, {c}, \
                         {side}, {side}]"
                    ),
                ));
            }
            // Momentum 1 / (i + 1) keeps the running value the mean of batches 0..=i.
            for block in &mut model.encoder.blocks {
                if let Some(norm) = &mut block.norm {
                    norm.momentum = 1.0 / (i + 1) as f64;
                }
            }
            let _ = model.encoder.forward(batch.to_device(&model.device()));
        }
        for (block, momentum) in model.encoder.blocks.iter_mut().zip(momenta) {
            if let (Some(norm), Some(momentum)) = (&mut block.norm, momentum) {
                norm.momentum = momentum;
            }
        }
        Ok(model.valid().to_device(&device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EncoderConfig, SiameseConfig};
    use burn::tensor::Distribution;

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

    crate::device_tests! {
        fn refreshed_statistics_are_the_mean_of_the_batches(device) {
            let model = SiameseConfig::compact().init(&device);
            let batch = |seed: u64| {
                device.seed(seed);
                Tensor::<4>::random([4, 1, 52, 52], Distribution::Uniform(0.0, 1.0), &device)
            };
            let (a, b) = (batch(1), batch(2));
            // The first block's statistics are those of its convolution's output, which
            // the batches alone fix: the mean of two batches' means is the mean of both.
            let conv = model.encoder.blocks[0].conv.forward(Tensor::cat(vec![a.clone(), b.clone()], 0));
            let expected = conv.mean_dim(0).mean_dim(2).mean_dim(3).flatten::<1>(0, 3);
            let refreshed = model.clone().refresh_batch_norm([a, b]).unwrap();
            let norm = refreshed.encoder.blocks[0].norm.as_ref().unwrap();
            let got = norm.running_mean.value();
            let apart = got.clone().sub(expected.clone()).abs().max().into_scalar::<f32>();
            let scale = expected.abs().max().into_scalar::<f32>();
            assert!(scale > 1e-3 && apart < 1e-4 * scale, "{apart} apart of {scale}");
            // The momentum is the configured one again, and nothing else moved.
            let before = model.encoder.blocks[0].norm.as_ref().unwrap();
            assert_eq!(norm.momentum, before.momentum);
            let head = |m: &Siamese| m.head.weight.val().into_data().iter::<f32>().collect::<Vec<_>>();
            assert_eq!(head(&refreshed), head(&model));
            assert_eq!(refreshed.device(), device);
        }
    }

    #[test]
    fn refreshing_needs_batches_of_the_input_side() {
        let device = crate::device::default_device().unwrap();
        let model = SiameseConfig::compact().init(&device);
        let err = model.clone().refresh_batch_norm([]).unwrap_err();
        assert!(err.to_string().contains("no batch"), "{err}");
        let good = Tensor::<4>::zeros([2, 1, 52, 52], &device);
        let bad = Tensor::<4>::zeros([2, 1, 105, 105], &device);
        let err = model.refresh_batch_norm([good, bad]).unwrap_err();
        assert!(
            err.to_string().contains("batch 1 is [2, 1, 105, 105]"),
            "{err}"
        );
    }

    #[test]
    fn a_network_averaged_with_itself_is_unchanged() {
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
