//! Writing a phantom dataset: per image a DICOM file, an 8-bit PNG and its LabelImg VOC XML,
//! plus `manifest.csv` (class, patient, site, severity and the simulation parameters).
//!
//! Layout of `--out DIR`:
//! ```text
//! DIR/manifest.csv          image,annotation,patient,site,label,... (paths relative to DIR)
//! DIR/images/NAME.png       8-bit, the DICOM's own window (as `hipfrac convert` writes it)
//! DIR/images/NAME.xml       LabelImg Pascal VOC
//! DIR/dicom/NAME.dcm        CR image, native explicit VR little endian
//! ```

use crate::acquisition::SiteProfile;
use crate::{plan, simulate, CasePlan, ClassMix, Simulated, SIMULATED};
use hipfrac_core::Label;
use hipfrac_data::{voc, Annotation, Object};
use hipfrac_dicom::display::{render_8bit, VoiChoice};
use hipfrac_dicom::png_io::{write_png_with_comment, GreyPixels};
use hipfrac_dicom::write::{write_cr, DicomAttributes};
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One manifest row: the dataset columns first, then the simulation's parameters.
#[derive(Debug, Clone, Serialize)]
pub struct PhantomRow {
    pub image: String,
    pub annotation: String,
    pub patient: String,
    pub site: String,
    pub label: Label,
    pub dicom: String,
    pub severity: f64,
    pub side: &'static str,
    pub box_count: usize,
    pub osteoporosis: f64,
    pub neck_shaft_angle: f64,
    pub anteversion: f64,
    pub leg_rotation: f64,
    pub rotation_deg: f64,
    pub translation_mm: f64,
    pub neck_position: f64,
    pub reverse_obliquity: bool,
    pub lesser_trochanter_mm: f64,
    pub contralateral_implant: bool,
    pub gas_pockets: u32,
    pub simulated: &'static str,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub count: usize,
    pub site: SiteProfile,
    pub seed: u64,
    pub size: usize,
    pub out: PathBuf,
    pub mix: ClassMix,
    pub overwrite: bool,
}

/// Errors of a run, each naming the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The output folder holds an earlier run.
    #[error("{}: exists; pass --overwrite to replace an earlier phantom run", .0.display())]
    Exists(PathBuf),
    /// A DICOM or PNG file cannot be written.
    #[error(transparent)]
    Dicom(#[from] hipfrac_dicom::Error),
    /// An annotation cannot be written.
    #[error(transparent)]
    Data(#[from] hipfrac_data::Error),
    /// The simulated image cannot be rendered to 8 bits (for the PNG `path`).
    #[error("{}: cannot render the image to 8 bits", path.display())]
    Render {
        /// The PNG.
        path: PathBuf,
        /// Why.
        #[source]
        source: hipfrac_dicom::display::VoiError,
    },
    /// The manifest cannot be written.
    #[error("{}", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What the CSV library said.
        #[source]
        source: csv::Error,
    },
}

fn attributes(case: &CasePlan, site: &SiteProfile) -> DicomAttributes {
    // Dates are derived from the case so that the same seed writes the same bytes.
    let day = (case.image_seed % 28) + 1;
    let month = (case.image_seed / 28 % 12) + 1;
    DicomAttributes {
        patient_name: format!("PHANTOM^{}", case.patient_id),
        patient_sex: if case.image_seed % 5 < 3 {
            "F".into()
        } else {
            "M".into()
        },
        patient_age: format!("{:03}Y", 65 + case.image_seed % 30),
        study_date: format!("2024{month:02}{day:02}"),
        study_time: "120000".into(),
        accession_number: format!("PH{:08}", case.index),
        study_description: "HIP AP (PHANTOM)".into(),
        series_description: format!("{} {}", site.name, site.model),
        manufacturer: site.manufacturer.clone(),
        model: site.model.clone(),
        kvp: Some(site.kvp),
        view_position: "AP".into(),
        image_comments: SIMULATED.into(),
    }
}

