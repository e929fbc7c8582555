//! Arguments of the commands that handle files and datasets.

use clap::{Args, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Args, Serialize, Deserialize)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PhantomArgs {
    #[command(subcommand)]
    pub command: Option<PhantomCommand>,
    /// Number of images.
    #[arg(long)]
    pub count: Option<usize>,
    /// Acquisition site: a built-in name (site-a, site-b internal; site-c external) or a
    /// site profile .toml file.
    #[arg(long, default_value = "site-a")]
    pub site: String,
    /// Random seed: the same seed writes byte-identical files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Longer image side in pixels.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Output folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Class mix, e.g. `DF=1410,VF=720,SF=1044,UF=984,none=335` (the paper's, the default).
    #[arg(long)]
    pub mix: Option<String>,
    /// Replace an earlier run in the same folder.
    #[arg(long, conflicts_with = "skip_existing")]
    pub overwrite: bool,
    /// Leave an earlier run of the same size in --out alone (exit 0); one of another size is
    /// an error.
    #[arg(long)]
    pub skip_existing: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
}

#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum PhantomCommand {
    /// Draw a contact sheet (thumbnails with boxes and labels) of a phantom folder.
    Sheet(SheetArgs),
    /// List the built-in site profiles.
    Sites,
}

#[derive(Debug, Args, Serialize, Deserialize)]
pub struct SheetArgs {
    /// A folder written by `hipfrac phantom` (or any dataset with manifest.csv).
    pub dir: PathBuf,
    /// The PNG to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of thumbnails (spread over the classes).
    #[arg(long, default_value_t = 20)]
    pub count: usize,
    /// Thumbnails per row.
    #[arg(long, default_value_t = 5)]
    pub columns: usize,
    /// Thumbnail size in pixels.
    #[arg(long, default_value_t = 256)]
    pub tile: usize,
    /// A real radiograph (DICOM or PNG) to show first, for comparison.
    #[arg(long)]
    pub compare: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum Bits {
    #[value(name = "8")]
    Eight,
    #[value(name = "16")]
    Sixteen,
}

#[derive(Debug, Args, Serialize, Deserialize)]
pub struct ConvertArgs {
    /// DICOM files or folders (searched recursively).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output folder (created if needed). Folder inputs keep their sub-folder layout.
    #[arg(long)]
    pub out: PathBuf,
    /// PNG bit depth: 8 (displayed grey) or 16 (modality values).
    #[arg(long, value_enum, default_value = "8")]
    pub bits: Bits,
    /// VOI for 8-bit output: `file` (the file's first window, else its VOI LUT, else auto),
    /// `file:N` (window N), `lut:N` (VOI LUT N), `auto` (0.5–99.5th percentile), or `C,W`
    /// (centre,width in modality units, e.g. `511,1024`).
    #[arg(long, default_value = "file", allow_hyphen_values = true)]
    pub window: String,
    /// Do not write the JSON sidecar.
    #[arg(long)]
    pub no_sidecar: bool,
    /// Replace outputs that already exist (by default they are left alone and reported).
    #[arg(long, conflicts_with = "skip_existing")]
    pub overwrite: bool,
    /// Leave inputs whose outputs already exist alone and count them as done (to top up an
    /// archive conversion); the exit status is 0 when nothing failed.
    #[arg(long)]
    pub skip_existing: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
}

#[derive(Debug, Args, Serialize, Deserialize)]
pub struct DeidArgs {
    /// DICOM files or folders (searched recursively).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output folder; files keep their relative layout and name.
    #[arg(long)]
    pub out: PathBuf,
    /// Secret key file for pseudonyms and UIDs. Created (random, 256 bits, mode 0600) when it
    /// does not exist; never overwritten. Keep it secret and keep it: the same key gives the
    /// same pseudonyms next time.
    #[arg(long)]
    pub key: PathBuf,
    /// Keep patient sex, age, size and weight (PS3.15 Retain Patient Characteristics Option;
    /// the same as `--retain patient-characteristics`).
    #[arg(long)]
    pub keep_patient_characteristics: bool,
    /// A PS3.15 option that keeps attributes the basic profile removes, following its K cells
    /// in Table E.1-1 (repeatable). Its C (clean) cells keep the basic action.
    #[arg(long, value_enum)]
    pub retain: Vec<Retain>,
    /// Write what was done to each attribute of each file (CSV: file, attribute, tag, name,
    /// action, rule; no values) to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The linking table: original Patient ID → pseudonym (and date shift), CSV, readable by
    /// its owner only; rows of earlier runs are kept. It identifies patients: keep it apart
    /// from the de-identified output (it may not lie inside --out).
    #[arg(long)]
    pub link: Option<PathBuf>,
    /// Replace outputs that already exist.
    #[arg(long)]
    pub overwrite: bool,
}

impl Retain {
    /// The profile option it names.
    pub fn option(self) -> hipfrac_dicom::deid::ProfileOption {
        use hipfrac_dicom::deid::ProfileOption;
        match self {
            Retain::Uids => ProfileOption::RetainUids,
            Retain::DeviceIdentity => ProfileOption::RetainDeviceIdentity,
            Retain::InstitutionIdentity => ProfileOption::RetainInstitutionIdentity,
            Retain::PatientCharacteristics => ProfileOption::RetainPatientCharacteristics,
            Retain::FullDates => ProfileOption::RetainLongFullDates,
            Retain::ModifiedDates => ProfileOption::RetainLongModifiedDates,
        }
    }
}

impl Format {
    /// The format it names.
    pub fn format(self) -> hipfrac_files::labels::Format {
        match self {
            Format::Voc => hipfrac_files::labels::Format::Voc,
            Format::Yolo => hipfrac_files::labels::Format::Yolo,
            Format::Coco => hipfrac_files::labels::Format::Coco,
        }
    }
}

/// The PS3.15 options `deid` implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum Retain {
    /// Retain UIDs Option.
    Uids,
    /// Retain Device Identity Option.
    DeviceIdentity,
    /// Retain Institution Identity Option.
    InstitutionIdentity,
    /// Retain Patient Characteristics Option.
    PatientCharacteristics,
    /// Retain Longitudinal Temporal Information with Full Dates Option.
    FullDates,
    /// Retain Longitudinal Temporal Information with Modified Dates Option: each patient's
    /// dates move by the same whole number of days (from the key), so intervals are kept.
    ModifiedDates,
}

