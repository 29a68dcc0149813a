//! Data parallelism: each step's batch split across several devices.
//!
//! One worker thread per device lives for an epoch. A step sends every worker the model and
//! its share of the batch; the worker runs forward and backward on a replica of the model on
//! its device ([`Module::fork`]: the same parameter ids, its own autodiff graph), with its
//! loss weighted by its share of the batch, and sends its gradients back, moved to the main
//! device. Summed there in device order, they are the gradients of the whole batch's mean
//! loss, and the trainer takes one optimiser step with them on the main device.
//!
//! Batch norm normalises each share with that share's statistics (as PyTorch's
//! `DataParallel` does without `SyncBatchNorm`), so a network with batch norm follows
//! slightly different gradients on several devices than on one. Its running statistics are
//! Burn's [`RunningState`](burn::module::RunningState), shared by the replicas: each worker
//! thread records its update and the next read averages them, so the running mean moves as
//! it does on one device with the whole batch. This is why the workers are threads that
//! outlive a step: the state keys updates by thread.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::Scope;

use burn::module::Module;
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;

use crate::Siamese;
use crate::data::PairBatch;

/// The number of pairs each of `devices` devices takes from a batch of `batch` pairs: equal
/// shares, the first ones one pair larger when it does not divide.
pub(crate) fn shard_sizes(batch: usize, devices: usize) -> Vec<usize> {
    (0..devices)
        .map(|i| batch / devices + usize::from(i < batch % devices))
        .collect()
}

/// What a worker computes for one step: its weighted loss and its gradients on the main
/// device, or the message of a panic.
type Outcome = std::result::Result<(f64, GradientsParams), String>;

/// One work item: the model, a share of the batch, and its weight in the batch's mean loss.
type Job = (Siamese, PairBatch, f64);

/// Worker threads, one per device, alive for the scope they were spawned in.
pub(crate) struct Replicas {
    jobs: Vec<Sender<Job>>,
    outcomes: Receiver<(usize, Outcome)>,
    devices: Vec<Device>,
}

