use crate::support::*;
use hipfrac_core::{BBox, FractureClass, Label};
use hipfrac_data::{manifest::ManifestRow, voc, Annotation, Object};
use hipfrac_dicom::png_io::{write_png, GreyPixels};
use std::path::Path;

/// A labelled PNG with its VOC beside it; `seed` makes the pixels (and so the hash) unique.
fn add_image(dir: &Path, name: &str, label: Label, seed: u8) {
    let (width, height) = (40u32, 30u32);
    let pixels: Vec<u8> = (0..width * height).map(|i| (i as u8).wrapping_mul(seed)).collect();
    write_png(
        &dir.join(format!("{name}.png")),
        width,
        height,
        GreyPixels::Eight(&pixels),
    )
    .unwrap();
    let objects = match label {
        Label::NoFracture => vec![],
        other => vec![Object {
            label: other,
            bbox: BBox::new(5.0, 5.0, 20.0, 15.0),
            truncated: false,
            difficult: false,
        }],
    };
    let annotation = Annotation {
        filename: format!("{name}.png"),
        width,
        height,
        depth: 1,
        objects,
        hips: vec![],
    };
    voc::write(
        &dir.join(format!("{name}.xml")),
        &voc::VocFile::new(annotation, "images"),
    )
    .unwrap();
}

fn make_dataset(dir: &Path) {
    let labels = [
        Label::Fracture(FractureClass::DisplacedNeck),
        Label::Fracture(FractureClass::ValgusImpactedNeck),
        Label::Fracture(FractureClass::StableIntertrochanteric),
        Label::Fracture(FractureClass::UnstableIntertrochanteric),
        Label::NoFracture,
    ];
    let mut rows = Vec::new();
    for i in 0..40u8 {
        let name = format!("img{i:02}");
        let label = labels[i as usize % 5];
        add_image(dir, &name, label, i * 2 + 1);
        rows.push(ManifestRow {
            image: format!("{name}.png"),
            annotation: format!("{name}.xml"),
            patient: format!("P{:02}", i / 2),
            site: if i < 30 { "SNUH".into() } else { "CAUH".into() },
            label,
        });
    }
    hipfrac_data::manifest::write(&dir.join("manifest.csv"), &rows).unwrap();
}

#[test]
fn a_clean_dataset_passes_and_prints_table_one() {
    let dir = tempfile::tempdir().unwrap();
    make_dataset(dir.path());
    let assert = hipfrac().args(["dataset", "check"]).arg(dir.path()).assert().success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    assert!(
        stdout.contains("valgus-impacted femoral-neck fracture (VF)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("SNUH") && stdout.contains("CAUH") && stdout.contains("total"),
        "{stdout}"
    );
    let images_row = stdout.lines().find(|l| l.starts_with("Images, n")).unwrap();
    assert_eq!(
        images_row.split_whitespace().skip(2).collect::<Vec<_>>(),
        ["10", "30", "40"]
    );
    let patients_row = stdout.lines().find(|l| l.starts_with("Patients, n")).unwrap();
    assert!(patients_row.ends_with(" 20"), "{patients_row}");
    assert!(stdout.contains("OK: 40 images"));
}

#[test]
fn every_fault_is_reported_with_its_file_and_the_exit_is_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_dataset(d);
    // Missing image.
    std::fs::remove_file(d.join("img00.png")).unwrap();
    // Box outside, and a degenerate box.
    let text = std::fs::read_to_string(d.join("img01.xml")).unwrap();
    std::fs::write(d.join("img01.xml"), text.replace("<xmax>20</xmax>", "<xmax>400</xmax>")).unwrap();
    let text = std::fs::read_to_string(d.join("img02.xml")).unwrap();
    std::fs::write(d.join("img02.xml"), text.replace("<xmax>20</xmax>", "<xmax>3</xmax>")).unwrap();
    // Size mismatch.
    let text = std::fs::read_to_string(d.join("img03.xml")).unwrap();
    std::fs::write(
        d.join("img03.xml"),
        text.replace("<width>40</width>", "<width>41</width>"),
    )
    .unwrap();
    // Duplicate image content.
    std::fs::copy(d.join("img05.png"), d.join("img06.png")).unwrap();
    // Unknown label, entity bomb, path traversal.
    let text = std::fs::read_to_string(d.join("img07.xml")).unwrap();
    std::fs::write(
        d.join("img07.xml"),
        text.replace("<name>SF</name>", "<name>femoral shaft</name>"),
    )
    .unwrap();
    std::fs::write(
        d.join("img08.xml"),
        "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]><annotation><filename>&b;</filename></annotation>",
    )
    .unwrap();
    let text = std::fs::read_to_string(d.join("img09.xml")).unwrap();
    std::fs::write(
        d.join("img09.xml"),
        text.replace("<filename>img09.png", "<filename>../../etc/passwd"),
    )
    .unwrap();
    // An image nobody annotated.
    add_image(d, "stray", Label::NoFracture, 201);
    std::fs::remove_file(d.join("stray.xml")).unwrap();

    let assert = hipfrac().args(["dataset", "check"]).arg(d).assert().code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    for expected in [
        "img00.xml: missing image",
        "img01.xml: object 1 (VF) box",
        "lies outside the 40×30 image",
        "img02.xml: object 1 (SF) has an empty box",
        "img03.xml: size 41×30 in the XML differs from the image's 40×30",
        "duplicate image",
        "img07.xml: unknown label \"femoral shaft\"",
        "img08.xml: DOCTYPE declarations are not allowed",
        "img09.xml: filename \"../../etc/passwd\" is not a plain file name",
        "stray.png: extra image",
    ] {
        assert!(stderr.contains(expected), "expected {expected:?} in:\n{stderr}");
    }
    assert!(stderr.contains("FAILED: 8 errors"), "{stderr}");
}

