//! `hipfrac dataset check`: a dataset folder checked file by file and counted.
//!
//! Layout: images (PNG or DICOM) anywhere under the folder, each with a LabelImg VOC XML
//! beside it (LabelImg's default); an image without XML in a folder that holds XMLs is
//! reported as extra, folders without any XML (a DICOM archive beside the labels) are not
//! labelled folders; an optional `manifest.csv` (see [`crate::manifest`]) gives
//! patients and sites. Otherwise the patient comes from the DICOM header or the
//! `hipfrac convert` sidecar of a PNG, and the site from Institution Name.

use crate::manifest::{relative_path, ManifestRow};
use crate::{image_info, is_image_file, voc, LabelMap, Object};
use hipfrac_core::{error_chain, BBox, Label};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// One problem, tied to a file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// One checked image.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Record {
    /// Image path.
    pub image: PathBuf,
    /// Its annotation.
    pub annotation: Option<PathBuf>,
    /// Patient (or `unknown:<image>` when no source names one).
    pub patient: String,
    /// Site (or `unknown`).
    pub site: String,
    /// Image-level label.
    pub label: Label,
    /// Its boxes.
    pub objects: Vec<Object>,
}

/// The outcome of a check.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CheckReport {
    /// The folder checked.
    pub dir: PathBuf,
    /// Images that passed.
    pub records: Vec<Record>,
    /// Faults that make the dataset unusable until fixed.
    pub errors: Vec<Finding>,
    /// Things to look at.
    pub warnings: Vec<Finding>,
}

impl CheckReport {
    /// The records as manifest rows, paths relative to `manifest_dir`.
    pub fn manifest_rows(&self, manifest_dir: &Path) -> Vec<ManifestRow> {
        self.records
            .iter()
            .map(|r| ManifestRow {
                image: relative_path(&r.image, manifest_dir),
                annotation: r
                    .annotation
                    .as_ref()
                    .map(|a| relative_path(a, manifest_dir))
                    .unwrap_or_default(),
                patient: r.patient.clone(),
                site: r.site.clone(),
                label: r.label,
            })
            .collect()
    }

    /// Counts laid out like the paper's Table I: one column per site, then the total.
    pub fn table<'a>(&'a self) -> String {
        let mut sites: Vec<&str> = self.records.iter().map(|r| r.site.as_str()).collect();
        sites.sort();
        sites.dedup();
        let mut columns: Vec<Option<&str>> = sites.iter().map(|s| Some(*s)).collect();
        if sites.len() != 1 {
            columns.push(None);
        }
        fn in_site<'a>(records: &'a [Record], site: Option<&'a str>) -> impl Iterator<Item = &'a Record> + 'a {
            records.iter().filter(move |r| site.is_none_or(|s| r.site == s))
        }
        let records = |site: Option<&'a str>| in_site(&self.records, site);
        let patients = |site: Option<&'a str>| {
            let mut p: Vec<&str> = records(site).map(|r| r.patient.as_str()).collect();
            p.sort();
            p.dedup();
            p.len()
        };
        let header: Vec<String> = columns.iter().map(|c| c.unwrap_or("total").to_string()).collect();
        let width = header.iter().map(String::len).max().unwrap_or(5).max(7);
        let mut out = String::new();
        let row = |out: &mut String, name: &str, values: Vec<usize>| {
            out.push_str(&format!("{name:<46}"));
            for v in values {
                out.push_str(&format!(" {v:>width$}"));
            }
            out.push('\n');
        };
        out.push_str(&format!("{:<46}", "Characteristic"));
        for h in &header {
            out.push_str(&format!(" {h:>width$}"));
        }
        out.push('\n');
        row(&mut out, "Patients, n", columns.iter().map(|c| patients(*c)).collect());
        row(
            &mut out,
            "Images, n",
            columns.iter().map(|c| records(*c).count()).collect(),
        );
        out.push_str("Fracture type, images\n");
        // The paper's Table I order.
        use hipfrac_core::FractureClass::*;
        for label in [
            Label::Fracture(ValgusImpactedNeck),
            Label::Fracture(DisplacedNeck),
            Label::Fracture(StableIntertrochanteric),
            Label::Fracture(UnstableIntertrochanteric),
            Label::NoFracture,
            Label::UntypedFracture,
        ] {
            let count = |c: &_| records(*c).filter(|r| r.label == label).count();
            // Most datasets give every type; the row is there only when one does not.
            if label == Label::UntypedFracture && columns.iter().all(|c| count(c) == 0) {
                continue;
            }
            let name = format!("  {} ({})", label.full_name(), label.code());
            row(
                &mut out,
                &name,
                columns
                    .iter()
                    .map(|c| records(*c).filter(|r| r.label == label).count())
                    .collect(),
            );
        }
        row(
            &mut out,
            "Boxes, n",
            columns
                .iter()
                .map(|c| records(*c).map(|r| r.objects.len()).sum())
                .collect(),
        );
        let mut per_patient: HashMap<&str, usize> = HashMap::new();
        for r in &self.records {
            *per_patient.entry(&r.patient).or_default() += 1;
        }
        if !per_patient.is_empty() {
            let max = per_patient.values().max().copied().unwrap_or(0);
            let mean = self.records.len() as f64 / per_patient.len() as f64;
            out.push_str(&format!("Images per patient: mean {mean:.2}, max {max}\n"));
        }
        out
    }
}

