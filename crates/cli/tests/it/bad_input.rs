//! Bad input: a clear error naming the file, a non-zero exit, no partial output.

use crate::support::*;

fn assert_refused(input: &std::path::Path, expected: &str) {
    let out = tempfile::tempdir().unwrap();
    let assert = hipfrac().arg("convert").arg(input).arg("--out").arg(out.path()).assert().code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    let name = input.file_name().unwrap().to_string_lossy().to_string();
    assert!(stderr.contains(&name), "error should name {name}: {stderr}");
    assert!(stderr.contains(expected), "error should say {expected:?}: {stderr}");
    assert!(files_below(out.path()).is_empty(), "no output expected, found {:?}", files_below(out.path()));
}

#[test]
fn truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.dcm");
    write_test_dicom(&whole, &TestImage::default());
    let bytes = std::fs::read(&whole).unwrap();
    let truncated = dir.path().join("truncated.dcm");
    std::fs::write(&truncated, &bytes[..bytes.len() - 3000]).unwrap();
    assert_refused(&truncated, "truncated.dcm");
    // Cut inside the header too.
    let header_cut = dir.path().join("header_cut.dcm");
    std::fs::write(&header_cut, &bytes[..300]).unwrap();
    assert_refused(&header_cut, "not a readable DICOM file");
}

#[test]
fn not_dicom() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.dcm");
    std::fs::write(&path, "Patient report: nothing to see here\n".repeat(20)).unwrap();
    assert_refused(&path, "not a readable DICOM file");
}

#[test]
fn no_pixel_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nopixels.dcm");
    write_test_dicom(&path, &TestImage { with_pixels: false, ..Default::default() });
    assert_refused(&path, "no pixel data");
}

#[test]
fn huge_header_is_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.dcm");
    write_test_dicom(&path, &TestImage { rows: 60000, columns: 60000, ..Default::default() });
    assert_refused(&path, "60000×60000");
}

#[test]
fn faulty_jpeg_from_the_shared_set_is_a_clear_error() {
    let Some(root) = shared_dicom() else { return };
    assert_refused(&root.join("dicom_wg04_hip/RG2_JPLY"), "cannot decode pixel data");
}

#[test]
fn one_bad_file_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    write_test_dicom(&input.join("good.dcm"), &TestImage::default());
    write_test_dicom(&input.join("bad.dcm"), &TestImage { with_pixels: false, ..Default::default() });
    let out = dir.path().join("out");
    let assert = hipfrac().arg("convert").arg(&input).arg("--out").arg(&out).assert().code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("bad.dcm") && stderr.contains("converted 1, failed 1"), "{stderr}");
    assert_eq!(files_below(&out), ["good.json", "good.png"]);
}
