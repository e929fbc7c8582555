//! Mixed precision: which floating-point type the network computes in, and the autocast
//! region that makes libtorch do so (a small C++ shim over `ATen/autocast_mode.h`; tch 0.24
//! exposes only CUDA fp16 autocast). Inside a region, convolutions and matrix products run in
//! bf16 (or fp16) while reductions, losses and anything the caller casts back stay fp32 — the
//! assigner and the losses are computed outside it, in fp32, where the official code's bf16
//! autocast breaks.

use tch::Device;

extern "C" {
    fn hipfrac_autocast_enter(device: libc::c_int, dtype: libc::c_int) -> libc::c_int;
    fn hipfrac_autocast_exit(device: libc::c_int, previous: libc::c_int);
    fn hipfrac_autocast_enabled(device: libc::c_int) -> libc::c_int;
}

pub use hipfrac_core::Precision;

fn device_code(device: Device) -> libc::c_int {
    if device.is_cuda() {
        1
    } else {
        0
    }
}

/// An autocast region on one device; leaving it (drop) restores the state before it.
pub struct Autocast {
    device: libc::c_int,
    previous: Option<libc::c_int>,
}

impl Autocast {
    /// Enters autocast for `precision` on `device` (nothing for fp32).
    pub fn enter(device: Device, precision: Precision) -> Autocast {
        let device = device_code(device);
        let dtype = match precision {
            Precision::Fp32 => return Autocast { device, previous: None },
            Precision::Bf16 => 0,
            Precision::Fp16 => 1,
        };
        // SAFETY: the shim only reads and writes libtorch's thread-local autocast state.
        let previous = unsafe { hipfrac_autocast_enter(device, dtype) };
        Autocast {
            device,
            previous: Some(previous),
        }
    }

    /// Whether autocast is on for `device` on this thread.
    pub fn is_enabled(device: Device) -> bool {
        // SAFETY: reads libtorch's thread-local autocast state.
        unsafe { hipfrac_autocast_enabled(device_code(device)) != 0 }
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        if let Some(previous) = self.previous {
            // SAFETY: restores the state `hipfrac_autocast_enter` returned, on the same thread.
            unsafe { hipfrac_autocast_exit(self.device, previous) };
        }
    }
}

/// Runs `f` in an autocast region for `precision` on `device`.
pub fn autocast<T>(device: Device, precision: Precision, f: impl FnOnce() -> T) -> T {
    let _region = Autocast::enter(device, precision);
    f()
}
