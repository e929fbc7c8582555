//! SGD (Nesterov momentum, weight decay on convolution kernels only), the warmup + cosine
//! schedule, and the exponential moving average of the weights.

use std::collections::BTreeMap;
use tch::{nn, Tensor};

/// Learning rate at iteration `it` (0-based) of `total`: quadratic warmup from 0 over
/// `warmup` iterations (as YOLOX/DAMO-YOLO), cosine from `base` down to `base·min_ratio` at
/// the start of the last `flat` iterations, then flat.
pub fn learning_rate(it: usize, total: usize, warmup: usize, flat: usize, base: f64, min_ratio: f64) -> f64 {
    let min = base * min_ratio;
    if warmup > 0 && it < warmup {
        let t = it as f64 / warmup as f64;
        return base * t * t;
    }
    let cosine_end = total.saturating_sub(flat).max(warmup + 1);
    if it >= cosine_end {
        return min;
    }
    let t = (it - warmup) as f64 / (cosine_end - warmup) as f64;
    min + 0.5 * (base - min) * (1.0 + (std::f64::consts::PI * t).cos())
}

/// True for the variables that get weight decay: convolution kernels (4-D), not biases,
/// BatchNorm parameters or scales.
fn decays(name: &str, t: &Tensor) -> bool {
    name.ends_with("weight") && t.dim() == 4
}

/// SGD with momentum (Nesterov optional) and weight decay, as `torch.optim.SGD`; its
/// momentum buffers are plain tensors so they can be saved and restored exactly.
pub struct Sgd {
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    buffers: BTreeMap<String, Tensor>,
}

impl Sgd {
    pub fn new(momentum: f64, nesterov: bool, weight_decay: f64) -> Self {
        Sgd { momentum, nesterov, weight_decay, buffers: BTreeMap::new() }
    }

    /// One step over the trainable variables of `vs` with their current gradients, then
    /// clears the gradients.
    pub fn step(&mut self, vs: &nn::VarStore, lr: f64) {
        let variables = vs.variables();
        tch::no_grad(|| {
            for (name, mut var) in variables {
                if !var.requires_grad() {
                    continue;
                }
                let grad = var.grad();
                if !grad.defined() {
                    continue;
                }
                let mut g = grad.shallow_clone();
                if self.weight_decay != 0.0 && decays(&name, &var) {
                    g = &g + &var * self.weight_decay;
                }
                if self.momentum != 0.0 {
                    let buffer = match self.buffers.get_mut(&name) {
                        Some(b) => {
                            let _ = b.g_mul_scalar_(self.momentum).g_add_(&g);
                            b.shallow_clone()
                        }
                        None => {
                            let b = g.copy();
                            self.buffers.insert(name.clone(), b.shallow_clone());
                            b
                        }
                    };
                    g = if self.nesterov { &g + &buffer * self.momentum } else { buffer };
                }
                let _ = var.g_sub_(&(g * lr));
                let mut grad = grad;
                let _ = grad.zero_();
            }
        });
    }

    /// The momentum buffers, for checkpoints.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.buffers.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect()
    }

    /// Restores momentum buffers saved by [`Sgd::state`].
    pub fn restore(&mut self, state: Vec<(String, Tensor)>, device: tch::Device) {
        self.buffers = state.into_iter().map(|(k, v)| (k, v.to_device(device))).collect();
    }
}

/// Exponential moving average of all floating-point variables (weights and BatchNorm
/// statistics), with the ramp `decay·(1 − e^(−updates/2000))` so early weights fade fast.
pub struct Ema {
    pub decay: f64,
    pub updates: u64,
}

impl Ema {
    pub fn new(decay: f64) -> Self {
        Ema { decay, updates: 0 }
    }

    /// Copies `model` into `ema` (the start).
    pub fn reset(&mut self, ema: &nn::VarStore, model: &nn::VarStore) {
        let source = model.variables();
        tch::no_grad(|| {
            for (name, mut target) in ema.variables() {
                target.copy_(&source[&name]);
            }
        });
        self.updates = 0;
    }

    pub fn update(&mut self, ema: &nn::VarStore, model: &nn::VarStore) {
        self.updates += 1;
        let d = self.decay * (1.0 - (-(self.updates as f64) / 2000.0).exp());
        let source = model.variables();
        tch::no_grad(|| {
            for (name, mut target) in ema.variables() {
                let s = &source[&name];
                if s.is_floating_point() {
                    let _ = target.g_mul_scalar_(d).g_add_(&(s * (1.0 - d)));
                } else {
                    target.copy_(s);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_follows_a_cosine_to_the_floor() {
        let lr = |it| learning_rate(it, 1000, 100, 100, 0.01, 0.05);
        assert_eq!(lr(0), 0.0);
        assert!((lr(50) - 0.0025).abs() < 1e-12, "quadratic warmup");
        assert!((lr(100) - 0.01).abs() < 1e-12);
        assert!((lr(500) - (0.0005 + 0.5 * 0.0095)).abs() < 1e-9, "half way down the cosine");
        assert!((lr(950) - 0.0005).abs() < 1e-12, "flat at the end");
        assert!((1..1000).all(|i| lr(i) <= 0.01 + 1e-12));
    }
}
