//! hipfrac-dicom: radiographs in and out.
//!
//! * [`read_radiograph`]: a DICOM file (any transfer syntax dicom-rs decodes: native, RLE,
//!   JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000), a PNG (8- or 16-bit grey) or a
//!   JPEG film (8-bit, baseline or progressive, EXIF orientation applied; [`jpeg_io`]) →
//!   [`hipfrac_core::Radiograph`] of stored values plus metadata.
//! * [`display`]: the DICOM greyscale pipeline — Modality LUT (rescale or table), VOI LUT
//!   (window with the DICOM formulas, or a table), MONOCHROME1 inversion — to 8 bits, and
//!   modality values to 16 bits.
//! * [`png_io`]: PNG writing (atomic) and reading.
//! * [`deid`]: de-identification after the PS3.15 Basic Application Level Confidentiality
//!   Profile with keyed pseudonyms.

pub mod atomic;
mod checks;
pub mod convert;
pub mod deid;
pub mod display;
mod error;
pub mod jpeg12;
pub mod jpeg_io;
pub mod outputs;
pub mod png_io;
mod prescan;
mod read;
pub mod write;

pub use error::{DecodeFault, Error, ParseFault, Result, StructureError};
pub use jpeg_io::is_jpeg_file;
pub use read::{
    check_dicom, is_dicom_file, is_image_file, is_png_file, other_file_type, read_dicom, read_dicom_header,
    read_image_size, read_radiograph, MAX_PIXELS,
};
