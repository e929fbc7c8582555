//! hipfrac-report: the reports as a library, without libtorch.
//!
//! * [`evaluation`]: measures an evaluation's cases ([`evaluation::measure`]) and renders
//!   report.html, report.md, metrics.csv and cases.csv.
//! * [`study`]: the reader study's report (tables per reader and phase, MRMC, McNemar, κ).
//! * [`table`]: a table as a value, rendered as Markdown, HTML or CSV.
//! * [`plot`]: small SVG plots on the unit square (PR, ROC, calibration, readers).
//! * [`predictions`]: `hipfrac predict`'s JSON record and summary.csv row.
//! * [`cases`]: the cases.csv row, written by the evaluation and read by the study report.
//! * [`dicom_outputs`]: a prediction as the DICOM objects a PACS stores (SC, GSPS, SR).

pub mod cases;
pub mod dicom_outputs;
pub mod evaluation;
pub mod format;
pub mod plot;
pub mod predictions;
pub mod study;
pub mod summaries;
pub mod table;

/// A report that could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write the report")]
    Write(#[source] hipfrac_dicom::Error),
    #[error(transparent)]
    Cases(#[from] cases::CasesError),
    #[error(transparent)]
    Reads(#[from] study::ReadsError),
    #[error(transparent)]
    Truth(#[from] hipfrac_data::Error),
    #[error("{}: the reads do not make a study", path.display())]
    Study {
        path: std::path::PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
