//! `hipfrac predict`: radiographs → one JSON per image, overlay PNGs and a CSV summary.

use crate::{progress, ModelChoice, Outcome};
use anyhow::{bail, Context, Result};
use hipfrac_core::{error_chain, Precision, Prediction, Radiograph, RadiographMeta, NOTICE};
use hipfrac_files::inputs;
use hipfrac_imaging::overlay::{self, Marks};
use hipfrac_infer::Predictor;
use hipfrac_report::dicom_outputs::{DicomKind, ModelContext};
use hipfrac_report::predictions::{summary_csv, ModelRecord, Record, SummaryRow};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `hipfrac predict` is asked to do.
#[derive(Debug, Clone)]
pub struct PredictOptions {
    /// DICOM, PNG or JPEG files, or folders (searched recursively).
    pub inputs: Vec<PathBuf>,
    /// Only shard I of N (0 ≤ I < N).
    pub shard: Option<(u32, u32)>,
    /// Images per forward pass (None: the predictor's default for its device).
    pub batch: Option<u32>,
    pub precision: Precision,
    pub model: ModelChoice,
    pub out: PathBuf,
    /// Longer side of the overlay PNGs in pixels.
    pub overlay_size: u32,
    pub no_overlay: bool,
    /// DICOM results to write beside the JSON (DICOM inputs only).
    pub dicom: Vec<DicomKind>,
    pub overwrite: bool,
    pub skip_existing: bool,
    /// Send each input's DICOM results to this DICOMweb server by STOW-RS.
    pub stow: Option<hipfrac_node::Stow>,
}

fn is_image(path: &Path) -> bool {
    hipfrac_dicom::is_image_file(path)
}

/// The shard (of `count`) an input belongs to: FNV-1a (64-bit) of its path below the input
/// folder, modulo `count`. Written out here rather than taken from a hasher whose output
/// may change between Rust releases: a file must keep its shard across versions.
fn shard_of(relative: &Path, count: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in relative.to_string_lossy().replace('\\', "/").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(count)) as u32
}

/// summary.csv, or summary.shard-I-of-N.csv for a shard.
fn summary_name(shard: Option<(u32, u32)>) -> String {
    match shard {
        Some((index, count)) => hipfrac_report::summaries::shard_file_name(index, count),
        None => "summary.csv".to_string(),
    }
}

/// The JSON and overlay paths of an input.
fn outputs(out: &Path, relative: &Path) -> (PathBuf, PathBuf) {
    let base = out.join(relative);
    let image_extension = |e: &std::ffi::OsStr| ["png", "jpg", "jpeg"].iter().any(|x| e.eq_ignore_ascii_case(x));
    let base = if base.extension().is_some_and(image_extension) {
        base.with_extension("")
    } else {
        base
    };
    (
        PathBuf::from(format!("{}.json", base.display())),
        PathBuf::from(format!("{}.overlay.png", base.display())),
    )
}

