//! Training tests on a tiny phantom set (CPU, nano preset, small images).

use hipfrac_phantom::acquisition::SiteProfile;
use hipfrac_phantom::output::{generate, GenerateOptions};
use hipfrac_phantom::ClassMix;
use hipfrac_train::trainer::Trainer;
use hipfrac_train::TrainConfig;
use tch::Device;

/// libtorch's random generator is global: tests that seed it and build models run one at a
/// time, or one test's draws land in another's model.
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn phantom(dir: &std::path::Path, count: usize) {
    let options = GenerateOptions {
        count,
        site: SiteProfile::load("site-a").unwrap(),
        seed: 1,
        size: 128,
        out: dir.to_path_buf(),
        mix: ClassMix::default(),
        overwrite: false,
    };
    generate(&options, || {}).unwrap();
}

fn config(data: &std::path::Path, out: &std::path::Path) -> TrainConfig {
    TrainConfig {
        train: data.join("manifest.csv"),
        val: data.join("manifest.csv"),
        out: out.to_path_buf(),
        image_size: 128,
        batch_size: 2,
        epochs: 3,
        warmup_epochs: 1.0,
        no_aug_epochs: 1,
        model: hipfrac_train::config::ModelSection {
            preset: hipfrac_core::Preset::Nano,
            ..Default::default()
        },
        val_interval: 100,
        ..TrainConfig::default()
    }
}

/// A run killed after its first epoch and resumed from `out/last` continues exactly as an
/// uninterrupted run: same next losses, same weights.
#[test]
fn resume_after_a_kill_continues_exactly() {
    let _torch_rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    phantom(&dir.path().join("data"), 6);
    let mut quiet = |_: usize, _: usize, _: f64| {};

    let mut straight = Trainer::new(
        config(&dir.path().join("data"), &dir.path().join("a")),
        Device::Cpu,
        false,
    )
    .unwrap();
    let first = straight.epoch(&mut quiet).unwrap();
    let second = straight.epoch(&mut quiet).unwrap();

    let mut killed = Trainer::new(
        config(&dir.path().join("data"), &dir.path().join("b")),
        Device::Cpu,
        false,
    )
    .unwrap();
    let log = killed.epoch(&mut quiet).unwrap();
    assert_eq!(log.loss, first.loss);
    killed.checkpoint(&log).unwrap();
    drop(killed);
    let mut resumed = Trainer::new(
        config(&dir.path().join("data"), &dir.path().join("b")),
        Device::Cpu,
        true,
    )
    .unwrap();
    assert_eq!(resumed.state.epoch, 1);
    let again = resumed.epoch(&mut quiet).unwrap();
    assert_eq!(again.loss, second.loss, "the resumed epoch must see the same losses");
    for (name, t) in straight.model_vs.variables() {
        let other = &resumed.model_vs.variables()[&name];
        assert!(t.equal(other), "{name} differs after resume");
    }
    // A second run into the same folder without --resume is refused.
    assert!(Trainer::new(
        config(&dir.path().join("data"), &dir.path().join("b")),
        Device::Cpu,
        false
    )
    .is_err());
}

/// A run stopped inside an epoch (Ctrl-C) saves where it was, and resumed goes on from that
/// batch exactly: the epoch's loss and the weights equal an uninterrupted run's.
#[test]
fn a_stop_inside_an_epoch_saves_and_resumes_exactly() {
    stop_inside_an_epoch_and_resume(hipfrac_core::Stage::Whole);
}

/// The same for a localiser, whose scope head's loss (log.csv's last column) also counts the
/// batches before the stop; a log.csv begun before that column keeps its columns.
#[test]
fn a_localiser_stopped_inside_an_epoch_logs_the_whole_epochs_scope_loss() {
    stop_inside_an_epoch_and_resume(hipfrac_core::Stage::Hips);
}

