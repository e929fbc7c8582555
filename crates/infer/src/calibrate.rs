//! Choosing the operating points on a validation manifest and storing them with the model.

use crate::cases::predict_manifest;
use crate::{InferError, ModelError, ModelFault, Predictor};
use hipfrac_core::verdict::{choose, rates, refit, OperatingPoints, Refitted};
use hipfrac_core::Label;
use std::path::{Path, PathBuf};

/// Where a model's operating points live.
pub fn points_path(model_dir: &Path) -> PathBuf {
    model_dir.join("operating_points.json")
}

/// Reads an `operating_points.json` (or a site's `operating_points.<site>.json`) as
/// [`calibrate`] and [`refit_site`] write it: JSON for [`OperatingPoints`] whose thresholds
/// pass [`OperatingPoints::validate`]. Anything else is an error naming the file.
pub fn read_points(path: &Path) -> Result<OperatingPoints, ModelError> {
    let points: OperatingPoints =
        serde_json::from_slice(&crate::read(path)?).map_err(|e| ModelError::new(path, ModelFault::Json(e)))?;
    points
        .validate()
        .map_err(|e| ModelError::new(path, ModelFault::Thresholds(e)))?;
    Ok(points)
}

/// Each assessed image's class scores (DF, VF, SF, UF) and its truth.
type Scored = Vec<([f32; 4], Label)>;

/// The (class scores, truth) of every image of `manifest` the predictor assessed. Images the
/// header check refuses have no scores and are left out (a score of 0 would drag every
/// threshold down); when none is left, that is the error.
fn assessed(
    predictor: &Predictor,
    manifest: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Scored, String), InferError> {
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

/// Where a two-stage model's hip threshold lives (beside its localiser).
pub fn hip_threshold_path(model_dir: &Path) -> PathBuf {
    model_dir.join("localiser").join("hip_threshold.json")
}

/// The localiser score a box needs to count as a hip, chosen on validation films
/// ([`choose_hip_threshold`]), and what it gave there.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HipThreshold {
    pub hip_min_score: f32,
    /// The share of validation hip films it was to keep assessable.
    pub target_assessed: f64,
    /// Validation hip films, and how many reach the threshold.
    pub hips: usize,
    pub hips_assessed: usize,
    /// Validation out-of-scope films, and how many stay under it (refused).
    pub out_of_scope: usize,
    pub out_of_scope_refused: usize,
    pub chosen_on: String,
}

