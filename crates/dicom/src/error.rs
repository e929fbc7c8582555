use std::path::PathBuf;

/// Everything that can go wrong reading, converting or writing a radiograph. Every variant
/// names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not DICOM, or its structure is broken (e.g. truncated).
    #[error("{path}: not a readable DICOM file: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The file is DICOM but holds no image this program can use.
    #[error("{path}: {reason}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The pixel data could not be decoded.
    #[error("{path}: cannot decode pixel data ({transfer_syntax}): {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// Transfer Syntax UID.
        transfer_syntax: String,
        /// What the decoder said.
        reason: String,
    },
    /// A PNG could not be read or written.
    #[error("{path}: PNG: {reason}")]
    Png {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// An option does not fit the image (e.g. a window index the file does not have).
    #[error("{path}: {reason}")]
    Option {
        /// The file.
        path: PathBuf,
        /// What does not fit.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn unsupported(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Unsupported {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
