//! The training loop: epochs of shuffled batches, SGD + schedule + EMA, validation mAP of the
//! EMA weights, checkpoints that resume exactly, and a CSV log.

use crate::config::TrainConfig;
use crate::data::{augment, batch, load_manifest, mixup, mosaic, to_tensors, Augment, Augmented, Sample};
use crate::optim::{learning_rate, Ema, LossScaler, Sgd};
use hipfrac_core::card::{DataSummary, ModelCard};
use hipfrac_core::FractureClass;
use hipfrac_eval::map::{coco_map, ImageBoxes};
use hipfrac_model::decode::{detections, MAP_SCORE_FLOOR, NMS_IOU};
use hipfrac_model::distributed::{DistError, ProcessGroup};
use hipfrac_model::loss::{detection_loss, AlignOta, LossParts, LossWeights, Targets};
use hipfrac_model::precision::Precision;
use hipfrac_model::{DamoYolo, ModelConfig};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use tch::{nn, Device, Tensor};

/// Where training stands, saved with every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Epochs completed.
    pub epoch: i64,
    /// Iterations completed.
    pub iteration: usize,
    pub ema_updates: u64,
    pub best_map50_95: Option<f64>,
    /// Batches done of the unfinished epoch `epoch + 1` (a run stopped with Ctrl-C saves
    /// where it was; 0 between epochs).
    #[serde(default)]
    pub step: usize,
    /// Sums of the loss and its parts (total, QFL, GIoU, DFL) over those batches.
    #[serde(default)]
    pub partial: [f64; 4],
    /// The sum of the scope head's loss over those batches (0 without a scope head).
    #[serde(default)]
    pub partial_scope: f64,
    /// fp16 training's loss scale (none in fp32 and bf16).
    #[serde(default)]
    pub loss_scaler: Option<LossScaler>,
}

/// One epoch's numbers (a row of log.csv).
#[derive(Debug, Clone, Serialize)]
pub struct EpochLog {
    pub epoch: i64,
    pub iteration: usize,
    pub lr: f64,
    pub loss: f64,
    pub qfl: f64,
    pub giou: f64,
    pub dfl: f64,
    /// The scope head's loss (binary cross-entropy, part of `loss`), for a localiser with one.
    pub scope: Option<f64>,
    pub map50: Option<f64>,
    pub map50_95: Option<f64>,
    pub seconds: f64,
}

/// Errors of a run, each naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] crate::config::InvalidConfig),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error("{}: no training images", .0.display())]
    NoTrainingImages(PathBuf),
    #[error("{}: a previous run is there; resume it (--resume) or choose another out folder", .0.display())]
    PreviousRun(PathBuf),
    #[error("init {}: {reason}", path.display())]
    Init { path: PathBuf, reason: String },
    #[error("{}: cannot write or read the checkpoint", path.display())]
    Checkpoint {
        path: PathBuf,
        #[source]
        source: CheckpointFault,
    },
    /// Training diverged: nothing from this step on is saved (out/last and out/best keep the
    /// last finite epoch).
    #[error("training diverged at epoch {epoch}, step {step}: the {what} is not finite ({value}); lower base_lr_per_image or check the data")]
    Diverged {
        epoch: i64,
        step: usize,
        what: &'static str,
        value: f64,
    },
    /// [`Trainer::stop`] was raised (Ctrl-C): [`Trainer::run`] saved `out/last` at the last
    /// finished batch, and a resumed run goes on from there exactly.
    #[error("data-parallel training failed")]
    Distributed(#[from] DistError),
    #[error("stopped during epoch {epoch} after {step} of {steps} batches; {} holds that point and resumes from there", last.display())]
    Stopped {
        epoch: i64,
        step: usize,
        steps: usize,
        last: PathBuf,
    },
}

/// Why a step's update did not happen.
enum Halt {
    /// fp16 gradients overflowed (the step is skipped, [`LossScaler`]).
    Overflow,
    Distributed(DistError),
}

/// The variables of `vs` that `keep` selects, in name order (the same order in every process
/// of a data-parallel group: a collective pairs tensors by position).
fn by_name(vs: &nn::VarStore, keep: impl Fn(&Tensor) -> bool) -> Vec<Tensor> {
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, v)| keep(v)).collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named.into_iter().map(|(_, v)| v).collect()
}

/// Whether every weight in `vs` is finite.
fn all_finite(vs: &nn::VarStore) -> bool {
    tch::no_grad(|| {
        vs.trainable_variables()
            .iter()
            .all(|t| t.isfinite().all().int64_value(&[]) != 0)
    })
}

