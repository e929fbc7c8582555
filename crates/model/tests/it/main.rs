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
    assert!(out.scope_logits.is_none(), "no scope head unless asked for");
    let vs = nn::VarStore::new(Device::Cpu);
    let scoped = DamoYolo::new(&vs.root(), &config.with_scope_head(true), false);
    let out = scoped.forward_t(&images, false);
    assert_eq!(out.scope_logits.map(|s| s.size()), Some(vec![2]));
    assert_eq!(out.class_logits.size(), vec![2, points, 4]);
}

/// A model with a scope head scales every box score by the image's scope probability: the
/// same weights with the scope at 1 and at 0.25 give the same boxes, the scores a quarter.
#[test]
fn the_scope_probability_scales_every_box_score() {
    tch::manual_seed(5);
    let config = ModelConfig::nano(1, 1).with_scope_head(true);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = DamoYolo::new(&vs.root(), &config, false);
    let images = Tensor::randn([1, 1, 64, 64], (Kind::Float, Device::Cpu));
    let set_scope = |logit: f64| {
        tch::no_grad(|| {
            for (name, mut t) in vs.variables() {
                if name.starts_with("head.scope.") {
                    let _ = t.fill_(if name.ends_with("bias") { logit } else { 0.0 });
                }
            }
        })
    };
    let detect = || {
        let found =
            hipfrac_model::decode::detections_at(&model, &images, 0.0, 0.65, hipfrac_model::precision::Precision::Fp32);
        found.into_iter().next().unwrap()
    };
    set_scope(40.0);
    let sure = detect();
    set_scope((0.25f64 / 0.75).ln());
    let quarter = detect();
    assert!(!sure.is_empty());
    assert_eq!(sure.len(), quarter.len());
    for (a, b) in sure.iter().zip(&quarter) {
        assert_eq!(a.bbox, b.bbox);
        assert!((b.score - 0.25 * a.score).abs() < 1e-5, "{} vs {}", b.score, a.score);
    }
}

/// RepConv and BatchNorm folding must not change the output: outputs of the training-form
/// model in eval mode and of the fused model agree within 1e-4.
#[test]
fn reparameterised_model_gives_the_same_outputs() {
    tch::manual_seed(3);
    let config = ModelConfig::nano(1, 4).with_scope_head(true);
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
    let (sa, sb) = (a.scope_logits.unwrap(), b.scope_logits.unwrap());
    let scope_error = (&sa - &sb).abs().max().double_value(&[]);
    assert!(
        class_error < 1e-4 && box_error < 1e-4 && scope_error < 1e-4,
        "class {class_error:e}, box {box_error:e}, scope {scope_error:e}"
    );
}

/// Every kernel is laid out channels-last (so activations are too, and oneDNN/cuDNN take
/// their fast paths); the shapes stay NCHW.
#[test]
fn kernels_are_channels_last() {
    let vs = nn::VarStore::new(Device::Cpu);
    let _model = DamoYolo::new(&vs.root(), &ModelConfig::nano(1, 4), false);
    let kernels: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.dim() == 4).collect();
    assert!(kernels.len() > 20);
    for (name, t) in kernels {
        let (size, stride) = (t.size(), t.stride());
        assert_eq!(stride[1], 1, "{name}: {size:?} strides {stride:?}");
        assert_eq!(stride[0], size[1] * size[2] * size[3], "{name}");
    }
}

/// A narrow strided 1×1 convolution runs as subsampling + stride 1 (a oneDNN heap
/// corruption on the strided kernel's gradient); it must equal the strided convolution.
#[test]
fn narrow_strided_1x1_equals_the_strided_convolution() {
    use hipfrac_model::layers::{Act, ConvBn, NARROW_STRIDED_1X1};
    tch::manual_seed(5);
    let vs = nn::VarStore::new(Device::Cpu);
    let block = ConvBn::new(&vs.root(), 8, 16, 1, 2, Act::Identity, true);
    const { assert!(8 < NARROW_STRIDED_1X1) };
    tch::no_grad(|| {
        for (_, mut t) in vs.variables() {
            t.copy_(&Tensor::randn_like(&t));
        }
    });
    for (h, w) in [(9, 12), (16, 16), (7, 5)] {
        let x = Tensor::randn([2, 8, h, w], (Kind::Float, Device::Cpu));
        let (kernel, bias) = block.equivalent();
        let expected = x.conv2d(&kernel.contiguous(), Some(&bias), [2, 2], [0, 0], [1, 1], 1);
        let got = block.forward_t(&x, false);
        assert_eq!(got.size(), expected.size());
        let error = (&got - &expected).abs().max().double_value(&[]);
        assert!(error < 1e-5, "{h}×{w}: {error:e}");
    }
}

