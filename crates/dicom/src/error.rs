use std::path::PathBuf;

/// Everything that can go wrong reading, converting or writing a radiograph (the larger causes
/// boxed, so that a `Result` stays small). Every variant
/// names the file it concerns; the cause, where there is one, is the error's
/// [`source`](std::error::Error::source) (print the chain, e.g. with
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
    /// The file is not DICOM, or its structure is broken (e.g. truncated).
    #[error("{}: not a readable DICOM file", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: Box<ParseFault>,
    },
    /// The file is DICOM but holds no image this program can use.
    #[error("{}: {reason}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The pixel data could not be decoded.
    #[error("{}: cannot decode pixel data ({transfer_syntax})", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// Transfer Syntax UID.
        transfer_syntax: String,
        /// What the decoder said.
        #[source]
        source: Box<DecodeFault>,
    },
    /// A PNG is refused (wrong size, colour, too large) or cannot be written as asked.
    #[error("{}: PNG: {reason}", path.display())]
    Png {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A PNG could not be decoded.
    #[error("{}: not a readable PNG", path.display())]
    PngDecode {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        #[source]
        source: Box<png::DecodingError>,
    },
    /// A JPEG film is refused (truncated, 12-bit, too large) or cannot be decoded.
    #[error("{}: JPEG: {fault}", path.display())]
    Jpeg {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        fault: crate::jpeg_io::JpegFault,
    },
    /// The file is none of the types hipfrac reads.
    #[error("{}: unsupported file type ({found}): hipfrac reads DICOM, PNG and JPEG files", path.display())]
    UnsupportedType {
        /// The file.
        path: PathBuf,
        /// What the file looks like (its first bytes, or its extension).
        found: String,
    },
    /// An option does not fit the image or the files (e.g. an output that exists).
    #[error("{}: {reason}", path.display())]
    Option {
        /// The file.
        path: PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// The requested VOI (window or LUT) cannot be applied to the image.
    #[error("{}: cannot apply the requested window", path.display())]
    Window {
        /// The image.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::display::VoiError,
    },
    /// A DICOM file meta group could not be built for writing.
    #[error("{}: cannot build the DICOM file meta group", path.display())]
    Meta {
        /// The file to be written.
        path: PathBuf,
        /// What dicom-rs said.
        #[source]
        source: Box<dicom_object::WithMetaError>,
    },
}

/// Why a file is not a readable DICOM file (the cause of [`Error::Parse`]).
#[derive(Debug, thiserror::Error)]
pub enum ParseFault {
    /// The length walk before parsing found a broken structure.
    #[error(transparent)]
    Structure(#[from] StructureError),
    /// The DICOM parser refused the file.
    #[error(transparent)]
    Reader(#[from] dicom_object::ReadError),
    /// The parser panicked (the text of the panic).
    #[error("reader failed: {0}")]
    Panic(String),
}

/// A declared length or structure that does not fit the file, found by the walk over the
/// element headers before the real parser reads it.
#[derive(Debug, thiserror::Error)]
pub enum StructureError {
    /// The file ends inside an element header.
    #[error("truncated: the file ends inside the element header at byte {at}")]
    TruncatedHeader {
        /// Byte offset of the header.
        at: u64,
    },
    /// The file ends inside the file meta group.
    #[error("truncated: the file ends inside the file meta group at byte {at}")]
    TruncatedMeta {
        /// Byte offset of the element.
        at: u64,
    },
    /// Reading failed.
    #[error("read failed at byte {at}")]
    Read {
        /// Byte offset of the read.
        at: u64,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Sequences nest deeper than any real file does.
    #[error("sequences nested more than {depth} deep at byte {at}")]
    TooDeep {
        /// The deepest nesting allowed.
        depth: usize,
        /// Byte offset.
        at: u64,
    },
    /// An explicit VR element with a VR that does not exist.
    #[error(
        "element ({group:04X},{element:04X}) at byte {at} has no valid value representation ({:02X} {:02X}): corrupt",
        vr[0], vr[1]
    )]
    BadVr {
        /// Tag group.
        group: u16,
        /// Tag element.
        element: u16,
        /// Byte offset.
        at: u64,
        /// The two bytes where the VR should be.
        vr: [u8; 2],
    },
    /// A fixed-size VR whose length is not a whole number of values (a VR changed by
    /// corruption: the parser would desynchronise on it).
    #[error("element ({group:04X},{element:04X}) at byte {at} is {vr} with {length} bytes, not a multiple of {unit}: corrupt")]
    BadLength {
        /// Tag group.
        group: u16,
        /// Tag element.
        element: u16,
        /// Byte offset of the value.
        at: u64,
        /// The VR.
        vr: String,
        /// The declared length.
        length: u32,
        /// The size of one value of the VR.
        unit: u32,
    },
    /// A deflated data set inflates beyond the ceiling.
    #[error("the deflated data set inflates to more than {limit} bytes (a decompression bomb?)")]
    InflatesTooFar {
        /// The ceiling in bytes.
        limit: u64,
    },
    /// A deflated data set that does not inflate.
    #[error("the deflated data set does not inflate")]
    Inflate(#[source] std::io::Error),
    /// An element claims more bytes than remain.
    #[error(
        "element ({group:04X},{element:04X}) at byte {at} claims {length} bytes but only {left} remain: truncated or corrupt"
    )]
    TooLong {
        /// Tag group.
        group: u16,
        /// Tag element.
        element: u16,
        /// Byte offset of the value.
        at: u64,
        /// The declared length.
        length: u32,
        /// The bytes left.
        left: u64,
    },
}

/// Why pixel data could not be decoded (the cause of [`Error::Decode`]).
#[derive(Debug, thiserror::Error)]
pub enum DecodeFault {
    /// No Pixel Data element.
    #[error(transparent)]
    NoPixelData(#[from] dicom_object::AccessError),
    /// A JPEG transfer syntax with native pixel data.
    #[error("JPEG transfer syntax but the pixel data are not encapsulated")]
    NotEncapsulated,
    /// The in-house JPEG decoder refused the stream.
    #[error("JPEG")]
    Jpeg(#[source] crate::jpeg12::JpegError),
    /// The JPEG stream's size differs from the header's.
    #[error("JPEG stream is {}×{}, the header says {}×{}", stream.0, stream.1, header.0, header.1)]
    JpegSize {
        /// Width and height of the stream.
        stream: (u32, u32),
        /// Columns and rows of the header.
        header: (u32, u32),
    },
    /// dicom-rs's decoders refused the data.
    #[error(transparent)]
    Decoder(#[from] dicom_pixeldata::Error),
    /// A decoder panicked (the text of the panic).
    #[error("decoder failed: {0}")]
    Panic(String),
    /// Fewer bytes than the image needs.
    #[error("pixel data holds {held} bytes, {expected} expected for {columns}×{rows} at {bits_allocated} bits")]
    Short {
        /// Bytes decoded.
        held: usize,
        /// Bytes needed.
        expected: usize,
        /// Columns.
        columns: u32,
        /// Rows.
        rows: u32,
        /// Bits allocated.
        bits_allocated: u16,
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

    pub(crate) fn parse(path: impl Into<PathBuf>, source: impl Into<ParseFault>) -> Self {
        Error::Parse {
            path: path.into(),
            source: Box::new(source.into()),
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_and_do_not_repeat_their_cause() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("junk.png");
        std::fs::write(&png, b"\x89PNG\r\n\x1a\nnot really").unwrap();
        let dicom = dir.path().join("cut.dcm");
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(b"DICM\x02\x00\x10\x00UI");
        std::fs::write(&dicom, bytes).unwrap();
        let cases = [
            (
                crate::read_radiograph(&dir.path().join("missing.dcm")).unwrap_err(),
                "missing.dcm: ",
            ),
            (
                crate::read_radiograph(&png).unwrap_err(),
                "junk.png: not a readable PNG: ",
            ),
            (
                crate::read_radiograph(&dicom).unwrap_err(),
                "cut.dcm: not a readable DICOM file: truncated",
            ),
        ];
        for (error, expected) in cases {
            let outer = error.to_string();
            let cause = std::error::Error::source(&error).expect("a cause").to_string();
            assert!(!outer.contains(&cause), "{outer:?} repeats its cause {cause:?}");
            let chain = hipfrac_core::error_chain(&error);
            let name = chain.strip_prefix(dir.path().to_str().unwrap()).unwrap_or(&chain);
            assert!(
                name[1..].starts_with(expected),
                "{chain:?} should name the file and say {expected:?}"
            );
        }
    }

    #[test]
    fn errors_cross_threads() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Error>();
    }
}
