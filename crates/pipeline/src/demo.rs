//! `hipfrac demo`: the whole paper end to end on phantom data — simulate an internal and an
//! external site, split the internal one by patient, train, calibrate on validation, evaluate
//! on the internal test split (Table II) and the external site (Table III), write the report.

use crate::evaluate::{choose_hip_threshold, choose_points, model_info, run_sections};
use crate::{load_model, progress, Outcome};
use anyhow::{bail, Context, Result};
use hipfrac_core::DeviceSpec;
use hipfrac_core::Stage;
use hipfrac_data::manifest::{self, ManifestRow};
use hipfrac_phantom::demo_set::{DemoSet, Generator};
use hipfrac_report::evaluation::{one_screen, write_report, ReportContext};
use hipfrac_train::trainer::Trainer;
use hipfrac_train::TrainConfig;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What `hipfrac demo` is asked to do.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Output folder (must not exist).
    pub out: PathBuf,
    /// The paper's configuration (DAMO-YOLO-T, 1024 px, batch 64, 430 epochs, 4,000 internal
    /// images, single stage): for a GPU.
    pub full: bool,
    /// hipfrac's two-stage detector (a hip localiser, then the fracture detector on each hip's
    /// crop); false: the paper's single stage.
    pub two_stage: bool,
    /// Override the number of training epochs.
    pub epochs: Option<i64>,
    /// Override the number of internal images (split by patient, see --ratios).
    pub internal_images: Option<usize>,
    /// Train, validation and test shares of the internal patients (the paper's 80/10/10 by
    /// default; each must be above 0). A larger test share narrows the test's intervals.
    pub ratios: hipfrac_data::split::Ratios,
    /// Override the number of external-site images.
    pub external_images: Option<usize>,
    /// Seed of the simulation, split and training.
    pub seed: u64,
    /// Probability of a random re-acquisition of each training image (the training config's
    /// `acquisition`; 0, the default, trains as the paper does).
    pub acquisition: f64,
    /// auto, cpu, cuda or cuda:N (default: the CPU; with --full, CUDA when usable).
    pub device: Option<DeviceSpec>,
    /// Longer side of the simulated radiographs in pixels (default: the network's input size;
    /// twice that for the two-stage detector, whose crops read the hips at a higher resolution
    /// than the whole film). Compare the two configurations at the same value.
    pub phantom_px: Option<u32>,
    /// The phantom's simulator (v1, the default; v2 for `bench/real.sh`'s transfer measure).
    pub generator: hipfrac_phantom::demo_set::Generator,
    /// The real films the two-stage localiser learns beside the phantom (hip boxes on real AP
    /// films, and out-of-scope films it must refuse): a folder with `hips.csv` and
    /// `out-of-scope.csv` manifests. Default: the project's `data/real/fracatlas` (FracAtlas,
    /// CC BY 4.0), looked for in the current folder and beside the executable's checkout.
    pub real: Option<PathBuf>,
    /// Train on the phantom alone (no real films), as hipfrac did before it had real hip
    /// boxes; `bench/real.sh` measures what the real films add.
    pub phantom_only: bool,
}

/// The real films of the demo's localiser: its training and validation manifests (each
/// beside the phantom's) and the validation films it must refuse.
struct RealFilms {
    /// Where they came from.
    dir: PathBuf,
    train: PathBuf,
    val: PathBuf,
    val_out_of_scope: PathBuf,
    counts: String,
}

/// Where the project's real films are: `--real`, else `data/real/fracatlas` in the current
/// folder or in the checkout the executable was built in.
fn real_films_dir(args: &DemoOptions) -> Result<PathBuf> {
    if let Some(dir) = &args.real {
        return Ok(dir.clone());
    }
    let relative = Path::new("data/real/fracatlas");
    let mut tried = vec![relative.to_path_buf()];
    if let Ok(exe) = std::env::current_exe() {
        // target/{debug,release}/hipfrac-torch → the checkout.
        if let Some(root) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            tried.push(root.join(relative));
        }
    }
    tried.iter().find(|d| d.join("hips.csv").is_file()).cloned().ok_or_else(|| {
        anyhow::anyhow!(
            "the real films the hip localiser learns from were not found (looked in {}); run from the hipfrac checkout, give --real DIR, or --phantom-only",
            tried.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    })
}

