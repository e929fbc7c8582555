use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn hipfrac() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("hipfrac").expect("the hipfrac binary should be built")
}

/// The shared folder: `$HIPFRAC_SHARED`, else `../shared` beside the workspace.
fn shared_root() -> PathBuf {
    std::env::var_os("HIPFRAC_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// ../shared/data/dicom, or `None` with a message.
pub fn shared_dicom() -> Option<PathBuf> {
    let root = shared_root().join("data/dicom");
    if root.is_dir() {
        Some(root)
    } else {
        // CI sets HIPFRAC_REQUIRE_SHARED: there a missing ../shared fails instead of skipping.
        if std::env::var_os("HIPFRAC_REQUIRE_SHARED").is_some() {
            panic!(
                "{} is required (HIPFRAC_REQUIRE_SHARED is set) but absent",
                root.display()
            );
        }
        eprintln!("SKIP: {} is absent", root.display());
        None
    }
}

/// A tool the test needs (readelf, openssl, curl): true when it runs; when
/// HIPFRAC_REQUIRE_TOOLS is set (as in CI) a missing one fails the test instead of skipping it.
pub fn have_tool(tool: &str, version_flag: &str) -> bool {
    let ok = Command::new(tool).arg(version_flag).output().is_ok();
    if !ok {
        if std::env::var_os("HIPFRAC_REQUIRE_TOOLS").is_some() {
            panic!("{tool} is required (HIPFRAC_REQUIRE_TOOLS is set) but not installed");
        }
        eprintln!("SKIP: {tool} is not installed");
    }
    ok
}

/// The malformed DICOM files that broke hipfrac (../shared/data/bad-dicom, found by fuzzing,
/// and the crashes `bench/fuzz.sh` finds), kept in the repository so that their tests never
/// skip. When ../shared is present, every reproducer there must have its copy here.
pub fn bad_dicom() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad-dicom");
    let shared = shared_root().join("data/bad-dicom");
    if let Ok(entries) = std::fs::read_dir(&shared) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            if entry.path().extension().is_some_and(|e| e == "dcm") {
                assert!(
                    here.join(&name).is_file(),
                    "{} has no copy in {}",
                    entry.path().display(),
                    here.display()
                );
            }
        }
    }
    here
}

/// True when the dcmtk tool runs. When HIPFRAC_REQUIRE_DCMTK is set (as in CI) a missing
/// dcmtk fails the test instead of skipping it.
pub fn have_dcmtk(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var_os("HIPFRAC_REQUIRE_DCMTK").is_some() {
            panic!("{tool} (dcmtk) is required but not installed");
        }
        eprintln!("SKIP: {tool} (dcmtk) is not installed");
    }
    ok
}

/// Decodes a greyscale PNG (8 or 16 bit) to (width, height, bit depth, samples).
pub fn read_png(path: &Path) -> (u32, u32, u8, Vec<u16>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buffer).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale, "{}", path.display());
    let samples = match info.bit_depth {
        png::BitDepth::Sixteen => buffer[..info.buffer_size()]
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect(),
        _ => buffer[..info.buffer_size()].iter().map(|&b| b as u16).collect(),
    };
    (info.width, info.height, info.bit_depth as u8, samples)
}

/// Attributes of a small test radiograph.
pub struct TestImage<'a> {
    pub rows: u16,
    pub columns: u16,
    pub patient_id: &'a str,
    pub patient_name: &'a str,
    pub sop_instance_uid: &'a str,
    pub with_pixels: bool,
}

impl Default for TestImage<'_> {
    fn default() -> Self {
        Self {
            rows: 64,
            columns: 48,
            patient_id: "PAT-001",
            patient_name: "DOE^JANE",
            sop_instance_uid: "1.2.826.0.1.3680043.2.1125.1.1",
            with_pixels: true,
        }
    }
}

