//! `hipfrac predict`, `calibrate`, `evaluate` and `demo` end to end with real files. The models
//! are untrained (class bias 0 so they still draw boxes) or trained for one epoch: these tests
//! check the plumbing and the outputs, not accuracy (the demo and its README table do that).

use crate::support::{assert_dciodvfy_clean, bad_dicom, hipfrac, shared_dicom};
use hipfrac_model::ModelConfig;
use std::path::{Path, PathBuf};

fn untrained(dir: &Path, size: i64) -> PathBuf {
    let model = dir.join("model");
    hipfrac_infer::write_untrained(&model, &ModelConfig::nano(1, 4), size, Some(0.0)).unwrap();
    model
}

fn phantom(dir: &Path, count: usize) -> PathBuf {
    let data = dir.join("data");
    hipfrac()
        .args([
            "phantom",
            "--count",
            &count.to_string(),
            "--size",
            "128",
            "--seed",
            "5",
            "--out",
        ])
        .arg(&data)
        .assert()
        .success();
    hipfrac()
        .args(["dataset", "split"])
        .arg(&data)
        .args(["--ratios", "0.5,0.5,0", "--seed", "1"])
        .assert()
        .success();
    data
}

/// One phantom DICOM (in `dir/data`) and an untrained model that draws boxes: (data, model,
/// the DICOM file).
fn one_phantom_dicom(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let data = phantom(dir, 1);
    let model = untrained(dir, 128);
    let source = std::fs::read_dir(data.join("dicom"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    (data, model, source)
}

#[test]
fn predict_writes_json_overlay_and_summary_and_names_a_corrupt_file() {
    let temp = tempfile::tempdir().unwrap();
    let model = untrained(temp.path(), 128);
    // The shared RG2 hip when present, else a phantom radiograph.
    let good = match shared_dicom() {
        Some(root) => root.join("dicom_wg04_hip/RG2_UNC"),
        None => phantom(temp.path(), 2)
            .join("dicom")
            .read_dir()
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    };
    let bytes = std::fs::read(&good).unwrap();
    let corrupt = temp.path().join("corrupt.dcm");
    std::fs::write(&corrupt, &bytes[..bytes.len() / 3]).unwrap();
    let out = temp.path().join("out");
    let assert = hipfrac()
        .arg("predict")
        .arg(&good)
        .arg(&corrupt)
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(&out)
        .args(["--device", "cpu"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains("corrupt.dcm") && (stderr.contains("truncated") || stderr.contains("corrupt")),
        "{stderr}"
    );
    assert!(stderr.contains("not a medical device"), "{stderr}");
    let stem = good.file_stem().unwrap().to_string_lossy().to_string();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(format!("{stem}.json"))).unwrap()).unwrap();
    // The verdict is the rule on the JSON's own class scores (uncalibrated thresholds); with
    // scores near 0.5 it is a fracture, on a known side.
    let scores: Vec<f32> = ["DF", "VF", "SF", "UF"]
        .iter()
        .map(|c| json["class_scores"][c].as_f64().unwrap() as f32)
        .collect();
    let expected = hipfrac_core::verdict::decide(
        scores.try_into().unwrap(),
        &hipfrac_core::OperatingPoints::uncalibrated(),
    );
    assert_eq!(json["verdict"].as_str().unwrap(), expected.label.code(), "{json}");
    assert_ne!(expected.label, hipfrac_core::Label::NoFracture, "{json}");
    assert!(
        (json["confidence"].as_f64().unwrap() as f32 - expected.confidence.unwrap()).abs() < 1e-6,
        "{json}"
    );
    assert!(
        ["right", "left"].contains(&json["side"]["side"].as_str().unwrap()),
        "{json}"
    );
    assert_eq!(json["model"]["hash"].as_str().unwrap().len(), 16);
    assert!(json["boxes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["score"].as_f64().unwrap() >= 0.05));
    // Both the shared hip and the phantom's DICOM carry a SOP Instance UID: it must come through.
    let uid = json["sop_instance_uid"].as_str().expect("a SOP Instance UID");
    assert!(
        uid.len() > 8 && uid.chars().all(|c| c.is_ascii_digit() || c == '.'),
        "{uid}"
    );
    // The JSON validates against the published schema, and names the study and series.
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../../docs/prediction.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&json).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{json}");
    assert_eq!(json["schema_version"], 3);
    assert!(
        json["study_instance_uid"].as_str().is_some_and(|u| u.contains('.')),
        "{json}"
    );
    let overlay = out.join(format!("{stem}.overlay.png"));
    let header = png::Decoder::new(std::fs::File::open(&overlay).unwrap())
        .read_info()
        .unwrap()
        .info()
        .clone();
    assert_eq!(header.color_type, png::ColorType::Rgb);
    assert!(header.width.max(header.height) <= 1024);
    assert!(!out.join("corrupt.json").exists() && !out.join("corrupt.overlay.png").exists());
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 3, "{summary}");
    assert!(summary
        .lines()
        .any(|l| l.contains("corrupt.dcm") && l.contains("truncated")
            || l.contains("corrupt.dcm") && l.contains("corrupt")));
    // A second run does not replace the first without --overwrite.
    let again = hipfrac()
        .arg("predict")
        .arg(&good)
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(&out)
        .args(["--device", "cpu"])
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&again.get_output().stderr).contains("--overwrite"));
}

#[test]
fn predict_refuses_a_missing_model_clearly() {
    let temp = tempfile::tempdir().unwrap();
    let assert = hipfrac()
        .arg("predict")
        .arg(temp.path())
        .arg("--model")
        .arg(temp.path().join("nope"))
        .arg("--out")
        .arg(temp.path().join("o"))
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("nope") && stderr.contains("config.json"), "{stderr}");
    assert!(!temp.path().join("o").exists());
}

