//! The command line. Doc comments here are the `--help` text.

use clap::{Args, Parser, Subcommand, ValueEnum};
use hipfrac_core::DeviceSpec;
use std::ffi::OsString;
use std::path::PathBuf;

/// Whether `args` (without the program name) name a command that runs a model: those are
/// `hipfrac-torch`'s.
pub fn runs_a_model(args: &[OsString]) -> bool {
    match args.first().and_then(|a| a.to_str()) {
        Some("train" | "predict" | "calibrate" | "evaluate" | "demo" | "listen") => true,
        // `serve token …` manages a file; `serve` runs the model.
        Some("serve") => args.get(1).and_then(|a| a.to_str()) != Some("token"),
        Some("study") => args.get(1).and_then(|a| a.to_str()) == Some("serve"),
        _ => false,
    }
}

/// hipfrac finds and classifies hip fractures on AP hip radiographs (research software).
///
/// Five labels: DF displaced femoral-neck, VF valgus-impacted femoral-neck, SF stable
/// intertrochanteric, UF unstable intertrochanteric, none (no visible fracture).
///
/// Exit codes: 0 success; 1 some inputs failed or the dataset has errors (see the summary);
/// 2 wrong command line or a fatal error.
#[derive(Debug, Parser)]
#[command(name = "hipfrac", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Convert DICOM radiographs to PNG (+ a JSON sidecar of the metadata).
    ///
    /// 8-bit output goes through the DICOM display pipeline: Modality LUT (rescale or table),
    /// VOI LUT (the file's window, an explicit one, or an automatic percentile window),
    /// MONOCHROME1 inverted so bone is always bright. 16-bit output keeps modality values
    /// (the sidecar says how to get them back). Folders are searched recursively; files that
    /// are not DICOM are skipped with a note. A file that fails is reported and skipped; the
    /// run then ends with exit code 1.
    Convert(ConvertArgs),
    /// De-identify DICOM files (PS3.15 Basic Application Level Confidentiality Profile).
    ///
    /// Identifying attributes are removed, emptied or replaced; UIDs are replaced by new ones
    /// derived from the key, so the same original UID always maps to the same new UID; the
    /// Patient ID (and name) become a keyed pseudonym, so one patient keeps one ID across
    /// files and patient-level splits still work. Pixel data are copied byte for byte. A
    /// warning is printed for images with burned-in annotation.
    Deid(DeidArgs),
    /// Check or split a labelled dataset (images + LabelImg Pascal VOC XML).
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Convert annotations between LabelImg VOC XML, YOLO txt and COCO json.
    #[command(subcommand)]
    Labels(LabelsCommand),
    /// Simulate AP hip radiographs (the phantom) with DF/VF/SF/UF fractures and exact boxes.
    ///
    /// Writes DIR/dicom/*.dcm (CR), DIR/images/*.png + LabelImg *.xml and DIR/manifest.csv.
    /// Phantom images test the pipeline; results on them are NOT clinical evidence.
    Phantom(PhantomArgs),
    /// Train the detector (DAMO-YOLO) with the paper's recipe from a TOML config.
    ///
    /// Defaults are the paper's: 1024 px, batch 64, SGD momentum 0.9 (Nesterov), weight
    /// decay 5e-4, 5-epoch warmup, lr 0.01/64 per image, cosine to 0.05×, EMA 0.9998, 430
    /// epochs. Writes OUT/last (resumable), OUT/best (EMA weights + config.json) and log.csv.
    Train(TrainArgs),
    /// Predict: boxes, types and an image-level verdict for DICOM/PNG radiographs.
    ///
    /// One JSON per image (boxes, class scores, verdict with its operating point, which hip,
    /// model hash, SOP Instance UID), an overlay PNG and summary.csv. Research software, not
    /// a medical device.
    Predict(PredictArgs),
    /// Choose each class's two operating points on a validation manifest.
    ///
    /// "suspicious" keeps sensitivity ≥ --sensitivity, "fracture" keeps specificity ≥
    /// --specificity on those images; written beside the model as operating_points.json.
    Calibrate(CalibrateArgs),
    /// Evaluate a model on labelled manifests: the paper's tables, mAP, ROC, calibration and
    /// a gallery — report.html (self-contained), report.md, metrics.csv, cases.csv.
    Evaluate(EvaluateArgs),
    /// The whole system end to end on phantom data: simulate two internal sites and an
    /// external one, split by patient, train, calibrate, evaluate, report (about 7 minutes on
    /// 2 CPU cores). Phantom results show the pipeline working; they are not clinical evidence.
    Demo(DemoArgs),
    /// Reader studies: statistics of readers × phases (with and without the AI).
    #[command(subcommand)]
    Study(StudyCommand),
    /// An HTTP inference service: POST a DICOM or PNG to /v1/predict, get predict's JSON.
    ///
    /// Concurrent requests are batched into one forward pass (up to --max-batch images within
    /// --max-wait-ms); a full queue answers 503 with Retry-After. Bearer tokens (stored hashed:
    /// `hipfrac serve token add NAME --tokens FILE`) are required unless --no-auth is given on
    /// a loopback address. GET /v1/model, /healthz, /readyz, /metrics (Prometheus). Ctrl-C or
    /// SIGTERM stops accepting, finishes what is in flight and exits. API: docs/openapi.json.
    Serve(ServeArgs),
    /// A DICOM node: receive radiographs by C-STORE, send the results on by C-STORE.
    ///
    /// Answers C-ECHO and C-STORE of CR, DX and Secondary Capture images in every transfer
    /// syntax hipfrac reads (others are refused during negotiation). Each instance is written
    /// to the spool and fsynced before "success" is answered; a worker predicts it and writes
    /// a Comprehensive SR, a presentation state and a Secondary Capture (--outputs) in its
    /// study; a sender delivers them to --dest, retrying with backoff while it is down. After
    /// a crash, a restart on the same --spool finishes everything acknowledged. Ctrl-C or
    /// SIGTERM stops accepting, finishes the open associations and the work in hand, exits.
    Listen(ListenArgs),
    /// Join the summaries of `hipfrac predict --shard I/N` runs into OUT/summary.csv.
    ///
    /// Checks that every shard 0..N of one N wrote its summary.shard-I-of-N.csv, and that no
    /// input appears twice; names any shard that is missing (exit 2, nothing written).
    MergeShards(MergeShardsArgs),
}

