//! The prediction path on real files: an untrained model (so any answer is fine) must load,
//! fold, predict on phantom and shared DICOM images, and keep its boxes in the image.

use hipfrac_core::{BBox, Label};
use hipfrac_infer::{verdict, Predictor};
use hipfrac_model::ModelConfig;
use std::path::PathBuf;

fn model(dir: &std::path::Path, bias: Option<f64>) -> Predictor {
    hipfrac_infer::write_untrained(dir, &ModelConfig::nano(1, 4), 128, bias).unwrap();
    Predictor::load(dir, tch::Device::Cpu).unwrap()
}

fn phantom_image(dir: &std::path::Path) -> PathBuf {
    let options = hipfrac_phantom::output::GenerateOptions {
        count: 1,
        site: hipfrac_phantom::acquisition::SiteProfile::load("site-a").unwrap(),
        seed: 3,
        size: 192,
        out: dir.to_path_buf(),
        mix: hipfrac_phantom::ClassMix::default(),
        overwrite: false,
    };
    let rows = hipfrac_phantom::output::generate(&options, || {}).unwrap();
    dir.join(&rows[0].dicom)
}

#[test]
fn letterbox_boxes_map_back_to_the_image() {
    let image = hipfrac_core::Radiograph {
        meta: hipfrac_core::RadiographMeta::plain(300, 200, 12),
        pixels: hipfrac_core::Pixels::Unsigned((0..60_000).map(|i| (i % 4096) as u16).collect()),
    };
    let l = hipfrac_imaging::letterbox(
        &image,
        &hipfrac_imaging::Preprocess {
            size: 128,
            equalize: false,
        },
    )
    .unwrap();
    let b = BBox::new(10.0, 20.0, 150.0, 290.0);
    let back = l.to_original(&l.to_letterbox(&b));
    for (x, y) in [
        (back.x_min, b.x_min),
        (back.y_min, b.y_min),
        (back.x_max, b.x_max),
        (back.y_max, b.y_max),
    ] {
        assert!((x - y).abs() < 1e-3, "{back:?} vs {b:?}");
    }
    // The longer side (300 rows) fills the letterbox; the 200 columns take 85 of 128.
    assert!((l.scale_y - 128.0 / 300.0).abs() < 1e-6 && (l.scale_x - 85.0 / 200.0).abs() < 1e-6);
}

#[test]
fn untrained_model_predicts_on_a_phantom_radiograph() {
    let temp = tempfile::tempdir().unwrap();
    let predictor = model(&temp.path().join("model"), Some(0.0));
    assert_eq!(predictor.input_size(), 128);
    assert_eq!(predictor.preset(), Some(hipfrac_core::Preset::Nano));
    assert_eq!(predictor.model_hash.len(), 16);
    let path = phantom_image(&temp.path().join("phantom"));
    let image = hipfrac_dicom::read_radiograph(&path).unwrap();
    assert!(image.meta.is_simulated());
    let p = predictor.predict_batch(std::slice::from_ref(&image)).remove(0).unwrap();
    // Scores near 0.5 everywhere: boxes of every class, at most 100, inside the image.
    assert!(!p.detections.is_empty() && p.detections.len() <= 100);
    for d in &p.detections {
        assert!(
            d.score >= 0.05 && d.bbox.is_inside(image.width(), image.height()) && !d.bbox.is_degenerate(),
            "{d:?}"
        );
    }
    assert!(p.detections.windows(2).all(|w| w[0].score >= w[1].score));
    // The verdict is the rule applied to the class scores, and its side comes from the file.
    assert_eq!(p.verdict(), Some(&verdict::decide(p.class_scores, &predictor.points)));
    assert_ne!(p.verdict().unwrap().label, Label::NoFracture);
    let side = p.side.expect("a fracture verdict has a side");
    assert_eq!(side.source, hipfrac_infer::SideSource::ImageLaterality);
}

#[test]
fn default_head_bias_gives_no_fracture() {
    // The reference's 1 % prior: untrained scores ≈ 0.01 < 0.05, so nothing is reported.
    let temp = tempfile::tempdir().unwrap();
    let predictor = model(&temp.path().join("model"), None);
    let path = phantom_image(&temp.path().join("phantom"));
    let image = hipfrac_dicom::read_radiograph(&path).unwrap();
    let p = predictor.predict_batch(std::slice::from_ref(&image)).remove(0).unwrap();
    assert!(p.detections.is_empty());
    assert_eq!(p.verdict().unwrap().label, Label::NoFracture);
    assert!(p.side.is_none());
}

