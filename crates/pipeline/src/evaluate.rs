//! `hipfrac evaluate` and `hipfrac calibrate`: predictions on labelled manifests through the
//! one prediction path; the measuring and the report are `hipfrac_report`'s.

use crate::{progress, ModelChoice, Outcome};
use anyhow::{bail, Result};
use hipfrac_infer::cases::predict_manifest;
use hipfrac_infer::Predictor;
use hipfrac_report::evaluation::{
    measure, one_screen, thresholds_table, write_report, ModelInfo, ReportContext, Section,
};
use std::path::{Path, PathBuf};

/// What `hipfrac evaluate` is asked to do.
#[derive(Debug, Clone)]
pub struct EvaluateOptions {
    pub model: ModelChoice,
    /// Manifests, each as PATH or NAME=PATH.
    pub data: Vec<String>,
    /// Output folder.
    pub out: PathBuf,
    /// Replace an earlier report.
    pub overwrite: bool,
}

/// What `hipfrac calibrate` is asked to do.
#[derive(Debug, Clone)]
pub struct CalibrateOptions {
    /// The model (its own operating points are not read: they are being chosen).
    pub model: ModelChoice,
    /// Validation manifest.
    pub data: PathBuf,
    /// Target sensitivity of the "suspicious" point.
    pub sensitivity: f64,
    /// Target specificity of the "fracture" point.
    pub specificity: f64,
    /// Replace an existing operating_points.json (or the site's).
    pub overwrite: bool,
    /// Manifests of films that must be refused as not a hip.
    pub out_of_scope: Vec<PathBuf>,
    /// Share of the validation hip films the hip threshold must keep assessable.
    pub hip_assessed: f64,
    /// Re-fit the points for this site instead (operating_points.SITE.json).
    pub site: Option<String>,
}

/// What the report says about `predictor`.
pub fn model_info(predictor: &Predictor) -> ModelInfo {
    ModelInfo {
        dir: predictor.dir.clone(),
        hash: predictor.model_hash.clone(),
        input_size: predictor.input_size(),
        preset: predictor.preset(),
        points: predictor.points.clone(),
    }
}

/// A progress callback drawing a bar named `what`, and the bar (to clear when done).
fn bar_for(what: &str) -> (indicatif::ProgressBar, impl FnMut(usize, usize)) {
    let bar = progress::bar(0, what);
    let handle = bar.clone();
    (bar, move |done: usize, total: usize| {
        handle.set_length(total as u64);
        handle.set_position(done as u64);
    })
}

/// Runs the model on each `(name, manifest)` and measures it.
pub fn run_sections(predictor: &Predictor, data: &[(String, PathBuf)]) -> Result<Vec<Section>> {
    let mut sections = Vec::new();
    for (name, path) in data {
        let (bar, mut progress) = bar_for(&format!("evaluating {name}"));
        let cases = predict_manifest(predictor, path, &mut progress)?;
        bar.finish_and_clear();
        if cases.is_empty() {
            bail!("{}: the manifest lists no images", path.display());
        }
        sections.push(measure(name, path, cases));
    }
    Ok(sections)
}

/// `NAME=PATH` or `PATH` (named by the file's stem).
fn parse_data(spec: &str) -> (String, PathBuf) {
    match spec.split_once('=') {
        Some((name, path)) if !name.is_empty() && !name.contains('/') => (name.to_string(), PathBuf::from(path)),
        _ => {
            let path = PathBuf::from(spec);
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| spec.to_string());
            (name, path)
        }
    }
}

/// Evaluates the model on each manifest and writes the report.
pub fn run(args: EvaluateOptions) -> Result<Outcome> {
    let report = args.out.join("report.html");
    if report.exists() && !args.overwrite {
        bail!(
            "{} exists (an earlier report); pass --overwrite to replace it",
            report.display()
        );
    }
    let data: Vec<(String, PathBuf)> = args.data.iter().map(|s| parse_data(s)).collect();
    if let Some((_, path)) = data.iter().find(|(_, path)| !path.is_file()) {
        bail!("{}: no such manifest", path.display());
    }
    let predictor = crate::open_predictor(&args.model)?;
    let sections = run_sections(&predictor, &data)?;
    write_report(&args.out, &model_info(&predictor), &sections, &ReportContext::default())?;
    for s in &sections {
        eprintln!("{}", one_screen(s));
    }
    eprintln!("report: {}", report.display());
    Ok(Outcome::Success)
}

