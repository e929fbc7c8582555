//! Why a study cannot be loaded or started. Each error names the file or thing concerned; the
//! cause (if any) is its `source`, never repeated in its own text (print the chain with
//! `hipfrac_core::error_chain`).

use std::path::PathBuf;

/// Why a study file or a workstation cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// The study file could not be read.
    #[error("cannot read the study file {path}")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The study file is not valid TOML for a study.
    #[error("{path} is not a valid study file")]
    ParseConfig {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    /// The study file parses but describes a study that cannot be run.
    #[error("{path}: {problem}")]
    InvalidConfig { path: PathBuf, problem: ConfigProblem },
    /// A phase shows the AI but the workstation was started without a model.
    #[error("study \"{study}\": phase \"{phase}\" shows the AI but no model was given to the workstation")]
    NoModel { study: String, phase: String },
    /// The case list (manifest) could not be read.
    #[error("cannot read the case list {path}")]
    Manifest {
        path: PathBuf,
        #[source]
        source: Box<hipfrac_data::Error>,
    },
    /// The case list is empty.
    #[error("the case list {path} has no cases")]
    NoCases { path: PathBuf },
    /// A case's image is not there.
    #[error("the case list {manifest} names the image {image}, which does not exist")]
    MissingImage { manifest: PathBuf, image: PathBuf },
    /// A case's image could not be read for the AI.
    #[error("cannot read the case image {path} for the AI")]
    ReadImage {
        path: PathBuf,
        #[source]
        source: Box<hipfrac_dicom::Error>,
    },
    /// The model failed on a case.
    #[error("the AI could not predict the case image {path}")]
    Predict {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The model answered a batch with the wrong number of predictions.
    #[error("the AI returned {returned} predictions for a batch of {images} images")]
    PredictionCount { images: usize, returned: usize },
    /// The study database could not be opened or created.
    #[error("cannot open the study database {path}")]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// What is wrong with a study file that parses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigProblem {
    #[error("a study needs at least one phase, one reader and one admin")]
    Empty,
    #[error("a phase shows the AI but no model is given")]
    AiWithoutModel,
    #[error("the name {0:?} is used twice (reader and admin names must be unique)")]
    DuplicateName(String),
    #[error("{0}: password_hash is not an argon2 hash (make one with `hipfrac study hash-password`)")]
    NotArgon2Hash(String),
    #[error("phase {0:?}: washout_days must be a number of days from 0 to 3650")]
    NegativeWashout(String),
    #[error("idle_minutes = {0}: must be at least 5")]
    IdleMinutes(f64),
    #[error("phase {0:?}: sequential needs ai = true (the unaided read is recorded before the AI is revealed)")]
    SequentialWithoutAi(String),
    #[error("phase {0:?}: phase names are unique, not empty, without ':' (the unaided reads of a sequential phase are exported as PHASE:unaided)")]
    BadPhaseName(String),
}
