//! COCO detection json: `images`, `annotations` (bbox `[x, y, w, h]` in pixels) and
//! `categories` (ids 1–4 for DF, VF, SF, UF; 5 for a fracture of unknown type).

use crate::{check_plain_filename, Annotation, Error, LabelMap, Object, Result};
use hipfrac_core::{BBox, FractureClass, Label};

/// The category id hipfrac writes for a fracture of unknown type (after DF, VF, SF, UF).
pub const UNTYPED_CATEGORY: u64 = 5;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Serialize, Deserialize)]
struct CocoFile {
    images: Vec<CocoImage>,
    #[serde(default)]
    annotations: Vec<CocoAnnotation>,
    categories: Vec<CocoCategory>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CocoImage {
    id: u64,
    file_name: String,
    width: u32,
    height: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct CocoAnnotation {
    id: u64,
    image_id: u64,
    category_id: u64,
    bbox: [f64; 4],
    #[serde(default)]
    area: f64,
    #[serde(default)]
    iscrowd: u8,
}

#[derive(Debug, Serialize, Deserialize)]
struct CocoCategory {
    id: u64,
    name: String,
    #[serde(default)]
    supercategory: String,
}

/// COCO json text of `annotations` (category id = class index + 1; a fracture of unknown
/// type is category 5, `fracture`, listed only when a box uses it).
pub fn to_string(annotations: &[Annotation]) -> String {
    let untyped = annotations
        .iter()
        .flat_map(|a| &a.objects)
        .any(|o| o.label == Label::UntypedFracture);
    let mut categories: Vec<CocoCategory> = FractureClass::ALL
        .iter()
        .map(|c| CocoCategory {
            id: c.index() as u64 + 1,
            name: c.code().to_string(),
            supercategory: "hip fracture".into(),
        })
        .collect();
    if untyped {
        categories.push(CocoCategory {
            id: UNTYPED_CATEGORY,
            name: Label::UntypedFracture.code().to_string(),
            supercategory: "hip fracture".into(),
        });
    }
    let mut images = Vec::new();
    let mut boxes = Vec::new();
    for (index, a) in annotations.iter().enumerate() {
        let image_id = index as u64 + 1;
        images.push(CocoImage {
            id: image_id,
            file_name: a.filename.clone(),
            width: a.width,
            height: a.height,
        });
        for object in &a.objects {
            let category_id = match object.label {
                Label::Fracture(class) => class.index() as u64 + 1,
                Label::UntypedFracture => UNTYPED_CATEGORY,
                Label::NoFracture => continue,
            };
            boxes.push(CocoAnnotation {
                id: boxes.len() as u64 + 1,
                image_id,
                category_id,
                bbox: object.bbox.to_coco(),
                area: object.bbox.area() as f64,
                iscrowd: 0,
            });
        }
    }
    serde_json::to_string_pretty(&CocoFile {
        images,
        annotations: boxes,
        categories,
    })
    .expect("COCO should serialise")
}

/// Writes a COCO json atomically.
pub fn write(path: &Path, annotations: &[Annotation]) -> Result<()> {
    hipfrac_dicom::atomic::write_atomic(path, to_string(annotations).as_bytes()).map_err(Error::from)
}

/// Reads a COCO json; boxes outside their image, unknown categories and unknown image ids
/// are errors naming the file.
pub fn read(path: &Path, labels: &LabelMap) -> Result<Vec<Annotation>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(&text, path, labels)
}

/// Parses COCO json text; `path` names the source in errors.
pub fn parse(text: &str, path: &Path, labels: &LabelMap) -> Result<Vec<Annotation>> {
    let file: CocoFile = serde_json::from_str(text).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })?;
    let mut categories = HashMap::new();
    for category in &file.categories {
        let label = labels.resolve(&category.name, path)?;
        if let Some(previous) = categories.insert(category.id, label) {
            return Err(Error::invalid(
                path,
                format!(
                    "category id {} appears twice ({} and {})",
                    category.id,
                    previous.code(),
                    label.code()
                ),
            ));
        }
    }
    let mut by_id: HashMap<u64, usize> = HashMap::new();
    let mut annotations = Vec::with_capacity(file.images.len());
    for image in &file.images {
        check_plain_filename(path, &image.file_name)?;
        if by_id.insert(image.id, annotations.len()).is_some() {
            return Err(Error::invalid(path, format!("image id {} appears twice", image.id)));
        }
        annotations.push(Annotation {
            filename: image.file_name.clone(),
            width: image.width,
            height: image.height,
            depth: 1,
            objects: vec![],
            hips: vec![],
        });
    }
    for coco in &file.annotations {
        let index = *by_id.get(&coco.image_id).ok_or_else(|| {
            Error::invalid(
                path,
                format!("annotation {} refers to unknown image {}", coco.id, coco.image_id),
            )
        })?;
        let label = *categories.get(&coco.category_id).ok_or_else(|| {
            Error::invalid(
                path,
                format!("annotation {} has unknown category {}", coco.id, coco.category_id),
            )
        })?;
        let image = &mut annotations[index];
        let bbox = BBox::from_coco(coco.bbox);
        if bbox.is_degenerate() || !bbox.is_inside(image.width, image.height) {
            return Err(Error::invalid(
                path,
                format!(
                    "annotation {} box {:?} lies outside image {} ({}×{}) or is empty",
                    coco.id, coco.bbox, image.filename, image.width, image.height
                ),
            ));
        }
        if !label.is_fracture() {
            return Err(Error::invalid(
                path,
                format!("annotation {}: a box cannot be \"no visible fracture\"", coco.id),
            ));
        }
        image.objects.push(Object {
            label,
            bbox,
            truncated: false,
            difficult: false,
        });
    }
    Ok(annotations)
}
