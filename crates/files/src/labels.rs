//! `hipfrac labels convert|list`.

use crate::Outcome;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use hipfrac_data::{coco, voc, yolo, Annotation, LabelMap};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// An annotation format: `voc`, LabelImg Pascal VOC XML, one file per image; `yolo`, YOLO txt,
/// one file per image (class and normalised box); `coco`, one COCO json for all images. (Said
/// here, not on each variant: `--from` and `--to` list the names alone.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum Format {
    Voc,
    Yolo,
    Coco,
}

/// What `hipfrac labels convert` is asked to do.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct LabelsConvertOptions {
    /// Input format.
    #[arg(long)]
    pub from: Format,
    /// Input: a folder (VOC, YOLO) or a .json file (COCO).
    pub input: PathBuf,
    /// Output format.
    #[arg(long)]
    pub to: Format,
    /// Output: a folder (VOC, YOLO) or a .json file (COCO).
    pub output: PathBuf,
    /// Folder of the images (needed to read YOLO: image sizes).
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Label map file (`name = CODE` per line).
    #[arg(long)]
    pub label_map: Option<PathBuf>,
}

fn read_voc_folder(dir: &Path, labels: &LabelMap) -> Result<Vec<Annotation>> {
    let mut xmls: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml")))
        .collect();
    xmls.sort();
    if xmls.is_empty() {
        bail!("{}: no VOC XML files", dir.display());
    }
    xmls.iter().map(|x| Ok(voc::read(x, labels)?.annotation)).collect()
}

pub fn convert(args: LabelsConvertOptions) -> Result<Outcome> {
    let labels = match &args.label_map {
        Some(p) => LabelMap::from_file(p)?,
        None => LabelMap::default(),
    };
    let annotations = match args.from {
        Format::Voc => read_voc_folder(&args.input, &labels)?,
        Format::Coco => coco::read(&args.input, &labels)?,
        Format::Yolo => {
            let images = args
                .images
                .as_deref()
                .context("reading YOLO needs --images (YOLO stores no image sizes)")?;
            yolo::read(&args.input, images, &labels)?
        }
    };
    // Nothing is written unless every box and every output name is sound.
    hipfrac_data::validate(&args.input, &annotations)?;
    match args.to {
        Format::Voc => {
            let folder = args
                .output
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("images")
                .to_string();
            for a in &annotations {
                let stem = Path::new(&a.filename)
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or(&a.filename);
                let path = args.output.join(format!("{stem}.xml"));
                voc::write(&path, &voc::VocFile::new(a.clone(), &folder))?;
            }
        }
        Format::Coco => coco::write(&args.output, &annotations)?,
        Format::Yolo => yolo::write(&args.output, &annotations)?,
    }
    let boxes: usize = annotations.iter().map(|a| a.objects.len()).sum();
    eprintln!(
        "converted {} images, {boxes} boxes → {}",
        annotations.len(),
        args.output.display()
    );
    Ok(Outcome::Success)
}

pub fn list() -> Result<Outcome> {
    for label in hipfrac_core::Label::EVERY {
        println!("{:8} {}", label.code(), label.full_name());
        println!("         accepted: {}", label.aliases().join(", "));
    }
    Ok(Outcome::Success)
}
