//! The dataset manifest: one CSV row per image with `image,annotation,patient,site,label`.
//!
//! `image` and `annotation` are paths relative to the folder holding the manifest, so a
//! dataset folder can be moved or shared as a whole. Extra columns are kept by other tools
//! (the phantom adds its simulation parameters) and ignored here.

use crate::{Error, Result};
use hipfrac_core::Label;
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// One image of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestRow {
    /// Image path, relative to the manifest's folder.
    pub image: String,
    /// VOC annotation path, relative to the manifest's folder; empty when none.
    #[serde(default)]
    pub annotation: String,
    /// Patient ID (pseudonymised), the unit of splitting.
    pub patient: String,
    /// Acquisition site.
    #[serde(default)]
    pub site: String,
    /// Image-level label.
    pub label: Label,
}

/// Reads a manifest.
pub fn read(path: &Path) -> Result<Vec<ManifestRow>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes, path)
}

/// Parses manifest bytes; `path` names the source in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Vec<ManifestRow>> {
    let csv_error = |source| Error::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader.headers().map_err(csv_error)?.clone();
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let row_error = |source| Error::CsvRow {
            path: path.to_path_buf(),
            row: index + 2,
            source,
        };
        let record = hipfrac_core::csv_safe::restored(&record.map_err(row_error)?);
        rows.push(record.deserialize::<ManifestRow>(Some(&headers)).map_err(row_error)?);
    }
    Ok(rows)
}

/// Writes a manifest atomically.
pub fn write(path: &Path, rows: &[ManifestRow]) -> Result<()> {
    let csv_error = |source| Error::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row).map_err(csv_error)?;
    }
    if rows.is_empty() {
        writer
            .write_record(["image", "annotation", "patient", "site", "label"])
            .map_err(csv_error)?;
    }
    let bytes = writer.into_inner().map_err(|e| Error::io(path, e.into_error()))?;
    hipfrac_dicom::atomic::write_atomic(path, &hipfrac_core::csv_safe::neutralise(&bytes)).map_err(Error::from)
}

/// The rows of the manifest `path` with their image and annotation paths made relative to
/// the folder `to` (where a manifest holding them will be written).
pub fn read_relative_to(path: &Path, to: &Path) -> Result<Vec<ManifestRow>> {
    let base = path.parent().unwrap_or(Path::new("."));
    let moved = |p: &str| {
        if p.is_empty() {
            String::new()
        } else {
            relative_path(&base.join(p), to)
        }
    };
    Ok(read(path)?
        .into_iter()
        .map(|row| ManifestRow {
            image: moved(&row.image),
            annotation: moved(&row.annotation),
            ..row
        })
        .collect())
}

/// `path` made absolute (against the current folder) with `.` and `..` resolved lexically.
pub fn absolute(path: &Path) -> PathBuf {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    normalise(&path)
}

/// `target` relative to the folder `base` (both made absolute first), with `/` separators.
pub fn relative_path(target: &Path, base: &Path) -> String {
    let (target, base) = (absolute(target), absolute(base));
    let t: Vec<_> = target.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".to_string(); b.len() - common];
    parts.extend(t[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    parts.join("/")
}

fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_path(Path::new("/d/a/x.png"), Path::new("/d/splits")),
            "../a/x.png"
        );
        assert_eq!(relative_path(Path::new("/d/x.png"), Path::new("/d")), "x.png");
        assert_eq!(relative_path(Path::new("/d/./a/../x.png"), Path::new("/d/")), "x.png");
    }
}
