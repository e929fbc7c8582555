//! Bad input: a clear error naming the file, a non-zero exit, no partial output.

use crate::support::*;

fn assert_refused(input: &std::path::Path, expected: &str) {
    let out = tempfile::tempdir().unwrap();
    let assert = hipfrac()
        .arg("convert")
        .arg(input)
        .arg("--out")
        .arg(out.path())
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    let name = input.file_name().unwrap().to_string_lossy().to_string();
    assert!(stderr.contains(&name), "error should name {name}: {stderr}");
    assert!(stderr.contains(expected), "error should say {expected:?}: {stderr}");
    assert!(
        files_below(out.path()).is_empty(),
        "no output expected, found {:?}",
        files_below(out.path())
    );
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
    write_test_dicom(
        &path,
        &TestImage {
            with_pixels: false,
            ..Default::default()
        },
    );
    assert_refused(&path, "no pixel data");
}

#[test]
fn huge_header_is_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.dcm");
    write_test_dicom(
        &path,
        &TestImage {
            rows: 60000,
            columns: 60000,
            ..Default::default()
        },
    );
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
    write_test_dicom(
        &input.join("bad.dcm"),
        &TestImage {
            with_pixels: false,
            ..Default::default()
        },
    );
    let out = dir.path().join("out");
    let assert = hipfrac()
        .arg("convert")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains("bad.dcm") && stderr.contains("converted 1, failed 1"),
        "{stderr}"
    );
    assert_eq!(files_below(&out), ["good.json", "good.png"]);
}

/// Runs `hipfrac convert ARGS` and returns (exit code, stderr, peak resident memory in bytes),
/// the memory from the child's own rusage (wait4), not the test process's.
fn convert_with_peak_memory(args: &[&std::path::Path]) -> (i32, String, u64) {
    use std::os::unix::process::ExitStatusExt;
    let stderr_file = tempfile::NamedTempFile::new().unwrap();
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("hipfrac"));
    command
        .arg("convert")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(stderr_file.reopen().unwrap());
    // Reaped by wait4 below, which also reports the child's peak memory.
    #[allow(clippy::zombie_processes)]
    let child = command.spawn().unwrap();
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t);
    let status = std::process::ExitStatus::from_raw(status);
    let code = status
        .code()
        .unwrap_or_else(|| panic!("killed by signal {:?}", status.signal()));
    (
        code,
        std::fs::read_to_string(stderr_file.path()).unwrap(),
        usage.ru_maxrss as u64 * 1024,
    )
}

/// Every reproducer in tests/data/bad-dicom (../shared/data/bad-dicom and fuzz crashes): alone, a one-line error
/// naming the file, exit 1, nothing written, under 1 GB of memory; in a folder with good
/// files, the good ones are still converted.
#[test]
fn every_bad_dicom_reproducer_is_refused_cleanly() {
    let bad = bad_dicom();
    // Not malformed as an image: its SOP Instance UID is a spreadsheet formula (a CSV test).
    let images = ["csv_injection_sop_uid.dcm"];
    let mut files: Vec<_> = std::fs::read_dir(&bad)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    let dir = tempfile::tempdir().unwrap();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if images.contains(&name.as_str()) {
            continue;
        }
        let out = dir.path().join(&name);
        let (code, stderr, peak) = convert_with_peak_memory(&[file, std::path::Path::new("--out"), &out]);
        eprintln!(
            "{name}: exit {code}, peak {} MB: {}",
            peak >> 20,
            stderr.lines().find(|l| l.starts_with("failed")).unwrap_or("")
        );
        assert_eq!(code, 1, "{name}: {stderr}");
        let failure = stderr
            .lines()
            .find(|l| l.starts_with("failed: "))
            .unwrap_or_else(|| panic!("{name}: no failure line in {stderr}"));
        assert!(failure.contains(&name), "{name}: {failure}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("thread '"),
            "{name}: a panic reached the user: {stderr}"
        );
        assert!(peak < 1 << 30, "{name}: peak memory {} MB", peak >> 20);
        assert!(files_below(&out).is_empty(), "{name}: wrote {:?}", files_below(&out));
    }
    // All of them in one folder with a good file: the good ones are converted.
    let folder = dir.path().join("batch");
    std::fs::create_dir_all(&folder).unwrap();
    for file in &files {
        std::fs::copy(file, folder.join(file.file_name().unwrap())).unwrap();
    }
    write_test_dicom(&folder.join("good.dcm"), &TestImage::default());
    let out = dir.path().join("batch-out");
    let (code, stderr, peak) = convert_with_peak_memory(&[&folder, std::path::Path::new("--out"), &out]);
    assert_eq!(code, 1, "{stderr}");
    assert!(peak < 1 << 30, "batch: peak memory {} MB", peak >> 20);
    let written = files_below(&out);
    assert!(
        written.contains(&"good.png".to_string()) && written.contains(&"csv_injection_sop_uid.png".to_string()),
        "{written:?}\n{stderr}"
    );
    assert_eq!(written.iter().filter(|f| f.ends_with(".png")).count(), 2, "{written:?}");
}
