//! One place picks the device.

use tch::Device;

/// Parses `cpu`, `cuda` or `cuda:N`. For CUDA, libtorch's CUDA library is loaded at run
/// time first: the binary links only the CPU library, so it also starts on hosts without a
/// GPU (ROADMAP §0).
pub fn select(name: &str) -> Result<Device, String> {
    let name = name.trim();
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    let index = match name.strip_prefix("cuda") {
        Some("") => 0,
        Some(rest) => rest.strip_prefix(':').and_then(|n| n.parse::<usize>().ok()).ok_or_else(|| format!("device {name:?}: expected cpu, cuda or cuda:N"))?,
        None => return Err(format!("device {name:?}: expected cpu, cuda or cuda:N")),
    };
    load_cuda()?;
    if !tch::Cuda::is_available() {
        return Err("CUDA was asked for but no GPU is available to libtorch".into());
    }
    let count = tch::Cuda::device_count() as usize;
    if index >= count {
        return Err(format!("device cuda:{index} does not exist ({count} GPU(s))"));
    }
    Ok(Device::Cuda(index))
}

/// `dlopen("libtorch_cuda.so", RTLD_NOW | RTLD_GLOBAL)`, which registers libtorch's CUDA
/// backend.
fn load_cuda() -> Result<(), String> {
    let name = std::ffi::CString::new("libtorch_cuda.so").expect("no NUL in a constant");
    // SAFETY: dlopen with a valid C string; the handle is kept for the process lifetime.
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns a thread-local C string or null.
        let reason = unsafe {
            let e = libc::dlerror();
            if e.is_null() { "unknown".to_string() } else { std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned() }
        };
        return Err(format!("cannot load libtorch_cuda.so ({reason}); set LD_LIBRARY_PATH to a CUDA build of torch 2.11"));
    }
    Ok(())
}
