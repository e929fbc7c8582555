use crate::{Error, Result};
use hipfrac_dicom::png_io::png_header;
use std::path::Path;

/// What a dataset needs to know of an image without decoding its pixels.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImageInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Patient ID (DICOM header, or the `hipfrac convert` sidecar of a PNG).
    pub patient_id: Option<String>,
    /// Site (Institution Name, from the DICOM header or the sidecar).
    pub institution: Option<String>,
}

/// True for the image files a dataset may hold: PNG, JPEG, or DICOM (by extension or magic).
pub fn is_image_file(path: &Path) -> bool {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
    {
        Some(ext) if ["png", "jpg", "jpeg", "dcm", "dicom"].contains(&ext.as_str()) => true,
        Some(ext) if ext == "xml" || ext == "json" || ext == "txt" || ext == "csv" || ext == "md" => false,
        _ => hipfrac_dicom::is_dicom_file(path),
    }
}

/// Size (and patient/site where known) of a PNG, JPEG or DICOM image, from headers only
/// (a JPEG's size is the film as shown, its EXIF orientation applied).
pub fn image_info(path: &Path) -> Result<ImageInfo> {
    let mut head = [0u8; 8];
    {
        use std::io::Read;
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let _ = file.read(&mut head).map_err(|e| Error::io(path, e))?;
    }
    if head == *b"\x89PNG\r\n\x1a\n" {
        let (width, height, _) = png_header(path)?;
        let mut info = ImageInfo {
            width,
            height,
            ..Default::default()
        };
        // A sidecar written by `hipfrac convert` carries the DICOM metadata.
        let sidecar = path.with_extension("json");
        if let Ok(text) = std::fs::read_to_string(&sidecar) {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
                let meta = &value["meta"];
                info.patient_id = meta["patient_id"].as_str().map(str::to_string);
                info.institution = meta["institution"].as_str().map(str::to_string);
            }
        }
        return Ok(info);
    }
    if hipfrac_dicom::is_jpeg_file(path) {
        let (width, height) = hipfrac_dicom::jpeg_io::jpeg_header(path)?;
        return Ok(ImageInfo {
            width,
            height,
            ..Default::default()
        });
    }
    if let Some(found) = hipfrac_dicom::other_file_type(path).filter(|_| !hipfrac_dicom::is_dicom_file(path)) {
        return Err(hipfrac_dicom::Error::UnsupportedType {
            path: path.to_path_buf(),
            found,
        }
        .into());
    }
    let header = hipfrac_dicom::read_dicom_header(path)?;
    Ok(ImageInfo {
        width: header.columns,
        height: header.rows,
        patient_id: header.patient_id,
        institution: header.institution,
    })
}

/// Checks that an image file is whole: a PNG's chunks all lie inside the file with correct
/// CRCs up to IEND (a truncated or corrupted PNG fails); a DICOM file's element lengths fit
/// (see `hipfrac convert` for the pixel data itself).
pub fn check_complete(path: &Path) -> Result<()> {
    if hipfrac_dicom::is_jpeg_file(path) {
        return hipfrac_dicom::jpeg_io::check_jpeg(path).map_err(Error::from);
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(());
    }
    let bad = |why: String| Error::invalid(path, format!("damaged PNG: {why}"));
    let mut at = 8;
    loop {
        let Some(head) = bytes.get(at..at + 8) else {
            return Err(bad(format!("truncated at byte {at} (no IEND)")));
        };
        let length = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = &head[4..8];
        let Some(body) = bytes.get(at + 4..at + 8 + length) else {
            return Err(bad(format!(
                "chunk {} at byte {at} runs past the end",
                String::from_utf8_lossy(kind)
            )));
        };
        let Some(crc) = bytes.get(at + 8 + length..at + 12 + length) else {
            return Err(bad(format!(
                "truncated in the CRC of chunk {}",
                String::from_utf8_lossy(kind)
            )));
        };
        let mut sum = flate2::Crc::new();
        sum.update(body);
        if sum.sum() != u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err(bad(format!(
                "chunk {} at byte {at} fails its CRC",
                String::from_utf8_lossy(kind)
            )));
        }
        if kind == b"IEND" {
            return Ok(());
        }
        at += 12 + length;
    }
}
