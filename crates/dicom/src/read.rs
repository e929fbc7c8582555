//! DICOM, PNG and JPEG → [`Radiograph`].

use crate::checks::{check_pixel_data, guarded, sane, Panicked};
use crate::error::{DecodeFault, ParseFault};
use crate::{png_io, Error, Result};
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use dicom_pixeldata::PixelDecoder;
use hipfrac_core::{
    Laterality, LutData, ModalityLut, Photometric, Pixels, Radiograph, RadiographMeta, VoiFunction, Window,
};
use std::io::Read;
use std::path::Path;

/// The largest image accepted, in pixels (64 megapixels: a 43 cm detector at 0.05 mm is
/// ~74 MP would be refused, every CR/DX plate in use is far below). Checked from the header
/// before any pixel buffer is allocated.
pub const MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// True when the file carries the DICOM Part 10 magic (`DICM` after the 128-byte preamble).
pub fn is_dicom_file(path: &Path) -> bool {
    let mut head = [0u8; 132];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map(|_| &head[128..132] == b"DICM")
        .unwrap_or(false)
}

const PNG_SIGNATURE: [u8; 8] = *b"\x89PNG\r\n\x1a\n";

/// True when the file starts with the PNG signature.
pub fn is_png_file(path: &Path) -> bool {
    let mut head = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == PNG_SIGNATURE
}

/// True for a file hipfrac reads as a radiograph, by content: DICOM (`DICM` magic), PNG or JPEG.
pub fn is_image_file(path: &Path) -> bool {
    is_dicom_file(path) || is_png_file(path) || crate::jpeg_io::is_jpeg_file(path)
}

/// Reads a DICOM file, a PNG or a JPEG film (decided by content, not by name). A file that
/// is recognisably something else (TIFF, BMP, GIF, WebP, JPEG 2000, PDF, ZIP, text) is an
/// [`Error::UnsupportedType`] saying so; anything else is tried as DICOM (a data set may lack
/// the preamble).
pub fn read_radiograph(path: &Path) -> Result<Radiograph> {
    std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    if is_png_file(path) {
        png_io::read_png(path)
    } else if crate::jpeg_io::is_jpeg_file(path) {
        crate::jpeg_io::read_jpeg(path)
    } else if is_dicom_file(path) {
        read_dicom(path)
    } else if let Some(found) = other_file_type(path) {
        Err(Error::UnsupportedType {
            path: path.to_path_buf(),
            found,
        })
    } else {
        read_dicom(path)
    }
}

/// Width and height of a radiograph file from its headers only (no pixels decoded): a PNG's
/// IHDR, a JPEG's frame header (EXIF orientation applied), a DICOM file's Rows and Columns.
pub fn read_image_size(path: &Path) -> Result<(u32, u32)> {
    if is_png_file(path) {
        png_io::png_header(path).map(|(w, h, _)| (w, h))
    } else if crate::jpeg_io::is_jpeg_file(path) {
        crate::jpeg_io::jpeg_header(path)
    } else if !is_dicom_file(path) {
        match other_file_type(path) {
            Some(found) => Err(Error::UnsupportedType {
                path: path.to_path_buf(),
                found,
            }),
            None => read_dicom_header(path).map(|m| (m.columns, m.rows)),
        }
    } else {
        read_dicom_header(path).map(|m| (m.columns, m.rows))
    }
}

/// What a file that is not DICOM, PNG or JPEG looks like, when it looks like anything known.
pub fn other_file_type(path: &Path) -> Option<String> {
    let mut head = [0u8; 16];
    let read = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = &head[..read];
    let signatures: [(&[u8], &str); 10] = [
        (b"II*\0", "a TIFF image"),
        (b"MM\0*", "a TIFF image"),
        (b"BM", "a BMP image"),
        (b"GIF8", "a GIF image"),
        (b"RIFF", "a RIFF file (WebP?)"),
        (b"\0\0\0\x0cjP  ", "a JPEG 2000 file"),
        (b"\xff\x4f\xff\x51", "a JPEG 2000 codestream"),
        (b"%PDF", "a PDF document"),
        (b"PK\x03\x04", "a ZIP archive"),
        (b"\x1f\x8b", "a gzip file"),
    ];
    if let Some((_, name)) = signatures.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Some((*name).to_string());
    }
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let known_elsewhere = [
        "jpg", "jpeg", "png", "tif", "tiff", "bmp", "gif", "webp", "jp2", "j2k", "heic", "avif", "pdf",
    ];
    match extension {
        Some(ext) if known_elsewhere.contains(&ext.as_str()) => {
            Some(format!("named .{ext} but its content is not a readable {ext} file"))
        }
        _ if head.is_empty() => Some("an empty file".into()),
        _ => None,
    }
}

