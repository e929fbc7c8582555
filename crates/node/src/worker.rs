//! The worker: pending instances, a batch at a time, through the one prediction path; their
//! DICOM results and prediction record committed to the outbox.

use crate::spool::Spool;
use hipfrac_core::{error_chain, Acceptance, OperatingPoints, Prediction, Radiograph};
use hipfrac_report::dicom_outputs::{self, DicomKind, ModelContext};
use hipfrac_report::predictions::{ModelRecord, Record};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

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
pub struct Stash(std::sync::Mutex<(std::collections::HashMap<PathBuf, Radiograph>, usize)>);

impl Stash {
    /// Pixel bytes kept at most (about thirty 2140 × 1760 radiographs).
    const BUDGET: usize = 256 << 20;

    fn bytes(image: &Radiograph) -> usize {
        match &image.pixels {
            hipfrac_core::Pixels::Unsigned(v) => v.len() * 2,
            hipfrac_core::Pixels::Signed(v) => v.len() * 2,
        }
    }

    pub fn put(&self, path: PathBuf, image: Radiograph) {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (map, used) = &mut *guard;
        let size = Self::bytes(&image);
        if *used + size <= Self::BUDGET {
            *used += size;
            if let Some(old) = map.insert(path, image) {
                *used -= Self::bytes(&old);
            }
        }
    }

    pub fn take(&self, path: &Path) -> Option<Radiograph> {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (map, used) = &mut *guard;
        let image = map.remove(path)?;
        *used -= Self::bytes(&image);
        Some(image)
    }
}

/// Instances set aside for a while: a failure that may pass (the disk full, the model out of
/// memory) is retried later, a few times, before the instance goes to `failed`; an instance
/// that cannot even be moved there is skipped until the next start (logged), so the worker
/// never spins on it.
#[derive(Default)]
struct Deferred(std::collections::HashMap<PathBuf, (Instant, u32)>);

/// Tries of an instance whose failure may pass.
const TRIES: u32 = 5;
/// Wait before trying such an instance again.
const RETRY_AFTER: Duration = Duration::from_secs(30);

impl Deferred {
    fn waiting(&self, path: &Path) -> bool {
        self.0.get(path).is_some_and(|(until, _)| Instant::now() < *until)
    }

    /// Sets `path` aside after a failure that may pass; true when it has had its tries.
    fn again(&mut self, path: &Path) -> bool {
        let entry = self.0.entry(path.to_path_buf()).or_insert((Instant::now(), 0));
        entry.1 += 1;
        entry.0 = Instant::now() + RETRY_AFTER;
        entry.1 >= TRIES
    }

    /// Skips `path` for the rest of this run.
    fn skip(&mut self, path: &Path) {
        self.0.insert(
            path.to_path_buf(),
            (Instant::now() + Duration::from_secs(365 * 86_400), u32::MAX),
        );
    }
}

/// What to make of each instance.
pub struct Work {
    pub outputs: Vec<DicomKind>,
    pub overlay_size: u32,
}

/// Predicts pending instances until `stop` is raised (finishing the batch in hand). Woken by
/// `received`; looks at the spool every half second anyway (instances left by an earlier run,
/// instances set aside).
pub fn run(
    spool: &Spool,
    stash: &Stash,
    model: &mut Model,
    work: &Work,
    received: &Receiver<()>,
    ready: &Sender<()>,
    stop: &AtomicBool,
) {
    let mut deferred = Deferred::default();
    while !stop.load(Ordering::SeqCst) {
        let pending: Vec<PathBuf> = spool.pending().into_iter().filter(|p| !deferred.waiting(p)).collect();
        if pending.is_empty() {
            let _ = received.recv_timeout(Duration::from_millis(500));
            continue;
        }
        for batch in pending.chunks(model.batch.max(1)) {
            predict_batch(spool, stash, model, work, batch, &mut deferred);
            let _ = ready.send(());
            if stop.load(Ordering::SeqCst) {
                return;
            }
        }
    }
}