#[test]
fn split_by_patient_writes_manifests_and_keeps_earlier_ones() {
    let dir = tempfile::tempdir().unwrap();
    make_dataset(dir.path());
    hipfrac()
        .args(["dataset", "split"])
        .arg(dir.path())
        .args(["--ratios", "0.6,0.2,0.2", "--seed", "7", "--external-site", "CAUH"])
        .assert()
        .success();
    let splits = dir.path().join("splits");
    let mut owner = std::collections::HashMap::new();
    let mut total = 0;
    for name in ["train", "val", "test", "external"] {
        let rows = hipfrac_data::manifest::read(&splits.join(format!("{name}.csv"))).unwrap();
        total += rows.len();
        for row in rows {
            assert!(
                splits.join(&row.image).is_file(),
                "{} should resolve from the manifest's folder",
                row.image
            );
            if name == "external" {
                assert_eq!(row.site, "CAUH");
            }
            let previous = owner.insert(row.patient.clone(), name);
            assert!(
                previous.is_none() || previous == Some(name),
                "patient {} crosses splits",
                row.patient
            );
        }
    }
    assert_eq!(total, 40);
    let before = std::fs::read(splits.join("train.csv")).unwrap();
    hipfrac()
        .args(["dataset", "split"])
        .arg(dir.path())
        .args(["--seed", "8"])
        .assert()
        .code(2);
    assert_eq!(
        std::fs::read(splits.join("train.csv")).unwrap(),
        before,
        "an earlier split must not be lost"
    );
    hipfrac()
        .args(["dataset", "split"])
        .arg(dir.path())
        .args(["--seed", "8", "--overwrite"])
        .assert()
        .success();
}

