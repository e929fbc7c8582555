//! JPEG files in: the 8-bit films that public data sets and many archives export (baseline or
//! progressive, grey or colour), read as a MONOCHROME2 radiograph with the EXIF orientation
//! applied, so the pixels are the film as a viewer shows it.
//!
//! A JPEG inside a DICOM file is not read here: that goes through the DICOM pipeline
//! (transfer syntax, window, photometric) in [`crate::read_dicom`].

use crate::checks::{guarded, Panicked};
use crate::{Error, Result, MAX_PIXELS};
use hipfrac_core::{Pixels, Radiograph, RadiographMeta};
use image::codecs::jpeg::JpegDecoder;
use image::{DynamicImage, ImageDecoder};
use std::path::Path;

/// The largest JPEG file read, in bytes. A 64-megapixel film at the worst compression is far
/// below; a bigger file is not a radiograph.
pub const MAX_JPEG_BYTES: u64 = 256 << 20;

/// How the stored pixels were turned to show the film upright (EXIF Orientation tag 274).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExifOrientation {
    /// Stored upright (tag 1 or no tag).
    Upright,
    /// Any other of the eight EXIF orientations, with its tag value.
    Turned(u16),
}

/// True when the file starts with a JPEG start-of-image marker followed by another marker.
pub fn is_jpeg_file(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 3];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == [0xFF, 0xD8, 0xFF]
}

/// Reads an 8-bit JPEG (baseline or progressive; grey, or colour turned to grey by luma) as a
/// MONOCHROME2 radiograph, upright per its EXIF orientation. A truncated stream (no
/// end-of-image marker after its last scan), a 12-bit or arithmetic-coded stream, or a film
/// over [`MAX_PIXELS`] is an error naming the file.
pub fn read_jpeg(path: &Path) -> Result<Radiograph> {
    guarded(|| read_jpeg_unguarded(path).map(|(radiograph, _)| radiograph))
        .unwrap_or_else(|Panicked(panic)| Err(jpeg_error(path, JpegFault::Panicked(panic))))
}

/// [`read_jpeg`], also saying which EXIF orientation was applied.
pub fn read_jpeg_oriented(path: &Path) -> Result<(Radiograph, ExifOrientation)> {
    guarded(|| read_jpeg_unguarded(path))
        .unwrap_or_else(|Panicked(panic)| Err(jpeg_error(path, JpegFault::Panicked(panic))))
}

fn jpeg_error(path: &Path, fault: JpegFault) -> Error {
    Error::Jpeg {
        path: path.to_path_buf(),
        fault,
    }
}

