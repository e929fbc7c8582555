//! De-identification against PS3.15 Table E.1-1, attribute by attribute.
//!
//! A file is built in code carrying every attribute of the table (each with a plausible
//! value of its VR; each sequence with an item holding a nested attribute of the table), a
//! copy of all of them nested inside a sequence the table does not list, private attributes,
//! curves and overlays. `deidentify_file` runs on it, and each attribute's fate is checked
//! against the table's cell, at the top level and nested. The same file then goes through
//! the reference implementation, the PyPI package `dicom-anonymizer` (2.1.0, its 2024b
//! rules), in a test-only Python environment. Every attribute whose fate differs between the
//! two is a row of crates/cli/tests/data/deid-differences.csv, with both fates and the reason,
//! and every row is such an attribute: a new, changed or vanished difference fails, naming the
//! tag. Inside sequences the reference is checked to leave every attribute as it was.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::{tags, StandardDataDictionary};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use hipfrac_dicom::deid::table::{decide, Action, Rule, Table, TagPattern};
use hipfrac_dicom::deid::{deidentify_file, DeidOptions, Key, ProfileOption};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

type Element = DataElement<InMemDicomObject, dicom_object::mem::InMemFragment>;

/// A sequence the table does not list, holding a copy of every other attribute.
const CARRIER: Tag = Tag(0x0054, 0x0220); // View Code Sequence

/// The tag a row is tested with (one instance of a repeating group).
fn instance(rule: &Rule) -> Option<Tag> {
    match rule.tag {
        TagPattern::Exact(tag) if tag.0 == 0x0000 || tag.0 == 0x0002 => None, // command and meta groups
        TagPattern::Exact(tag) => Some(tag),
        TagPattern::Masked { value, .. } if value.0 == 0x5000 => Some(Tag(0x5002, 0x3000)),
        TagPattern::Masked { value, .. } => Some(Tag(0x6002, value.1)),
        TagPattern::Private => Some(Tag(0x0009, 0x1001)),
    }
}

fn vr_of(tag: Tag) -> VR {
    if tag.0 % 2 == 1 {
        return VR::LO;
    }
    StandardDataDictionary.by_tag(tag).map_or(VR::LO, |e| e.vr().relaxed())
}

/// A plausible, identifying-looking value of `vr` (distinct per tag where it can be).
fn value(tag: Tag, vr: VR) -> PrimitiveValue {
    let n = ((tag.0 as u32) << 16) | tag.1 as u32;
    match vr {
        VR::PN => PrimitiveValue::from("Doe^Jane"),
        VR::DA => PrimitiveValue::from("20240312"),
        VR::TM => PrimitiveValue::from("101530"),
        VR::DT => PrimitiveValue::from("20240312101530"),
        VR::UI => PrimitiveValue::from(format!("1.2.826.0.1.3680043.10.543.{n}")),
        VR::AS => PrimitiveValue::from("067Y"),
        VR::CS => PrimitiveValue::from("VALUE"),
        VR::AE => PrimitiveValue::from("HOSPITAL_AE"),
        VR::IS => PrimitiveValue::from("42"),
        VR::DS => PrimitiveValue::from("1.5"),
        VR::UR => PrimitiveValue::from("https://hospital.example/patient/4711"),
        VR::US => PrimitiveValue::from(7_u16),
        VR::SS => PrimitiveValue::from(7_i16),
        VR::UL => PrimitiveValue::from(7_u32),
        VR::SL => PrimitiveValue::from(7_i32),
        VR::UV => PrimitiveValue::from(7_u64),
        VR::SV => PrimitiveValue::from(7_i64),
        VR::FL => PrimitiveValue::from(7.5_f32),
        VR::FD => PrimitiveValue::from(7.5_f64),
        VR::AT => PrimitiveValue::Tags(std::iter::once(Tag(0x0010, 0x0010)).collect()),
        VR::OB | VR::UN | VR::OW | VR::OF | VR::OD | VR::OL | VR::OV => PrimitiveValue::U8(b"Jane Doe".to_vec().into()),
        _ => PrimitiveValue::from(format!("Jane Doe, MRN 4711 ({:04X},{:04X})", tag.0, tag.1)),
    }
}

