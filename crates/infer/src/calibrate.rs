//! Choosing the operating points on a validation manifest and storing them with the model.

use crate::cases::predict_manifest;
use crate::{InferError, Predictor};
use hipfrac_core::verdict::{choose, OperatingPoints};
use hipfrac_core::Label;
use std::path::{Path, PathBuf};

/// Where a model's operating points live.
pub fn points_path(model_dir: &Path) -> PathBuf {
    model_dir.join("operating_points.json")
}

/// Predicts every image of `manifest`, chooses each class's *suspicious* point (sensitivity ≥
/// `sensitivity`) and *fracture* point (specificity ≥ `specificity`) and the VF-priority
/// threshold (see `hipfrac_core::verdict::choose`), and writes them beside the model
/// atomically. The predictor keeps its old points; load the model again to use the new ones.
pub fn calibrate(predictor: &Predictor, manifest: &Path, sensitivity: f64, specificity: f64, progress: &mut dyn FnMut(usize, usize)) -> Result<OperatingPoints, InferError> {
    let cases = predict_manifest(predictor, manifest, progress)?;
    if cases.is_empty() {
        return Err(InferError::EmptyManifest(manifest.to_path_buf()));
    }
    let images: Vec<([f32; 4], Label)> = cases.iter().map(|c| (c.prediction.class_scores, c.truth)).collect();
    let points = choose(&images, sensitivity, specificity, format!("{} ({} images)", manifest.display(), cases.len()));
    let path = points_path(&predictor.dir);
    let json = serde_json::to_vec_pretty(&points).expect("operating points serialise");
    hipfrac_dicom::atomic::write_atomic(&path, &json)?;
    Ok(points)
}