/// Why a JPEG film is refused (the fault of [`Error::Jpeg`]).
#[derive(Debug, thiserror::Error)]
pub enum JpegFault {
    #[error("not a JPEG file (no start-of-image marker)")]
    NotJpeg,
    #[error("lossless JPEG is not supported for plain files")]
    Lossless,
    #[error("arithmetic-coded JPEG is not supported")]
    Arithmetic,
    #[error("unsupported JPEG frame type 0xFF{0:02X}")]
    FrameType(u8),
    #[error("{0}-bit JPEG: only 8-bit plain JPEG files are read (store deeper films as DICOM or 16-bit PNG)")]
    Depth(u8),
    #[error("no scan: the file holds no image data")]
    NoScan,
    #[error("truncated: no end-of-image marker after the last scan ({bytes} bytes; the file was cut short)")]
    Truncated { bytes: usize },
    #[error("truncated or damaged: no marker at byte {at} before the frame header")]
    NoMarker { at: usize },
    #[error("no frame header before the image data")]
    NoFrame,
    #[error("truncated inside the segment header at byte {at}")]
    SegmentHeader { at: usize },
    #[error("segment 0xFF{marker:02X} at byte {at} runs past the end of the file")]
    SegmentPastEnd { marker: u8, at: usize },
    #[error("frame header too short")]
    FrameTooShort,
    #[error("frame of {width}×{height} pixels (a size given later by a DNL marker is not supported)")]
    EmptyFrame { width: u32, height: u32 },
    #[error("{bytes} bytes is too large for a film")]
    TooLarge { bytes: u64 },
    #[error("{width}×{height} pixels exceeds the limit")]
    TooManyPixels { width: u32, height: u32 },
    #[error("cannot decode: {0}")]
    Decode(#[from] image::ImageError),
    #[error("decoder failed: {0}")]
    Panicked(String),
}

fn read_jpeg_unguarded(path: &Path) -> Result<(Radiograph, ExifOrientation)> {
    let size = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    if size > MAX_JPEG_BYTES {
        return Err(jpeg_error(path, JpegFault::TooLarge { bytes: size }));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let frame = check_stream(&bytes).map_err(|fault| jpeg_error(path, fault))?;
    let (width, height) = frame.size().map_err(|fault| jpeg_error(path, fault))?;
    if width as u64 * height as u64 > MAX_PIXELS {
        return Err(jpeg_error(path, JpegFault::TooManyPixels { width, height }));
    }
    let decode = |e: image::ImageError| jpeg_error(path, JpegFault::Decode(e));
    let mut decoder = JpegDecoder::new(std::io::Cursor::new(&bytes)).map_err(decode)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let tag = orientation.to_exif();
    // Grey first, then turned: the colour buffer is dropped before the turn copies.
    let grey = match DynamicImage::from_decoder(decoder).map_err(decode)? {
        DynamicImage::ImageLuma8(grey) => grey,
        other => other.to_luma8(),
    };
    let mut turned = DynamicImage::ImageLuma8(grey);
    turned.apply_orientation(orientation);
    let DynamicImage::ImageLuma8(grey) = turned else {
        unreachable!("turning keeps a grey image grey")
    };
    let (width, height) = grey.dimensions();
    let values: Vec<u16> = grey.into_raw().into_iter().map(u16::from).collect();
    let meta = RadiographMeta::plain(height, width, 8);
    let orientation = if tag == 1 {
        ExifOrientation::Upright
    } else {
        ExifOrientation::Turned(tag as u16)
    };
    Ok((
        Radiograph {
            meta,
            pixels: Pixels::Unsigned(values),
        },
        orientation,
    ))
}

/// Walks the marker segments up to the first scan and checks what the decoder would
/// otherwise forgive: the frame is 8-bit Huffman (baseline, extended or progressive), and an
/// end-of-image marker follows the last scan (a file cut short in transfer has none; the
/// decoder would fill the rest with grey and answer a film that was never there). Returns the
/// frame header it found.
fn check_stream(bytes: &[u8]) -> std::result::Result<Frame, JpegFault> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err(JpegFault::NotJpeg);
    }
    let frame = find_frame(bytes)?;
    match frame.marker {
        0xC0..=0xC2 => {}
        0xC3 | 0xC7 | 0xCB | 0xCF => return Err(JpegFault::Lossless),
        0xC9..=0xCA => return Err(JpegFault::Arithmetic),
        other => return Err(JpegFault::FrameType(other)),
    }
    if frame.precision != 8 {
        return Err(JpegFault::Depth(frame.precision));
    }
    // The last scan header (SOS) must be followed by an end-of-image marker. In entropy-coded
    // data every 0xFF byte is stuffed (0xFF00) or a restart marker, so 0xFFD9 there is EOI.
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    let last_end = bytes.windows(2).rposition(|w| w == [0xFF, 0xD9]);
    match (last_scan, last_end) {
        (None, _) => Err(JpegFault::NoScan),
        (Some(scan), Some(end)) if end > scan => Ok(frame),
        _ => Err(JpegFault::Truncated { bytes: bytes.len() }),
    }
}

struct Frame {
    marker: u8,
    precision: u8,
    width: u32,
    height: u32,
    /// The EXIF Orientation tag of an APP1 segment before the frame, when there is one.
    orientation: Option<u8>,
}

/// The first start-of-frame segment, read by walking the marker segments from the start.
fn find_frame(bytes: &[u8]) -> std::result::Result<Frame, JpegFault> {
    let mut at = 2;
    let mut orientation = None;
    loop {
        // Fill bytes (0xFF runs) may precede a marker.
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (bytes.get(at), bytes.get(at + 1)) else {
            return Err(JpegFault::NoMarker { at });
        };
        if marker == 0xDA || marker == 0xD9 {
            return Err(JpegFault::NoFrame);
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            at += 2;
            continue;
        }
        let Some(length) = bytes
            .get(at + 2..at + 4)
            .map(|l| u16::from_be_bytes([l[0], l[1]]) as usize)
        else {
            return Err(JpegFault::SegmentHeader { at });
        };
        if length < 2 || at + 2 + length > bytes.len() {
            return Err(JpegFault::SegmentPastEnd { marker, at });
        }
        let body = &bytes[at + 4..at + 2 + length];
        if marker == 0xE1 && body.starts_with(b"Exif\0\0") {
            orientation = image::metadata::Orientation::from_exif_chunk(&body[6..]).map(|o| o.to_exif());
        }
        let is_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_frame {
            if body.len() < 6 {
                return Err(JpegFault::FrameTooShort);
            }
            return Ok(Frame {
                marker,
                precision: body[0],
                height: u16::from_be_bytes([body[1], body[2]]) as u32,
                width: u16::from_be_bytes([body[3], body[4]]) as u32,
                orientation,
            });
        }
        at += 2 + length;
    }
}

