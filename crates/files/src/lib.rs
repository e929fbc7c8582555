//! hipfrac's file commands as library functions, none of which runs a model (so the `hipfrac`
//! binary that runs them links no libtorch): convert DICOM to PNG, de-identify, check, split
//! and fold datasets, convert labels, simulate phantom radiographs, merge the summaries of
//! sharded predictions, write a reader study's report, and expand file and folder arguments
//! into jobs. The command line parses arguments into the options here (each derives clap's
//! `Args`: its doc comments are the command's --help); these functions report on stderr as
//! they go.

pub mod convert;
pub mod dataset;
pub mod deid;
pub mod inputs;
pub mod labels;
pub mod phantom;
pub mod progress;
pub mod shards;
pub mod study;

pub use hipfrac_core::Outcome;