#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum DatasetCommand {
    /// Check a dataset folder: every VOC XML against its image (missing images, extra
    /// images, boxes outside or degenerate, size mismatch, unknown labels, duplicate images),
    /// then print counts per class and per patient like the paper's Table I. Exit 1 on errors.
    Check(CheckArgs),
    /// Split a dataset into train/validation/test by patient (no patient in two splits),
    /// stratified by class, and write CSV manifests.
    Split(SplitArgs),
    /// Cross-validation folds of one or more manifests, by patient (a patient's images in
    /// one fold, across all the manifests) and stratified by label: for each fold i and each
    /// input NAME.csv, writes OUT/fold-i/NAME.test.csv (that fold) and NAME.train.csv (the
    /// others), paths relative to OUT/fold-i.
    Folds(FoldsArgs),
    /// Join manifests into one (paths rewritten relative to the new manifest's folder), e.g.
    /// phantom radiographs and real films for one training run. An image listed twice is an
    /// error.
    Merge(MergeArgs),
}

#[derive(Debug, Args, Serialize, Deserialize)]
pub struct FoldsArgs {
    /// Manifests (CSV: image, annotation, patient, site, label).
    #[arg(required = true)]
    pub manifests: Vec<PathBuf>,
    /// Number of folds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(2..=100))]
    pub k: u32,
    /// Random seed; the same seed and manifests give the same folds.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the manifests of an earlier run.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Args, Serialize, Deserialize)]
pub struct MergeArgs {
    /// Manifests to join, in order.
    #[arg(required = true)]
    pub manifests: Vec<PathBuf>,
    /// The joined manifest.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing manifest.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Args, Serialize, Deserialize)]
pub struct CheckArgs {
    /// Dataset folder: images (PNG or DICOM) with LabelImg VOC XML beside them (same stem).
    pub dir: PathBuf,
    /// Label map file (`name = CODE` per line) for other label names.
    #[arg(long)]
    pub label_map: Option<PathBuf>,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args, Serialize, Deserialize)]
pub struct SplitArgs {
    /// Dataset folder (as for `dataset check`).
    pub dir: PathBuf,
    /// Train, validation and test fractions.
    #[arg(long, default_value = "0.8,0.1,0.1")]
    pub ratios: String,
    /// Random seed; the same seed and data give the same split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Hold out every image of this site (Institution Name, or the manifest's site column)
    /// as the external test set.
    #[arg(long)]
    pub external_site: Option<String>,
    /// Where to write the manifests (default: DIR/splits).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Label map file (`name = CODE` per line).
    #[arg(long)]
    pub label_map: Option<PathBuf>,
    /// Replace manifests of an earlier split.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum Format {
    Voc,
    Yolo,
    Coco,
}

#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum LabelsCommand {
    /// Convert annotations: VOC folder ⇄ COCO json ⇄ YOLO folder.
    ///
    /// YOLO has no image sizes, so reading YOLO needs the images (`--images`).
    Convert(LabelsConvertArgs),
    /// List the labels (the five of the paper and a fracture of unknown type) with their
    /// accepted names.
    List,
}

#[derive(Debug, Args, Serialize, Deserialize)]
pub struct LabelsConvertArgs {
    /// Input format.
    #[arg(long)]
    pub from: Format,
    /// Input: a folder (VOC, YOLO) or a .json file (COCO).
    pub input: PathBuf,
    /// Output format.
    #[arg(long)]
    pub to: Format,
    /// Output: a folder (VOC, YOLO) or a .json file (COCO).
    pub output: PathBuf,
    /// Folder of the images (needed to read YOLO: image sizes).
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Label map file (`name = CODE` per line).
    #[arg(long)]
    pub label_map: Option<PathBuf>,
}
