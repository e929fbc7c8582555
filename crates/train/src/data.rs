//! Training data: manifest rows → letterboxed 8-bit grey images with boxes, held in memory,
//! and the augmentations applied per batch.

use hipfrac_core::{BBox, FractureClass};
use hipfrac_data::{manifest, voc, LabelMap};
use hipfrac_imaging::{letterbox, Preprocess};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// One image, letterboxed to `size × size` (top-left aligned, black padding).
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub patient: String,
    pub site: String,
    /// The image-level label of its manifest row.
    pub label: hipfrac_core::Label,
    /// The image carries the hipfrac phantom's mark.
    pub simulated: bool,
    pub size: i64,
    pub pixels: Vec<u8>,
    /// Boxes in letterboxed pixels.
    pub boxes: Vec<(FractureClass, BBox)>,
}

/// Loads every row of a manifest (paths relative to the manifest's folder).
pub fn load_manifest(path: &Path, preprocess: &Preprocess) -> Result<Vec<Sample>, DataError> {
    let size = preprocess.size;
    let rows = manifest::read(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    rows.par_iter()
        .map(|row| {
            let image_path = base.join(&row.image);
            let image = hipfrac_dicom::read_radiograph(&image_path)?;
            let boxed = letterbox(&image, preprocess).map_err(|source| DataError::Display { path: image_path.clone(), source })?;
            let mut boxes = Vec::new();
            if !row.annotation.is_empty() {
                let annotation = voc::read(&base.join(&row.annotation), &LabelMap::default())?.annotation;
                for object in annotation.objects {
                    if let Some(class) = object.label.fracture() {
                        boxes.push((class, boxed.to_letterbox(&object.bbox)));
                    }
                }
            }
            Ok(Sample {
                name: row.image.clone(),
                patient: row.patient.clone(),
                site: row.site.clone(),
                label: row.label,
                simulated: image.meta.is_simulated(),
                size,
                pixels: boxed.pixels,
                boxes,
            })
        })
        .collect()
}

/// A manifest, image or annotation that cannot be loaded (each names its file).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Dataset(#[from] hipfrac_data::Error),
    #[error(transparent)]
    Image(#[from] hipfrac_dicom::Error),
    #[error("{}: cannot render it for the network", path.display())]
    Display { path: std::path::PathBuf, #[source] source: hipfrac_dicom::display::VoiError },
}

/// Augmentation strengths (zero for validation and the last epochs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Augment {
    pub flip: f64,
    pub intensity: f64,
    pub scale: f64,
    pub translate: f64,
}

/// A sample after augmentation: pixels in [0, 1] and boxes.
pub fn augment(sample: &Sample, a: &Augment, seed: u64) -> (Vec<f32>, Vec<(FractureClass, BBox)>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let s = sample.size as usize;
    let flip = rng.gen_bool(a.flip.clamp(0.0, 1.0));
    let scale = if a.scale > 0.0 { rng.gen_range(1.0 - a.scale..1.0 + a.scale) } else { 1.0 };
    let (tx, ty) = if a.translate > 0.0 {
        (rng.gen_range(-a.translate..a.translate) * s as f64, rng.gen_range(-a.translate..a.translate) * s as f64)
    } else {
        (0.0, 0.0)
    };
    let centre = s as f64 / 2.0;
    // Output pixel (x, y) samples input ((x − c − tx)/scale + c, …), mirrored when flipping.
    let map_x = |x: f64| if flip { s as f64 - x } else { x };
    let mut out = vec![0f32; s * s];
    for y in 0..s {
        let sy = ((y as f64 + 0.5 - centre - ty) / scale + centre).floor();
        if sy < 0.0 || sy >= s as f64 {
            continue;
        }
        for x in 0..s {
            let ox = map_x(x as f64 + 0.5);
            let sx = ((ox - centre - tx) / scale + centre).floor();
            if sx >= 0.0 && sx < s as f64 {
                out[y * s + x] = sample.pixels[sy as usize * s + sx as usize] as f32 / 255.0;
            }
        }
    }
    if a.intensity > 0.0 {
        let j = a.intensity;
        let gamma = rng.gen_range(1.0 - j..1.0 + j) as f32;
        let contrast = rng.gen_range(1.0 - j..1.0 + j) as f32;
        let brightness = rng.gen_range(-j / 2.0..j / 2.0) as f32;
        for v in &mut out {
            *v = (((*v).powf(gamma) - 0.5) * contrast + 0.5 + brightness).clamp(0.0, 1.0);
        }
    }
    let forward = |x: f64, y: f64| ((x - centre) * scale + centre + tx, (y - centre) * scale + centre + ty);
    let boxes = sample
        .boxes
        .iter()
        .filter_map(|(class, b)| {
            let (x0, y0) = forward(b.x_min as f64, b.y_min as f64);
            let (x1, y1) = forward(b.x_max as f64, b.y_max as f64);
            let (x0, x1) = if flip { (s as f64 - x1, s as f64 - x0) } else { (x0, x1) };
            let moved = BBox::new(x0 as f32, y0 as f32, x1 as f32, y1 as f32);
            let clipped = moved.clip(s as u32, s as u32);
            // Keep boxes that stay mostly in view.
            (clipped.area() >= 0.4 * moved.area() && clipped.width() >= 2.0 && clipped.height() >= 2.0).then_some((*class, clipped))
        })
        .collect();
    (out, boxes)
}

/// Mosaic (as YOLOX/DAMO-YOLO): four images around a random centre of a 2S×2S canvas,
/// scaled back to S with a random factor (the reference's mosaic_scale range, narrowed),
/// boxes carried along and clipped.
pub fn mosaic(parts: [&Sample; 4], seed: u64) -> Sample {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let s = parts[0].size as usize;
    let canvas_size = 2 * s;
    let mut canvas = vec![0u8; canvas_size * canvas_size];
    let (xc, yc) = (rng.gen_range(s / 2..3 * s / 2), rng.gen_range(s / 2..3 * s / 2));
    let mut boxes = Vec::new();
    // Quadrants: top-left, top-right, bottom-left, bottom-right; each image's corner touches
    // the centre.
    for (k, part) in parts.iter().enumerate() {
        let (x0, y0) = match k {
            0 => (xc as isize - s as isize, yc as isize - s as isize),
            1 => (xc as isize, yc as isize - s as isize),
            2 => (xc as isize - s as isize, yc as isize),
            _ => (xc as isize, yc as isize),
        };
        for y in 0..s {
            let cy = y0 + y as isize;
            if cy < 0 || cy >= canvas_size as isize {
                continue;
            }
            for x in 0..s {
                let cx = x0 + x as isize;
                if cx >= 0 && cx < canvas_size as isize {
                    canvas[cy as usize * canvas_size + cx as usize] = part.pixels[y * s + x];
                }
            }
        }
        for (class, b) in &part.boxes {
            boxes.push((*class, BBox::new(b.x_min + x0 as f32, b.y_min + y0 as f32, b.x_max + x0 as f32, b.y_max + y0 as f32)));
        }
    }
    // Scale the canvas region around the centre into S×S: factor f of the canvas maps to the
    // output; f = 0.5 shows the whole canvas.
    let f = rng.gen_range(0.5..0.9);
    let window = (canvas_size as f64 * f) as usize;
    let left = xc.saturating_sub(window / 2).min(canvas_size - window);
    let top = yc.saturating_sub(window / 2).min(canvas_size - window);
    let mut pixels = vec![0u8; s * s];
    let step = window as f64 / s as f64;
    for y in 0..s {
        let sy = top + ((y as f64 + 0.5) * step) as usize;
        for x in 0..s {
            let sx = left + ((x as f64 + 0.5) * step) as usize;
            pixels[y * s + x] = canvas[sy.min(canvas_size - 1) * canvas_size + sx.min(canvas_size - 1)];
        }
    }
    let boxes = boxes
        .into_iter()
        .filter_map(|(class, b)| {
            let moved = BBox::new(
                ((b.x_min as f64 - left as f64) / step) as f32,
                ((b.y_min as f64 - top as f64) / step) as f32,
                ((b.x_max as f64 - left as f64) / step) as f32,
                ((b.y_max as f64 - top as f64) / step) as f32,
            );
            let clipped = moved.clip(s as u32, s as u32);
            (clipped.area() >= 0.4 * moved.area() && clipped.width() >= 2.0 && clipped.height() >= 2.0).then_some((class, clipped))
        })
        .collect();
    Sample { name: format!("mosaic:{}", parts[0].name), patient: parts[0].patient.clone(), site: parts[0].site.clone(), label: parts[0].label, simulated: parts.iter().any(|p| p.simulated), size: s as i64, pixels, boxes }
}

/// MixUp (as YOLOX): the average of two images, with both sets of boxes.
pub fn mixup(a: (Vec<f32>, Vec<(FractureClass, BBox)>), b: (Vec<f32>, Vec<(FractureClass, BBox)>)) -> (Vec<f32>, Vec<(FractureClass, BBox)>) {
    let pixels = a.0.iter().zip(&b.0).map(|(x, y)| 0.5 * (x + y)).collect();
    let mut boxes = a.1;
    boxes.extend(b.1);
    (pixels, boxes)
}

/// A batch as tensors: images `[B, 1, S, S]` and per-image targets.
pub fn batch(samples: &[&Sample], a: &Augment, seeds: &[u64], device: Device) -> (Tensor, Vec<hipfrac_model::loss::Targets>) {
    let parts: Vec<(Vec<f32>, Vec<(FractureClass, BBox)>)> = samples.par_iter().zip(seeds.par_iter()).map(|(s, &seed)| augment(s, a, seed)).collect();
    to_tensors(parts, samples[0].size, device)
}

/// Tensors from augmented images.
pub fn to_tensors(parts: Vec<(Vec<f32>, Vec<(FractureClass, BBox)>)>, size: i64, device: Device) -> (Tensor, Vec<hipfrac_model::loss::Targets>) {
    let count = parts.len() as i64;
    let mut flat = Vec::with_capacity(parts.len() * (size * size) as usize);
    let mut targets = Vec::new();
    for (pixels, boxes) in parts {
        flat.extend_from_slice(&pixels);
        let coords: Vec<f32> = boxes.iter().flat_map(|(_, b)| [b.x_min, b.y_min, b.x_max, b.y_max]).collect();
        let labels: Vec<i64> = boxes.iter().map(|(c, _)| c.index() as i64).collect();
        targets.push(hipfrac_model::loss::Targets {
            boxes: Tensor::from_slice(&coords).reshape([boxes.len() as i64, 4]).to_device(device),
            labels: Tensor::from_slice(&labels).to_kind(Kind::Int64).to_device(device),
        });
    }
    let images = Tensor::from_slice(&flat).reshape([count, 1, size, size]).to_device(device);
    (images, targets)
}