/// The nano preset trains at a size where PyTorch 2.11's own channels-last strided 1×1
/// convolution corrupts the heap (8 → 16 channels, 64 × 64, batch 4): the process would
/// abort here without the workaround in `ConvBn::new`.
#[test]
fn nano_trains_where_onednn_strided_1x1_breaks() {
    tch::manual_seed(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = DamoYolo::new(&vs.root(), &ModelConfig::nano(1, 4), false);
    for _ in 0..3 {
        let out = model.forward_t(&Tensor::randn([4, 1, 128, 128], (Kind::Float, Device::Cpu)), true);
        let loss = out.class_logits.square().mean(Kind::Float) + out.box_logits.square().mean(Kind::Float);
        loss.backward();
        assert!(loss.double_value(&[]).is_finite());
    }
    let grads_finite = vs
        .trainable_variables()
        .iter()
        .all(|t| t.grad().isfinite().all().int64_value(&[]) == 1);
    assert!(grads_finite);
}

/// Weights are saved contiguous (any safetensors reader can read them) and load back into
/// the channels-last variables unchanged.
#[test]
fn saved_weights_load_back_unchanged() {
    tch::manual_seed(2);
    let dir = std::env::temp_dir().join(format!("hipfrac-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let config = ModelConfig::nano(1, 4);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = DamoYolo::new(&vs.root(), &config, false);
    hipfrac_model::save_weights(&vs, &path).unwrap();
    tch::manual_seed(99);
    let mut other_vs = nn::VarStore::new(Device::Cpu);
    let other = DamoYolo::new(&other_vs.root(), &config, false);
    other_vs.load(&path).unwrap();
    let images = Tensor::randn([1, 1, 64, 64], (Kind::Float, Device::Cpu));
    let (a, b) = (model.forward_t(&images, false), other.forward_t(&images, false));
    assert!(a.class_logits.equal(&b.class_logits) && a.box_logits.equal(&b.box_logits));
    let stored = Tensor::read_safetensors(&path).unwrap();
    assert_eq!(stored.len(), vs.variables().len());
    assert!(stored.iter().all(|(_, t)| t.is_contiguous()));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// bf16 autocast (the C++ shim over libtorch's autocast state) really computes the network in
/// bf16 — a convolution inside the region returns bf16 — and the detector's outputs stay close
/// to fp32's: class and box logits within 0.1 of the fp32 values at most, 0.02 on average
/// (bf16 keeps 8 bits of mantissa). The region nests and leaves the state as it found it.
#[test]
fn bf16_autocast_runs_in_bf16_and_stays_close_to_fp32() {
    use hipfrac_model::precision::{autocast, Autocast, Precision};
    tch::manual_seed(5);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = DamoYolo::new(&vs.root(), &ModelConfig::nano(1, 4), true);
    let images = Tensor::rand([2, 1, 128, 128], (Kind::Float, Device::Cpu));
    let full = tch::no_grad(|| model.forward_t(&images, false));
    assert!(!Autocast::is_enabled(Device::Cpu));
    let (half, inner_kind) = tch::no_grad(|| {
        autocast(Device::Cpu, Precision::Bf16, || {
            let conv = images.conv2d(
                &Tensor::ones([1, 1, 3, 3], (Kind::Float, Device::Cpu)),
                None::<Tensor>,
                [1, 1],
                [1, 1],
                [1, 1],
                1,
            );
            let nested = autocast(Device::Cpu, Precision::Bf16, || Autocast::is_enabled(Device::Cpu));
            assert!(
                nested && Autocast::is_enabled(Device::Cpu),
                "still on after a nested region"
            );
            (model.forward_t(&images, false), conv.kind())
        })
    });
    assert!(!Autocast::is_enabled(Device::Cpu), "off again after the region");
    assert_eq!(inner_kind, Kind::BFloat16);
    for (a, b) in [
        (&full.class_logits, &half.class_logits),
        (&full.box_logits, &half.box_logits),
    ] {
        let diff = (a - b.to_kind(Kind::Float)).abs();
        let (max, mean) = (diff.max().double_value(&[]), diff.mean(Kind::Float).double_value(&[]));
        eprintln!("bf16 vs fp32: max {max:.4}, mean {mean:.5}");
        assert!(max < 0.1 && mean < 0.02, "max {max}, mean {mean}");
    }
    // fp32 is no region at all.
    autocast(Device::Cpu, Precision::Fp32, || {
        assert!(!Autocast::is_enabled(Device::Cpu))
    });
}