#[derive(Debug, Args)]
pub struct MergeShardsArgs {
    /// The --out folder the shards wrote to.
    pub out: PathBuf,
    /// Replace an existing summary.csv.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Model folder.
    #[arg(long)]
    pub model: PathBuf,
    /// auto, cpu, cuda or cuda:N (auto: CUDA when a GPU is usable, else the CPU).
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// Address to listen on (port 0: any free port, printed at start). Use 0.0.0.0:PORT for
    /// a PACS on another machine, with --allow.
    #[arg(long, default_value = "127.0.0.1:11112")]
    pub addr: std::net::SocketAddr,
    /// This node's AE title (senders must call it by this title).
    #[arg(long, default_value = "HIPFRAC")]
    pub ae_title: String,
    /// Calling AE titles allowed to send (repeat or separate with commas; default: any).
    #[arg(long, value_name = "AE", value_delimiter = ',')]
    pub allow: Vec<String>,
    /// Where results go: AE@HOST:PORT (e.g. PACS@10.0.0.5:104).
    #[arg(long, value_name = "AE@HOST:PORT", value_parser = destination)]
    pub dest: (String, String),
    /// The spool folder (received instances and results not yet delivered; durable).
    #[arg(long)]
    pub spool: PathBuf,
    /// Refuse new instances (status A700, out of resources) while the spool holds this much.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub spool_limit_mb: u64,
    /// Largest instance accepted, MiB.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_instance_mb: u64,
    /// Associations served at once (more wait).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_associations: u32,
    /// Results to send for each instance.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "sr,gsps,sc")]
    pub outputs: Vec<DicomOutput>,
    /// Longer side of the Secondary Capture in pixels.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(64..=8192))]
    pub overlay_size: u32,
    /// Longest wait between two tries to reach --dest, seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub max_backoff_s: u64,
    /// Also accept radiographs whose Body Part Examined is NAME (see `hipfrac predict`).
    #[arg(long = "accept-body-part", value_name = "NAME", value_delimiter = ',')]
    pub accept_body_parts: Vec<String>,
    /// Use the operating points re-fitted for SITE (`hipfrac calibrate --site SITE`).
    #[arg(long, value_name = "SITE", value_parser = site_name)]
    pub site: Option<String>,
}

