//! `hipfrac merge-shards`: the summaries of `predict --shard I/N` runs → one summary.csv.

use crate::cli::MergeShardsArgs;
use crate::Outcome;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

/// `summary.shard-I-of-N.csv` → (I, N).
fn parse_name(name: &str) -> Option<(u32, u32)> {
    let middle = name.strip_prefix("summary.shard-")?.strip_suffix(".csv")?;
    let (index, count) = middle.split_once("-of-")?;
    Some((index.parse().ok()?, count.parse().ok()?))
}

pub fn run(args: MergeShardsArgs) -> Result<Outcome> {
    let target = args.out.join("summary.csv");
    if target.exists() && !args.overwrite {
        bail!("{} exists; pass --overwrite to replace it", target.display());
    }
    let mut shards: BTreeMap<u32, BTreeMap<u32, PathBuf>> = BTreeMap::new();
    let entries = std::fs::read_dir(&args.out).with_context(|| format!("{}: cannot read the folder", args.out.display()))?;
    for entry in entries {
        let path = entry?.path();
        if let Some((index, count)) = path.file_name().and_then(|n| parse_name(&n.to_string_lossy())) {
            shards.entry(count).or_default().insert(index, path);
        }
    }
    let (count, found) = match shards.len() {
        0 => bail!("{}: no summary.shard-I-of-N.csv (written by `hipfrac predict --shard I/N`)", args.out.display()),
        1 => shards.into_iter().next().expect("one"),
        _ => bail!("{}: summaries of shard runs with different N ({}); keep one run's", args.out.display(), shards.keys().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let missing: Vec<String> = (0..count).filter(|i| !found.contains_key(i)).map(|i| format!("{i}/{count}")).collect();
    if !missing.is_empty() {
        bail!("{}: shard(s) {} have not written their summary (still running, or failed before the end)", args.out.display(), missing.join(", "));
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header: Option<csv::StringRecord> = None;
    let mut seen = HashSet::new();
    let mut rows = 0usize;
    for path in found.values() {
        let mut reader = csv::Reader::from_path(path).with_context(|| format!("{}: cannot read", path.display()))?;
        let this = reader.headers().with_context(|| format!("{}: no header", path.display()))?.clone();
        match &header {
            None => {
                writer.write_record(&this)?;
                header = Some(this);
            }
            Some(first) if first != &this => bail!("{}: other columns than the other shards' (another hipfrac version?)", path.display()),
            Some(_) => {}
        }
        for record in reader.records() {
            let record = record.with_context(|| format!("{}: unreadable row", path.display()))?;
            let input = record.get(0).unwrap_or_default().to_string();
            if !seen.insert(input.clone()) {
                bail!("{}: {input} is in two shards' summaries; were the shards run with different inputs?", path.display());
            }
            writer.write_record(&record)?;
            rows += 1;
        }
    }
    hipfrac_dicom::atomic::write_atomic(&target, &writer.into_inner()?)?;
    eprintln!("merged {count} shard summaries ({rows} rows) → {}", target.display());
    Ok(Outcome::Success)
}