fn sha256_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hasher.finalize().into())
}

struct Checked {
    record: Option<Record>,
    errors: Vec<Finding>,
    warnings: Vec<Finding>,
}

fn check_annotation(xml: &Path, labels: &LabelMap, manifest: &HashMap<PathBuf, ManifestRow>, root: &Path) -> Checked {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let fail = |errors: Vec<Finding>, warnings| Checked {
        record: None,
        errors,
        warnings,
    };
    let voc = match voc::read(xml, labels) {
        Ok(v) => v,
        Err(e) => {
            return fail(
                vec![Finding {
                    path: xml.to_path_buf(),
                    message: strip_path(&error_chain(&e), xml),
                }],
                warnings,
            )
        }
    };
    let a = &voc.annotation;
    let folder = xml.parent().unwrap_or(Path::new("."));
    let image = folder.join(&a.filename);
    if !image.is_file() {
        return fail(
            vec![Finding {
                path: xml.to_path_buf(),
                message: format!("missing image: {} does not exist", a.filename),
            }],
            warnings,
        );
    }
    let info = match image_info(&image).and_then(|info| crate::images::check_complete(&image).map(|_| info)) {
        Ok(info) => info,
        Err(e) => {
            return fail(
                vec![Finding {
                    path: image.clone(),
                    message: strip_path(&error_chain(&e), &image),
                }],
                warnings,
            )
        }
    };
    if (info.width, info.height) != (a.width, a.height) {
        errors.push(Finding {
            path: xml.to_path_buf(),
            message: format!(
                "size {}×{} in the XML differs from the image's {}×{}",
                a.width, a.height, info.width, info.height
            ),
        });
    }
    let mut classes: Vec<Label> = Vec::new();
    for (index, object) in a.objects.iter().enumerate() {
        let b: &BBox = &object.bbox;
        let (x0, y0, x1, y1) = b.to_voc();
        if b.is_degenerate() {
            errors.push(Finding {
                path: xml.to_path_buf(),
                message: format!(
                    "object {} ({}) has an empty box: xmin {x0} ymin {y0} xmax {x1} ymax {y1}",
                    index + 1,
                    object.label
                ),
            });
        } else if !b.is_inside(info.width, info.height) {
            errors.push(Finding {
                path: xml.to_path_buf(),
                message: format!(
                    "object {} ({}) box xmin {x0} ymin {y0} xmax {x1} ymax {y1} lies outside the {}×{} image",
                    index + 1,
                    object.label,
                    info.width,
                    info.height
                ),
            });
        }
        if !classes.contains(&object.label) {
            classes.push(object.label);
        }
    }
    if classes.contains(&Label::NoFracture) {
        errors.push(Finding {
            path: xml.to_path_buf(),
            message: "a box labelled \"no visible fracture\": an image without a fracture has no boxes".into(),
        });
    } else if classes.len() > 1 {
        warnings.push(Finding {
            path: xml.to_path_buf(),
            message: format!(
                "boxes of several types ({}); the image counts as {}",
                classes.iter().map(|l| l.code()).collect::<Vec<_>>().join(", "),
                a.image_label()
            ),
        });
    }
    let relative = image.strip_prefix(root).unwrap_or(&image).to_path_buf();
    let listed = manifest.get(&relative);
    if let Some(row) = listed {
        if row.label != a.image_label() {
            errors.push(Finding {
                path: xml.to_path_buf(),
                message: format!("manifest says {} but the boxes say {}", row.label, a.image_label()),
            });
        }
    }
    let patient = listed
        .map(|r| r.patient.clone())
        .or(info.patient_id.clone())
        .unwrap_or_else(|| format!("unknown:{}", relative.display()));
    let site = listed
        .map(|r| r.site.clone())
        .filter(|s| !s.is_empty())
        .or(info.institution.clone())
        .unwrap_or_else(|| "unknown".into());
    let record = errors.is_empty().then(|| Record {
        image,
        annotation: Some(xml.to_path_buf()),
        patient,
        site,
        label: a.image_label(),
        objects: a.objects.clone(),
    });
    Checked {
        record,
        errors,
        warnings,
    }
}

/// Error texts of lower layers start with the path; the finding carries it already.
fn strip_path(message: &str, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_string()
}