/// The real films split for the demo by patient (FracAtlas ID blocks): one fold of five for
/// validation (the hip threshold is chosen there), the rest for training; manifests written
/// in `out/real`, the phantom's splits merged in.
fn real_films(dir: &Path, out: &Path, phantom_train: &Path, phantom_val: &Path, seed: u64) -> Result<RealFilms> {
    let folder = out.join("real");
    std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
    let hips = manifest::read_relative_to(&dir.join("hips.csv"), &folder)?;
    let others = manifest::read_relative_to(&dir.join("out-of-scope.csv"), &folder)?;
    let is_hip: std::collections::HashSet<String> = hips.iter().map(|r| r.image.clone()).collect();
    let all: Vec<ManifestRow> = hips.iter().chain(&others).cloned().collect();
    let folds = hipfrac_data::split::folds(&all, 5, seed);
    let val: Vec<&ManifestRow> = folds[0].iter().collect();
    let train: Vec<&ManifestRow> = folds[1..].iter().flatten().collect();
    let phantom = |p: &Path| manifest::read_relative_to(p, &folder);
    let mut train_rows = phantom(phantom_train)?;
    train_rows.extend(train.iter().map(|r| (*r).clone()));
    let mut val_rows = phantom(phantom_val)?;
    val_rows.extend(val.iter().filter(|r| is_hip.contains(&r.image)).map(|r| (*r).clone()));
    let val_others: Vec<ManifestRow> = val
        .iter()
        .filter(|r| !is_hip.contains(&r.image))
        .map(|r| (*r).clone())
        .collect();
    let paths = RealFilms {
        dir: dir.to_path_buf(),
        train: folder.join("localiser-train.csv"),
        val: folder.join("localiser-val.csv"),
        val_out_of_scope: folder.join("out-of-scope-val.csv"),
        counts: format!(
            "{} real AP films and {} out-of-scope films for training, {} and {} for validation",
            train.iter().filter(|r| is_hip.contains(&r.image)).count(),
            train.iter().filter(|r| !is_hip.contains(&r.image)).count(),
            val.len() - val_others.len(),
            val_others.len()
        ),
    };
    manifest::write(&paths.train, &train_rows)?;
    manifest::write(&paths.val, &val_rows)?;
    manifest::write(&paths.val_out_of_scope, &val_others)?;
    Ok(paths)
}

/// The CPU demo's crop detector input with two stages. On radiographs simulated at 640 px a
/// hip's crop (1.4× the hip box) is about 220–280 px, so 256 px reads it at about its own
/// resolution, where the single stage's 320 would only enlarge it at 1.6× the cost (each
/// radiograph gives a crop per hip: 60 epochs at 320 took 556 s, the whole demo 835 s; 2
/// cores, 2026-12-02).
const TWO_STAGE_CPU_CROP_PX: i64 = 256;

/// The demo's data and schedule: the CPU default or `--full` (the paper's configuration:
/// DAMO-YOLO-T at 1024 px, batch 64, 430 epochs, mosaic and mixup — for a GPU).
fn plan(args: &DemoOptions, out: &Path) -> (DemoSet, TrainConfig) {
    let (mut config, internal, external) = if args.full {
        (TrainConfig::default(), 4000, 400)
    } else {
        (TrainConfig::cpu_demo(), 520, 200)
    };
    // The simulated radiographs: the network's input size for the single stage, twice that
    // for two stages (the crops read the hips at a higher resolution than the whole film).
    let two_stage = args.two_stage;
    let phantom_px = config.image_size as usize * if two_stage { 2 } else { 1 };
    if two_stage {
        config.stage = Stage::HipCrops;
        if !args.full {
            config.image_size = TWO_STAGE_CPU_CROP_PX;
        }
    }
    config.train = out.join("internal/splits/train.csv");
    config.val = out.join("internal/splits/val.csv");
    config.out = out.join("run");
    config.seed = args.seed;
    config.epochs = args.epochs.unwrap_or(config.epochs);
    config.acquisition = args.acquisition;
    let set = DemoSet {
        generator: args.generator,
        internal_sites: ["site-a".into(), "site-b".into()],
        external_site: "site-c".into(),
        internal: args.internal_images.unwrap_or(internal),
        external: args.external_images.unwrap_or(external),
        seed: args.seed,
        size: args.phantom_px.map_or(phantom_px, |px| px as usize),
        ratios: args.ratios,
    };
    (set, config)
}

