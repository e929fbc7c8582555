//! `hipfrac study report` on a simulated study: phantom cases, simulated readers with known
//! sensitivity.

use crate::support::hipfrac;

#[test]
fn study_report_recovers_simulated_readers() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("cases");
    hipfrac()
        .args(["phantom", "--count", "60", "--size", "96", "--seed", "9", "--out"])
        .arg(&data)
        .assert()
        .success();
    let manifest = std::fs::read_to_string(data.join("manifest.csv")).unwrap();
    let cases: Vec<(String, String)> = manifest
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[4].to_string())
        })
        .collect();
    // Reader R1 is always right; R2 misses every third fracture (answers "none") without the
    // AI and nothing with it: its unaided sensitivity is about 2/3, aided 1.
    let mut reads = String::from("reader,phase,case,label,seconds\n");
    for phase in ["I", "II", "III"] {
        for (k, (case, label)) in cases.iter().enumerate() {
            reads.push_str(&format!("R1,{phase},{case},{label},12.5\n"));
            let r2 = if phase != "III" && label != "none" && k % 3 == 0 {
                "none"
            } else {
                label.as_str()
            };
            reads.push_str(&format!("R2,{phase},{case},{r2},\n"));
        }
    }
    let reads_path = temp.path().join("reads.csv");
    std::fs::write(&reads_path, reads).unwrap();
    let out = temp.path().join("report");
    let assert = hipfrac()
        .args(["study", "report"])
        .arg(&reads_path)
        .arg("--truth")
        .arg(data.join("manifest.csv"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("I → III") && stderr.contains("II → III"), "{stderr}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for needle in [
        "Table III",
        "Obuchowski",
        "McNemar",
        "Fleiss",
        "Intra-reader",
        "<svg",
        "ROC space",
    ] {
        assert!(html.contains(needle), "{needle}");
    }
    let tables = std::fs::read_to_string(out.join("tables.csv")).unwrap();
    let mut checked = 0;
    for line in tables.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (reader, phase, tp, fn_) = (f[0], f[1], f[3].parse::<u64>().unwrap(), f[6].parse::<u64>().unwrap());
        if tp + fn_ == 0 {
            continue;
        }
        let (se, lo, hi) = (
            f[7].parse::<f64>().unwrap(),
            f[8].parse::<f64>().unwrap(),
            f[9].parse::<f64>().unwrap(),
        );
        assert!(lo <= se && se <= hi);
        if reader == "R1" || phase == "III" {
            assert_eq!(se, 1.0, "{line}");
        } else {
            // Every third case missed: about two thirds, and inside its interval.
            assert!(lo <= 2.0 / 3.0 && 2.0 / 3.0 <= hi && se < 1.0, "{line}");
        }
        checked += 1;
    }
    assert!(checked >= 12, "{tables}");
    let stats: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["mrmc"].as_array().unwrap().len(), 2);
}

#[test]
fn a_bad_reads_table_is_named_with_its_line() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("cases");
    hipfrac()
        .args(["phantom", "--count", "2", "--size", "96", "--out"])
        .arg(&data)
        .assert()
        .success();
    let reads = temp.path().join("reads.csv");
    std::fs::write(
        &reads,
        "reader,phase,case,label\nR1,I,images/x.png,DF\nR1,I,images/y.png,broken-hip\n",
    )
    .unwrap();
    let out = temp.path().join("report");
    let assert = hipfrac()
        .args(["study", "report"])
        .arg(&reads)
        .arg("--truth")
        .arg(data.join("manifest.csv"))
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains("reads.csv") && stderr.contains("line 3") && stderr.contains("broken-hip"),
        "{stderr}"
    );
    assert!(!out.exists());
    std::fs::write(&reads, "who,when,label\nR1,I,DF\n").unwrap();
    let assert = hipfrac()
        .args(["study", "report"])
        .arg(&reads)
        .arg("--truth")
        .arg(data.join("manifest.csv"))
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&assert.get_output().stderr).contains("reader, phase, case and label"));
}
