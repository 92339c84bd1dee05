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
//! **How the gradients are averaged** is chosen by what the backend can do ([`Averaging`]):
//! - GPUs (`cuda:N`): burn's distributed ops. Every replica's parameters are marked
//!   distributed ([`Tensor::set_distributed`]) under their shared [`ParamId`](burn::module::ParamId),
//!   a [`DistributedContext`] runs burn's gradient-sync server over the devices, and each
//!   replica's backward pass all-reduces (mean) every parameter's gradient as soon as it is
//!   complete (NCCL's `ncclAvg` in burn 0.22's CUDA backend).
//! - CPU (`cpu` repeated): burn 0.22's flex backend has a single device and no collective
//!   operations (its `DistributedOps` are the unimplemented defaults), so CPU replicas are
//!   threads sharing that device, each with its own autodiff graph, and their gradients are
//!   averaged where they lie, in memory. This is data parallelism over threads, useful when
//!   one replica leaves cores idle, and the path the tests check. The CubeCL CPU runtime
//!   (`cube-cpu`, the CUDA build's stand-in) has no transport between devices either (its
//!   all-reduce panics), so its replicas are averaged in memory too, each gradient moved to
//!   the first device before the sum.
//!
//! burn 0.22 keeps one gradient-sync server per backend in a process, and a second
//! [`DistributedContext`] would silently share the first one's (with its device count), so a
//! process runs one collective data-parallel run at a time: a second is refused while the
//! first is open, and may start once it is dropped.
//!
//! Multi-node training is not available: burn 0.22's sync server and the NCCL communicator's
//! identifier live in one process (see the README's *Multi-node* section).

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::Device;
use burn::tensor::Tensor;
use burn::tensor::distributed::{DistributedConfig, DistributedContext, ReduceOperation};

use sagd_core::device::{DeviceError, DeviceSpec, open_replicas};

use crate::error::ModelError;
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

/// How the replicas' gradients are averaged, chosen by what the devices' backend can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Averaging {
    /// One replica: nothing to average.
    Single,
    /// burn's collectives, each gradient all-reduced (mean) during the backward pass: CUDA
    /// GPUs, the one backend of burn 0.22 with a transport between devices (NCCL, probed when
    /// the devices are opened).
    Collective,
    /// In memory, on the first device, after every replica's backward pass: flex (`cpu`) and
    /// the CubeCL CPU runtime (`cube-cpu`), whose collectives are burn's unimplemented defaults
    /// or panic.
    InMemory,
}

impl Averaging {
    /// The averaging for replicas on `devices` (the list of a run's `devices`, already
    /// checked by [`check_replicas`](sagd_core::device::check_replicas): one kind).
    pub fn for_devices(devices: &[DeviceSpec]) -> Self {
        match devices {
            [] | [_] => Self::Single,
            [DeviceSpec::Cuda(_), ..] => Self::Collective,
            _ => Self::InMemory,
        }
    }
}

/// Set while a collective data-parallel run is open in this process (see the [module](self)
/// docs: burn's gradient-sync server is one per backend and process).
static COLLECTIVE_OPEN: AtomicBool = AtomicBool::new(false);

/// This process's claim on burn's gradient-sync server, released on drop.
#[derive(Debug)]
pub struct CollectiveLease(());

impl CollectiveLease {
    /// Claims the server, or `None` while another run holds it.
    pub fn acquire() -> Option<Self> {
        COLLECTIVE_OPEN
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            .then_some(Self(()))
    }
}

impl Drop for CollectiveLease {
    fn drop(&mut self) {
        COLLECTIVE_OPEN.store(false, Ordering::Release);
    }
}

/// burn's gradient-sync server for one run, with the lease that keeps it the only one.
/// The fields drop in order: the server closes before the lease is released.
struct Collective {
    _context: DistributedContext,
    _lease: CollectiveLease,
}

/// The replicas of a run and how their gradients are averaged (see the [module](self) docs).
pub struct DataParallel {
    devices: Vec<Device>,
    averaging: Averaging,
    /// Burn's gradient-sync server, held (for its drop) for [`Averaging::Collective`] only.
    _collective: Option<Collective>,
}

impl std::fmt::Debug for DataParallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataParallel")
            .field("devices", &self.devices)
            .field("averaging", &self.averaging)
            .finish()
    }
}

impl DataParallel {
    /// Opens the replicas of a run: one per entry of `devices`, or `device` alone for an empty
    /// list ([`open_replicas`]), averaged as [`Averaging::for_devices`] says.
    ///
    /// # Errors
    /// Those of [`open_replicas`]; [`DeviceError::Unavailable`] while another collective run
    /// is open in this process.
    pub fn open(
        device: DeviceSpec,
        devices: &[DeviceSpec],
        batch: usize,
    ) -> Result<Self, ModelError> {
        let opened = open_replicas(device, devices, batch)?;
        Self::new(opened, Averaging::for_devices(devices))
    }

