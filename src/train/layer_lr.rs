//! Per-layer learning rates: a multiplier of the run's learning rate for each encoder
//! block, the encoder's fully connected layer and the head. Koch et al. tuned one learning
//! rate per layer; Burn applies them through parameter groups ([`ParamGroup`]) of one
//! [`ModuleLearningRate`] policy, which its optimisers read parameter by parameter.

use burn::module::ParamGroup;
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::prelude::*;

use crate::{Error, Result, Siamese, SiameseConfig};

/// Multipliers of the learning rate, layer by layer. The defaults (all 1.0) train every
/// layer at the run's learning rate; 0.0 freezes a layer's weights (its batch-norm running
/// statistics still follow the data, and its optimiser state, SGD's velocity or Adam's
/// moments, still follows its gradients).
///
/// ```
/// use siamese::train::{LayerLearningRates, TrainingConfig};
/// use siamese::SiameseConfig;
///
/// // Fine-tune: freeze the first two blocks, train the head ten times faster.
/// let layers = LayerLearningRates::new()
///     .with_blocks(vec![0.0, 0.0, 1.0, 1.0])
///     .with_head(10.0);
/// let config = TrainingConfig::new(SiameseConfig::compact()).with_layer_lr(Some(layers));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Config, Debug, PartialEq)]
pub struct LayerLearningRates {
    /// Multiplier of each encoder block (its convolution and batch norm), first block first:
    /// empty for 1.0 everywhere, otherwise one per block.
    #[config(default = "Vec::new()")]
    pub blocks: Vec<f64>,
    /// Multiplier of the encoder's fully connected layer.
    #[config(default = 1.0)]
    pub fc: f64,
    /// Multiplier of the head (its weights `alpha` and bias).
    #[config(default = 1.0)]
    pub head: f64,
}

impl LayerLearningRates {
    /// Whether every layer trains at the run's learning rate.
    pub fn is_uniform(&self) -> bool {
        self.blocks.iter().all(|&m| m == 1.0) && self.fc == 1.0 && self.head == 1.0
    }

    /// Checks the multipliers against the network they apply to.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the field: a negative or non-finite multiplier, a
    /// block count other than the encoder's, or an `fc` multiplier for an encoder without a
    /// fully connected layer.
    pub fn validate(&self, model: &SiameseConfig) -> Result<()> {
        let ok = |m: f64| m >= 0.0 && m.is_finite();
        let bad = |m: f64| format!("{m} is not a finite, non-negative multiplier");
        if let Some((i, &m)) = self.blocks.iter().enumerate().find(|(_, m)| !ok(**m)) {
            return Err(Error::invalid(
                "layer_lr.blocks",
                format!("block {i}: {}", bad(m)),
            ));
        }
        for (name, m) in [("layer_lr.fc", self.fc), ("layer_lr.head", self.head)] {
            if !ok(m) {
                return Err(Error::invalid(name, bad(m)));
            }
        }
        let blocks = model.encoder.blocks.len();
        if !self.blocks.is_empty() && self.blocks.len() != blocks {
            return Err(Error::invalid(
                "layer_lr.blocks",
                format!(
                    "{} multipliers for an encoder of {blocks} blocks (give one per block, or none)",
                    self.blocks.len()
                ),
            ));
        }
        if model.encoder.embedding.is_none() && self.fc != 1.0 {
            return Err(Error::invalid(
                "layer_lr.fc",
                "the encoder has no fully connected layer",
            ));
        }
        Ok(())
    }

    /// The learning rate of every parameter of `model` when the run's rate is `lr`.
    ///
    /// Groups are made of the parameters' ids, which an optimiser step keeps, so one policy
    /// serves a whole epoch.
    pub fn policy(&self, model: &Siamese, lr: f64) -> ModuleLearningRate {
        let mut groups = Vec::new();
        for (block, &m) in model.encoder.blocks.iter().zip(&self.blocks) {
            groups.push((ParamGroup::ids_from_module(block.clone()), m));
        }
        if let Some(fc) = &model.encoder.fc {
            groups.push((ParamGroup::ids_from_module(fc.clone()), self.fc));
        }
        groups.push((ParamGroup::ids_from_module(model.head.clone()), self.head));
        groups
            .into_iter()
            .filter(|(_, m)| *m != 1.0)
            .fold(ModuleLrScheduler::new(lr), |scheduler, (group, m)| {
                scheduler.with_group(group, lr * m)
            })
            .step()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EncoderConfig;
    use crate::model::ConvBlockConfig;
    use crate::train::OptimizerConfig;
    use burn::optim::GradientsParams;
    use burn::tensor::Distribution;

    fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
        tensor.into_data().iter::<f32>().collect()
    }

