//! `hipfrac predict`: radiographs → one JSON per image, overlay PNGs and a CSV summary.

use crate::cli::PredictArgs;
use crate::{inputs, progress, Outcome};
use anyhow::{bail, Context, Result};
use hipfrac_core::{Label, Radiograph};
use hipfrac_infer::overlay::{self, Marks};
use hipfrac_infer::{Prediction, Predictor};
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Shown in every output: what the answers are and are not.
pub const NOTICE: &str = "Research software, not a medical device: the AI's boxes and verdict support a reader and never replace one.";

/// Boxes drawn on an overlay at most (those above their class's suspicious threshold).
pub const SHOWN_BOXES: usize = 5;

/// The device: the one asked for, else CUDA when a GPU is usable, else the CPU.
pub fn device(name: Option<&str>) -> Result<tch::Device> {
    match name {
        Some(name) => hipfrac_train::device::select(name).map_err(anyhow::Error::msg),
        None => Ok(hipfrac_train::device::select("cuda").unwrap_or(tch::Device::Cpu)),
    }
}

/// Loads a model folder, naming it in the error.
pub fn load_model(dir: &Path, device: tch::Device) -> Result<Predictor> {
    Predictor::load(dir, device).with_context(|| format!("cannot load the model in {}", dir.display()))
}

#[derive(Serialize)]
struct BoxRecord {
    class: &'static str,
    name: &'static str,
    score: f32,
    /// `[x_min, y_min, x_max, y_max)` in the image's pixels.
    bbox: [f32; 4],
}

#[derive(Serialize)]
struct ModelRecord {
    dir: String,
    hash: String,
    operating_points: String,
}

/// The JSON written per image.
#[derive(Serialize)]
struct Record {
    input: String,
    sop_instance_uid: Option<String>,
    width: u32,
    height: u32,
    verdict: &'static str,
    verdict_name: &'static str,
    confidence: f32,
    operating_point: hipfrac_infer::OperatingPoint,
    vf_priority_applied: bool,
    side: Option<hipfrac_infer::SideCall>,
    class_scores: std::collections::BTreeMap<&'static str, f32>,
    boxes: Vec<BoxRecord>,
    model: ModelRecord,
    notice: &'static str,
}

fn record(input: &Path, image: &Radiograph, p: &Prediction, predictor: &Predictor) -> Record {
    Record {
        input: input.display().to_string(),
        sop_instance_uid: image.meta.sop_instance_uid.clone(),
        width: p.width,
        height: p.height,
        verdict: p.verdict.label.code(),
        verdict_name: p.verdict.label.full_name(),
        confidence: p.verdict.confidence,
        operating_point: p.verdict.operating_point,
        vf_priority_applied: p.verdict.vf_priority_applied,
        side: p.side,
        class_scores: hipfrac_core::FractureClass::ALL.iter().map(|c| (c.code(), p.class_scores[c.index()])).collect(),
        boxes: p
            .detections
            .iter()
            .map(|d| BoxRecord { class: d.class.code(), name: d.class.full_name(), score: d.score, bbox: [d.bbox.x_min, d.bbox.y_min, d.bbox.x_max, d.bbox.y_max] })
            .collect(),
        model: ModelRecord { dir: predictor.dir.display().to_string(), hash: predictor.model_hash.clone(), operating_points: predictor.points.chosen_on.clone() },
        notice: NOTICE,
    }
}

fn is_image(path: &Path) -> bool {
    hipfrac_dicom::is_png_file(path) || hipfrac_dicom::is_dicom_file(path)
}

struct Row {
    input: PathBuf,
    outcome: Result<Record, String>,
}

