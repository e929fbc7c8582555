//! One place turns the device a user named into a libtorch device.

use hipfrac_core::DeviceSpec;
pub use tch::Device;

/// Why a device cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("cannot load libtorch_cuda.so ({0})")]
    CudaLibrary(String),
    #[error("CUDA was asked for but no GPU is available to libtorch")]
    NoGpu,
    #[error("device cuda:{index} does not exist ({count} GPU(s))")]
    NoSuchGpu { index: usize, count: usize },
}

/// The libtorch device for `spec`. For CUDA, libtorch's CUDA library is loaded at run time
/// first: the binary links only the CPU library, so it also starts on hosts without a GPU.
/// `auto` is CUDA when that works, else the CPU.
pub fn select(spec: DeviceSpec) -> Result<Device, DeviceError> {
    let index = match spec {
        DeviceSpec::Cpu => return Ok(Device::Cpu),
        DeviceSpec::Auto => return Ok(select(DeviceSpec::Cuda(0)).unwrap_or(Device::Cpu)),
        DeviceSpec::Cuda(index) => index,
    };
    load_cuda()?;
    if !tch::Cuda::is_available() {
        return Err(DeviceError::NoGpu);
    }
    let count = tch::Cuda::device_count() as usize;
    if index >= count {
        return Err(DeviceError::NoSuchGpu { index, count });
    }
    Ok(Device::Cuda(index))
}

/// `dlopen("libtorch_cuda.so", RTLD_NOW | RTLD_GLOBAL)`, which registers libtorch's CUDA
/// backend.
fn load_cuda() -> Result<(), DeviceError> {
    let name = std::ffi::CString::new("libtorch_cuda.so").expect("no NUL in a constant");
    // SAFETY: dlopen with a valid C string; the handle is kept for the process lifetime.
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns a thread-local C string or null.
        let reason = unsafe {
            let e = libc::dlerror();
            if e.is_null() {
                "unknown".to_string()
            } else {
                std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned()
            }
        };
        return Err(DeviceError::CudaLibrary(reason));
    }
    Ok(())
}