/// Checks a dataset folder. Only an unreadable folder is an `Err`; every fault of the
/// dataset itself is a finding.
pub fn check_dataset(dir: &Path, labels: &LabelMap) -> crate::Result<CheckReport> {
    let mut xmls = Vec::new();
    let mut images = Vec::new();
    let mut irregular = Vec::new();
    let walker = walkdir::WalkDir::new(dir).into_iter().filter_entry(|e| {
        // Hidden folders and the split manifests' folder hold no dataset images.
        e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.')
    });
    for entry in walker {
        let entry = entry.map_err(|source| crate::Error::Walk {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path().to_path_buf();
        if !entry.file_type().is_file() {
            // A link or FIFO named like an annotation is refused, not silently skipped.
            if !entry.file_type().is_dir() && path.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml")) {
                irregular.push(path);
            }
            continue;
        }
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml")) {
            xmls.push(path);
        } else if is_image_file(&path) {
            images.push(path);
        }
    }
    xmls.sort();
    images.sort();

    let manifest_path = dir.join("manifest.csv");
    let mut report = CheckReport {
        dir: dir.to_path_buf(),
        ..Default::default()
    };
    for path in irregular {
        report.errors.push(Finding {
            path,
            message: "not a regular file (a link, FIFO or device): annotations must be plain files".into(),
        });
    }
    if xmls.is_empty() {
        report.errors.push(Finding {
            path: dir.to_path_buf(),
            message: format!(
                "no VOC XML annotation in the folder: nothing is labelled ({} image(s) found)",
                images.len()
            ),
        });
    }
    let mut manifest: HashMap<PathBuf, ManifestRow> = HashMap::new();
    if manifest_path.is_file() {
        match crate::manifest::read(&manifest_path) {
            Ok(rows) => {
                for row in rows {
                    manifest.insert(PathBuf::from(&row.image), row);
                }
            }
            Err(e) => report.errors.push(Finding {
                path: manifest_path.clone(),
                message: strip_path(&error_chain(&e), &manifest_path),
            }),
        }
    }

    let checked: Vec<Checked> = xmls
        .par_iter()
        .map(|xml| check_annotation(xml, labels, &manifest, dir))
        .collect();
    let mut annotated: HashMap<PathBuf, PathBuf> = HashMap::new();
    for c in checked {
        report.errors.extend(c.errors);
        report.warnings.extend(c.warnings);
        if let Some(record) = c.record {
            let xml = record.annotation.clone().expect("records from XML carry their XML");
            if let Some(other) = annotated.insert(record.image.clone(), xml.clone()) {
                report.errors.push(Finding {
                    path: xml,
                    message: format!("{} is also annotated by {}", record.image.display(), other.display()),
                });
                continue;
            }
            report.records.push(record);
        }
    }
    // An image whose XML failed to parse is still "claimed" by an XML of the same stem
    // beside it, so it is not also reported as extra.
    let xml_stems: std::collections::HashSet<PathBuf> = xmls.iter().map(|x| x.with_extension("")).collect();
    // Only folders that hold annotations are labelled folders: a DICOM archive beside them
    // (e.g. the phantom's dicom/ folder) is not "extra".
    let labelled_folders: std::collections::HashSet<&Path> = xmls.iter().filter_map(|x| x.parent()).collect();
    for image in &images {
        let in_labelled_folder = image.parent().is_some_and(|f| labelled_folders.contains(f));
        if in_labelled_folder && !annotated.contains_key(image) && !xml_stems.contains(&image.with_extension("")) {
            report.warnings.push(Finding {
                path: image.clone(),
                message: "extra image: no VOC XML names it (not counted)".into(),
            });
        }
    }

    let hashes: Vec<(PathBuf, std::io::Result<[u8; 32]>)> = images
        .par_iter()
        .map(|image| (image.clone(), sha256_file(image)))
        .collect();
    let mut by_hash: BTreeMap<[u8; 32], Vec<PathBuf>> = BTreeMap::new();
    for (path, hash) in hashes {
        match hash {
            Ok(h) => by_hash.entry(h).or_default().push(path),
            Err(e) => report.errors.push(Finding {
                path,
                message: e.to_string(),
            }),
        }
    }
    for group in by_hash.values().filter(|g| g.len() > 1) {
        report.errors.push(Finding {
            path: group[0].clone(),
            message: format!(
                "duplicate image: identical content in {}",
                group[1..]
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let unknown = report
        .records
        .iter()
        .filter(|r| r.patient.starts_with("unknown:"))
        .count();
    if unknown > 0 {
        report.warnings.push(Finding {
            path: dir.to_path_buf(),
            message: format!(
                "{unknown} image(s) name no patient (no manifest.csv row, DICOM Patient ID or sidecar); each counts as its own patient"
            ),
        });
    }
    report.records.sort_by(|a, b| a.image.cmp(&b.image));
    report.errors.sort_by(|a, b| a.path.cmp(&b.path));
    report.warnings.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(report)
}