pub fn run(args: PredictArgs) -> Result<Outcome> {
    let device = device(args.device.as_deref())?;
    let predictor = load_model(&args.model, device)?;
    let found = inputs::expand_with(&args.inputs, false, is_image)?;
    if found.jobs.is_empty() {
        bail!("no DICOM or PNG files found in the inputs");
    }
    let summary_path = args.out.join("summary.csv");
    if summary_path.exists() && !args.overwrite {
        bail!("{} exists (an earlier run); pass --overwrite to replace its outputs", summary_path.display());
    }
    eprintln!(
        "predicting {} image(s) with {} (model {}, {} px, {device:?}; thresholds: {})",
        found.jobs.len(),
        args.model.display(),
        predictor.model_hash,
        predictor.size,
        predictor.points.chosen_on
    );
    let bar = progress::bar(found.jobs.len() as u64, "predicting");
    let mut rows = Vec::new();
    let preprocess = predictor.preprocess;
    for chunk in found.jobs.chunks(predictor.batch_size()) {
        // Files are read and letterboxed in parallel; the network runs on the batch.
        let loaded: Vec<Result<(Radiograph, hipfrac_infer::Letterbox), String>> = chunk
            .par_iter()
            .map(|job| {
                let image = hipfrac_dicom::read_radiograph(&job.input).map_err(|e| e.to_string())?;
                let prepared = hipfrac_train::data::letterbox(&image, &preprocess).map_err(|e| format!("{}: {e}", job.input.display()))?;
                Ok((image, prepared))
            })
            .collect();
        let ok: Vec<&hipfrac_infer::Letterbox> = loaded.iter().filter_map(|r| r.as_ref().ok().map(|(_, p)| p)).collect();
        let mut found_boxes = predictor.detect(&ok).into_iter();
        for (job, item) in chunk.iter().zip(loaded) {
            let outcome = item.and_then(|(image, _)| {
                let prediction = predictor.conclude(&image, found_boxes.next().expect("one result per prepared image"));
                let base = args.out.join(&job.relative);
                let base = if base.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) { base.with_extension("") } else { base };
                let json_path = PathBuf::from(format!("{}.json", base.display()));
                let overlay_path = PathBuf::from(format!("{}.overlay.png", base.display()));
                if !args.overwrite {
                    for path in [&json_path, &overlay_path] {
                        if path.exists() {
                            return Err(format!("{} exists; pass --overwrite to replace it", path.display()));
                        }
                    }
                }
                let record = record(&job.input, &image, &prediction, &predictor);
                let json = serde_json::to_vec_pretty(&record).expect("a record serialises");
                if !args.no_overlay {
                    let shown = hipfrac_infer::verdict::reportable(&prediction.detections, &predictor.points, SHOWN_BOXES);
                    let marks = Marks { detections: &shown, verdict: Some(&prediction.verdict), note: Some("AI RESEARCH OUTPUT".into()), ..Default::default() };
                    let picture = overlay::render(&image, &marks, args.overlay_size).map_err(|e| format!("{}: {e}", job.input.display()))?;
                    hipfrac_dicom::atomic::write_atomic(&overlay_path, &picture.to_png()).map_err(|e| e.to_string())?;
                }
                hipfrac_dicom::atomic::write_atomic(&json_path, &json).map_err(|e| e.to_string())?;
                Ok(record)
            });
            if let Err(error) = &outcome {
                bar.suspend(|| eprintln!("failed: {error}"));
            }
            rows.push(Row { input: job.input.clone(), outcome });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    write_summary(&summary_path, &rows)?;
    let failed = rows.iter().filter(|r| r.outcome.is_err()).count();
    let fractures = rows.iter().filter(|r| matches!(&r.outcome, Ok(rec) if rec.verdict != Label::NoFracture.code())).count();
    eprintln!("predicted {}, failed {failed}; {fractures} with a fracture verdict → {}", rows.len() - failed, args.out.display());
    eprintln!("{NOTICE}");
    Ok(if failed > 0 { Outcome::SomeFailed } else { Outcome::Success })
}

fn write_summary(path: &Path, rows: &[Row]) -> Result<()> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "input", "sop_instance_uid", "verdict", "confidence", "operating_point", "vf_priority_applied", "side", "side_source", "DF", "VF", "SF", "UF", "boxes", "error",
    ])?;
    for row in rows {
        let input = row.input.display().to_string();
        match &row.outcome {
            Ok(r) => {
                let (side, source) = match &r.side {
                    Some(s) => (serde_json::to_value(s.side)?.as_str().unwrap_or_default().to_string(), serde_json::to_value(s.source)?.as_str().unwrap_or_default().to_string()),
                    None => (String::new(), String::new()),
                };
                let score = |c: &str| format!("{:.4}", r.class_scores.get(c).copied().unwrap_or(0.0));
                writer.write_record([
                    input,
                    r.sop_instance_uid.clone().unwrap_or_default(),
                    r.verdict.to_string(),
                    format!("{:.4}", r.confidence),
                    serde_json::to_value(r.operating_point)?.as_str().unwrap_or_default().to_string(),
                    r.vf_priority_applied.to_string(),
                    side,
                    source,
                    score("DF"),
                    score("VF"),
                    score("SF"),
                    score("UF"),
                    r.boxes.len().to_string(),
                    String::new(),
                ])?;
            }
            Err(e) => {
                let mut fields = vec![input];
                fields.extend(std::iter::repeat_n(String::new(), 12));
                fields.push(e.clone());
                writer.write_record(fields)?;
            }
        }
    }
    let bytes = writer.into_inner().context("cannot build the summary")?;
    hipfrac_dicom::atomic::write_atomic(path, &bytes)?;
    Ok(())
}