/// What went wrong with a checkpoint file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointFault {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

fn checkpoint_error(path: &Path) -> impl Fn(CheckpointFault) -> TrainError + '_ {
    move |source| TrainError::Checkpoint {
        path: path.to_path_buf(),
        source,
    }
}

/// Loads the weights of the trained model folder `dir` (its EMA weights when it has them)
/// into `vs` to start a run from them; a folder without weights, or weights of another shape
/// (another preset or stage), is the error.
fn load_init(vs: &mut nn::VarStore, dir: &Path, expected: &hipfrac_model::ModelConfig) -> Result<(), TrainError> {
    // Loading copies with broadcasting: a one-class head would fill a four-class one. The
    // shapes are compared from the folder's config first.
    let config_path = dir.join("config.json");
    let found: hipfrac_model::ModelConfig = std::fs::read(&config_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| TrainError::Init {
            path: config_path.clone(),
            reason: "no readable config.json (expected a trained model folder, e.g. OUT/best)".into(),
        })?;
    // A localiser trained before the scope head starts a run that has one: the head is new.
    let new_scope_head = expected.scope_head && !found.scope_head;
    if found.clone().with_scope_head(expected.scope_head) != *expected {
        return Err(TrainError::Init {
            path: config_path,
            reason: format!(
                "its model ({:?} preset, {} classes) is not this run's ({:?} preset, {} classes): preset and stage must match",
                found.preset(),
                found.num_classes,
                expected.preset(),
                expected.num_classes
            ),
        });
    }
    let weights = ["ema.safetensors", "model.safetensors"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| TrainError::Init {
            path: dir.to_path_buf(),
            reason: "no ema.safetensors or model.safetensors (expected a trained model folder, e.g. OUT/best)".into(),
        })?;
    let unfit = |e: tch::TchError| TrainError::Init {
        path: weights.clone(),
        reason: format!("the weights do not fit this run's model (preset and stage must match): {e}"),
    };
    if !new_scope_head {
        return vs.load(&weights).map_err(unfit);
    }
    let missing = vs.load_partial(&weights).map_err(unfit)?;
    match missing.iter().find(|name| !name.starts_with("head.scope.")) {
        Some(name) => Err(unfit(tch::TchError::FileFormat(format!("no tensor {name}")))),
        None => Ok(()),
    }
}

/// The scope head's loss: binary cross-entropy of each image's scope logit against whether
/// the image (as augmented) holds a box — for a localiser, a proximal femur. Its negatives
/// are the films without one: out-of-scope films (hands, knees, chests…) and films cut so
/// that no hip is in view ([`HIP_FREE_SHARE`]), simulated ones too, so that looking
/// simulated or real says nothing of scope.
fn scope_loss(logits: &Tensor, targets: &[Targets]) -> Tensor {
    let truth: Vec<f32> = targets
        .iter()
        .map(|t| if t.boxes.size()[0] > 0 { 1.0 } else { 0.0 })
        .collect();
    let truth = Tensor::from_slice(&truth).to_device(logits.device());
    logits.binary_cross_entropy_with_logits::<Tensor>(&truth, None, None, tch::Reduction::Mean)
}

/// The share of a scope-head localiser's training images cut to a band without a hip
/// ([`crate::data::without_boxes`]) while augmentation is strong: negatives of every look,
/// phantom and real, and of what a film that misses the hip shows (a pelvis above the hips,
/// a femoral shaft below them).
pub const HIP_FREE_SHARE: f64 = 0.2;

/// COCO mAP of `model` on `samples` (no augmentation). Where any validation box is of
/// unknown type, the mAP is class-agnostic (every true box and detection counts as one
/// class): "a fracture found there" is all such a set can score.
pub fn evaluate(model: &DamoYolo, samples: &[Sample], batch_size: i64, device: Device) -> Option<(f64, f64)> {
    let agnostic = samples.iter().flat_map(|s| &s.boxes).any(|(c, _)| c.is_none());
    let mut images = Vec::new();
    for chunk in samples.chunks(batch_size.max(1) as usize) {
        let refs: Vec<&Sample> = chunk.iter().collect();
        let (tensor, _) = batch(&refs, &Augment::default(), &vec![0; refs.len()], device);
        // mAP is measured down to confidence 0.001 (the COCO convention); deployment uses 0.05.
        for (sample, found) in chunk.iter().zip(detections(model, &tensor, MAP_SCORE_FLOOR, NMS_IOU)) {
            let any = FractureClass::ALL[0];
            images.push(ImageBoxes {
                truth: sample
                    .boxes
                    .iter()
                    .map(|(c, b)| (if agnostic { any } else { c.unwrap_or(any) }, *b))
                    .collect(),
                detections: found
                    .iter()
                    .map(|d| (if agnostic { any } else { d.class }, d.score, d.bbox))
                    .collect(),
            });
        }
    }
    coco_map(&images)
}

