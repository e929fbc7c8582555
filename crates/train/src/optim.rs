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
        Sgd {
            momentum,
            nesterov,
            weight_decay,
            buffers: BTreeMap::new(),
        }
    }

    /// One step over the trainable variables of `vs` with their current gradients, then
    /// clears the gradients.
    pub fn step(&mut self, vs: &nn::VarStore, lr: f64) {
        tch::no_grad(|| {
            for (name, mut var) in vs.variables() {
                if !var.requires_grad() {
                    continue;
                }
                let mut grad = var.grad();
                if !grad.defined() {
                    continue;
                }
                self.update(&name, &mut var, &mut grad, lr);
                let _ = grad.zero_();
            }
        });
    }

    /// Back-propagates `loss` and takes one step. The gradients come back as new tensors
    /// (as `torch.autograd.grad`) instead of being added into each variable's `.grad`, so no
    /// gradient is zeroed or accumulated: the same numbers as `loss.backward()` + [`Sgd::step`]
    /// with less memory traffic.
    pub fn backward_step(&mut self, vs: &nn::VarStore, loss: &Tensor, lr: f64) {
        let Ok(()) = self.backward_step_with(vs, loss, lr, |_| Ok::<(), std::convert::Infallible>(()));
    }

    /// [`Sgd::backward_step`] with `reduce` applied to the gradients before the update (in
    /// data-parallel training: their mean over the processes). A failed `reduce` leaves the
    /// weights untouched.
    pub fn backward_step_with<E>(
        &mut self,
        vs: &nn::VarStore,
        loss: &Tensor,
        lr: f64,
        reduce: impl FnOnce(&[Tensor]) -> Result<(), E>,
    ) -> Result<(), E> {
        // In name order: every process of a data-parallel group lists the gradients alike.
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, v)| v.requires_grad()).collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let (names, mut vars): (Vec<String>, Vec<Tensor>) = named.into_iter().unzip();
        let grads = Tensor::run_backward(&[loss], &vars, false, false);
        let defined: Vec<Tensor> = grads
            .iter()
            .filter(|g| g.defined())
            .map(|g| g.shallow_clone())
            .collect();
        reduce(&defined)?;
        tch::no_grad(|| {
            for ((name, var), mut grad) in names.iter().zip(vars.iter_mut()).zip(grads) {
                if grad.defined() {
                    self.update(name, var, &mut grad, lr);
                }
            }
        });
        Ok(())
    }

    /// The update of one variable; `grad` serves as the work buffer. The arithmetic is
    /// torch.optim.SGD's, in the same order, with one temporary per term.
    fn update(&mut self, name: &str, var: &mut Tensor, grad: &mut Tensor, lr: f64) {
        if self.weight_decay != 0.0 && decays(name, var) {
            let _ = grad.g_add_(&(&*var * self.weight_decay));
        }
        if self.momentum != 0.0 {
            let buffer = match self.buffers.get_mut(name) {
                Some(b) => {
                    let _ = b.g_mul_scalar_(self.momentum).g_add_(grad);
                    b.shallow_clone()
                }
                None => {
                    let b = grad.copy();
                    self.buffers.insert(name.to_string(), b.shallow_clone());
                    b
                }
            };
            if !self.nesterov {
                let _ = var.g_sub_(&(&buffer * lr));
                return;
            }
            let _ = grad.g_add_(&(&buffer * self.momentum));
        }
        let _ = var.g_sub_(&grad.g_mul_scalar_(lr));
    }

    /// The momentum buffers, for checkpoints (contiguous copies, as files store them).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.buffers.iter().map(|(k, v)| (k.clone(), v.contiguous())).collect()
    }

    /// Restores momentum buffers saved by [`Sgd::state`], kernels laid out channels-last
    /// like the variables they follow.
    pub fn restore(&mut self, state: Vec<(String, Tensor)>, device: tch::Device) {
        self.buffers = state
            .into_iter()
            .map(|(k, v)| {
                let mut v = v.to_device(device);
                hipfrac_model::layers::make_channels_last(&mut v);
                (k, v)
            })
            .collect();
    }
}

