use std::path::PathBuf;

/// An annotation or dataset fault, always naming the file. The cause, where there is one, is
/// the error's [`source`](std::error::Error::source) (print the chain, e.g. with
/// `hipfrac_core::error_chain` or anyhow's `{:#}`, to see it).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read or written.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The content is malformed or refused.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An annotation names its image with something other than a plain file name (a folder,
    /// `..`, an absolute path), which could point outside the dataset folder.
    #[error("{}: filename {name:?} is not a plain file name inside the dataset folder", path.display())]
    Filename {
        /// The annotation file.
        path: PathBuf,
        /// The name it gives.
        name: String,
    },
    /// A label name that is neither one of the five labels nor in the label map.
    #[error("{}", path.display())]
    Label {
        /// The file that uses it.
        path: PathBuf,
        /// The unknown name.
        #[source]
        source: hipfrac_core::ParseLabelError,
    },
    /// A label map line whose code is not a label.
    #[error("{}: line {line}", path.display())]
    LabelMapLine {
        /// The label map file.
        path: PathBuf,
        /// Line number (from 1).
        line: usize,
        /// The unknown code.
        #[source]
        source: hipfrac_core::ParseLabelError,
    },
    /// An XML annotation that is not well-formed.
    #[error("{}: malformed XML at byte {position}", path.display())]
    Xml {
        /// The file.
        path: PathBuf,
        /// Byte offset where the parser stopped.
        position: u64,
        /// What the parser said.
        #[source]
        source: quick_xml::Error,
    },
    /// XML text with a bad escape or entity.
    #[error("{}: bad text in <{element}>", path.display())]
    XmlText {
        /// The file.
        path: PathBuf,
        /// The element path, e.g. `annotation/filename`.
        element: String,
        /// What the parser said.
        #[source]
        source: quick_xml::Error,
    },
    /// A COCO file that is not COCO json.
    #[error("{}: not a COCO json", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// What the json parser said.
        #[source]
        source: serde_json::Error,
    },
    /// A CSV manifest that cannot be read or written.
    #[error("{}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// What the CSV library said.
        #[source]
        source: csv::Error,
    },
    /// A manifest row that does not fit the manifest's columns.
    #[error("{}: row {row}", path.display())]
    CsvRow {
        /// The file.
        path: PathBuf,
        /// Row number as a spreadsheet shows it (the header is row 1).
        row: usize,
        /// What the CSV library said.
        #[source]
        source: csv::Error,
    },
    /// A dataset folder that cannot be walked.
    #[error("{}", path.display())]
    Walk {
        /// The folder.
        path: PathBuf,
        /// What failed, and where below the folder.
        #[source]
        source: walkdir::Error,
    },
    /// An image could not be read.
    #[error(transparent)]
    Image(#[from] hipfrac_dicom::Error),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every level of `error`'s chain, outermost first.
    fn chain(error: &dyn std::error::Error) -> Vec<String> {
        let mut levels = vec![error.to_string()];
        let mut source = error.source();
        while let Some(cause) = source {
            levels.push(cause.to_string());
            source = cause.source();
        }
        levels
    }

    #[test]
    fn messages_name_the_file_and_do_not_repeat_their_cause() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.xml");
        let csv = dir.path().join("manifest.csv");
        std::fs::write(&csv, "image,annotation,patient,site,label\na.png,a.xml,P1,S,femur\n").unwrap();
        let labels = dir.path().join("labels.txt");
        std::fs::write(&labels, "# map\nGarden 1 = VF\nshaft = femur\n").unwrap();
        let bad_xml = "<annotation><filename>a.png</filename></wrong>";
        let errors = [
            crate::voc::read(&missing, &crate::LabelMap::default()).unwrap_err(),
            crate::manifest::read(&csv).unwrap_err(),
            crate::LabelMap::from_file(&labels).unwrap_err(),
            crate::voc::parse(bad_xml, std::path::Path::new("b.xml"), &crate::LabelMap::default()).unwrap_err(),
            crate::coco::parse("[", std::path::Path::new("c.json"), &crate::LabelMap::default()).unwrap_err(),
        ];
        let expected = [
            format!("{}: ", missing.display()),
            format!("{}: row 2: ", csv.display()),
            format!("{}: line 3: unknown label \"femur\"", labels.display()),
            "b.xml: malformed XML at byte".to_string(),
            "c.json: not a COCO json: ".to_string(),
        ];
        for (error, expected) in errors.iter().zip(expected) {
            let levels = chain(error);
            assert!(levels.len() >= 2, "{levels:?}");
            // (Only this crate's level is checked: quick-xml's own errors repeat theirs.)
            assert!(
                !levels[0].contains(&levels[1]),
                "{:?} repeats its cause {:?}",
                levels[0],
                levels[1]
            );
            let text = hipfrac_core::error_chain(error);
            assert!(text.starts_with(&expected), "{text:?} should start with {expected:?}");
        }
    }

    #[test]
    fn errors_cross_threads() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Error>();
    }
}