/// Reads a single-frame greyscale DICOM image (the first frame of a multi-frame one).
pub fn read_dicom(path: &Path) -> Result<Radiograph> {
    // The parser and decoders are third-party code; a hostile file must become an error
    // naming it, never a crash of a whole batch.
    guarded(|| read_dicom_unguarded(path))
        .unwrap_or_else(|Panicked(panic)| Err(Error::parse(path, ParseFault::Panic(panic))))
}

fn read_dicom_unguarded(path: &Path) -> Result<Radiograph> {
    let object = open(path, false)?;
    let meta = read_meta(path, &object, true)?;
    let pixels = decode_pixels(path, &object, &meta)?;
    Ok(Radiograph { meta, pixels })
}

/// Reads only the header of a DICOM image (everything before the pixel data): size,
/// photometric, windows, UIDs, patient. Cheap enough to scan an archive.
pub fn read_dicom_header(path: &Path) -> Result<RadiographMeta> {
    guarded(|| {
        let object = open(path, true)?;
        read_meta(path, &object, false)
    })
    .unwrap_or_else(|Panicked(panic)| Err(Error::parse(path, ParseFault::Panic(panic))))
}

/// Checks a whole DICOM file without decoding its pixels: every element's declared length
/// fits the bytes present (a truncated transfer or a corrupt length is refused, naming the
/// element), and the header reads as a radiograph's. What a DICOM node runs on a received
/// instance before acknowledging it. Returns the header.
pub fn check_dicom(path: &Path) -> Result<RadiographMeta> {
    crate::prescan::check_file(path, false)?;
    read_dicom_header(path)
}

fn open(path: &Path, header_only: bool) -> Result<DefaultDicomObject> {
    if !path.is_file() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        ));
    }
    crate::prescan::check_file(path, header_only)?;
    let options = OpenFileOptions::new();
    let options = if header_only {
        options.read_until(tags::PIXEL_DATA)
    } else {
        options
    };
    options.open_file(path).map_err(|e| Error::parse(path, e))
}

pub(crate) fn string(object: &InMemDicomObject, tag: dicom_core::Tag) -> Option<String> {
    let element = object.element_opt(tag).ok().flatten()?;
    let text = element.to_str().ok()?;
    let trimmed = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

pub(crate) fn int(object: &InMemDicomObject, tag: dicom_core::Tag) -> Option<i64> {
    object.element_opt(tag).ok().flatten()?.to_int::<i64>().ok()
}

fn floats(object: &InMemDicomObject, tag: dicom_core::Tag) -> Vec<f64> {
    object
        .element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_multi_float64().ok())
        .unwrap_or_default()
}

fn required_int(path: &Path, object: &InMemDicomObject, tag: dicom_core::Tag, name: &str) -> Result<i64> {
    int(object, tag).ok_or_else(|| Error::unsupported(path, format!("missing or invalid {name} {tag}")))
}

