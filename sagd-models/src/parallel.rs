//! Data-parallel training: one replica of the network per device, each computing the gradient
//! of its share of the step's batch, the shares' gradients averaged before clipping and the
//! optimizer step.
//!
//! **What stays the single-device run's.** The step's batch is drawn exactly as one device
//! draws it (same data order, levels, noise: the run's deterministic streams), on the first
//! device, and cut into `N` equal contiguous shares along the batch dimension; replica `r`
//! takes rows `[r·B/N, (r+1)·B/N)`. The loss is a mean over the batch, so the mean of the `N`
//! share gradients is the whole batch's gradient. The first replica's state (weights,
//! optimizer, the one EMA) is what checkpoints hold. A replica on another device keeps its own
//! weights and optimizer state, made from the first's at the first step, and applies the same
//! clipped update from the same averaged gradients (as PyTorch's `DistributedDataParallel`
//! does), so that only gradients cross between devices; replicas on the first's device
//! (threads sharing `cpu` or `cube-cpu`) read the first's weights. The global batch, the learning-rate
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
use crate::optim::{OptimizerState, apply_update, clip_factor};
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
    /// The replicas after the first, made from the training state at the first step.
    others: Option<Vec<Replica>>,
}

/// A replica after the first.
enum Replica {
    /// On the first's device: it reads the first's weights, so nothing is ever copied.
    SharesFirst,
    /// On a device of its own: its own weights and optimizer state, stepped with the same
    /// averaged gradients as the first's (as PyTorch's `DistributedDataParallel` does), so
    /// that after the first step only gradients cross between devices.
    Own {
        net: Box<Net>,
        optimizer: OptimizerState,
    },
}

impl Replica {
    /// The replicas on `devices[1..]`, from `state`'s weights and optimizer state.
    fn all_after_first(state: &TrainState, devices: &[Device]) -> Vec<Self> {
        let moved = |tensors: &[Tensor<1>], device: &Device| -> Vec<Tensor<1>> {
            tensors
                .iter()
                .map(|t| t.clone().to_device(device))
                .collect()
        };
        devices[1..]
            .iter()
            .map(|device| {
                if *device == devices[0] {
                    return Self::SharesFirst;
                }
                let net = state.net.clone().map(&mut Replicate {
                    device,
                    distributed: false,
                });
                let optimizer = OptimizerState {
                    step: state.optimizer.step,
                    m: moved(&state.optimizer.m, device),
                    v: moved(&state.optimizer.v, device),
                };
                Self::Own {
                    net: Box::new(net),
                    optimizer,
                }
            })
            .collect()
    }

    /// Its own weights, or `None` when it shares the first's.
    fn net(&self) -> Option<&Net> {
        match self {
            Self::SharesFirst => None,
            Self::Own { net, .. } => Some(net.as_ref()),
        }
    }
}

/// Each replica's loss (shape `[1]`) and gradients on its share of `batch`, in threads.
fn share_gradients(
    nets: Vec<Net>,
    batch: &Batch,
    devices: &[Device],
) -> Vec<(Tensor<1>, Vec<Option<Tensor<1>>>)> {
    let shares = batch.split(devices.len());
    thread::scope(|scope| {
        let workers: Vec<_> = nets
            .into_iter()
            .zip(shares)
            .zip(devices)
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
    })
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
            others: None,
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

    /// The weights of replica `r` (from 1) when it keeps its own, on a device other than the
    /// first's, after the first [`step`](Self::step); `None` otherwise (a replica on the
    /// first's device reads the first's weights).
    pub fn replica_net(&self, r: usize) -> Option<&Net> {
        self.others.as_ref()?.get(r.checked_sub(1)?)?.net()
    }

    /// One update of `state` (on the first device) on `batch` at learning rate `lr`: each
    /// replica takes its share, the shares' gradients are averaged, and every replica applies
    /// the same clipped optimizer step to its weights (the EMA is the first's alone). The loss
    /// reported is the mean of the shares' losses, the whole batch's. With one device this is
    /// [`TrainState::step`].
    ///
    /// The replicas on devices other than the first take `state`'s weights and optimizer
    /// state at the first call and from then on only gradients move between devices, so
    /// `state` must change by this method alone while `self` lives (open a new
    /// [`DataParallel`] for a state read from a checkpoint).
    ///
    /// A NaN or infinite loss or gradient leaves every replica untouched and returns the
    /// offending value in `Err`.
    pub fn step(
        &mut self,
        state: &mut TrainState,
        batch: &Batch,
        lr: f64,
    ) -> Result<StepOutput, (&'static str, f64)> {
        let n = self.devices.len();
        if n == 1 {
            return state.step(batch, lr);
        }
        let distributed = self.averaging == Averaging::Collective;
        let first_device = self.devices[0].clone();
        let others = self
            .others
            .get_or_insert_with(|| Replica::all_after_first(state, &self.devices));
        let nets: Vec<Net> = std::iter::once(&state.net)
            .chain(others.iter().map(|r| r.net().unwrap_or(&state.net)))
            .zip(&self.devices)
            .map(|(net, device)| {
                net.clone().map(&mut Replicate {
                    device,
                    distributed,
                })
            })
            .collect();
        let results = share_gradients(nets, batch, &self.devices);
        let loss = results
            .iter()
            .map(|(l, _)| l.clone().to_device(&first_device))
            .reduce(|a, b| a + b)
            .map(|sum| sum.div_scalar(n as f64))
            .unwrap_or_else(|| Tensor::zeros([1], &first_device));
        let mut grads_by_replica = results.into_iter().map(|(_, g)| g);
        let first = grads_by_replica.next().unwrap_or_default();
        let rest: Vec<_> = grads_by_replica.collect();
        // Each replica's copy of the mean gradient, on its own device.
        let (grads, others_grads): (_, Vec<_>) = if distributed {
            // Burn's backward pass has already replaced each replica's gradients by the mean.
            (first, rest)
        } else {
            let mean = average_in_memory(first, rest, &first_device);
            let copies = others
                .iter()
                .zip(&self.devices[1..])
                .map(|(replica, device)| match replica {
                    Replica::SharesFirst => Vec::new(),
                    Replica::Own { .. } => mean
                        .iter()
                        .map(|g| g.clone().map(|g| g.to_device(device)))
                        .collect(),
                })
                .collect();
            (mean, copies)
        };
        let output = state.apply(loss, grads, lr)?;
        // The first's clipping factor, recomputed from the norm it read: every replica scales
        // by the same number without reading its own gradients back.
        let scale = clip_factor(output.grad_norm, state.config.clip());
        for (replica, grads) in others.iter_mut().zip(others_grads) {
            if let Replica::Own { net, optimizer } = replica {
                **net = apply_update((**net).clone(), grads, &state.config, optimizer, lr, scale);
            }
        }
        Ok(output)
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
