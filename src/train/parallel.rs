//! Data parallelism through Burn's multi-device optimiser step.
//!
//! With `D` devices every step takes `D` whole batches, one per device: batch `D·s + d`
//! of the epoch goes to device `d` at step `s`, whether it is a batch of pairs or a grouped
//! batch (the episode and all-pairs losses compare the images of one batch, so a batch is
//! never split). One worker thread per device lives for an epoch. A step sends every worker
//! the model and its batch; the worker runs forward and backward on a replica of the model
//! on its device ([`Module::fork`]: the same parameter ids, its own autodiff graph), its
//! loss weighted by one over the step's batches, and sends back its gradients, left on its
//! device. Burn's [`ModuleOptimizer::step_multi`](burn::optim::ModuleOptimizer::step_multi)
//! takes them as [`MultiGradientsParams`]: it sums each parameter's gradients on one of the
//! devices (chosen by the parameter's id, which spreads the optimiser's work) and updates
//! the parameter there; the trainer then brings the model back to the main device.
//!
//! The step is therefore the step of the mean of the `D` batches' losses: what one device
//! would take with a batch `D` times larger (pairs), or with `D` grouped batches a step, at
//! the same learning rate. The effective batch grows with the devices; the learning rate
//! does not change by itself.
//!
//! Batch norm normalises each batch with its own statistics, as one device does. Its
//! running statistics are Burn's [`RunningState`](burn::module::RunningState), shared by the
//! replicas: each worker thread records its update and the next read averages them. This is
//! why the workers are threads that outlive a step: the state keys updates by thread.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::Scope;

use burn::module::Module;
use burn::optim::{GradientsParams, MultiGradientsParams};
use burn::prelude::*;

use super::loss::{LossConfig, pair_loss};
use crate::Siamese;
use crate::data::{GroupBatch, PairBatch};

/// One batch of a step, on the device that trains it.
pub(crate) enum Batch {
    /// Pairs and their targets ([`LossConfig::Pairs`]).
    Pairs(Box<PairBatch>),
    /// A grouped batch ([`LossConfig::AllPairs`], [`LossConfig::Episode`]).
    Group(Box<GroupBatch>),
}

impl Batch {
    /// `model`'s loss on the batch, computed on the batch's device (the model's).
    ///
    /// # Shapes
    /// - output: `[1]`
    pub(crate) fn loss(self, model: &Siamese, loss: &LossConfig) -> Tensor<1> {
        match self {
            Batch::Pairs(batch) => {
                let PairBatch {
                    left,
                    right,
                    targets,
                } = *batch;
                let logits = model.forward(left, right).flatten(0, 1);
                pair_loss(logits, targets)
            }
            Batch::Group(batch) => {
                let GroupBatch {
                    images,
                    characters,
                    drawings,
                } = *batch;
                let embeddings = model.embed(images);
                let logits = model.head.forward_all(embeddings.clone(), embeddings);
                loss.grouped(logits, characters, drawings)
            }
        }
    }
}

/// What a worker computes for one step: its weighted loss and its gradients on its own
/// device, or the message of a panic.
type Outcome = std::result::Result<(f64, GradientsParams), String>;

/// One work item: the model, a batch on the worker's device, and its weight in the step's
/// mean loss.
type Job = (Siamese, Batch, f64);

/// Worker threads, one per device, alive for the scope they were spawned in.
pub(crate) struct Replicas {
    jobs: Vec<Sender<Job>>,
    outcomes: Receiver<(usize, Outcome)>,
    devices: Vec<Device>,
}

