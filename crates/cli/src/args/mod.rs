//! The command line. Doc comments here are the `--help` text: the commands here, their
//! arguments in `data` (dataset, labels, phantom), `model` (train, predict, calibrate,
//! evaluate, demo) and `services` (study, serve, listen). The commands that handle files take
//! hipfrac-files' options as their arguments (convert, deid, merge-shards here; the others in
//! `data`); the model commands' arguments stay here, as `hipfrac` parses them without libtorch.

use clap::{Parser, Subcommand};
use hipfrac_core::DeviceSpec;
use hipfrac_files::{convert, deid, shards};
use serde::{Deserialize, Serialize};

mod data;
mod model;
mod services;

pub use data::*;
pub use model::*;
pub use services::*;

/// hipfrac finds and classifies hip fractures on AP hip radiographs (research software).
///
/// Five labels: DF displaced femoral-neck, VF valgus-impacted femoral-neck, SF stable
/// intertrochanteric, UF unstable intertrochanteric, none (no visible fracture).
///
/// Exit codes: 0 success; 1 some inputs failed or the dataset has errors (see the summary);
/// 2 wrong command line or a fatal error.
#[derive(Debug, Parser, Serialize, Deserialize)]
#[command(name = "hipfrac", bin_name = "hipfrac", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum Command {
    /// Convert DICOM radiographs to PNG (+ a JSON sidecar of the metadata).
    ///
    /// 8-bit output goes through the DICOM display pipeline: Modality LUT (rescale or table),
    /// VOI LUT (the file's window, an explicit one, or an automatic percentile window),
    /// MONOCHROME1 inverted so bone is always bright. 16-bit output keeps modality values
    /// (the sidecar says how to get them back). Folders are searched recursively; files that
    /// are not DICOM are skipped with a note. A file that fails is reported and skipped; the
    /// run then ends with exit code 1.
    Convert(convert::ConvertOptions),
    /// De-identify DICOM files (PS3.15 Basic Application Level Confidentiality Profile).
    ///
    /// Identifying attributes are removed, emptied or replaced; UIDs are replaced by new ones
    /// derived from the key, so the same original UID always maps to the same new UID; the
    /// Patient ID (and name) become a keyed pseudonym, so one patient keeps one ID across
    /// files and patient-level splits still work. Pixel data are copied byte for byte. A
    /// warning is printed for images with burned-in annotation.
    Deid(deid::DeidOptions),
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
    MergeShards(shards::MergeShardsOptions),
}

impl Command {
    /// Whether this command runs a model: those are `hipfrac-torch`'s (the binary that links
    /// libtorch); `hipfrac` runs the others itself.
    pub fn runs_a_model(&self) -> bool {
        match self {
            Command::Train(_)
            | Command::Predict(_)
            | Command::Calibrate(_)
            | Command::Evaluate(_)
            | Command::Demo(_)
            | Command::Listen(_)
            | Command::Study(StudyCommand::Serve(_))
            | Command::Serve(ServeArgs { token: None, .. }) => true,
            Command::Convert(_)
            | Command::Deid(_)
            | Command::Dataset(_)
            | Command::Labels(_)
            | Command::Phantom(_)
            | Command::MergeShards(_)
            | Command::Study(StudyCommand::Report(_) | StudyCommand::HashPassword)
            | Command::Serve(ServeArgs { token: Some(_), .. }) => false,
        }
    }

    /// The device a model command asks for (None: the command runs no model or leaves it
    /// to its own default).
    pub fn device(&self) -> Option<DeviceSpec> {
        match self {
            Command::Train(args) => Some(args.device),
            Command::Predict(args) => Some(args.model.device),
            Command::Calibrate(args) => Some(args.model.device),
            Command::Evaluate(args) => Some(args.model.device),
            Command::Demo(args) => args.device,
            Command::Listen(args) => Some(args.model.device),
            Command::Study(StudyCommand::Serve(args)) => Some(args.device),
            Command::Serve(ServeArgs { run: Some(run), .. }) => Some(run.device),
            _ => None,
        }
    }
}
