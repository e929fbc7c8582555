//! Choosing the operating points on a validation manifest and storing them with the model.

use crate::cases::predict_manifest;
use crate::{InferError, Predictor};
use hipfrac_core::verdict::{choose, rates, refit, OperatingPoints, Refitted};
use hipfrac_core::Label;
use std::path::{Path, PathBuf};

/// Where a model's operating points live.
pub fn points_path(model_dir: &Path) -> PathBuf {
    model_dir.join("operating_points.json")
}

/// The (class scores, truth) of every image of `manifest` the predictor assessed. Images the
/// header check refuses have no scores and are left out (a score of 0 would drag every
/// threshold down); when none is left, that is the error.
fn assessed(
    predictor: &Predictor,
    manifest: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<([f32; 4], Label)>, String), InferError> {
    let cases = predict_manifest(predictor, manifest, progress)?;
    if cases.is_empty() {
        return Err(InferError::EmptyManifest(manifest.to_path_buf()));
    }
    let images: Vec<([f32; 4], Label)> = cases
        .iter()
        .filter(|c| c.prediction.verdict().is_some())
        .map(|c| (c.prediction.class_scores, c.truth))
        .collect();
    if images.is_empty() {
        let reason = cases
            .iter()
            .find_map(|c| c.prediction.not_assessable())
            .map(|n| n.reason.clone())
            .unwrap_or_default();
        return Err(InferError::NoneAssessable {
            manifest: manifest.to_path_buf(),
            images: cases.len(),
            reason,
        });
    }
    let left_out = cases.len() - images.len();
    let what = if left_out > 0 {
        format!("{} images, {left_out} not assessable left out", images.len())
    } else {
        format!("{} images", images.len())
    };
    Ok((images, what))
}

/// Predicts every image of `manifest`, chooses each class's *suspicious* point (sensitivity ≥
/// `sensitivity`) and *fracture* point (specificity ≥ `specificity`) and the VF-priority
/// threshold (see `hipfrac_core::verdict::choose`), and writes them beside the model
/// atomically. The predictor keeps its old points; load the model again to use the new ones.
pub fn calibrate(
    predictor: &Predictor,
    manifest: &Path,
    sensitivity: f64,
    specificity: f64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<OperatingPoints, InferError> {
    let (images, what) = assessed(predictor, manifest, progress)?;
    let points = choose(
        &images,
        sensitivity,
        specificity,
        format!("{} ({what})", manifest.display()),
    );
    let path = points_path(&predictor.dir);
    let json = serde_json::to_vec_pretty(&points).expect("operating points serialise");
    hipfrac_dicom::atomic::write_atomic(&path, &json)?;
    Ok(points)
}

/// Where a site's re-fitted operating points live.
pub fn site_points_path(model_dir: &Path, site: &str) -> PathBuf {
    model_dir.join(format!("operating_points.{site}.json"))
}

/// A site's thresholds and what changed (see [`refit_site`]).
#[derive(Debug, Clone)]
pub struct SiteRefit {
    pub before: OperatingPoints,
    pub after: OperatingPoints,
    pub classes: Vec<Refitted>,
    /// Per class (sensitivity, specificity) on the sample, under the old and the new points.
    pub rates_before: [(f64, f64); 4],
    pub rates_after: [(f64, f64); 4],
    pub images: usize,
    pub path: PathBuf,
}

/// Images of a class (positive and negative) a site sample needs before that class's
/// thresholds are re-fitted on it.
pub const SITE_MIN_IMAGES: usize = 5;

/// Predicts a small labelled sample of a new site (say 50 radiographs), re-fits the
/// predictor's operating points on it (`hipfrac_core::verdict::refit`: classes the sample has
/// too few images of keep theirs) and writes them as `operating_points.<site>.json` beside the
/// model; the model's own points are not touched.
pub fn refit_site(
    predictor: &Predictor,
    manifest: &Path,
    site: &str,
    sensitivity: f64,
    specificity: f64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SiteRefit, InferError> {
    let (images, what) = assessed(predictor, manifest, progress)?;
    let before = predictor.points.clone();
    let chosen_on = format!(
        "site {site}: {} ({what}), from {}",
        manifest.display(),
        before.chosen_on
    );
    let (after, classes) = refit(&before, &images, sensitivity, specificity, SITE_MIN_IMAGES, chosen_on);
    let path = site_points_path(&predictor.dir, site);
    let json = serde_json::to_vec_pretty(&after).expect("operating points serialise");
    hipfrac_dicom::atomic::write_atomic(&path, &json)?;
    Ok(SiteRefit {
        rates_before: rates(&images, &before),
        rates_after: rates(&images, &after),
        before,
        after,
        classes,
        images: images.len(),
        path,
    })
}