/// A new site: `calibrate --site` re-fits the thresholds on its small sample beside the
/// model's own, says what changed, and `predict --site` uses them.
#[test]
fn a_site_gets_its_own_operating_points() {
    let temp = tempfile::tempdir().unwrap();
    let data = phantom(temp.path(), 12);
    let model = untrained(temp.path(), 128);
    let refit = |extra: &[&str]| {
        hipfrac()
            .arg("calibrate")
            .arg("--model")
            .arg(&model)
            .arg("--data")
            .arg(data.join("manifest.csv"))
            .args(["--device", "cpu", "--site", "site-c"])
            .args(extra)
            .assert()
    };
    let out = refit(&[]).success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("site site-c: 12 images") && stderr.contains(" → ") && stderr.contains("VF priority"),
        "{stderr}"
    );
    assert!(
        stderr.contains("kept (too few images of it in the sample)") || stderr.contains("re-fitted"),
        "{stderr}"
    );
    let points: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("operating_points.site-c.json")).unwrap()).unwrap();
    assert!(
        points["chosen_on"].as_str().unwrap().starts_with("site site-c"),
        "{points}"
    );
    assert!(
        !model.join("operating_points.json").exists(),
        "the model's own points are not touched"
    );
    refit(&[]).code(2);
    refit(&["--overwrite"]).success();
    hipfrac()
        .arg("calibrate")
        .arg("--model")
        .arg(&model)
        .arg("--data")
        .arg(data.join("manifest.csv"))
        .args(["--site", "../x"])
        .assert()
        .code(2);
    let out_dir = temp.path().join("out");
    let image = std::fs::read_dir(data.join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .unwrap();
    hipfrac()
        .arg("predict")
        .arg(&image)
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(&out_dir)
        .args(["--device", "cpu", "--no-overlay", "--site", "site-c"])
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out_dir.join(format!("{}.json", image.file_stem().unwrap().to_str().unwrap()))).unwrap(),
    )
    .unwrap();
    assert!(
        json["model"]["operating_points"]
            .as_str()
            .unwrap()
            .starts_with("site site-c"),
        "{json}"
    );
    let out = hipfrac()
        .arg("predict")
        .arg(&image)
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(temp.path().join("o2"))
        .args(["--device", "cpu", "--site", "site-x"])
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("calibrate --site site-x"));
}

#[test]
fn calibrate_then_evaluate_writes_the_report() {
    let temp = tempfile::tempdir().unwrap();
    let data = phantom(temp.path(), 10);
    let model = untrained(temp.path(), 128);
    hipfrac()
        .arg("calibrate")
        .arg("--model")
        .arg(&model)
        .arg("--data")
        .arg(data.join("splits/val.csv"))
        .args(["--device", "cpu"])
        .assert()
        .success();
    let points: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("operating_points.json")).unwrap()).unwrap();
    assert!(points["chosen_on"].as_str().unwrap().contains("val.csv"));
    assert_eq!(points["classes"].as_array().unwrap().len(), 4);
    let report = temp.path().join("report");
    hipfrac()
        .arg("evaluate")
        .arg("--model")
        .arg(&model)
        .arg("--data")
        .arg(format!("internal={}", data.join("splits/train.csv").display()))
        .arg("--data")
        .arg(data.join("splits/val.csv"))
        .arg("--out")
        .arg(&report)
        .args(["--device", "cpu"])
        .assert()
        .success();
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    for needle in [
        "Phantom results",
        "Table II",
        "<svg",
        "Confusion matrix",
        "Definitions",
        "val.csv",
    ] {
        assert!(html.contains(needle), "report.html lacks {needle:?}");
    }
    // Scores near 0.5 everywhere: every image gets a fracture verdict, so the gallery has
    // pictures.
    assert!(html.contains("data:image/png;base64,"));
    let metrics = std::fs::read_to_string(report.join("metrics.csv")).unwrap();
    // 2 sections × 2 operating points × (4 classes + micro + macro), the any-fracture row of
    // each section at the verdict, plus the header.
    assert_eq!(metrics.lines().count(), 27, "{metrics}");
    assert!(metrics.lines().any(|l| l.starts_with("internal,verdict,DF,")));
    assert!(metrics.lines().any(|l| l.starts_with("internal,verdict,any,")));
    let any: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("any_fracture.json")).unwrap()).unwrap();
    assert_eq!(any["internal"]["images"], 6, "{any}");
    assert!(metrics.lines().any(|l| l.starts_with("val,fracture,macro,")));
    let cases = std::fs::read_to_string(report.join("cases.csv")).unwrap();
    assert_eq!(cases.lines().count(), 11);
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.contains("| Fracture type | Accuracy | Sensitivity | Specificity | IoU | Dice |"));
    // No silent replacement of a report.
    hipfrac()
        .arg("evaluate")
        .arg("--model")
        .arg(&model)
        .arg("--data")
        .arg(data.join("splits/val.csv"))
        .arg("--out")
        .arg(&report)
        .args(["--device", "cpu"])
        .assert()
        .code(2);
}

