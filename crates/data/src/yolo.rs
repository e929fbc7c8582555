//! YOLO txt: one `<image stem>.txt` per image, one line `class cx cy w h` per box
//! (normalised to the image size), and `classes.txt` naming the classes in index order.
//!
//! YOLO stores no image size, so reading needs the images; it stores no VOC flags
//! (truncated, difficult) either.

use crate::{check_plain_filename, image_info, is_image_file, Annotation, Error, LabelMap, Object, Result};
use hipfrac_core::{BBox, FractureClass, Label};
use std::path::Path;

/// Shortest text that parses back to the same f64, so pixel boxes survive normalisation.
fn exact(value: f64) -> String {
    format!("{value}")
}

/// Writes `annotations` into `dir` (created if needed): `classes.txt` and one txt per image
/// (empty for an image without a fracture). "No visible fracture" boxes are not written.
/// Classes 0–3 are DF, VF, SF, UF; a fracture of unknown type is class 4 (`fracture`),
/// named in classes.txt only when a box uses it.
pub fn write(dir: &Path, annotations: &[Annotation]) -> Result<()> {
    crate::validate(dir, annotations)?;
    let untyped = annotations
        .iter()
        .flat_map(|a| &a.objects)
        .any(|o| o.label == Label::UntypedFracture);
    let mut classes: String = FractureClass::ALL.iter().map(|c| format!("{}\n", c.code())).collect();
    if untyped {
        classes.push_str(&format!("{}\n", Label::UntypedFracture.code()));
    }
    hipfrac_dicom::atomic::write_atomic(&dir.join("classes.txt"), classes.as_bytes())?;
    for a in annotations {
        let stem = Path::new(&a.filename)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(&a.filename);
        let mut text = String::new();
        for object in &a.objects {
            let class = match object.label {
                Label::Fracture(class) => class.index(),
                Label::UntypedFracture => FractureClass::ALL.len(),
                Label::NoFracture => continue,
            };
            let [cx, cy, w, h] = object.bbox.to_yolo(a.width, a.height);
            text.push_str(&format!(
                "{} {} {} {} {}\n",
                class,
                exact(cx),
                exact(cy),
                exact(w),
                exact(h)
            ));
        }
        hipfrac_dicom::atomic::write_atomic(&dir.join(format!("{stem}.txt")), text.as_bytes())?;
    }
    Ok(())
}

/// Reads every `<stem>.txt` of `dir` (except `classes.txt`); each must have an image of
/// the same stem in `images` (PNG or DICOM), which gives the size.
pub fn read(dir: &Path, images: &Path, labels: &LabelMap) -> Result<Vec<Annotation>> {
    let classes_path = dir.join("classes.txt");
    let classes_text = std::fs::read_to_string(&classes_path).map_err(|e| Error::io(&classes_path, e))?;
    let classes: Vec<Label> = classes_text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|name| labels.resolve(name, &classes_path))
        .collect::<Result<_>>()?;
    let mut image_files: std::collections::HashMap<String, std::path::PathBuf> = Default::default();
    for entry in std::fs::read_dir(images).map_err(|e| Error::io(images, e))? {
        let path = entry.map_err(|e| Error::io(images, e))?.path();
        if path.is_file() && is_image_file(&path) {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                if let Some(other) = image_files.insert(stem.to_string(), path.clone()) {
                    return Err(Error::invalid(
                        images,
                        format!(
                            "{} and {} share the name {stem}: a YOLO txt cannot tell them apart",
                            other.display(),
                            path.display()
                        ),
                    ));
                }
            }
        }
    }
    let mut txts: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt") && p.file_name().is_some_and(|n| n != "classes.txt"))
        .collect();
    txts.sort();
    let mut annotations = Vec::with_capacity(txts.len());
    for txt in txts {
        let stem = txt.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        let image = image_files
            .get(&stem)
            .ok_or_else(|| Error::invalid(&txt, format!("no image named {stem}.* in {}", images.display())))?;
        let info = image_info(image)?;
        let filename = image
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        check_plain_filename(&txt, &filename)?;
        let text = std::fs::read_to_string(&txt).map_err(|e| Error::io(&txt, e))?;
        let objects = parse(&text, &txt, &classes, info.width, info.height)?;
        annotations.push(Annotation {
            filename,
            width: info.width,
            height: info.height,
            depth: 1,
            objects,
            hips: vec![],
        });
    }
    Ok(annotations)
}

/// Parses one YOLO txt (`class cx cy w h` per line) of an image `width` × `height`, with the
/// labels of `classes.txt`; `path` names the source in errors.
pub fn parse(text: &str, path: &Path, classes: &[Label], width: u32, height: u32) -> Result<Vec<Object>> {
    let mut objects = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let bad = |why: &str| Error::invalid(path, format!("line {}: {why}", number + 1));
        if fields.len() != 5 {
            return Err(bad("expected `class cx cy w h`"));
        }
        let class: usize = fields[0].parse().map_err(|_| bad("class is not an index"))?;
        let label = *classes
            .get(class)
            .ok_or_else(|| bad(&format!("class {class} is not in classes.txt")))?;
        let mut v = [0f64; 4];
        for (slot, raw) in v.iter_mut().zip(&fields[1..]) {
            *slot = raw
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite())
                .ok_or_else(|| bad("coordinate is not a number"))?;
        }
        // Normalised: the centre in [0, 1], the size in (0, 1], the box inside the image.
        let [cx, cy, w, h] = v;
        let tolerance = 1e-6;
        let inside = |c: f64, s: f64| c - s / 2.0 >= -tolerance && c + s / 2.0 <= 1.0 + tolerance;
        let size = |s: f64| s > 0.0 && s <= 1.0;
        let normalised = (0.0..=1.0).contains(&cx)
            && (0.0..=1.0).contains(&cy)
            && size(w)
            && size(h)
            && inside(cx, w)
            && inside(cy, h);
        if !normalised {
            return Err(bad(&format!(
                "box {cx} {cy} {w} {h} is not a normalised box inside the image (centre in [0, 1], size in (0, 1])"
            )));
        }
        if !label.is_fracture() {
            return Err(bad("a box cannot be \"no visible fracture\""));
        }
        objects.push(Object {
            label,
            bbox: BBox::from_yolo(v, width, height),
            truncated: false,
            difficult: false,
        });
    }
    Ok(objects)
}
