//! Data-parallel training over c10d: `hipfrac train` run as two processes with torchrun's
//! environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), gradients all-reduced by
//! ProcessGroupGloo on the CPU.

use crate::support::{free_port, hipfrac};
use hipfrac_model::distributed;
use hipfrac_model::loss::{detection_loss, AlignOta, LossWeights};
use hipfrac_model::{DamoYolo, ModelConfig};
use hipfrac_train::data::{augment, to_tensors, Augment};
use hipfrac_train::trainer::Trainer;
use hipfrac_train::TrainConfig;
use std::path::Path;
use tch::{nn, Device, Tensor};

/// One step, no augmentation: 4 phantom radiographs, 2 a process.
fn write_config(dir: &Path, name: &str, batch: usize) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "train = \"data/manifest.csv\"\nval = \"data/manifest.csv\"\nout = \"{name}\"\nimage_size = 64\nbatch_size = {batch}\nbase_lr_per_image = 0.01\nepochs = 1\nwarmup_epochs = 0.0\nno_aug_epochs = 1\nval_interval = 1\nseed = 3\nmosaic = 0.0\nmixup = 0.0\nflip = 0.0\nintensity_jitter = 0.0\nscale_jitter = 0.0\ntranslate = 0.0\n[model]\npreset = \"nano\"\n"
        ),
    )
    .unwrap();
    path
}

/// Two processes each train on their half of a global batch; after the step rank 0's weights
/// equal one process's step on the mean of the two halves' gradients (each half through the
/// network on its own, as DistributedDataParallel without SyncBatchNorm: BatchNorm normalises
/// by each process's own batch, so a single batch of all four images would differ). Tolerance:
/// float rounding of the all-reduce, at most 0.1 % of the step's largest change. A step on one
/// half's gradient alone must differ by more than 5 % of it, so the test fails without the
/// all-reduce. Asserted to within 0.1 % of the step's largest change (the all-reduce may round
/// otherwise than one process does); measured here: a difference of 0.
#[test]
fn two_gloo_processes_step_as_one_on_the_mean_gradient() {
    if !distributed::available() {
        let message = "this build has no Gloo headers (libgloo-dev): data-parallel training cannot be tested";
        assert!(
            std::env::var_os("HIPFRAC_REQUIRE_GLOO").is_none(),
            "{message}; CI installs libgloo-dev (scripts/setup.sh)"
        );
        eprintln!("skipped: {message}");
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    hipfrac()
        .args(["phantom", "--count", "4", "--size", "96", "--seed", "12", "--out"])
        .arg(&data)
        .assert()
        .success();
    let ddp = write_config(temp.path(), "ddp", 2);
    let port = free_port().to_string();
    let children: Vec<_> = (0..2)
        .map(|rank| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("hipfrac"))
                .args(["train", "--device", "cpu", "--config"])
                .arg(&ddp)
                .envs([
                    ("RANK", rank.to_string()),
                    ("WORLD_SIZE", "2".into()),
                    ("MASTER_ADDR", "127.0.0.1".into()),
                    ("MASTER_PORT", port.clone()),
                    ("HIPFRAC_DIST_TIMEOUT_S", "60".into()),
                ])
                .output_spawned()
        })
        .collect();
    for (rank, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        assert!(output.status.success(), "rank {rank}: {stderr}");
        if rank == 0 {
            assert!(
                stderr.contains("data-parallel over c10d (Gloo): 2 processes, 2 images a step each, 4 in all"),
                "{stderr}"
            );
        } else {
            assert!(stderr.trim().is_empty(), "only rank 0 reports: {stderr}");
        }
    }
    let log = std::fs::read_to_string(temp.path().join("ddp/log.csv")).unwrap();
    assert_eq!(log.lines().count(), 2, "one epoch of one step, logged once: {log}");
    let trained = Tensor::read_safetensors(temp.path().join("ddp/last/model.safetensors")).unwrap();

    // The reference, in this process: the same start (seed 3), rank 0's and rank 1's halves
    // of the epoch's one global batch, the mean of their gradients, one SGD step at the global
    // batch's learning rate.
    let single = TrainConfig::from_file(&write_config(temp.path(), "single", 4)).unwrap();
    let trainer = Trainer::new(single.clone(), Device::Cpu, false).unwrap();
    let [global] = trainer.epoch_batches(0).try_into().unwrap();
    let halves = [&global[..2], &global[2..]];
    let step = |halves: &[&[usize]]| -> nn::VarStore {
        tch::manual_seed(single.seed as i64);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = DamoYolo::new(&vs.root(), &single.model_config(), false);
        let losses: Vec<Tensor> = halves
            .iter()
            .map(|half| {
                let parts = half
                    .iter()
                    .map(|&i| augment(&trainer.train[i], &Augment::default(), 0))
                    .collect();
                let (images, targets) = to_tensors(parts, single.image_size, Device::Cpu);
                detection_loss(
                    &model.forward_t(&images, true),
                    &targets,
                    &ModelConfig::STRIDES,
                    &AlignOta::default(),
                    LossWeights::default(),
                )
                .total
            })
            .collect();
        if losses.is_empty() {
            return vs;
        }
        let mean = Tensor::stack(&losses, 0).mean(None);
        let mut sgd = hipfrac_train::optim::Sgd::new(single.momentum, single.nesterov, single.weight_decay);
        // The trainer's schedule at iteration 0 of 1 (no warmup; the last epoch is flat).
        let lr = hipfrac_train::optim::learning_rate(0, 1, 0, 1, single.base_lr(), single.min_lr_ratio);
        sgd.backward_step(&vs, &mean, lr);
        vs
    };
    let reference = step(&halves);
    let one_half = step(&halves[..1]);
    let initial = step(&[]);
    let (mut largest, mut apart, mut size) = (0f64, 0f64, 0f64);
    let trained: std::collections::HashMap<String, Tensor> = trained.into_iter().collect();
    for (name, expected) in reference.variables() {
        if !expected.requires_grad() {
            continue; // BatchNorm statistics: rank 0's, by design
        }
        let got = &trained[&name];
        largest = largest.max((got - &expected).abs().max().double_value(&[]));
        apart = apart.max((got - &one_half.variables()[&name]).abs().max().double_value(&[]));
        size = size.max((&expected - &initial.variables()[&name]).abs().max().double_value(&[]));
    }
    assert!(size > 1e-5, "the step should move the weights: {size}");
    eprintln!(
        "one step: largest change {size:e}, rank 0 vs the mean-gradient step {largest:e}, vs its own half {apart:e}"
    );
    assert!(
        largest <= 1e-3 * size,
        "rank 0's weights differ from the mean-gradient step by {largest} (the step moved them by up to {size})"
    );
    assert!(
        apart > 0.05 * size,
        "rank 0's weights equal a step on its own half ({apart} of {size}): the gradients were not all-reduced"
    );
}

/// `Command::spawn` with stderr captured.
trait SpawnCaptured {
    fn output_spawned(&mut self) -> std::process::Child;
}

impl SpawnCaptured for std::process::Command {
    fn output_spawned(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}
