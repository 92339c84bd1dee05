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

use crate::error::ModelError;
use crate::nets::{Conditioning, Net};
use crate::optim::collect_grads;
use crate::train::{Batch, StepOutput, TrainState};

/// One entry of `devices`, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaDevice {
    /// A CPU replica (`cpu`): all of them share burn's one flex device.
    Cpu,
    /// GPU `index` (`cuda:index`; `cuda` is GPU 0).
    Cuda(usize),
}

impl ReplicaDevice {
    /// Parses `cpu`, `cuda` or `cuda:N`.
    ///
    /// # Errors
    /// A config error naming `devices` and the entry.
    pub fn parse(entry: &str) -> Result<Self, ModelError> {
        let bad = |expected: &str| ModelError::config("devices", entry, expected);
        match entry {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => match entry.split_once(':') {
                Some(("cuda", n)) => n.parse().map(Self::Cuda).map_err(|_| {
                    bad("cuda:N with N a GPU index (0, 1, …), as nvidia-smi numbers them")
                }),
                Some(("cpu", _)) => Err(bad(
                    "`cpu` without an index: the CPU is one device in burn's flex backend, so \
                     list `cpu` once per replica (e.g. [\"cpu\", \"cpu\"])",
                )),
                _ => Err(bad("cpu, cuda or cuda:N")),
            },
        }
    }

    /// The device kind, as the `device` key names it.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda(_) => "cuda",
        }
    }
}

