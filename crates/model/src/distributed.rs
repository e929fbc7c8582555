//! Data-parallel training over libtorch's c10d (the engine torch.distributed and torchrun
//! drive): a TCPStore rendezvous and ProcessGroupGloo collectives, through the C++ shim
//! `csrc/distributed.cpp`. Processes follow torchrun's conventions ([`ProcessGroup::from_env`]).
//!
//! Collectives run on CPU tensors: CUDA tensors are copied to the host and back (NCCL, the
//! faster path between GPUs, is not built: the torch wheel ships no NCCL headers).

use std::ffi::{c_char, c_int, c_void, CString};
use std::ptr::NonNull;
use std::time::Duration;
use tch::{Device, Kind, Tensor};

extern "C" {
    fn hipfrac_gloo_available() -> c_int;
    fn hipfrac_gloo_new(
        host: *const c_char,
        port: c_int,
        rank: c_int,
        world: c_int,
        timeout_ms: i64,
        error: *mut c_char,
        capacity: usize,
    ) -> *mut c_void;
    fn hipfrac_gloo_all_reduce_sum(
        group: *mut c_void,
        tensor: *mut c_void,
        error: *mut c_char,
        capacity: usize,
    ) -> c_int;
    fn hipfrac_gloo_broadcast(
        group: *mut c_void,
        tensor: *mut c_void,
        root: c_int,
        error: *mut c_char,
        capacity: usize,
    ) -> c_int;
    fn hipfrac_gloo_free(group: *mut c_void);
}

/// Whether this build has the Gloo process group (it needs the Gloo headers at build time).
pub fn available() -> bool {
    // SAFETY: reads a constant.
    unsafe { hipfrac_gloo_available() != 0 }
}

/// One process's membership of a group of `world` training processes.
pub struct ProcessGroup {
    handle: NonNull<c_void>,
    pub rank: usize,
    pub world: usize,
}

// SAFETY: the c10d process group is used from one thread at a time (the trainer's); libtorch's
// ProcessGroupGloo may be driven from any thread.
unsafe impl Send for ProcessGroup {}

/// Why a group could not be formed or a collective failed.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    #[error("{name} = {value:?} is not a valid {what}")]
    Env {
        name: &'static str,
        value: String,
        what: &'static str,
    },
    #[error("RANK {rank} must be below WORLD_SIZE {world}")]
    Rank { rank: usize, world: usize },
    #[error("cannot join the process group at {address} as rank {rank} of {world}: {message}")]
    Join {
        address: String,
        rank: usize,
        world: usize,
        message: String,
    },
    #[error("{what} failed: {message}")]
    Collective { what: &'static str, message: String },
}

const ERROR_CAPACITY: usize = 1024;

fn message(buffer: &[u8]) -> String {
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).trim().to_string()
}

impl ProcessGroup {
    /// Joins a Gloo group: rank 0 serves the rendezvous at `host:port`, every rank waits up to
    /// `timeout` for all `world` to arrive.
    pub fn gloo(
        host: &str,
        port: u16,
        rank: usize,
        world: usize,
        timeout: Duration,
    ) -> Result<ProcessGroup, DistError> {
        let address = format!("{host}:{port}");
        let join = |message: String| DistError::Join {
            address: address.clone(),
            rank,
            world,
            message,
        };
        if rank >= world {
            return Err(DistError::Rank { rank, world });
        }
        let host_c = CString::new(host).map_err(|_| join("the address holds a NUL byte".into()))?;
        let mut error = vec![0u8; ERROR_CAPACITY];
        // SAFETY: the strings outlive the call; the error buffer's capacity is passed with it.
        let handle = unsafe {
            hipfrac_gloo_new(
                host_c.as_ptr(),
                port as c_int,
                rank as c_int,
                world as c_int,
                timeout.as_millis() as i64,
                error.as_mut_ptr().cast(),
                error.len(),
            )
        };
        let handle = NonNull::new(handle).ok_or_else(|| join(message(&error)))?;
        Ok(ProcessGroup { handle, rank, world })
    }

