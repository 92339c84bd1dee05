//! Devices by name, parsed once: [`DeviceSpec`] is what a config's `device` and `devices` keys
//! and the CLI's `--device`/`--devices` flags hold, with the rules a device list must follow
//! ([`check_replicas`]), the driver probe that runs before any work on a GPU
//! ([`probe_cuda`]) and the burn device each one opens ([`DeviceSpec::open`]).
//!
//! cudarc loads the driver library lazily and panics deep inside the first kernel launch when
//! it is missing; [`probe_cuda`] loads it the same way first and reports what is wrong in one
//! line. The probe needs no CUDA at build time, so it is tested on machines without a driver.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A device, as configs and flags write it: `cpu` (burn's flex backend), `cuda` or `cuda:N`
/// (GPU N in CUDA's device order, which is nvidia-smi's when `CUDA_DEVICE_ORDER=PCI_BUS_ID`, as
/// the `sagd` binary sets it; `cuda` alone is GPU 0), `cube-cpu` (burn's CubeCL CPU runtime, the
/// GPU's kernels compiled for this CPU: the CUDA build's stand-in), `wgpu`, and the CPU
/// backends kept for measurement, `ndarray` and `libtorch` (builds with the `cube-cpu`,
/// `ndarray` or `tch` feature).
///
/// Parsed from and written as that text (`cuda` stays `cuda`, `cuda:0` stays `cuda:0`), so
/// a config round-trips unchanged.
///
/// ```
/// use sagd_core::device::DeviceSpec;
///
/// let gpu: DeviceSpec = "cuda:1".parse().unwrap();
/// assert_eq!((gpu, gpu.kind(), gpu.to_string()), (DeviceSpec::Cuda(Some(1)), "cuda", "cuda:1".into()));
/// assert!("cpu:1".parse::<DeviceSpec>().unwrap_err().to_string().contains("without an index"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceSpec {
    /// The CPU through burn's flex backend (one device however many cores).
    #[default]
    Cpu,
    /// A GPU through burn's CUDA backend: `None` written `cuda` (GPU 0), `Some(n)` `cuda:n`.
    Cuda(Option<usize>),
    /// The CPU through burn's CubeCL CPU runtime (`--features cube-cpu`): the kernels, fusion
    /// and autotuning of the CUDA build, JIT-compiled for this CPU through LLVM. One device;
    /// list it once per replica.
    CubeCpu,
    /// burn's wgpu backend (not in any build of sagd yet).
    Wgpu,
    /// burn's ndarray backend (`--features ndarray`).
    Ndarray,
    /// burn's libtorch backend (`--features tch`).
    Libtorch,
}

/// The device names [`DeviceSpec`] reads, for messages.
pub const DEVICE_NAMES: &str =
    "cpu, cuda, cuda:N (and cube-cpu, ndarray, libtorch in builds with those features)";