#[test]
fn demo_runs_end_to_end_small() {
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("demo");
    let assert = hipfrac()
        .arg("demo")
        .arg("--out")
        .arg(&out)
        .args([
            "--epochs",
            "1",
            "--internal-images",
            "40",
            "--external-images",
            "10",
            "--ratios",
            "0.6,0.2,0.2",
            "--single-stage",
        ])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    assert!(
        stdout.contains("PHANTOM") && stdout.contains("internal test") && stdout.contains("external"),
        "{stdout}"
    );
    assert!(out.join("report/report.html").is_file() && out.join("run/best/operating_points.json").is_file());
    let report = std::fs::read_to_string(out.join("report/report.md")).unwrap();
    assert!(
        report.contains("split by patient 60/20/20") && report.contains("stage whole"),
        "{report}"
    );
    // Patients come from the phantom's manifests, and none crosses the split.
    let patients = |name: &str| -> std::collections::BTreeSet<String> {
        let text = std::fs::read_to_string(out.join("internal/splits").join(name)).unwrap();
        text.lines()
            .skip(1)
            .map(|l| l.split(',').nth(2).unwrap().to_string())
            .collect()
    };
    let (train, test) = (patients("train.csv"), patients("test.csv"));
    assert!(
        train.iter().chain(&test).all(|p| p.starts_with("PH-site-")),
        "{train:?}"
    );
    assert!(train.is_disjoint(&test));
    assert!(train.iter().any(|p| p.starts_with("PH-site-a")) && train.iter().any(|p| p.starts_with("PH-site-b")));
    // A second demo never overwrites the first; a split without a test share, or both
    // configurations at once, are refused before any work.
    hipfrac()
        .arg("demo")
        .arg("--out")
        .arg(&out)
        .args(["--epochs", "1"])
        .assert()
        .code(2);
    let other = temp.path().join("other");
    hipfrac()
        .arg("demo")
        .arg("--out")
        .arg(&other)
        .args(["--ratios", "0.9,0.1,0"])
        .assert()
        .code(2);
    hipfrac()
        .arg("demo")
        .arg("--out")
        .arg(&other)
        .args(["--single-stage", "--two-stage"])
        .assert()
        .code(2);
    assert!(!other.exists());
}

/// `demo --generator v2` simulates its sites with phantom v2 (bench/real.sh's transfer
/// measure): the films' DICOM says so, and the demo runs through to its report.
#[test]
fn demo_simulates_with_phantom_v2_when_asked() {
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("demo");
    hipfrac()
        .arg("demo")
        .arg("--out")
        .arg(&out)
        .args([
            "--generator",
            "v2",
            "--single-stage",
            "--epochs",
            "1",
            "--phantom-px",
            "128",
        ])
        .args([
            "--internal-images",
            "12",
            "--external-images",
            "2",
            "--ratios",
            "0.6,0.2,0.2",
        ])
        .assert()
        .success();
    assert!(out.join("report/report.md").is_file());
    let first = std::fs::read_dir(out.join("external/dicom"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "dcm"))
        .expect("a DICOM of the external site");
    let bytes = std::fs::read(first).unwrap();
    assert!(
        bytes.windows(b"(phantom v2)".len()).any(|w| w == b"(phantom v2)"),
        "the films are not phantom v2's"
    );
}

/// The one prediction path: `predict`'s JSON and `evaluate`'s cases.csv say the same of the
/// same images (the workstation's overlay comes from the same `Predictor::predict_batch`).
#[test]
fn predict_and_evaluate_agree_image_by_image() {
    let temp = tempfile::tempdir().unwrap();
    let data = phantom(temp.path(), 6);
    let model = untrained(temp.path(), 128);
    let out = temp.path().join("predicted");
    hipfrac()
        .arg("predict")
        .arg(data.join("images"))
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(&out)
        .args(["--device", "cpu", "--no-overlay"])
        .assert()
        .success();
    let report = temp.path().join("report");
    hipfrac()
        .arg("evaluate")
        .arg("--model")
        .arg(&model)
        .arg("--data")
        .arg(format!("all={}", data.join("manifest.csv").display()))
        .arg("--out")
        .arg(&report)
        .args(["--device", "cpu"])
        .assert()
        .success();
    let cases = hipfrac_report::cases::read(&report.join("cases.csv")).unwrap();
    assert_eq!(cases.len(), 6);
    for case in &cases {
        let stem = std::path::Path::new(&case.image)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(format!("{stem}.json"))).unwrap()).unwrap();
        assert_eq!(json["verdict"].as_str().unwrap(), case.verdict.code(), "{stem}");
        assert_eq!(
            json["confidence"].as_f64().map(|c| (c * 1e4).round() as i64),
            case.confidence.map(|c| (c as f64 * 1e4).round() as i64),
            "{stem}"
        );
        for (code, score) in [("DF", case.df), ("VF", case.vf), ("SF", case.sf), ("UF", case.uf)] {
            assert!(
                (json["class_scores"][code].as_f64().unwrap() as f32 - score).abs() < 1e-4,
                "{stem} {code}"
            );
        }
    }
}

/// Two reproducers of ../shared/data/bad-dicom through predict: a NaN window is answered "not
/// assessable" with its reason (never a confident "none" from a black image, never the end of
/// the run), and a SOP Instance UID that is a spreadsheet formula reaches summary.csv
/// neutralised.
#[test]
fn predict_refuses_a_nan_window_and_neutralises_formulas() {
    let bad = bad_dicom();
    let temp = tempfile::tempdir().unwrap();
    let input = temp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    for name in ["window_center_nan.dcm", "csv_injection_sop_uid.dcm"] {
        std::fs::copy(bad.join(name), input.join(name)).unwrap();
    }
    let model = untrained(temp.path(), 128);
    let out = temp.path().join("out");
    let assert = hipfrac()
        .arg("predict")
        .arg(&input)
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(&out)
        .args(["--device", "cpu", "--no-overlay"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains("failed 0") && stderr.contains("1 not assessable"),
        "{stderr}"
    );
    let nan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("window_center_nan.json")).unwrap()).unwrap();
    assert_eq!(nan["verdict"], "not_assessable", "{nan}");
    let reason = nan["not_assessable"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("Window Center (0028,1050) is NaN"), "{nan}");
    assert_eq!(nan["not_assessable"]["source"], "header", "{nan}");
    assert!(nan["class_scores"].is_null(), "{nan}");
    assert!(nan["boxes"].as_array().is_none_or(|b| b.is_empty()), "{nan}");
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(summary.contains("\"'=HYPERLINK("), "{summary}");
    assert!(
        !summary
            .lines()
            .any(|l| l.split(',').any(|cell| cell.trim_start_matches('"').starts_with('='))),
        "{summary}"
    );
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("csv_injection_sop_uid.json")).unwrap()).unwrap();
    assert!(
        record["sop_instance_uid"].as_str().unwrap().starts_with("=HYPERLINK"),
        "the JSON keeps the value as it is"
    );
}