#[test]
fn shared_rg2_predicts_end_to_end() {
    // `$HIPFRAC_SHARED`, else ../shared beside the workspace.
    let shared = std::env::var_os("HIPFRAC_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let path = shared.join("data/dicom/dicom_wg04_hip/RG2_UNC");
    if !path.is_file() {
        if std::env::var_os("HIPFRAC_REQUIRE_SHARED").is_some() {
            panic!(
                "{} is required (HIPFRAC_REQUIRE_SHARED is set) but absent",
                path.display()
            );
        }
        eprintln!("SKIP: {} is absent", path.display());
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let predictor = model(&temp.path().join("model"), Some(0.0));
    let image = hipfrac_dicom::read_radiograph(&path).unwrap();
    let p = predictor.predict_batch(std::slice::from_ref(&image)).remove(0).unwrap();
    assert_eq!((p.width, p.height), (image.width(), image.height()));
    assert!(p
        .detections
        .iter()
        .all(|d| d.bbox.is_inside(image.width(), image.height())));
}

#[test]
fn bad_model_folders_are_named() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("model");
    let error = Predictor::load(&dir, tch::Device::Cpu)
        .err()
        .map(|e| hipfrac_core::error_chain(&e))
        .unwrap();
    assert!(
        error.contains("config.json") && error.contains("cannot read"),
        "{error}"
    );
    // Weights of the nano preset under a `t` config: refused, naming the weights.
    hipfrac_infer::write_untrained(&dir, &ModelConfig::nano(1, 4), 128, None).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec(&ModelConfig::t(1, 4)).unwrap(),
    )
    .unwrap();
    let error = Predictor::load(&dir, tch::Device::Cpu)
        .err()
        .map(|e| hipfrac_core::error_chain(&e))
        .unwrap();
    assert!(
        error.contains("model.safetensors") && error.contains("do not fit"),
        "{error}"
    );
    // A bad operating-points file.
    hipfrac_infer::write_untrained(&dir, &ModelConfig::nano(1, 4), 128, None).unwrap();
    let mut points = hipfrac_infer::OperatingPoints::uncalibrated();
    points.classes[0].fracture = 0.1;
    std::fs::write(dir.join("operating_points.json"), serde_json::to_vec(&points).unwrap()).unwrap();
    let error = Predictor::load(&dir, tch::Device::Cpu)
        .err()
        .map(|e| hipfrac_core::error_chain(&e))
        .unwrap();
    assert!(
        error.contains("operating_points.json") && error.contains("fracture ≥ suspicious"),
        "{error}"
    );
}

/// An operating_points.json (or a site's) that leaves out a class is refused when the model
/// loads, naming the file and the classes; a model without one loads uncalibrated and says so.
#[test]
fn operating_points_must_name_all_four_classes() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("model");
    hipfrac_infer::write_untrained(&dir, &ModelConfig::nano(1, 4), 128, None).unwrap();
    let predictor = Predictor::load(&dir, tch::Device::Cpu).unwrap();
    assert!(predictor.is_uncalibrated());
    assert!(
        predictor.caveats().contains(&"UNCALIBRATED"),
        "{:?}",
        predictor.caveats()
    );

    let mut points = hipfrac_infer::OperatingPoints::uncalibrated();
    points.chosen_on = "validation.csv (40 images)".into();
    let complete = points.clone();
    points
        .classes
        .retain(|t| t.class.code() == "DF" || t.class.code() == "VF");
    let path = dir.join("operating_points.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&points).unwrap()).unwrap();
    let error = Predictor::load(&dir, tch::Device::Cpu)
        .err()
        .map(|e| hipfrac_core::error_chain(&e))
        .expect("partial operating points are refused");
    assert_eq!(
        error,
        format!(
            "{}: cannot load the model: invalid operating points: SF and UF have no thresholds: operating points must name all four classes (DF, VF, SF, UF), or a class left out would silently run on the uncalibrated defaults",
            path.display()
        )
    );

    // Complete points load, calibrated; a site's file that leaves out a class is refused too.
    std::fs::write(&path, serde_json::to_vec_pretty(&complete).unwrap()).unwrap();
    let mut predictor = Predictor::load(&dir, tch::Device::Cpu).unwrap();
    assert!(!predictor.is_uncalibrated() && !predictor.caveats().contains(&"UNCALIBRATED"));
    let mut site = complete.clone();
    site.classes.remove(1);
    let site_path = hipfrac_infer::calibrate::site_points_path(&dir, "north");
    std::fs::write(&site_path, serde_json::to_vec_pretty(&site).unwrap()).unwrap();
    let error = hipfrac_core::error_chain(&predictor.use_site("north").unwrap_err());
    assert!(
        error.starts_with(&format!("{}: ", site_path.display())) && error.contains("VF has no thresholds"),
        "{error}"
    );
    assert_eq!(predictor.points, complete, "the model's own points are kept");
}