fn stop_inside_an_epoch_and_resume(stage: hipfrac_core::Stage) {
    static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let _torch_rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    STOP.store(false, std::sync::atomic::Ordering::Relaxed);
    let dir = tempfile::tempdir().unwrap();
    phantom(&dir.path().join("data"), 8);
    let one_epoch = |out: &str| TrainConfig {
        epochs: 1,
        no_aug_epochs: 0,
        stage,
        ..config(&dir.path().join("data"), &dir.path().join(out))
    };
    let mut quiet = |_: usize, _: usize, _: f64| {};
    let mut straight = Trainer::new(one_epoch("a"), Device::Cpu, false).unwrap();
    straight.run(&mut quiet, &mut |_| {}).unwrap();

    let mut stopped = Trainer::new(one_epoch("b"), Device::Cpu, false).unwrap();
    stopped.stop = &STOP;
    // Raised after the second batch: the third is prepared, then left for the resume.
    let mut stop_after_two = |step: usize, _: usize, _: f64| {
        if step == 2 {
            STOP.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    };
    let error = stopped.run(&mut stop_after_two, &mut |_| {}).unwrap_err();
    assert!(
        matches!(
            error,
            hipfrac_train::trainer::TrainError::Stopped {
                epoch: 1,
                step: 2,
                steps: 4,
                ..
            }
        ),
        "{error}"
    );
    drop(stopped);
    let mut resumed = Trainer::new(one_epoch("b"), Device::Cpu, true).unwrap();
    assert_eq!(
        (resumed.state.epoch, resumed.state.step, resumed.state.iteration),
        (0, 2, 2)
    );
    let mut steps = Vec::new();
    resumed.run(&mut |step, _, _| steps.push(step), &mut |_| {}).unwrap();
    assert_eq!(steps, vec![3, 4], "the resumed run does only the batches left");
    for (name, t) in straight.ema_vs.variables() {
        assert!(
            t.equal(&resumed.ema_vs.variables()[&name]),
            "{name} differs after the resume"
        );
    }
    let log = |run: &str| std::fs::read_to_string(dir.path().join(run).join("log.csv")).unwrap();
    let loss = |text: String| text.lines().nth(1).unwrap().split(',').nth(3).unwrap().to_string();
    assert_eq!(
        loss(log("a")),
        loss(log("b")),
        "the epoch's mean loss counts the batches before the stop"
    );
    let scope = |text: String| text.lines().nth(1).unwrap().rsplit(',').next().unwrap().to_string();
    assert_eq!(scope(log("a")), scope(log("b")), "the scope loss counts them too");
    if stage != hipfrac_core::Stage::Hips {
        assert_eq!(scope(log("a")), "", "no scope head, an empty scope column");
        return;
    }
    assert!(scope(log("a")).parse::<f64>().unwrap() > 0.0);
    // A log.csv begun by an earlier version (no scope column) gets rows of its own columns.
    let old = "epoch,iteration,lr,loss,qfl,giou,dfl,map50,map50_95,seconds\n";
    std::fs::create_dir_all(dir.path().join("c")).unwrap();
    std::fs::write(dir.path().join("c/log.csv"), old).unwrap();
    let mut earlier = Trainer::new(one_epoch("c"), Device::Cpu, false).unwrap();
    earlier.run(&mut quiet, &mut |_| {}).unwrap();
    let text = log("c");
    assert!(text.starts_with(old));
    assert_eq!(text.lines().nth(1).unwrap().split(',').count(), 10, "{text}");
}

/// Mosaic keeps every box that stays mostly in view, inside the image, with its class.
#[test]
fn mosaic_and_mixup_carry_the_boxes() {
    use hipfrac_core::{BBox, FractureClass};
    use hipfrac_train::data::{augment, mixup, mosaic, Augment, Sample};
    let sample = |class: FractureClass, v: u8| Sample {
        name: "x".into(),
        patient: "p".into(),
        site: "s".into(),
        label: class.into(),
        simulated: false,
        size: 64,
        pixels: vec![v; 64 * 64],
        boxes: vec![(Some(class), BBox::new(20.0, 20.0, 40.0, 40.0))],
    };
    let parts = [
        sample(FractureClass::DisplacedNeck, 10),
        sample(FractureClass::ValgusImpactedNeck, 60),
        sample(FractureClass::StableIntertrochanteric, 110),
        sample(FractureClass::UnstableIntertrochanteric, 160),
    ];
    let mut seen = std::collections::HashSet::new();
    for seed in 0..20 {
        let m = mosaic([&parts[0], &parts[1], &parts[2], &parts[3]], seed);
        assert_eq!(m.pixels.len(), 64 * 64);
        for (class, b) in &m.boxes {
            assert!(b.is_inside(64, 64) && !b.is_degenerate(), "{b:?}");
            seen.insert(*class);
        }
        // The four sources show up as their own grey levels.
        let levels: std::collections::HashSet<u8> = m.pixels.iter().copied().collect();
        assert!(levels.len() >= 2);
    }
    assert_eq!(seen.len(), 4, "every source's box appears in some mosaic");
    let a = augment(&parts[0], &Augment::default(), 1);
    let b = augment(&parts[3], &Augment::default(), 2);
    let (pixels, boxes) = mixup(a, b);
    assert_eq!(boxes.len(), 2);
    assert!((pixels[0] - (10.0 + 160.0) / 2.0 / 255.0).abs() < 1e-6);
}

/// Re-acquisition changes how the image looks, never where the boxes are: the pixels stay in
/// [0, 1], the same seed gives the same image, collimation bands and burned-in text stay off
/// the boxes, and the boxes are those of the geometric augmentation alone.
#[test]
fn reacquisition_changes_the_look_not_the_boxes() {
    use hipfrac_core::{BBox, FractureClass};
    use hipfrac_train::data::{augment, reacquire, Augment, Sample};
    use rand::SeedableRng;
    let s = 96;
    // A smooth ramp with a box in the middle.
    let pixels: Vec<u8> = (0..s * s).map(|i| ((i % s) * 255 / s) as u8).collect();
    let boxed = BBox::new(30.0, 30.0, 60.0, 66.0);
    let sample = Sample {
        name: "x".into(),
        patient: "p".into(),
        site: "s".into(),
        label: FractureClass::DisplacedNeck.into(),
        simulated: true,
        size: s as i64,
        pixels,
        boxes: vec![(Some(FractureClass::DisplacedNeck), boxed)],
    };
    let plain = Augment {
        flip: 0.5,
        scale: 0.1,
        translate: 0.1,
        ..Augment::default()
    };
    let acquired = Augment {
        acquisition: 1.0,
        ..plain
    };
    let mut changed = 0;
    for seed in 0..40 {
        let (a, boxes_a) = augment(&sample, &plain, seed);
        let (b, boxes_b) = augment(&sample, &acquired, seed);
        assert_eq!(boxes_a, boxes_b, "seed {seed}");
        assert!(
            b.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)),
            "seed {seed}"
        );
        assert_eq!(augment(&sample, &acquired, seed).0, b, "seed {seed}: not deterministic");
        changed += usize::from(a != b);
    }
    assert!(changed >= 38, "re-acquired images look different ({changed} of 40)");
    // A box covering all but a thin frame: no band or text may be drawn over it, so every
    // pixel inside keeps a value the other steps can give (none is set to a constant).
    let big = BBox::new(2.0, 2.0, (s - 2) as f32, (s - 2) as f32);
    for seed in 0..60u64 {
        let mut image: Vec<f32> = (0..s * s).map(|i| (i % s) as f32 / s as f32 * 0.5 + 0.25).collect();
        let before = image.clone();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        reacquire(&mut image, s, &[(Some(FractureClass::DisplacedNeck), big)], &mut rng);
        // Inside the box, a column keeps its order from left to right unless noise or
        // inversion reorders it; a drawn band would make a whole inner row constant.
        for y in 3..s - 3 {
            let row = &image[y * s + 3..y * s + s - 3];
            let constant = row.iter().all(|v| (v - row[0]).abs() < 1e-6);
            let was_constant = before[y * s + 3..y * s + s - 3]
                .iter()
                .all(|v| (v - before[y * s + 3]).abs() < 1e-6);
            assert!(
                !constant || was_constant,
                "seed {seed}: row {y} inside the box was painted over"
            );
        }
    }
}

