//! `hipfrac listen`, the DICOM node, against dcmtk as the real PACS on loopback: `storescu`
//! and `echoscu` send, `storescp` receives the results. Skipped without dcmtk (required in
//! CI).

use crate::support::{assert_dciodvfy_clean, free_port, have_dcmtk, hipfrac, listen, shared_dicom};
use dicom_dictionary_std::tags;
use hipfrac_model::ModelConfig;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn untrained(dir: &Path) -> PathBuf {
    let model = dir.join("model");
    hipfrac_infer::write_untrained(&model, &ModelConfig::nano(1, 4), 128, Some(0.0)).unwrap();
    model
}

/// `count` phantom CR DICOMs of 128 px.
fn phantom_dicoms(dir: &Path, count: usize) -> Vec<PathBuf> {
    let data = dir.join("phantom");
    hipfrac()
        .args([
            "phantom",
            "--count",
            &count.to_string(),
            "--size",
            "128",
            "--seed",
            "11",
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
    files
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool, log: impl Fn() -> String) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// dcmtk's storescp as the PACS: stores what it receives in `dir`.
struct Pacs {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Pacs {
    fn start(dir: &Path) -> Pacs {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let child = Command::new("storescp")
            .args(["-aet", "PACS", "-od"])
            .arg(dir)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(
            "storescp",
            Duration::from_secs(20),
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            String::new,
        );
        Pacs {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    /// The files received whose name starts with `prefix` (storescp names them by modality:
    /// SRc., PSg., SC.).
    fn received(&self, prefix: &str) -> Vec<PathBuf> {
        std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
            .collect()
    }
}

impl Drop for Pacs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hipfrac listen` on a free port; its log is collected.
struct Node {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Node {
    fn start(model: &Path, spool: &Path, pacs: u16, extra: &[&str]) -> Node {
        let dest = format!("PACS@127.0.0.1:{pacs}");
        let args: Vec<&str> = ["--dest", dest.as_str()]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        let (child, port, log) = listen(model, spool, &args);
        Node { child, port, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// storescu (verbose) to this node; `propose` picks the transfer syntaxes offered.
    fn store(&self, files: &[&Path], propose: &[&str]) -> std::process::Output {
        Command::new("storescu")
            .args(["-v", "-R", "-aet", "STORESCU", "-aec", "HIPFRAC"])
            .args(propose)
            .arg("127.0.0.1")
            .arg(self.port.to_string())
            .args(files)
            .output()
            .unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn sop_instance(path: &Path) -> String {
    let object = dicom_object::open_file(path).unwrap();
    object
        .element(tags::SOP_INSTANCE_UID)
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches('\0')
        .to_string()
}

/// A copy of `source` with `edit` applied (storescu sends what it is given).
fn edited(source: &Path, target: &Path, edit: impl FnOnce(&mut dicom_object::DefaultDicomObject)) -> PathBuf {
    let mut object = dicom_object::open_file(source).unwrap();
    edit(&mut object);
    object.meta_mut().update_information_group_length();
    object.write_to_file(target).unwrap();
    target.to_path_buf()
}

/// The node answers C-ECHO; receives phantom CRs and the real hip in several compressed
/// transfer syntaxes; sends an SR, a presentation state and a Secondary Capture of each to
/// the PACS, all clean under dciodvfy and each in its source's study; refuses an unsupported
/// SOP class at negotiation, a corrupt image with a failure status (and keeps serving), and
/// callers not on the allow-list.
#[test]
fn listen_receives_predicts_and_sends_the_results_to_a_pacs() {
    if !have_dcmtk("storescp") {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let model = untrained(temp.path());
    let pacs = Pacs::start(&temp.path().join("pacs"));
    let node = Node::start(
        &model,
        &temp.path().join("spool"),
        pacs.port,
        &["--allow", "STORESCU,ECHOSCU"],
    );

    let echo = Command::new("echoscu")
        .args(["-aec", "HIPFRAC", "127.0.0.1"])
        .arg(node.port.to_string())
        .output()
        .unwrap();
    assert!(echo.status.success(), "{}\n{}", text(&echo), node.log());
    let intruder = Command::new("echoscu")
        .args(["-aet", "INTRUDER", "-aec", "HIPFRAC", "127.0.0.1"])
        .arg(node.port.to_string())
        .output()
        .unwrap();
    assert!(
        !intruder.status.success() && text(&intruder).contains("Rejected"),
        "{}",
        text(&intruder)
    );
    let misdialled = Command::new("echoscu")
        .args(["-aec", "OTHER", "127.0.0.1"])
        .arg(node.port.to_string())
        .output()
        .unwrap();
    assert!(!misdialled.status.success(), "{}", text(&misdialled));

    // Phantom CRs (uncompressed) and, where the shared data is, the real hip compressed.
    let phantoms = phantom_dicoms(temp.path(), 2);
    let mut sent: Vec<PathBuf> = phantoms.clone();
    let stored = node.store(&phantoms.iter().map(|p| p.as_path()).collect::<Vec<_>>(), &[]);
    assert!(stored.status.success(), "{}\n{}", text(&stored), node.log());
    if let Some(shared) = shared_dicom() {
        // One instance UID per file: the three variants share the original's, so each is
        // given its own (as three different images would have).
        for (i, (name, propose)) in [("RG2_RLE", "-xr"), ("RG2_JLSL", "-xt"), ("RG2_J2KR", "-xv")]
            .into_iter()
            .enumerate()
        {
            let copy = edited(
                &shared.join("dicom_wg04_hip").join(name),
                &temp.path().join(name),
                |o| {
                    let uid = format!("1.2.826.0.1.3680043.10.1234.{}", i + 1);
                    o.put(dicom_core::DataElement::new(
                        tags::SOP_INSTANCE_UID,
                        dicom_core::VR::UI,
                        dicom_core::PrimitiveValue::from(uid.as_str()),
                    ));
                    o.meta_mut().media_storage_sop_instance_uid = uid;
                },
            );
            let stored = node.store(&[&copy], &[propose]);
            assert!(
                stored.status.success() && text(&stored).contains("Success"),
                "{name}: {}\n{}",
                text(&stored),
                node.log()
            );
            sent.push(copy);
        }
    }

    // Refused at negotiation: a CT image is not a radiograph hipfrac reads.
    let ct = edited(&phantoms[0], &temp.path().join("ct.dcm"), |o| {
        o.put(dicom_core::DataElement::new(
            tags::SOP_CLASS_UID,
            dicom_core::VR::UI,
            dicom_core::PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.2"),
        ));
        o.meta_mut().media_storage_sop_class_uid = "1.2.840.10008.5.1.4.1.1.2".into();
    });
    let refused = node.store(&[&ct], &[]);
    assert!(!refused.status.success(), "{}", text(&refused));
    // Refused with a failure status: pixel data shorter than Rows x Columns.
    let corrupt = edited(&phantoms[1], &temp.path().join("corrupt.dcm"), |o| {
        o.put(dicom_core::DataElement::new(
            tags::ROWS,
            dicom_core::VR::US,
            dicom_core::PrimitiveValue::from(4096u16),
        ));
        o.put(dicom_core::DataElement::new(
            tags::SOP_INSTANCE_UID,
            dicom_core::VR::UI,
            dicom_core::PrimitiveValue::from("1.2.826.0.1.3680043.10.1234.99"),
        ));
        o.meta_mut().media_storage_sop_instance_uid = "1.2.826.0.1.3680043.10.1234.99".into();
    });
    let answer = node.store(&[&corrupt], &[]);
    assert!(
        text(&answer).contains("Error: CannotUnderstand"),
        "{}\n{}",
        text(&answer),
        node.log()
    );

    // Every accepted instance gets its three results at the PACS; the node still serves.
    let wanted = sent.len();
    wait_for(
        "the results at the PACS",
        Duration::from_secs(180),
        || ["SRc.", "PSg.", "SC."].iter().all(|p| pacs.received(p).len() >= wanted),
        || node.log(),
    );
    let sources: Vec<String> = sent.iter().map(|p| sop_instance(p)).collect();
    for sr in pacs.received("SRc.") {
        assert_dciodvfy_clean(&sr, "ComprehensiveSR");
        let bytes = String::from_utf8_lossy(&std::fs::read(&sr).unwrap()).to_string();
        assert!(
            sources.iter().any(|s| bytes.contains(s.as_str())),
            "the SR references a source instance"
        );
    }
    for pr in pacs.received("PSg.") {
        assert_dciodvfy_clean(&pr, "GrayscaleSoftcopyPresentationState");
    }
    for sc in pacs.received("SC.") {
        assert_dciodvfy_clean(&sc, "SCImage");
    }
    assert!(
        !pacs
            .received("")
            .iter()
            .any(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).contains("1.2.826.0.1.3680043.10.1234.99")),
        "nothing made of the refused instance"
    );
    let echo = Command::new("echoscu")
        .args(["-aec", "HIPFRAC", "127.0.0.1"])
        .arg(node.port.to_string())
        .output()
        .unwrap();
    assert!(echo.status.success());
}

/// Which files storescu's verbose log shows acknowledged with success.
fn acknowledged(log: &str) -> Vec<String> {
    let mut done = Vec::new();
    let mut current: Option<String> = None;
    for line in log.lines() {
        if let Some(file) = line.split_once("Sending file: ").map(|(_, f)| f.trim().to_string()) {
            current = Some(file);
        } else if line.contains("Received Store Response (Success)") {
            done.extend(current.take());
        }
    }
    done
}

/// kill -9 while 50 instances stream in; a restart on the same spool delivers the results of
/// every instance acknowledged before the kill, and each result exists once at the PACS (a
/// result sent again carries the same SOP Instance UID).
#[test]
fn listen_loses_nothing_acknowledged_when_killed() {
    if !have_dcmtk("storescp") {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let model = untrained(temp.path());
    let pacs = Pacs::start(&temp.path().join("pacs"));
    let spool = temp.path().join("spool");
    let files = phantom_dicoms(temp.path(), 50);
    let mut node = Node::start(&model, &spool, pacs.port, &["--outputs", "sr"]);
    // Kill the node once some instances are in and some results out.
    let watch = spool.clone();
    let pid = node.child.id();
    let killer = std::thread::spawn(move || {
        let started = Instant::now();
        let count = |dir: &str| std::fs::read_dir(watch.join(dir)).map(|d| d.count()).unwrap_or(0);
        while count("done") + count("outbox") + count("incoming") < 12 && started.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(2));
        }
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    });
    let first = node.store(&files.iter().map(|p| p.as_path()).collect::<Vec<_>>(), &[]);
    killer.join().unwrap();
    let _ = node.child.wait();
    let acked = acknowledged(&text(&first));
    assert!(
        acked.len() >= 5 && acked.len() < 50,
        "the kill landed mid-stream: {} acknowledged\n{}",
        acked.len(),
        text(&first)
    );

    let count = |dir: &str| std::fs::read_dir(spool.join(dir)).unwrap().count();
    eprintln!(
        "killed with {} acknowledged: incoming {}, outbox {}, done {}",
        acked.len(),
        count("incoming"),
        count("outbox"),
        count("done")
    );
    // Restart on the same spool; send what was not acknowledged.
    let node = Node::start(&model, &spool, pacs.port, &["--outputs", "sr"]);
    let rest: Vec<&Path> = files
        .iter()
        .filter(|f| !acked.contains(&f.display().to_string()))
        .map(|p| p.as_path())
        .collect();
    let second = node.store(&rest, &[]);
    assert!(second.status.success(), "{}\n{}", text(&second), node.log());

    wait_for(
        "50 reports at the PACS",
        Duration::from_secs(180),
        || pacs.received("SRc.").len() >= 50,
        || node.log(),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        pacs.received("SRc.").len(),
        50,
        "one report per instance, none twice under another UID"
    );
    let reports: Vec<String> = pacs
        .received("SRc.")
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).to_string())
        .collect();
    for file in &files {
        let uid = sop_instance(file);
        assert!(
            reports.iter().any(|r| r.contains(&uid)),
            "{} has its report",
            file.display()
        );
    }
    let left = |dir: &str| std::fs::read_dir(spool.join(dir)).unwrap().count();
    wait_for(
        "an empty outbox",
        Duration::from_secs(30),
        || left("incoming") + left("outbox") == 0,
        || node.log(),
    );
    // An instance committed just before the kill but not acknowledged was sent again: two
    // receptions of it, both predicted, their results the same instances at the PACS.
    assert!(left("done") >= 50, "{} receptions done", left("done"));
}

/// A full spool refuses new instances with "out of resources" (0xA700) instead of accepting
/// what it may not be able to keep; a result folder that cannot be delivered is moved to
/// failed/ after its tries, and the node accepts again.
#[test]
fn listen_refuses_when_the_spool_is_full() {
    if !have_dcmtk("storescu") {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let model = untrained(temp.path());
    let spool = temp.path().join("spool");
    // 2 MiB of undeliverable results left in the outbox, over a 1 MiB limit.
    let stuck = spool.join("outbox").join("1.2.3");
    std::fs::create_dir_all(&stuck).unwrap();
    std::fs::write(stuck.join("result.sr.dcm"), vec![0u8; 2 << 20]).unwrap();
    let nobody = free_port();
    let node = Node::start(&model, &spool, nobody, &["--spool-limit-mb", "1"]);
    let files = phantom_dicoms(temp.path(), 1);
    let refused = node.store(&[&files[0]], &[]);
    assert!(
        text(&refused).contains("OutOfResources"),
        "{}\n{}",
        text(&refused),
        node.log()
    );
    assert_eq!(std::fs::read_dir(spool.join("incoming")).unwrap().count(), 0);
    wait_for(
        "the stuck results in failed/",
        Duration::from_secs(60),
        || spool.join("failed").join("1.2.3.txt").exists(),
        || node.log(),
    );
    let stored = node.store(&[&files[0]], &[]);
    assert!(
        text(&stored).contains("Received Store Response (Success)"),
        "{}\n{}",
        text(&stored),
        node.log()
    );
}