impl Frame {
    /// Width and height as stored (before any pixel buffer exists).
    fn size(&self) -> std::result::Result<(u32, u32), JpegFault> {
        if self.width == 0 || self.height == 0 {
            return Err(JpegFault::EmptyFrame {
                width: self.width,
                height: self.height,
            });
        }
        Ok((self.width, self.height))
    }
}

/// The most of a file read for its headers: the segments before the image data (EXIF,
/// colour profiles, tables) fit in far less.
const MAX_HEADER_BYTES: u64 = 16 << 20;

/// Width and height of a JPEG film as shown (EXIF orientation applied), from its headers only
/// (at most the first 16 MiB are read; nothing is decoded).
pub fn jpeg_header(path: &Path) -> Result<(u32, u32)> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_HEADER_BYTES).read_to_end(&mut head))
        .map_err(|e| Error::io(path, e))?;
    let frame = guarded(|| find_frame(&head))
        .unwrap_or_else(|Panicked(panic)| Err(JpegFault::Panicked(panic)))
        .map_err(|fault| jpeg_error(path, fault))?;
    let (width, height) = frame.size().map_err(|fault| jpeg_error(path, fault))?;
    // Orientations 5–8 swap the axes.
    Ok(if frame.orientation.unwrap_or(1) >= 5 {
        (height, width)
    } else {
        (width, height)
    })
}

/// Checks that a JPEG film is whole without decoding it: at most [`MAX_JPEG_BYTES`], an 8-bit
/// Huffman frame, an end-of-image marker after its last scan (what `hipfrac dataset check`
/// runs on every JPEG).
pub fn check_jpeg(path: &Path) -> Result<()> {
    let size = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    if size > MAX_JPEG_BYTES {
        return Err(jpeg_error(path, JpegFault::TooLarge { bytes: size }));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    check_stream(&bytes)
        .map(|_| ())
        .map_err(|fault| jpeg_error(path, fault))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(width: u32, height: u32, colour: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
        let picture: DynamicImage = if colour {
            DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| {
                image::Rgb([(x * 4) as u8, (y * 4) as u8, 128])
            }))
        } else {
            DynamicImage::ImageLuma8(image::GrayImage::from_fn(width, height, |x, y| {
                image::Luma([(x + y) as u8])
            }))
        };
        picture.write_with_encoder(encoder).unwrap();
        out
    }

    #[test]
    fn a_grey_and_a_colour_jpeg_read_as_grey_films() {
        let dir = tempfile::tempdir().unwrap();
        for colour in [false, true] {
            let path = dir.path().join(format!("film-{colour}.jpg"));
            std::fs::write(&path, encode(40, 30, colour)).unwrap();
            assert!(is_jpeg_file(&path));
            let film = read_jpeg(&path).unwrap();
            assert_eq!((film.meta.columns, film.meta.rows), (40, 30));
            assert_eq!(jpeg_header(&path).unwrap(), (40, 30));
            let Pixels::Unsigned(values) = &film.pixels else {
                panic!("8-bit films are unsigned")
            };
            assert_eq!(values.len(), 40 * 30);
            // A gradient: the last pixel is brighter than the first in both.
            assert!(values[values.len() - 1] > values[0] + 20, "{colour}");
        }
    }

    #[test]
    fn a_truncated_jpeg_is_an_error_naming_the_file_and_the_fault() {
        let dir = tempfile::tempdir().unwrap();
        let whole = encode(64, 64, false);
        let path = dir.path().join("cut.jpg");
        std::fs::write(&path, &whole[..whole.len() * 2 / 3]).unwrap();
        let message = read_jpeg(&path).unwrap_err().to_string();
        assert!(
            message.contains("cut.jpg") && message.contains("truncated"),
            "{message}"
        );
        std::fs::write(&path, &whole[..40]).unwrap();
        let message = read_jpeg(&path).unwrap_err().to_string();
        assert!(message.contains("cut.jpg"), "{message}");
    }

    #[test]
    fn a_12_bit_frame_is_refused_with_its_depth() {
        let mut bytes = encode(16, 16, false);
        let frame = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        bytes[frame + 4] = 12;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep.jpg");
        std::fs::write(&path, bytes).unwrap();
        let message = read_jpeg(&path).unwrap_err().to_string();
        assert!(message.contains("12-bit"), "{message}");
    }
}