#[test]
fn a_batch_equals_one_image_at_a_time_in_order() {
    let temp = tempfile::tempdir().unwrap();
    let predictor = model(&temp.path().join("model"), Some(0.0));
    let good = hipfrac_dicom::read_radiograph(&phantom_image(&temp.path().join("phantom"))).unwrap();
    let mut flipped = good.clone();
    if let hipfrac_core::Pixels::Unsigned(p) = &mut flipped.pixels {
        p.reverse();
    }
    // Five images: more than one CPU batch (2), the two kinds interleaved.
    let batch = predictor.predict_batch(&[
        good.clone(),
        good.clone(),
        flipped.clone(),
        good.clone(),
        flipped.clone(),
    ]);
    assert_eq!(batch.len(), 5);
    let one =
        |image: &hipfrac_core::Radiograph| predictor.predict_batch(std::slice::from_ref(image)).remove(0).unwrap();
    let (a, b) = (one(&good), one(&flipped));
    assert_ne!(a, b, "two different images should not give identical predictions");
    for (k, expected) in [(0, &a), (1, &a), (2, &b), (3, &a), (4, &b)] {
        let got = batch[k].as_ref().unwrap();
        assert_eq!(got.answer, expected.answer, "image {k}");
        assert_eq!(got.detections.len(), expected.detections.len(), "image {k}");
        for (x, y) in got.class_scores.iter().zip(expected.class_scores) {
            assert!(
                (x - y).abs() < 1e-4,
                "image {k}: {:?} vs {:?}",
                got.class_scores,
                expected.class_scores
            );
        }
    }
}

/// A two-stage model folder: an untrained hip-crop detector (stage hip_crops) with an
/// untrained localiser (stage hips) whose class bias sets every hip score (sigmoid(bias)).
fn two_stage(dir: &std::path::Path, localiser_bias: f64) -> Predictor {
    let stage = |dir: &std::path::Path, name: &str| {
        let path = dir.join("train.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}stage = \"{name}\"\n")).unwrap();
    };
    hipfrac_infer::write_untrained(dir, &ModelConfig::nano(1, 4), 128, Some(0.0)).unwrap();
    stage(dir, "hip_crops");
    let localiser = dir.join("localiser");
    hipfrac_infer::write_untrained(&localiser, &ModelConfig::nano(1, 1), 96, Some(localiser_bias)).unwrap();
    stage(&localiser, "hips");
    Predictor::load(dir, tch::Device::Cpu).unwrap()
}

#[test]
fn the_two_stage_path_reads_each_hip_in_its_crop_and_abstains_without_one() {
    let temp = tempfile::tempdir().unwrap();
    let image = hipfrac_dicom::read_radiograph(&phantom_image(&temp.path().join("phantom"))).unwrap();
    // Every hip score 0.5 (above the 0.3 floor): hips found, read, boxes in the image.
    let predictor = two_stage(&temp.path().join("two"), 0.0);
    assert_eq!(predictor.stage, hipfrac_core::Stage::HipCrops);
    let p = predictor.predict_batch(std::slice::from_ref(&image)).remove(0).unwrap();
    assert!(
        !p.hips.is_empty() && p.hips.len() <= hipfrac_infer::MAX_HIPS,
        "{:?}",
        p.hips
    );
    for hip in &p.hips {
        assert!(hip.bbox.is_inside(image.width(), image.height()) && hip.score >= hipfrac_infer::HIP_MIN_SCORE);
        assert_eq!(hip.verdict, verdict::decide(hip.class_scores, &predictor.points));
        // The phantom's file names its side: one hip takes it.
        if p.hips.len() == 1 {
            assert_eq!(hip.side.source, hipfrac_core::SideSource::ImageLaterality);
        }
    }
    assert!(!p.detections.is_empty());
    for d in &p.detections {
        assert!(
            d.bbox.is_inside(image.width(), image.height()) && !d.bbox.is_degenerate(),
            "{d:?}"
        );
    }
    // The image's class scores are the best over its hips: a fractured hip wins over none.
    for c in 0..4 {
        let best = p.hips.iter().map(|h| h.class_scores[c]).fold(0.0f32, f32::max);
        assert_eq!(p.class_scores[c], best, "class {c}");
    }
    assert_eq!(p.verdict(), Some(&verdict::decide(p.class_scores, &predictor.points)));
    // The localiser finds nothing (hip scores sigmoid(-8) ≈ 0.0003): not assessable, from
    // the image, with the localiser's score in the reason; no boxes, no scores.
    let predictor = two_stage(&temp.path().join("none"), -8.0);
    let p = predictor.predict_batch(std::slice::from_ref(&image)).remove(0).unwrap();
    let why = p.not_assessable().expect("no hip: not assessable");
    assert_eq!(why.source, hipfrac_core::AbstentionSource::Image);
    assert!(why.reason.contains("no proximal femur"), "{}", why.reason);
    assert!(p.detections.is_empty() && p.hips.is_empty());
}

