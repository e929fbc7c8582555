//! Times DAMO-YOLO-T train steps (forward, backward, SGD) in hipfrac on tch, for
//! bench/train_step.sh. `--objective plain` uses the same stand-in objective as
//! bench/train_step/damo_t.py (mean squares of the outputs) so both sides do the same work;
//! `--objective full` uses the real loss (AlignOTA + QFL + GIoU + DFL) on one box per image.
//!
//! `cargo run --release -p hipfrac-train --example train_step -- SIZE BATCH STEPS THREADS DEVICE OBJECTIVE`
//! (`PRECISION=bf16` runs the forward pass in bf16 autocast; `PHASES=1` prints forward and backward + optimiser times per step; `NANO=1` times the
//! nano preset; `GLIBC_DEFAULTS=1` leaves the allocator as glibc sets it.)

use hipfrac_model::loss::{detection_loss, AlignOta, LossWeights, Targets};
use hipfrac_model::precision::{autocast, Precision};
use hipfrac_model::{trainable_parameters, DamoYolo, ModelConfig};
use hipfrac_train::optim::Sgd;
use tch::{nn, Kind, Tensor};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: &str| a.get(i).cloned().unwrap_or_else(|| d.to_string());
    let (size, batch, steps, threads): (i64, i64, usize, i32) = (
        arg(1, "512").parse().expect("SIZE should be a number"),
        arg(2, "4").parse().expect("BATCH should be a number"),
        arg(3, "10").parse().expect("STEPS should be a number"),
        arg(4, "2").parse().expect("THREADS should be a number"),
    );
    let device = hipfrac_model::device::select(arg(5, "cpu").parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let objective = arg(6, "plain");
    if std::env::var_os("GLIBC_DEFAULTS").is_none() {
        hipfrac_train::memory::keep_freed_memory();
    }
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let nano = std::env::var_os("NANO").is_some();
    let model = DamoYolo::new(
        &vs.root(),
        &if nano {
            ModelConfig::nano(1, 4)
        } else {
            ModelConfig::t(1, 4)
        },
        false,
    );
    assert!(nano || trainable_parameters(&vs) == 8_567_339);
    let mut sgd = Sgd::new(0.9, true, 5e-4);
    let x = Tensor::randn([batch, 1, size, size], (Kind::Float, device));
    let targets: Vec<Targets> = (0..batch)
        .map(|_| {
            let s = size as f32;
            Targets {
                boxes: Tensor::from_slice(&[0.3 * s, 0.3 * s, 0.6 * s, 0.7 * s])
                    .reshape([1, 4])
                    .to_device(device),
                labels: Tensor::from_slice(&[1i64]).to_device(device),
            }
        })
        .collect();
    let timing = std::env::var_os("PHASES").is_some();
    // PRECISION=bf16: the forward pass in a bf16 autocast region, the loss in fp32 (as the trainer).
    let precision: Precision = std::env::var("PRECISION")
        .unwrap_or_else(|_| "fp32".into())
        .parse()
        .unwrap_or_else(|e| panic!("PRECISION: {e}"));
    let mut step = || {
        let t0 = std::time::Instant::now();
        let out = autocast(device, precision, || model.forward_t(&x, true));
        let out = out.to_float();
        let loss = if objective == "full" {
            detection_loss(
                &out,
                &targets,
                &ModelConfig::STRIDES,
                &AlignOta::default(),
                LossWeights::default(),
            )
            .total
        } else {
            out.class_logits.square().mean(Kind::Float) + out.box_logits.square().mean(Kind::Float)
        };
        let t1 = std::time::Instant::now();
        sgd.backward_step(&vs, &loss, 0.01);
        if timing {
            eprintln!("forward+loss {:?}, backward+sgd {:?}", t1 - t0, t1.elapsed());
        }
    };
    for _ in 0..2 {
        step();
    }
    if let tch::Device::Cuda(_) = device {
        tch::Cuda::synchronize(0);
    }
    let started = std::time::Instant::now();
    for _ in 0..steps {
        step();
    }
    if let tch::Device::Cuda(_) = device {
        tch::Cuda::synchronize(0);
    }
    let dt = started.elapsed().as_secs_f64() / steps as f64;
    println!("{{\"framework\": \"hipfrac-tch\", \"precision\": \"{}\", \"objective\": \"{objective}\", \"size\": {size}, \"batch\": {batch}, \"seconds_per_step\": {dt}, \"images_per_s\": {}}}", precision.name(), batch as f64 / dt);
}
