//! `hipfrac listen` with Orthanc as the PACS (Debian's `orthanc` and `orthanc-dicomweb`,
//! started on free loopback ports with a generated configuration): Orthanc C-STOREs
//! radiographs to the node; the results come back by C-STORE and, in a second run, by DICOMweb
//! STOW-RS; the test reads them back from Orthanc's REST API (same study, SR/PR/SC present, the
//! SR referencing its source) and has Orthanc render the Secondary Capture. Skipped without
//! Orthanc (HIPFRAC_REQUIRE_ORTHANC, set in CI, makes that a failure).

use crate::support::{free_port, hipfrac, listen};
use hipfrac_model::ModelConfig;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian installs Orthanc in /usr/sbin, which a non-root PATH may lack.
fn orthanc_program() -> std::path::PathBuf {
    let sbin = Path::new("/usr/sbin/Orthanc");
    if sbin.is_file() {
        sbin.to_path_buf()
    } else {
        "Orthanc".into()
    }
}
const DICOMWEB_PLUGIN: &str = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";
const SR_CLASSES: &str = "1.2.840.10008.5.1.4.1.1.88.";
const GSPS: &str = "1.2.840.10008.5.1.4.1.1.11.1";
const SECONDARY_CAPTURE: &str = "1.2.840.10008.5.1.4.1.1.7";

fn have_orthanc() -> bool {
    let ok = Command::new(orthanc_program())
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        && Path::new(DICOMWEB_PLUGIN).is_file();
    if !ok {
        if std::env::var_os("HIPFRAC_REQUIRE_ORTHANC").is_some() {
            panic!(
                "Orthanc and its DICOMweb plugin (Debian: orthanc, orthanc-dicomweb) are required but not installed"
            );
        }
        eprintln!("SKIP: Orthanc or {DICOMWEB_PLUGIN} is not installed");
    }
    ok
}

/// Orthanc on free loopback ports, storing in `dir`.
struct Orthanc {
    child: Child,
    http: u16,
    dicom: u16,
    log: PathBuf,
}

impl Orthanc {
    fn start(dir: &Path) -> Orthanc {
        let (http, dicom) = (free_port(), free_port());
        let storage = dir.join("orthanc-storage");
        std::fs::create_dir_all(&storage).unwrap();
        let config = serde_json::json!({
            "Name": "hipfrac-test-pacs",
            "StorageDirectory": storage,
            "IndexDirectory": storage,
            "HttpPort": http,
            "DicomPort": dicom,
            "DicomAet": "ORTHANC",
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": false,
            "Plugins": [DICOMWEB_PLUGIN],
            "DicomWeb": {"Enable": true, "Root": "/dicom-web/"},
        });
        let path = dir.join("orthanc.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let log = dir.join("orthanc.log");
        let child = Command::new(orthanc_program())
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let orthanc = Orthanc {
            child,
            http,
            dicom,
            log,
        };
        orthanc.wait_for("Orthanc's REST API", || orthanc.get("/system").is_some());
        orthanc
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `curl` with `args`: the body and the HTTP status.
    fn curl(&self, args: &[&str]) -> (Vec<u8>, u16) {
        let out = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}"])
            .args(args)
            .output()
            .expect("curl (required by the tests)");
        let mut body = out.stdout;
        let split = body.iter().rposition(|&b| b == b'\n').unwrap_or(0);
        let status = String::from_utf8_lossy(&body[split..]).trim().parse().unwrap_or(0);
        body.truncate(split);
        (body, status)
    }

    fn get(&self, path: &str) -> Option<serde_json::Value> {
        let (body, status) = self.curl(&[&self.url(path)]);
        (status == 200).then(|| serde_json::from_slice(&body).ok()).flatten()
    }

    fn send(&self, method: &str, path: &str, body: &str) -> serde_json::Value {
        let (reply, status) = self.curl(&["-X", method, "--data-binary", body, &self.url(path)]);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: HTTP {status}: {}\n{}",
            String::from_utf8_lossy(&reply),
            self.log()
        );
        serde_json::from_slice(&reply).unwrap_or(serde_json::Value::Null)
    }

    fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "timed out waiting for {what}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Registers the node listening on `port` (AE HIPFRAC) and C-STOREs the instances `ids` to
    /// it, as a PACS's "send to" does.
    fn store_to_node(&self, port: u16, ids: &[&str]) {
        self.send(
            "PUT",
            "/modalities/hipfrac",
            &format!(r#"{{"AET": "HIPFRAC", "Host": "127.0.0.1", "Port": {port}}}"#),
        );
        self.send(
            "POST",
            "/modalities/hipfrac/store",
            &serde_json::json!({"Resources": ids, "Synchronous": true}).to_string(),
        );
    }

    /// The SOP Class UIDs of a study's instances, by instance id.
    fn classes(&self, study: &str) -> Vec<(String, String)> {
        self.get(&format!("/studies/{study}/instances"))
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|i| {
                let id = i["ID"].as_str()?.to_string();
                let tags = self.get(&format!("/instances/{id}/simplified-tags"))?;
                Some((id, tags["SOPClassUID"].as_str()?.to_string()))
            })
            .collect()
    }
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One source radiograph in Orthanc: its Orthanc id, its study's Orthanc id, its SOP Instance
/// UID.
type Source = (String, String, String);

/// `count` phantom CRs (128 px, `seed`) uploaded to `orthanc`, as a PACS holds them, in file
/// order; and an untrained model that draws boxes. Returns the phantom folder, the sources and
/// the model folder.
fn sources_and_model(orthanc: &Orthanc, dir: &Path, count: usize, seed: u64) -> (PathBuf, Vec<Source>, PathBuf) {
    let data = dir.join("phantom");
    hipfrac()
        .args([
            "phantom",
            "--count",
            &count.to_string(),
            "--size",
            "128",
            "--seed",
            &seed.to_string(),
            "--out",
        ])
        .arg(&data)
        .assert()
        .success();
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("dicom"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let sources = files
        .iter()
        .map(|file| {
            let reply = orthanc.send("POST", "/instances", &format!("@{}", file.display()));
            let id = reply["ID"].as_str().unwrap().to_string();
            let tags = orthanc.get(&format!("/instances/{id}/simplified-tags")).unwrap();
            (
                id,
                reply["ParentStudy"].as_str().unwrap().to_string(),
                tags["SOPInstanceUID"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let model = dir.join("model");
    hipfrac_infer::write_untrained(&model, &ModelConfig::nano(1, 4), 128, Some(0.0)).unwrap();
    (data, sources, model)
}

/// Orthanc sends the sources to the node at `port`, then every source's study must hold its
/// SR, GSPS and SC, the SR naming its source; Orthanc renders the SC. Returns the results' ids.
fn round_trip(orthanc: &Orthanc, port: u16, sources: &[Source], leg: &str, log: &dyn Fn() -> String) -> Vec<String> {
    let ids: Vec<&str> = sources.iter().map(|(id, _, _)| id.as_str()).collect();
    let sent = Instant::now();
    orthanc.store_to_node(port, &ids);
    let mut results = Vec::new();
    let mut all_back = Duration::ZERO;
    for (_, study, source_uid) in sources {
        let started = Instant::now();
        let classes = loop {
            let classes = orthanc.classes(study);
            if classes.len() >= 4 {
                all_back = all_back.max(sent.elapsed());
                break classes;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "study {study}: {classes:?} after 120 s\nnode:\n{}\northanc:\n{}",
                log(),
                orthanc.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        let of = |prefix: &str| -> Vec<&String> {
            classes
                .iter()
                .filter(|(_, c)| c.starts_with(prefix))
                .map(|(id, _)| id)
                .collect()
        };
        let (sr, gsps, sc) = (of(SR_CLASSES), of(GSPS), of(SECONDARY_CAPTURE));
        assert_eq!(
            (sr.len(), gsps.len(), sc.len(), classes.len()),
            (1, 1, 1, 4),
            "study {study}: {classes:?}"
        );
        // The SR names its source image (its references are in the same study).
        let tags = orthanc.get(&format!("/instances/{}/tags?simplify", sr[0])).unwrap();
        assert!(
            tags.to_string().contains(source_uid.as_str()),
            "the SR does not reference its source {source_uid}"
        );
        // Orthanc renders the Secondary Capture.
        let (png, status) = orthanc.curl(&[&orthanc.url(&format!("/instances/{}/preview", sc[0]))]);
        assert_eq!(status, 200);
        assert!(png.starts_with(b"\x89PNG"), "the SC's preview is not a PNG");
        results.extend([sr[0].clone(), gsps[0].clone(), sc[0].clone()]);
    }
    // The studies are polled one after another, so this is an upper bound.
    eprintln!(
        "round trip ({leg}): Orthanc sent {} radiographs to the node; {} results (SR, GSPS, SC) back in their studies within {:.2} s",
        sources.len(),
        results.len(),
        all_back.as_secs_f64()
    );
    results
}

#[test]
fn orthanc_sends_radiographs_and_gets_results_by_c_store_and_by_stow_rs() {
    if !have_orthanc() {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let orthanc = Orthanc::start(temp.path());
    let (_, sources, model) = sources_and_model(&orthanc, temp.path(), 2, 5);

    // 1. Results back by C-STORE.
    let dest = format!("ORTHANC@127.0.0.1:{}", orthanc.dicom);
    let (mut node, port, log) = listen(&model, &temp.path().join("spool-1"), &["--dest", &dest]);
    let results = round_trip(&orthanc, port, &sources, "C-STORE", &|| log.lock().unwrap().clone());
    let _ = node.kill();
    let _ = node.wait();
    // 2. The results removed from Orthanc, then back by STOW-RS.
    for id in &results {
        orthanc.send("DELETE", &format!("/instances/{id}"), "");
    }
    assert!(sources.iter().all(|(_, study, _)| orthanc.classes(study).len() == 1));
    let root = orthanc.url("/dicom-web");
    let (mut node, port, log) = listen(&model, &temp.path().join("spool-2"), &["--dest-dicomweb", &root]);
    round_trip(&orthanc, port, &sources, "STOW-RS", &|| log.lock().unwrap().clone());
    let delivered = log.lock().unwrap().clone();
    assert!(
        delivered.contains("results delivered") && delivered.contains(&root),
        "{delivered}"
    );
    let _ = node.kill();
    let _ = node.wait();
}

/// A DICOMweb server that refuses (here: Orthanc's STOW-RS behind a wrong path, 404) gets the
/// same handling as a refusing C-STORE destination: tried a few times, then the results move
/// to the spool's failed/ folder with the reason; nothing is lost.
#[test]
fn a_refusing_dicomweb_server_sends_the_results_to_failed() {
    if !have_orthanc() {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let orthanc = Orthanc::start(temp.path());
    let (_, sources, model) = sources_and_model(&orthanc, temp.path(), 1, 6);
    let id = &sources[0].0;
    let spool = temp.path().join("spool");
    let wrong = orthanc.url("/no-such-dicom-web");
    let (mut node, port, log) = listen(&model, &spool, &["--dest-dicomweb", &wrong]);
    orthanc.store_to_node(port, &[id.as_str()]);
    let failed = spool.join("failed");
    orthanc.wait_for("the results in failed/", || {
        std::fs::read_dir(&failed).is_ok_and(|d| d.count() > 0)
    });
    let text = log.lock().unwrap().clone();
    assert!(text.contains("refused by the DICOMweb server with HTTP 404"), "{text}");
    let _ = node.kill();
    let _ = node.wait();
}

/// `hipfrac predict --dicom sr,gsps,sc --stow URL`: every input's results go to Orthanc by
/// STOW-RS into the source's study, and OUT/stow.csv says so; a server that refuses (a wrong
/// DICOMweb root, 404) leaves the results in OUT, lists them as not sent and exits 1.
#[test]
fn predict_sends_its_dicom_results_by_stow_rs() {
    if !have_orthanc() {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let orthanc = Orthanc::start(temp.path());
    let (data, sources, model) = sources_and_model(&orthanc, temp.path(), 2, 8);
    let studies: Vec<&String> = sources.iter().map(|(_, study, _)| study).collect();
    let predict = |out: &str, root: &str| {
        hipfrac()
            .arg("predict")
            .arg(data.join("dicom"))
            .arg("--model")
            .arg(&model)
            .args([
                "--device",
                "cpu",
                "--no-overlay",
                "--dicom",
                "sr,gsps,sc",
                "--stow",
                root,
                "--out",
            ])
            .arg(temp.path().join(out))
            .assert()
    };
    predict("sent", &orthanc.url("/dicom-web")).success();
    for study in &studies {
        let classes = orthanc.classes(study);
        assert_eq!(classes.len(), 4, "study {study}: {classes:?}");
    }
    let csv = std::fs::read_to_string(temp.path().join("sent/stow.csv")).unwrap();
    assert_eq!(csv.lines().filter(|l| l.contains(",sent,")).count(), 2, "{csv}");
    let refused = predict("refused", &orthanc.url("/not-dicom-web")).code(1);
    let stderr = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    assert!(
        stderr.contains("refused by the DICOMweb server with HTTP 404"),
        "{stderr}"
    );
    let csv = std::fs::read_to_string(temp.path().join("refused/stow.csv")).unwrap();
    assert_eq!(csv.lines().filter(|l| l.contains(",not sent,")).count(), 2, "{csv}");
    // The results stay in OUT.
    assert_eq!(
        std::fs::read_dir(temp.path().join("refused"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().to_string_lossy().ends_with(".sr.dcm"))
            .count(),
        2
    );
}