/// The element a row is tested with; a sequence holds one item with Person Name (a D row)
/// and Referenced SOP Instance UID (a U row).
fn element(tag: Tag) -> Element {
    let vr = vr_of(tag);
    if vr == VR::SQ {
        let item = InMemDicomObject::from_element_iter([
            Element::new(Tag(0x0040, 0xA123), VR::PN, PrimitiveValue::from("Roe^Richard")),
            Element::new(
                tags::REFERENCED_SOP_INSTANCE_UID,
                VR::UI,
                PrimitiveValue::from("1.2.826.0.1.3680043.10.543.99"),
            ),
        ]);
        return Element::new(tag, VR::SQ, DataSetSequence::new(vec![item], Length::UNDEFINED));
    }
    Element::new(tag, vr, value(tag, vr))
}

/// Every row's element (no meta or command group), with the private creator.
fn table_elements() -> Vec<Element> {
    let mut elements: Vec<Element> = Table::get().rules.iter().filter_map(instance).map(element).collect();
    elements.push(Element::new(
        Tag(0x0009, 0x0010),
        VR::LO,
        PrimitiveValue::from("ACME PRIVATE"),
    ));
    elements
}

/// The test file: every row at the top level and again inside [`CARRIER`], on a tiny CR.
fn write_everything(path: &Path) {
    let s = |tag, vr, value: &str| Element::new(tag, vr, PrimitiveValue::from(value));
    let u = |tag, value: u16| Element::new(tag, VR::US, PrimitiveValue::from(value));
    let mut object = InMemDicomObject::from_element_iter([
        s(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.1"),
        s(tags::MODALITY, VR::CS, "CR"),
        u(tags::SAMPLES_PER_PIXEL, 1),
        s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        u(tags::ROWS, 2),
        u(tags::COLUMNS, 2),
        u(tags::BITS_ALLOCATED, 8),
        u(tags::BITS_STORED, 8),
        u(tags::HIGH_BIT, 7),
        u(tags::PIXEL_REPRESENTATION, 0),
        Element::new(
            tags::PIXEL_DATA,
            VR::OB,
            PrimitiveValue::U8(vec![0, 64, 128, 255].into()),
        ),
    ]);
    for e in table_elements() {
        object.put(e);
    }
    let nested = InMemDicomObject::from_element_iter(table_elements());
    object.put(Element::new(
        CARRIER,
        VR::SQ,
        DataSetSequence::new(vec![nested], Length::UNDEFINED),
    ));
    let sop = object
        .get(tags::SOP_INSTANCE_UID)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let file = object
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax("1.2.840.10008.1.2.1")
                .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.1")
                .media_storage_sop_instance_uid(sop),
        )
        .unwrap();
    file.write_to_file(path).unwrap();
}

/// What became of an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fate {
    Removed,
    Emptied,
    Replaced,
    Kept,
}

fn is_empty(e: &Element) -> bool {
    match e.value() {
        Value::Sequence(s) => s.items().is_empty(),
        Value::Primitive(p) => matches!(p, PrimitiveValue::Empty) || p.to_str().trim_matches(['\0', ' ']).is_empty(),
        Value::PixelSequence(_) => false,
    }
}

/// The fate of `tag` in `after`, compared with `before`. A sequence that is still there with
/// items counts as replaced (its items were cleaned; they are checked on their own).
fn fate(before: &InMemDicomObject, after: &InMemDicomObject, tag: Tag) -> Fate {
    let Some(new) = after.get(tag) else {
        return Fate::Removed;
    };
    if is_empty(new) {
        return Fate::Emptied;
    }
    let old = before.get(tag).expect("the input carries every row");
    match (old.value(), new.value()) {
        (Value::Sequence(_), _) => Fate::Replaced,
        _ if old.value().to_bytes().ok() == new.value().to_bytes().ok() && old.to_str().ok() == new.to_str().ok() => {
            Fate::Kept
        }
        _ => Fate::Replaced,
    }
}

