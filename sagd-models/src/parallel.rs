//! Data-parallel training: one replica of the network per device, each computing the gradient
//! of its share of the step's batch, the shares' gradients averaged before clipping and the
//! optimizer step.
//!
//! **What stays the single-device run's.** The step's batch is drawn exactly as one device
//! draws it (same data order, levels, noise: the run's deterministic streams), on the first
//! device, and cut into `N` equal contiguous shares along the batch dimension; replica `r`
//! takes rows `[r·B/N, (r+1)·B/N)`. The loss is a mean over the batch, so the mean of the `N`
//! share gradients is the whole batch's gradient. Clipping, the optimizer step and the one EMA
//! then run once, on the first device, whose state is what checkpoints hold; the other
//! replicas take its updated weights at the next step. The global batch, the learning-rate
//! schedule and every random draw are therefore the single-device run's, and a run moves
//! between 1 and `N` devices on resume: the weights agree with the single-device run's to
//! float rounding (the order of the sums differs), not bit for bit.
//!
//! **How the gradients are averaged.**
//! - GPUs (`cuda:N`): burn's distributed ops. Every replica's parameters are marked
//!   distributed ([`Tensor::set_distributed`]) under their shared [`ParamId`](burn::module::ParamId),
//!   a [`DistributedContext`] runs burn's gradient-sync server over the devices, and each
//!   replica's backward pass all-reduces (mean) every parameter's gradient as soon as it is
//!   complete (NCCL's `ncclAvg` in burn 0.22's CUDA backend).
//! - CPU (`cpu` repeated): burn 0.22's flex backend has a single device and no collective
//!   operations (its `DistributedOps` are the unimplemented defaults), so CPU replicas are
//!   threads sharing that device, each with its own autodiff graph, and their gradients are
//!   averaged where they lie, in memory. This is data parallelism over threads, useful when
//!   one replica leaves cores idle, and the path the tests check.
//!
//! Multi-node training is not available: burn 0.22's sync server and the NCCL communicator's
//! identifier live in one process (see the README's *Multi-node* section).

use std::thread;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::Device;
use burn::tensor::Tensor;
use burn::tensor::distributed::{DistributedConfig, DistributedContext, ReduceOperation};

use crate::loss::{Batch, batch_gradients};
use crate::nets::Net;
use crate::train::{StepOutput, TrainState};

/// Makes a replica of a network on `device`: every parameter a fresh autodiff leaf there (so
/// each replica's graph is its own, even on a shared device), marked distributed under its
/// [`ParamId`](burn::module::ParamId) when burn's collectives average the gradients.
struct Replicate<'a> {
    device: &'a Device,
    distributed: bool,
}

impl ModuleMapper for Replicate<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let value = Tensor::from_inner(tensor.inner().to_device(self.device)).require_grad();
        let value = if self.distributed {
            value.set_distributed(id)
        } else {
            value
        };
        Param::from_mapped_value(id, value, mapper)
    }
}

/// The replicas of a run and how their gradients are averaged (see the [module](self) docs).
pub struct DataParallel {
    devices: Vec<Device>,
    /// Burn's gradient-sync server, for devices whose backend has collectives (GPUs). `None`
    /// for one device, and for CPU replicas, averaged in memory.
    collective: Option<DistributedContext>,
}

impl std::fmt::Debug for DataParallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataParallel")
            .field("devices", &self.devices)
            .field("collective", &self.collective.is_some())
            .finish()
    }
}

impl DataParallel {
    /// Replicas on `devices` (at least one; the first holds the training state). GPUs average
    /// through burn's collectives, CPU replicas in memory.
    pub fn new(devices: Vec<Device>) -> Self {
        assert!(
            !devices.is_empty(),
            "DataParallel needs at least one device"
        );
        let on_cpu = devices.iter().all(|d| *d == Device::flex());
        let collective = (devices.len() > 1 && !on_cpu).then(|| {
            DistributedContext::init(
                devices.clone(),
                DistributedConfig {
                    all_reduce_op: ReduceOperation::Mean,
                },
            )
        });
        Self {
            devices,
            collective,
        }
    }

    /// Number of replicas.
    pub fn replicas(&self) -> usize {
        self.devices.len()
    }

    /// The first device, which holds the training state and draws the batches.
    pub fn first(&self) -> &Device {
        &self.devices[0]
    }

    /// One update of `state` (on the first device) on `batch` at learning rate `lr`: each
    /// replica takes its share, the shares' gradients are averaged, and the state is clipped,
    /// stepped and its EMA updated once. The loss reported is the mean of the shares' losses,
    /// the whole batch's. With one device this is [`TrainState::step`].
    ///
    /// A NaN or infinite loss or gradient leaves the state untouched and returns the
    /// offending value in `Err`.
    pub fn step(
        &self,
        state: &mut TrainState,
        batch: &Batch,
        lr: f64,
    ) -> Result<StepOutput, (&'static str, f64)> {
        let n = self.devices.len();
        if n == 1 {
            return state.step(batch, lr);
        }
        let distributed = self.collective.is_some();
        let replicas: Vec<Net> = self
            .devices
            .iter()
            .map(|device| {
                state.net.clone().map(&mut Replicate {
                    device,
                    distributed,
                })
            })
            .collect();
        let shares = batch.split(n);
        let results: Vec<(f64, Vec<Option<Tensor<1>>>)> = thread::scope(|scope| {
            let workers: Vec<_> = replicas
                .into_iter()
                .zip(shares)
                .zip(&self.devices)
                .map(|((net, share), device)| {
                    scope.spawn(move || batch_gradients(&net, &share.to_device(device)))
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        let loss = results.iter().map(|(l, _)| l).sum::<f64>() / n as f64;
        let mut results = results.into_iter().map(|(_, g)| g);
        let first = results.next().unwrap_or_default();
        let grads = if distributed {
            // Burn's backward pass has already replaced each replica's gradients by the mean.
            first
        } else {
            let mut sum = first;
            for other in results {
                for (s, g) in sum.iter_mut().zip(other) {
                    *s = match (s.take(), g) {
                        (Some(a), Some(b)) => Some(a + b),
                        (a, b) => a.or(b),
                    };
                }
            }
            sum.into_iter()
                .map(|g| g.map(|g| g.div_scalar(n as f64)))
                .collect()
        };
        state.apply(loss, grads, lr)
    }
}