/// `evaluate` refuses a manifest that lists an image twice, or whose label contradicts the
/// image's annotation, naming the row — an evaluation must not count a case twice or score
/// against a truth that disagrees with itself.
#[test]
fn evaluate_refuses_duplicate_rows_and_contradicting_labels() {
    let temp = tempfile::tempdir().unwrap();
    let data = phantom(temp.path(), 4);
    let model = untrained(temp.path(), 128);
    let manifest = std::fs::read_to_string(data.join("manifest.csv")).unwrap();
    let lines: Vec<&str> = manifest.lines().collect();
    let evaluate = |text: String| {
        let path = data.join("edited.csv");
        std::fs::write(&path, text).unwrap();
        let assert = hipfrac()
            .arg("evaluate")
            .arg("--model")
            .arg(&model)
            .arg("--data")
            .arg(format!("all={}", path.display()))
            .arg("--out")
            .arg(temp.path().join("report"))
            .args(["--device", "cpu"])
            .assert()
            .failure();
        assert!(!temp.path().join("report/cases.csv").exists());
        String::from_utf8_lossy(&assert.get_output().stderr).to_string()
    };
    let duplicated = format!("{}\n{}\n", manifest.trim_end(), lines[1]);
    let stderr = evaluate(duplicated);
    assert!(
        stderr.contains("edited.csv: row 6") && stderr.contains("is listed again (first on row 2)"),
        "{stderr}"
    );
    // Relabel the first row as another class than its boxes say.
    let mut fields: Vec<String> = lines[1].split(',').map(str::to_string).collect();
    let column = lines[0].split(',').position(|c| c == "label").unwrap();
    fields[column] = if fields[column] == "SF" {
        "UF".into()
    } else {
        "SF".into()
    };
    let contradicting = std::iter::once(lines[0].to_string())
        .chain(std::iter::once(fields.join(",")))
        .chain(lines[2..].iter().map(|l| l.to_string()))
        .collect::<Vec<_>>()
        .join("\n");
    let stderr = evaluate(contradicting);
    assert!(
        stderr.contains("edited.csv: row 2") && stderr.contains("but its annotation"),
        "{stderr}"
    );
}

/// `predict --skip-existing` predicts only new images, keeps every earlier JSON as it was,
/// and adds the new rows to summary.csv without losing the earlier ones.
#[test]
fn predict_skip_existing_adds_to_an_earlier_run() {
    let temp = tempfile::tempdir().unwrap();
    let data = phantom(temp.path(), 3);
    let model = untrained(temp.path(), 128);
    let images = data.join("images");
    let input = temp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let mut pngs: Vec<_> = std::fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    pngs.sort();
    for png in &pngs[..2] {
        std::fs::copy(png, input.join(png.file_name().unwrap())).unwrap();
    }
    let out = temp.path().join("out");
    let run = |extra: &[&str]| {
        hipfrac()
            .arg("predict")
            .arg(&input)
            .arg("--model")
            .arg(&model)
            .arg("--out")
            .arg(&out)
            .args(["--device", "cpu", "--no-overlay"])
            .args(extra)
            .assert()
    };
    run(&[]).success();
    let first_json = out.join(pngs[0].file_stem().unwrap()).with_extension("json");
    let before = (
        std::fs::read(&first_json).unwrap(),
        std::fs::metadata(&first_json).unwrap().modified().unwrap(),
    );
    run(&[]).failure();
    std::fs::copy(&pngs[2], input.join(pngs[2].file_name().unwrap())).unwrap();
    let assert = run(&["--skip-existing"]).success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("predicted 1, failed 0, already there 2"), "{stderr}");
    assert_eq!(
        (
            std::fs::read(&first_json).unwrap(),
            std::fs::metadata(&first_json).unwrap().modified().unwrap()
        ),
        before
    );
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 4, "header + three images: {summary}");
    for png in &pngs {
        assert!(
            summary.contains(png.file_name().unwrap().to_str().unwrap()),
            "{summary}"
        );
    }
    // Nothing new: the run succeeds and the summary stays as it was.
    let assert = run(&["--skip-existing"]).success();
    assert!(String::from_utf8_lossy(&assert.get_output().stderr).contains("predicted 0, failed 0, already there 3"));
    assert_eq!(std::fs::read_to_string(out.join("summary.csv")).unwrap(), summary);
}