/// The fates a table cell allows. Z allows a dummy as well as an empty value (E.1.1).
fn allowed(actions: &[Action]) -> Vec<Fate> {
    let mut fates: Vec<Fate> = actions
        .iter()
        .flat_map(|a| match a {
            Action::Remove => vec![Fate::Removed],
            Action::Empty => vec![Fate::Emptied, Fate::Replaced],
            Action::Dummy | Action::Uid | Action::Clean => vec![Fate::Replaced],
            Action::Keep => vec![Fate::Kept],
        })
        .collect();
    fates.sort();
    fates.dedup();
    fates
}

/// The fate hipfrac promises for an action it chose. K keeps a value unchanged but cleans a
/// sequence (E.1.1: "unchanged for non-Sequence Attributes, cleaned for Sequences"), which
/// [`fate`] calls replaced.
fn expected(action: Action, vr: VR) -> Fate {
    match action {
        Action::Remove => Fate::Removed,
        Action::Empty => Fate::Emptied,
        Action::Keep if vr == VR::SQ => Fate::Replaced,
        Action::Keep => Fate::Kept,
        // The modified-dates clean: dates move, times of day stay, anything else goes.
        Action::Clean => match vr {
            VR::DA | VR::DT => Fate::Replaced,
            VR::TM => Fate::Kept,
            _ => Fate::Removed,
        },
        Action::Dummy | Action::Uid => Fate::Replaced,
    }
}

fn run_hipfrac(input: &Path, output: &Path, options: Vec<ProfileOption>) -> InMemDicomObject {
    let options = DeidOptions {
        key: Key::from_bytes(&[7; 32]).unwrap(),
        options,
    };
    deidentify_file(input, output, &options, true).unwrap();
    dicom_object::open_file(output).unwrap().into_inner()
}

fn carrier(object: &InMemDicomObject) -> InMemDicomObject {
    match object.get(CARRIER).expect("the carrier sequence is kept").value() {
        Value::Sequence(s) => s.items()[0].clone(),
        other => panic!("carrier is not a sequence: {other:?}"),
    }
}

