//! Arguments of the commands that handle files and datasets: each command's options are
//! hipfrac-files' own (they derive `Args`), so their help is written once, beside the code
//! that reads them.

use clap::{Args, Subcommand};
use hipfrac_files::{dataset, labels, phantom};
use serde::{Deserialize, Serialize};

#[derive(Debug, Args, Serialize, Deserialize)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PhantomArgs {
    #[command(subcommand)]
    pub command: Option<PhantomCommand>,
    #[command(flatten)]
    pub options: phantom::PhantomOptions,
}

#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum PhantomCommand {
    /// Draw a contact sheet (thumbnails with boxes and labels) of a phantom folder.
    Sheet(phantom::SheetOptions),
    /// List the built-in site profiles.
    Sites,
}

#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum DatasetCommand {
    /// Check a dataset folder: every VOC XML against its image (missing images, extra
    /// images, boxes outside or degenerate, size mismatch, unknown labels, duplicate images),
    /// then print counts per class and per patient like the paper's Table I. Exit 1 on errors.
    Check(dataset::CheckOptions),
    /// Split a dataset into train/validation/test by patient (no patient in two splits),
    /// stratified by class, and write CSV manifests.
    Split(dataset::SplitOptions),
    /// Cross-validation folds of one or more manifests, by patient (a patient's images in
    /// one fold, across all the manifests) and stratified by label: for each fold i and each
    /// input NAME.csv, writes OUT/fold-i/NAME.test.csv (that fold) and NAME.train.csv (the
    /// others), paths relative to OUT/fold-i.
    Folds(dataset::FoldsOptions),
    /// Join manifests into one (paths rewritten relative to the new manifest's folder), e.g.
    /// phantom radiographs and real films for one training run. An image listed twice is an
    /// error.
    Merge(dataset::MergeOptions),
}

#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum LabelsCommand {
    /// Convert annotations: VOC folder ⇄ COCO json ⇄ YOLO folder.
    ///
    /// YOLO has no image sizes, so reading YOLO needs the images (`--images`).
    Convert(labels::LabelsConvertOptions),
    /// List the labels (the five of the paper and a fracture of unknown type) with their
    /// accepted names.
    List,
}