fn read_meta(path: &Path, object: &DefaultDicomObject, require_pixels: bool) -> Result<RadiographMeta> {
    if require_pixels && object.element_opt(tags::PIXEL_DATA).ok().flatten().is_none() {
        return Err(Error::unsupported(path, "no pixel data (7FE0,0010): not an image"));
    }
    let rows = required_int(path, object, tags::ROWS, "Rows")?;
    let columns = required_int(path, object, tags::COLUMNS, "Columns")?;
    if rows <= 0 || columns <= 0 {
        return Err(Error::unsupported(
            path,
            format!("image size {columns}×{rows} is empty"),
        ));
    }
    if (rows as u64) * (columns as u64) > MAX_PIXELS {
        return Err(Error::unsupported(
            path,
            format!(
                "header claims {columns}×{rows} pixels, more than the {} megapixel limit; refused before decoding",
                MAX_PIXELS / (1024 * 1024)
            ),
        ));
    }
    let samples = int(object, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    if samples != 1 {
        return Err(Error::unsupported(
            path,
            format!("{samples} samples per pixel: a colour image, not a greyscale radiograph"),
        ));
    }
    let photometric = match string(object, tags::PHOTOMETRIC_INTERPRETATION).as_deref() {
        Some("MONOCHROME1") => Photometric::Monochrome1,
        Some("MONOCHROME2") => Photometric::Monochrome2,
        other => {
            return Err(Error::unsupported(
                path,
                format!("photometric interpretation {other:?} is not MONOCHROME1/2"),
            ))
        }
    };
    let bits_allocated = required_int(path, object, tags::BITS_ALLOCATED, "Bits Allocated")?;
    if bits_allocated != 8 && bits_allocated != 16 {
        return Err(Error::unsupported(
            path,
            format!("{bits_allocated} bits allocated (8 or 16 supported)"),
        ));
    }
    let bits_stored = int(object, tags::BITS_STORED).unwrap_or(bits_allocated);
    if !(1..=bits_allocated).contains(&bits_stored) {
        return Err(Error::unsupported(
            path,
            format!("bits stored {bits_stored} does not fit bits allocated {bits_allocated}"),
        ));
    }
    let signed = int(object, tags::PIXEL_REPRESENTATION).unwrap_or(0) == 1;

    let high_bit = int(object, tags::HIGH_BIT).unwrap_or(bits_stored - 1);
    if high_bit < bits_stored - 1 || high_bit >= bits_allocated {
        return Err(Error::unsupported(
            path,
            format!("high bit {high_bit} does not fit bits stored {bits_stored} in bits allocated {bits_allocated}"),
        ));
    }
    let slope = floats(object, tags::RESCALE_SLOPE).first().copied().unwrap_or(1.0);
    let intercept = floats(object, tags::RESCALE_INTERCEPT).first().copied().unwrap_or(0.0);
    sane(path, "Rescale Slope (0028,1053)", slope)?;
    sane(path, "Rescale Intercept (0028,1052)", intercept)?;
    let modality_lut = lut_sequence(path, object, tags::MODALITY_LUT_SEQUENCE, signed)?
        .into_iter()
        .next()
        .map(ModalityLut::Table)
        .unwrap_or(ModalityLut::Rescale {
            slope: if slope == 0.0 { 1.0 } else { slope },
            intercept,
        });

    // A window that is not a usable display value (NaN, infinite, beyond MAX_DISPLAY_VALUE)
    // is kept: the display pipeline refuses to render through it, and a prediction answers
    // the image not assessable with that reason instead of failing the file (a whole
    // evaluation with it). A finite width ≤ 0 is no window and is left out, as before.
    let centers = floats(object, tags::WINDOW_CENTER);
    let widths = floats(object, tags::WINDOW_WIDTH);
    let explanations: Vec<String> = string(object, tags::WINDOW_CENTER_WIDTH_EXPLANATION)
        .map(|s| s.split('\\').map(|p| p.trim().to_string()).collect())
        .unwrap_or_default();
    let windows = centers
        .iter()
        .zip(&widths)
        .enumerate()
        .filter(|(_, (_, w))| !(w.is_finite() && **w <= 0.0))
        .map(|(i, (&center, &width))| Window {
            center,
            width,
            explanation: explanations.get(i).filter(|s| !s.is_empty()).cloned(),
        })
        .collect();
    let voi_function = match string(object, tags::VOILUT_FUNCTION).as_deref() {
        Some("LINEAR_EXACT") => VoiFunction::LinearExact,
        Some("SIGMOID") => VoiFunction::Sigmoid,
        _ => VoiFunction::Linear,
    };
    let voi_luts = lut_sequence(path, object, tags::VOILUT_SEQUENCE, signed)?;

    let (pixel_spacing_mm, pixel_spacing_source) = [
        (tags::PIXEL_SPACING, "PixelSpacing"),
        (tags::IMAGER_PIXEL_SPACING, "ImagerPixelSpacing"),
    ]
    .iter()
    .find_map(|(tag, name)| {
        let v = floats(object, *tag);
        (v.len() == 2 && v[0] > 0.0 && v[1] > 0.0).then(|| (Some([v[0], v[1]]), Some(name.to_string())))
    })
    .unwrap_or((None, None));

    let laterality = string(object, tags::IMAGE_LATERALITY)
        .or_else(|| string(object, tags::LATERALITY))
        .and_then(|s| Laterality::from_dicom(&s));

    Ok(RadiographMeta {
        rows: rows as u32,
        columns: columns as u32,
        bits_stored: bits_stored as u16,
        photometric,
        modality_lut,
        rescale_type: string(object, tags::RESCALE_TYPE),
        windows,
        voi_function,
        voi_luts,
        pixel_spacing_mm,
        pixel_spacing_source,
        modality: string(object, tags::MODALITY),
        sop_class_uid: string(object, tags::SOP_CLASS_UID),
        sop_instance_uid: string(object, tags::SOP_INSTANCE_UID),
        study_instance_uid: string(object, tags::STUDY_INSTANCE_UID),
        series_instance_uid: string(object, tags::SERIES_INSTANCE_UID),
        accession_number: string(object, tags::ACCESSION_NUMBER),
        patient_id: string(object, tags::PATIENT_ID),
        laterality,
        body_part: string(object, tags::BODY_PART_EXAMINED),
        view_position: string(object, tags::VIEW_POSITION),
        institution: string(object, tags::INSTITUTION_NAME),
        image_comments: string(object, tags::IMAGE_COMMENTS),
        transfer_syntax: Some(object.meta().transfer_syntax.trim_end_matches('\0').to_string()),
    })
}

/// Reads the items of a Modality or VOI LUT Sequence. Items without a usable descriptor or
/// data (as in files with empty sequence items) are skipped.
fn lut_sequence(path: &Path, object: &InMemDicomObject, tag: dicom_core::Tag, signed: bool) -> Result<Vec<LutData>> {
    let Some(items) = object.element_opt(tag).ok().flatten().and_then(|e| e.items()) else {
        return Ok(Vec::new());
    };
    let mut luts = Vec::new();
    for item in items {
        let Some(descriptor) = item
            .element_opt(tags::LUT_DESCRIPTOR)
            .ok()
            .flatten()
            .and_then(|e| e.to_multi_int::<i64>().ok())
        else {
            continue;
        };
        let Some(words) = item
            .element_opt(tags::LUT_DATA)
            .ok()
            .flatten()
            .and_then(|e| e.to_multi_int::<i64>().ok())
        else {
            continue;
        };
        if descriptor.len() != 3 || words.is_empty() {
            continue;
        }
        let entries = if descriptor[0] == 0 {
            65536
        } else {
            descriptor[0] as usize
        };
        // The first mapped value is stored as US even for signed pixels (PS3.3 C.11.1.1).
        let mut first_mapped = descriptor[1];
        if signed && first_mapped > 32767 {
            first_mapped -= 65536;
        }
        let bits = descriptor[2] as u16;
        if !(1..=16).contains(&bits) {
            return Err(Error::unsupported(
                path,
                format!("LUT descriptor bits {bits} out of range"),
            ));
        }
        let mut data: Vec<u16> = words.iter().map(|&w| w as u16).collect();
        // 8-bit entries may come packed two to a 16-bit word.
        if bits == 8 && data.len() * 2 == entries {
            data = data.iter().flat_map(|w| [w & 0xff, w >> 8]).collect();
        }
        if data.len() < entries {
            return Err(Error::unsupported(
                path,
                format!("LUT has {} entries, its descriptor says {entries}", data.len()),
            ));
        }
        data.truncate(entries);
        luts.push(LutData {
            first_mapped: first_mapped as i32,
            bits,
            data,
            explanation: string(item, tags::LUT_EXPLANATION),
        });
    }
    Ok(luts)
}

/// JPEG Extended (Process 2 & 4): 8- or 12-bit, decoded by [`crate::jpeg12`].
const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";

/// The first frame's JPEG stream (its fragments joined) through the in-house decoder.
fn decode_jpeg_extended(object: &DefaultDicomObject, meta: &RadiographMeta) -> Result<Pixels, DecodeFault> {
    let element = object.element(tags::PIXEL_DATA)?;
    let dicom_core::value::Value::PixelSequence(sequence) = element.value() else {
        return Err(DecodeFault::NotEncapsulated);
    };
    let mut stream = Vec::new();
    for fragment in sequence.fragments() {
        stream.extend_from_slice(fragment);
        // One frame ends with EOI (possibly followed by one padding byte).
        let tail = &stream[stream.len().saturating_sub(3)..];
        if tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
            break;
        }
    }
    let decoded = crate::jpeg12::decode(&stream).map_err(DecodeFault::Jpeg)?;
    if (decoded.width, decoded.height) != (meta.columns, meta.rows) {
        return Err(DecodeFault::JpegSize {
            stream: (decoded.width, decoded.height),
            header: (meta.columns, meta.rows),
        });
    }
    let signed = int(object, tags::PIXEL_REPRESENTATION).unwrap_or(0) == 1;
    let samples = &decoded.samples;
    Ok(stored_values(
        samples.len(),
        |i| samples[i] as u32,
        meta.bits_stored,
        signed,
    ))
}

