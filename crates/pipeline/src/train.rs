//! `hipfrac train`: a progress bar inside each epoch (images/s, ETA of the epoch and of the
//! run), a warning when validation mAP stays near 0, Ctrl-C that leaves a resumable run and
//! says how to resume, and the next command at the end.

use crate::{progress, Outcome};
use anyhow::{Context, Result};
use hipfrac_core::DeviceSpec;
use hipfrac_train::trainer::{EpochLog, TrainError, Trainer};
use hipfrac_train::TrainConfig;
use std::path::PathBuf;
use std::time::Instant;

/// What `hipfrac train` is asked to do.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// The training config (TOML).
    pub config: Option<PathBuf>,
    /// Write the paper's configuration to this file and stop.
    pub init_config: Option<PathBuf>,
    pub device: DeviceSpec,
    /// Continue the run in the config's out folder.
    pub resume: bool,
}

/// Below this validation mAP50 a model has learnt nothing useful yet.
const NOTHING_LEARNT: f64 = 0.01;

/// `--init-config FILE`: the paper's configuration, every key with its range.
fn init_config(path: &std::path::Path) -> Result<Outcome> {
    if path.exists() {
        anyhow::bail!(
            "{} exists; choose another file (nothing is overwritten)",
            path.display()
        );
    }
    let text = hipfrac_train::config::commented(&TrainConfig::default());
    hipfrac_dicom::atomic::write_atomic(path, text.as_bytes())?;
    eprintln!(
        "wrote {} (the paper's configuration, for a GPU); edit train/val/out, then: hipfrac train --config {}",
        path.display(),
        path.display()
    );
    Ok(Outcome::Success)
}