/// Writes one simulated case; returns its manifest row.
pub fn write_case(
    out: &Path,
    case: &CasePlan,
    site: &SiteProfile,
    simulated: &Simulated,
) -> Result<PhantomRow, OutputError> {
    let image = &simulated.radiograph;
    let png = out.join("images").join(format!("{}.png", case.name));
    let xml = out.join("images").join(format!("{}.xml", case.name));
    let dicom = out.join("dicom").join(format!("{}.dcm", case.name));
    write_cr(&dicom, image, &attributes(case, site))?;
    let (grey, _) = render_8bit(image, &VoiChoice::File).map_err(|source| OutputError::Render {
        path: png.clone(),
        source,
    })?;
    write_png_with_comment(
        &png,
        image.width(),
        image.height(),
        GreyPixels::Eight(&grey),
        Some(SIMULATED),
    )?;
    let objects = simulated
        .boxes
        .iter()
        .map(|(class, bbox)| Object {
            label: Label::Fracture(*class),
            bbox: *bbox,
            truncated: bbox.x_min <= 0.0
                || bbox.y_min <= 0.0
                || bbox.x_max >= image.width() as f32
                || bbox.y_max >= image.height() as f32,
            difficult: false,
        })
        .collect();
    let annotation = Annotation {
        filename: format!("{}.png", case.name),
        width: image.width(),
        height: image.height(),
        depth: 1,
        objects,
        hips: simulated.hips.clone(),
    };
    let mut voc_file = voc::VocFile::new(annotation, "images");
    voc_file.database = format!("hipfrac phantom {}", site.name);
    voc::write(&xml, &voc_file)?;
    let p = &case.params;
    let f = &simulated.fracture;
    Ok(PhantomRow {
        image: format!("images/{}.png", case.name),
        annotation: format!("images/{}.xml", case.name),
        patient: case.patient_id.clone(),
        site: site.name.clone(),
        label: case.label,
        dicom: format!("dicom/{}.dcm", case.name),
        severity: round3(if case.label == Label::NoFracture {
            0.0
        } else {
            case.severity
        }),
        side: if p.right_side { "R" } else { "L" },
        box_count: simulated.boxes.len(),
        osteoporosis: round3(p.osteoporosis),
        neck_shaft_angle: round3(p.neck_shaft_angle),
        anteversion: round3(p.anteversion),
        leg_rotation: round3(p.leg_rotation),
        rotation_deg: round3(f.rotation_deg),
        translation_mm: round3(f.translation_mm),
        neck_position: round3(f.neck_position),
        reverse_obliquity: f.reverse_obliquity,
        lesser_trochanter_mm: round3(f.lesser_trochanter_mm),
        contralateral_implant: p.contralateral_implant,
        gas_pockets: p.gas_pockets,
        simulated: "yes",
    })
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Generates a dataset; `progress` is called once per finished image.
pub fn generate(options: &GenerateOptions, progress: impl Fn() + Sync) -> Result<Vec<PhantomRow>, OutputError> {
    let manifest = options.out.join("manifest.csv");
    if manifest.exists() && !options.overwrite {
        return Err(OutputError::Exists(manifest));
    }
    let cases = plan(options.count, &options.site, options.seed, &options.mix);
    let rows: Vec<PhantomRow> = cases
        .par_iter()
        .map(|case| {
            let simulated = simulate(case, &options.site, options.size);
            let row = write_case(&options.out, case, &options.site, &simulated);
            progress();
            row
        })
        .collect::<Result<_, _>>()?;
    write_manifest(&manifest, &rows)?;
    Ok(rows)
}

/// Writes `manifest.csv` (CSV-injection safe) atomically.
pub(crate) fn write_manifest(manifest: &Path, rows: &[PhantomRow]) -> Result<(), OutputError> {
    let manifest_error = |source| OutputError::Manifest {
        path: manifest.to_path_buf(),
        source,
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row).map_err(manifest_error)?;
    }
    let bytes = writer.into_inner().map_err(|e| manifest_error(e.into_error().into()))?;
    hipfrac_dicom::atomic::write_atomic(manifest, &hipfrac_core::csv_safe::neutralise(&bytes))?;
    Ok(())
}