impl Replicas {
    /// Spawns one worker per device in `scope`. `devices[0]` is the main device: the one
    /// the model lives on and the gradients are gathered on.
    pub(crate) fn spawn<'scope>(scope: &'scope Scope<'scope, '_>, devices: &[Device]) -> Self {
        let main = devices[0].clone();
        let (outcome_sender, outcomes) = channel();
        let jobs = devices
            .iter()
            .enumerate()
            .map(|(index, device)| {
                let (sender, receiver) = channel::<Job>();
                let device = device.clone().autodiff();
                let main = main.clone();
                let outcome_sender = outcome_sender.clone();
                scope.spawn(move || {
                    let loss_fn = BinaryCrossEntropyLossConfig::new()
                        .with_logits(true)
                        .init(&device);
                    for (model, batch, weight) in receiver {
                        let outcome = catch_unwind(AssertUnwindSafe(|| {
                            // The main device's replica is the model itself.
                            let replica = if index == 0 {
                                model
                            } else {
                                model.fork(&device)
                            };
                            let logits = replica.forward(batch.left, batch.right).flatten(0, 1);
                            let loss = loss_fn
                                .forward(logits, batch.targets.int())
                                .mul_scalar(weight);
                            let value = f64::from(loss.clone().into_scalar::<f32>());
                            let grads = GradientsParams::from_grads(loss.backward(), &replica);
                            let grads = if index == 0 {
                                grads
                            } else {
                                grads.to_device(&main, &replica)
                            };
                            (value, grads)
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
            devices: devices.to_vec(),
        }
    }

    /// The mean loss of a batch given as one share per device (on that device, sized by
    /// [`shard_sizes`]), and its gradients on the main device.
    ///
    /// # Errors
    /// The device and message of a worker that failed.
    pub(crate) fn gradients(
        &self,
        model: &Siamese,
        shards: Vec<PairBatch>,
    ) -> std::result::Result<(f64, GradientsParams), String> {
        assert_eq!(shards.len(), self.jobs.len(), "one share per device");
        let total: usize = shards.iter().map(|s| s.targets.dims()[0]).sum();
        for (shard, jobs) in shards.into_iter().zip(&self.jobs) {
            let weight = shard.targets.dims()[0] as f64 / total as f64;
            jobs.send((model.clone(), shard, weight))
                .map_err(|_| "a training worker stopped".to_string())?;
        }
        let mut outcomes: Vec<Option<Outcome>> = (0..self.jobs.len()).map(|_| None).collect();
        for _ in 0..self.jobs.len() {
            let (index, outcome) = self
                .outcomes
                .recv()
                .map_err(|_| "a training worker stopped".to_string())?;
            outcomes[index] = Some(outcome);
        }
        // Summed in device order, so that a run is reproducible.
        let mut loss = 0.0;
        let mut accumulator = GradientsAccumulator::<Siamese>::new();
        for (index, outcome) in outcomes.into_iter().enumerate() {
            let (value, grads) = outcome
                .expect("every worker answered")
                .map_err(|message| format!("device {:?} failed: {message}", self.devices[index]))?;
            loss += value;
            accumulator.accumulate(model, grads);
        }
        Ok((loss, accumulator.grads()))
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
    use burn::tensor::Distribution;

    #[test]
    fn shares_cover_the_batch() {
        assert_eq!(shard_sizes(128, 2), vec![64, 64]);
        assert_eq!(shard_sizes(10, 3), vec![4, 3, 3]);
        assert_eq!(shard_sizes(2, 2), vec![1, 1]);
        for (batch, devices) in [(7, 3), (128, 5), (3, 3)] {
            let sizes = shard_sizes(batch, devices);
            assert_eq!(sizes.iter().sum::<usize>(), batch);
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        }
    }

    fn values(grads: &GradientsParams, model: &Siamese) -> Vec<f32> {
        let mut all = Vec::new();
        for block in &model.encoder.blocks {
            let grad = grads
                .get::<4>(block.conv.weight.id)
                .expect("a conv gradient");
            all.extend(grad.into_data().iter::<f32>());
        }
        let grad = grads
            .get::<2>(model.head.weight.id)
            .expect("a head gradient");
        all.extend(grad.into_data().iter::<f32>());
        all
    }

    #[test]
    fn shares_on_three_replicas_give_the_gradients_of_the_whole_batch() {
        let device = crate::device::default_device().unwrap().autodiff();
        device.seed(11);
        let block = |channels| ConvBlockConfig::new(channels, 3).with_padding(1);
        // No batch norm: the whole batch's gradients are then exactly the weighted sum.
        let model = SiameseConfig::new(
            EncoderConfig::new(16, vec![block(4), block(8)]).with_embedding(Some(16)),
        )
        .init(&device);
        let (b, sizes) = (7, shard_sizes(7, 3));
        let left = Tensor::<4>::random([b, 1, 16, 16], Distribution::Default, &device);
        let right = Tensor::<4>::random([b, 1, 16, 16], Distribution::Default, &device);
        let targets = Tensor::<1>::from_data([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0], &device);

        let loss_fn = BinaryCrossEntropyLossConfig::new()
            .with_logits(true)
            .init(&device);
        let logits = model.forward(left.clone(), right.clone()).flatten(0, 1);
        let loss = loss_fn.forward(logits, targets.clone().int());
        let whole_loss = f64::from(loss.clone().into_scalar::<f32>());
        let whole = GradientsParams::from_grads(loss.backward(), &model);

        let mut start = 0;
        let shards = sizes
            .iter()
            .map(|&n| {
                let shard = PairBatch {
                    left: left.clone().narrow(0, start, n),
                    right: right.clone().narrow(0, start, n),
                    targets: targets.clone().narrow(0, start, n),
                };
                start += n;
                shard
            })
            .collect();
        // Three replicas on one device: the worker threads, the forks and the weighting are
        // those of several devices.
        let devices = vec![device.clone().without_autodiff(); 3];
        let (loss, gathered) = std::thread::scope(|scope| {
            Replicas::spawn(scope, &devices)
                .gradients(&model, shards)
                .unwrap()
        });
        assert!((loss - whole_loss).abs() < 1e-6, "{loss} vs {whole_loss}");
        let (a, b) = (values(&whole, &model), values(&gathered, &model));
        assert_eq!(a.len(), b.len());
        let scale = a.iter().fold(0f32, |m, x| m.max(x.abs()));
        let worst = a
            .iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(scale > 1e-3, "gradients too small to compare: {scale}");
        assert!(
            worst <= 1e-5 * scale,
            "gradients differ by {worst} (largest {scale})"
        );
    }
}
