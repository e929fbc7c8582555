use crate::support::*;

#[test]
fn phantom_writes_a_dataset_that_checks_splits_and_draws() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("phantom");
    let assert = hipfrac()
        .args([
            "phantom",
            "--count",
            "6",
            "--size",
            "128",
            "--seed",
            "3",
            "--site",
            "site-b",
            "--mix",
            "DF=1,UF=1,none=1",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains("simulated 6 images") && stderr.contains("not clinical evidence"),
        "{stderr}"
    );
    assert_eq!(files_below(&out.join("dicom")).len(), 6);
    assert_eq!(files_below(&out.join("images")).len(), 12);
    let manifest = std::fs::read_to_string(out.join("manifest.csv")).unwrap();
    assert!(manifest.starts_with("image,annotation,patient,site,label,"));
    assert!(
        !manifest.contains(",VF,") && !manifest.contains(",SF,"),
        "the mix has no VF or SF"
    );
    hipfrac().args(["dataset", "check"]).arg(&out).assert().success();
    hipfrac()
        .args(["dataset", "split"])
        .arg(&out)
        .args(["--ratios", "0.5,0.25,0.25"])
        .assert()
        .success();
    hipfrac()
        .arg("convert")
        .arg(out.join("dicom"))
        .arg("--out")
        .arg(dir.path().join("png"))
        .assert()
        .success();
    // A second run into the same folder must not overwrite the first.
    hipfrac()
        .args(["phantom", "--count", "2", "--size", "128", "--out"])
        .arg(&out)
        .assert()
        .code(2);
    let sheet = dir.path().join("sheet.png");
    hipfrac()
        .args(["phantom", "sheet"])
        .arg(&out)
        .arg("--out")
        .arg(&sheet)
        .args(["--count", "4", "--columns", "2", "--tile", "96"])
        .assert()
        .success();
    let (width, height, _, _) = {
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&sheet).unwrap()));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        (info.width, info.height, 0, 0)
    };
    assert!(width >= 2 * 96 && height >= 2 * 96);
    // Real films first, as many as given (a DICOM and a PNG here), then the phantom's.
    let dicom = std::fs::read_dir(out.join("dicom"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let png = std::fs::read_dir(dir.path().join("png"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .unwrap();
    let compared = hipfrac()
        .args(["phantom", "sheet"])
        .arg(&out)
        .arg("--out")
        .arg(dir.path().join("compared.png"))
        .args(["--count", "4", "--tile", "64", "--compare"])
        .arg(&dicom)
        .arg("--compare")
        .arg(&png)
        .assert()
        .success();
    let said = String::from_utf8_lossy(&compared.get_output().stderr).to_string();
    assert!(said.contains("(4 thumbnails)"), "{said}");
    // Bad options are refused with a message.
    let assert = hipfrac()
        .args(["phantom", "--count", "2", "--site", "nowhere", "--out"])
        .arg(dir.path().join("x"))
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&assert.get_output().stderr).contains("site-a"));
    hipfrac()
        .args(["phantom", "--count", "2", "--mix", "DF=x", "--out"])
        .arg(dir.path().join("y"))
        .assert()
        .code(2);
}

/// `phantom --skip-existing` leaves an earlier run of the same settings alone (exit 0, nothing
/// touched) and refuses one of another count, seed, size, site or mix, or an unfinished one.
#[test]
fn skip_existing_leaves_an_earlier_run_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ph");
    let run = |count: &str, extra: &[&str]| {
        hipfrac()
            .args(["phantom", "--count", count, "--size", "64", "--seed", "2", "--out"])
            .arg(&out)
            .args(extra)
            .assert()
    };
    run("2", &[]).success();
    let manifest = out.join("manifest.csv");
    let before = std::fs::metadata(&manifest).unwrap().modified().unwrap();
    run("2", &[]).failure();
    run("2", &["--skip-existing"]).success();
    assert_eq!(std::fs::metadata(&manifest).unwrap().modified().unwrap(), before);
    let assert = run("3", &["--skip-existing"]).code(2);
    assert!(String::from_utf8_lossy(&assert.get_output().stderr).contains("an earlier run of 2 images, not 3"));
    // Same count, other settings: refused, naming them; nothing touched.
    let assert = hipfrac()
        .args([
            "phantom",
            "--count",
            "2",
            "--size",
            "96",
            "--seed",
            "5",
            "--skip-existing",
            "--out",
        ])
        .arg(&out)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains("--seed (2 → 5)") && stderr.contains("--size (64 → 96)"),
        "{stderr}"
    );
    assert_eq!(std::fs::metadata(&manifest).unwrap().modified().unwrap(), before);
    // An unfinished run (images, no manifest): said so, not silently mixed with a new one.
    std::fs::remove_file(&manifest).unwrap();
    let assert = run("2", &["--skip-existing"]).code(2);
    assert!(String::from_utf8_lossy(&assert.get_output().stderr).contains("unfinished earlier run"));
}