/// Runs the demo end to end into `args.out` (which must not exist).
pub fn run(args: DemoOptions) -> Result<Outcome> {
    let out = args.out.clone();
    if out.exists() {
        bail!(
            "{} exists (an earlier demo); choose another --out or move it away — nothing is overwritten",
            out.display()
        );
    }
    let spec = args
        .device
        .unwrap_or(if args.full { DeviceSpec::Auto } else { DeviceSpec::Cpu });
    let device = hipfrac_model::device::select(spec)?;
    let (set, config) = plan(&args, &out);
    // Found before any work, so a missing folder costs nothing.
    let real_dir = if args.two_stage && !args.phantom_only {
        Some(real_films_dir(&args)?)
    } else {
        None
    };
    let started = Instant::now();
    let size = set.size;
    let say = |what: &str| eprintln!("[{:>5.0} s] {what}", started.elapsed().as_secs_f64());
    say(&format!(
        "hipfrac demo → {} ({} preset, radiographs simulated at {} px by phantom {}, {} epochs, {device:?}). PHANTOM data: it shows the pipeline working, not clinical performance.",
        out.display(),
        config.model.preset,
        size,
        match set.generator {
            Generator::V1 => "v1",
            Generator::V2 => "v2",
        },
        config.epochs
    ));

    // 1. Data: an internal set (two hospitals, split by patient) and an external one.
    let bar = progress::bar(0, "simulating");
    let data = set.build(
        &out,
        |site, count| {
            bar.reset();
            bar.set_length(count as u64);
            bar.set_message(format!("simulating {site}"));
        },
        || bar.inc(1),
    )?;
    bar.finish_and_clear();
    say(&format!(
        "simulated {} internal ({}: {} train / {} validation / {} test, split by patient) and {} external ({}) images",
        data.internal,
        set.internal_sites.join(" + "),
        data.train,
        data.val,
        data.test,
        data.external,
        set.external_site
    ));

    // 2. Train (the two-stage system: the hip localiser first, then the crop detector).
    let two_stage = args.two_stage;
    let real = match &real_dir {
        Some(dir) => {
            let real = real_films(dir, &out, &data.train_csv, &data.val_csv, args.seed)?;
            say(&format!(
                "real films for the hip localiser ({}): {}",
                real.dir.display(),
                real.counts
            ));
            Some(real)
        }
        None => None,
    };
    let mut trained = Vec::new();
    if two_stage {
        let localiser = localiser_config(&config, &out, real.as_ref());
        say(&format!(
            "training the hip localiser ({} preset, {} px, {} epochs)",
            localiser.model.preset, localiser.image_size, localiser.epochs
        ));
        trained.push(("hip localiser", train(&localiser, device, &say)?, localiser));
    }
    trained.push(("detector", train(&config, device, &say)?, config.clone()));
    if two_stage {
        copy_model(&out.join("run-hips/best"), &out.join("run/best/localiser"))?;
    }

    // 3. Calibrate the operating points on validation, then evaluate.
    let model_dir = out.join("run/best");
    let mut predictor = load_model(&model_dir, spec)?;
    if let Some(real) = &real {
        // The hip threshold between the validation hips (phantom and real) and the real
        // films that must be refused; then the fracture points on the phantom's validation.
        choose_hip_threshold(
            &mut predictor,
            &real.val,
            std::slice::from_ref(&real.val_out_of_scope),
            0.95,
        )?;
    }
    choose_points(&predictor, &data.val_csv, 0.95, 0.98)?;
    let predictor = load_model(&model_dir, spec)?;
    let sections = run_sections(
        &predictor,
        &[
            ("internal test".to_string(), data.test_csv.clone()),
            (format!("external ({})", set.external_site), data.external_csv.clone()),
        ],
    )?;
    let report_dir = out.join("report");
    let total = started.elapsed().as_secs_f64();
    let context = ReportContext {
        title: Some("hipfrac demo — phantom data".into()),
        notes: vec![
            format!(
                "Simulated {} internal images ({}) and {} external images ({}) at {size} px; internal split by patient {}.",
                data.internal,
                set.internal_sites.join(" + "),
                data.external,
                set.external_site,
                set.ratios
            ),
            trained
                .iter()
                .map(|(what, (seconds, map50), c)| {
                    format!(
                        "Trained the {what} ({} preset, stage {}, {} px) for {} epochs (batch {}, lr {:.5}, SGD momentum {}, weight decay {}, EMA {}) on {device:?}: {seconds:.0} s; validation mAP50 {}.",
                        c.model.preset,
                        c.stage.name(),
                        c.image_size,
                        c.epochs,
                        c.batch_size,
                        c.base_lr(),
                        c.momentum,
                        c.weight_decay,
                        c.ema_decay,
                        map50.map(|m| format!("{m:.3}")).unwrap_or_else(|| "–".into())
                    )
                })
                .collect::<Vec<_>>()
                .join(" "),
            match &real {
                Some(real) => format!(
                    "The hip localiser also learned real films ({}: {}; FracAtlas, CC BY 4.0), turned by 90° at random, its scope head from the out-of-scope ones which films are AP hip or pelvis views, and its threshold was chosen between the validation hips and the validation out-of-scope films.",
                    real.dir.display(),
                    real.counts
                ),
                None if two_stage => "The hip localiser learned the phantom alone (--phantom-only).".to_string(),
                None => String::new(),
            },
            format!("Operating points chosen on the validation split; whole demo {total:.0} s."),
        ]
        .into_iter()
        .filter(|note| !note.is_empty())
        .collect(),
    };
    write_report(&report_dir, &model_info(&predictor), &sections, &context)?;
    say("done");
    println!("hipfrac demo — PHANTOM results (simulated radiographs: they show the pipeline works, not how it would do on patients)\n");
    for s in &sections {
        println!("{}\n", one_screen(s));
    }
    println!("report: {}", report_dir.join("report.html").display());
    println!("model:  {}", model_dir.display());
    Ok(Outcome::Success)
}

