//! Predictions for every image of a manifest, beside its truth: what calibration and the
//! evaluation report are computed from.

use crate::{InferError, Prediction, Predictor};
use hipfrac_core::{BBox, FractureClass, Label, Radiograph};
use hipfrac_data::{manifest, voc, LabelMap};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// One manifest image: its truth and the model's prediction.
#[derive(Debug, Clone)]
pub struct Case {
    /// The manifest's image path (relative to the manifest).
    pub image: String,
    pub path: PathBuf,
    pub patient: String,
    pub site: String,
    pub truth: Label,
    /// True boxes in the image's pixels.
    pub truth_boxes: Vec<(FractureClass, BBox)>,
    pub prediction: Prediction,
    /// The image carries the phantom's mark (DICOM Image Comments or PNG Comment).
    pub simulated: bool,
}

fn image_error(path: &Path, message: impl ToString) -> InferError {
    InferError::Image { path: path.to_path_buf(), message: message.to_string() }
}

/// Reads the manifest at `path`, predicts every image with `predictor` and pairs the answers
/// with the truth. Any unreadable image or annotation stops it with an error naming the file
/// (an evaluation with silently missing cases would mislead). `progress(done, total)` is called
/// after each batch.
pub fn predict_manifest(predictor: &Predictor, path: &Path, progress: &mut dyn FnMut(usize, usize)) -> Result<Vec<Case>, InferError> {
    let rows = manifest::read(path).map_err(|e| image_error(path, e))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let total = rows.len();
    let mut cases = Vec::with_capacity(total);
    // Reading and letterboxing run in parallel a few batches at a time; the network runs
    // batch by batch.
    let preprocess = predictor.preprocess;
    for chunk in rows.chunks(predictor.batch_size() * 4) {
        let loaded: Vec<(Radiograph, crate::Letterbox, Vec<(FractureClass, BBox)>)> = chunk
            .par_iter()
            .map(|row| {
                let image_path = base.join(&row.image);
                let image = hipfrac_dicom::read_radiograph(&image_path).map_err(|e| image_error(&image_path, e))?;
                let prepared = hipfrac_train::data::letterbox(&image, &preprocess).map_err(|e| image_error(&image_path, e))?;
                let mut boxes = Vec::new();
                if !row.annotation.is_empty() {
                    let annotation_path = base.join(&row.annotation);
                    let annotation = voc::read(&annotation_path, &LabelMap::default()).map_err(|e| image_error(&annotation_path, e))?.annotation;
                    boxes.extend(annotation.objects.iter().filter_map(|o| o.label.fracture().map(|c| (c, o.bbox))));
                }
                Ok((image, prepared, boxes))
            })
            .collect::<Result<_, InferError>>()?;
        for (rows, items) in chunk.chunks(predictor.batch_size()).zip(loaded.chunks(predictor.batch_size())) {
            let prepared: Vec<&crate::Letterbox> = items.iter().map(|(_, p, _)| p).collect();
            let found = predictor.detect(&prepared);
            for ((row, (image, _, boxes)), detections) in rows.iter().zip(items).zip(found) {
                cases.push(Case {
                    image: row.image.clone(),
                    path: base.join(&row.image),
                    patient: row.patient.clone(),
                    site: row.site.clone(),
                    truth: row.label,
                    truth_boxes: boxes.clone(),
                    prediction: predictor.conclude(image, detections),
                    simulated: image.meta.is_simulated(),
                });
            }
            progress(cases.len(), total);
        }
    }
    Ok(cases)
}