#[test]
fn equalisation_spreads_grey_levels_and_keeps_their_order() {
    use hipfrac_imaging::preprocess::equalize;
    // Levels 100..=103, 25 pixels each: to 0, 85, 170, 255.
    let mut grey: Vec<u8> = (0..100).map(|i| 100 + (i / 25) as u8).collect();
    equalize(&mut grey);
    assert_eq!([grey[0], grey[25], grey[50], grey[75]], [0, 85, 170, 255]);
    // A skewed image: monotone mapping, darkest to 0 and brightest to 255.
    let mut skewed: Vec<u8> = (0..1000).map(|i| ((i * i) % 256) as u8).collect();
    let before = skewed.clone();
    equalize(&mut skewed);
    let (lo, hi) = (*before.iter().min().unwrap(), *before.iter().max().unwrap());
    for (a, b) in before.iter().zip(&skewed) {
        if *a == lo {
            assert_eq!(*b, 0)
        }
        if *a == hi {
            assert_eq!(*b, 255)
        }
    }
    let mut pairs: Vec<(u8, u8)> = before.iter().copied().zip(skewed.iter().copied()).collect();
    pairs.sort();
    assert!(pairs.windows(2).all(|w| w[0].1 <= w[1].1), "monotone");
    // One grey level: unchanged.
    let mut flat = vec![7u8; 10];
    equalize(&mut flat);
    assert_eq!(flat, vec![7u8; 10]);
}