impl DeviceSpec {
    /// The backend's name: `cpu`, `cuda`, `cube-cpu`, `wgpu`, `ndarray` or `libtorch` (no
    /// index).
    pub fn kind(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda(_) => "cuda",
            Self::CubeCpu => "cube-cpu",
            Self::Wgpu => "wgpu",
            Self::Ndarray => "ndarray",
            Self::Libtorch => "libtorch",
        }
    }

    /// True for burn's flex CPU backend, the reference path (`cpu`).
    pub fn is_cpu(self) -> bool {
        self == Self::Cpu
    }

    /// The GPU index of a CUDA device (0 for `cuda`).
    pub fn gpu_index(self) -> Option<usize> {
        match self {
            Self::Cuda(index) => Some(index.unwrap_or(0)),
            _ => None,
        }
    }

    /// The same device without an index (`cuda:1` → `cuda`): the kind a device list shares.
    pub fn without_index(self) -> Self {
        match self {
            Self::Cuda(_) => Self::Cuda(None),
            other => other,
        }
    }

    /// The burn device, after checking that this build and machine can run it: a CUDA
    /// device needs the `cuda` feature and a driver that sees the GPU ([`probe_cuda`]).
    ///
    /// # Errors
    /// [`DeviceError::Unavailable`] naming what is missing and how to fix it.
    pub fn open(self) -> Result<Device, DeviceError> {
        Ok(open_all(&[self])?.remove(0))
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cuda(Some(index)) => write!(f, "cuda:{index}"),
            other => f.write_str(other.kind()),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;

    fn from_str(text: &str) -> Result<Self, DeviceError> {
        let bad = |expected: &str| DeviceError::invalid("device", text, expected);
        match text.trim() {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(None)),
            "cube-cpu" => Ok(Self::CubeCpu),
            "wgpu" => Ok(Self::Wgpu),
            "ndarray" => Ok(Self::Ndarray),
            "libtorch" => Ok(Self::Libtorch),
            other => match other.split_once(':') {
                Some(("cuda", n)) => n.parse().map(|n| Self::Cuda(Some(n))).map_err(|_| {
                    bad(
                        "cuda:N with N a GPU index (0, 1, …, as nvidia-smi numbers them: the \
                         sagd binary sets CUDA_DEVICE_ORDER=PCI_BUS_ID); several GPUs are a \
                         device list (--devices cuda:0,cuda:1)",
                    )
                }),
                Some(("cpu", _)) => Err(bad(
                    "`cpu` without an index: the CPU is one device in burn's flex backend, so \
                     list `cpu` once per replica (e.g. [\"cpu\", \"cpu\"])",
                )),
                Some(("cube-cpu", _)) => Err(bad(
                    "`cube-cpu` without an index: the CubeCL CPU runtime is one device, so \
                     list `cube-cpu` once per replica (e.g. --devices cube-cpu,cube-cpu)",
                )),
                _ => Err(bad(&format!("one of {DEVICE_NAMES}"))),
            },
        }
    }
}

impl TryFrom<String> for DeviceSpec {
    type Error = DeviceError;
    fn try_from(text: String) -> Result<Self, DeviceError> {
        text.parse()
    }
}

impl From<DeviceSpec> for String {
    fn from(device: DeviceSpec) -> String {
        device.to_string()
    }
}

/// A device that cannot be named or opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeviceError {
    /// A name or list that breaks the rules (the user's input: the CLI exits 2).
    #[error("invalid configuration: `{key}` = {value}: expected {expected}")]
    Invalid {
        /// The config key or flag it came from (`device`, `devices`, `batch`).
        key: String,
        /// The value as written.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// A device this build or machine cannot run (exit 1: the fix is in the build or machine).
    #[error("device `{device}` is not available: {reason}")]
    Unavailable {
        /// The device as written.
        device: String,
        /// Why, and how to fix it.
        reason: String,
    },
}

impl DeviceError {
    /// A [`DeviceError::Invalid`].
    pub fn invalid(key: &str, value: impl fmt::Display, expected: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// True for what the user wrote wrongly (not a missing backend or driver).
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Invalid { .. })
    }
}

/// Parses a `--devices` list or a config's `devices` entries, each a [`DeviceSpec`].
///
/// # Errors
/// [`DeviceError::Invalid`] naming `devices`, the whole list and the entry at fault.
pub fn parse_device_list<S: AsRef<str>>(entries: &[S]) -> Result<Vec<DeviceSpec>, DeviceError> {
    let list = format!(
        "[{}]",
        entries
            .iter()
            .map(|e| e.as_ref())
            .collect::<Vec<_>>()
            .join(", ")
    );
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let entry = entry.as_ref();
            if entry.trim().is_empty() {
                return Err(DeviceError::invalid(
                    "devices",
                    &list,
                    format!(
                        "no empty entries (entry {} is empty): cpu, cuda, cuda:N or cube-cpu each",
                        i + 1
                    ),
                ));
            }
            entry.parse::<DeviceSpec>().map_err(|e| match e {
                // A replica is a CPU or a GPU: the other backends are not named here.
                DeviceError::Invalid { expected, .. } if expected.starts_with("one of") => {
                    DeviceError::invalid(
                        "devices",
                        &list,
                        format!("cpu, cube-cpu, cuda or cuda:N for every entry, not `{entry}`"),
                    )
                }
                DeviceError::Invalid { expected, .. } => DeviceError::invalid(
                    "devices",
                    &list,
                    format!(
                        "cpu, cube-cpu, cuda or cuda:N for every entry, not `{entry}`: {expected}"
                    ),
                ),
                other => other,
            })
        })
        .collect()
}

