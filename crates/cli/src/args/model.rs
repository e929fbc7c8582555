//! Arguments of the commands that run a model.

use clap::builder::TypedValueParser;
use clap::Args;
use hipfrac_core::{DeviceSpec, Precision};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use hipfrac_core::verdict::site_name;
use hipfrac_report::summaries::parse_shard;

/// The model a command runs, where, and which body parts it accepts.
#[derive(Debug, Args, Serialize, Deserialize)]
pub struct ModelArgs {
    /// Model folder (a training run's `best/` or `last/`).
    #[arg(long)]
    pub model: PathBuf,
    /// auto, cpu, cuda or cuda:N (auto: CUDA when a GPU is usable, else the CPU).
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// Also accept radiographs whose Body Part Examined is NAME (repeat or separate with
    /// commas), for archives that name hips in their own words (e.g. HUEFTE, BECKEN). By
    /// default HIP, PELVIS, FEMUR, HIP JOINT, HIPS and BOTH HIPS are accepted; other body
    /// parts get "not assessable".
    #[arg(long = "accept-body-part", value_name = "NAME", value_delimiter = ',')]
    pub accept_body_parts: Vec<String>,
}

#[derive(Debug, Args, Serialize, Deserialize)]
pub struct PredictArgs {
    /// DICOM or PNG files, or folders (searched recursively).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Predict only shard I of N (0 ≤ I < N), for job arrays (Slurm, Kubernetes): each input
    /// belongs to one shard by a hash of its path below the input folder, so shards never
    /// overlap and an input keeps its shard when the archive grows. Each shard writes
    /// `summary.shard-I-of-N.csv`; `hipfrac merge-shards OUT` joins them into summary.csv.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<(u32, u32)>,
    /// Images per forward pass (default: 16 on a GPU, 2 on the CPU).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub batch: Option<u32>,
    /// The network's compute type: fp32, or bf16/fp16 autocast (faster on GPUs and on CPUs
    /// with bf16 units; scores move by about 0.01).
    #[arg(long, default_value = "fp32",
          value_parser = clap::builder::PossibleValuesParser::new(Precision::NAMES).map(|s| s.parse::<Precision>().expect("a listed name")))]
    pub precision: Precision,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Longer side of the overlay PNGs in pixels.
    #[arg(long, default_value_t = 1024)]
    pub overlay_size: u32,
    /// Write no overlay PNGs.
    #[arg(long)]
    pub no_overlay: bool,
    /// DICOM results beside the JSON, for DICOM inputs, each in the source's study in a new
    /// series: `sc` = a Secondary Capture of the overlay (`<name>.sc.dcm`, "AI RESULT - NOT
    /// FOR DIAGNOSIS" burned in), `gsps` = a presentation state drawing the boxes over the
    /// original (`<name>.pr.dcm`), `sr` = a Comprehensive SR of the findings (`<name>.sr.dcm`).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub dicom: Vec<DicomOutput>,
    /// Send each input's DICOM results (--dicom) to this DICOMweb server by STOW-RS: its
    /// DICOMweb root, e.g. https://pacs.example.org/dicom-web (plain http:// only to this
    /// machine). OUT/stow.csv says what was sent; an unsent result makes the exit status 1.
    #[arg(long, value_name = "URL", requires = "dicom")]
    pub stow: Option<String>,
    /// A file whose first line is `Bearer TOKEN` or `Basic USER:PASSWORD`, for --stow.
    #[arg(long, value_name = "FILE", requires = "stow")]
    pub stow_auth: Option<PathBuf>,
    /// CA certificates (PEM) that --stow's certificate must chain to (default: the system's
    /// roots).
    #[arg(long, value_name = "FILE", requires = "stow")]
    pub stow_ca: Option<PathBuf>,
    /// Use the operating points re-fitted for SITE (`hipfrac calibrate --site SITE`).
    #[arg(long, value_name = "SITE", value_parser = site_name)]
    pub site: Option<String>,
    /// Replace outputs of an earlier run.
    #[arg(long, conflicts_with = "skip_existing")]
    pub overwrite: bool,
    /// Predict only inputs without a JSON from an earlier run (summary.csv then lists the
    /// new ones); the exit status is 0 when nothing failed.
    #[arg(long)]
    pub skip_existing: bool,
}