/// Checks every row at the top level and nested; returns how many attributes were checked.
fn check_against_table(before: &InMemDicomObject, after: &InMemDicomObject, options: &[ProfileOption]) -> usize {
    let (nested_before, nested_after) = (carrier(before), carrier(after));
    let mut checked = 0;
    let mut wrong = Vec::new();
    for rule in &Table::get().rules {
        let Some(tag) = instance(rule) else { continue };
        // The test file is a CR: no attribute of the table is type 2 in its IOD.
        let (action, why) = decide(rule, options, false);
        for (level, b, a) in [("top", before, after), ("nested", &nested_before, &nested_after)] {
            let got = fate(b, a, tag);
            // The pseudonym replaces Patient ID and Name at the top level only.
            let want = if level == "top" && (tag == tags::PATIENT_ID || tag == tags::PATIENT_NAME) {
                Fate::Replaced
            } else {
                expected(action, vr_of(tag))
            };
            let by_option = matches!(action, Action::Keep | Action::Clean);
            let cell_allows = allowed(&rule.basic).contains(&got) || (by_option && got == expected(action, vr_of(tag)));
            if got != want || !cell_allows {
                wrong.push(format!(
                    "{level} {tag} {} [{why}]: {got:?}, expected {want:?}",
                    rule.name
                ));
            }
            checked += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "{} attributes differ from Table E.1-1:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    checked
}

#[test]
fn every_attribute_of_table_e1_1_meets_its_cell() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("everything.dcm");
    write_everything(&input);
    let before = dicom_object::open_file(&input).unwrap().into_inner();
    let after = run_hipfrac(&input, &dir.path().join("basic.dcm"), vec![]);
    let checked = check_against_table(&before, &after, &[]);
    // 618 rows (621 less the command and meta groups), each at the top level and nested.
    assert_eq!(checked, 2 * 618);
    eprintln!(
        "Table E.1-1 ({}): {checked} attributes checked, basic profile",
        hipfrac_dicom::deid::EDITION
    );
    // Timezone Offset From UTC is X in the basic profile (kept only with the full-dates option).
    assert!(after.get(Tag(0x0008, 0x0201)).is_none());
    // Private creator and data, curves, overlay data and comments are gone.
    for tag in [
        Tag(0x0009, 0x0010),
        Tag(0x0009, 0x1001),
        Tag(0x5002, 0x3000),
        Tag(0x6002, 0x3000),
        Tag(0x6002, 0x4000),
    ] {
        assert!(after.get(tag).is_none(), "{tag}");
    }

    // Every supported option at once, with full dates; then with modified dates instead.
    let options: Vec<ProfileOption> = ProfileOption::ALL
        .into_iter()
        .filter(|o| o.is_supported() && *o != ProfileOption::RetainLongModifiedDates)
        .collect();
    let kept = run_hipfrac(&input, &dir.path().join("options.dcm"), options.clone());
    let checked = check_against_table(&before, &kept, &options);
    eprintln!("Table E.1-1: {checked} attributes checked with the options {options:?}");
    assert_eq!(
        kept.get(Tag(0x0008, 0x0201)).map(|e| e.to_str().unwrap().to_string()),
        before.get(Tag(0x0008, 0x0201)).map(|e| e.to_str().unwrap().to_string())
    );
    let modified = vec![ProfileOption::RetainLongModifiedDates];
    let shifted = run_hipfrac(&input, &dir.path().join("modified.dcm"), modified.clone());
    let checked = check_against_table(&before, &shifted, &modified);
    eprintln!("Table E.1-1: {checked} attributes checked with modified dates");
    assert_eq!(shifted.get(Tag(0x0028, 0x0303)).unwrap().to_str().unwrap(), "MODIFIED");
    let options = DeidOptions {
        key: Key::from_bytes(&[7; 32]).unwrap(),
        options: vec![
            ProfileOption::RetainLongFullDates,
            ProfileOption::RetainLongModifiedDates,
        ],
    };
    assert!(
        deidentify_file(&input, &dir.path().join("both.dcm"), &options, true).is_err(),
        "the two date options exclude each other"
    );
}

#[test]
fn unsupported_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("everything.dcm");
    write_everything(&input);
    let options = DeidOptions {
        key: Key::from_bytes(&[7; 32]).unwrap(),
        options: vec![ProfileOption::CleanDescriptors],
    };
    let error = deidentify_file(&input, &dir.path().join("out.dcm"), &options, false)
        .unwrap_err()
        .to_string();
    assert!(error.contains("Clean Descriptors Option is not implemented"), "{error}");
    assert!(!dir.path().join("out.dcm").exists());
}

/// A Python with `dicom-anonymizer` 2.1.0, set up once under the target directory; None (with a
/// message) where it cannot be installed, unless HIPFRAC_REQUIRE_REFERENCE is set.
fn reference_python() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deid-reference-venv");
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import dicomanonymizer"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ready(&python) {
        let made = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "dicom-anonymizer==2.1.0", "pydicom==3.0.2"])
                .status()
                .is_ok_and(|s| s.success());
        if !made || !ready(&python) {
            assert!(
                std::env::var_os("HIPFRAC_REQUIRE_REFERENCE").is_none(),
                "HIPFRAC_REQUIRE_REFERENCE is set but dicom-anonymizer could not be installed"
            );
            eprintln!(
                "skipped: cannot install dicom-anonymizer 2.1.0 (pip) in {}",
                venv.display()
            );
            return None;
        }
    }
    Some(python)
}

