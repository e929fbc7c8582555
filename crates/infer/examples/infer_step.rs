//! Times DAMO-YOLO inference in hipfrac on tch, for bench/infer.sh: the fused network alone
//! (what bench/train_step/damo_t.py --infer times in PyTorch), the network with decoding and
//! NMS, and the whole prediction path (`Predictor::predict_batch` on a radiograph: display
//! pipeline, letterbox, network, decoding, verdict). Warm: two untimed runs first. Prints one
//! JSON line per measurement.
//!
//! `cargo run --release -p hipfrac-infer --features test-support --example infer_step -- SIZE BATCH STEPS THREADS DEVICE [t|nano]`
//! (`PRECISION=bf16` or `fp16`: the network in an autocast region.)

use hipfrac_core::{Pixels, Radiograph, RadiographMeta};
use hipfrac_infer::Predictor;
use hipfrac_model::precision::{autocast, Precision};
use hipfrac_model::{DamoYolo, ModelConfig};
use std::time::Instant;
use tch::{nn, Kind, Tensor};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: &str| a.get(i).cloned().unwrap_or_else(|| d.to_string());
    let number = |i: usize, d: &str| {
        arg(i, d)
            .parse::<i64>()
            .unwrap_or_else(|_| panic!("argument {i} should be a number"))
    };
    let (size, batch, steps, threads) = (
        number(1, "1024"),
        number(2, "1"),
        number(3, "10") as usize,
        number(4, "2") as i32,
    );
    let device = hipfrac_model::device::select(arg(5, "cpu").parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let preset = arg(6, "t");
    // PRECISION=bf16 (or fp16) times the network in an autocast region.
    let precision: Precision = std::env::var("PRECISION")
        .unwrap_or_else(|_| "fp32".into())
        .parse()
        .unwrap_or_else(|e| panic!("PRECISION: {e}"));
    let config = if preset == "nano" {
        ModelConfig::nano(1, 4)
    } else {
        ModelConfig::t(1, 4)
    };
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    let time = |what: &str, run: &mut dyn FnMut()| {
        for _ in 0..2 {
            run();
        }
        let start = Instant::now();
        for _ in 0..steps {
            run();
        }
        if device.is_cuda() {
            tch::Cuda::synchronize(0);
        }
        let seconds = start.elapsed().as_secs_f64() / steps as f64;
        println!(
            "{{\"framework\": \"hipfrac-tch\", \"what\": \"{what}\", \"precision\": \"{}\", \"preset\": \"{preset}\", \"size\": {size}, \"batch\": {batch}, \"threads\": {threads}, \"seconds_per_batch\": {seconds:.5}, \"images_per_s\": {:.3}}}",
            precision.name(),
            batch as f64 / seconds
        );
    };

    // The network, fused as the predictor runs it.
    let training_vs = nn::VarStore::new(device);
    let training = DamoYolo::new(&training_vs.root(), &config, false);
    let vs = nn::VarStore::new(device);
    let mut fused = DamoYolo::new(&vs.root(), &config, true);
    training.fold_into(&mut fused);
    let x = Tensor::randn([batch, 1, size, size], (Kind::Float, device));
    time("network", &mut || {
        tch::no_grad(|| {
            let _ = autocast(device, precision, || fused.forward_t(&x, false));
        })
    });
    time("network+decode", &mut || {
        let _ = hipfrac_model::decode::detections_at(&fused, &x, 0.05, 0.6, precision);
    });

    // The whole path on a 2140 x 1760 radiograph of noise (the size of the real hip CR).
    let dir = std::env::temp_dir().join(format!("hipfrac-infer-step-{}", std::process::id()));
    hipfrac_infer::write_untrained(&dir, &config, size, None).expect("an untrained model folder");
    let mut predictor = Predictor::load(&dir, device).expect("the model folder loads");
    predictor.batch = Some(batch as usize);
    predictor.precision = precision;
    let (w, h) = (1760u32, 2140u32);
    let mut seed = 1u32;
    let pixels: Vec<u16> = (0..w * h)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed % 1024) as u16
        })
        .collect();
    let meta = RadiographMeta::plain(h, w, 10);
    let images: Vec<Radiograph> = (0..batch)
        .map(|_| Radiograph {
            meta: meta.clone(),
            pixels: Pixels::Unsigned(pixels.clone()),
        })
        .collect();
    time("predict_batch", &mut || {
        for result in predictor.predict_batch(&images) {
            result.expect("a prediction");
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}