#[derive(Debug, Args, Serialize, Deserialize)]
pub struct CalibrateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Validation manifest (CSV: image, annotation, patient, site, label).
    #[arg(long)]
    pub data: PathBuf,
    /// Target sensitivity of the "suspicious" point.
    #[arg(long, default_value_t = 0.95)]
    pub sensitivity: f64,
    /// Target specificity of the "fracture" point.
    #[arg(long, default_value_t = 0.98)]
    pub specificity: f64,
    /// Replace an existing operating_points.json (or the site's).
    #[arg(long)]
    pub overwrite: bool,
    /// Films that must be refused as not a hip (hands, knees, chests…), as manifests: a
    /// two-stage model's hip threshold is chosen between them and the validation hips
    /// (written to localiser/hip_threshold.json). Without any, the threshold only keeps
    /// --hip-assessed of the validation hips and never rises above the default 0.3.
    #[arg(long = "out-of-scope", value_name = "MANIFEST")]
    pub out_of_scope: Vec<PathBuf>,
    /// Share of the validation hip films the hip threshold must keep assessable.
    #[arg(long, default_value_t = 0.95)]
    pub hip_assessed: f64,
    /// Re-fit the model's operating points for a new site from a small labelled sample of
    /// it (--data; say 50 radiographs) and write them as operating_points.SITE.json; prints
    /// what changed. Classes the sample holds fewer than 5 positive or negative images of keep
    /// their thresholds. `predict --site SITE` and `evaluate --site SITE` use them.
    #[arg(long, value_name = "SITE", value_parser = site_name)]
    pub site: Option<String>,
}

#[derive(Debug, Args, Serialize, Deserialize)]
pub struct EvaluateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A manifest to evaluate, as PATH or NAME=PATH; repeat for several (e.g. `--data
    /// internal=splits/test.csv --data external=ext.csv`).
    #[arg(long, required = true)]
    pub data: Vec<String>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an earlier report.
    #[arg(long)]
    pub overwrite: bool,
    /// Use the operating points re-fitted for SITE (`hipfrac calibrate --site SITE`).
    #[arg(long, value_name = "SITE", value_parser = site_name)]
    pub site: Option<String>,
}