/// `train --init-config` writes the paper's configuration (every key with its range) that
/// `train` then accepts; Ctrl-C during a run leaves `out/last` resumable, says how to resume
/// and exits 130; the resumed run finishes and names the next command.
#[test]
fn train_init_config_interrupt_and_resume() {
    let temp = tempfile::tempdir().unwrap();
    let written = temp.path().join("paper.toml");
    hipfrac()
        .args(["train", "--init-config"])
        .arg(&written)
        .assert()
        .success();
    let text = std::fs::read_to_string(&written).unwrap();
    assert!(
        text.contains("# ema_decay: 0–0.99999") && text.contains("epochs = 430") && text.contains("image_size = 1024"),
        "{text}"
    );
    hipfrac()
        .args(["train", "--init-config"])
        .arg(&written)
        .assert()
        .code(2);
    assert_eq!(
        hipfrac_train::TrainConfig::from_file(&written).unwrap(),
        hipfrac_train::TrainConfig {
            train: temp.path().join("splits/train.csv"),
            val: temp.path().join("splits/val.csv"),
            out: temp.path().join("runs/damo-t"),
            ..Default::default()
        }
    );

    let data = phantom(temp.path(), 6);
    let config = temp.path().join("tiny.toml");
    let write_config = |epochs: u32| {
        std::fs::write(&config, format!("train = \"data/splits/train.csv\"\nval = \"data/splits/val.csv\"\nout = \"run\"\nimage_size = 64\nbatch_size = 1\nepochs = {epochs}\nwarmup_epochs = 0.0\nval_interval = 1\nmosaic = 0.0\nmixup = 0.0\n[model]\npreset = \"nano\"\n")).unwrap();
    };
    assert!(data.join("splits/train.csv").exists());
    write_config(200);
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("hipfrac"))
        .args(["train", "--device", "cpu", "--config"])
        .arg(&config)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = temp.path().join("run/log.csv");
    let started = std::time::Instant::now();
    while !log.exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "no epoch finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted during epoch") && stderr.contains("--resume"),
        "{stderr}"
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(temp.path().join("run/last/state.json")).unwrap()).unwrap();
    let done = state["epoch"].as_i64().unwrap();
    assert!(done >= 1, "{state}");
    // Resume with one more epoch to go: it continues from there and names the next step.
    write_config(done as u32 + 1);
    let assert = hipfrac()
        .args(["train", "--device", "cpu", "--resume", "--config"])
        .arg(&config)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains(&format!("starting at epoch {}", done + 1)) && stderr.contains("hipfrac calibrate --model"),
        "{stderr}"
    );
    // Every model folder carries its card: the phantom's radiographs, counted.
    for folder in ["last", "best"] {
        let card: hipfrac_core::card::ModelCard = serde_json::from_slice(
            &std::fs::read(temp.path().join("run").join(folder).join("model_card.json")).unwrap(),
        )
        .unwrap();
        assert!(
            card.training.images > 0 && card.training.simulated_images == card.training.images,
            "{card:?}"
        );
        // `best` holds the epoch with the best validation mAP, `last` the last one.
        assert!(
            if folder == "last" {
                card.epochs_trained == done + 1
            } else {
                (1..=done + 1).contains(&card.epochs_trained)
            },
            "{folder}: {card:?}"
        );
        assert!(card.describe().contains("simulated radiographs"), "{}", card.describe());
    }
}

/// `configs/paper.toml` is what `hipfrac train --init-config` writes: the paper's
/// configuration with each key's range, so the shipped file follows the defaults and ranges.
#[test]
fn the_shipped_paper_config_is_what_init_config_writes() {
    let temp = tempfile::tempdir().unwrap();
    let written = temp.path().join("paper.toml");
    hipfrac()
        .args(["train", "--init-config"])
        .arg(&written)
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(&written).unwrap(),
        include_str!("../../../../configs/paper.toml"),
        "configs/paper.toml is not what `hipfrac train --init-config` writes; if the defaults or ranges changed on purpose, regenerate it: rm configs/paper.toml && hipfrac train --init-config configs/paper.toml"
    );
}

/// Abstention: radiographs that are not an AP hip or pelvis get `not_assessable` with the
/// header's reason, never "no visible fracture": the chest (RG1), the tibia (RG3) and the two
/// OFFIS test patterns. The real hip (RG2) is assessed. The model here is untrained: what is
/// tested is the refusal, which the header decides before the network runs.
#[test]
fn predict_refuses_what_is_not_a_hip_and_says_why() {
    let Some(root) = shared_dicom() else { return };
    let temp = tempfile::tempdir().unwrap();
    let model = untrained(temp.path(), 128);
    let inputs = temp.path().join("in");
    let files = [
        (
            "chest",
            "dicom_pydicomdata_chest_mono1/RG1_J2KI.dcm",
            "Body Part Examined is CHEST",
        ),
        (
            "tibia",
            "dicom_wg04_tibia_mono1/RG3_JPLL",
            "Body Part Examined is EXTREMITY",
        ),
        ("vlut", "dicom_edgecases/vlut_04.dcm", "secondary capture"),
        ("mlut", "dicom_edgecases/mlut_18.dcm", "secondary capture"),
        ("hip", "dicom_wg04_hip/RG2_UNC", ""),
    ];
    std::fs::create_dir_all(&inputs).unwrap();
    for (name, file, _) in files {
        std::fs::copy(root.join(file), inputs.join(format!("{name}.dcm"))).unwrap();
    }
    let out = temp.path().join("out");
    let assert = hipfrac()
        .arg("predict")
        .arg(&inputs)
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(&out)
        .args(["--device", "cpu", "--dicom", "sr"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("4 not assessable"), "{stderr}");
    // The structured report says so too, with the reason.
    if crate::support::have_dcmtk("dsrdump") {
        let dump = std::process::Command::new("dsrdump")
            .arg(out.join("chest.sr.dcm"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&dump.stdout).to_string();
        assert!(
            text.contains("(NOT_ASSESSABLE,99HIPFRAC,\"Not assessable\")")
                && text.contains("Body Part Examined is CHEST"),
            "{text}"
        );
    }
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../../docs/prediction.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for (name, _, reason) in files {
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(format!("{name}.json"))).unwrap()).unwrap();
        assert!(validator.is_valid(&json), "{json}");
        if reason.is_empty() {
            assert_ne!(json["verdict"], "not_assessable", "{json}");
            assert!(json["not_assessable"].is_null(), "{json}");
        } else {
            assert_eq!(json["verdict"], "not_assessable", "{name}: {json}");
            assert_eq!(json["not_assessable"]["source"], "header", "{json}");
            assert!(
                json["not_assessable"]["reason"].as_str().unwrap().contains(reason),
                "{name}: {json}"
            );
            assert!(
                json["confidence"].is_null() && json["boxes"].as_array().unwrap().is_empty(),
                "{json}"
            );
        }
        // Without a card or operating points the model says so.
        assert_eq!(
            json["model"]["caveats"],
            serde_json::json!(["TRAINING DATA UNKNOWN", "UNCALIBRATED"]),
            "{json}"
        );
    }
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(
        summary
            .lines()
            .any(|l| l.starts_with(&format!("{}", inputs.join("chest.dcm").display()))
                && l.contains("not_assessable,\"Body Part Examined is CHEST")),
        "{summary}"
    );
    // An archive that names its hips EXTREMITY may say so; the tibia is then assessed (and it
    // is then the user's call, not the header's).
    let again = temp.path().join("again");
    hipfrac()
        .arg("predict")
        .arg(inputs.join("tibia.dcm"))
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(&again)
        .args(["--device", "cpu", "--no-overlay", "--accept-body-part", "extremity"])
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(again.join("tibia.json")).unwrap()).unwrap();
    assert_ne!(json["verdict"], "not_assessable", "{json}");
}

