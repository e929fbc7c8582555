//! Prints what a checkpoint predicts on a manifest: the top score per image and its IoU with
//! the truth, and the mAP at two confidence floors. A debugging aid.
//! `cargo run --release -p hipfrac-train --example inspect -- CHECKPOINT_DIR MANIFEST SIZE [weights file]`

use hipfrac_eval::map::{coco_map, ImageBoxes};
use hipfrac_model::decode::detections;
use hipfrac_model::{DamoYolo, ModelConfig};
use hipfrac_train::data::{batch, load_manifest, Augment};
use tch::{nn, Device};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::Path::new(&args[1]);
    let size: i64 = args[3].parse().expect("SIZE should be a whole number");
    let weights = args.get(4).map_or("ema.safetensors", |s| s.as_str());
    let config: ModelConfig = serde_json::from_slice(
        &std::fs::read(dir.join("config.json")).expect("the checkpoint should hold config.json"),
    )
    .expect("config.json should be a model config");
    let mut vs = nn::VarStore::new(Device::Cpu);
    let model = DamoYolo::new(&vs.root(), &config, false);
    vs.load(dir.join(weights))
        .unwrap_or_else(|e| panic!("cannot load {weights}: {e}"));
    let samples = load_manifest(
        std::path::Path::new(&args[2]),
        &hipfrac_imaging::Preprocess { size, equalize: false },
        hipfrac_core::Stage::Whole,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for conf in [0.05, 0.001] {
        let mut images = Vec::new();
        let mut top = Vec::new();
        for chunk in samples.chunks(16) {
            let refs: Vec<_> = chunk.iter().collect();
            let (t, _) = batch(&refs, &Augment::default(), &vec![0; refs.len()], Device::Cpu);
            for (s, d) in chunk.iter().zip(detections(&model, &t, conf, 0.7)) {
                top.push(d.first().map(|d| d.score).unwrap_or(0.0));
                images.push(ImageBoxes {
                    truth: s.boxes.iter().filter_map(|(c, b)| Some(((*c)?, *b))).collect(),
                    detections: d.iter().map(|d| (d.class, d.score, d.bbox)).collect(),
                });
            }
        }
        let max = top.iter().cloned().fold(0.0f32, f32::max);
        println!(
            "conf {conf}: top score max {max:.3}, mean {:.3}; mAP {:?}",
            top.iter().sum::<f32>() / top.len() as f32,
            coco_map(&images)
        );
    }
}