#[derive(Debug, Args, Serialize, Deserialize)]
pub struct DemoArgs {
    /// Output folder (must not exist).
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
    /// The paper's configuration (DAMO-YOLO-T, 1024 px, batch 64, 430 epochs, 4,000 internal
    /// images, single stage): for a GPU.
    #[arg(long)]
    pub full: bool,
    /// Override the number of training epochs.
    #[arg(long)]
    pub epochs: Option<i64>,
    /// Override the number of internal images (split by patient, see --ratios).
    #[arg(long)]
    pub internal_images: Option<usize>,
    /// Train, validation and test shares of the internal patients (the paper's 80/10/10 by
    /// default; each must be above 0). A larger test share narrows the test's intervals.
    #[arg(long, default_value = "0.8,0.1,0.1", value_parser = hipfrac_data::split::parse_demo_ratios)]
    pub ratios: hipfrac_data::split::Ratios,
    /// Override the number of external-site images.
    #[arg(long)]
    pub external_images: Option<usize>,
    /// Seed of the simulation, split and training.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Probability of a random re-acquisition of each training image (the training config's
    /// `acquisition`; 0, the default, trains as the paper does).
    #[arg(long, default_value_t = 0.0)]
    pub acquisition: f64,
    /// auto, cpu, cuda or cuda:N (default: the CPU; with --full, CUDA when usable).
    #[arg(long)]
    pub device: Option<DeviceSpec>,
    /// hipfrac's two-stage detector (the default, except with --full): a hip localiser on the
    /// whole radiograph (the phantom's `hip` boxes), then the fracture detector on a crop
    /// around each hip (run-hips/ and run/, with run/best/localiser).
    #[arg(long, conflicts_with = "single_stage")]
    pub two_stage: bool,
    /// The paper's single-stage detector on the whole radiograph (the default with --full).
    #[arg(long)]
    pub single_stage: bool,
    /// Longer side of the simulated radiographs in pixels (default: the network's input size;
    /// twice that for the two-stage detector, whose crops read the hips at a higher resolution
    /// than the whole film). Compare the two configurations at the same value.
    #[arg(long, value_parser = clap::value_parser!(u32).range(64..=4096))]
    pub phantom_px: Option<u32>,
    /// The phantom's simulator: v1 (the default) or v2 (3D anatomy, X-ray physics; slower,
    /// see docs/phantom.md).
    #[arg(long, value_enum, default_value_t = hipfrac_files::phantom::Generator::V1)]
    pub generator: hipfrac_files::phantom::Generator,
    /// The real films the two-stage localiser learns beside the phantom (hip boxes on real AP
    /// films, and out-of-scope films it must refuse): a folder with `hips.csv` and
    /// `out-of-scope.csv` manifests. Default: the project's `data/real/fracatlas` (FracAtlas,
    /// CC BY 4.0), looked for in the current folder and beside the executable's checkout.
    #[arg(long, value_name = "DIR", conflicts_with = "phantom_only")]
    pub real: Option<PathBuf>,
    /// Train on the phantom alone (no real films), as hipfrac did before it had real hip
    /// boxes; `bench/real.sh` measures what the real films add.
    #[arg(long)]
    pub phantom_only: bool,
}

impl DemoArgs {
    /// Whether the demo trains the two-stage detector: the CPU demo's default, or asked for
    /// with `--two-stage`; `--single-stage` and `--full` (the paper's configuration) train the
    /// paper's single stage.
    pub fn trains_two_stage(&self) -> bool {
        self.two_stage || !(self.full || self.single_stage)
    }
}

#[derive(Debug, Args, Serialize, Deserialize)]
pub struct TrainArgs {
    /// Training config (TOML); relative paths in it are relative to the file. Keys:
    /// train, val, out, image_size, batch_size, epochs, warmup_epochs, base_lr_per_image,
    /// min_lr_ratio, momentum, nesterov, weight_decay, ema_decay, no_aug_epochs, mosaic, mixup,
    /// flip, intensity_jitter, scale_jitter, translate, equalize, val_interval, seed,
    /// [model] preset/in_channels. Each has a range, checked before any work (README).
    #[arg(long, required_unless_present = "init_config")]
    pub config: Option<PathBuf>,
    /// Write the paper's configuration, every key commented with its range, to FILE and stop.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["config", "resume"])]
    pub init_config: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N (auto: CUDA when a GPU is usable, else the CPU).
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// Continue the run in the config's out folder.
    #[arg(long)]
    pub resume: bool,
}

/// DICOM objects `predict` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum DicomOutput {
    /// Secondary Capture of the overlay.
    Sc,
    /// Grayscale Softcopy Presentation State: the boxes and verdict over the original.
    Gsps,
    /// Comprehensive SR: the verdict and each box as coded findings with image references.
    Sr,
}

impl DicomOutput {
    pub fn kind(self) -> hipfrac_report::dicom_outputs::DicomKind {
        use hipfrac_report::dicom_outputs::DicomKind;
        match self {
            DicomOutput::Sc => DicomKind::Sc,
            DicomOutput::Gsps => DicomKind::Gsps,
            DicomOutput::Sr => DicomKind::Sr,
        }
    }
}
