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

/// Asks glibc's allocator to keep freed memory for reuse: blocks up to 32 MiB come from
/// the heap rather than fresh `mmap`s, and up to 1 GiB of free heap is kept instead of
/// being handed back to the system. A train step frees and re-allocates the same
/// activation tensors every step; with glibc's defaults much of it is returned to the system
/// and page-faulted in again (DAMO-YOLO-T at 512 px, batch 4, 2 threads: ≈ 36,000 page faults
/// per step with the defaults, ≈ 800 with these settings; system time over 10 steps 1.2 s →
/// 0.5 s; `GLIBC_DEFAULTS=1` on the `train_step` example compares). Meant for training and
/// benchmark processes; it does nothing on other C libraries.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; both values are within glibc's
    // documented limits (M_MMAP_THRESHOLD ≤ 32 MiB on 64-bit).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