    /// The group torchrun describes in the environment: RANK, WORLD_SIZE, MASTER_ADDR
    /// (default 127.0.0.1) and MASTER_PORT (default 29500); `None` when WORLD_SIZE is unset or
    /// 1 (a single process). HIPFRAC_DIST_TIMEOUT_S bounds the rendezvous (default 300 s).
    pub fn from_env() -> Result<Option<ProcessGroup>, DistError> {
        let var = |name: &'static str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let number = |name: &'static str, what: &'static str| -> Result<Option<usize>, DistError> {
            var(name)
                .map(|v| {
                    v.trim().parse::<usize>().map_err(|_| DistError::Env {
                        name,
                        value: v.clone(),
                        what,
                    })
                })
                .transpose()
        };
        let world = number("WORLD_SIZE", "number of processes")?.unwrap_or(1);
        if world <= 1 {
            return Ok(None);
        }
        let rank = number("RANK", "process rank")?.ok_or(DistError::Env {
            name: "RANK",
            value: String::new(),
            what: "process rank (WORLD_SIZE is set)",
        })?;
        let host = var("MASTER_ADDR").unwrap_or_else(|| "127.0.0.1".into());
        let port = var("MASTER_PORT").unwrap_or_else(|| "29500".into());
        let port: u16 = port.trim().parse().map_err(|_| DistError::Env {
            name: "MASTER_PORT",
            value: port.clone(),
            what: "port",
        })?;
        let timeout = number("HIPFRAC_DIST_TIMEOUT_S", "number of seconds")?.unwrap_or(300) as u64;
        ProcessGroup::gloo(&host, port, rank, world, Duration::from_secs(timeout)).map(Some)
    }

    /// Rank 0 of the group writes checkpoints and logs.
    pub fn is_leader(&self) -> bool {
        self.rank == 0
    }

    /// Replaces each tensor by its mean over the ranks (one collective for all of them).
    pub fn all_reduce_mean(&self, tensors: &[Tensor]) -> Result<(), DistError> {
        self.on_flat(tensors, |group, flat| {
            group.call(
                "all-reduce",
                |g, t, e, c| unsafe { hipfrac_gloo_all_reduce_sum(g, t, e, c) },
                flat,
            )?;
            let _ = flat.g_div_scalar_(group.world as f64);
            Ok(())
        })
    }

    /// Copies rank `root`'s tensors into every rank's.
    pub fn broadcast(&self, tensors: &[Tensor], root: usize) -> Result<(), DistError> {
        self.on_flat(tensors, |group, flat| {
            group.call(
                "broadcast",
                |g, t, e, c| unsafe { hipfrac_gloo_broadcast(g, t, root as c_int, e, c) },
                flat,
            )
        })
    }

    /// Whether any rank says yes (an all-reduce of one flag).
    pub fn any(&self, flag: bool) -> Result<bool, DistError> {
        let mut t = Tensor::from_slice(&[f32::from(u8::from(flag))]);
        self.call(
            "all-reduce",
            |g, t, e, c| unsafe { hipfrac_gloo_all_reduce_sum(g, t, e, c) },
            &mut t,
        )?;
        Ok(t.double_value(&[0]) > 0.0)
    }

    /// Runs `f` on one contiguous fp32 CPU buffer holding all `tensors`, then copies the
    /// result back into each (on its own device and kind).
    fn on_flat(
        &self,
        tensors: &[Tensor],
        f: impl FnOnce(&Self, &mut Tensor) -> Result<(), DistError>,
    ) -> Result<(), DistError> {
        if tensors.is_empty() {
            return Ok(());
        }
        tch::no_grad(|| {
            let parts: Vec<Tensor> = tensors
                .iter()
                .map(|t| t.detach().to_device(Device::Cpu).to_kind(Kind::Float).reshape([-1]))
                .collect();
            let mut flat = Tensor::cat(&parts, 0).contiguous();
            f(self, &mut flat)?;
            let mut offset = 0i64;
            for t in tensors {
                let n = t.numel() as i64;
                let part = flat
                    .narrow(0, offset, n)
                    .view(t.size().as_slice())
                    .to_kind(t.kind())
                    .to_device(t.device());
                t.shallow_clone().copy_(&part);
                offset += n;
            }
            Ok(())
        })
    }

    fn call(
        &self,
        what: &'static str,
        op: impl FnOnce(*mut c_void, *mut c_void, *mut c_char, usize) -> c_int,
        tensor: &mut Tensor,
    ) -> Result<(), DistError> {
        let mut error = vec![0u8; ERROR_CAPACITY];
        // The op receives the group handle, the `at::Tensor*` behind `tensor` (a contiguous
        // CPU tensor that outlives the call) and the error buffer with its capacity.
        let status = op(
            self.handle.as_ptr(),
            tensor.as_mut_ptr().cast(),
            error.as_mut_ptr().cast(),
            error.len(),
        );
        if status == 0 {
            Ok(())
        } else {
            Err(DistError::Collective {
                what,
                message: message(&error),
            })
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: the handle came from hipfrac_gloo_new and is freed once.
        unsafe { hipfrac_gloo_free(self.handle.as_ptr()) };
    }
}