#[test]
fn a_localiser_alone_or_a_crop_detector_without_one_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("crops");
    hipfrac_infer::write_untrained(&dir, &ModelConfig::nano(1, 4), 128, None).unwrap();
    std::fs::write(dir.join("train.toml"), "image_size = 128\nstage = \"hip_crops\"\n").unwrap();
    let error = Predictor::load(&dir, tch::Device::Cpu)
        .err()
        .map(|e| hipfrac_core::error_chain(&e))
        .unwrap();
    assert!(
        error.contains("needs its localiser") && error.contains("localiser"),
        "{error}"
    );
    // Its localiser/ holding a four-class whole-image detector: not a localiser.
    hipfrac_infer::write_untrained(&dir.join("localiser"), &ModelConfig::nano(1, 4), 96, None).unwrap();
    let error = Predictor::load(&dir, tch::Device::Cpu)
        .err()
        .map(|e| hipfrac_core::error_chain(&e))
        .unwrap();
    assert!(error.contains("not a hip localiser"), "{error}");
    // A localiser loaded for predictions: refused, it gives no verdict.
    let alone = temp.path().join("alone");
    hipfrac_infer::write_untrained(&alone, &ModelConfig::nano(1, 1), 96, None).unwrap();
    std::fs::write(alone.join("train.toml"), "image_size = 96\nstage = \"hips\"\n").unwrap();
    let error = Predictor::load(&alone, tch::Device::Cpu)
        .err()
        .map(|e| hipfrac_core::error_chain(&e))
        .unwrap();
    assert!(error.contains("gives no verdict"), "{error}");
    // A stage whose class count the weights do not have.
    std::fs::write(alone.join("train.toml"), "image_size = 96\n").unwrap();
    let error = Predictor::load(&alone, tch::Device::Cpu)
        .err()
        .map(|e| hipfrac_core::error_chain(&e))
        .unwrap();
    assert!(
        error.contains("4 classes (stage whole)") && error.contains("found 1 and 1"),
        "{error}"
    );
}

