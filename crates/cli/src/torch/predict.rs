//! `hipfrac predict`: radiographs → one JSON per image, overlay PNGs and a CSV summary.

use crate::cli::PredictArgs;
use crate::{inputs, progress, Outcome};
use anyhow::{bail, Context, Result};
use hipfrac_core::verdict::{reportable, SHOWN_BOXES};
use hipfrac_core::{error_chain, FractureClass, Label, OperatingPoint, Prediction, Radiograph, SideCall, NOTICE};
use hipfrac_imaging::overlay::{self, Marks};
use hipfrac_infer::Predictor;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
pub struct Record {
    input: String,
    sop_instance_uid: Option<String>,
    width: u32,
    height: u32,
    verdict: &'static str,
    verdict_name: &'static str,
    confidence: f32,
    operating_point: OperatingPoint,
    vf_priority_applied: bool,
    side: Option<SideCall>,
    class_scores: BTreeMap<&'static str, f32>,
    boxes: Vec<BoxRecord>,
    model: ModelRecord,
    notice: &'static str,
}

impl Record {
    fn new(input: &Path, image: &Radiograph, p: &Prediction, predictor: &Predictor) -> Record {
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
            class_scores: FractureClass::ALL.iter().map(|c| (c.code(), p.class_scores[c.index()])).collect(),
            boxes: p.detections.iter().map(|d| BoxRecord { class: d.class.code(), name: d.class.full_name(), score: d.score, bbox: [d.bbox.x_min, d.bbox.y_min, d.bbox.x_max, d.bbox.y_max] }).collect(),
            model: ModelRecord { dir: predictor.dir.display().to_string(), hash: predictor.model_hash.clone(), operating_points: predictor.points.chosen_on.clone() },
            notice: NOTICE,
        }
    }
}

/// One row of summary.csv: a prediction, or the error of an input that failed.
#[derive(Serialize, Default)]
struct SummaryRow {
    input: String,
    sop_instance_uid: String,
    verdict: String,
    confidence: String,
    operating_point: String,
    vf_priority_applied: String,
    side: String,
    side_source: String,
    #[serde(rename = "DF")]
    df: String,
    #[serde(rename = "VF")]
    vf: String,
    #[serde(rename = "SF")]
    sf: String,
    #[serde(rename = "UF")]
    uf: String,
    boxes: String,
    error: String,
}

impl SummaryRow {
    fn new(input: &Path, outcome: &Result<Record>) -> SummaryRow {
        let input = input.display().to_string();
        let r = match outcome {
            Ok(r) => r,
            Err(error) => return SummaryRow { input, error: error_chain(error.as_ref()), ..Default::default() },
        };
        let point = serde_json::to_value(r.operating_point).expect("an enum serialises");
        let score = |c: &str| format!("{:.4}", r.class_scores.get(c).copied().unwrap_or(0.0));
        SummaryRow {
            input,
            sop_instance_uid: r.sop_instance_uid.clone().unwrap_or_default(),
            verdict: r.verdict.to_string(),
            confidence: format!("{:.4}", r.confidence),
            operating_point: point.as_str().unwrap_or_default().to_string(),
            vf_priority_applied: r.vf_priority_applied.to_string(),
            side: r.side.map(|s| s.side.name().to_string()).unwrap_or_default(),
            side_source: r.side.map(|s| s.source.name().to_string()).unwrap_or_default(),
            df: score("DF"),
            vf: score("VF"),
            sf: score("SF"),
            uf: score("UF"),
            boxes: r.boxes.len().to_string(),
            error: String::new(),
        }
    }
}

fn is_image(path: &Path) -> bool {
    hipfrac_dicom::is_png_file(path) || hipfrac_dicom::is_dicom_file(path)
}

