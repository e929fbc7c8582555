//! `hipfrac merge-shards`: the summaries of `predict --shard I/N` runs → one summary.csv.

use crate::Outcome;
use anyhow::{bail, Context, Result};
use clap::Args;
use hipfrac_report::summaries;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What `hipfrac merge-shards` is asked to do.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct MergeShardsOptions {
    /// The --out folder the shards wrote to.
    pub out: PathBuf,
    /// Replace an existing summary.csv.
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(args: MergeShardsOptions) -> Result<Outcome> {
    let target = args.out.join("summary.csv");
    if target.exists() && !args.overwrite {
        bail!("{} exists; pass --overwrite to replace it", target.display());
    }
    let mut shards: BTreeMap<u32, BTreeMap<u32, PathBuf>> = BTreeMap::new();
    let entries =
        std::fs::read_dir(&args.out).with_context(|| format!("{}: cannot read the folder", args.out.display()))?;
    for entry in entries {
        let path = entry?.path();
        if let Some((index, count)) = path
            .file_name()
            .and_then(|n| summaries::parse_shard_file_name(&n.to_string_lossy()))
        {
            shards.entry(count).or_default().insert(index, path);
        }
    }
    let (count, found) = match shards.len() {
        0 => bail!(
            "{}: no summary.shard-I-of-N.csv (written by `hipfrac predict --shard I/N`)",
            args.out.display()
        ),
        1 => shards.into_iter().next().expect("one"),
        _ => bail!(
            "{}: summaries of shard runs with different N ({}); keep one run's",
            args.out.display(),
            shards.keys().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
        ),
    };
    let missing: Vec<String> = (0..count)
        .filter(|i| !found.contains_key(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{}: shard(s) {} have not written their summary (still running, or failed before the end)",
            args.out.display(),
            missing.join(", ")
        );
    }
    let parts: Vec<PathBuf> = found.into_values().collect();
    let (bytes, rows) = summaries::join(&parts)?;
    hipfrac_dicom::atomic::write_atomic(&target, &bytes)?;
    eprintln!("merged {count} shard summaries ({rows} rows) → {}", target.display());
    Ok(Outcome::Success)
}