/// Writes an image's JSON and overlay (each atomically), unless they exist and `overwrite`
/// is off. `image` is `None` for a file refused on its header alone (its pixels could not be
/// decoded): it gets its JSON and no pictures. A refused image whose picture cannot be drawn
/// keeps its JSON too.
fn write_outputs(
    args: &PredictOptions,
    job: &inputs::Job,
    meta: &RadiographMeta,
    image: Option<&Radiograph>,
    prediction: &Prediction,
    predictor: &Predictor,
) -> Result<Record> {
    let (json_path, overlay_path) = outputs(&args.out, &job.relative);
    if !args.overwrite && !args.skip_existing {
        if let Some(path) = [&json_path, &overlay_path].into_iter().find(|p| p.exists()) {
            bail!("{} exists; pass --overwrite to replace it", path.display());
        }
    }
    let record = Record::new(
        job.input.display().to_string(),
        meta,
        prediction,
        &predictor.points,
        model_record(predictor),
    );
    let json = serde_json::to_vec_pretty(&record).expect("a record serialises");
    if !args.no_overlay {
        let shown = prediction.shown_boxes(&predictor.points);
        // What a reader must know is said on every picture: research output, and the model's caveats.
        let note = std::iter::once("AI RESEARCH OUTPUT")
            .chain(predictor.caveats())
            .collect::<Vec<_>>()
            .join(" - ");
        let marks = Marks {
            detections: &shown,
            hips: &prediction.hips,
            answer: Some(&prediction.answer),
            note: Some(note),
            ..Default::default()
        };
        // An image that was not assessed keeps its JSON when no picture can be drawn.
        match image.map(|image| overlay::render(image, &marks, args.overlay_size)) {
            Some(Ok(picture)) => hipfrac_dicom::atomic::write_atomic(&overlay_path, &picture.to_png())?,
            _ if prediction.not_assessable().is_some() => {}
            Some(Err(e)) => {
                return Err(anyhow::Error::new(e).context(format!("{}: cannot draw the overlay", job.input.display())))
            }
            None => bail!("{}: no pixels to draw", job.input.display()),
        }
    }
    if !args.dicom.is_empty() {
        let model = ModelContext {
            points: &predictor.points,
            hash: &predictor.model_hash,
            name: format!(
                "{} (weights {})",
                predictor.preset().map_or("custom", |p| p.name()),
                predictor.model_hash
            ),
            caveats: predictor.caveats(),
        };
        hipfrac_report::dicom_outputs::write(
            &job.input,
            &json_path.with_extension(""),
            meta,
            image,
            prediction,
            &args.dicom,
            &model,
            args.overlay_size,
        )?;
    }
    hipfrac_dicom::atomic::write_atomic(&json_path, &json)?;
    Ok(record)
}

/// stow.csv, or stow.shard-I-of-N.csv for a shard (each shard writes its own).
fn stow_name(shard: Option<(u32, u32)>) -> String {
    match shard {
        Some((index, count)) => format!("stow.shard-{index}-of-{count}.csv"),
        None => "stow.csv".to_string(),
    }
}

/// Tries of a STOW-RS request to a server that cannot be reached (waits of 1, 2, 4 and 8 s).
const STOW_TRIES: u32 = 5;

/// Sends each input's DICOM results to `stow` (one STOW-RS request per input), retrying a
/// server that cannot be reached; once it stays unreachable the rest are not tried. Writes
/// `path` (input, results, `sent` or `not sent`, why) and returns how many inputs' results were
/// not sent. The results stay in OUT either way.
fn stow_results(stow: &hipfrac_node::Stow, path: &Path, inputs: &[(PathBuf, Vec<PathBuf>)]) -> Result<usize> {
    use hipfrac_node::sender::SendError;
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(["input", "results", "status", "reason"])?;
    let mut down: Option<String> = None;
    let mut unsent = 0;
    for (input, files) in inputs {
        let mut outcome = Err(down.clone().unwrap_or_default());
        if down.is_none() {
            let mut wait = Duration::from_secs(1);
            for attempt in 1..=STOW_TRIES {
                match hipfrac_node::stow::send(stow, files, |_| Ok(())) {
                    Ok(_) => {
                        outcome = Ok(());
                        break;
                    }
                    Err(SendError::Unreachable(_, why)) if attempt < STOW_TRIES => {
                        eprintln!("{}: {why}; trying again in {} s", stow.url, wait.as_secs());
                        std::thread::sleep(wait);
                        wait *= 2;
                    }
                    Err(SendError::Unreachable(_, why)) => {
                        let why = format!("{} unreachable after {STOW_TRIES} tries: {why}", stow.url);
                        down = Some(why.clone());
                        outcome = Err(why);
                    }
                    Err(error) => {
                        outcome = Err(error.to_string());
                        break;
                    }
                }
            }
        }
        let names: Vec<String> = files
            .iter()
            .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().to_string()))
            .collect();
        let input_text = input.display().to_string();
        let (status, reason) = match &outcome {
            Ok(()) => ("sent", String::new()),
            Err(why) => {
                unsent += 1;
                eprintln!("not sent: {}: {why}", input.display());
                ("not sent", why.clone())
            }
        };
        csv.write_record([
            hipfrac_core::csv_safe::cell(&input_text).as_ref(),
            hipfrac_core::csv_safe::cell(&names.join(" ")).as_ref(),
            status,
            hipfrac_core::csv_safe::cell(&reason).as_ref(),
        ])?;
    }
    hipfrac_dicom::atomic::write_atomic(path, &csv.into_inner()?)?;
    eprintln!(
        "STOW-RS to {}: results of {} input(s) sent, {unsent} not sent (see {})",
        stow.url,
        inputs.len() - unsent,
        path.display()
    );
    Ok(unsent)
}