/// Trains (or resumes) the run a config describes, data-parallel under torchrun.
pub fn run(args: TrainOptions) -> Result<Outcome> {
    if let Some(path) = &args.init_config {
        return init_config(path);
    }
    let config_path = args
        .config
        .clone()
        .context("--config FILE is required (or --init-config FILE to write one)")?;
    let config = TrainConfig::from_file(&config_path)?;
    let mut device = hipfrac_model::device::select(args.device)?;
    // Under torchrun each process of a node takes its own GPU (LOCAL_RANK).
    if let (hipfrac_model::device::Device::Cuda(_), Some(local)) = (
        device,
        std::env::var("LOCAL_RANK")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok()),
    ) {
        device = hipfrac_model::device::Device::Cuda(local);
    }
    let group = hipfrac_model::distributed::ProcessGroup::from_env()
        .context("cannot join the data-parallel group (torchrun's RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)")?;
    let world = group.as_ref().map_or(1, |g| g.world);
    let leader = group.as_ref().is_none_or(|g| g.is_leader());
    let say = |text: &str| {
        if leader {
            eprintln!("{text}");
        }
    };
    say(&format!(
        "training {} preset at {} px on {device:?} → {}",
        config.model.preset,
        config.image_size,
        config.out.display()
    ));
    let mut trainer = Trainer::new(config.clone(), device, args.resume).context("cannot start training")?;
    if let Some(group) = group {
        say(&format!(
            "data-parallel over c10d (Gloo): {world} processes, {} images a step each, {} in all",
            config.batch_size,
            config.batch_size as usize * world
        ));
        trainer.join(group).context("cannot start data-parallel training")?;
    }
    let first = trainer.state.epoch + 1;
    say(&format!(
        "{} training and {} validation images; starting at epoch {first}",
        trainer.train.len(),
        trainer.val.len()
    ));
    trainer.stop = crate::interrupt::stop_flag(&[libc::SIGINT]);
    let batch = (config.batch_size as usize * world) as f64;
    let bar = if leader {
        progress::bar(0, "epoch")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let run_started = Instant::now();
    let mut epoch_started = Instant::now();
    let done_epochs = std::cell::Cell::new(0i64);
    let mut on_step = |step: usize, steps: usize, loss: f64| {
        if step == 1 {
            epoch_started = Instant::now();
        }
        let elapsed = epoch_started.elapsed().as_secs_f64().max(1e-3);
        let per_step = elapsed / step as f64;
        let epoch_left = per_step * (steps - step) as f64;
        let epochs_left = (config.epochs - first - done_epochs.get()).max(0) as f64;
        let run_left = epoch_left + epochs_left * per_step * steps as f64;
        bar.set_length(steps as u64);
        bar.set_position(step as u64);
        bar.set_message(format!(
            "loss {loss:.3}, {:.1} images/s, epoch ETA {}, run ETA {}",
            batch / per_step,
            clock(epoch_left),
            clock(run_left)
        ));
    };
    let mut best: Option<f64> = None;
    let mut warned = false;
    let mut on_epoch = |log: &EpochLog| {
        done_epochs.set(done_epochs.get() + 1);
        let map = match (log.map50, log.map50_95) {
            (Some(a), Some(b)) => format!(", mAP50 {a:.3}, mAP50-95 {b:.3}"),
            _ => String::new(),
        };
        if !leader {
            return;
        }
        let scope = log.scope.map(|v| format!(", scope {v:.4}")).unwrap_or_default();
        bar.suspend(|| {
            eprintln!(
                "epoch {}/{}: loss {:.4} (qfl {:.4}, giou {:.4}, dfl {:.4}{scope}), lr {:.5}{map}, {:.0} s",
                log.epoch, config.epochs, log.loss, log.qfl, log.giou, log.dfl, log.lr, log.seconds
            )
        });
        if let Some(m) = log.map50 {
            best = Some(best.map_or(m, |b: f64| b.max(m)));
        }
        if !warned && nothing_learnt_yet(log.epoch, config.epochs, best) {
            warned = true;
            bar.suspend(|| eprintln!("warning: a fifth of the run is done and validation mAP50 is still {:.3}: check the labels and the learning rate before spending the rest", best.unwrap_or(0.0)));
        }
    };
    let outcome = trainer.run(&mut on_step, &mut on_epoch);
    bar.finish_and_clear();
    match outcome {
        Err(TrainError::Stopped { .. }) if !leader => return Ok(Outcome::Interrupted),
        Err(TrainError::Stopped {
            epoch,
            step,
            steps,
            last,
        }) => {
            eprintln!(
                "interrupted during epoch {epoch} after {step} of {steps} batches: saved in {}. Resume with:",
                last.display()
            );
            eprintln!("  hipfrac train --config {} --resume", config_path.display());
            return Ok(Outcome::Interrupted);
        }
        other => other?,
    }
    if !leader {
        return Ok(Outcome::Success);
    }
    let best_dir = config.out.join("best");
    match best {
        Some(m) if m < NOTHING_LEARNT => eprintln!(
            "done in {}, but validation mAP50 never passed {m:.3}: {} holds weights that have learnt nothing useful",
            clock(run_started.elapsed().as_secs_f64()),
            best_dir.display()
        ),
        _ => eprintln!(
            "done in {}: {} holds the EMA weights with the best validation mAP50-95",
            clock(run_started.elapsed().as_secs_f64()),
            best_dir.display()
        ),
    }
    eprintln!(
        "next, choose the operating points on the validation split:\n  hipfrac calibrate --model {} --data {}",
        best_dir.display(),
        config.val.display()
    );
    Ok(Outcome::Success)
}

/// Whether to warn: a fifth of the run is done and validation mAP50 never reached
/// [`NOTHING_LEARNT`] (no validation yet: no warning).
fn nothing_learnt_yet(epoch: i64, epochs: i64, best: Option<f64>) -> bool {
    epoch * 5 >= epochs && best.is_some_and(|b| b < NOTHING_LEARNT)
}

/// Seconds as `1h02m`, `4m05s` or `12s`.
fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_comes_after_a_fifth_of_the_run_and_only_without_learning() {
        assert!(!nothing_learnt_yet(85, 430, Some(0.0)), "before a fifth");
        assert!(nothing_learnt_yet(86, 430, Some(0.004)));
        assert!(!nothing_learnt_yet(86, 430, Some(0.2)), "it learns");
        assert!(!nothing_learnt_yet(200, 430, None), "no validation yet");
        assert_eq!(
            (clock(12.4), clock(245.0), clock(3720.0)),
            ("12s".into(), "4m05s".into(), "1h02m".into())
        );
    }
}
