//! The structured report as a PS3.16 TID 1500 Measurement Report, checked by tools nobody here
//! wrote: dicom3tools' dciodvfy (the IOD), dcmtk's dsr2xml (the SR tree: it refuses content
//! that breaks the Comprehensive SR's relationship constraints, and its XML is validated against
//! dcmtk's own dsr2xml.xsd) and highdicom, which must load the file as a `MeasurementReport` and
//! read back every box's coordinates, finding, site and side through its TID 1410 accessors, and
//! the image-level verdict from the report's Qualitative Evaluations container.
//!
//! Each tool is skipped with a message where it is absent, except in CI (`.ci/run` sets
//! HIPFRAC_REQUIRE_DICOM3TOOLS, HIPFRAC_REQUIRE_DCMTK and HIPFRAC_REQUIRE_HIGHDICOM).

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use hipfrac_dicom::outputs::{codes, structured_report, Capture, Finding, Report, Side, CODING_SCHEME};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE_INSTANCE: &str = "1.2.826.0.1.3680043.8.498.4711.3";
const WIDTH: u16 = 320;
const HEIGHT: u16 = 240;

/// A small AP pelvis CR (both hips) written in code.
fn write_source(path: &Path) {
    let text = |tag, vr, value: &str| DataElement::new(tag, vr, PrimitiveValue::from(value));
    let us = |tag, value: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(value));
    let pixels: Vec<u16> = (0..WIDTH as usize * HEIGHT as usize)
        .map(|i| (i % 4096) as u16)
        .collect();
    let object = InMemDicomObject::from_element_iter([
        text(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.1"),
        text(tags::SOP_INSTANCE_UID, VR::UI, SOURCE_INSTANCE),
        text(tags::STUDY_INSTANCE_UID, VR::UI, "1.2.826.0.1.3680043.8.498.4711.1"),
        text(tags::SERIES_INSTANCE_UID, VR::UI, "1.2.826.0.1.3680043.8.498.4711.2"),
        text(tags::PATIENT_NAME, VR::PN, "Phantom^Hips"),
        text(tags::PATIENT_ID, VR::LO, "HIPS-1"),
        text(tags::STUDY_DATE, VR::DA, "20261207"),
        text(tags::MODALITY, VR::CS, "CR"),
        text(tags::BODY_PART_EXAMINED, VR::CS, "PELVIS"),
        text(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        us(tags::SAMPLES_PER_PIXEL, 1),
        us(tags::ROWS, HEIGHT),
        us(tags::COLUMNS, WIDTH),
        us(tags::BITS_ALLOCATED, 16),
        us(tags::BITS_STORED, 12),
        us(tags::HIGH_BIT, 11),
        us(tags::PIXEL_REPRESENTATION, 0),
        DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(pixels.into())),
    ]);
    object
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax("1.2.840.10008.1.2.1")
                .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.1")
                .media_storage_sop_instance_uid(SOURCE_INSTANCE),
        )
        .unwrap()
        .write_to_file(path)
        .unwrap();
}

fn capture() -> Capture<'static> {
    Capture {
        producer: "0123456789abcdef",
        series_description: "hipfrac AI report (research)",
        version: "9.9.9",
    }
}

/// Two boxes, one per hip: a displaced femoral-neck fracture on the patient's right (the
/// viewer's left) and a stable intertrochanteric one on the left.
fn two_hips() -> Vec<Finding<'static>> {
    vec![
        Finding {
            finding: codes::FRACTURE_OF_NECK_OF_FEMUR,
            class: ("DF", CODING_SCHEME, "displaced femoral-neck fracture"),
            score: 0.9132,
            bbox: [40.5, 60.25, 110.0, 130.75],
            side: Some(Side::Right),
        },
        Finding {
            finding: codes::PERTROCHANTERIC_FRACTURE_OF_FEMUR,
            class: ("SF", CODING_SCHEME, "stable intertrochanteric fracture"),
            score: 0.4411,
            bbox: [200.0, 90.0, 260.5, 170.0],
            side: Some(Side::Left),
        },
    ]
}

fn required(variable: &str) -> bool {
    std::env::var_os(variable).is_some()
}

