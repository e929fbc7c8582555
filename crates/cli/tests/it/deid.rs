use crate::support::*;
use dicom_dictionary_std::tags;
use std::process::Command;

fn pixel_bytes(path: &std::path::Path) -> Vec<u8> {
    let object = dicom_object::open_file(path).unwrap();
    let element = object.element(tags::PIXEL_DATA).unwrap();
    match element.value() {
        dicom_core::value::Value::PixelSequence(seq) => {
            let mut bytes: Vec<u8> = seq.offset_table().iter().flat_map(|o| o.to_le_bytes()).collect();
            for fragment in seq.fragments() {
                bytes.extend_from_slice(fragment);
            }
            bytes
        }
        _ => element.to_bytes().unwrap().into_owned(),
    }
}

#[test]
fn basic_profile_with_keyed_pseudonyms_checked_by_dcmdump() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    write_test_dicom(&input.join("a.dcm"), &TestImage::default());
    write_test_dicom(
        &input.join("b.dcm"),
        &TestImage {
            sop_instance_uid: "1.2.826.0.1.3680043.2.1125.1.2",
            ..Default::default()
        },
    );
    write_test_dicom(
        &input.join("c.dcm"),
        &TestImage {
            patient_id: "PAT-002",
            patient_name: "ROE^RICHARD",
            sop_instance_uid: "1.2.826.0.1.3680043.2.1125.1.3",
            ..Default::default()
        },
    );
    let key = dir.path().join("secret.key");
    let out = dir.path().join("out");
    let assert = hipfrac()
        .arg("deid")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .arg("--key")
        .arg(&key)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("Burned In Annotation = YES"), "{stderr}");
    assert!(stderr.contains("created key file"), "{stderr}");
    let key_text = std::fs::read_to_string(&key).unwrap();

    let read = |name: &str| hipfrac_dicom::read_dicom(&out.join(name)).unwrap();
    let (a, b, c) = (read("a.dcm"), read("b.dcm"), read("c.dcm"));
    assert_eq!(a.meta.patient_id, b.meta.patient_id, "one patient keeps one pseudonym");
    assert_ne!(a.meta.patient_id, c.meta.patient_id);
    assert!(a.meta.patient_id.as_deref().unwrap().starts_with("HF"));
    assert_eq!(
        a.meta.study_instance_uid, b.meta.study_instance_uid,
        "UIDs map consistently"
    );
    assert_ne!(a.meta.sop_instance_uid, b.meta.sop_instance_uid);
    assert!(a.meta.study_instance_uid.as_deref().unwrap().starts_with("2.25."));
    assert_eq!(a.meta.institution, None);
    assert_eq!(
        pixel_bytes(&input.join("a.dcm")),
        pixel_bytes(&out.join("a.dcm")),
        "pixels byte-identical"
    );

    // Same key, next run: same pseudonym; the key file is not touched.
    let out2 = dir.path().join("out2");
    hipfrac()
        .arg("deid")
        .arg(input.join("a.dcm"))
        .arg("--out")
        .arg(&out2)
        .arg("--key")
        .arg(&key)
        .assert()
        .success();
    assert_eq!(
        hipfrac_dicom::read_dicom(&out2.join("a.dcm")).unwrap().meta.patient_id,
        a.meta.patient_id
    );
    assert_eq!(std::fs::read_to_string(&key).unwrap(), key_text);

    if !have_dcmtk("dcmdump") {
        return;
    }
    let dump = Command::new("dcmdump")
        .arg("+L")
        .arg(out.join("a.dcm"))
        .output()
        .unwrap();
    assert!(dump.status.success(), "dcmdump must parse the output");
    let text = String::from_utf8_lossy(&dump.stdout).to_string();
    for secret in [
        "DOE^JANE",
        "PAT-001",
        "Seoul Test Hospital",
        "HOUSE^GREGORY",
        "19400101",
        "20240131",
        "secret-mrn-998877",
        "ACME",
        "084Y",
        "1.2.826.0.1.3680043.2.1125",
    ] {
        assert!(!text.contains(secret), "{secret} survived de-identification:\n{text}");
    }
    for kept in [
        "(0012,0062) CS [YES]",
        "113100",
        "(0008,0060) CS [CR]",
        "(0028,0010) US 64",
        "(0020,0062) CS [R]",
    ] {
        assert!(text.contains(kept), "{kept} missing:\n{text}");
    }
    // dcmtk decodes the same picture from input and output.
    for (file, png) in [
        (input.join("a.dcm"), dir.path().join("in.pgm")),
        (out.join("a.dcm"), dir.path().join("out.pgm")),
    ] {
        assert!(Command::new("dcmj2pnm")
            .arg(&file)
            .arg(&png)
            .status()
            .unwrap()
            .success());
    }
    assert_eq!(
        std::fs::read(dir.path().join("in.pgm")).unwrap(),
        std::fs::read(dir.path().join("out.pgm")).unwrap()
    );
}

