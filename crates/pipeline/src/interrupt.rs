//! Signals as a stop flag: a long-running command (training, the DICOM node) stops at a safe
//! point instead of dying mid-write.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signal: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
    // A second signal of the same kind stops the process at once.
    // SAFETY: signal() is async-signal-safe.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
    }
}

/// Makes each of `signals` (SIGINT, SIGTERM) raise the returned flag instead of killing the
/// process; the second one kills it.
pub fn stop_flag(signals: &[libc::c_int]) -> &'static AtomicBool {
    for &signal in signals {
        // SAFETY: the handler only stores to an atomic and calls signal(), both async-signal-safe.
        unsafe {
            libc::signal(signal, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
        }
    }
    &STOP
}