/// The not-assessable prediction of a DICOM file whose header the check refuses, if it is one.
fn refused_by_header(path: &Path, predictor: &Predictor) -> Option<(RadiographMeta, Prediction)> {
    let meta = hipfrac_dicom::read_dicom_header(path).ok()?;
    let refused = hipfrac_core::assess::check_header(&meta, &predictor.acceptance).err()?;
    let prediction = Prediction::refused(meta.columns, meta.rows, refused);
    Some((meta, prediction))
}

/// How a record names the model.
pub fn model_record(predictor: &Predictor) -> ModelRecord {
    ModelRecord {
        dir: predictor.dir.display().to_string(),
        hash: predictor.model_hash.clone(),
        operating_points: predictor.points.chosen_on.clone(),
        trained_on: predictor.card.as_ref().map(|c| c.describe()),
        caveats: predictor.caveats(),
    }
}

/// Predicts every input: one JSON (and overlay, and DICOM results) per image and a summary.
pub fn run(args: PredictOptions) -> Result<Outcome> {
    let mut predictor = crate::open_predictor(&args.model)?;
    let found = inputs::expand_with(&args.inputs, false, is_image)?;
    if found.jobs.is_empty() {
        bail!("no DICOM, PNG or JPEG files found in the inputs");
    }
    // `a.png` and `a.jpg` would both answer in `a.json`.
    let mut answers: std::collections::HashMap<PathBuf, &Path> = Default::default();
    for job in &found.jobs {
        if let Some(first) = answers.insert(outputs(&args.out, &job.relative).0, &job.input) {
            bail!(
                "{} and {} would both be answered in {}; predict them separately",
                first.display(),
                job.input.display(),
                outputs(&args.out, &job.relative).0.display()
            );
        }
    }
    let found_jobs = found.jobs.len();
    let found = match args.shard {
        Some((index, count)) => inputs::Found {
            jobs: found
                .jobs
                .into_iter()
                .filter(|job| shard_of(&job.relative, count) == index)
                .collect(),
            ..found
        },
        None => found,
    };
    if let Some((index, count)) = args.shard {
        eprintln!("shard {index}/{count}: {} of {found_jobs} input(s)", found.jobs.len());
    }
    if let Some(batch) = args.batch {
        predictor.batch = Some(batch as usize);
    }
    predictor.precision = args.precision;
    let summary_path = args.out.join(summary_name(args.shard));
    if summary_path.exists() && !args.overwrite && !args.skip_existing {
        bail!(
            "{} exists (an earlier run); pass --overwrite to replace its outputs, or --skip-existing to add to them",
            summary_path.display()
        );
    }
    // With --skip-existing an input whose JSON is there is done (the JSON is written last).
    let jobs: Vec<&inputs::Job> = found
        .jobs
        .iter()
        .filter(|job| !(args.skip_existing && outputs(&args.out, &job.relative).0.exists()))
        .collect();
    let existing = found.jobs.len() - jobs.len();
    eprintln!(
        "predicting {} image(s){} with {} (model {}, {} px, {:?}; thresholds: {})",
        jobs.len(),
        if existing > 0 {
            format!(" ({existing} predicted before, left alone)")
        } else {
            String::new()
        },
        args.model.dir.display(),
        predictor.model_hash,
        predictor.input_size(),
        predictor.device,
        predictor.points.chosen_on
    );
    let bar = progress::bar(jobs.len() as u64, "predicting");
    let mut rows = Vec::new();
    let mut to_send: Vec<(PathBuf, Vec<PathBuf>)> = Vec::new();
    // Files are read a few batches at a time, in parallel; the predictor batches the network.
    for chunk in jobs.chunks(predictor.batch_size() * 4) {
        let read: Vec<Result<Radiograph>> = chunk
            .par_iter()
            .map(|job| Ok(hipfrac_dicom::read_radiograph(&job.input)?))
            .collect();
        let (mut images, mut failures) = (Vec::new(), Vec::new());
        for item in read {
            match item {
                Ok(image) => {
                    images.push(image);
                    failures.push(None);
                }
                Err(error) => failures.push(Some(error)),
            }
        }
        let mut predictions = predictor.predict_batch(&images).into_iter().zip(&images);
        for (job, failure) in chunk.iter().zip(failures) {
            let outcome = match failure {
                // Pixels that cannot be decoded, in a file whose header rules it out anyway
                // (a CT, an ultrasound, another body part): not assessable, not a failure.
                Some(error) => match refused_by_header(&job.input, &predictor) {
                    Some((meta, prediction)) => write_outputs(&args, job, &meta, None, &prediction, &predictor),
                    None => Err(error),
                },
                None => {
                    let (prediction, image) = predictions.next().expect("one prediction per image read");
                    prediction
                        .with_context(|| job.input.display().to_string())
                        .and_then(|prediction| {
                            write_outputs(&args, job, &image.meta, Some(image), &prediction, &predictor)
                        })
                }
            };
            if let Err(error) = &outcome {
                bar.suspend(|| eprintln!("failed: {}", error_chain(error.as_ref())));
            }
            if outcome.is_ok() && args.stow.is_some() {
                // The kinds this run wrote (a file of another kind may be left from an earlier run).
                let base = outputs(&args.out, &job.relative).0.with_extension("");
                let files: Vec<PathBuf> = args
                    .dicom
                    .iter()
                    .map(|kind| match kind {
                        DicomKind::Sr => "sr",
                        DicomKind::Gsps => "pr",
                        DicomKind::Sc => "sc",
                    })
                    .map(|suffix| PathBuf::from(format!("{}.{suffix}.dcm", base.display())))
                    .filter(|p| p.is_file())
                    .collect();
                if !files.is_empty() {
                    to_send.push((job.input.clone(), files));
                }
            }
            rows.push(match &outcome {
                Ok(record) => SummaryRow::of(record),
                Err(error) => SummaryRow::failed(job.input.display().to_string(), error_chain(error.as_ref())),
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let fresh = summary_csv(&rows);
    // With --skip-existing the earlier summary keeps its rows (a row of an input predicted again,
    // e.g. an earlier failure, is replaced).
    let summary = if args.skip_existing && summary_path.exists() {
        hipfrac_report::summaries::add_to(&summary_path, &fresh)
            .context("pass --overwrite to replace the earlier summary")?
    } else {
        fresh
    };
    hipfrac_dicom::atomic::write_atomic(&summary_path, &summary)?;
    let unsent = match &args.stow {
        Some(stow) => stow_results(stow, &args.out.join(stow_name(args.shard)), &to_send)?,
        None => 0,
    };
    let failed = rows.iter().filter(|r| r.is_failure()).count() + unsent;
    let fractures = rows
        .iter()
        .filter(|r| hipfrac_core::FractureClass::ALL.iter().any(|c| r.verdict == c.code()))
        .count();
    let refused = rows
        .iter()
        .filter(|r| r.verdict == hipfrac_core::NOT_ASSESSABLE)
        .count();
    eprintln!(
        "predicted {}, failed {failed}, already there {existing}; {fractures} with a fracture verdict, {refused} not assessable (see not_assessable in summary.csv for why) → {}",
        rows.len() - failed,
        args.out.display()
    );
    eprintln!("{NOTICE}");
    Ok(if failed > 0 {
        Outcome::SomeFailed
    } else {
        Outcome::Success
    })
}