/// Exponential moving average of all floating-point variables (weights and BatchNorm
/// statistics), with the ramp `decay·(1 − e^(−updates/ramp))` so early weights fade fast.
pub struct Ema {
    pub decay: f64,
    /// Updates over which the decay ramps up (DAMO-YOLO's 2000).
    pub ramp: f64,
    pub updates: u64,
}

impl Ema {
    pub fn new(decay: f64, ramp: f64) -> Self {
        Ema {
            decay,
            ramp,
            updates: 0,
        }
    }

    /// The decay the next update uses.
    pub fn next_decay(&self) -> f64 {
        self.decay * (1.0 - (-((self.updates + 1) as f64) / self.ramp).exp())
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
        let d = self.next_decay();
        self.updates += 1;
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
    fn the_ema_ramp_sets_how_soon_it_averages() {
        // 520 updates (the demo's localiser): with DAMO-YOLO's ramp the EMA is still about the
        // last weights; with a ramp of 100 it averages over the last few hundred updates.
        let at = |ramp: f64, updates: u64| {
            Ema {
                decay: 0.9998,
                ramp,
                updates,
            }
            .next_decay()
        };
        assert!(at(2000.0, 519) < 0.24 && at(2000.0, 519) > 0.22, "{}", at(2000.0, 519));
        assert!(at(100.0, 519) > 0.99, "{}", at(100.0, 519));
        assert!(at(100.0, 0) < 0.01 && at(2000.0, 0) < 0.001);
        // Never above the decay itself.
        assert!(at(1.0, 1_000_000) <= 0.9998);
    }

    #[test]
    fn schedule_warms_up_then_follows_a_cosine_to_the_floor() {
        let lr = |it| learning_rate(it, 1000, 100, 100, 0.01, 0.05);
        assert_eq!(lr(0), 0.0);
        assert!((lr(50) - 0.0025).abs() < 1e-12, "quadratic warmup");
        assert!((lr(100) - 0.01).abs() < 1e-12);
        assert!(
            (lr(500) - (0.0005 + 0.5 * 0.0095)).abs() < 1e-9,
            "half way down the cosine"
        );
        assert!((lr(950) - 0.0005).abs() < 1e-12, "flat at the end");
        assert!((1..1000).all(|i| lr(i) <= 0.01 + 1e-12));
    }

    /// `loss = Σ c·w` has the constant gradient `c`, so torch.optim.SGD's update (Nesterov,
    /// momentum m, weight decay wd) can be followed by hand: g = c + wd·w; buf = g on the
    /// first step, else m·buf + g; w −= lr·(g + m·buf). Weight decay applies to the 4-D
    /// kernel only. Both ways of stepping give these numbers.
    #[test]
    fn steps_follow_torch_sgd_with_and_without_accumulated_gradients() {
        let (m, wd, lr) = (0.9, 0.1, 0.1);
        let c = [0.5f64, -2.0];
        let expected = |decay: f64| -> Vec<f64> {
            c.iter()
                .map(|&c| {
                    let (mut w, mut buf) = (1.0f64, None::<f64>);
                    for _ in 0..3 {
                        let g = c + decay * w;
                        let b = buf.map_or(g, |b| m * b + g);
                        buf = Some(b);
                        w -= lr * (g + m * b);
                    }
                    w
                })
                .collect()
        };
        for accumulate in [true, false] {
            let vs = nn::VarStore::new(tch::Device::Cpu);
            let w = (vs.root() / "conv").var("weight", &[2, 1, 1, 1], nn::Init::Const(1.0));
            let b = (vs.root() / "conv").var("bias", &[2], nn::Init::Const(1.0));
            let ct = Tensor::from_slice(&c.map(|v| v as f32));
            let mut sgd = Sgd::new(m, true, wd);
            for _ in 0..3 {
                let loss = (w.flatten(0, -1) * &ct).sum(tch::Kind::Float) + (&b * &ct).sum(tch::Kind::Float);
                if accumulate {
                    loss.backward();
                    sgd.step(&vs, lr);
                } else {
                    sgd.backward_step(&vs, &loss, lr);
                }
            }
            let got_w = Vec::<f32>::try_from(w.flatten(0, -1)).unwrap();
            let got_b = Vec::<f32>::try_from(&b).unwrap();
            for (got, want) in got_w.iter().zip(expected(wd)).chain(got_b.iter().zip(expected(0.0))) {
                assert!(
                    (*got as f64 - want).abs() < 1e-5,
                    "accumulate {accumulate}: {got} vs {want}"
                );
            }
        }
    }
}

/// Dynamic loss scaling for fp16 training (as `torch.amp.GradScaler`): the loss is multiplied
/// by [`LossScaler::scale`] before back-propagation, so that small gradients survive fp16's
/// narrow range, and the gradients are divided by it before the update. A step whose gradients
/// are not all finite is skipped and the scale halved; after [`LossScaler::GROWTH_INTERVAL`]
/// finite steps in a row the scale doubles.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossScaler {
    pub scale: f64,
    /// Finite steps since the scale last changed.
    pub good_steps: u32,
}

