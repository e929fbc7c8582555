//! `hipfrac serve`: the HTTP inference service (hipfrac-service) around the one prediction
//! path, `Predictor::predict_batch`, owned by the service's batching thread.

use crate::{ModelChoice, Outcome};
use anyhow::{bail, Context, Result};
use hipfrac_core::Radiograph;
use hipfrac_service::batcher::PredictError;
use hipfrac_service::{Config, ModelInfo};

/// Serves `config` until a signal stops it; an address other machines can reach needs
/// `insecure` (plain HTTP).
pub fn run(choice: &ModelChoice, config: Config, insecure: bool) -> Result<Outcome> {
    if !config.addr.ip().is_loopback() && !insecure {
        bail!(
            "--addr {}: other machines could reach the service over plain HTTP (tokens and images in clear); serve it through a TLS reverse proxy on 127.0.0.1, or pass --insecure to accept that",
            config.addr
        );
    }
    crate::log_to_stderr();
    let predictor = crate::open_predictor(choice)?;
    let description = serde_json::json!({
        "hash": predictor.model_hash,
        "dir": predictor.dir.display().to_string(),
        "preset": predictor.preset().map(|p| p.name()),
        "input_size": predictor.input_size(),
        "device": format!("{:?}", predictor.device),
        "operating_points": predictor.points,
        "card": predictor.card,
        "caveats": predictor.caveats(),
        "hipfrac_version": env!("CARGO_PKG_VERSION"),
        "notice": hipfrac_core::NOTICE,
    });
    let info = ModelInfo {
        record: crate::predict::model_record(&predictor),
        points: predictor.points.clone(),
        description,
    };
    let predict = Box::new(
        move |images: &[Radiograph]| -> Vec<Result<hipfrac_core::Prediction, PredictError>> {
            predictor
                .predict_batch(images)
                .into_iter()
                .map(|r| r.map_err(Into::into))
                .collect()
        },
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the server runtime")?;
    let auth = if config.tokens.is_some() {
        "bearer tokens"
    } else {
        "NO authentication (--no-auth)"
    };
    runtime.block_on(hipfrac_service::serve(config, predict, info, |bound| {
        eprintln!("listening on http://{bound} ({auth}); POST /v1/predict, GET /v1/model /healthz /readyz /metrics; Ctrl-C stops");
    }))?;
    eprintln!("stopped: every request in flight was answered");
    Ok(Outcome::Success)
}
