//! `hipfrac listen`: the DICOM node (hipfrac-node) around the one prediction path,
//! `Predictor::predict_batch`.

use crate::{ModelChoice, Outcome};
use anyhow::{Context, Result};
use hipfrac_core::Radiograph;
use hipfrac_node::{Config, Model, PredictError};

/// Runs the DICOM node with `config` until a signal stops it.
pub fn run(choice: &ModelChoice, config: Config) -> Result<Outcome> {
    crate::log_to_stderr();
    let predictor = crate::open_predictor(choice)?;
    let model = Model {
        batch: predictor.batch_size(),
        points: predictor.points.clone(),
        hash: predictor.model_hash.clone(),
        name: format!(
            "{} (weights {})",
            predictor.preset().map_or("custom", |p| p.name()),
            predictor.model_hash
        ),
        caveats: predictor.caveats(),
        acceptance: predictor.acceptance.clone(),
        record: crate::predict::model_record(&predictor),
        predict: Box::new(
            move |images: &[Radiograph]| -> Vec<Result<hipfrac_core::Prediction, PredictError>> {
                predictor
                    .predict_batch(images)
                    .into_iter()
                    .map(|r| r.map_err(Into::into))
                    .collect()
            },
        ),
    };
    let stop = crate::interrupt::stop_flag(&[libc::SIGINT, libc::SIGTERM]);
    let (ae, dest) = (config.ae_title.clone(), config.destination.name());
    let spool = config.spool.clone();
    hipfrac_node::run(config, model, stop, |bound| {
        eprintln!(
            "listening as {ae} on {bound} (spool {}), results to {dest}; Ctrl-C stops",
            spool.display()
        );
    })
    .context("cannot run the DICOM node")?;
    eprintln!(
        "stopped; anything not yet delivered stays in {} for the next start",
        spool.display()
    );
    Ok(Outcome::Success)
}