/// A radiograph whose window is not a usable number, and one whose pixels are all one value,
/// are answered not assessable with the reason (no boxes, no scores); the other images of
/// the batch are predicted as they would be alone, by one and by two stages.
#[test]
fn a_bad_window_or_a_constant_image_is_not_assessable_and_the_batch_goes_on() {
    let temp = tempfile::tempdir().unwrap();
    let good = hipfrac_dicom::read_radiograph(&phantom_image(&temp.path().join("phantom"))).unwrap();
    assert_eq!(good.meta.windows.len(), 1, "the phantom's file has a window");
    let mut nan = good.clone();
    nan.meta.windows[0].center = f64::NAN;
    let mut wide = good.clone();
    wide.meta.windows[0].width = f64::INFINITY;
    let mut constant = good.clone();
    constant.pixels = hipfrac_core::Pixels::Unsigned(vec![1234; good.pixels.len()]);
    let batch = [good.clone(), nan, constant, wide, good.clone()];
    for (name, predictor) in [
        ("one stage", model(&temp.path().join("model"), Some(0.0))),
        ("two stages", two_stage(&temp.path().join("two"), 0.0)),
    ] {
        let alone = predictor.predict_batch(std::slice::from_ref(&good)).remove(0).unwrap();
        let answers: Vec<_> = predictor
            .predict_batch(&batch)
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| panic!("{name}: {}", hipfrac_core::error_chain(&e))))
            .collect();
        assert_eq!(answers.len(), 5);
        for k in [0, 4] {
            assert_eq!(answers[k].answer, alone.answer, "{name}: image {k}");
            assert!(answers[k].not_assessable().is_none(), "{name}: image {k}");
        }
        for (k, reason, source) in [
            (
                1,
                "Window Center (0028,1050) is NaN: window center is not a finite number (at most 1e9 in magnitude)",
                hipfrac_core::AbstentionSource::Header,
            ),
            (
                2,
                "the image is constant: every pixel is 1234",
                hipfrac_core::AbstentionSource::Image,
            ),
            (
                3,
                "Window Width (0028,1051) is inf: window width is not a finite positive number (at most 1e9)",
                hipfrac_core::AbstentionSource::Header,
            ),
        ] {
            let p = &answers[k];
            let why = p
                .not_assessable()
                .unwrap_or_else(|| panic!("{name}: image {k} answered {:?}", p.answer));
            assert_eq!((why.reason.as_str(), why.source), (reason, source), "{name}: image {k}");
            assert!(
                p.detections.is_empty() && p.hips.is_empty() && p.side.is_none(),
                "{name}: image {k}"
            );
            assert_eq!((p.width, p.height), (good.width(), good.height()));
        }
    }
}

/// What `hipfrac evaluate` and `hipfrac calibrate` predict from: a manifest holding a DICOM
/// file whose Window Center is NaN and a constant image is predicted whole, those two cases
/// not assessable with their reasons.
#[test]
fn a_manifest_with_a_bad_window_and_a_constant_image_is_predicted_whole() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let options = hipfrac_phantom::output::GenerateOptions {
        count: 3,
        site: hipfrac_phantom::acquisition::SiteProfile::load("site-a").unwrap(),
        seed: 5,
        size: 160,
        out: data.clone(),
        mix: hipfrac_phantom::ClassMix::default(),
        overwrite: false,
    };
    let rows = hipfrac_phantom::output::generate(&options, || {}).unwrap();
    // The manifest lists the DICOM files instead of the PNGs.
    let mut manifest = std::fs::read_to_string(data.join("manifest.csv")).unwrap();
    for row in &rows {
        manifest = manifest.replace(&format!("{},", row.image), &format!("{},", row.dicom));
    }
    let path = data.join("dicom.csv");
    std::fs::write(&path, manifest).unwrap();
    let attributes = hipfrac_dicom::write::DicomAttributes {
        view_position: "AP".into(),
        ..Default::default()
    };
    let rewrite = |k: usize, change: &dyn Fn(&mut hipfrac_core::Radiograph)| {
        let file = data.join(&rows[k].dicom);
        let mut image = hipfrac_dicom::read_radiograph(&file).unwrap();
        change(&mut image);
        hipfrac_dicom::write::write_cr(&file, &image, &attributes).unwrap();
    };
    rewrite(1, &|image| image.meta.windows[0].center = f64::NAN);
    rewrite(2, &|image| {
        image.pixels = hipfrac_core::Pixels::Unsigned(vec![1000; image.pixels.len()]);
    });

    let predictor = model(&temp.path().join("model"), Some(0.0));
    let cases = hipfrac_infer::cases::predict_manifest(&predictor, &path, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("{}", hipfrac_core::error_chain(&e)));
    assert_eq!(cases.len(), 3);
    assert_eq!(
        cases.iter().map(|c| c.image.as_str()).collect::<Vec<_>>(),
        rows.iter().map(|r| r.dicom.as_str()).collect::<Vec<_>>()
    );
    assert!(
        cases[0].prediction.verdict().is_some(),
        "{:?}",
        cases[0].prediction.answer
    );
    let reason = |k: usize| {
        cases[k]
            .prediction
            .not_assessable()
            .map(|w| w.reason.clone())
            .unwrap_or_else(|| panic!("case {k}: {:?}", cases[k].prediction.answer))
    };
    assert_eq!(
        reason(1),
        "Window Center (0028,1050) is NaN: window center is not a finite number (at most 1e9 in magnitude)"
    );
    assert_eq!(reason(2), "the image is constant: every pixel is 1000");
}