    /// Replicas on `devices` (at least one; the first holds the training state), averaged by
    /// `averaging` ([`Averaging::Single`] for one device whatever is asked).
    ///
    /// # Errors
    /// [`DeviceError::Unavailable`] (as a [`ModelError`]) when `averaging` is collective while
    /// another collective run is open in this process.
    ///
    /// # Panics
    /// When `devices` is empty.
    pub fn new(devices: Vec<Device>, averaging: Averaging) -> Result<Self, ModelError> {
        assert!(
            !devices.is_empty(),
            "DataParallel needs at least one device"
        );
        let averaging = if devices.len() == 1 {
            Averaging::Single
        } else {
            averaging
        };
        let collective = match averaging {
            Averaging::Collective => Some(Collective {
                _lease: CollectiveLease::acquire().ok_or_else(|| DeviceError::Unavailable {
                    device: format!("{} GPUs", devices.len()),
                    reason: "another data-parallel GPU run of this process holds burn's \
                             gradient-sync server (one per process): run one at a time"
                        .to_string(),
                })?,
                _context: DistributedContext::init(
                    devices.clone(),
                    DistributedConfig {
                        all_reduce_op: ReduceOperation::Mean,
                    },
                ),
            }),
            Averaging::Single | Averaging::InMemory => None,
        };
        Ok(Self {
            devices,
            averaging,
            _collective: collective,
        })
    }

    /// How this run's gradients are averaged.
    pub fn averaging(&self) -> Averaging {
        self.averaging
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
        let distributed = self.averaging == Averaging::Collective;
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
        let results: Vec<(Tensor<1>, Vec<Option<Tensor<1>>>)> = thread::scope(|scope| {
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
        let first_device = self.first();
        let loss = results
            .iter()
            .map(|(l, _)| l.clone().to_device(first_device))
            .reduce(|a, b| a + b)
            .map(|sum| sum.div_scalar(n as f64))
            .unwrap_or_else(|| Tensor::zeros([1], first_device));
        let mut results = results.into_iter().map(|(_, g)| g);
        let first = results.next().unwrap_or_default();
        let grads = if distributed {
            // Burn's backward pass has already replaced each replica's gradients by the mean.
            first
        } else {
            average_in_memory(first, results, self.first())
        };
        state.apply(loss, grads, lr)
    }
}

/// The mean of the replicas' gradients (`first` and `others`, each one entry per parameter,
/// `None` where a parameter got no gradient), summed on `device`.
pub fn average_in_memory(
    first: Vec<Option<Tensor<1>>>,
    others: impl IntoIterator<Item = Vec<Option<Tensor<1>>>>,
    device: &Device,
) -> Vec<Option<Tensor<1>>> {
    let mut sum = first;
    let mut n = 1usize;
    for other in others {
        n += 1;
        for (s, g) in sum.iter_mut().zip(other) {
            let g = g.map(|g| g.to_device(device));
            *s = match (s.take(), g) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
        }
    }
    sum.into_iter()
        .map(|g| g.map(|g| g.div_scalar(n as f64)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn averaging_follows_the_backend() {
        let cpu = DeviceSpec::Cpu;
        let cube = DeviceSpec::CubeCpu;
        let gpu = |i| DeviceSpec::Cuda(Some(i));
        assert_eq!(Averaging::for_devices(&[]), Averaging::Single);
        assert_eq!(Averaging::for_devices(&[gpu(1)]), Averaging::Single);
        assert_eq!(Averaging::for_devices(&[cpu, cpu]), Averaging::InMemory);
        assert_eq!(Averaging::for_devices(&[cube, cube]), Averaging::InMemory);
        assert_eq!(
            Averaging::for_devices(&[gpu(0), gpu(1)]),
            Averaging::Collective
        );
    }

    #[test]
    fn one_collective_lease_at_a_time() {
        let first = CollectiveLease::acquire().expect("free at the start");
        assert!(CollectiveLease::acquire().is_none(), "held by the first");
        drop(first);
        let again = CollectiveLease::acquire();
        assert!(again.is_some(), "released on drop");
    }

    #[test]
    fn in_memory_average_is_the_elementwise_mean() {
        let device = Device::flex();
        let t = |v: &[f32]| Some(Tensor::<1>::from_data(TensorData::from(v), &device));
        let a = vec![t(&[1.0, 2.0]), None, t(&[4.0])];
        let b = vec![t(&[3.0, 6.0]), t(&[5.0]), None];
        let c = vec![t(&[2.0, 1.0]), None, t(&[-1.0])];
        let mean = average_in_memory(a, [b, c], &device);
        let host: Vec<Option<Vec<f32>>> = mean
            .into_iter()
            .map(|g| g.map(|g| g.into_data().try_into_vec::<f32>().unwrap()))
            .collect();
        // A parameter without a gradient on some replicas is divided by the replica count
        // all the same: the missing shares are zero gradients.
        assert_eq!(
            host,
            vec![Some(vec![2.0, 3.0]), Some(vec![5.0 / 3.0]), Some(vec![1.0])]
        );
    }
}