/// For a two-stage model: chooses the hip threshold between the localiser's scores on the
/// validation hips and on the out-of-scope films, writes it beside the localiser, says what
/// it gives there, and makes `predictor` use it. Nothing for a single-stage model.
pub fn choose_hip_threshold(
    predictor: &mut Predictor,
    manifest: &Path,
    out_of_scope: &[PathBuf],
    target: f64,
) -> Result<()> {
    if predictor.localiser.is_none() {
        if !out_of_scope.is_empty() {
            eprintln!("note: --out-of-scope is for two-stage models (a hip localiser); this model has none");
        }
        return Ok(());
    }
    let (bar, mut progress) = bar_for("hip threshold");
    let chosen = hipfrac_infer::calibrate::calibrate_hips(predictor, manifest, out_of_scope, target, &mut progress)?;
    bar.finish_and_clear();
    if let Some(chosen) = chosen {
        eprintln!(
            "hip threshold {:.3}: {} of {} validation hip films assessed (target {:.0} %), {} of {} out-of-scope films refused",
            chosen.hip_min_score,
            chosen.hips_assessed,
            chosen.hips,
            100.0 * chosen.target_assessed,
            chosen.out_of_scope_refused,
            chosen.out_of_scope
        );
        predictor.hip_min_score = chosen.hip_min_score;
    }
    Ok(())
}

/// Chooses the operating points on `manifest` (with a progress bar) and writes them beside
/// the model; says what was chosen.
pub fn choose_points(predictor: &Predictor, manifest: &Path, sensitivity: f64, specificity: f64) -> Result<()> {
    let (bar, mut progress) = bar_for("calibrating");
    let points = hipfrac_infer::calibrate::calibrate(predictor, manifest, sensitivity, specificity, &mut progress)?;
    bar.finish_and_clear();
    let (intro, table) = thresholds_table(&points);
    eprint!("{intro}\n\n{}", table.markdown());
    Ok(())
}

/// Re-fits the operating points for `site` on its sample and prints what changed: each
/// class's thresholds and its sensitivity/specificity on the sample, before → after.
fn refit_site(predictor: &Predictor, manifest: &Path, site: &str, sensitivity: f64, specificity: f64) -> Result<()> {
    let (bar, mut progress) = bar_for("re-fitting");
    let refit =
        hipfrac_infer::calibrate::refit_site(predictor, manifest, site, sensitivity, specificity, &mut progress)?;
    bar.finish_and_clear();
    let f = |v: f64| if v.is_nan() { "-".to_string() } else { format!("{v:.2}") };
    eprintln!(
        "site {site}: {} images; thresholds and the sample's Se/Sp at the verdict, before → after",
        refit.images
    );
    eprintln!("class  pos  neg  suspicious     fracture       Se           Sp           ");
    for (k, c) in refit.classes.iter().enumerate() {
        let (b, a) = (refit.before.get(c.class), refit.after.get(c.class));
        let (rb, ra) = (refit.rates_before[k], refit.rates_after[k]);
        eprintln!(
            "{:<5} {:>4} {:>4}  {:.3} → {:.3}  {:.3} → {:.3}  {:>4} → {:<4}  {:>4} → {:<4}  {}",
            c.class.code(),
            c.positives,
            c.negatives,
            b.suspicious,
            a.suspicious,
            b.fracture,
            a.fracture,
            f(rb.0),
            f(ra.0),
            f(rb.1),
            f(ra.1),
            if c.refitted {
                "re-fitted"
            } else {
                "kept (too few images of it in the sample)"
            }
        );
    }
    eprintln!(
        "VF priority {:.3} → {:.3}",
        refit.before.vf_priority, refit.after.vf_priority
    );
    eprintln!("Se/Sp above are measured on the very sample the thresholds were fitted on: optimistic for the new points. Check them on other images of the site.");
    eprintln!("use them with: hipfrac predict --site {site} … (or evaluate --site {site})");
    Ok(())
}

/// Chooses the operating points (and a two-stage model's hip threshold), or re-fits them
/// for a site, and writes them beside the model.
pub fn calibrate(args: CalibrateOptions) -> Result<Outcome> {
    if !(0.0..=1.0).contains(&args.sensitivity) || !(0.0..=1.0).contains(&args.specificity) {
        bail!("--sensitivity and --specificity must lie in [0, 1]");
    }
    let existing = match &args.site {
        Some(site) => hipfrac_infer::calibrate::site_points_path(&args.model.dir, site),
        None => hipfrac_infer::calibrate::points_path(&args.model.dir),
    };
    if existing.exists() && !args.overwrite {
        bail!("{} exists; pass --overwrite to replace it", existing.display());
    }
    if !(0.0..=1.0).contains(&args.hip_assessed) {
        bail!("--hip-assessed must lie in [0, 1]");
    }
    let mut predictor = crate::open_predictor(&args.model)?;
    if args.site.is_none() {
        choose_hip_threshold(&mut predictor, &args.data, &args.out_of_scope, args.hip_assessed)?;
    } else if !args.out_of_scope.is_empty() {
        bail!("--out-of-scope chooses the model's own hip threshold; it does not go with --site");
    }
    match &args.site {
        Some(site) => refit_site(&predictor, &args.data, site, args.sensitivity, args.specificity)?,
        None => choose_points(&predictor, &args.data, args.sensitivity, args.specificity)?,
    }
    eprintln!("written: {}", existing.display());
    Ok(Outcome::Success)
}
