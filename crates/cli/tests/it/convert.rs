use crate::support::*;
use std::process::Command;

/// Largest difference between hipfrac's 8-bit PNG and dcmtk's, in grey levels.
const DCMTK_TOLERANCE: u16 = 1;

#[test]
fn eight_bit_png_matches_dcmtk_within_one_grey_level() {
    let Some(root) = shared_dicom() else { return };
    if !have_dcmtk("dcmj2pnm") || !have_dcmtk("dcml2pnm") {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let cases = [
        ("dicom_wg04_hip/RG2_UNC", "dcmj2pnm"),
        ("dicom_wg04_hip/RG2_RLE", "dcmj2pnm"),
        ("dicom_wg04_hip/RG2_JPLL", "dcmj2pnm"),
        ("dicom_wg04_hip/RG2_JLSL", "dcml2pnm"),
        // MONOCHROME1: both invert.
        ("dicom_wg04_tibia_mono1/RG3_JPLL", "dcmj2pnm"),
    ];
    let inputs: Vec<_> = cases.iter().map(|(f, _)| root.join(f)).collect();
    hipfrac()
        .arg("convert")
        .args(&inputs)
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    for (file, tool) in cases {
        let name = file.rsplit('/').next().unwrap();
        let reference = out.path().join(format!("{name}.dcmtk.png"));
        let status = Command::new(tool)
            .args(["+Wi", "1", "+on"])
            .arg(root.join(file))
            .arg(&reference)
            .status()
            .unwrap();
        assert!(status.success(), "{tool} failed on {file}");
        let ours = read_png(&out.path().join(format!("{name}.png")));
        let theirs = read_png(&reference);
        assert_eq!(
            (ours.0, ours.1, ours.2),
            (theirs.0, theirs.1, theirs.2),
            "{file}: size or depth"
        );
        let max = ours.3.iter().zip(&theirs.3).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
        let differing = ours.3.iter().zip(&theirs.3).filter(|(a, b)| a != b).count();
        eprintln!("{file}: max diff {max}, {differing} pixels differ");
        assert!(max <= DCMTK_TOLERANCE, "{file}: max difference {max} grey levels");
    }
}

#[test]
fn sixteen_bit_png_keeps_modality_values_and_the_sidecar_says_so() {
    let Some(root) = shared_dicom() else { return };
    let out = tempfile::tempdir().unwrap();
    let input = root.join("dicom_wg04_hip/RG2_UNC");
    hipfrac()
        .arg("convert")
        .arg(&input)
        .arg("--out")
        .arg(out.path())
        .args(["--bits", "16"])
        .assert()
        .success();
    let (width, height, depth, samples) = read_png(&out.path().join("RG2_UNC.png"));
    assert_eq!((width, height, depth), (1760, 2140, 16));
    let image = hipfrac_dicom::read_dicom(&input).unwrap();
    let stored: Vec<u16> = (0..image.pixels.len()).map(|i| image.pixels.get(i) as u16).collect();
    assert!(
        samples == stored,
        "16-bit PNG should hold the stored values (rescale is identity)"
    );
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("RG2_UNC.json")).unwrap()).unwrap();
    assert_eq!(sidecar["png_bits"], 16);
    assert_eq!(sidecar["mapping_16bit"]["sign"], 1.0);
    assert_eq!(sidecar["meta"]["patient_id"], "10RG2");
    assert_eq!(sidecar["meta"]["pixel_spacing_mm"][0], 0.2);
}

#[test]
fn explicit_and_auto_windows_and_a_folder_with_subfolders() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(input.join("site_a")).unwrap();
    write_test_dicom(&input.join("site_a/img1.dcm"), &TestImage::default());
    write_test_dicom(
        &input.join("img2"),
        &TestImage {
            sop_instance_uid: "1.2.3.4.5",
            ..Default::default()
        },
    );
    std::fs::write(input.join("notes.txt"), "not an image").unwrap();
    let out = dir.path().join("out");
    let assert = hipfrac()
        .arg("convert")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .args(["--window", "2048,4096"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains("converted 2") && stderr.contains("skipped 1"),
        "{stderr}"
    );
    assert_eq!(
        files_below(&out),
        ["img2.json", "img2.png", "site_a/img1.json", "site_a/img1.png"]
    );
    // A second run refuses to replace what the first wrote, unless told to.
    hipfrac()
        .arg("convert")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(1);
    hipfrac()
        .arg("convert")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .args(["--window", "auto", "--overwrite"])
        .assert()
        .success();
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("img2.json")).unwrap()).unwrap();
    assert!(sidecar["voi"]["source"].as_str().unwrap().starts_with("auto"));
    // A bad --window is a usage error naming the value.
    let assert = hipfrac()
        .arg("convert")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .args(["--window", "12"])
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&assert.get_output().stderr).contains("--window 12"));
}

#[test]
fn voi_lut_sequence_matches_dcmtk() {
    let Some(root) = shared_dicom() else { return };
    if !have_dcmtk("dcmj2pnm") {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let input = root.join("dicom_edgecases/vlut_04.dcm");
    hipfrac()
        .arg("convert")
        .arg(&input)
        .arg("--out")
        .arg(out.path())
        .args(["--window", "lut:1"])
        .assert()
        .success();
    let reference = out.path().join("dcmtk.png");
    assert!(Command::new("dcmj2pnm")
        .args(["+Wl", "1", "+on"])
        .arg(&input)
        .arg(&reference)
        .status()
        .unwrap()
        .success());
    let (ours, theirs) = (read_png(&out.path().join("vlut_04.png")), read_png(&reference));
    let max = ours.3.iter().zip(&theirs.3).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
    assert!(max <= DCMTK_TOLERANCE, "vlut_04: max difference {max}");
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("vlut_04.json")).unwrap()).unwrap();
    assert_eq!(sidecar["voi"]["kind"], "lut");
}

/// Topping up an archive conversion: `--skip-existing` converts only what is new, leaves the
/// earlier outputs untouched (same bytes, same modification time) and exits 0.
#[test]
fn skip_existing_tops_up_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    write_test_dicom(&input.join("a.dcm"), &TestImage::default());
    let out = dir.path().join("out");
    hipfrac()
        .arg("convert")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let first = out.join("a.png");
    let stamp = |p: &std::path::Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let (bytes, modified) = (std::fs::read(&first).unwrap(), stamp(&first));
    // Without the flag a re-run refuses to replace and fails; with it, it tops up.
    hipfrac()
        .arg("convert")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(1);
    write_test_dicom(
        &input.join("b.dcm"),
        &TestImage {
            sop_instance_uid: "1.2.826.0.1.3680043.2.1125.1.9",
            ..Default::default()
        },
    );
    let assert = hipfrac()
        .arg("convert")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .arg("--skip-existing")
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("converted 1, failed 0, already there 1"), "{stderr}");
    assert_eq!(files_below(&out), ["a.json", "a.png", "b.json", "b.png"]);
    assert_eq!(
        (std::fs::read(&first).unwrap(), stamp(&first)),
        (bytes, modified),
        "a.png was touched"
    );
    hipfrac()
        .arg("convert")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .args(["--skip-existing", "--overwrite"])
        .assert()
        .code(2);
}