    /// A three-block network small enough to train a step on every device in a moment.
    fn small() -> SiameseConfig {
        let block = |channels| ConvBlockConfig::new(channels, 3).with_padding(1);
        SiameseConfig::new(
            EncoderConfig::new(16, vec![block(4), block(8), block(8)])
                .with_embedding(Some(16))
                .with_batch_norm(true),
        )
    }

    crate::device_tests! {
        fn a_zero_multiplier_freezes_its_layer_and_only_it(device) {
            let device = device.autodiff();
            device.seed(7);
            let model = small().init(&device);
            let layers = LayerLearningRates::new()
                .with_blocks(vec![0.0, 1.0, 1.0])
                .with_head(0.0);
            layers.validate(&model.config).unwrap();
            let policy = layers.policy(&model, 0.1);

            let random = || Tensor::<4>::random([4, 1, 16, 16], Distribution::Default, &device);
            let loss = model.forward(random(), random()).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let mut optim = OptimizerConfig::adam().init(0);
            let after = optim.step(policy, model.clone(), grads);

            let conv = |m: &Siamese, i: usize| values(m.encoder.blocks[i].conv.weight.val());
            let gamma = |m: &Siamese, i: usize| {
                values(m.encoder.blocks[i].norm.as_ref().unwrap().gamma.val())
            };
            // Frozen: block 0 (convolution and batch norm) and the head.
            assert_eq!(conv(&after, 0), conv(&model, 0));
            assert_eq!(gamma(&after, 0), gamma(&model, 0));
            assert_eq!(values(after.head.weight.val()), values(model.head.weight.val()));
            assert_eq!(values(after.head.bias.val()), values(model.head.bias.val()));
            // Trained: the other blocks and the fully connected layer.
            for i in 1..3 {
                assert_ne!(conv(&after, i), conv(&model, i), "block {i} did not change");
                assert_ne!(gamma(&after, i), gamma(&model, i), "block {i} did not change");
            }
            let fc = |m: &Siamese| values(m.encoder.fc.as_ref().unwrap().bias.val());
            assert_ne!(fc(&after), fc(&model));
        }
    }

    #[test]
    fn multipliers_scale_the_learning_rate_of_their_layers() {
        let device = Device::default();
        let model = SiameseConfig::compact().init(&device);
        let policy = LayerLearningRates::new()
            .with_blocks(vec![0.5, 1.0, 1.0, 2.0])
            .with_fc(3.0)
            .policy(&model, 0.1);
        let lr = |id| policy.lr_from_param(id, None);
        let blocks = &model.encoder.blocks;
        assert!((lr(blocks[0].conv.weight.id) - 0.05).abs() < 1e-12);
        assert!((lr(blocks[0].norm.as_ref().unwrap().beta.id) - 0.05).abs() < 1e-12);
        assert!((lr(blocks[1].conv.weight.id) - 0.1).abs() < 1e-12);
        assert!((lr(blocks[3].conv.weight.id) - 0.2).abs() < 1e-12);
        assert!((lr(model.encoder.fc.as_ref().unwrap().bias.id) - 0.3).abs() < 1e-12);
        assert!((lr(model.head.weight.id) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn bad_multipliers_are_named() {
        let model = SiameseConfig::compact();
        let err = |layers: LayerLearningRates| layers.validate(&model).unwrap_err().to_string();
        assert!(LayerLearningRates::new().validate(&model).is_ok());
        assert!(LayerLearningRates::new().is_uniform());
        assert!(err(LayerLearningRates::new().with_blocks(vec![1.0; 3])).contains("4 blocks"));
        assert!(
            err(LayerLearningRates::new().with_blocks(vec![1.0, -1.0, 1.0, 1.0]))
                .contains("block 1: -1")
        );
        assert!(err(LayerLearningRates::new().with_head(f64::NAN)).contains("layer_lr.head"));
        let no_fc = SiameseConfig::new(EncoderConfig::compact().with_embedding(None));
        let message = LayerLearningRates::new()
            .with_fc(2.0)
            .validate(&no_fc)
            .unwrap_err()
            .to_string();
        assert!(message.contains("no fully connected layer"), "{message}");
    }
}
