//! DAMO-YOLO structure tests (CPU, small inputs).

mod losses;
mod training;

use hipfrac_model::{trainable_parameters, DamoYolo, ModelConfig};
use tch::{nn, Device, Kind, Tensor};

fn parameters(config: &ModelConfig, fused: bool) -> i64 {
    let vs = nn::VarStore::new(Device::Cpu);
    let _model = DamoYolo::new(&vs.root(), config, fused);
    trainable_parameters(&vs)
}

/// The official code instantiated (`damoyolo_tinynasL20_T`, 3 channels, 80 classes) reports
/// 8,875,727 trainable parameters (BatchNorm affine counted, running statistics not) and
/// 8,473,911 after RepConv and BatchNorm folding; with 1 channel and 4 classes, 8,567,339 and
/// 8,165,523 (the figures).
#[test]
fn parameter_counts_equal_the_reference_architecture() {
    assert_eq!(parameters(&ModelConfig::t(3, 80), false), 8_875_727);
    assert_eq!(parameters(&ModelConfig::t(3, 80), true), 8_473_911);
    assert_eq!(parameters(&ModelConfig::t(1, 4), false), 8_567_339);
    assert_eq!(parameters(&ModelConfig::t(1, 4), true), 8_165_523);
}

#[test]
fn shapes_per_level() {
    let vs = nn::VarStore::new(Device::Cpu);
    let config = ModelConfig::nano(1, 4);
    let model = DamoYolo::new(&vs.root(), &config, false);
    let images = Tensor::randn([2, 1, 128, 96], (Kind::Float, Device::Cpu));
    let features = model.features(&images, false);
    let sizes: Vec<Vec<i64>> = features.iter().map(|f| f.size()).collect();
    assert_eq!(sizes, vec![vec![2, 16, 16, 12], vec![2, 32, 8, 6], vec![2, 64, 4, 3]]);
    let out = model.forward_t(&images, false);
    let points = 16 * 12 + 8 * 6 + 4 * 3;
    assert_eq!(out.class_logits.size(), vec![2, points, 4]);
    assert_eq!(out.box_logits.size(), vec![2, points, 4, 17]);
    assert_eq!(out.level_sizes, vec![(16, 12), (8, 6), (4, 3)]);
}

/// RepConv and BatchNorm folding must not change the output: outputs of the training-form
/// model in eval mode and of the fused model agree within 1e-4.
#[test]
fn reparameterised_model_gives_the_same_outputs() {
    tch::manual_seed(3);
    let config = ModelConfig::nano(1, 4);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = DamoYolo::new(&vs.root(), &config, false);
    // Move the BatchNorm statistics and affine parameters away from their initial values.
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            if name.contains("bn.") {
                let noise = Tensor::rand_like(&t) * 0.5 + 0.75;
                let _ = t.g_mul_(&noise);
                if name.ends_with("bias") || name.ends_with("running_mean") {
                    let _ = t.g_add_(&(Tensor::randn_like(&t) * 0.1));
                }
            }
        }
    });
    for _ in 0..3 {
        let _ = model.forward_t(&Tensor::randn([2, 1, 64, 64], (Kind::Float, Device::Cpu)), true);
    }
    let fused_vs = nn::VarStore::new(Device::Cpu);
    let mut fused = DamoYolo::new(&fused_vs.root(), &config, true);
    model.fold_into(&mut fused);
    let images = Tensor::randn([2, 1, 96, 64], (Kind::Float, Device::Cpu));
    let a = model.forward_t(&images, false);
    let b = fused.forward_t(&images, false);
    let class_error = (&a.class_logits - &b.class_logits).abs().max().double_value(&[]);
    let box_error = (&a.box_logits - &b.box_logits).abs().max().double_value(&[]);
    assert!(class_error < 1e-4 && box_error < 1e-4, "class {class_error:e}, box {box_error:e}");
}