/// Writes a native little-endian CR image with identifying attributes, a private tag,
/// burned-in annotation and a gradient of 12-bit pixels.
pub fn write_test_dicom(path: &Path, image: &TestImage) {
    let s = |tag, vr, value: &str| DataElement::new(tag, vr, PrimitiveValue::from(value));
    let u = |tag, value: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(value));
    let mut elements = vec![
        s(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.1"),
        s(tags::SOP_INSTANCE_UID, VR::UI, image.sop_instance_uid),
        s(tags::STUDY_DATE, VR::DA, "20240131"),
        s(tags::MODALITY, VR::CS, "CR"),
        s(tags::INSTITUTION_NAME, VR::LO, "Seoul Test Hospital"),
        s(tags::REFERRING_PHYSICIAN_NAME, VR::PN, "HOUSE^GREGORY"),
        s(tags::PATIENT_NAME, VR::PN, image.patient_name),
        s(tags::PATIENT_ID, VR::LO, image.patient_id),
        s(tags::PATIENT_BIRTH_DATE, VR::DA, "19400101"),
        s(tags::PATIENT_SEX, VR::CS, "F"),
        s(tags::PATIENT_AGE, VR::AS, "084Y"),
        s(tags::BODY_PART_EXAMINED, VR::CS, "HIP"),
        s(tags::STUDY_INSTANCE_UID, VR::UI, "1.2.826.0.1.3680043.2.1125.2"),
        s(tags::SERIES_INSTANCE_UID, VR::UI, "1.2.826.0.1.3680043.2.1125.3"),
        s(tags::IMAGE_LATERALITY, VR::CS, "R"),
        u(tags::SAMPLES_PER_PIXEL, 1),
        s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        u(tags::ROWS, image.rows),
        u(tags::COLUMNS, image.columns),
        s(tags::PIXEL_SPACING, VR::DS, "0.15\\0.15"),
        u(tags::BITS_ALLOCATED, 16),
        u(tags::BITS_STORED, 12),
        u(tags::HIGH_BIT, 11),
        u(tags::PIXEL_REPRESENTATION, 0),
        s(tags::WINDOW_CENTER, VR::DS, "2048"),
        s(tags::WINDOW_WIDTH, VR::DS, "4096"),
        s(tags::BURNED_IN_ANNOTATION, VR::CS, "YES"),
        DataElement::new(
            dicom_core::Tag(0x0009, 0x0010),
            VR::LO,
            PrimitiveValue::from("ACME PRIVATE"),
        ),
        DataElement::new(
            dicom_core::Tag(0x0009, 0x1001),
            VR::LO,
            PrimitiveValue::from("secret-mrn-998877"),
        ),
    ];
    if image.with_pixels {
        // Pixel data sized for a small image even when the header claims a huge one.
        let count = (image.rows as usize * image.columns as usize).min(64 * 48);
        let pixels: Vec<u16> = (0..count).map(|i| ((i * 37) % 4096) as u16).collect();
        elements.push(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(pixels.into()),
        ));
    }
    let object = InMemDicomObject::from_element_iter(elements);
    let file = object
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax("1.2.840.10008.1.2.1")
                .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.1")
                .media_storage_sop_instance_uid(image.sop_instance_uid),
        )
        .unwrap();
    file.write_to_file(path).unwrap();
}

/// Every file below `dir` (recursively), as sorted relative paths.
pub fn files_below(dir: &Path) -> Vec<String> {
    if !dir.exists() {
        return Vec::new();
    }
    let mut out: Vec<String> = walk(dir)
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect();
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// dicom3tools' dciodvfy recognises `path` as `iod` and reports no error (skips without
/// dicom3tools, unless HIPFRAC_REQUIRE_DICOM3TOOLS is set).
pub fn assert_dciodvfy_clean(path: &Path, iod: &str) {
    match std::process::Command::new("dciodvfy").arg(path).output() {
        Ok(check) => {
            let report = format!(
                "{}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            );
            assert!(report.contains(iod) && !report.contains("Error"), "{report}");
        }
        Err(_) if std::env::var_os("HIPFRAC_REQUIRE_DICOM3TOOLS").is_some() => {
            panic!("dciodvfy (dicom3tools) is required but not installed")
        }
        Err(_) => eprintln!("SKIP: dciodvfy (dicom3tools) is not installed"),
    }
}

/// A free TCP port on loopback (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `command` with its stderr piped and reads that until a line contains `marker`;
/// returns the child, that line, and the log, which a thread keeps filling. Panics with the
/// log when the process ends before saying it.
pub fn spawn_until(
    mut command: Command,
    marker: &str,
) -> (std::process::Child, String, std::sync::Arc<std::sync::Mutex<String>>) {
    use std::io::BufRead;
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut found = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.lock().unwrap().push_str(&format!("{line}\n"));
        if line.contains(marker) {
            found = Some(line);
            break;
        }
    }
    let line = found.unwrap_or_else(|| panic!("no {marker:?} from the process:\n{}", log.lock().unwrap()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    (child, line, log)
}

/// `hipfrac listen` on a free loopback port with `model`, `spool` and `args` (the destination
/// and anything else), small and fast (CPU, 256-px overlays, 1 s longest backoff); returns the
/// child, its port and its log.
pub fn listen(
    model: &Path,
    spool: &Path,
    args: &[&str],
) -> (std::process::Child, u16, std::sync::Arc<std::sync::Mutex<String>>) {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("hipfrac"));
    command
        .arg("listen")
        .arg("--model")
        .arg(model)
        .arg("--spool")
        .arg(spool)
        .args([
            "--addr",
            "127.0.0.1:0",
            "--device",
            "cpu",
            "--overlay-size",
            "256",
            "--max-backoff-s",
            "1",
        ])
        .args(args);
    let (child, line, log) = spawn_until(command, " on 127.0.0.1:");
    let port = line
        .split_once(" on 127.0.0.1:")
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .expect("the node prints the port it listens on");
    (child, port, log)
}
