//! `hipfrac train`.

use crate::cli::TrainArgs;
use crate::{progress, Outcome};
use anyhow::{Context, Result};
use hipfrac_train::trainer::Trainer;
use hipfrac_train::TrainConfig;

pub fn run(args: TrainArgs) -> Result<Outcome> {
    let config = TrainConfig::from_file(&args.config)?;
    let device = hipfrac_model::device::select(args.device)?;
    eprintln!("training {} preset at {} px on {device:?} → {}", config.model.preset, config.image_size, config.out.display());
    let mut trainer = Trainer::new(config.clone(), device, args.resume).context("cannot start training")?;
    eprintln!("{} training and {} validation images; starting at epoch {}", trainer.train.len(), trainer.val.len(), trainer.state.epoch + 1);
    let bar = progress::bar(0, "epoch");
    let mut on_step = |step: usize, steps: usize, loss: f64| {
        bar.set_length(steps as u64);
        bar.set_position(step as u64);
        bar.set_message(format!("loss {loss:.3}"));
    };
    let mut on_epoch = |log: &hipfrac_train::trainer::EpochLog| {
        let map = match (log.map50, log.map50_95) {
            (Some(a), Some(b)) => format!(", mAP50 {a:.3}, mAP50-95 {b:.3}"),
            _ => String::new(),
        };
        bar.suspend(|| eprintln!("epoch {}/{}: loss {:.4} (qfl {:.4}, giou {:.4}, dfl {:.4}), lr {:.5}{map}, {:.0} s", log.epoch, config.epochs, log.loss, log.qfl, log.giou, log.dfl, log.lr, log.seconds));
    };
    trainer.run(&mut on_step, &mut on_epoch)?;
    bar.finish_and_clear();
    eprintln!("done: {}/best holds the EMA weights with the best mAP50-95", config.out.display());
    Ok(Outcome::Success)
}