/// Pixels from the low `bits_stored` bits of each raw sample (`raw(i)`, already shifted so
/// the stored value's lowest bit is bit 0), sign-extended when `signed`.
fn stored_values(count: usize, raw: impl Fn(usize) -> u32, bits_stored: u16, signed: bool) -> Pixels {
    let bits = bits_stored.clamp(1, 16) as u32;
    let mask: u32 = if bits >= 16 { 0xffff } else { (1u32 << bits) - 1 };
    if signed {
        let sign_bit = 1u32 << (bits - 1);
        Pixels::Signed(
            (0..count)
                .map(|i| {
                    let v = raw(i) & mask;
                    if v & sign_bit != 0 {
                        (v as i32 - (1i32 << bits)) as i16
                    } else {
                        v as i16
                    }
                })
                .collect(),
        )
    } else {
        Pixels::Unsigned((0..count).map(|i| (raw(i) & mask) as u16).collect())
    }
}

fn decode_pixels(path: &Path, object: &DefaultDicomObject, meta: &RadiographMeta) -> Result<Pixels> {
    let transfer_syntax = meta.transfer_syntax.clone().unwrap_or_default();
    let decode_error = |source: DecodeFault| Error::Decode {
        path: path.to_path_buf(),
        transfer_syntax: transfer_syntax.clone(),
        source: Box::new(source),
    };
    if transfer_syntax == JPEG_EXTENDED {
        return decode_jpeg_extended(object, meta).map_err(decode_error);
    }
    check_pixel_data(path, object, meta, &transfer_syntax)?;
    // Decoders are C libraries and third-party Rust; a malformed stream must become an error
    // naming the file, never a crash of a whole batch.
    let decoded = guarded(|| object.decode_pixel_data_frame(0))
        .map_err(|Panicked(panic)| decode_error(DecodeFault::Panic(panic)))?
        .map_err(|e| decode_error(e.into()))?;

    let count = meta.rows as usize * meta.columns as usize;
    let bytes = decoded.data();
    let bits_allocated = decoded.bits_allocated();
    let high_bit = decoded.high_bit();
    let bits_stored = meta.bits_stored;
    let signed = decoded.pixel_representation() == dicom_pixeldata::PixelRepresentation::Signed;
    let bytes_per_sample = if bits_allocated <= 8 { 1 } else { 2 };
    if bytes.len() < count * bytes_per_sample {
        return Err(decode_error(DecodeFault::Short {
            held: bytes.len(),
            expected: count * bytes_per_sample,
            columns: meta.columns,
            rows: meta.rows,
            bits_allocated,
        }));
    }
    // Stored value = bits [high_bit - bits_stored + 1 ..= high_bit] of each sample.
    let shift = (high_bit + 1).saturating_sub(bits_stored) as u32;
    let raw = |i: usize| -> u32 {
        let sample = if bytes_per_sample == 1 {
            bytes[i] as u32
        } else {
            u16::from_ne_bytes([bytes[2 * i], bytes[2 * i + 1]]) as u32
        };
        sample >> shift
    };
    Ok(stored_values(count, raw, bits_stored, signed))
}
