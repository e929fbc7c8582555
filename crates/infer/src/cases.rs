//! Predictions for every image of a manifest, beside its truth: what calibration and the
//! evaluation report are computed from.

use crate::{InferError, Predictor};
use hipfrac_core::{BBox, Case, FractureClass, Radiograph};
use hipfrac_data::{manifest, voc, LabelMap};
use rayon::prelude::*;
use std::path::Path;

/// Reads the manifest at `path`, predicts every image with `predictor` and pairs the answers
/// with the truth. Any unreadable image or annotation stops it with an error naming the file
/// (an evaluation with silently missing cases would mislead); an image that reads but shows
/// nothing (a window that is not a usable number, a constant image) is a case answered not
/// assessable, with the reason, like one the header check refuses. `progress(done, total)` is
/// called after each group of images.
pub fn predict_manifest(
    predictor: &Predictor,
    path: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Case>, InferError> {
    let rows = manifest::read(path)?;
    // An image listed twice would count twice.
    let mut seen = std::collections::HashMap::new();
    for (k, row) in rows.iter().enumerate() {
        if let Some(first) = seen.insert(row.image.as_str(), k + 2) {
            return Err(InferError::Manifest {
                path: path.to_path_buf(),
                row: k + 2,
                problem: format!("{} is listed again (first on row {first})", row.image),
            });
        }
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let total = rows.len();
    let mut cases = Vec::with_capacity(total);
    // Files are read a few batches at a time, in parallel; the predictor batches the network.
    for chunk in rows.chunks(predictor.batch_size() * 4) {
        // Each image with its typed boxes and its boxes of unknown type.
        type Truth = (Vec<(FractureClass, BBox)>, Vec<BBox>);
        let loaded: Vec<(Radiograph, Truth)> = chunk
            .par_iter()
            .map(|row| {
                let image = hipfrac_dicom::read_radiograph(&base.join(&row.image))?;
                let (mut boxes, mut untyped) = (Vec::new(), Vec::new());
                if !row.annotation.is_empty() {
                    let annotation = voc::read(&base.join(&row.annotation), &LabelMap::default())?.annotation;
                    // The row's label and the annotation's boxes must tell the same truth.
                    if annotation.image_label() != row.label {
                        let number = rows.iter().position(|r| std::ptr::eq(r, row)).map_or(0, |k| k + 2);
                        let problem = format!(
                            "{} is labelled {} but its annotation {} says {}",
                            row.image,
                            row.label.code(),
                            row.annotation,
                            annotation.image_label().code()
                        );
                        return Err(InferError::Manifest {
                            path: path.to_path_buf(),
                            row: number,
                            problem,
                        });
                    }
                    boxes.extend(
                        annotation
                            .objects
                            .iter()
                            .filter_map(|o| o.label.fracture().map(|c| (c, o.bbox))),
                    );
                    untyped.extend(
                        annotation
                            .objects
                            .iter()
                            .filter(|o| o.label == hipfrac_core::Label::UntypedFracture)
                            .map(|o| o.bbox),
                    );
                }
                Ok((image, (boxes, untyped)))
            })
            .collect::<Result<_, InferError>>()?;
        let (images, truth): (Vec<Radiograph>, Vec<_>) = loaded.into_iter().unzip();
        let predictions = predictor.predict_batch(&images);
        for (((row, image), (truth_boxes, untyped_boxes)), prediction) in
            chunk.iter().zip(&images).zip(truth).zip(predictions)
        {
            let path = base.join(&row.image);
            let prediction = prediction.map_err(|e| e.at(&path))?;
            cases.push(Case {
                image: row.image.clone(),
                path,
                patient: row.patient.clone(),
                site: row.site.clone(),
                truth: row.label,
                truth_boxes,
                untyped_boxes,
                prediction,
                simulated: image.meta.is_simulated(),
            });
        }
        progress(cases.len(), total);
    }
    Ok(cases)
}