fn predict_batch(
    spool: &Spool,
    stash: &Stash,
    model: &mut Model,
    work: &Work,
    batch: &[PathBuf],
    deferred: &mut Deferred,
) {
    let (mut paths, mut radiographs) = (Vec::new(), Vec::new());
    let mut undecoded = Vec::new();
    for path in batch {
        match stash
            .take(path)
            .map_or_else(|| hipfrac_dicom::read_radiograph(path), Ok)
        {
            Ok(image) => {
                paths.push(path);
                radiographs.push(image);
            }
            Err(error) => undecoded.push((path, error)),
        }
    }
    let predictions = (model.predict)(&radiographs);
    for ((path, image), prediction) in paths.into_iter().zip(&radiographs).zip(predictions) {
        match prediction {
            Ok(prediction) => commit(
                spool,
                model,
                work,
                path,
                &image.meta,
                Some(image),
                &prediction,
                deferred,
            ),
            // The model's failure may pass (out of memory): set aside, then given up.
            Err(error) => retry_or_give_up(
                spool,
                path,
                &format!("the model failed: {}", error_chain(error.as_ref())),
                deferred,
            ),
        }
    }
    for (path, error) in undecoded {
        // Pixels that cannot be decoded, in a file whose header rules it out anyway: not
        // assessable (an SR says so), not a failure.
        let refused = hipfrac_dicom::read_dicom_header(path).ok().and_then(|meta| {
            hipfrac_core::assess::check_header(&meta, &model.acceptance)
                .err()
                .map(|why| (meta, why))
        });
        match refused {
            Some((meta, why)) => {
                let prediction = Prediction::refused(meta.columns, meta.rows, why);
                commit(spool, model, work, path, &meta, None, &prediction, deferred);
            }
            // The same bytes will not decode next time.
            None => give_up(
                spool,
                path,
                &format!("cannot read the image: {}", error_chain(&error)),
                deferred,
            ),
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

#[allow(clippy::too_many_arguments)]
fn commit(
    spool: &Spool,
    model: &Model,
    work: &Work,
    source: &Path,
    meta: &hipfrac_core::RadiographMeta,
    image: Option<&Radiograph>,
    prediction: &Prediction,
    deferred: &mut Deferred,
) {
    let context = ModelContext {
        points: &model.points,
        hash: &model.hash,
        name: model.name.clone(),
        caveats: model.caveats.clone(),
    };
    let instance = meta.sop_instance_uid.clone().unwrap_or_default();
    let written = spool.commit_results(source, |dir| -> Result<(), CommitError> {
        dicom_outputs::write(
            source,
            &dir.join("result"),
            meta,
            image,
            prediction,
            &work.outputs,
            &context,
            work.overlay_size,
        )?;
        let record = Record::new(instance.clone(), meta, prediction, &model.points, model.record.clone());
        std::fs::write(
            dir.join("result.json"),
            serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?,
        )?;
        Ok(())
    });
    match written {
        Ok(_) => tracing::info!(instance = %instance, verdict = prediction.code(), "predicted"),
        // Writing may fail for a while (a full disk): set aside, then given up.
        Err(error) => retry_or_give_up(
            spool,
            source,
            &format!("cannot write the results: {}", error_chain(&error)),
            deferred,
        ),
    }
}

fn name(source: &Path) -> String {
    source
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default()
}

fn retry_or_give_up(spool: &Spool, source: &Path, why: &str, deferred: &mut Deferred) {
    if deferred.again(source) {
        give_up(spool, source, &format!("{why} ({TRIES} tries)"), deferred);
    } else {
        tracing::warn!(instance = %name(source), retry_in_s = RETRY_AFTER.as_secs(), "not predicted yet: {why}");
    }
}

/// An instance that cannot be predicted goes to `failed` (with why), so that it does not
/// block the others; it is logged. One that cannot even be moved is skipped until the next
/// start.
fn give_up(spool: &Spool, source: &Path, why: &str, deferred: &mut Deferred) {
    tracing::error!(instance = %name(source), "not predicted: {why}");
    if let Err(e) = spool.fail(source, why) {
        tracing::error!(instance = %name(source), "cannot move it to failed/ ({e}); skipped until the next start");
        deferred.skip(source);
    }
}