impl Replicas {
    /// Spawns one worker per device in `scope`, each computing `loss`. `devices[0]` is the
    /// main device: the one the model lives on between steps.
    pub(crate) fn spawn<'scope>(
        scope: &'scope Scope<'scope, '_>,
        devices: &[Device],
        loss: &LossConfig,
    ) -> Self {
        let (outcome_sender, outcomes) = channel();
        let devices: Vec<Device> = devices.iter().map(|d| d.clone().autodiff()).collect();
        let jobs = devices
            .iter()
            .enumerate()
            .map(|(index, device)| {
                let (sender, receiver) = channel::<Job>();
                let (device, loss, outcome_sender) =
                    (device.clone(), loss.clone(), outcome_sender.clone());
                scope.spawn(move || {
                    for (model, batch, weight) in receiver {
                        let outcome = catch_unwind(AssertUnwindSafe(|| {
                            // The main device's replica is the model itself.
                            let replica = if index == 0 {
                                model
                            } else {
                                model.fork(&device)
                            };
                            let loss = batch.loss(&replica, &loss).mul_scalar(weight);
                            let value = f64::from(loss.clone().into_scalar::<f32>());
                            (
                                value,
                                GradientsParams::from_grads(loss.backward(), &replica),
                            )
                        }))
                        .map_err(|payload| panic_message(payload.as_ref()));
                        if outcome_sender.send((index, outcome)).is_err() {
                            return;
                        }
                    }
                });
                sender
            })
            .collect();
        Self {
            jobs,
            outcomes,
            devices,
        }
    }

    /// The mean loss of a step's batches (batch `i` on device `i`; fewer batches than
    /// devices leave the last devices idle) and each device's gradients of it, for
    /// [`ModuleOptimizer::step_multi`](burn::optim::ModuleOptimizer::step_multi).
    ///
    /// # Errors
    /// The device and message of a worker that failed.
    pub(crate) fn gradients(
        &self,
        model: &Siamese,
        batches: Vec<Batch>,
    ) -> std::result::Result<(f64, MultiGradientsParams), String> {
        assert!(
            !batches.is_empty() && batches.len() <= self.jobs.len(),
            "one batch per device at most"
        );
        let weight = 1.0 / batches.len() as f64;
        let n = batches.len();
        for (batch, jobs) in batches.into_iter().zip(&self.jobs) {
            jobs.send((model.clone(), batch, weight))
                .map_err(|_| "a training worker stopped".to_string())?;
        }
        let mut outcomes: Vec<Option<Outcome>> = (0..n).map(|_| None).collect();
        for _ in 0..n {
            let (index, outcome) = self
                .outcomes
                .recv()
                .map_err(|_| "a training worker stopped".to_string())?;
            outcomes[index] = Some(outcome);
        }
        // In device order, so that a run is reproducible.
        let mut loss = 0.0;
        let mut grads = MultiGradientsParams::default();
        for (index, outcome) in outcomes.into_iter().enumerate() {
            let (value, device_grads) = outcome
                .expect("every worker answered")
                .map_err(|message| format!("device {:?} failed: {message}", self.devices[index]))?;
            loss += value;
            grads
                .grads
                .push((device_grads, self.devices[index].clone()));
        }
        Ok((loss, grads))
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EncoderConfig;
    use crate::SiameseConfig;
    use crate::model::ConvBlockConfig;
    use burn::optim::{AdamConfig, GradientsAccumulator};
    use burn::tensor::Distribution;

    fn values(model: &Siamese) -> Vec<f32> {
        let mut all = Vec::new();
        for block in &model.encoder.blocks {
            all.extend(block.conv.weight.val().into_data().iter::<f32>());
        }
        all.extend(model.head.weight.val().into_data().iter::<f32>());
        all
    }

    fn grouped(device: &Device, characters: usize) -> Batch {
        let images =
            Tensor::<4>::random([2 * characters, 1, 16, 16], Distribution::Default, device);
        Batch::Group(Box::new(GroupBatch {
            images,
            characters,
            drawings: 2,
        }))
    }

    /// Three grouped batches on three replicas and Burn's multi-device step give the step
    /// one device takes on the mean of the three batches' losses, gradients accumulated.
    #[test]
    fn whole_batches_on_three_replicas_step_as_one_device_on_their_mean() {
        let device = crate::device::default_device().unwrap().autodiff();
        device.seed(11);
        let block = |channels| ConvBlockConfig::new(channels, 3).with_padding(1);
        // No batch norm: the mean loss's gradients are then exactly the weighted sum.
        let model = SiameseConfig::new(
            EncoderConfig::new(16, vec![block(4), block(8)]).with_embedding(Some(16)),
        )
        .init(&device);
        let loss = LossConfig::episode(4);
        let batches = || (0..3).map(|_| grouped(&device, 4)).collect::<Vec<_>>();
        device.seed(12);
        let a = batches();
        device.seed(12);
        let b = batches();
        let optimizer = || AdamConfig::new().init();

        let mut accumulator = GradientsAccumulator::<Siamese>::new();
        let mut whole_loss = 0.0;
        for batch in a {
            let value = batch.loss(&model, &loss).div_scalar(3.0);
            whole_loss += f64::from(value.clone().into_scalar::<f32>());
            accumulator.accumulate(
                &model,
                GradientsParams::from_grads(value.backward(), &model),
            );
        }
        let one = optimizer().step(1e-2, model.clone(), accumulator.grads());

        // Three replicas on one device: the worker threads, the forks, the weighting and
        // Burn's gathering are those of several devices.
        let devices = vec![device.clone().without_autodiff(); 3];
        let (value, grads) = std::thread::scope(|scope| {
            Replicas::spawn(scope, &devices, &loss)
                .gradients(&model, b)
                .unwrap()
        });
        assert_eq!(grads.grads.len(), 3);
        let three = optimizer()
            .step_multi(1e-2, model.clone(), grads)
            .fork(&device);
        assert!((value - whole_loss).abs() < 1e-5, "{value} vs {whole_loss}");
        let three_model = three.clone();
        let (start, one, three) = (values(&model), values(&one), values(&three));
        let moved = start
            .iter()
            .zip(&one)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        let worst = one
            .iter()
            .zip(&three)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(moved > 1e-3, "the step barely moved the weights: {moved}");
        assert!(worst <= 1e-5, "the steps differ by {worst} (moved {moved})");
        // The stepped model trains on: its replicas track their parameters.
        let (_, grads) = std::thread::scope(|scope| {
            Replicas::spawn(scope, &devices, &loss)
                .gradients(&three_model, batches())
                .unwrap()
        });
        assert_eq!(grads.grads.len(), 3);
    }
}