/// dciodvfy's report on `path`: it names the Comprehensive SR IOD and no error.
fn dciodvfy_clean(path: &Path) {
    match Command::new("dciodvfy").arg(path).output() {
        Ok(check) => {
            let report = format!(
                "{}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            );
            eprintln!("dciodvfy {}:\n{report}", path.display());
            assert!(
                report.contains("ComprehensiveSR") && !report.contains("Error"),
                "{report}"
            );
        }
        Err(_) if required("HIPFRAC_REQUIRE_DICOM3TOOLS") => {
            panic!("dciodvfy (dicom3tools) is required but not installed")
        }
        Err(_) => eprintln!("SKIP: dciodvfy (dicom3tools) is not installed"),
    }
}

/// dsr2xml converts `path` with its default (strict) checks and no warning, names TID 1500 at
/// the root, `groups` TID 1410 groups and no other group template, has the Imaging Measurements
/// container only with a group and one Qualitative Evaluations container, and writes XML that
/// is valid against dcmtk's schema (checked by `python`'s lxml, when there is one). Returns false
/// where dcmtk is absent.
fn dsr2xml_valid(path: &Path, groups: usize, python: Option<&Path>) -> bool {
    let run = |args: &[&str]| Command::new("dsr2xml").args(args).arg(path).output();
    let templates = match run(&["+Wt", "+Et"]) {
        Ok(out) => out,
        Err(_) if required("HIPFRAC_REQUIRE_DCMTK") => panic!("dsr2xml (dcmtk) is required but not installed"),
        Err(_) => {
            eprintln!("SKIP: dsr2xml (dcmtk) is not installed");
            return false;
        }
    };
    let (xml, stderr) = (
        String::from_utf8_lossy(&templates.stdout).to_string(),
        String::from_utf8_lossy(&templates.stderr).to_string(),
    );
    assert!(
        templates.status.success() && stderr.trim().is_empty(),
        "dsr2xml: {stderr}"
    );
    assert!(xml.contains(r#"<template resource="DCMR" tid="1500""#), "{xml}");
    assert_eq!(xml.matches(r#"<template resource="DCMR""#).count(), 1 + groups, "{xml}");
    assert_eq!(
        xml.matches(r#"<template resource="DCMR" tid="1410""#).count(),
        groups,
        "{xml}"
    );
    assert_eq!(
        xml.matches("<value>126010</value>").count(),
        usize::from(groups > 0),
        "Imaging Measurements: {xml}"
    );
    assert_eq!(
        xml.matches("<value>C0034375</value>").count(),
        1,
        "Qualitative Evaluations: {xml}"
    );
    eprintln!(
        "dsr2xml +Wt +Et {}: exit 0, no warnings; templates DCMR 1500, {groups} x 1410; \
         one Qualitative Evaluations container",
        path.display()
    );
    // The XML against the schema dcmtk ships beside dsr2xml (namespaced: +Xn).
    let schema = ["/usr/share/dcmtk/dsr2xml.xsd", "/usr/local/share/dcmtk/dsr2xml.xsd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    let (Some(schema), Some(python)) = (schema, python) else {
        assert!(
            !required("HIPFRAC_REQUIRE_DCMTK"),
            "dcmtk's dsr2xml.xsd or the checking Python is missing"
        );
        eprintln!("SKIP: dsr2xml.xsd or lxml missing; the XML was not checked against the schema");
        return true;
    };
    let namespaced = run(&["+Xs", "+Xn"]).unwrap();
    assert!(namespaced.status.success());
    let xml_path = path.with_extension("xml");
    std::fs::write(&xml_path, &namespaced.stdout).unwrap();
    let check = Command::new(python)
        .args([
            "-c",
            "import sys\nfrom lxml import etree\nschema = etree.XMLSchema(etree.parse(sys.argv[1]))\n\
             ok = schema.validate(etree.parse(sys.argv[2]))\nprint('valid' if ok else schema.error_log)",
        ])
        .arg(&schema)
        .arg(&xml_path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout).trim().to_string();
    assert_eq!(said, "valid", "{}", String::from_utf8_lossy(&check.stderr));
    eprintln!("dsr2xml +Xs +Xn {}: valid against {}", path.display(), schema.display());
    true
}

/// A Python with highdicom 0.28.2 (and lxml for the schema check), set up once under the target
/// directory; None (with a message) where it cannot be installed, unless
/// HIPFRAC_REQUIRE_HIGHDICOM is set.
fn highdicom_python() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("highdicom-venv");
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import highdicom, lxml; assert highdicom.__version__ == '0.28.2'"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ready(&python) {
        let made = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "highdicom==0.28.2", "pydicom==3.0.2", "lxml==5.3.0"])
                .status()
                .is_ok_and(|s| s.success());
        if !made || !ready(&python) {
            assert!(
                !required("HIPFRAC_REQUIRE_HIGHDICOM"),
                "HIPFRAC_REQUIRE_HIGHDICOM is set but highdicom 0.28.2 could not be installed"
            );
            eprintln!("SKIP: cannot install highdicom 0.28.2 (pip) in {}", venv.display());
            return None;
        }
    }
    Some(python)
}

/// What highdicom read from `sr` (read_measurement_report.py's JSON).
fn highdicom_reads(python: &Path, sr: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/read_measurement_report.py");
    let run = Command::new(python).arg(script).arg(sr).output().unwrap();
    assert!(
        run.status.success(),
        "highdicom could not read {}: {}",
        sr.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    eprintln!("highdicom read {}: {stdout}", sr.display());
    serde_json::from_str(&stdout).unwrap()
}

fn code(c: (&str, &str, &str)) -> Value {
    json!([c.0, c.1, c.2])
}

/// The one Qualitative Evaluations container highdicom found at the report's root (CONTAINS).
fn verdict_evaluations(read: &Value) -> &Value {
    let containers = read["qualitative_evaluations"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "{read}");
    assert_eq!(containers[0]["relationship"], "CONTAINS");
    &containers[0]
}

#[test]
fn a_report_with_two_hips_is_a_tid_1500_measurement_report() {
    let dir = tempfile::tempdir().unwrap();
    let (source, sr) = (dir.path().join("source.dcm"), dir.path().join("hips.sr.dcm"));
    write_source(&source);
    let findings = two_hips();
    let report = Report {
        verdict: ("DF", CODING_SCHEME, "displaced femoral-neck fracture"),
        confidence: Some(0.9132),
        not_assessable: None,
        detail: "operating point: suspicious; thresholds: internal validation",
        findings: &findings,
        model_name: "nano (weights 0123456789abcdef)",
    };
    structured_report(&source, &sr, &report, &capture()).unwrap();

    dciodvfy_clean(&sr);
    let python = highdicom_python();
    dsr2xml_valid(&sr, findings.len(), python.as_deref());
    let Some(python) = python else { return };
    let read = highdicom_reads(&python, &sr);
    assert_eq!(read["sop_class"], "ComprehensiveSR");
    assert_eq!(read["title"], code(codes::IMAGING_MEASUREMENT_REPORT));
    assert_eq!(read["template"], json!(["DCMR", "1500"]));
    assert_eq!(read["procedure_reported"], json!([code(codes::PLAIN_RADIOGRAPHY)]));
    let observer = &read["observers"][0];
    assert_eq!(observer["type"], code(codes::DEVICE));
    assert_eq!(observer["name"], "hipfrac");
    assert_eq!(observer["model_name"], "nano (weights 0123456789abcdef), hipfrac 9.9.9");

    // The verdict: TID 1500's report-level qualitative evaluation, inferred from the score and
    // the source image; no measurement group without a box (a viewer draws every group).
    assert_eq!(read["image_groups"], json!([]));
    let evaluations = verdict_evaluations(&read);
    assert_eq!(evaluations["codes"].as_array().unwrap().len(), 1, "{evaluations}");
    let verdict = &evaluations["codes"][0];
    assert_eq!(verdict["name"], code(codes::VERDICT));
    assert_eq!(verdict["value"], code(report.verdict));
    let inferred = verdict["children"].as_array().unwrap();
    assert_eq!(inferred.len(), 2, "{verdict}");
    assert!(
        inferred.iter().all(|c| c["relationship"] == "INFERRED FROM"),
        "{verdict}"
    );
    assert_eq!(inferred[0]["name"], code(codes::SCORE));
    assert!((inferred[0]["value"].as_f64().unwrap() - 0.9132).abs() < 1e-6);
    assert_eq!(inferred[0]["unit"], code(codes::NO_UNITS));
    assert_eq!(inferred[1]["value_type"], "IMAGE");
    assert_eq!(inferred[1]["name"], code(codes::SOURCE_OF_MEASUREMENT));
    assert_eq!(inferred[1]["source_image"], SOURCE_INSTANCE);
    assert_eq!(
        evaluations["texts"],
        json!([["CONTAINS", code(codes::DETAIL), report.detail]])
    );

    // Every box: its closed rectangle on the source, its standard finding, the hip and its side,
    // hipfrac's type and the score.
    let boxes = read["boxes"].as_array().unwrap();
    assert_eq!(boxes.len(), findings.len());
    for (read, finding) in boxes.iter().zip(&findings) {
        let [x0, y0, x1, y1] = finding.bbox.map(f64::from);
        assert_eq!(read["graphic_type"], "POLYLINE");
        assert_eq!(
            read["points"],
            json!([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]),
            "the box's corners exactly (all are exact in 32-bit floats)"
        );
        assert_eq!(read["source_image"], SOURCE_INSTANCE);
        assert_eq!(read["finding"], code(finding.finding));
        let side = match finding.side.unwrap() {
            Side::Right => codes::RIGHT,
            Side::Left => codes::LEFT,
        };
        assert_eq!(
            read["finding_sites"],
            json!([{"site": code(codes::HIP), "laterality": code(side)}])
        );
        assert_eq!(
            read["evaluations"],
            json!([[code(codes::FRACTURE_TYPE), code(finding.class)]])
        );
        assert_eq!(read["measurements"][0][0], code(codes::SCORE));
        assert!((read["measurements"][0][1].as_f64().unwrap() - f64::from(finding.score)).abs() < 1e-4);
        assert_eq!(read["measurements"][0][2], code(codes::NO_UNITS));
    }
    assert_ne!(boxes[0]["tracking_uid"], boxes[1]["tracking_uid"]);

    // A rerun makes the same instance, tracking UIDs included (a PACS keeps one copy).
    let again = dir.path().join("again.sr.dcm");
    structured_report(&source, &again, &report, &capture()).unwrap();
    assert_eq!(highdicom_reads(&python, &again)["boxes"], read["boxes"]);
}

#[test]
fn a_refusal_is_a_qualitative_evaluation_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (source, sr) = (dir.path().join("source.dcm"), dir.path().join("chest.sr.dcm"));
    write_source(&source);
    let reason = "Body Part Examined is CHEST: not an AP hip or pelvis";
    let report = Report {
        verdict: ("NOT_ASSESSABLE", CODING_SCHEME, "Not assessable"),
        confidence: None,
        not_assessable: Some(reason),
        detail: "AI RESULT - NOT FOR DIAGNOSIS",
        findings: &[],
        model_name: "nano (weights 0123456789abcdef)",
    };
    structured_report(&source, &sr, &report, &capture()).unwrap();
    dciodvfy_clean(&sr);
    let python = highdicom_python();
    dsr2xml_valid(&sr, 0, python.as_deref());
    let Some(python) = python else { return };
    let read = highdicom_reads(&python, &sr);
    assert_eq!(read["boxes"], json!([]));
    assert_eq!(read["image_groups"], json!([]));
    let evaluations = verdict_evaluations(&read);
    let verdict = &evaluations["codes"][0];
    assert_eq!(evaluations["codes"].as_array().unwrap().len(), 1, "{evaluations}");
    assert_eq!(verdict["name"], code(codes::VERDICT));
    assert_eq!(verdict["value"], code(report.verdict));
    // No score: the verdict is inferred from the source image alone.
    assert_eq!(
        verdict["children"],
        json!([{
            "relationship": "INFERRED FROM",
            "value_type": "IMAGE",
            "name": code(codes::SOURCE_OF_MEASUREMENT),
            "source_image": SOURCE_INSTANCE,
        }])
    );
    assert_eq!(
        evaluations["texts"],
        json!([
            ["CONTAINS", code(codes::NOT_ASSESSABLE_REASON), reason],
            ["CONTAINS", code(codes::DETAIL), "AI RESULT - NOT FOR DIAGNOSIS"]
        ])
    );
}
