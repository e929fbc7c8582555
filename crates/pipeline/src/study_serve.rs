//! `hipfrac study serve`: the reading workstation, with the AI overlay predicted once per case
//! through the one prediction path.

use crate::Outcome;
use anyhow::{Context, Result};
use hipfrac_core::DeviceSpec;
use hipfrac_core::Radiograph;
use hipfrac_study::server::{AiModel, App};
use std::net::SocketAddr;
use std::path::PathBuf;

/// What `hipfrac study serve` is asked to do.
#[derive(Debug, Clone)]
pub struct StudyServeOptions {
    /// The study file (TOML).
    pub study: PathBuf,
    pub addr: SocketAddr,
    /// Listen on an address other machines can reach without TLS.
    pub insecure: bool,
    /// Certificate chain and private key (PEM) to serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Device of the AI overlay's predictions.
    pub device: DeviceSpec,
}

/// Runs the reading workstation of a study until stopped.
pub fn run(args: StudyServeOptions) -> Result<Outcome> {
    let tls = args.tls.as_ref().map(|(cert, key)| (cert.as_path(), key.as_path()));
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