/// Checks the `devices` list of a run config against its `device` and `batch`, opening no
/// device: every entry parses, all are of the kind `device` names, no GPU is listed twice,
/// and the batch divides into equal shares. An empty list (one replica on `device`) passes.
///
/// # Errors
/// A config error naming `devices` (or `batch`) and what was expected.
pub fn check_devices(device: &str, devices: &[String], batch: usize) -> Result<(), ModelError> {
    if devices.is_empty() {
        return Ok(());
    }
    let list = format!("[{}]", devices.join(", "));
    if let Some(i) = devices.iter().position(|d| d.trim().is_empty()) {
        return Err(ModelError::config(
            "devices",
            &list,
            format!(
                "no empty entries (entry {} is empty): cpu, cuda or cuda:N each",
                i + 1
            ),
        ));
    }
    let parsed = devices
        .iter()
        .map(|d| {
            ReplicaDevice::parse(d).map_err(|e| match e {
                ModelError::Config { expected, .. } => {
                    ModelError::config("devices", &list, format!("`{d}`: {expected}"))
                }
                other => other,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let kinds: std::collections::BTreeSet<&str> = parsed.iter().map(|d| d.kind()).collect();
    if kinds.len() > 1 {
        return Err(ModelError::config(
            "devices",
            &list,
            "entries of one kind (all cpu or all cuda:N): the list mixes cpu and cuda",
        ));
    }
    if let Some(other) = parsed.first().filter(|d| d.kind() != device) {
        return Err(ModelError::config(
            "devices",
            &list,
            format!(
                "devices of the kind `device` names (device = \"{device}\"), while these are \
                 {} devices; set device = \"{}\" (the --devices flag sets it)",
                other.kind(),
                other.kind()
            ),
        ));
    }
    for (i, d) in parsed.iter().enumerate() {
        if matches!(d, ReplicaDevice::Cuda(_)) && parsed[..i].contains(d) {
            return Err(ModelError::config(
                "devices",
                &list,
                format!(
                    "each GPU listed once: {} appears twice (a GPU holds one replica)",
                    devices[i]
                ),
            ));
        }
    }
    let n = devices.len();
    if !batch.is_multiple_of(n) {
        let counts: Vec<String> = (1..=batch.min(64))
            .filter(|k| batch.is_multiple_of(*k))
            .map(|k| k.to_string())
            .collect();
        let below = (batch / n) * n;
        let above = (batch / n + 1) * n;
        let batches = if below == 0 {
            format!("batch = {above}")
        } else {
            format!("batch = {below} or {above}")
        };
        return Err(ModelError::config(
            "batch",
            batch,
            format!(
                "a multiple of the {n} devices in `devices` {list}: each replica takes an equal \
                 share of the batch; use a device count that divides {batch} ({}), or, for a \
                 new run (a resumed run keeps its batch), {batches}",
                counts.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Opens the devices of a run: one per entry of `devices`, or `device` alone when the list is
/// empty. GPUs are checked to exist before any work.
///
/// # Errors
/// What [`check_devices`] refuses; [`ModelError::Device`] for a GPU index this machine does
/// not have, or a build without CUDA.
pub fn replica_devices(
    device: &str,
    devices: &[String],
    batch: usize,
) -> Result<Vec<Device>, ModelError> {
    check_devices(device, devices, batch)?;
    if devices.is_empty() {
        return Ok(vec![crate::device::device_for(device)?]);
    }
    let parsed = devices
        .iter()
        .map(|d| ReplicaDevice::parse(d))
        .collect::<Result<Vec<_>, _>>()?;
    // GPUs are checked once: `device_for` reports a build without CUDA or a missing driver,
    // then the probe counts the GPUs the indices must lie below.
    let gpus = if parsed.iter().any(|d| matches!(d, ReplicaDevice::Cuda(_))) {
        crate::device::device_for("cuda")?;
        crate::device::probe_cuda()?
    } else {
        0
    };
    parsed
        .into_iter()
        .zip(devices)
        .map(|(parsed, entry)| match parsed {
            ReplicaDevice::Cpu => Ok(Device::flex()),
            ReplicaDevice::Cuda(index) if index < gpus => Ok(gpu(index)),
            ReplicaDevice::Cuda(_) => Err(ModelError::Device {
                device: entry.clone(),
                reason: format!(
                    "this machine has {gpus} GPU{} (cuda:0 to cuda:{})",
                    if gpus == 1 { "" } else { "s" },
                    gpus.saturating_sub(1)
                ),
            }),
        })
        .collect()
}

#[cfg(feature = "cuda")]
fn gpu(index: usize) -> Device {
    Device::cuda(index)
}

#[cfg(not(feature = "cuda"))]
fn gpu(_index: usize) -> Device {
    unreachable!("device_for(\"cuda\") refuses builds without the cuda feature")
}

impl Batch {
    /// The batch cut into `n` equal contiguous shares along the batch dimension (`n` divides
    /// the batch size; [`check_devices`] makes sure of it).
    pub fn split(&self, n: usize) -> Vec<Batch> {
        let size = self.cond.index.len() / n;
        (0..n)
            .map(|r| {
                let rows = r * size..(r + 1) * size;
                Batch {
                    x_t: self.x_t.clone().narrow(0, rows.start, size),
                    target: self.target.clone().narrow(0, rows.start, size),
                    cond: Conditioning {
                        index: self.cond.index[rows.clone()].to_vec(),
                        time: self.cond.time[rows].to_vec(),
                    },
                }
            })
            .collect()
    }

    /// The batch on `device`.
    pub fn to_device(self, device: &Device) -> Batch {
        Batch {
            x_t: self.x_t.to_device(device),
            target: self.target.to_device(device),
            cond: self.cond,
        }
    }
}

/// The mean squared error of `net` on `batch` and the gradient of every parameter (in
/// visiting order; `None` for a parameter the loss does not reach).
pub fn batch_gradients(net: &Net, batch: &Batch) -> (f64, Vec<Option<Tensor<1>>>) {
    let prediction = net.forward(batch.x_t.clone(), &batch.cond);
    let loss = (prediction - batch.target.clone()).square().mean();
    let grads = loss.backward();
    let loss = loss.into_scalar::<f32>() as f64;
    (loss, collect_grads(net, &grads))
}

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