/// The JSON and overlay paths of an input.
fn outputs(out: &Path, relative: &Path) -> (PathBuf, PathBuf) {
    let base = out.join(relative);
    let base = if base.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) { base.with_extension("") } else { base };
    (PathBuf::from(format!("{}.json", base.display())), PathBuf::from(format!("{}.overlay.png", base.display())))
}

/// Writes an image's JSON and overlay (each atomically), unless they exist and `overwrite`
/// is off.
fn write_outputs(args: &PredictArgs, job: &inputs::Job, image: &Radiograph, prediction: &Prediction, predictor: &Predictor) -> Result<Record> {
    let (json_path, overlay_path) = outputs(&args.out, &job.relative);
    if !args.overwrite {
        if let Some(path) = [&json_path, &overlay_path].into_iter().find(|p| p.exists()) {
            bail!("{} exists; pass --overwrite to replace it", path.display());
        }
    }
    let record = Record::new(&job.input, image, prediction, predictor);
    let json = serde_json::to_vec_pretty(&record).expect("a record serialises");
    if !args.no_overlay {
        let shown = reportable(&prediction.detections, &predictor.points, SHOWN_BOXES);
        let marks = Marks { detections: &shown, verdict: Some(&prediction.verdict), note: Some("AI RESEARCH OUTPUT".into()), ..Default::default() };
        let picture = overlay::render(image, &marks, args.overlay_size).with_context(|| format!("{}: cannot draw the overlay", job.input.display()))?;
        hipfrac_dicom::atomic::write_atomic(&overlay_path, &picture.to_png())?;
    }
    hipfrac_dicom::atomic::write_atomic(&json_path, &json)?;
    Ok(record)
}

pub fn run(args: PredictArgs) -> Result<Outcome> {
    let predictor = crate::load_model(&args.model, args.device)?;
    let found = inputs::expand_with(&args.inputs, false, is_image)?;
    if found.jobs.is_empty() {
        bail!("no DICOM or PNG files found in the inputs");
    }
    let summary_path = args.out.join("summary.csv");
    if summary_path.exists() && !args.overwrite {
        bail!("{} exists (an earlier run); pass --overwrite to replace its outputs", summary_path.display());
    }
    eprintln!(
        "predicting {} image(s) with {} (model {}, {} px, {:?}; thresholds: {})",
        found.jobs.len(),
        args.model.display(),
        predictor.model_hash,
        predictor.input_size(),
        predictor.device,
        predictor.points.chosen_on
    );
    let bar = progress::bar(found.jobs.len() as u64, "predicting");
    let mut rows = Vec::new();
    // Files are read a few batches at a time, in parallel; the predictor batches the network.
    for chunk in found.jobs.chunks(predictor.batch_size() * 4) {
        let read: Vec<Result<Radiograph>> = chunk.par_iter().map(|job| Ok(hipfrac_dicom::read_radiograph(&job.input)?)).collect();
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
                Some(error) => Err(error),
                None => {
                    let (prediction, image) = predictions.next().expect("one prediction per image read");
                    prediction
                        .with_context(|| job.input.display().to_string())
                        .and_then(|prediction| write_outputs(&args, job, image, &prediction, &predictor))
                }
            };
            if let Err(error) = &outcome {
                bar.suspend(|| eprintln!("failed: {}", error_chain(error.as_ref())));
            }
            rows.push(SummaryRow::new(&job.input, &outcome));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in &rows {
        writer.serialize(row)?;
    }
    hipfrac_dicom::atomic::write_atomic(&summary_path, &writer.into_inner()?)?;
    let failed = rows.iter().filter(|r| !r.error.is_empty()).count();
    let fractures = rows.iter().filter(|r| r.error.is_empty() && r.verdict != Label::NoFracture.code()).count();
    eprintln!("predicted {}, failed {failed}; {fractures} with a fracture verdict → {}", rows.len() - failed, args.out.display());
    eprintln!("{NOTICE}");
    Ok(if failed > 0 { Outcome::SomeFailed } else { Outcome::Success })
}