/// `predict --dicom sc`: a Secondary Capture of the overlay in the source's study (new series,
/// the notice burned in, BurnedInAnnotation YES), the same instance on a second run, clean
/// under dicom3tools' dciodvfy; a PNG input cannot have one and says so.
#[test]
fn predict_writes_a_secondary_capture_in_the_source_study() {
    use dicom_dictionary_std::tags;
    let temp = tempfile::tempdir().unwrap();
    let (data, model, source) = one_phantom_dicom(temp.path());
    let out = temp.path().join("out");
    let run = |extra: &[&str]| {
        hipfrac()
            .arg("predict")
            .arg(&source)
            .arg("--model")
            .arg(&model)
            .arg("--out")
            .arg(&out)
            .args(["--device", "cpu", "--no-overlay", "--dicom", "sc"])
            .args(extra)
            .assert()
    };
    run(&[]).success();
    let stem = source.file_stem().unwrap().to_string_lossy().to_string();
    let sc_path = out.join(format!("{stem}.sc.dcm"));
    let (src, sc) = (
        dicom_object::open_file(&source).unwrap(),
        dicom_object::open_file(&sc_path).unwrap(),
    );
    let value = |o: &dicom_object::DefaultDicomObject, tag| {
        o.element(tag)
            .map(|e| e.to_str().unwrap().trim_end_matches('\0').trim().to_string())
            .unwrap_or_default()
    };
    assert_eq!(value(&sc, tags::SOP_CLASS_UID), "1.2.840.10008.5.1.4.1.1.7");
    for tag in [tags::STUDY_INSTANCE_UID, tags::PATIENT_ID, tags::PATIENT_NAME] {
        assert_eq!(value(&sc, tag), value(&src, tag), "{tag} copied from the source");
    }
    assert_ne!(
        value(&sc, tags::SERIES_INSTANCE_UID),
        value(&src, tags::SERIES_INSTANCE_UID),
        "a new series"
    );
    assert_eq!(
        (
            value(&sc, tags::BURNED_IN_ANNOTATION),
            value(&sc, tags::PHOTOMETRIC_INTERPRETATION)
        ),
        ("YES".to_string(), "RGB".to_string())
    );
    let instance = value(&sc, tags::SOP_INSTANCE_UID);
    run(&["--overwrite"]).success();
    assert_eq!(
        value(&dicom_object::open_file(&sc_path).unwrap(), tags::SOP_INSTANCE_UID),
        instance,
        "the same instance again: a PACS keeps one copy"
    );
    assert_dciodvfy_clean(&sc_path, "SCImage");
    // A PNG has no study to join.
    let png = data.join("images").join(format!("{stem}.png"));
    let assert = hipfrac()
        .arg("predict")
        .arg(&png)
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(temp.path().join("png-out"))
        .args(["--device", "cpu", "--dicom", "sc"])
        .assert()
        .code(1);
    assert!(String::from_utf8_lossy(&assert.get_output().stderr).contains("a Secondary Capture needs a DICOM source"));
}