#[test]
fn encapsulated_pixel_data_survive_byte_for_byte() {
    let Some(root) = shared_dicom() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = root.join("dicom_wg04_hip/RG2_JPLL");
    hipfrac()
        .arg("deid")
        .arg(&input)
        .arg("--out")
        .arg(dir.path())
        .arg("--key")
        .arg(dir.path().join("k"))
        .assert()
        .success();
    let output = dir.path().join("RG2_JPLL");
    assert_eq!(pixel_bytes(&input), pixel_bytes(&output));
    let before = hipfrac_dicom::read_dicom(&input).unwrap();
    let after = hipfrac_dicom::read_dicom(&output).unwrap();
    assert_eq!(before.pixels, after.pixels);
    assert_ne!(before.meta.patient_id, after.meta.patient_id);
    if have_dcmtk("dcmdump") {
        assert!(Command::new("dcmdump").arg(&output).output().unwrap().status.success());
    }
}

#[test]
fn a_bad_key_file_is_refused_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("a.dcm");
    write_test_dicom(&input, &TestImage::default());
    let key = dir.path().join("short.key");
    std::fs::write(&key, "abcd\n").unwrap();
    let assert = hipfrac()
        .arg("deid")
        .arg(&input)
        .arg("--out")
        .arg(dir.path().join("o"))
        .arg("--key")
        .arg(&key)
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&assert.get_output().stderr).contains("short.key"));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), "abcd\n");
    assert!(files_below(&dir.path().join("o")).is_empty());
}

/// The real hip CR carries Timezone Offset From UTC (-0400), which the basic profile removes
/// (PS3.15 Table E.1-1: X); `--retain full-dates` keeps it. `--report` lists what was done to
/// each attribute, without values.
#[test]
fn timezone_offset_is_removed_and_the_change_log_says_so() {
    let Some(data) = shared_dicom() else { return };
    let input = data.join("dicom_wg04_hip/RG2_UNC");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("secret.key");
    let timezone = |path: &std::path::Path| {
        dicom_object::open_file(path)
            .unwrap()
            .element_opt(dicom_core::Tag(0x0008, 0x0201))
            .unwrap()
            .map(|e| e.to_str().unwrap().to_string())
    };
    assert_eq!(
        timezone(&input).as_deref(),
        Some("-0400"),
        "the reference file carries the offset"
    );

    let (basic, report) = (dir.path().join("basic"), dir.path().join("changes.csv"));
    hipfrac()
        .arg("deid")
        .arg(&input)
        .arg("--out")
        .arg(&basic)
        .arg("--key")
        .arg(&key)
        .arg("--report")
        .arg(&report)
        .assert()
        .success();
    assert_eq!(timezone(&basic.join("RG2_UNC")), None);
    let log = std::fs::read_to_string(&report).unwrap();
    assert!(log.starts_with("file,attribute,tag,name,action,rule\n"), "{log}");
    assert!(
        log.lines()
            .any(|l| l.ends_with(",\"(0008,0201)\",00080201,Timezone Offset From UTC,X,X")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains(",\"(0010,0020)\",00100020,Patient ID,D,Z/D (keyed pseudonym)")),
        "{log}"
    );
    assert!(!log.contains("-0400"), "no values in the change log");
    // Written once: a second run does not replace it without --overwrite.
    hipfrac()
        .arg("deid")
        .arg(&input)
        .arg("--out")
        .arg(dir.path().join("again"))
        .arg("--key")
        .arg(&key)
        .arg("--report")
        .arg(&report)
        .assert()
        .failure();

    let retained = dir.path().join("retained");
    hipfrac()
        .arg("deid")
        .arg(&input)
        .arg("--out")
        .arg(&retained)
        .arg("--key")
        .arg(&key)
        .args(["--retain", "full-dates"])
        .assert()
        .success();
    let out = retained.join("RG2_UNC");
    assert_eq!(timezone(&out).as_deref(), Some("-0400"));
    let object = dicom_object::open_file(&out).unwrap();
    assert_eq!(
        object
            .element(dicom_core::Tag(0x0028, 0x0303))
            .unwrap()
            .to_str()
            .unwrap(),
        "UNMODIFIED"
    );
    let method = object
        .element(tags::DEIDENTIFICATION_METHOD)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(method.contains("2024b") && method.contains("Full Dates"), "{method}");
}