/// I/N → (I, N), 0 ≤ I < N.
fn shard(text: &str) -> Result<(u32, u32), String> {
    let (i, n) = text.split_once('/').ok_or("expected I/N, e.g. 0/8 (shard 0 of 8)")?;
    let (i, n) = (i.trim().parse::<u32>().map_err(|_| format!("{i:?} is not a shard number"))?, n.trim().parse::<u32>().map_err(|_| format!("{n:?} is not a shard count"))?);
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: need 0 ≤ I < N"));
    }
    Ok((i, n))
}

/// AE@HOST:PORT → (AE, HOST:PORT).
fn destination(text: &str) -> Result<(String, String), String> {
    let (ae, address) = text.split_once('@').ok_or("expected AE@HOST:PORT, e.g. PACS@10.0.0.5:104")?;
    let port = address.rsplit_once(':').map(|(_, p)| p).ok_or("expected AE@HOST:PORT: the port is missing")?;
    port.parse::<u16>().map_err(|_| format!("{port:?} is not a port number"))?;
    if ae.trim().is_empty() || ae.len() > 16 {
        return Err(format!("{ae:?} is not an AE title (1 to 16 characters)"));
    }
    Ok((ae.to_string(), address.to_string()))
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub token: Option<ServeCommand>,
    /// Model folder.
    #[arg(long, required = true)]
    pub model: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N (auto: CUDA when a GPU is usable, else the CPU).
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub addr: std::net::SocketAddr,
    /// The tokens file (from `hipfrac serve token add`).
    #[arg(long, value_name = "FILE", required_unless_present = "no_auth")]
    pub tokens: Option<PathBuf>,
    /// Serve without authentication (loopback addresses only).
    #[arg(long, conflicts_with = "tokens")]
    pub no_auth: bool,
    /// Listen on an address other machines can reach over plain HTTP (tokens and images then
    /// cross the network in clear; prefer a TLS reverse proxy on 127.0.0.1).
    #[arg(long)]
    pub insecure: bool,
    /// Images per forward pass at most.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub max_batch: u32,
    /// How long the first image of a batch waits for others, milliseconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub max_wait_ms: u64,
    /// Images that may wait for the network; beyond it requests get 503.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub queue: u32,
    /// Largest request body, MiB.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_body_mb: u32,
    /// Prediction requests handled at once (each holds its body and images in memory); more
    /// get 503 at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_requests: u32,
    /// Files in one multipart request at most.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_files: u32,
    /// Longest a prediction request may take (queueing included), seconds; then 504.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout_s: u64,
    /// Also accept radiographs whose Body Part Examined is NAME (see `hipfrac predict`).
    #[arg(long = "accept-body-part", value_name = "NAME", value_delimiter = ',')]
    pub accept_body_parts: Vec<String>,
    /// Use the operating points re-fitted for SITE (`hipfrac calibrate --site SITE`).
    #[arg(long, value_name = "SITE", value_parser = site_name)]
    pub site: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ServeCommand {
    /// Manage the service's bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token named NAME: printed once, stored only as its SHA-256.
    Add {
        name: String,
        #[arg(long, value_name = "FILE")]
        tokens: PathBuf,
    },
    /// Remove the token named NAME.
    Remove {
        name: String,
        #[arg(long, value_name = "FILE")]
        tokens: PathBuf,
    },
    /// List the tokens' names and when they were made.
    List {
        #[arg(long, value_name = "FILE")]
        tokens: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum StudyCommand {
    /// Per reader and phase Se/Sp (the paper's Table III) with mean/SD, McNemar per reader,
    /// Cohen/Fleiss/intra-reader κ and the Obuchowski–Rockette MRMC analysis (Hillis ddf) of
    /// aided vs unaided reading — report.html, tables.csv, stats.json.
    Report(StudyReportArgs),
    /// Run the reading workstation of a study (web pages for readers and admins; reads in
    /// SQLite). Open the printed address in a browser.
    Serve(StudyServeArgs),
    /// Print an argon2 hash of a password read from standard input, for the study file.
    HashPassword,
}

#[derive(Debug, Args)]
pub struct StudyServeArgs {
    /// The study file (TOML): name, cases, database, model, readers, admins, phases.
    #[arg(long)]
    pub study: std::path::PathBuf,
    /// Address to listen on. Without --tls-cert/--tls-key the workstation speaks plain HTTP
    /// and stays on 127.0.0.1 (a TLS reverse proxy can reach it there; docs/reader-study.md).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Listen on an address other machines can reach, without TLS (passwords and reads then
    /// cross the network in clear).
    #[arg(long, conflicts_with = "tls_cert")]
    pub insecure: bool,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key", value_name = "PEM")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert", value_name = "PEM")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Device of the AI overlay's predictions: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
}

#[derive(Debug, Args)]
pub struct StudyReportArgs {
    /// The reads: CSV with reader, phase, case, label (and optionally confidence, seconds).
    pub reads: std::path::PathBuf,
    /// The truth: a manifest whose `image` column names the cases.
    #[arg(long)]
    pub truth: std::path::PathBuf,
    /// Phase(s) read with the AI (repeat for several).
    #[arg(long, default_value = "III")]
    pub aided: Vec<String>,
    /// The AI alone on the same cases: `hipfrac evaluate`'s cases.csv.
    #[arg(long)]
    pub ai: Option<std::path::PathBuf>,
    /// Output folder.
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Replace an earlier report.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// DICOM or PNG files, or folders (searched recursively).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Predict only shard I of N (0 ≤ I < N), for job arrays (Slurm, Kubernetes): each input
    /// belongs to one shard by a hash of its path below the input folder, so shards never
    /// overlap and an input keeps its shard when the archive grows. Each shard writes
    /// `summary.shard-I-of-N.csv`; `hipfrac merge-shards OUT` joins them into summary.csv.
    #[arg(long, value_name = "I/N", value_parser = shard)]
    pub shard: Option<(u32, u32)>,
    /// Images per forward pass (default: 16 on a GPU, 2 on the CPU).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub batch: Option<u32>,
    /// The network's compute type: fp32, or bf16/fp16 autocast (faster on GPUs and on CPUs
    /// with bf16 units; scores move by about 0.01).
    #[arg(long, value_enum, default_value = "fp32")]
    pub precision: PrecisionArg,
    /// Model folder (a training run's `best/` or `last/`).
    #[arg(long)]
    pub model: PathBuf,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// auto, cpu, cuda or cuda:N (auto: CUDA when a GPU is usable, else the CPU).
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
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
    /// Also accept radiographs whose Body Part Examined is NAME (repeat or separate with
    /// commas), for archives that name hips in their own words (e.g. HUEFTE, BECKEN). By
    /// default HIP, PELVIS and FEMUR are accepted; other body parts get "not assessable".
    #[arg(long = "accept-body-part", value_name = "NAME", value_delimiter = ',')]
    pub accept_body_parts: Vec<String>,
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

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Model folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Validation manifest (CSV: image, annotation, patient, site, label).
    #[arg(long)]
    pub data: PathBuf,
    /// Target sensitivity of the "suspicious" point.
    #[arg(long, default_value_t = 0.95)]
    pub sensitivity: f64,
    /// Target specificity of the "fracture" point.
    #[arg(long, default_value_t = 0.98)]
    pub specificity: f64,
    /// auto, cpu, cuda or cuda:N (auto: CUDA when a GPU is usable, else the CPU).
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// Replace an existing operating_points.json (or the site's).
    #[arg(long)]
    pub overwrite: bool,
    /// Re-fit the model's operating points for a new site from a small labelled sample of
    /// it (--data; say 50 radiographs) and write them as operating_points.SITE.json; prints
    /// what changed. Classes the sample holds fewer than 5 positive or negative images of keep
    /// their thresholds. `predict --site SITE` and `evaluate --site SITE` use them.
    #[arg(long, value_name = "SITE", value_parser = site_name)]
    pub site: Option<String>,
    /// Also accept radiographs whose Body Part Examined is NAME (see `hipfrac predict`).
    #[arg(long = "accept-body-part", value_name = "NAME", value_delimiter = ',')]
    pub accept_body_parts: Vec<String>,
}

/// A site name for a file name: letters, digits, '.', '_', '-'.
pub fn site_name(value: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&value.len()) && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) && !value.starts_with('.');
    if ok { Ok(value.to_string()) } else { Err("use 1–64 letters, digits, '.', '_' or '-' (not starting with '.')".into()) }
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Model folder.
    #[arg(long)]
    pub model: PathBuf,
    /// A manifest to evaluate, as PATH or NAME=PATH; repeat for several (e.g. `--data
    /// internal=splits/test.csv --data external=ext.csv`).
    #[arg(long, required = true)]
    pub data: Vec<String>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// auto, cpu, cuda or cuda:N (auto: CUDA when a GPU is usable, else the CPU).
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// Replace an earlier report.
    #[arg(long)]
    pub overwrite: bool,
    /// Use the operating points re-fitted for SITE (`hipfrac calibrate --site SITE`).
    #[arg(long, value_name = "SITE", value_parser = site_name)]
    pub site: Option<String>,
    /// Also accept radiographs whose Body Part Examined is NAME (see `hipfrac predict`).
    #[arg(long = "accept-body-part", value_name = "NAME", value_delimiter = ',')]
    pub accept_body_parts: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output folder (must not exist).
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
    /// The paper's configuration (DAMO-YOLO-T, 1024 px, batch 64, 430 epochs, 4,000 internal
    /// images): for a GPU.
    #[arg(long)]
    pub full: bool,
    /// Override the number of training epochs.
    #[arg(long)]
    pub epochs: Option<i64>,
    /// Override the number of internal images (split 80/10/10 by patient).
    #[arg(long)]
    pub internal_images: Option<usize>,
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
}

