//! `hipfrac listen`: the DICOM node (hipfrac-node) around the one prediction path,
//! `Predictor::predict_batch`.

use crate::cli::ListenArgs;
use crate::Outcome;
use anyhow::{Context, Result};
use hipfrac_core::Radiograph;
use hipfrac_node::{Config, Destination, Model, PredictError, Work};
use std::time::Duration;

pub fn run(args: ListenArgs) -> Result<Outcome> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut predictor = crate::load_model(&args.model, args.device)?;
    predictor.acceptance = hipfrac_core::Acceptance::with_body_parts(&args.accept_body_parts);
    if let Some(site) = &args.site {
        predictor.use_site(site)?;
    }
    let (dest_ae, dest_address) = args.dest.clone();
    let config = Config {
        addr: args.addr,
        ae_title: args.ae_title.clone(),
        allow: args.allow.clone(),
        spool: args.spool.clone(),
        spool_limit: args.spool_limit_mb << 20,
        max_instance: args.max_instance_mb << 20,
        max_associations: args.max_associations as usize,
        destination: Destination {
            ae_title: dest_ae,
            address: dest_address,
            calling: args.ae_title.clone(),
            max_backoff: Duration::from_secs(args.max_backoff_s),
        },
        work: Work {
            outputs: args.outputs.iter().map(|k| k.kind()).collect(),
            overlay_size: args.overlay_size,
        },
    };
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
    let (ae, dest) = (args.ae_title.clone(), format!("{}@{}", args.dest.0, args.dest.1));
    hipfrac_node::run(config, model, stop, |bound| {
        eprintln!(
            "listening as {ae} on {bound} (spool {}), results to {dest}; Ctrl-C stops",
            args.spool.display()
        );
    })
    .context("cannot run the DICOM node")?;
    eprintln!(
        "stopped; anything not yet delivered stays in {} for the next start",
        args.spool.display()
    );
    Ok(Outcome::Success)
}
