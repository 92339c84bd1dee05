//! Training devices by name, and a check that a CUDA device can actually run before any work.
//!
//! cudarc loads the driver library lazily and panics deep inside the first kernel launch when
//! it is missing; [`probe_cuda`] loads it the same way first and reports what is wrong in one
//! line. The probe needs no CUDA at build time, so it is tested on machines without a driver.

use burn::tensor::Device;

use crate::error::ModelError;

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
/// [`ModelError::Device`] naming what is missing (the library, a failed `cuInit` with its CUDA
/// error code, or no GPU) and how to fix it.
pub fn probe_cuda() -> Result<usize, ModelError> {
    probe_cuda_with(CUDA_DRIVER_LIBRARIES)
}

/// [`probe_cuda`] with the library names to try, in order.
pub fn probe_cuda_with(names: &[&str]) -> Result<usize, ModelError> {
    let fail = |reason: String| ModelError::Device {
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

/// The burn device of a config's `device` name: `cpu` (burn's flex backend), `cuda` in builds
/// with the `cuda` feature (checked with [`probe_cuda`]), and the other CPU backends `ndarray`
/// and `libtorch` in builds with the `ndarray` or `tch` feature.
///
/// # Errors
/// [`ModelError::Device`] for a device this build or machine cannot run, and a config error
/// for an unknown name.
pub fn device_for(name: &str) -> Result<Device, ModelError> {
    match name {
        "cpu" => Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        "ndarray" => Ok(Device::ndarray()),
        // burn-tch is deprecated in burn 0.22; kept as an opt-in backend to measure against.
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        "libtorch" => Ok(Device::libtorch()),
        #[cfg(not(feature = "ndarray"))]
        "ndarray" => Err(ModelError::Device {
            device: name.to_string(),
            reason: "this build has no ndarray backend; rebuild with `--features ndarray`"
                .to_string(),
        }),
        #[cfg(not(feature = "tch"))]
        "libtorch" => Err(ModelError::Device {
            device: name.to_string(),
            reason: "this build has no libtorch backend; rebuild with `--features tch` and a \
                     libtorch (LIBTORCH or LIBTORCH_USE_PYTORCH=1)"
                .to_string(),
        }),
        #[cfg(feature = "cuda")]
        "cuda" => {
            probe_cuda()?;
            Ok(Device::cuda(0))
        }
        #[cfg(not(feature = "cuda"))]
        "cuda" => Err(ModelError::Device {
            device: name.to_string(),
            reason: "this build has no CUDA support; rebuild with `--features cuda` (see the \
                     README's GPU section) or use `--device cpu`"
                .to_string(),
        }),
        "wgpu" => Err(ModelError::Device {
            device: name.to_string(),
            reason: "this build has no wgpu backend; use cpu or cuda".to_string(),
        }),
        other => Err(ModelError::config(
            "device",
            other,
            "one of cpu, cuda, wgpu (and ndarray, libtorch in builds with those features)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