impl Default for LossScaler {
    fn default() -> Self {
        LossScaler {
            scale: Self::INITIAL,
            good_steps: 0,
        }
    }
}

impl LossScaler {
    pub const INITIAL: f64 = 65536.0;
    pub const GROWTH_INTERVAL: u32 = 2000;

    /// Divides `grads` (of the scaled loss) by the scale, in place, and returns true; or, when
    /// any of them holds an infinity or NaN, leaves them, halves the scale and returns false
    /// (the step must be skipped).
    pub fn unscale(&mut self, grads: &[Tensor]) -> bool {
        let overflow = tch::no_grad(|| {
            let counts: Vec<Tensor> = grads
                .iter()
                .map(|g| g.isfinite().logical_not().sum(tch::Kind::Int64))
                .collect();
            !counts.is_empty() && Tensor::stack(&counts, 0).sum(tch::Kind::Int64).int64_value(&[]) > 0
        });
        if overflow {
            self.scale = (self.scale * 0.5).max(1.0);
            self.good_steps = 0;
            return false;
        }
        tch::no_grad(|| {
            for g in grads {
                let _ = g.shallow_clone().g_div_scalar_(self.scale);
            }
        });
        self.good_steps += 1;
        if self.good_steps >= Self::GROWTH_INTERVAL {
            self.scale *= 2.0;
            self.good_steps = 0;
        }
        true
    }
}

#[cfg(test)]
mod scaler_tests {
    use super::*;

    #[test]
    fn an_overflow_skips_the_step_and_halves_the_scale_then_it_grows_back() {
        let mut s = LossScaler {
            scale: 1024.0,
            good_steps: 0,
        };
        let grads = [
            Tensor::from_slice(&[2048.0f32, -512.0]),
            Tensor::from_slice(&[f32::INFINITY]),
        ];
        assert!(!s.unscale(&grads));
        assert_eq!((s.scale, s.good_steps), (512.0, 0));
        assert_eq!(
            Vec::<f32>::try_from(&grads[0]).unwrap(),
            vec![2048.0, -512.0],
            "left as they were"
        );
        let grads = [
            Tensor::from_slice(&[1024.0f32, -256.0]),
            Tensor::from_slice(&[f32::NAN]),
        ];
        assert!(!s.unscale(&grads));
        assert_eq!(s.scale, 256.0);
        let grads = [Tensor::from_slice(&[512.0f32, -128.0])];
        assert!(s.unscale(&grads));
        assert_eq!(
            Vec::<f32>::try_from(&grads[0]).unwrap(),
            vec![2.0, -0.5],
            "divided by the scale"
        );
        s.good_steps = LossScaler::GROWTH_INTERVAL - 1;
        assert!(s.unscale(&[Tensor::from_slice(&[1.0f32])]));
        assert_eq!((s.scale, s.good_steps), (512.0, 0), "doubles after the growth interval");
    }
}