/// Chooses the hip threshold from the localiser's best score on validation hip films
/// (`hips`) and on films that must be refused (`out_of_scope`, may be empty):
/// * `keep` = the highest threshold that keeps at least `target` of the hip films assessable
///   (the ⌈target·H⌉-th highest hip score);
/// * with out-of-scope films scoring below `keep`: halfway between `keep` and the highest of
///   them (the widest margin on both sides that refuses every out-of-scope film `keep`
///   refuses); without any, the lower of `keep` and [`crate::HIP_MIN_SCORE`] (no evidence to
///   refuse more);
/// * clamped to [0.05, 0.95].
pub fn choose_hip_threshold(hips: &[f32], out_of_scope: &[f32], target: f64, chosen_on: String) -> HipThreshold {
    let mut sorted: Vec<f32> = hips.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let keep = if sorted.is_empty() {
        crate::HIP_MIN_SCORE
    } else {
        let k = ((target * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[k - 1]
    };
    // The strongest out-of-scope film the kept threshold refuses; with none, no evidence to
    // move above the default.
    let below = out_of_scope.iter().copied().filter(|&o| o < keep).reduce(f32::max);
    let threshold = match below {
        Some(below) => (keep + below) / 2.0,
        None => keep.min(crate::HIP_MIN_SCORE),
    }
    .clamp(0.05, 0.95);
    HipThreshold {
        hip_min_score: threshold,
        target_assessed: target,
        hips: hips.len(),
        hips_assessed: hips.iter().filter(|&&h| h >= threshold).count(),
        out_of_scope: out_of_scope.len(),
        out_of_scope_refused: out_of_scope.iter().filter(|&&o| o < threshold).count(),
        chosen_on,
    }
}

/// The localiser's best score on every image of `manifest` the header check lets through.
fn hip_scores(
    predictor: &Predictor,
    manifest: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<f32>, InferError> {
    let rows = hipfrac_data::manifest::read(manifest)?;
    let base = manifest.parent().unwrap_or(Path::new("."));
    let mut scores = Vec::with_capacity(rows.len());
    for (k, chunk) in rows.chunks(predictor.batch_size() * 4).enumerate() {
        use rayon::prelude::*;
        let images: Vec<hipfrac_core::Radiograph> = chunk
            .par_iter()
            .map(|row| {
                let path = base.join(&row.image);
                hipfrac_dicom::read_radiograph(&path).map_err(|e| InferError::from(e).at(&path))
            })
            .collect::<Result<_, _>>()?;
        for (row, found) in chunk.iter().zip(predictor.best_hip_scores(&images)) {
            if let Some(score) = found.map_err(|e| e.at(&base.join(&row.image)))? {
                scores.push(score);
            }
        }
        progress(
            (k * predictor.batch_size() * 4 + chunk.len()).min(rows.len()),
            rows.len(),
        );
    }
    Ok(scores)
}

/// For a two-stage model: the localiser's best score on the validation hip films of
/// `manifest` (every row: a validation manifest lists AP hip films) and on the films of the
/// `out_of_scope` manifests, the threshold [`choose_hip_threshold`] picks, written to
/// [`hip_threshold_path`] atomically. `None` for a single-stage model.
pub fn calibrate_hips(
    predictor: &Predictor,
    manifest: &Path,
    out_of_scope: &[PathBuf],
    target: f64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Option<HipThreshold>, InferError> {
    if predictor.localiser.is_none() {
        return Ok(None);
    }
    let hips = hip_scores(predictor, manifest, progress)?;
    let mut others = Vec::new();
    for m in out_of_scope {
        others.extend(hip_scores(predictor, m, progress)?);
    }
    let names: Vec<String> = std::iter::once(manifest)
        .chain(out_of_scope.iter().map(|p| p.as_path()))
        .map(|p| p.display().to_string())
        .collect();
    let chosen = choose_hip_threshold(
        &hips,
        &others,
        target,
        format!(
            "{} ({} hip films, {} out of scope)",
            names.join(", "),
            hips.len(),
            others.len()
        ),
    );
    let json = serde_json::to_vec_pretty(&chosen).expect("the threshold serialises");
    hipfrac_dicom::atomic::write_atomic(&hip_threshold_path(&predictor.dir), &json)?;
    Ok(Some(chosen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hip_threshold_keeps_the_target_share_and_leaves_a_margin_to_the_negatives() {
        let hips: Vec<f32> = (0..50).map(|k| 0.40 + 0.01 * k as f32).collect();
        // 98 % of 50 = 49 kept: the 49th highest is 0.41; the strongest negative below is 0.2.
        let chosen = choose_hip_threshold(&hips, &[0.05, 0.2, 0.6], 0.98, "test".into());
        assert!((chosen.hip_min_score - 0.305).abs() < 1e-6, "{chosen:?}");
        assert_eq!((chosen.hips_assessed, chosen.out_of_scope_refused), (50, 2));
        // Without negatives: never above the default.
        let alone = choose_hip_threshold(&hips, &[], 0.98, "test".into());
        assert!((alone.hip_min_score - crate::HIP_MIN_SCORE).abs() < 1e-6);
        let weak: Vec<f32> = hips.iter().map(|h| h - 0.35).collect();
        let low = choose_hip_threshold(&weak, &[], 0.98, "test".into());
        assert!((low.hip_min_score - 0.06).abs() < 1e-6, "{low:?}");
    }
}