/// A run whose loss turns non-finite stops with a clear error at that step, and writes no
/// checkpoint from it (out/best stays absent, not NaN weights).
#[test]
fn a_non_finite_loss_stops_training_and_saves_nothing() {
    let _torch_rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    phantom(&dir.path().join("data"), 4);
    let out = dir.path().join("run");
    let mut trainer = Trainer::new(config(&dir.path().join("data"), &out), Device::Cpu, false).unwrap();
    // NaN weights make the loss NaN from the first step.
    tch::no_grad(|| {
        for mut variable in trainer.model_vs.trainable_variables() {
            let _ = variable.fill_(f64::NAN);
        }
    });
    let mut quiet = |_: usize, _: usize, _: f64| {};
    let mut no_epoch = |_: &hipfrac_train::trainer::EpochLog| panic!("no epoch completes");
    let error = trainer.run(&mut quiet, &mut no_epoch).unwrap_err().to_string();
    assert!(
        error.contains("diverged at epoch 1, step 1") && error.contains("loss is not finite"),
        "{error}"
    );
    assert!(
        !out.join("best").exists() && !out.join("last").exists(),
        "nothing saved"
    );
}

/// bf16 autocast training, and fp16 with dynamic loss scaling: the losses are finite and fall
/// over three epochs as in fp32, within a stated tolerance of fp32's (each epoch's mean loss
/// within 10 % of the fp32 run's on the same data and seed); the fp16 loss scale is saved.
#[test]
fn bf16_and_fp16_training_follow_fp32() {
    use hipfrac_model::precision::Precision;
    let _torch_rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    phantom(&dir.path().join("data"), 6);
    let mut quiet = |_: usize, _: usize, _: f64| {};
    let mut run = |precision: Precision, out: &str| {
        tch::manual_seed(0);
        let mut trainer = Trainer::new(
            TrainConfig {
                precision,
                ..config(&dir.path().join("data"), &dir.path().join(out))
            },
            Device::Cpu,
            false,
        )
        .unwrap();
        (0..3)
            .map(|_| trainer.epoch(&mut quiet).unwrap().loss)
            .collect::<Vec<f64>>()
    };
    let (full, half) = (run(Precision::Fp32, "fp32"), run(Precision::Bf16, "bf16"));
    eprintln!("mean loss per epoch: fp32 {full:?}, bf16 {half:?}");
    for (a, b) in full.iter().zip(&half) {
        assert!(
            b.is_finite() && (a - b).abs() <= 0.1 * a.abs(),
            "fp32 {full:?} vs bf16 {half:?}"
        );
    }
    assert!(half[2] < half[0], "bf16 loss falls: {half:?}");
    // fp16 with dynamic loss scaling follows too, and its scale travels with the checkpoint.
    let fp16 = run(Precision::Fp16, "fp16");
    eprintln!("mean loss per epoch: fp16 {fp16:?}");
    for (a, b) in full.iter().zip(&fp16) {
        assert!(
            b.is_finite() && (a - b).abs() <= 0.1 * a.abs(),
            "fp32 {full:?} vs fp16 {fp16:?}"
        );
    }
    let mut trainer = Trainer::new(
        TrainConfig {
            precision: Precision::Fp16,
            epochs: 1,
            ..config(&dir.path().join("data"), &dir.path().join("fp16-state"))
        },
        Device::Cpu,
        false,
    )
    .unwrap();
    trainer.run(&mut quiet, &mut |_| {}).unwrap();
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("fp16-state/last/state.json")).unwrap()).unwrap();
    assert!(
        state["loss_scaler"]["scale"].as_f64().is_some_and(|s| s >= 1.0),
        "{state}"
    );
}