#[test]
fn the_reference_implementation_agrees_cell_by_cell() {
    let Some(python) = reference_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("everything.dcm");
    write_everything(&input);
    let reference_out = dir.path().join("reference.dcm");
    let script = "import sys\nfrom dicomanonymizer.simpledicomanonymizer import anonymize_dicom_file, initialize_actions_2024b\n\
anonymize_dicom_file(sys.argv[1], sys.argv[2], base_rules_gen=initialize_actions_2024b)\n";
    let run = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&input)
        .arg(&reference_out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "dicom-anonymizer failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let before = dicom_object::open_file(&input).unwrap().into_inner();
    let ours = run_hipfrac(&input, &dir.path().join("ours.dcm"), vec![]);
    let reference = dicom_object::open_file(&reference_out).unwrap().into_inner();

    // Top level: the attributes whose fate differs are exactly the rows of the differences
    // table, each with the same fates.
    let mut observed = BTreeMap::new();
    let mut same = 0;
    for rule in &Table::get().rules {
        let Some(tag) = instance(rule) else { continue };
        let (hipfrac, reference) = (fate(&before, &ours, tag), fate(&before, &reference, tag));
        if hipfrac == reference {
            same += 1;
            continue;
        }
        let allowed = allowed(&rule.basic);
        let in_cell = |fate: Fate| allowed.contains(&fate);
        observed.insert(
            row_tag(rule),
            Difference {
                keyword: keyword(tag, rule),
                cell: rule.basic_cell.to_string(),
                hipfrac,
                reference,
                hipfrac_in_cell: in_cell(hipfrac),
                reference_in_cell: in_cell(reference),
            },
        );
    }
    let listed = listed_differences();
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut wrong = Vec::new();
    for (tag, seen) in &observed {
        let (keyword, cell, ours, theirs) = (&seen.keyword, &seen.cell, seen.hipfrac.name(), seen.reference.name());
        let Some(row) = listed.get(tag) else {
            wrong.push(format!(
                "{tag} {keyword} [{cell}]: a new difference (hipfrac {ours}, reference {theirs}), not in the table"
            ));
            continue;
        };
        if (row.hipfrac.as_str(), row.reference.as_str()) != (ours, theirs) {
            wrong.push(format!(
                "{tag} {keyword} [{cell}]: listed as hipfrac {}, reference {}; now hipfrac {ours}, reference {theirs}",
                row.hipfrac, row.reference
            ));
        }
        if (&row.keyword, &row.cell) != (keyword, cell) {
            wrong.push(format!(
                "{tag}: listed as {} [{}], but the attribute is {keyword} [{cell}]",
                row.keyword, row.cell
            ));
        }
        if row.reference_in_cell != yes_no(seen.reference_in_cell) {
            wrong.push(format!(
                "{tag} {keyword} [{cell}]: reference_in_cell is {}, but the reference's {theirs} is {}in the cell",
                row.reference_in_cell,
                if seen.reference_in_cell { "" } else { "not " }
            ));
        }
        if !seen.hipfrac_in_cell {
            wrong.push(format!("{tag} {keyword} [{cell}]: hipfrac's {ours} is not in the cell"));
        }
        if row.reason.trim().is_empty() {
            wrong.push(format!("{tag} {keyword}: no reason given"));
        }
    }
    for (tag, row) in &listed {
        if !observed.contains_key(tag) {
            wrong.push(format!(
                "{tag} {} [{}]: listed (hipfrac {}, reference {}), but the two now do the same: a vanished difference",
                row.keyword, row.cell, row.hipfrac, row.reference
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} does not match what hipfrac and dicom-anonymizer 2.1.0 did ({} differences observed, {} listed):\n{}\n\
         If deid, the table (crates/dicom/src/deid/table_e1_1.tsv) or the reference changed on purpose, update the rows \
         with their reasons, and the counts here and in the README's row",
        DIFFERENCES,
        observed.len(),
        listed.len(),
        wrong.join("\n")
    );
    eprintln!(
        "dicom-anonymizer 2.1.0 (2024b rules): {same} attributes with the same fate, {} different, each listed in {DIFFERENCES}",
        observed.len()
    );

    // Nested: the reference applies the table's individual tags at the top level only, where
    // E.1.1 applies them at every level (hipfrac does, checked above). Only its walk over the
    // repeating groups (curves, overlays) and its removal of private attributes reach inside
    // sequences. Checked for every row, so each nested difference is known: wherever hipfrac
    // does not keep a nested attribute, the reference does.
    let (nested_before, nested_reference) = (carrier(&before), carrier(&reference));
    let mut touched = Vec::new();
    for rule in &Table::get().rules {
        let Some(tag) = instance(rule) else { continue };
        let walked = !matches!(rule.tag, TagPattern::Exact(_));
        // The value (items, for a sequence), not the length the writer chose.
        let value = |e: &Element| (e.vr(), e.value().clone());
        let want = if walked {
            None
        } else {
            nested_before.get(tag).map(value)
        };
        if nested_reference.get(tag).map(value) != want {
            touched.push(format!(
                "{} {}: {}",
                row_tag(rule),
                keyword(tag, rule),
                if walked { "not removed" } else { "changed" }
            ));
        }
    }
    assert!(
        touched.is_empty(),
        "the reference no longer leaves the nested copy as it was:\n{}",
        touched.join("\n")
    );

    // Pinned (README, "De-identification conformance"): a change here means the table, deid
    // or the reference changed. Find out which and why, then update these numbers and the
    // README's row together.
    assert_eq!(
        (same, observed.len()),
        (526, 92),
        "attributes with the same fate, and differences; update this pin and the README's row"
    );
}

/// Every attribute whose fate differs between hipfrac and the reference at the top level of
/// the test file, with both fates and the reason (shared test data of the workspace).
const DIFFERENCES: &str = "crates/cli/tests/data/deid-differences.csv";

/// A row of [`DIFFERENCES`].
#[derive(Debug, serde::Deserialize)]
struct Listed {
    tag: String,
    keyword: String,
    cell: String,
    hipfrac: String,
    reference: String,
    /// `yes` where the reference's fate is one the basic profile's cell allows.
    reference_in_cell: String,
    reason: String,
}

/// The rows of [`DIFFERENCES`] by tag (a tag listed twice fails).
fn listed_differences() -> BTreeMap<String, Listed> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(DIFFERENCES);
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_path(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut listed = BTreeMap::new();
    for row in reader.deserialize::<Listed>() {
        let row = row.unwrap_or_else(|e| panic!("{DIFFERENCES}: {e}"));
        let tag = row.tag.clone();
        assert!(
            listed.insert(tag.clone(), row).is_none(),
            "{DIFFERENCES}: {tag} is listed twice"
        );
    }
    listed
}

/// An attribute whose fate differs between hipfrac and the reference.
#[derive(Debug)]
struct Difference {
    keyword: String,
    cell: String,
    hipfrac: Fate,
    reference: Fate,
    hipfrac_in_cell: bool,
    reference_in_cell: bool,
}

impl Fate {
    fn name(self) -> &'static str {
        match self {
            Fate::Removed => "removed",
            Fate::Emptied => "emptied",
            Fate::Replaced => "replaced",
            Fate::Kept => "kept",
        }
    }
}

/// A row's tag as Table E.1-1 prints it: `(0010,0010)`, `(50xx,xxxx)`, `(gggg,eeee)`.
fn row_tag(rule: &Rule) -> String {
    let digits = |value: u16, mask: u16| -> String {
        (0..4)
            .rev()
            .map(|i| match (mask >> (4 * i)) & 0xF {
                0 => 'x',
                _ => char::from_digit(((value >> (4 * i)) & 0xF) as u32, 16)
                    .unwrap()
                    .to_ascii_uppercase(),
            })
            .collect()
    };
    match rule.tag {
        TagPattern::Exact(tag) => format!("({:04X},{:04X})", tag.0, tag.1),
        TagPattern::Masked { value, mask } => format!("({},{})", digits(value.0, mask.0), digits(value.1, mask.1)),
        TagPattern::Private => "(gggg,eeee)".into(),
    }
}

/// The standard dictionary's keyword of the attribute a row is tested with, else the row's name.
fn keyword(tag: Tag, rule: &Rule) -> String {
    StandardDataDictionary
        .by_tag(tag)
        .map_or_else(|| rule.name.to_string(), |e| e.alias().to_string())
}

/// A radiograph with an Acquisition Context Sequence (one coded item) of SOP class `class`.
fn with_acquisition_context(path: &Path, class: &str, modality: &str) {
    let s = |tag, vr, value: &str| Element::new(tag, vr, PrimitiveValue::from(value));
    let u = |tag, value: u16| Element::new(tag, VR::US, PrimitiveValue::from(value));
    let item = InMemDicomObject::from_element_iter([
        s(tags::VALUE_TYPE, VR::CS, "TEXT"),
        s(tags::TEXT_VALUE, VR::UT, "Patient in room 12, Dr Smith"),
    ]);
    let object = InMemDicomObject::from_element_iter([
        s(tags::SOP_CLASS_UID, VR::UI, class),
        s(tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4.5"),
        s(tags::MODALITY, VR::CS, modality),
        s(tags::PATIENT_ID, VR::LO, "PAT-1"),
        u(tags::SAMPLES_PER_PIXEL, 1),
        s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        u(tags::ROWS, 2),
        u(tags::COLUMNS, 2),
        u(tags::BITS_ALLOCATED, 8),
        u(tags::BITS_STORED, 8),
        u(tags::HIGH_BIT, 7),
        u(tags::PIXEL_REPRESENTATION, 0),
        Element::new(
            tags::ACQUISITION_CONTEXT_SEQUENCE,
            VR::SQ,
            DataSetSequence::new(vec![item], Length::UNDEFINED),
        ),
        Element::new(
            tags::PIXEL_DATA,
            VR::OB,
            PrimitiveValue::U8(vec![0, 64, 128, 255].into()),
        ),
    ]);
    object
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax("1.2.840.10008.1.2.1")
                .media_storage_sop_class_uid(class)
                .media_storage_sop_instance_uid("1.2.3.4.5"),
        )
        .unwrap()
        .write_to_file(path)
        .unwrap();
}

/// The Acquisition Context Sequence (X/Z) is type 2 in the DX IOD: a DX keeps it, empty (no
/// item, so nothing it held survives); a CR, whose IOD lacks the module, loses it.
#[test]
fn a_dx_keeps_an_empty_acquisition_context_sequence_and_a_cr_loses_it() {
    let dir = tempfile::tempdir().unwrap();
    for (class, modality, kept) in [
        ("1.2.840.10008.5.1.4.1.1.1.1", "DX", true),
        ("1.2.840.10008.5.1.4.1.1.1.1.1", "DX", true),
        ("1.2.840.10008.5.1.4.1.1.1", "CR", false),
    ] {
        let (input, output) = (dir.path().join("in.dcm"), dir.path().join("out.dcm"));
        with_acquisition_context(&input, class, modality);
        let after = run_hipfrac(&input, &output, Vec::new());
        match after.get(tags::ACQUISITION_CONTEXT_SEQUENCE).map(|e| e.value().clone()) {
            Some(Value::Sequence(s)) if kept => assert!(s.items().is_empty(), "{class}: {} items", s.items().len()),
            None if !kept => {}
            other => panic!("{class}: Acquisition Context Sequence {other:?}"),
        }
    }
}