/// `predict --dicom gsps,sr`: a Grayscale Softcopy Presentation State in the source's study
/// referencing the source image, with one polyline per drawn box at the JSON's coordinates and
/// the verdict as text; clean under dciodvfy, accepted by dcmtk's dcmpschk, and applied by
/// dcmp2pgm to the source; its overlay plane, rendered on the source by dcmtk, outlines each
/// box at the JSON's pixels; and a Comprehensive SR that dsrdump reads
/// back with the verdict and a finding with an image region per drawn box.
#[test]
fn predict_writes_a_presentation_state_of_the_boxes() {
    use dicom_dictionary_std::tags;
    let temp = tempfile::tempdir().unwrap();
    let (_, model, source) = one_phantom_dicom(temp.path());
    let out = temp.path().join("out");
    hipfrac()
        .arg("predict")
        .arg(&source)
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(&out)
        .args(["--device", "cpu", "--no-overlay", "--dicom", "gsps,sr"])
        .assert()
        .success();
    let stem = source.file_stem().unwrap().to_string_lossy().to_string();
    let pr_path = out.join(format!("{stem}.pr.dcm"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(format!("{stem}.json"))).unwrap()).unwrap();
    let (src, pr) = (
        dicom_object::open_file(&source).unwrap(),
        dicom_object::open_file(&pr_path).unwrap(),
    );
    let value = |o: &dicom_object::InMemDicomObject, tag| {
        o.element(tag)
            .map(|e| e.to_str().unwrap().trim_end_matches('\0').trim().to_string())
            .unwrap_or_default()
    };
    assert_eq!(value(&pr, tags::SOP_CLASS_UID), "1.2.840.10008.5.1.4.1.1.11.1");
    assert_eq!(value(&pr, tags::MODALITY), "PR");
    assert_eq!(
        value(&pr, tags::STUDY_INSTANCE_UID),
        value(&src, tags::STUDY_INSTANCE_UID)
    );
    assert_ne!(
        value(&pr, tags::SERIES_INSTANCE_UID),
        value(&src, tags::SERIES_INSTANCE_UID)
    );
    let items = |o: &dicom_object::InMemDicomObject, tag| o.element(tag).unwrap().items().unwrap().to_vec();
    let series = items(&pr, tags::REFERENCED_SERIES_SEQUENCE);
    let image = items(&series[0], tags::REFERENCED_IMAGE_SEQUENCE);
    assert_eq!(
        value(&image[0], tags::REFERENCED_SOP_INSTANCE_UID),
        value(&src, tags::SOP_INSTANCE_UID)
    );
    let annotation = &items(&pr, tags::GRAPHIC_ANNOTATION_SEQUENCE)[0];
    let polylines: Vec<Vec<f32>> = items(annotation, tags::GRAPHIC_OBJECT_SEQUENCE)
        .iter()
        .map(|g| g.element(tags::GRAPHIC_DATA).unwrap().to_multi_float32().unwrap())
        .collect();
    let drawn: Vec<Vec<f32>> = json["boxes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["drawn"] == true)
        .map(|b| {
            b["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    assert!(!drawn.is_empty(), "the untrained model draws boxes: {json}");
    assert_eq!(polylines.len(), drawn.len());
    for (line, b) in polylines.iter().zip(&drawn) {
        assert_eq!(
            line,
            &vec![b[0], b[1], b[2], b[1], b[2], b[3], b[0], b[3], b[0], b[1]],
            "a closed rectangle at the JSON's box"
        );
    }
    let texts: Vec<String> = items(annotation, tags::TEXT_OBJECT_SEQUENCE)
        .iter()
        .map(|t| value(t, tags::UNFORMATTED_TEXT_VALUE))
        .collect();
    assert!(
        texts[0].starts_with("AI: ") && texts[0].contains("NOT FOR DIAGNOSIS"),
        "{texts:?}"
    );
    assert_dciodvfy_clean(&pr_path, "GrayscaleSoftcopyPresentationState");
    if crate::support::have_dcmtk("dcmpschk") {
        let check = std::process::Command::new("dcmpschk").arg(&pr_path).output().unwrap();
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        assert!(report.contains("Test passed"), "{report}");
        // The structured report, read back by dcmtk: the verdict, one finding per drawn box,
        // each with its score and an image region on the source.
        let sr_path = out.join(format!("{stem}.sr.dcm"));
        let dump = std::process::Command::new("dsrdump").arg(&sr_path).output().unwrap();
        let text = String::from_utf8_lossy(&dump.stdout).to_string();
        assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
        let verdict = json["verdict"].as_str().unwrap();
        let code = if verdict == "none" { "NONE" } else { verdict };
        assert!(
            text.contains(&format!("\"Image-level verdict\")=({code},99HIPFRAC")),
            "{text}"
        );
        assert_eq!(text.matches("\"Image Region\")").count(), drawn.len(), "{text}");
        assert_eq!(text.matches("\"Finding\")").count(), drawn.len(), "{text}");
        assert!(text.contains("(121007,DCM,\"Device\")"), "{text}");
        assert_dciodvfy_clean(&sr_path, "ComprehensiveSR");
        let rendered = temp.path().join("rendered.pgm");
        let run = std::process::Command::new("dcmp2pgm")
            .arg("--pstate")
            .arg(&pr_path)
            .arg(&source)
            .arg(&rendered)
            .output()
            .unwrap();
        assert!(
            run.status.success() && rendered.exists(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        // dcmp2pgm draws neither graphic annotations nor the state's overlay plane (dcmtk 3.6;
        // checked: its output is the same without the plane). So the plane is rendered the way
        // a viewer that applies it would: on the source, by dcmtk's dcmj2pnm, with and without
        // overlays; the pixels that differ are exactly the boxes' outlines at the JSON's places.
        let mut with_plane = dicom_object::open_file(&source).unwrap();
        for element in pr.iter().filter(|e| {
            e.header().tag.group() == 0x6000 && e.header().tag.element() < 0x1000
                || e.header().tag == dicom_core::Tag(0x6000, 0x3000)
        }) {
            with_plane.put(element.clone());
        }
        let image = temp.path().join("with-plane.dcm");
        with_plane.write_to_file(&image).unwrap();
        let render = |extra: &[&str], out: &str| {
            let path = temp.path().join(out);
            let run = std::process::Command::new("dcmj2pnm")
                .arg("--write-raw-pnm")
                .args(extra)
                .arg(&image)
                .arg(&path)
                .output()
                .unwrap();
            assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
            let pgm = std::fs::read(&path).unwrap();
            let header: Vec<usize> = String::from_utf8_lossy(&pgm[..pgm.len().min(32)])
                .split_whitespace()
                .skip(1)
                .take(2)
                .map(|v| v.parse().unwrap())
                .collect();
            (header[0], header[1], pgm[pgm.len() - header[0] * header[1]..].to_vec())
        };
        let ((width, height, shown), (_, _, plain)) =
            (render(&[], "shown.pgm"), render(&["--no-overlays"], "plain.pgm"));
        assert_eq!(
            (width as u32, height as u32),
            (
                value(&src, tags::COLUMNS).parse().unwrap(),
                value(&src, tags::ROWS).parse().unwrap()
            )
        );
        let drawn_at: std::collections::HashSet<(usize, usize)> = (0..width * height)
            .filter(|&i| shown[i] != plain[i])
            .map(|i| (i % width, i / width))
            .collect();
        assert!(!drawn_at.is_empty(), "the overlay plane draws something");
        let near_an_edge = |&(x, y): &(usize, usize)| {
            drawn.iter().any(|b| {
                let (x, y) = (x as f32, y as f32);
                let inside = x >= b[0].floor() - 1.0 && x <= b[2].ceil() && y >= b[1].floor() - 1.0 && y <= b[3].ceil();
                let edge = (x - b[0]).abs() < 4.0
                    || (x - b[2]).abs() < 4.0
                    || (y - b[1]).abs() < 4.0
                    || (y - b[3]).abs() < 4.0;
                inside && edge
            })
        };
        assert!(
            drawn_at.iter().all(near_an_edge),
            "every overlay pixel is on a box's outline"
        );
        for b in &drawn {
            let (x0, y0) = (b[0].max(0.0) as usize, b[1].max(0.0) as usize);
            let (x1, y1) = (
                (b[2].ceil() as usize).min(width) - 1,
                (b[3].ceil() as usize).min(height) - 1,
            );
            let ring: Vec<(usize, usize)> = (x0..=x1)
                .flat_map(|x| [(x, y0), (x, y1)])
                .chain((y0..=y1).flat_map(|y| [(x0, y), (x1, y)]))
                .collect();
            // Drawn white (where the picture is white already, no difference shows).
            let lit = ring.iter().filter(|&&(x, y)| shown[y * width + x] == 255).count();
            assert!(
                lit * 100 >= ring.len() * 98,
                "box {b:?}: {lit} of {} outline pixels drawn",
                ring.len()
            );
        }
    }
}

/// `predict --shard I/N` for job arrays: the shards split the inputs without overlap and
/// cover them all; `merge-shards` refuses while a shard is missing and then writes the same
/// rows an unsharded run writes.
#[test]
fn predict_shards_cover_every_input_once_and_merge() {
    let temp = tempfile::tempdir().unwrap();
    let data = phantom(temp.path(), 7);
    let model = untrained(temp.path(), 128);
    let images = data.join("images");
    let out = temp.path().join("sharded");
    let shard = |i: u32| {
        hipfrac()
            .arg("predict")
            .arg(&images)
            .arg("--model")
            .arg(&model)
            .arg("--out")
            .arg(&out)
            .args([
                "--device",
                "cpu",
                "--no-overlay",
                "--batch",
                "3",
                "--shard",
                &format!("{i}/3"),
            ])
            .assert()
            .success()
    };
    shard(0);
    shard(2);
    let refused = hipfrac().arg("merge-shards").arg(&out).assert().code(2);
    assert!(
        String::from_utf8_lossy(&refused.get_output().stderr).contains("shard(s) 1/3"),
        "{:?}",
        refused.get_output()
    );
    shard(1);
    hipfrac().arg("merge-shards").arg(&out).assert().success();
    let jsons = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
        .count();
    assert_eq!(jsons, 7, "every input predicted once");
    let whole = temp.path().join("whole");
    hipfrac()
        .arg("predict")
        .arg(&images)
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(&whole)
        .args(["--device", "cpu", "--no-overlay"])
        .assert()
        .success();
    let inputs = |path: &Path| {
        let mut rows: Vec<String> = csv::Reader::from_path(path)
            .unwrap()
            .records()
            .map(|r| r.unwrap()[0].to_string())
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(inputs(&out.join("summary.csv")), inputs(&whole.join("summary.csv")));
    hipfrac()
        .arg("predict")
        .arg(&images)
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(&out)
        .args(["--shard", "3/3"])
        .assert()
        .code(2);
}

/// JPEG films (scripts/jpeg_fixtures.py): baseline, progressive, colour and EXIF-turned files
/// are answered, each at the film's upright size; a truncated one is named with its fault and
/// gets no answer; `a.png` beside `a.jpg` is refused before anything is written.
#[test]
fn predict_reads_jpeg_films_upright_and_names_a_truncated_one() {
    let temp = tempfile::tempdir().unwrap();
    let model = untrained(temp.path(), 128);
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/jpeg");
    let out = temp.path().join("out");
    let assert = hipfrac()
        .arg("predict")
        .arg(&fixtures)
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(&out)
        .args(["--device", "cpu"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains("truncated.jpg") && stderr.contains("truncated: no end-of-image marker"),
        "{stderr}"
    );
    for name in [
        "baseline",
        "progressive",
        "colour-progressive",
        "exif-orientation-6",
        "exif-orientation-8",
    ] {
        let json: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join(format!("{name}.json"))).unwrap_or_else(|e| panic!("{name}: {e}")),
        )
        .unwrap();
        assert_eq!(
            (json["width"].as_u64(), json["height"].as_u64()),
            (Some(96), Some(64)),
            "{name}: {json}"
        );
        assert!(out.join(format!("{name}.overlay.png")).exists(), "{name}");
    }
    assert!(!out.join("truncated.json").exists());
    // One file given by name (the case a user tries first).
    let single = temp.path().join("single");
    hipfrac()
        .arg("predict")
        .arg(fixtures.join("progressive.jpg"))
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(&single)
        .args(["--device", "cpu", "--no-overlay"])
        .assert()
        .success();
    assert!(single.join("progressive.json").exists());
    // Two inputs that would share an answer.
    let clash = temp.path().join("clash");
    std::fs::create_dir_all(&clash).unwrap();
    std::fs::copy(fixtures.join("baseline.jpg"), clash.join("a.jpg")).unwrap();
    let png = phantom(temp.path(), 1).join("images");
    let first_png = std::fs::read_dir(&png).unwrap().next().unwrap().unwrap().path();
    std::fs::copy(first_png, clash.join("a.png")).unwrap();
    let refused = hipfrac()
        .arg("predict")
        .arg(&clash)
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(temp.path().join("clash-out"))
        .args(["--device", "cpu"])
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&refused.get_output().stderr).contains("would both be answered"));
    assert!(!temp.path().join("clash-out").join("a.json").exists());
}
