//! The worker: pending instances, a batch at a time, through the one prediction path; their
//! DICOM results and prediction record committed to the outbox.

use crate::spool::Spool;
use hipfrac_core::{error_chain, Acceptance, OperatingPoints, Prediction, Radiograph};
use hipfrac_report::dicom_outputs::{self, DicomKind, ModelContext};
use hipfrac_report::predictions::{ModelRecord, Record};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

/// An error of the model on one image.
pub type PredictError = Box<dyn std::error::Error + Send + Sync>;
/// The one prediction path (`Predictor::predict_batch`): one result per image, in order.
pub type PredictFn = Box<dyn FnMut(&[Radiograph]) -> Vec<Result<Prediction, PredictError>> + Send>;

/// The model as the node uses it.
pub struct Model {
    pub predict: PredictFn,
    /// Images per call of `predict`.
    pub batch: usize,
    pub points: OperatingPoints,
    /// First 16 hex digits of the weights' SHA-256.
    pub hash: String,
    /// The preset and weights, as the SR's observer device names them.
    pub name: String,
    pub caveats: Vec<&'static str>,
    /// Which headers are assessed (for files whose pixels cannot be decoded).
    pub acceptance: Acceptance,
    /// How the prediction record names the model.
    pub record: ModelRecord,
}

/// Images the receiving side decoded (to check them before acknowledging), kept a short while
/// so that the worker does not decode them again. The spool stays the truth: an image not
/// found here (after a restart, or when the stash was full) is read from its file.
#[derive(Default)]
pub struct Stash(std::sync::Mutex<std::collections::HashMap<PathBuf, Radiograph>>);

impl Stash {
    /// Images kept at most (a 2140 x 1760 radiograph is 7.5 MB).
    const CAPACITY: usize = 16;

    pub fn put(&self, path: PathBuf, image: Radiograph) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() < Self::CAPACITY {
            map.insert(path, image);
        }
    }

    pub fn take(&self, path: &Path) -> Option<Radiograph> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(path)
    }
}

/// What to make of each instance.
pub struct Work {
    pub outputs: Vec<DicomKind>,
    pub overlay_size: u32,
}

/// Predicts pending instances until `stop` is raised (finishing the batch in hand). Woken by
/// `received`; looks at the spool every second anyway (instances left by an earlier run).
pub fn run(spool: &Spool, stash: &Stash, model: &mut Model, work: &Work, received: &Receiver<()>, ready: &Sender<()>, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let pending = spool.pending();
        if pending.is_empty() {
            let _ = received.recv_timeout(Duration::from_millis(500));
            continue;
        }
        for batch in pending.chunks(model.batch.max(1)) {
            predict_batch(spool, stash, model, work, batch);
            let _ = ready.send(());
            if stop.load(Ordering::SeqCst) {
                return;
            }
        }
    }
}

fn predict_batch(spool: &Spool, stash: &Stash, model: &mut Model, work: &Work, batch: &[PathBuf]) {
    let mut images = Vec::new();
    let mut undecoded = Vec::new();
    for path in batch {
        match stash.take(path).map_or_else(|| hipfrac_dicom::read_radiograph(path), Ok) {
            Ok(image) => images.push((path, image)),
            Err(error) => undecoded.push((path, error)),
        }
    }
    let radiographs: Vec<Radiograph> = images.iter().map(|(_, image)| image.clone()).collect();
    let predictions = (model.predict)(&radiographs);
    for ((path, image), prediction) in images.iter().zip(predictions) {
        match prediction {
            Ok(prediction) => commit(spool, model, work, path, &image.meta, Some(image), &prediction),
            Err(error) => give_up(spool, path, &format!("the model failed: {}", error_chain(error.as_ref()))),
        }
    }
    for (path, error) in undecoded {
        // Pixels that cannot be decoded, in a file whose header rules it out anyway: not
        // assessable (an SR says so), not a failure.
        let refused = hipfrac_dicom::read_dicom_header(path).ok().and_then(|meta| hipfrac_core::assess::check_header(&meta, &model.acceptance).err().map(|why| (meta, why)));
        match refused {
            Some((meta, why)) => {
                let prediction = Prediction::refused(meta.columns, meta.rows, why);
                commit(spool, model, work, path, &meta, None, &prediction);
            }
            None => give_up(spool, path, &format!("cannot read the image: {}", error_chain(&error))),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum CommitError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Output(#[from] dicom_outputs::DicomOutputError),
}

fn commit(spool: &Spool, model: &Model, work: &Work, source: &Path, meta: &hipfrac_core::RadiographMeta, image: Option<&Radiograph>, prediction: &Prediction) {
    let context = ModelContext { points: &model.points, hash: &model.hash, name: model.name.clone(), caveats: model.caveats.clone() };
    let instance = meta.sop_instance_uid.clone().unwrap_or_default();
    let written = spool.commit_results(source, |dir| -> Result<(), CommitError> {
        dicom_outputs::write(source, &dir.join("result"), meta, image, prediction, &work.outputs, &context, work.overlay_size)?;
        let record = Record::new(instance.clone(), meta, prediction, &model.points, model.record.clone());
        std::fs::write(dir.join("result.json"), serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?)?;
        Ok(())
    });
    match written {
        Ok(_) => tracing::info!(instance = %instance, verdict = prediction.code(), "predicted"),
        Err(error) => give_up(spool, source, &format!("cannot write the results: {}", error_chain(&error))),
    }
}

/// An instance that cannot be predicted goes to `failed` (with why), so that it does not
/// block the others; it is logged.
fn give_up(spool: &Spool, source: &Path, why: &str) {
    let name = source.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    tracing::error!(instance = %name, "not predicted: {why}");
    if let Err(e) = spool.fail(source, why) {
        tracing::error!(instance = %name, "cannot move it to failed/: {e}");
    }
}