#[derive(Debug, Args)]
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

#[derive(Debug, Args)]
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

#[derive(Debug, Subcommand)]
pub enum PhantomCommand {
    /// Draw a contact sheet (thumbnails with boxes and labels) of a phantom folder.
    Sheet(SheetArgs),
    /// List the built-in site profiles.
    Sites,
}

#[derive(Debug, Args)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Bits {
    #[value(name = "8")]
    Eight,
    #[value(name = "16")]
    Sixteen,
}

#[derive(Debug, Args)]
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

#[derive(Debug, Args)]
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

/// The network's compute type (hipfrac_model::precision::Precision, named here so that
/// `hipfrac`, which links no libtorch, can parse it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PrecisionArg {
    Fp32,
    Bf16,
    Fp16,
}

/// DICOM objects `predict` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DicomOutput {
    /// Secondary Capture of the overlay.
    Sc,
    /// Grayscale Softcopy Presentation State: the boxes and verdict over the original.
    Gsps,
    /// Comprehensive SR: the verdict and each box as coded findings with image references.
    Sr,
}

impl DicomOutput {
    #[allow(dead_code)] // hipfrac-torch's
    pub fn kind(self) -> hipfrac_report::dicom_outputs::DicomKind {
        use hipfrac_report::dicom_outputs::DicomKind;
        match self {
            DicomOutput::Sc => DicomKind::Sc,
            DicomOutput::Gsps => DicomKind::Gsps,
            DicomOutput::Sr => DicomKind::Sr,
        }
    }
}

/// The PS3.15 options `deid` implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
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

#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Check a dataset folder: every VOC XML against its image (missing images, extra
    /// images, boxes outside or degenerate, size mismatch, unknown labels, duplicate images),
    /// then print counts per class and per patient like the paper's Table I. Exit 1 on errors.
    Check(CheckArgs),
    /// Split a dataset into train/validation/test by patient (no patient in two splits),
    /// stratified by class, and write CSV manifests.
    Split(SplitArgs),
}

#[derive(Debug, Args)]
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

#[derive(Debug, Args)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Voc,
    Yolo,
    Coco,
}

#[derive(Debug, Subcommand)]
pub enum LabelsCommand {
    /// Convert annotations: VOC folder ⇄ COCO json ⇄ YOLO folder.
    ///
    /// YOLO has no image sizes, so reading YOLO needs the images (`--images`).
    Convert(LabelsConvertArgs),
    /// List the five labels with their accepted names.
    List,
}

#[derive(Debug, Args)]
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

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