/// A turn by 90° moves the pixels and the boxes together, and the opposite turn undoes it.
#[test]
fn a_quarter_turn_moves_pixels_and_boxes_together() {
    use hipfrac_core::{BBox, FractureClass};
    use hipfrac_train::data::turn;
    let s = 8usize;
    let mut pixels = vec![0f32; s * s];
    // A bright block at x 1..3, y 0..2 (a box [1, 0, 3, 2]).
    for y in 0..2 {
        for x in 1..3 {
            pixels[y * s + x] = 1.0;
        }
    }
    let boxes = vec![(Some(FractureClass::DisplacedNeck), BBox::new(1.0, 0.0, 3.0, 2.0))];
    for clockwise in [true, false] {
        let (turned, moved) = turn(&pixels, s, &boxes, clockwise);
        let b = moved[0].1;
        for y in 0..s {
            for x in 0..s {
                let inside =
                    (x as f32) >= b.x_min && (x as f32) < b.x_max && (y as f32) >= b.y_min && (y as f32) < b.y_max;
                assert_eq!(
                    turned[y * s + x] == 1.0,
                    inside,
                    "clockwise {clockwise}: ({x}, {y}) vs {b:?}"
                );
            }
        }
        let (back, returned) = turn(&turned, s, &moved, !clockwise);
        assert_eq!(back, pixels);
        assert_eq!(returned, boxes);
    }
}