/// Time-to-surgery studies need intervals: with `--retain modified-dates` every date of a
/// patient moves by the same whole number of days (from the key), so the interval between
/// two studies is kept exactly, in every file; the linking table (owner-only, outside the
/// output) maps the original Patient ID to the pseudonym and the shift. dcmdump reads the
/// outputs and shows the dates as dcmtk sees them.
#[test]
fn modified_dates_keep_intervals_and_the_link_stays_private() {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    // One patient: admission film and follow-up 37 days later (a leap day between them).
    let dated = |name: &str, uid: &str, study_date: &str, acquired: &str| {
        let path = input.join(name);
        write_test_dicom(
            &path,
            &TestImage {
                sop_instance_uid: uid,
                ..Default::default()
            },
        );
        let mut object = dicom_object::open_file(&path).unwrap();
        object.put(DataElement::new(
            tags::STUDY_DATE,
            VR::DA,
            PrimitiveValue::from(study_date),
        ));
        object.put(DataElement::new(
            tags::ACQUISITION_DATE_TIME,
            VR::DT,
            PrimitiveValue::from(acquired),
        ));
        object.put(DataElement::new(
            tags::STUDY_TIME,
            VR::TM,
            PrimitiveValue::from("101530"),
        ));
        object.write_to_file(&path).unwrap();
    };
    dated(
        "admission.dcm",
        "1.2.826.0.1.3680043.2.1125.7.1",
        "20240210",
        "20240210083000.000000",
    );
    dated(
        "follow-up.dcm",
        "1.2.826.0.1.3680043.2.1125.7.2",
        "20240318",
        "20240318141500.000000",
    );
    let (key, out, link) = (
        dir.path().join("secret.key"),
        dir.path().join("out"),
        dir.path().join("private/link.csv"),
    );
    // The linking table may not be written into the output.
    hipfrac()
        .arg("deid")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .arg("--key")
        .arg(&key)
        .arg("--link")
        .arg(out.join("link.csv"))
        .assert()
        .code(2);
    hipfrac()
        .arg("deid")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .arg("--key")
        .arg(&key)
        .args(["--retain", "modified-dates"])
        .arg("--link")
        .arg(&link)
        .assert()
        .success();

    let read = |name: &str, tag| {
        dicom_object::open_file(out.join(name))
            .unwrap()
            .element(tag)
            .unwrap()
            .to_str()
            .unwrap()
            .trim()
            .to_string()
    };
    let day = |text: &str| chrono::NaiveDate::parse_from_str(&text[..8], "%Y%m%d").unwrap();
    let (a, b) = (
        read("admission.dcm", tags::STUDY_DATE),
        read("follow-up.dcm", tags::STUDY_DATE),
    );
    assert_ne!(a, "20240210", "dates move");
    assert_eq!(
        (day(&b) - day(&a)).num_days(),
        37,
        "{a} → {b}: the interval is kept exactly"
    );
    let shift = (day(&a) - day("20240210")).num_days();
    assert!((-3650..=-1).contains(&shift), "{shift}");
    assert_eq!(
        read("follow-up.dcm", tags::ACQUISITION_DATE_TIME),
        format!(
            "{}141500.000000",
            (day("20240318") + chrono::Duration::days(shift)).format("%Y%m%d")
        )
    );
    assert_eq!(read("admission.dcm", tags::STUDY_TIME), "101530", "times of day stay");
    assert_eq!(read("admission.dcm", dicom_core::Tag(0x0028, 0x0303)), "MODIFIED");

    // The link: one row for the patient, with the shift; owner-only.
    assert_eq!(std::fs::metadata(&link).unwrap().permissions().mode() & 0o777, 0o600);
    let table = std::fs::read_to_string(&link).unwrap();
    let pseudonym = read("admission.dcm", tags::PATIENT_ID);
    assert_eq!(
        table,
        format!("original_patient_id,pseudonym,date_shift_days\nPAT-001,{pseudonym},{shift}\n")
    );
    // A later run keeps the earlier rows.
    std::fs::create_dir_all(dir.path().join("more")).unwrap();
    write_test_dicom(
        &dir.path().join("more/c.dcm"),
        &TestImage {
            patient_id: "PAT-002",
            sop_instance_uid: "1.2.826.0.1.3680043.2.1125.7.3",
            ..Default::default()
        },
    );
    hipfrac()
        .arg("deid")
        .arg(dir.path().join("more"))
        .arg("--out")
        .arg(dir.path().join("out2"))
        .arg("--key")
        .arg(&key)
        .args(["--retain", "modified-dates"])
        .arg("--link")
        .arg(&link)
        .assert()
        .success();
    let table = std::fs::read_to_string(&link).unwrap();
    assert!(table.contains("PAT-001,") && table.contains("PAT-002,"), "{table}");

    if have_dcmtk("dcmdump") {
        let dump = std::process::Command::new("dcmdump")
            .arg(out.join("follow-up.dcm"))
            .output()
            .unwrap();
        assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
        let text = String::from_utf8_lossy(&dump.stdout).to_string();
        assert!(
            text.contains(&format!("(0008,0020) DA [{b}]")) && !text.contains("20240318"),
            "{text}"
        );
    }
}