/// Whether `log.csv` rows carry the `scope` column: a new file does; a file begun before that
/// column existed keeps its own columns (its header does not end in `,scope`).
fn has_scope_column(log: &Path) -> bool {
    let Ok(file) = std::fs::File::open(log) else {
        return true;
    };
    let mut header = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(file), &mut header).is_ok()
        && header.trim_end().ends_with(",scope")
}

fn save_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<(), CheckpointFault>) -> Result<(), TrainError> {
    // The temporary name keeps the extension: tch picks the format from it.
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".tmp-{name}"));
    write(&temp).map_err(checkpoint_error(path))?;
    std::fs::rename(&temp, path).map_err(|e| checkpoint_error(path)(e.into()))
}

/// One batch's images and boxes, augmented (mosaic, mixup, flip/scale/translate/intensity),
/// on the CPU in parallel. Deterministic in `seeds`.
pub fn prepare_batch(
    train: &[Sample],
    indices: &[usize],
    seeds: &[u64],
    settings: &Augment,
    mosaic_p: f64,
    mixup_p: f64,
) -> Vec<Augmented> {
    use rand::Rng;
    use rayon::prelude::*;
    indices
        .par_iter()
        .zip(seeds.par_iter())
        .map(|(&i, &seed)| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
            let draw = |rng: &mut rand_chacha::ChaCha8Rng, first: usize| -> Sample {
                if rng.gen_bool(mosaic_p.clamp(0.0, 1.0)) {
                    let others: Vec<usize> = (0..3).map(|_| rng.gen_range(0..train.len())).collect();
                    mosaic(
                        [&train[first], &train[others[0]], &train[others[1]], &train[others[2]]],
                        rng.gen(),
                    )
                } else {
                    train[first].clone()
                }
            };
            let base = draw(&mut rng, i);
            let first = augment(&base, settings, seed);
            if mosaic_p > 0.0 && rng.gen_bool(mixup_p.clamp(0.0, 1.0)) {
                let partner = rng.gen_range(0..train.len());
                let second = draw(&mut rng, partner);
                mixup(first, augment(&second, settings, seed ^ 0xABCD))
            } else {
                first
            }
        })
        .collect()
}

/// How one epoch's batches are made: the augmentation for this phase of the run (strong until
/// the last no-augmentation epochs) and each image's seed.
struct EpochData {
    augment: Augment,
    mosaic: f64,
    mixup: f64,
    seed: u64,
    epoch: i64,
}

impl EpochData {
    fn new(c: &TrainConfig, epoch: i64) -> Self {
        let strong = epoch < c.epochs - c.no_aug_epochs;
        let or_none = |p: f64| if strong { p } else { 0.0 };
        EpochData {
            augment: Augment {
                flip: c.flip,
                intensity: c.intensity_jitter,
                acquisition: or_none(c.acquisition),
                rotate90: or_none(c.rotate90),
                scale: or_none(c.scale_jitter),
                translate: or_none(c.translate),
                box_free: or_none(if c.model_config().scope_head {
                    HIP_FREE_SHARE
                } else {
                    0.0
                }),
            },
            mosaic: or_none(c.mosaic),
            mixup: or_none(c.mixup),
            seed: c.seed,
            epoch,
        }
    }

    /// The images and boxes of the batch `indices` of `train`.
    fn prepare(&self, train: &[Sample], indices: &[usize]) -> Vec<Augmented> {
        let seeds: Vec<u64> = indices
            .iter()
            .map(|&i| self.seed ^ ((self.epoch as u64) << 32) ^ i as u64)
            .collect();
        prepare_batch(train, indices, &seeds, &self.augment, self.mosaic, self.mixup)
    }
}

/// How an epoch's loop ended.
enum EpochEnd {
    Done,
    /// Stopped before batch k (k batches done).
    Stopped(usize),
    /// A non-finite loss at this step (1-based).
    Diverged {
        step: usize,
        value: f64,
    },
}

