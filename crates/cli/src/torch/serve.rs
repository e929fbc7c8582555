//! `hipfrac study serve`: the reading workstation, with the AI overlay predicted once per case
//! through the one prediction path.

use crate::cli::StudyServeArgs;
use crate::Outcome;
use anyhow::{Context, Result};
use hipfrac_core::Radiograph;
use hipfrac_study::server::{AiModel, App};

pub fn run(args: StudyServeArgs) -> Result<Outcome> {
    let tls = args.tls_cert.as_deref().zip(args.tls_key.as_deref());
    if !args.addr.ip().is_loopback() && !args.insecure && tls.is_none() {
        anyhow::bail!(
            "--addr {}: other machines could reach the workstation over plain HTTP; give it --tls-cert/--tls-key, serve it through a TLS reverse proxy on 127.0.0.1 (docs/reader-study.md), or pass --insecure to accept that",
            args.addr
        );
    }
    let config = hipfrac_study::StudyConfig::load(&args.study)?;
    let predictor = match (config.phases.iter().any(|p| p.ai), &config.model) {
        (true, Some(dir)) => Some(crate::load_model(dir, args.device)?),
        _ => None,
    };
    let app = match &predictor {
        Some(predictor) => {
            eprintln!(
                "predicting every case once for the AI overlay (model {}, {:?})…",
                predictor.dir.display(),
                predictor.device
            );
            let mut predict = |images: &[Radiograph]| {
                predictor
                    .predict_batch(images)
                    .into_iter()
                    .map(|r| r.map_err(Into::into))
                    .collect()
            };
            App::new(
                config,
                Some(AiModel {
                    points: &predictor.points,
                    predict: &mut predict,
                }),
            )
        }
        None => App::new(config, None),
    }
    .context("cannot start the study")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the server runtime")?;
    let served = match tls {
        Some((cert, key)) => runtime.block_on(hipfrac_study::server::serve_tls(app, args.addr, cert, key)),
        None => runtime.block_on(hipfrac_study::server::serve(app, args.addr)),
    };
    served.with_context(|| format!("cannot serve on {}", args.addr))?;
    Ok(Outcome::Success)
}