/// Issue 13's `dataset check` faults: each one fails the check, named.
#[test]
fn check_fails_on_unlabelled_damaged_and_malformed_inputs() {
    // PNGs without any XML: nothing is labelled.
    let bare = tempfile::tempdir().unwrap();
    add_image(bare.path(), "only", Label::NoFracture, 3);
    std::fs::remove_file(bare.path().join("only.xml")).unwrap();
    let assert = hipfrac().args(["dataset", "check"]).arg(bare.path()).assert().code(1);
    assert!(String::from_utf8_lossy(&assert.get_output().stderr).contains("no VOC XML annotation in the folder"));

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_dataset(d);
    // A truncated PNG.
    let png = std::fs::read(d.join("img00.png")).unwrap();
    std::fs::write(d.join("img00.png"), &png[..png.len() - 20]).unwrap();
    // Two roots; no closing tag; a box labelled none; a comment inside a number.
    let text = std::fs::read_to_string(d.join("img01.xml")).unwrap();
    std::fs::write(d.join("img01.xml"), format!("{text}<annotation></annotation>")).unwrap();
    let text = std::fs::read_to_string(d.join("img02.xml")).unwrap();
    std::fs::write(d.join("img02.xml"), text.replace("</annotation>", "")).unwrap();
    let text = std::fs::read_to_string(d.join("img03.xml")).unwrap();
    std::fs::write(
        d.join("img03.xml"),
        text.replace("<name>UF</name>", "<name>none</name>"),
    )
    .unwrap();
    let text = std::fs::read_to_string(d.join("img06.xml")).unwrap();
    std::fs::write(
        d.join("img06.xml"),
        text.replace("<xmax>20</xmax>", "<xmax>3<!-- -->00</xmax>"),
    )
    .unwrap();
    // An XML that is a symlink, and one that is a FIFO.
    std::os::unix::fs::symlink("/etc/hostname", d.join("link.xml")).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(d.join("fifo.xml"))
        .status()
        .unwrap()
        .success());

    let assert = hipfrac()
        .args(["dataset", "check"])
        .arg(d)
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    for expected in [
        "img00.png: damaged PNG",
        "img01.xml: a second root element",
        "img02.xml: the file ends inside <annotation>",
        "img03.xml: a box labelled \"no visible fracture\"",
        "img06.xml: object 1 (VF) box xmin 6 ymin 6 xmax 300",
        "link.xml: not a regular file",
        "fifo.xml: not a regular file",
    ] {
        assert!(stderr.contains(expected), "expected {expected:?} in:\n{stderr}");
    }
}

/// A split of few patients says what the ratios became and warns where they are far off or
/// a label misses a split (7 patients of 2 images each cannot give 80/10/10).
#[test]
fn split_reports_achieved_ratios_and_warns_when_far_off() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let labels = [Label::Fracture(FractureClass::DisplacedNeck), Label::NoFracture];
    let mut rows = Vec::new();
    for i in 0..14u8 {
        let name = format!("img{i:02}");
        add_image(d, &name, labels[i as usize % 2], i * 2 + 1);
        rows.push(ManifestRow {
            image: format!("{name}.png"),
            annotation: format!("{name}.xml"),
            patient: format!("P{}", i / 2),
            site: "SNUH".into(),
            label: labels[i as usize % 2],
        });
    }
    hipfrac_data::manifest::write(&d.join("manifest.csv"), &rows).unwrap();
    let assert = hipfrac()
        .args(["dataset", "split"])
        .arg(d)
        .args(["--ratios", "0.8,0.1,0.1", "--seed", "3"])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stdout.contains("achieved") && stdout.lines().any(|l| l.starts_with("val ")),
        "{stdout}"
    );
    // 2 of 14 images is 14 %, 4 points from 10 %: within tolerance; train is 10 of 14 = 71 %.
    assert!(
        stderr.contains("warning: train holds 71 % of the images, 80 % were asked"),
        "{stdout}\n{stderr}"
    );
    // Every patient has a DF and a none image, so every split has both.
    assert!(!stderr.contains(" has no "), "{stderr}");
    // One VF image (a new patient) can be in one split only: the two others are warned about.
    add_image(d, "img14", Label::Fracture(FractureClass::ValgusImpactedNeck), 29);
    rows.push(ManifestRow {
        image: "img14.png".into(),
        annotation: "img14.xml".into(),
        patient: "P7".into(),
        site: "SNUH".into(),
        label: Label::Fracture(FractureClass::ValgusImpactedNeck),
    });
    hipfrac_data::manifest::write(&d.join("manifest.csv"), &rows).unwrap();
    let assert = hipfrac()
        .args(["dataset", "split"])
        .arg(d)
        .args(["--ratios", "0.8,0.1,0.1", "--seed", "3", "--overwrite"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    let missing: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning: ") && l.ends_with(" has no VF image"))
        .collect();
    assert_eq!(missing.len(), 2, "{stderr}");
    assert!(
        !stderr.contains(" has no DF image") && !stderr.contains(" has no none image"),
        "{stderr}"
    );
}
