//! Training data: manifest rows → letterboxed 8-bit grey images with boxes, held in memory,
//! and the augmentations applied per batch.

use hipfrac_core::{BBox, FractureClass};
use hipfrac_data::{manifest, voc, LabelMap};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// One image, letterboxed to `size × size` (top-left aligned, black padding).
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub patient: String,
    pub size: i64,
    pub pixels: Vec<u8>,
    /// Boxes in letterboxed pixels.
    pub boxes: Vec<(FractureClass, BBox)>,
}

/// Area-averaging resize of a grey image.
pub fn resize(src: &[u8], w: usize, h: usize, nw: usize, nh: usize) -> Vec<u8> {
    let mut out = vec![0u8; nw * nh];
    let (sx, sy) = (w as f64 / nw as f64, h as f64 / nh as f64);
    for y in 0..nh {
        let (y0, y1) = ((y as f64 * sy) as usize, (((y + 1) as f64 * sy).ceil() as usize).min(h).max((y as f64 * sy) as usize + 1));
        for x in 0..nw {
            let (x0, x1) = ((x as f64 * sx) as usize, (((x + 1) as f64 * sx).ceil() as usize).min(w).max((x as f64 * sx) as usize + 1));
            let mut sum = 0u32;
            for yy in y0..y1 {
                for xx in x0..x1 {
                    sum += src[yy * w + xx] as u32;
                }
            }
            out[y * nw + x] = (sum / ((y1 - y0) * (x1 - x0)) as u32) as u8;
        }
    }
    out
}

/// A radiograph prepared for the network: its display rendering (the file's window, or an
/// automatic one), resized by area averaging so the longer side is `size`, placed at the
/// top-left of a `size × size` black canvas. Training and inference share this one path.
#[derive(Debug, Clone)]
pub struct Letterbox {
    pub size: i64,
    pub pixels: Vec<u8>,
    /// Letterboxed pixels per original pixel, in x and y.
    pub scale_x: f32,
    pub scale_y: f32,
    /// The original image's size.
    pub width: u32,
    pub height: u32,
}

impl Letterbox {
    /// A box in original pixels → letterboxed pixels.
    pub fn to_letterbox(&self, b: &BBox) -> BBox {
        BBox::new(b.x_min * self.scale_x, b.y_min * self.scale_y, b.x_max * self.scale_x, b.y_max * self.scale_y)
    }

    /// A box in letterboxed pixels → original pixels, clipped to the image.
    pub fn to_original(&self, b: &BBox) -> BBox {
        BBox::new(b.x_min / self.scale_x, b.y_min / self.scale_y, b.x_max / self.scale_x, b.y_max / self.scale_y).clip(self.width, self.height)
    }
}

/// How a radiograph becomes network input: the square size, and whether the displayed
/// image is histogram-equalised first (which evens out the contrast and tone curves that
/// differ between sites). Saved with every model (train.toml) so inference does the same.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocess {
    pub size: i64,
    pub equalize: bool,
}

/// Global histogram equalisation of an 8-bit image: each grey level goes to its cumulative
/// share of the pixels (the darkest level present to 0, the brightest to 255).
pub fn equalize(grey: &mut [u8]) {
    let mut histogram = [0u64; 256];
    for &g in grey.iter() {
        histogram[g as usize] += 1;
    }
    let total = grey.len() as u64;
    let first = histogram.iter().copied().find(|&c| c > 0).unwrap_or(0);
    if total == first {
        return; // one grey level: nothing to spread
    }
    let mut table = [0u8; 256];
    let mut cumulative = 0u64;
    for (level, &count) in histogram.iter().enumerate() {
        cumulative += count;
        table[level] = (((cumulative.saturating_sub(first)) as f64 / (total - first) as f64) * 255.0).round() as u8;
    }
    for g in grey.iter_mut() {
        *g = table[*g as usize];
    }
}

/// Letterboxes a radiograph (see [`Letterbox`]).
pub fn letterbox(image: &hipfrac_core::Radiograph, preprocess: &Preprocess) -> Result<Letterbox, String> {
    let size = preprocess.size;
    let mut grey = hipfrac_dicom::display::to_display(image).map_err(|e| e.0)?;
    if preprocess.equalize {
        equalize(&mut grey);
    }
    let (w, h) = (image.width() as usize, image.height() as usize);
    let scale = size as f64 / w.max(h) as f64;
    let (nw, nh) = (((w as f64 * scale).round() as usize).clamp(1, size as usize), ((h as f64 * scale).round() as usize).clamp(1, size as usize));
    let small = resize(&grey, w, h, nw, nh);
    let mut pixels = vec![0u8; (size * size) as usize];
    for y in 0..nh {
        pixels[y * size as usize..y * size as usize + nw].copy_from_slice(&small[y * nw..(y + 1) * nw]);
    }
    Ok(Letterbox { size, pixels, scale_x: nw as f32 / w as f32, scale_y: nh as f32 / h as f32, width: w as u32, height: h as u32 })
}

/// Loads every row of a manifest (paths relative to the manifest's folder).
pub fn load_manifest(path: &Path, preprocess: &Preprocess) -> Result<Vec<Sample>, String> {
    let size = preprocess.size;
    let rows = manifest::read(path).map_err(|e| e.to_string())?;
    let base = path.parent().unwrap_or(Path::new("."));
    rows.par_iter()
        .map(|row| {
            let image_path = base.join(&row.image);
            let image = hipfrac_dicom::read_radiograph(&image_path).map_err(|e| e.to_string())?;
            let boxed = letterbox(&image, preprocess).map_err(|e| format!("{}: {e}", image_path.display()))?;
            let mut boxes = Vec::new();
            if !row.annotation.is_empty() {
                let annotation = voc::read(&base.join(&row.annotation), &LabelMap::default()).map_err(|e| e.to_string())?.annotation;
                for object in annotation.objects {
                    if let Some(class) = object.label.fracture() {
                        boxes.push((class, boxed.to_letterbox(&object.bbox)));
                    }
                }
            }
            Ok(Sample { name: row.image.clone(), patient: row.patient.clone(), size, pixels: boxed.pixels, boxes })
        })
        .collect()
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
    Sample { name: format!("mosaic:{}", parts[0].name), patient: parts[0].patient.clone(), size: s as i64, pixels, boxes }
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
