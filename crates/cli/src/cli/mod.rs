//! The command line. Doc comments here are the `--help` text: the commands here, their
//! arguments in `data` (convert, deid, dataset, labels, phantom), `model` (train, predict,
//! calibrate, evaluate, demo) and `services` (study, serve, listen, merge-shards).

use clap::{Parser, Subcommand};
use std::ffi::OsString;

mod data;
mod model;
mod services;

pub use data::*;
pub use model::*;
pub use services::*;

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

/// I/N → (I, N), 0 ≤ I < N.
pub(crate) fn shard(text: &str) -> Result<(u32, u32), String> {
    let (i, n) = text.split_once('/').ok_or("expected I/N, e.g. 0/8 (shard 0 of 8)")?;
    let (i, n) = (
        i.trim()
            .parse::<u32>()
            .map_err(|_| format!("{i:?} is not a shard number"))?,
        n.trim()
            .parse::<u32>()
            .map_err(|_| format!("{n:?} is not a shard count"))?,
    );
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: need 0 ≤ I < N"));
    }
    Ok((i, n))
}

/// AE@HOST:PORT → (AE, HOST:PORT).
pub(crate) fn destination(text: &str) -> Result<(String, String), String> {
    let (ae, address) = text
        .split_once('@')
        .ok_or("expected AE@HOST:PORT, e.g. PACS@10.0.0.5:104")?;
    let port = address
        .rsplit_once(':')
        .map(|(_, p)| p)
        .ok_or("expected AE@HOST:PORT: the port is missing")?;
    port.parse::<u16>()
        .map_err(|_| format!("{port:?} is not a port number"))?;
    if ae.trim().is_empty() || ae.len() > 16 {
        return Err(format!("{ae:?} is not an AE title (1 to 16 characters)"));
    }
    Ok((ae.to_string(), address.to_string()))
}

/// A site name for a file name: letters, digits, '.', '_', '-'.
pub fn site_name(value: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !value.starts_with('.');
    if ok {
        Ok(value.to_string())
    } else {
        Err("use 1–64 letters, digits, '.', '_' or '-' (not starting with '.')".into())
    }
}

/// The demo's split: three shares adding up to 1, none of them 0 (it trains, calibrates on
/// validation and evaluates the test split).
pub fn demo_ratios(value: &str) -> Result<hipfrac_data::split::Ratios, String> {
    let ratios: hipfrac_data::split::Ratios = value.parse().map_err(|e| format!("{e}"))?;
    if ratios.0.iter().any(|&r| r <= 0.0) {
        return Err(format!(
            "{value}: the demo needs a train, a validation and a test share above 0"
        ));
    }
    Ok(ratios)
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    /// The CPU demo trains the two-stage detector unless told otherwise; `--full` is the
    /// paper's configuration, single stage unless `--two-stage`; the split's shares are read.
    #[test]
    fn the_demo_defaults_to_two_stages_except_the_papers_configuration() {
        use clap::Parser;
        let demo = |args: &[&str]| match super::Cli::try_parse_from([&["hipfrac", "demo"], args].concat())
            .unwrap()
            .command
        {
            super::Command::Demo(args) => args,
            other => panic!("{other:?}"),
        };
        assert!(demo(&[]).trains_two_stage());
        assert!(!demo(&["--single-stage"]).trains_two_stage());
        assert!(!demo(&["--full"]).trains_two_stage());
        assert!(demo(&["--full", "--two-stage"]).trains_two_stage());
        assert_eq!(demo(&[]).ratios.to_string(), "80/10/10");
        assert_eq!(demo(&["--ratios", "0.7,0.1,0.2"]).ratios.0, [0.7, 0.1, 0.2]);
        for refused in [
            &["--ratios", "0.9,0.1,0"][..],
            &["--ratios", "0.5,0.5"],
            &["--single-stage", "--two-stage"],
        ] {
            assert!(
                super::Cli::try_parse_from([&["hipfrac", "demo"], refused].concat()).is_err(),
                "{refused:?}"
            );
        }
    }
}