/// The two-stage demo's hip localiser: the detector's recipe on the same splits, one class
/// (the phantom's `hip` boxes), on the whole film at 4/5 of the detector's input size (at
/// least 256 px: a proximal femur is large) and for a third of the epochs, at least 10
/// (finding a hip is easier than reading it: at 256 px its validation mAP50 was 1.000 from
/// epoch 10 of 30 on). Half its images are re-acquired at random (at least): its "no hip
/// here" decides abstention, so it must find hips whatever a site's look (without it, 5 of
/// 400 site-c radiographs were refused; at 192 px for 13 epochs, 12 of 200; 2026-12-02).
///
/// With real films (`real`), it learns them beside the phantom (real hip boxes, and
/// out-of-scope films without one), its scope head learns from the real ones which films are
/// AP hips, and a quarter of its images are turned by 90° (films stored turned). The phantom
/// alone has no film to refuse: no scope head then.
fn localiser_config(detector: &TrainConfig, out: &Path, real: Option<&RealFilms>) -> TrainConfig {
    let mut c = detector.clone();
    c.stage = Stage::Hips;
    c.acquisition = c.acquisition.max(0.5);
    c.model.scope_head = real.is_some();
    if let Some(real) = real {
        c.train = real.train.clone();
        c.val = real.val.clone();
        c.rotate90 = 0.25;
    }
    c.out = out.join("run-hips");
    c.image_size = (detector.image_size * 4 / 5 / 32 * 32).max(256);
    c.epochs = (detector.epochs / 3).max(10).min(detector.epochs);
    c.no_aug_epochs = c.no_aug_epochs.min(c.epochs);
    c.warmup_epochs = c.warmup_epochs.min(c.epochs as f64);
    c.val_interval = c.val_interval.min(c.epochs);
    c
}

/// Trains one model with a progress bar; its time in seconds and last validation mAP50.
fn train(
    config: &TrainConfig,
    device: hipfrac_model::device::Device,
    say: &dyn Fn(&str),
) -> Result<(f64, Option<f64>)> {
    let started = Instant::now();
    let mut trainer = Trainer::new(config.clone(), device, false)
        .with_context(|| format!("cannot start training {}", config.out.display()))?;
    let bar = progress::bar(0, "epoch");
    let mut on_step = |step: usize, steps: usize, loss: f64| {
        bar.set_length(steps as u64);
        bar.set_position(step as u64);
        bar.set_message(format!("loss {loss:.3}"));
    };
    let mut last_map = None;
    let mut on_epoch = |log: &hipfrac_train::trainer::EpochLog| {
        if let Some(m) = log.map50 {
            last_map = Some(m);
            bar.suspend(|| {
                say(&format!(
                    "epoch {}/{}: loss {:.3}, validation mAP50 {m:.3}",
                    log.epoch, config.epochs, log.loss
                ))
            });
        }
    };
    trainer.run(&mut on_step, &mut on_epoch)?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    say(&format!("trained {} in {seconds:.0} s", config.out.display()));
    Ok((seconds, last_map))
}

/// Copies a model folder's files (not its subfolders) to `to`.
fn copy_model(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let path = entry?.path();
        if path.is_file() {
            let target = to.join(path.file_name().unwrap_or_default());
            std::fs::copy(&path, &target)
                .with_context(|| format!("cannot copy {} to {}", path.display(), target.display()))?;
        }
    }
    Ok(())
}