/// A localiser learns whether the whole image is in scope: its config has the scope head by
/// default, and a run starts from a localiser trained without one (the head is new, every
/// other weight the init's), logging the head's loss on its own; a run of another stage or
/// preset is still refused.
#[test]
fn a_localiser_with_a_scope_head_starts_from_one_without() {
    let _torch_rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    phantom(&data, 4);
    let mut quiet = |_: usize, _: usize, _: f64| {};
    let localiser = |out: &str| TrainConfig {
        stage: hipfrac_core::Stage::Hips,
        epochs: 1,
        ..config(&data, &dir.path().join(out))
    };
    assert!(localiser("x").model_config().scope_head);
    let mut without = localiser("old");
    without.model.scope_head = false;
    assert!(!without.model_config().scope_head);
    let mut old = Trainer::new(without, Device::Cpu, false).unwrap();
    let log = old.epoch(&mut quiet).unwrap();
    assert_eq!(log.scope, None, "no scope head, no scope loss");
    old.checkpoint(&log).unwrap();
    drop(old);
    let old_dir = dir.path().join("old/last");
    // Resumed with the default configuration (scope head on), the run goes on as it began:
    // without a head, its checkpoint loading.
    let resumed = Trainer::new(localiser("old"), Device::Cpu, true).unwrap();
    assert!(!resumed
        .model_vs
        .variables()
        .keys()
        .any(|n| n.starts_with("head.scope.")));
    assert!(!resumed.config.model.scope_head);
    drop(resumed);

    let mut fine = Trainer::new(
        TrainConfig {
            init: Some(old_dir.clone()),
            ..localiser("new")
        },
        Device::Cpu,
        false,
    )
    .unwrap();
    let started = fine.model_vs.variables();
    assert!(started.keys().any(|n| n.starts_with("head.scope.")));
    // Every weight of the init (its EMA weights, as a run starts from) is where it started.
    let mut vs = tch::nn::VarStore::new(Device::Cpu);
    let _ = hipfrac_model::DamoYolo::new(&vs.root(), &localiser("y").model_config().with_scope_head(false), false);
    vs.load(old_dir.join("ema.safetensors")).unwrap();
    for (name, weight) in vs.variables() {
        assert!(started[&name].equal(&weight), "{name} not taken from the init");
    }
    // The scope head's loss is logged on its own (part of the total), in log.csv's last column.
    fine.run(&mut quiet, &mut |log| {
        let scope = log.scope.expect("a scope head logs its loss");
        assert!(
            scope.is_finite() && scope > 0.0 && scope < log.loss,
            "scope {scope}, loss {}",
            log.loss
        );
    })
    .unwrap();
    let csv = std::fs::read_to_string(dir.path().join("new/log.csv")).unwrap();
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().ends_with(",seconds,scope"));
    let scope: f64 = lines.next().unwrap().rsplit(',').next().unwrap().parse().unwrap();
    assert!(scope > 0.0);

    // The crop detector (another stage: four classes, no scope head) cannot start from it.
    let refused = Trainer::new(
        TrainConfig {
            init: Some(old_dir),
            stage: hipfrac_core::Stage::HipCrops,
            ..config(&data, &dir.path().join("crops"))
        },
        Device::Cpu,
        false,
    );
    assert!(refused.is_err());
}

/// A film cut so that no hip is in view: the widest band beside every box, centred unscaled
/// between black bars; nothing to cut when there is no box or the boxes leave no band a
/// quarter wide.
#[test]
fn a_film_cut_beside_its_boxes_shows_none_of_them() {
    use hipfrac_core::BBox;
    use hipfrac_train::data::without_boxes;
    let s = 256;
    let pixels: Vec<f32> = (0..s * s).map(|i| (i % 251) as f32 / 251.0).collect();
    // A hip low and right of centre: the band above it (256 × 150) is the widest.
    let hip = vec![(None, BBox::new(100.0, 150.0, 200.0, 250.0))];
    let cut = without_boxes(&pixels, s, &hip).unwrap();
    let top = (s - 150) / 2;
    for y in 0..150 {
        assert_eq!(
            &cut[(top + y) * s..(top + y + 1) * s],
            &pixels[y * s..(y + 1) * s],
            "row {y}"
        );
    }
    assert!(cut[..top * s].iter().chain(&cut[(top + 150) * s..]).all(|&v| v == 0.0));
    // A hip on the left: the band right of it (136 × 256), centred between bars left and right.
    let left = vec![(None, BBox::new(0.0, 0.0, 120.0, 256.0))];
    let cut = without_boxes(&pixels, s, &left).unwrap();
    let offset = (s - 136) / 2;
    for y in 0..s {
        let row = &cut[y * s..(y + 1) * s];
        assert_eq!(&row[offset..offset + 136], &pixels[y * s + 120..(y + 1) * s], "row {y}");
        assert!(
            row[..offset].iter().chain(&row[offset + 136..]).all(|&v| v == 0.0),
            "row {y}"
        );
    }
    assert!(without_boxes(&pixels, s, &[]).is_none());
    let everywhere = vec![(None, BBox::new(10.0, 10.0, 246.0, 246.0))];
    assert!(without_boxes(&pixels, s, &everywhere).is_none());
}