/// A training run.
pub struct Trainer {
    pub config: TrainConfig,
    pub device: Device,
    pub model_vs: nn::VarStore,
    pub model: DamoYolo,
    pub ema_vs: nn::VarStore,
    pub ema_model: DamoYolo,
    pub sgd: Sgd,
    pub ema: Ema,
    pub state: State,
    pub train: Vec<Sample>,
    pub val: Vec<Sample>,
    /// Raised to stop at the next step; point it at a static a Ctrl-C handler sets.
    pub stop: &'static std::sync::atomic::AtomicBool,
    /// The data-parallel group this process trains in ([`Trainer::join`]); `None` alone.
    group: Option<ProcessGroup>,
}

impl Trainer {
    /// Loads the data and builds the model; resumes from `out/last` when it exists and
    /// `resume` is set.
    pub fn new(mut config: TrainConfig, device: Device, resume: bool) -> Result<Self, TrainError> {
        config.validate()?;
        // A run resumes as the model it was: a localiser begun before the scope head existed
        // (or with it off) goes on without one, whatever the configuration's default says.
        let last = config.out.join("last");
        if resume && last.join("state.json").is_file() {
            let saved: Option<hipfrac_model::ModelConfig> = std::fs::read(last.join("config.json"))
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok());
            if let Some(saved) = saved {
                config.model.scope_head = saved.scope_head;
            }
        }
        let preprocess = config.preprocess();
        let train = load_manifest(&config.train, &preprocess, config.stage)?;
        let val = load_manifest(&config.val, &preprocess, config.stage)?;
        if train.is_empty() {
            return Err(TrainError::NoTrainingImages(config.train.clone()));
        }
        tch::manual_seed(config.seed as i64);
        let model_config = config.model_config();
        let model_vs = nn::VarStore::new(device);
        let model = DamoYolo::new(&model_vs.root(), &model_config, false);
        let mut model_vs = model_vs;
        if let Some(init) = &config.init {
            load_init(&mut model_vs, init, &model_config)?;
        }
        let ema_vs = nn::VarStore::new(device);
        let ema_model = DamoYolo::new(&ema_vs.root(), &model_config, false);
        let mut ema = Ema::new(config.ema_decay, config.ema_ramp_updates);
        ema.reset(&ema_vs, &model_vs);
        let sgd = Sgd::new(config.momentum, config.nesterov, config.weight_decay);
        let fp16 = config.precision == Precision::Fp16;
        let mut trainer = Trainer {
            config,
            device,
            model_vs,
            model,
            ema_vs,
            ema_model,
            sgd,
            ema,
            state: State {
                epoch: 0,
                iteration: 0,
                ema_updates: 0,
                best_map50_95: None,
                step: 0,
                partial: [0.0; 4],
                partial_scope: 0.0,
                loss_scaler: fp16.then(LossScaler::default),
            },
            train,
            val,
            stop: {
                static NEVER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
                &NEVER
            },
            group: None,
        };
        if resume && last.join("state.json").is_file() {
            trainer.load_checkpoint(&last)?;
        } else if !resume && last.exists() {
            return Err(TrainError::PreviousRun(last));
        }
        Ok(trainer)
    }

    /// Trains as one process of a data-parallel group (torchrun's conventions,
    /// [`ProcessGroup::from_env`]): the weights start as rank 0's; each step every rank takes
    /// its `batch_size` share of a global batch of `batch_size × world` images (the epoch's
    /// order padded by repeating its start so every rank has as many batches), the gradients
    /// are averaged over the ranks before the update (as DistributedDataParallel), the
    /// BatchNorm statistics follow rank 0's (DDP's `broadcast_buffers`), and the learning rate
    /// is that of the global batch. Only rank 0 validates and writes checkpoints and log.csv.
    pub fn join(&mut self, group: ProcessGroup) -> Result<(), TrainError> {
        for vs in [&self.model_vs, &self.ema_vs] {
            group.broadcast(&by_name(vs, |_| true), 0)?;
        }
        self.group = Some(group);
        Ok(())
    }

    /// This process's rank and the group's size (0 and 1 alone).
    pub fn rank_and_world(&self) -> (usize, usize) {
        self.group.as_ref().map_or((0, 1), |g| (g.rank, g.world))
    }

    /// Whether this process writes checkpoints and logs (rank 0, or alone).
    pub fn is_leader(&self) -> bool {
        self.rank_and_world().0 == 0
    }

    /// The training samples of each of this process's batches in `epoch` (0-based). The
    /// order depends only on (seed, epoch), so a resumed run sees exactly what an uninterrupted
    /// one would. In a group each global batch of `batch_size × world` is shared out by rank,
    /// the order padded with its own start so that every rank has as many batches.
    pub fn epoch_batches(&self, epoch: i64) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.train.len()).collect();
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(
            self.config.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        ));
        let (rank, world) = self.rank_and_world();
        let (share, global) = (self.config.batch_size as usize, self.config.batch_size as usize * world);
        if world > 1 && !order.is_empty() {
            let n = order.len();
            let padding: Vec<usize> = (0..n.div_ceil(global) * global - n).map(|i| order[i % n]).collect();
            order.extend(padding);
        }
        order
            .chunks(global)
            .map(|b| b[(rank * share).min(b.len())..((rank + 1) * share).min(b.len())].to_vec())
            .collect()
    }

    fn iterations_per_epoch(&self) -> usize {
        self.train
            .len()
            .div_ceil(self.config.batch_size as usize * self.rank_and_world().1)
    }

    /// Trains one epoch; returns its log row (validation included when due), or
    /// [`TrainError::Diverged`] at the first non-finite loss. Each batch: agree to stop or go
    /// on, the loss, agree it is finite, one optimiser step ([`Trainer::optimise`]).
    pub fn epoch(&mut self, on_step: &mut dyn FnMut(usize, usize, f64)) -> Result<EpochLog, TrainError> {
        let started = std::time::Instant::now();
        let data = EpochData::new(&self.config, self.state.epoch);
        let batches = self.epoch_batches(self.state.epoch);
        let per_epoch = self.iterations_per_epoch();
        // A run stopped inside this epoch resumes after the batches it had done.
        let skip = self.state.step;
        let mut sums = self.state.partial;
        let mut scope_sum = self.state.partial_scope;
        let mut lr = 0.0;
        // Lent to the loader thread for the epoch (the steps borrow the rest of `self`).
        let train = std::mem::take(&mut self.train);
        // The loader prepares batch k+1 on another thread while batch k trains; what it makes
        // depends only on the seeds, so prefetching changes no number.
        let end = std::thread::scope(|scope| -> Result<EpochEnd, DistError> {
            let mut next = batches
                .get(skip)
                .map(|first| scope.spawn(|| data.prepare(&train, first)));
            for k in skip..batches.len() {
                let parts = next
                    .take()
                    .expect("a prepared batch")
                    .join()
                    .expect("the loader thread panicked");
                if let Some(following) = batches.get(k + 1) {
                    next = Some(scope.spawn(|| data.prepare(&train, following)));
                }
                // Checked before the forward pass, which moves the BatchNorm statistics: a
                // stopped run has done exactly `k` batches.
                if self.agree_to_stop()? {
                    return Ok(EpochEnd::Stopped(k));
                }
                lr = self.learning_rate_now(per_epoch);
                let (loss, scope) = self.loss(parts);
                // Checked before the step: a non-finite loss never reaches the weights.
                let value = loss.total.double_value(&[]);
                if self.on_any_rank(!value.is_finite())? {
                    return Ok(EpochEnd::Diverged { step: k + 1, value });
                }
                self.optimise(&loss.total, lr)?;
                self.state.iteration += 1;
                sums[0] += value;
                sums[1] += loss.qfl.double_value(&[]);
                sums[2] += loss.giou.double_value(&[]);
                sums[3] += loss.dfl.double_value(&[]);
                scope_sum += scope.unwrap_or(0.0);
                on_step(k + 1, batches.len(), value);
            }
            Ok(EpochEnd::Done)
        });
        self.train = train;
        self.end_epoch(end?, (sums, scope_sum), lr, batches.len(), started)
    }

    /// Whether to stop now: the stop flag, agreed by every rank (they stop at the same batch,
    /// or the others would wait forever).
    fn agree_to_stop(&self) -> Result<bool, DistError> {
        self.on_any_rank(self.stop.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Whether `flag` holds on this process or, in a group, on any rank.
    fn on_any_rank(&self, flag: bool) -> Result<bool, DistError> {
        match &self.group {
            Some(g) => g.any(flag),
            None => Ok(flag),
        }
    }

    /// The learning rate of the next iteration: warmup, cosine, then flat for the last
    /// no-augmentation epochs (`per_epoch` batches an epoch; scaled by the group's size).
    fn learning_rate_now(&self, per_epoch: usize) -> f64 {
        let c = &self.config;
        let total = per_epoch * c.epochs as usize;
        let warmup = (c.warmup_epochs * per_epoch as f64).round() as usize;
        let flat = per_epoch * c.no_aug_epochs.min(c.epochs) as usize;
        let base_lr = c.base_lr() * self.rank_and_world().1 as f64;
        learning_rate(self.state.iteration, total, warmup, flat, base_lr, c.min_lr_ratio)
    }

    /// The loss of one prepared batch: the network in the run's precision, the assigner and
    /// the losses in fp32; with the scope head's part (already in the total) on its own.
    fn loss(&self, parts: Vec<Augmented>) -> (LossParts, Option<f64>) {
        let (images, targets) = to_tensors(parts, self.config.image_size, self.device);
        let output = hipfrac_model::precision::autocast(self.device, self.config.precision, || {
            self.model.forward_t(&images, true)
        })
        .to_float();
        let mut parts = detection_loss(
            &output,
            &targets,
            &ModelConfig::STRIDES,
            &AlignOta::default(),
            LossWeights::default(),
        );
        let scope = output.scope_logits.as_ref().map(|logits| {
            let scope = scope_loss(logits, &targets);
            parts.total = &parts.total + &scope;
            scope.double_value(&[])
        });
        (parts, scope)
    }

    /// One optimiser step on `loss` at `lr`: back-propagation, the gradients averaged over the
    /// group, rank 0's BatchNorm statistics for every rank, then the EMA. In fp16 the loss is
    /// scaled up before back-propagation and the gradients unscaled after the all-reduce (an
    /// overflow on any rank is then an overflow on every rank, and no rank updates).
    fn optimise(&mut self, loss: &Tensor, lr: f64) -> Result<(), DistError> {
        let objective = match self.state.loss_scaler {
            Some(s) => loss * s.scale,
            None => loss.shallow_clone(),
        };
        let group = &self.group;
        let scaler = &mut self.state.loss_scaler;
        let stepped = self.sgd.backward_step_with(&self.model_vs, &objective, lr, |grads| {
            if let Some(g) = group {
                g.all_reduce_mean(grads).map_err(Halt::Distributed)?;
            }
            match scaler.as_mut().map(|s| s.unscale(grads)) {
                Some(false) => Err(Halt::Overflow),
                _ => Ok(()),
            }
        });
        let updated = match stepped {
            Ok(()) => {
                if let Some(g) = group {
                    g.broadcast(&by_name(&self.model_vs, |v| !v.requires_grad()), 0)?;
                }
                true
            }
            // An fp16 overflow: no update this step (the scale was halved).
            Err(Halt::Overflow) => false,
            Err(Halt::Distributed(e)) => return Err(e),
        };
        if updated {
            self.ema.update(&self.ema_vs, &self.model_vs);
        }
        Ok(())
    }

    /// Settles an epoch that ended as `end` after `batches` batches: saves where a stopped
    /// run stands, reports divergence, or counts the epoch done and validates when due.
    fn end_epoch(
        &mut self,
        end: EpochEnd,
        (sums, scope_sum): ([f64; 4], f64),
        lr: f64,
        batches: usize,
        started: std::time::Instant,
    ) -> Result<EpochLog, TrainError> {
        match end {
            EpochEnd::Stopped(done) => {
                self.state.step = done;
                self.state.partial = sums;
                self.state.partial_scope = scope_sum;
                self.state.ema_updates = self.ema.updates;
                return Err(TrainError::Stopped {
                    epoch: self.state.epoch + 1,
                    step: done,
                    steps: batches,
                    last: self.config.out.join("last"),
                });
            }
            EpochEnd::Diverged { step, value } => {
                return Err(TrainError::Diverged {
                    epoch: self.state.epoch + 1,
                    step,
                    what: "loss",
                    value,
                })
            }
            EpochEnd::Done => {}
        }
        let c = &self.config;
        self.state.epoch += 1;
        self.state.ema_updates = self.ema.updates;
        (self.state.step, self.state.partial, self.state.partial_scope) = (0, [0.0; 4], 0.0);
        let n = batches.max(1) as f64;
        let due = self.state.epoch % c.val_interval.max(1) == 0 || self.state.epoch == c.epochs;
        let map = if due && self.is_leader() && !self.val.is_empty() {
            evaluate(&self.ema_model, &self.val, c.batch_size, self.device)
        } else {
            None
        };
        let [sum, qfl, giou, dfl] = sums;
        Ok(EpochLog {
            epoch: self.state.epoch,
            iteration: self.state.iteration,
            lr,
            loss: sum / n,
            qfl: qfl / n,
            giou: giou / n,
            dfl: dfl / n,
            scope: self.model.config.scope_head.then_some(scope_sum / n),
            map50: map.map(|m| m.0),
            map50_95: map.map(|m| m.1),
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Saves `out/last` (model, EMA, optimizer state, state.json, config.json) and, when
    /// the EMA's mAP50-95 improved, `out/best` (EMA weights + config.json + train.toml +
    /// metrics.json).
    /// Every file is written to a temporary name and renamed (no file is ever half-written);
    /// `last/state.json` is written last of all.
    pub fn checkpoint(&mut self, log: &EpochLog) -> Result<(), TrainError> {
        let out = self.config.out.clone();
        let last = self.write_resumable()?;
        let card = serde_json::to_vec_pretty(&self.card(log)).expect("a model card should serialise");
        save_atomic(&last.join(ModelCard::FILE), |p| Ok(std::fs::write(p, &card)?))?;
        // The best score is settled first so state.json, written last, carries it.
        let improved = log
            .map50_95
            .filter(|m| self.state.best_map50_95.is_none_or(|best| *m > best));
        if let Some(m) = improved {
            self.state.best_map50_95 = Some(m);
            let best = out.join("best");
            std::fs::create_dir_all(&best).map_err(|e| checkpoint_error(&best)(e.into()))?;
            save_atomic(&best.join("model.safetensors"), |p| {
                Ok(hipfrac_model::save_weights(&self.ema_vs, p)?)
            })?;
            let config = serde_json::to_vec_pretty(&self.model.config).expect("config serialises");
            save_atomic(&best.join("config.json"), |p| Ok(std::fs::write(p, &config)?))?;
            // The input size travels with the weights (inference letterboxes to it).
            let train_config = toml::to_string(&self.config).expect("config serialises");
            save_atomic(&best.join("train.toml"), |p| Ok(std::fs::write(p, &train_config)?))?;
            let metrics = serde_json::to_vec_pretty(log).expect("log serialises");
            save_atomic(&best.join("metrics.json"), |p| Ok(std::fs::write(p, &metrics)?))?;
            let card = serde_json::to_vec_pretty(&self.card(log)).expect("a card serialises");
            save_atomic(&best.join(ModelCard::FILE), |p| Ok(std::fs::write(p, &card)?))?;
        }
        let state = serde_json::to_vec_pretty(&self.state).expect("state serialises");
        save_atomic(&last.join("state.json"), |p| Ok(std::fs::write(p, &state)?))
    }

    /// Saves `out/last` where the run stands inside an epoch (after [`TrainError::Stopped`]):
    /// weights, EMA, optimizer state, then state.json (with the batches done) last of all.
    /// `out/best` is not touched.
    pub fn save_progress(&mut self) -> Result<(), TrainError> {
        let last = self.write_resumable()?;
        let state = serde_json::to_vec_pretty(&self.state).expect("the training state should serialise");
        save_atomic(&last.join("state.json"), |p| Ok(std::fs::write(p, &state)?))
    }

    /// Writes what a resume reads besides state.json into `out/last` (created if needed):
    /// weights, EMA, config and optimizer state. Returns the folder.
    fn write_resumable(&self) -> Result<PathBuf, TrainError> {
        let last = self.config.out.join("last");
        std::fs::create_dir_all(&last).map_err(|e| checkpoint_error(&last)(e.into()))?;
        self.write_weights(&last)?;
        let sgd_state = self.sgd.state();
        save_atomic(&last.join("optimizer.safetensors"), |p| {
            let named: Vec<(&str, &Tensor)> = sgd_state.iter().map(|(k, v)| (k.as_str(), v)).collect();
            Ok(Tensor::write_safetensors(&named, p)?)
        })?;
        Ok(last)
    }

    /// The model card of the weights saved after the epoch of `log`.
    fn card(&self, log: &EpochLog) -> ModelCard {
        let summary = |manifest: &Path, samples: &[Sample]| {
            DataSummary::count(
                manifest.display().to_string(),
                samples
                    .iter()
                    .map(|s| (s.patient.as_str(), s.site.as_str(), s.label, s.simulated)),
            )
        };
        ModelCard {
            card_version: hipfrac_core::card::CARD_VERSION,
            hipfrac_version: env!("CARGO_PKG_VERSION").to_string(),
            written_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            preset: self.model.config.preset().map(|p| p.name().to_string()),
            image_size: self.config.image_size,
            equalize: self.config.equalize,
            epochs_trained: log.epoch,
            map50_95: log.map50_95,
            training: summary(&self.config.train, &self.train),
            validation: summary(&self.config.val, &self.val),
        }
    }

    fn write_weights(&self, dir: &Path) -> Result<(), TrainError> {
        save_atomic(&dir.join("model.safetensors"), |p| {
            Ok(hipfrac_model::save_weights(&self.model_vs, p)?)
        })?;
        save_atomic(&dir.join("ema.safetensors"), |p| {
            Ok(hipfrac_model::save_weights(&self.ema_vs, p)?)
        })?;
        let config = serde_json::to_vec_pretty(&self.model.config).expect("config serialises");
        save_atomic(&dir.join("config.json"), |p| Ok(std::fs::write(p, &config)?))?;
        let train_config = toml::to_string(&self.config).expect("config serialises");
        save_atomic(&dir.join("train.toml"), |p| Ok(std::fs::write(p, &train_config)?))
    }

    fn load_checkpoint(&mut self, dir: &Path) -> Result<(), TrainError> {
        let fail = checkpoint_error(dir);
        let state: State = serde_json::from_slice(&std::fs::read(dir.join("state.json")).map_err(|e| fail(e.into()))?)
            .map_err(|e| fail(e.into()))?;
        self.model_vs
            .load(dir.join("model.safetensors"))
            .map_err(|e| fail(e.into()))?;
        self.ema_vs
            .load(dir.join("ema.safetensors"))
            .map_err(|e| fail(e.into()))?;
        let buffers = Tensor::read_safetensors(dir.join("optimizer.safetensors")).map_err(|e| fail(e.into()))?;
        self.sgd.restore(buffers, self.device);
        self.ema.updates = state.ema_updates;
        self.state = state;
        Ok(())
    }

    /// Runs the remaining epochs, checkpointing and logging each.
    pub fn run(
        &mut self,
        on_step: &mut dyn FnMut(usize, usize, f64),
        on_epoch: &mut dyn FnMut(&EpochLog),
    ) -> Result<(), TrainError> {
        std::fs::create_dir_all(&self.config.out).map_err(|e| checkpoint_error(&self.config.out)(e.into()))?;
        let log_path = self.config.out.join("log.csv");
        let with_scope = has_scope_column(&log_path);
        while self.state.epoch < self.config.epochs {
            let log = match self.epoch(on_step) {
                Err(stopped @ TrainError::Stopped { .. }) => {
                    if self.is_leader() {
                        self.save_progress()?;
                    }
                    return Err(stopped);
                }
                other => other?,
            };
            if !all_finite(&self.model_vs) || !all_finite(&self.ema_vs) {
                let epoch = log.epoch;
                return Err(TrainError::Diverged {
                    epoch,
                    step: self.iterations_per_epoch(),
                    what: "model or EMA weights",
                    value: f64::NAN,
                });
            }
            if !self.is_leader() {
                on_epoch(&log);
                continue;
            }
            self.checkpoint(&log)?;
            let new = !log_path.exists();
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(|e| checkpoint_error(&log_path)(e.into()))?;
            let opt = |v: Option<f64>| v.map(|x| format!("{x:.5}")).unwrap_or_default();
            let mut line = String::new();
            if new {
                line.push_str("epoch,iteration,lr,loss,qfl,giou,dfl,map50,map50_95,seconds,scope\n");
            }
            line.push_str(&format!(
                "{},{},{:.6},{:.5},{:.5},{:.5},{:.5},{},{},{:.1}",
                log.epoch,
                log.iteration,
                log.lr,
                log.loss,
                log.qfl,
                log.giou,
                log.dfl,
                opt(log.map50),
                opt(log.map50_95),
                log.seconds
            ));
            if with_scope {
                line.push_str(&format!(",{}", opt(log.scope)));
            }
            line.push('\n');
            file.write_all(line.as_bytes())
                .and_then(|_| file.sync_all())
                .map_err(|e| checkpoint_error(&log_path)(e.into()))?;
            on_epoch(&log);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(boxes: &[usize]) -> Vec<Targets> {
        boxes
            .iter()
            .map(|&n| Targets {
                boxes: Tensor::ones([n as i64, 4], (tch::Kind::Float, Device::Cpu)),
                labels: Tensor::zeros([n as i64], (tch::Kind::Int64, Device::Cpu)),
            })
            .collect()
    }

    /// An image with a box is in scope, one without is not.
    #[test]
    fn the_scope_loss_is_the_cross_entropy_of_holding_a_box() {
        let logits = Tensor::from_slice(&[3.0f32, -2.0]);
        let loss = scope_loss(&logits, &targets(&[1, 0]));
        let expected = ((1.0 + (-3.0f64).exp()).ln() + (1.0 + (-2.0f64).exp()).ln()) / 2.0;
        assert!((loss.double_value(&[]) - expected).abs() < 1e-5);
    }
}