/// The environment variable naming the device test suites run on ([`test_device`]).
pub const TEST_DEVICE_VAR: &str = "SAGD_TEST_DEVICE";

/// The device a test suite runs on: [`TEST_DEVICE_VAR`] (`SAGD_TEST_DEVICE=cube-cpu` runs the
/// device tests on the CUDA build's CPU stand-in), `cpu` when unset.
///
/// # Panics
/// When the variable names no device, or one this build or machine cannot open: a test
/// asked for a device it cannot have.
pub fn test_device() -> Device {
    let name = std::env::var(TEST_DEVICE_VAR).unwrap_or_else(|_| "cpu".to_string());
    name.parse::<DeviceSpec>()
        .and_then(DeviceSpec::open)
        .unwrap_or_else(|e| panic!("{TEST_DEVICE_VAR}={name}: {e}"))
}

/// Checks a data-parallel device list against the run's `device` and `batch`, opening no
/// device: every entry is `cpu`, `cube-cpu` or `cuda[:N]`, all of the kind `device` names, no
/// GPU listed twice, and `batch` divides into equal shares. An empty list (one replica on `device`)
/// passes. A single device must be named without an index (`--devices cuda:1` picks a GPU).
///
/// # Errors
/// [`DeviceError::Invalid`] naming `device`, `devices` or `batch` and what was expected.
pub fn check_replicas(
    device: DeviceSpec,
    devices: &[DeviceSpec],
    batch: usize,
) -> Result<(), DeviceError> {
    if let DeviceSpec::Cuda(Some(_)) = device {
        return Err(DeviceError::invalid(
            "device",
            device,
            "a device kind without an index (cpu, cuda, …); pick GPUs with `devices` \
             (--devices cuda:1)",
        ));
    }
    if devices.is_empty() {
        return Ok(());
    }
    let list = format!(
        "[{}]",
        devices
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(other) = devices.iter().find(|d| {
        !matches!(
            d,
            DeviceSpec::Cpu | DeviceSpec::Cuda(_) | DeviceSpec::CubeCpu
        )
    }) {
        return Err(DeviceError::invalid(
            "devices",
            &list,
            format!("cpu, cube-cpu, cuda or cuda:N for every entry, not `{other}`"),
        ));
    }
    let kinds: std::collections::BTreeSet<&str> = devices.iter().map(|d| d.kind()).collect();
    if kinds.len() > 1 {
        return Err(DeviceError::invalid(
            "devices",
            &list,
            format!(
                "entries of one kind (all cpu, all cube-cpu or all cuda:N): the list mixes {}",
                kinds.into_iter().collect::<Vec<_>>().join(" and ")
            ),
        ));
    }
    if devices[0].kind() != device.kind() {
        let kind = devices[0].kind();
        return Err(DeviceError::invalid(
            "devices",
            &list,
            format!(
                "devices of the kind `device` names (device = \"{device}\"), while these are \
                 {kind} devices; set device = \"{kind}\" (the --devices flag sets it)"
            ),
        ));
    }
    for (i, d) in devices.iter().enumerate() {
        let gpu = d.gpu_index();
        if gpu.is_some() && devices[..i].iter().any(|e| e.gpu_index() == gpu) {
            return Err(DeviceError::invalid(
                "devices",
                &list,
                format!("each GPU listed once: {d} appears twice (a GPU holds one replica)"),
            ));
        }
    }
    check_batch_shares(batch, devices.len(), &list)
}

/// The batch must split into `n` equal shares; the error suggests batches that do.
fn check_batch_shares(batch: usize, n: usize, list: &str) -> Result<(), DeviceError> {
    if batch.is_multiple_of(n) {
        return Ok(());
    }
    let counts: Vec<String> = (1..=batch.min(64))
        .filter(|k| batch.is_multiple_of(*k))
        .map(|k| k.to_string())
        .collect();
    let (below, above) = ((batch / n) * n, (batch / n + 1) * n);
    let batches = if below == 0 {
        format!("batch = {above}")
    } else {
        format!("batch = {below} or {above}")
    };
    Err(DeviceError::invalid(
        "batch",
        batch,
        format!(
            "a multiple of the {n} devices in `devices` {list}: each replica takes an equal \
             share of the batch; use a device count that divides {batch} ({}), or, for a new \
             run (a resumed run keeps its batch), {batches}",
            counts.join(", ")
        ),
    ))
}

/// Opens the devices of a run: one per entry of `devices`, or `device` alone when the list is
/// empty, after [`check_replicas`]. The CUDA driver is probed once for the whole list, and
/// every GPU index checked against the GPUs it sees.
///
/// # Errors
/// What [`check_replicas`] refuses; [`DeviceError::Unavailable`] for a backend this build
/// lacks, a missing driver or a GPU index this machine does not have.
pub fn open_replicas(
    device: DeviceSpec,
    devices: &[DeviceSpec],
    batch: usize,
) -> Result<Vec<Device>, DeviceError> {
    check_replicas(device, devices, batch)?;
    if devices.is_empty() {
        return open_all(&[device]);
    }
    open_all(devices)
}

/// Opens every device of `list`, probing the CUDA driver once if any is a GPU.
fn open_all(list: &[DeviceSpec]) -> Result<Vec<Device>, DeviceError> {
    let gpus = if list.iter().any(|d| d.gpu_index().is_some()) {
        cuda_available(list[0])?;
        let gpus = probe_cuda()?;
        if list.len() > 1 {
            probe_nccl()?;
        }
        gpus
    } else {
        0
    };
    list.iter()
        .map(|&device| match device {
            DeviceSpec::Cpu => Ok(Device::flex()),
            DeviceSpec::Cuda(_) => open_gpu(device, gpus),
            DeviceSpec::CubeCpu => open_cube_cpu(),
            DeviceSpec::Wgpu => Err(unavailable(
                device,
                "this build has no wgpu backend; use cpu or cuda",
            )),
            DeviceSpec::Ndarray => open_ndarray(),
            DeviceSpec::Libtorch => open_libtorch(),
        })
        .collect()
}

fn unavailable(device: DeviceSpec, reason: &str) -> DeviceError {
    DeviceError::Unavailable {
        device: device.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(feature = "cuda")]
fn cuda_available(_device: DeviceSpec) -> Result<(), DeviceError> {
    Ok(())
}

#[cfg(not(feature = "cuda"))]
fn cuda_available(_device: DeviceSpec) -> Result<(), DeviceError> {
    Err(unavailable(
        DeviceSpec::Cuda(None),
        "this build has no CUDA support; rebuild with `--features cuda` (see the README's GPU \
         section) or use `--device cpu`",
    ))
}

fn open_gpu(device: DeviceSpec, gpus: usize) -> Result<Device, DeviceError> {
    let index = device.gpu_index().unwrap_or(0);
    if index >= gpus {
        return Err(unavailable(
            device,
            &format!(
                "this machine has {gpus} GPU{} (cuda:0 to cuda:{})",
                if gpus == 1 { "" } else { "s" },
                gpus.saturating_sub(1)
            ),
        ));
    }
    Ok(cuda_device(index))
}

#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Device {
    Device::cuda(index)
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_index: usize) -> Device {
    unreachable!("cuda_available refuses builds without the cuda feature")
}

#[cfg(feature = "cube-cpu")]
fn open_cube_cpu() -> Result<Device, DeviceError> {
    Ok(Device::cpu())
}

#[cfg(not(feature = "cube-cpu"))]
fn open_cube_cpu() -> Result<Device, DeviceError> {
    Err(unavailable(
        DeviceSpec::CubeCpu,
        "this build has no CubeCL CPU runtime; run scripts/setup-cuda-build.sh once (the LLVM \
         it needs), then rebuild with `--features cube-cpu`",
    ))
}

#[cfg(feature = "ndarray")]
fn open_ndarray() -> Result<Device, DeviceError> {
    Ok(Device::ndarray())
}

#[cfg(not(feature = "ndarray"))]
fn open_ndarray() -> Result<Device, DeviceError> {
    Err(unavailable(
        DeviceSpec::Ndarray,
        "this build has no ndarray backend; rebuild with `--features ndarray`",
    ))
}

// burn-tch is deprecated in burn 0.22; kept as an opt-in backend to measure against.
#[cfg(feature = "tch")]
#[allow(deprecated)]
fn open_libtorch() -> Result<Device, DeviceError> {
    Ok(Device::libtorch())
}

#[cfg(not(feature = "tch"))]
fn open_libtorch() -> Result<Device, DeviceError> {
    Err(unavailable(
        DeviceSpec::Libtorch,
        "this build has no libtorch backend; rebuild with `--features tch` and a libtorch \
         (LIBTORCH or LIBTORCH_USE_PYTORCH=1)",
    ))
}

/// The names cudarc tries for the driver library on Linux (`libcuda.so.1` is what the driver
/// package installs; `libcuda.so` comes with the toolkit's stubs or a dev package).
pub const CUDA_DRIVER_LIBRARIES: &[&str] = &["libcuda.so.1", "libcuda.so"];

/// The fix every probe failure ends with.
const FIX: &str = "install the NVIDIA driver, or add the folder holding libcuda.so.1 to \
                   LD_LIBRARY_PATH, or run on the CPU with `--device cpu` (device = \"cpu\" in \
                   the config)";

/// Checks that the CUDA driver loads, initializes and sees at least one GPU, by loading one of
/// [`CUDA_DRIVER_LIBRARIES`]; returns the number of GPUs.
///
/// # Errors
/// [`DeviceError::Unavailable`] naming what is missing (the library, a failed `cuInit` with
/// its CUDA error code, or no GPU) and how to fix it.
pub fn probe_cuda() -> Result<usize, DeviceError> {
    probe_cuda_with(CUDA_DRIVER_LIBRARIES)
}

/// [`probe_cuda`] with the library names to try, in order.
pub fn probe_cuda_with(names: &[&str]) -> Result<usize, DeviceError> {
    let fail = |reason: String| DeviceError::Unavailable {
        device: "cuda".to_string(),
        reason: format!("{reason}; {FIX}"),
    };
    // SAFETY: loading the driver library runs its initializers, as cudarc itself would; the
    // two symbols have the driver API's documented C signatures.
    let library = names
        .iter()
        .find_map(|name| unsafe { libloading::Library::new(name) }.ok())
        .ok_or_else(|| {
            fail(format!(
                "the NVIDIA driver library was not found (tried {})",
                names.join(", ")
            ))
        })?;
    type CuInit = unsafe extern "C" fn(u32) -> i32;
    type CuDeviceGetCount = unsafe extern "C" fn(*mut i32) -> i32;
    let (init, count) = unsafe {
        let init = library.get::<CuInit>(b"cuInit\0");
        let count = library.get::<CuDeviceGetCount>(b"cuDeviceGetCount\0");
        match (init, count) {
            (Ok(i), Ok(c)) => (*i, *c),
            _ => {
                return Err(fail(
                    "the library found as libcuda has no cuInit/cuDeviceGetCount (not the NVIDIA \
                     driver)"
                        .to_string(),
                ));
            }
        }
    };
    let code = unsafe { init(0) };
    if code != 0 {
        // 100: CUDA_ERROR_NO_DEVICE, 35: CUDA_ERROR_INSUFFICIENT_DRIVER, 999: unknown.
        return Err(fail(format!(
            "the NVIDIA driver did not initialize (cuInit returned CUDA error {code})"
        )));
    }
    let mut devices = 0i32;
    let code = unsafe { count(&mut devices) };
    if code != 0 || devices <= 0 {
        return Err(fail("the NVIDIA driver sees no GPU".to_string()));
    }
    Ok(devices as usize)
}

/// The Linux names under which the CUDA bindings (cudarc 0.19's `get_lib_name_candidates`,
/// built for CUDA 13) look for NCCL, leaving out its `libnccl64_*` Windows-style names.
/// `libnccl.so.2`, the name NCCL's PyPI wheels and Debian's `libnccl2` install, is not among
/// them.
pub const NCCL_LOOKED_FOR: &[&str] = &[
    "libnccl.so",
    "libnccl.so.13",
    "libnccl.so.12",
    "libnccl.so.11",
    "libnccl.so.10",
    "libnccl.so.9",
    "libnccl.so.1",
];

/// The name NCCL's packages install it under.
pub const NCCL_INSTALLED_AS: &str = "libnccl.so.2";

/// Checks, before any work, that the CUDA bindings will find NCCL, which several GPUs need to
/// average their gradients (burn's all-reduce on CUDA). Without the check a missing NCCL is a
/// panic on a worker thread in the first step.
///
/// # Errors
/// [`DeviceError::Unavailable`] saying that NCCL was not found, or that it is installed only
/// as [`NCCL_INSTALLED_AS`], and how to fix each.
pub fn probe_nccl() -> Result<(), DeviceError> {
    probe_nccl_with(NCCL_LOOKED_FOR, NCCL_INSTALLED_AS)
}

/// [`probe_nccl`] with the names the bindings look for and the name NCCL is installed as.
pub fn probe_nccl_with(looked_for: &[&str], installed_as: &str) -> Result<(), DeviceError> {
    // SAFETY: loading the library runs its initializers, as the bindings would; nothing is
    // called.
    let loads = |name: &&str| unsafe { libloading::Library::new(name) }.is_ok();
    if looked_for.iter().any(loads) {
        return Ok(());
    }
    let reason = if loads(&installed_as) {
        format!(
            "NCCL is installed as {installed_as}, a name the CUDA bindings do not look for \
             (they try {} …): link it as {} in a folder on LD_LIBRARY_PATH (`ldconfig -p | grep \
             nccl`, or the wheel's nvidia/nccl/lib, shows where it is), or train on one GPU \
             (--devices cuda:0)",
            looked_for.first().unwrap_or(&""),
            looked_for.first().unwrap_or(&"libnccl.so"),
        )
    } else {
        format!(
            "NCCL ({installed_as}) was not found, and several GPUs average their gradients \
             through it: install it (the nvidia-nccl-cu13 wheel, nvidia-nccl-cu12 for a CUDA 12 \
             build, or Debian's libnccl2), then link its {installed_as} as {} in a folder on \
             LD_LIBRARY_PATH (the CUDA bindings look for that name), or train on one GPU \
             (--devices cuda:0)",
            looked_for.first().unwrap_or(&"libnccl.so"),
        )
    };
    Err(DeviceError::Unavailable {
        device: "cuda".to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe's three answers, with libraries this machine has (the C library) or lacks.
    #[test]
    fn the_nccl_probe_names_the_library_and_the_fix() {
        assert!(probe_nccl_with(&["libc.so.6"], "libnone-sagd.so.2").is_ok());
        let renamed = probe_nccl_with(&["libnone-sagd.so"], "libc.so.6")
            .unwrap_err()
            .to_string();
        assert!(
            renamed.contains("installed as libc.so.6, a name the CUDA bindings do not look for")
                && renamed.contains("link it as libnone-sagd.so in a folder on LD_LIBRARY_PATH"),
            "{renamed}"
        );
        let missing = probe_nccl_with(&["libnone-sagd.so"], "libnone-sagd.so.2")
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("NCCL (libnone-sagd.so.2) was not found")
                && missing.contains("link its libnone-sagd.so.2 as libnone-sagd.so")
                && missing.contains("--devices cuda:0"),
            "{missing}"
        );
    }

    fn list(entries: &[&str]) -> Vec<DeviceSpec> {
        parse_device_list(entries).unwrap()
    }

    #[test]
    fn names_round_trip() {
        for text in [
            "cpu", "cuda", "cuda:0", "cuda:3", "wgpu", "ndarray", "libtorch",
        ] {
            let device: DeviceSpec = text.parse().unwrap();
            assert_eq!(device.to_string(), text);
        }
        assert_eq!(DeviceSpec::Cuda(None).gpu_index(), Some(0));
        assert_eq!(
            DeviceSpec::Cuda(Some(2)).without_index(),
            DeviceSpec::Cuda(None)
        );
        let e = "tpu".parse::<DeviceSpec>().unwrap_err();
        assert!(
            e.is_usage() && e.to_string().contains("`device` = tpu"),
            "{e}"
        );
        let e = "cuda:x".parse::<DeviceSpec>().unwrap_err().to_string();
        assert!(e.contains("GPU index"), "{e}");
    }

    #[test]
    fn device_lists_follow_the_rules() {
        let cpu = DeviceSpec::Cpu;
        let cuda = DeviceSpec::Cuda(None);
        assert!(check_replicas(cpu, &[], 7).is_ok());
        assert!(check_replicas(cpu, &list(&["cpu", "cpu"]), 8).is_ok());
        assert!(check_replicas(cuda, &list(&["cuda:0", "cuda:1"]), 8).is_ok());
        for (device, entries, batch, part) in [
            (cpu, vec!["cpu", "cuda:0"], 8, "mixes cpu and cuda"),
            (cpu, vec!["cuda:0", "cuda:1"], 8, "set device = \"cuda\""),
            (cuda, vec!["cuda:1", "cuda:1"], 8, "cuda:1 appears twice"),
            (cuda, vec!["cuda", "cuda:0"], 8, "appears twice"),
            (cpu, vec!["cpu", "cpu", "cpu"], 32, "batch = 30 or 33"),
            (
                cpu,
                vec!["wgpu"],
                8,
                "cpu, cube-cpu, cuda or cuda:N for every entry, not `wgpu`",
            ),
        ] {
            let e = check_replicas(device, &list(&entries), batch).unwrap_err();
            assert!(
                e.is_usage() && e.to_string().contains(part),
                "{entries:?}: {e}"
            );
        }
        let e = check_replicas(DeviceSpec::Cuda(Some(1)), &[], 8).unwrap_err();
        assert!(e.to_string().contains("without an index"), "{e}");
        let e = parse_device_list(&["cpu", " "]).unwrap_err().to_string();
        assert!(e.contains("entry 2 is empty"), "{e}");
        let e = parse_device_list(&["cpu", "gpu"]).unwrap_err().to_string();
        assert!(
            e.contains("cpu, cube-cpu, cuda or cuda:N for every entry, not `gpu`"),
            "{e}"
        );
        let e = parse_device_list(&["cpu", "cpu:1"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`devices` = [cpu, cpu:1]") && e.contains("`cpu:1`"),
            "{e}"
        );
        let e = "cube-cpu:0".parse::<DeviceSpec>().unwrap_err().to_string();
        assert!(
            e.contains("`cube-cpu` without an index") && !e.contains("wgpu"),
            "{e}"
        );
    }

    #[test]
    fn the_cpu_opens_and_missing_backends_say_how_to_get_them() {
        assert_eq!(DeviceSpec::Cpu.open().unwrap(), Device::flex());
        let e = DeviceSpec::Wgpu.open().unwrap_err();
        assert!(
            !e.is_usage() && e.to_string().contains("no wgpu backend"),
            "{e}"
        );
        #[cfg(not(feature = "cuda"))]
        {
            let e = DeviceSpec::Cuda(None).open().unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
        }
    }

    #[test]
    fn a_missing_driver_is_one_line_naming_the_fix() {
        let err = probe_cuda_with(&["libsagd-no-such-driver.so.1"])
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\n'), "{err}");
        for part in [
            "`cuda` is not available",
            "libsagd-no-such-driver.so.1",
            "LD_LIBRARY_PATH",
            "--device cpu",
        ] {
            assert!(err.contains(part), "`{part}` missing from: {err}");
        }
    }

    #[test]
    fn a_library_without_the_driver_api_is_refused() {
        // The C library loads but is no driver.
        let err = probe_cuda_with(&["libc.so.6"]).unwrap_err().to_string();
        assert!(err.contains("not the NVIDIA driver"), "{err}");
    }

    #[test]
    fn the_probe_agrees_with_the_machine() {
        // With a driver installed the probe finds at least one GPU or says why not; without one
        // (CI) it fails with the one-line message: never a panic.
        match probe_cuda() {
            Ok(count) => assert!(count >= 1),
            Err(e) => assert!(e.to_string().contains("--device cpu"), "{e}"),
        }
    }
}
