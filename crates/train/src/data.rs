//! Training data: manifest rows → letterboxed 8-bit grey images with boxes, held in memory,
//! and the augmentations applied per batch.

use hipfrac_core::{BBox, FractureClass, Stage};
use hipfrac_data::{manifest, voc, LabelMap};
use hipfrac_imaging::{hip_region, letterbox, letterbox_regions, Letterbox, Preprocess};
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
    /// Boxes in letterboxed pixels, with their type (`None`: a fracture of unknown type, a
    /// partial label).
    pub boxes: Vec<(Option<FractureClass>, BBox)>,
}

/// The localiser's one class (the proximal femur) travels through the class-indexed
/// training code (targets, mAP) as class index 0.
pub const HIP_CLASS: FractureClass = FractureClass::ALL[0];

/// Loads every row of a manifest (paths relative to the manifest's folder) as `stage`
/// needs it: the whole image with its fracture boxes ([`Stage::Whole`]), the whole image with
/// its hip boxes as [`HIP_CLASS`] ([`Stage::Hips`]), or one sample per hip box, cut to
/// [`hip_region`], with the fracture boxes inside it ([`Stage::HipCrops`]; rows without hip
/// boxes are left out). The two-stage kinds need hip boxes: a manifest with none is an error.
pub fn load_manifest(path: &Path, preprocess: &Preprocess, stage: Stage) -> Result<Vec<Sample>, DataError> {
    let rows = manifest::read(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let per_row: Vec<Vec<Sample>> = rows
        .par_iter()
        .map(|row| {
            let image_path = base.join(&row.image);
            let image = hipfrac_dicom::read_radiograph(&image_path)?;
            let display = |source| DataError::Display {
                path: image_path.clone(),
                source,
            };
            let annotation = if row.annotation.is_empty() {
                None
            } else {
                Some(voc::read(&base.join(&row.annotation), &LabelMap::default())?.annotation)
            };
            // A box of unknown type keeps its place with no type (a partial label).
            let fractures: Vec<(Option<FractureClass>, BBox)> = annotation
                .iter()
                .flat_map(|a| {
                    a.objects
                        .iter()
                        .filter(|o| o.label.is_fracture())
                        .map(|o| (o.label.fracture(), o.bbox))
                })
                .collect();
            let hips = annotation.map(|a| a.hips).unwrap_or_default();
            let sample = |boxed: Letterbox, boxes: Vec<(Option<FractureClass>, BBox)>| Sample {
                name: row.image.clone(),
                patient: row.patient.clone(),
                site: row.site.clone(),
                label: row.label,
                simulated: image.meta.is_simulated(),
                size: preprocess.size,
                boxes: boxes.iter().map(|(c, b)| (*c, boxed.to_letterbox(b))).collect(),
                pixels: boxed.pixels,
            };
            Ok(match stage {
                Stage::Whole => vec![sample(letterbox(&image, preprocess).map_err(display)?, fractures)],
                Stage::Hips => vec![sample(
                    letterbox(&image, preprocess).map_err(display)?,
                    hips.iter().map(|h| (Some(HIP_CLASS), *h)).collect(),
                )],
                Stage::HipCrops => {
                    let regions: Vec<BBox> = hips
                        .iter()
                        .map(|h| hip_region(h, image.width(), image.height()))
                        .collect();
                    let crops = letterbox_regions(&image, preprocess, &regions).map_err(display)?;
                    crops
                        .into_iter()
                        .zip(&regions)
                        .map(|(crop, region)| {
                            // A fracture box belongs to the crop that holds most of it.
                            let inside = fractures
                                .iter()
                                .filter_map(|(c, b)| {
                                    let cut = BBox::new(
                                        b.x_min.max(region.x_min),
                                        b.y_min.max(region.y_min),
                                        b.x_max.min(region.x_max),
                                        b.y_max.min(region.y_max),
                                    );
                                    (!cut.is_degenerate() && cut.area() >= 0.5 * b.area()).then_some((*c, cut))
                                })
                                .collect();
                            sample(crop, inside)
                        })
                        .collect()
                }
            })
        })
        .collect::<Result<_, DataError>>()?;
    let samples: Vec<Sample> = per_row.into_iter().flatten().collect();
    let no_hips = match stage {
        Stage::Whole => false,
        Stage::Hips => samples.iter().all(|s| s.boxes.is_empty()),
        Stage::HipCrops => samples.is_empty(),
    };
    if no_hips && !rows.is_empty() {
        return Err(DataError::NoHipBoxes {
            path: path.to_path_buf(),
            stage,
        });
    }
    Ok(samples)
}

/// A manifest, image or annotation that cannot be loaded (each names its file).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Dataset(#[from] hipfrac_data::Error),
    #[error(transparent)]
    Image(#[from] hipfrac_dicom::Error),
    #[error("{}: cannot render it for the network", path.display())]
    Display {
        path: std::path::PathBuf,
        #[source]
        source: hipfrac_dicom::display::VoiError,
    },
    #[error("{}: no image has a hip box (a VOC object named \"hip\"), which stage = \"{}\" trains on; draw one per proximal femur, or train the single stage (stage = \"whole\")", path.display(), stage.name())]
    NoHipBoxes { path: std::path::PathBuf, stage: Stage },
}

/// Augmentation strengths (zero for validation and the last epochs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Augment {
    pub flip: f64,
    pub intensity: f64,
    /// Probability of a random re-acquisition ([`reacquire`]).
    pub acquisition: f64,
    /// Probability of a turn by 90° (clockwise or anticlockwise, even odds).
    pub rotate90: f64,
    pub scale: f64,
    pub translate: f64,
    /// Probability of cutting the image to a band without any box ([`without_boxes`]): a
    /// negative for a localiser's scope head.
    pub box_free: f64,
}

/// A sample after augmentation: pixels in [0, 1] and boxes.
pub fn augment(sample: &Sample, a: &Augment, seed: u64) -> Augmented {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let s = sample.size as usize;
    let flip = rng.gen_bool(a.flip.clamp(0.0, 1.0));
    let scale = if a.scale > 0.0 {
        rng.gen_range(1.0 - a.scale..1.0 + a.scale)
    } else {
        1.0
    };
    let (tx, ty) = if a.translate > 0.0 {
        (
            rng.gen_range(-a.translate..a.translate) * s as f64,
            rng.gen_range(-a.translate..a.translate) * s as f64,
        )
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
    let boxes: Vec<(Option<FractureClass>, BBox)> = sample
        .boxes
        .iter()
        .filter_map(|(class, b)| {
            let (x0, y0) = forward(b.x_min as f64, b.y_min as f64);
            let (x1, y1) = forward(b.x_max as f64, b.y_max as f64);
            let (x0, x1) = if flip { (s as f64 - x1, s as f64 - x0) } else { (x0, x1) };
            let moved = BBox::new(x0 as f32, y0 as f32, x1 as f32, y1 as f32);
            let clipped = moved.clip(s as u32, s as u32);
            // Keep boxes that stay mostly in view.
            (clipped.area() >= 0.4 * moved.area() && clipped.width() >= 2.0 && clipped.height() >= 2.0)
                .then_some((*class, clipped))
        })
        .collect();
    // Drawn only when asked for, so that runs without it keep their random sequence.
    let (out, boxes) = if a.rotate90 > 0.0 && rng.gen_bool(a.rotate90.clamp(0.0, 1.0)) {
        turn(&out, s, &boxes, rng.gen_bool(0.5))
    } else {
        (out, boxes)
    };
    // Drawn only when asked for, as the turn.
    let (mut out, boxes) = if a.box_free > 0.0 && rng.gen_bool(a.box_free.clamp(0.0, 1.0)) {
        match without_boxes(&out, s, &boxes) {
            Some(cut) => (cut, Vec::new()),
            None => (out, boxes),
        }
    } else {
        (out, boxes)
    };
    if a.acquisition > 0.0 && rng.gen_bool(a.acquisition.clamp(0.0, 1.0)) {
        reacquire(&mut out, s, &boxes, &mut rng);
    }
    (out, boxes)
}

/// The square `size × size` image cut to the largest band beside all its boxes — above,
/// below, left or right of every one, at least a quarter of the image each way — and centred,
/// unscaled (each band spans the whole image one way), between black bars (what a film shows
/// when it misses the hips: a pelvis above them, a femoral shaft below). `None` when there is
/// no box or no band that large.
pub fn without_boxes(pixels: &[f32], size: usize, boxes: &[(Option<FractureClass>, BBox)]) -> Option<Vec<f32>> {
    if boxes.is_empty() {
        return None;
    }
    let s = size as f32;
    let edge = |v: f32| (v.clamp(0.0, s)) as usize;
    let x0 = edge(boxes.iter().map(|(_, b)| b.x_min).fold(s, f32::min).floor());
    let y0 = edge(boxes.iter().map(|(_, b)| b.y_min).fold(s, f32::min).floor());
    let x1 = edge(boxes.iter().map(|(_, b)| b.x_max).fold(0.0, f32::max).ceil());
    let y1 = edge(boxes.iter().map(|(_, b)| b.y_max).fold(0.0, f32::max).ceil());
    // (x, y, width, height) of the bands above, below, left and right of every box.
    let bands = [
        (0, 0, size, y0),
        (0, y1, size, size - y1),
        (0, 0, x0, size),
        (x1, 0, size - x1, size),
    ];
    let (bx, by, bw, bh) = bands
        .into_iter()
        .filter(|&(_, _, w, h)| w >= size / 4 && h >= size / 4)
        .max_by_key(|&(_, _, w, h)| w * h)?;
    let mut out = vec![0f32; size * size];
    let (ox, oy) = ((size - bw) / 2, (size - bh) / 2);
    for y in 0..bh {
        let from = (by + y) * size + bx;
        out[(oy + y) * size + ox..(oy + y) * size + ox + bw].copy_from_slice(&pixels[from..from + bw]);
    }
    Some(out)
}

/// A square `size × size` image turned by 90° (clockwise when `clockwise`), with its boxes.
pub fn turn(pixels: &[f32], size: usize, boxes: &[(Option<FractureClass>, BBox)], clockwise: bool) -> Augmented {
    let s = size;
    let mut out = vec![0f32; s * s];
    for y in 0..s {
        for x in 0..s {
            // Clockwise: the output pixel (x, y) shows the input pixel (y, s − 1 − x).
            let (sx, sy) = if clockwise { (y, s - 1 - x) } else { (s - 1 - y, x) };
            out[y * s + x] = pixels[sy * s + sx];
        }
    }
    let n = s as f32;
    let turned = boxes
        .iter()
        .map(|(c, b)| {
            let b = if clockwise {
                BBox::new(n - b.y_max, b.x_min, n - b.y_min, b.x_max)
            } else {
                BBox::new(b.y_min, n - b.x_max, b.y_max, n - b.x_min)
            };
            (*c, b)
        })
        .collect();
    (out, turned)
}

/// A random re-acquisition of a letterboxed image (pixels in [0, 1], `size × size`): what
/// differs between sites and machines, none of which changes what the image shows. Each
/// step is taken with its own probability:
/// * a window: the grey range clipped and stretched (a narrower or shifted VOI window);
/// * a tone curve: a sigmoid of random slope and centre (vendor processing);
/// * edge enhancement (unsharp masking) or blur;
/// * lost resolution: averaged down by 1.5–3× and back up (a larger pixel spacing);
/// * noise (Gaussian, quantum-like: stronger in darker, less exposed areas);
/// * collimation: a bright band along one or two edges, kept off the boxes;
/// * burned-in text or a side marker, kept off the boxes;
/// * inversion (a MONOCHROME1 image read as MONOCHROME2), rarely.
pub fn reacquire(pixels: &mut [f32], size: usize, boxes: &[(Option<FractureClass>, BBox)], rng: &mut impl Rng) {
    let s = size;
    if rng.gen_bool(0.5) {
        let lo = rng.gen_range(0.0..0.2f32);
        let hi = rng.gen_range(0.8..1.0f32);
        pixels
            .iter_mut()
            .for_each(|v| *v = ((*v - lo) / (hi - lo)).clamp(0.0, 1.0));
    }
    if rng.gen_bool(0.5) {
        let (centre, slope) = (rng.gen_range(0.35..0.65f32), rng.gen_range(3.0..9.0f32));
        let f = |v: f32| 1.0 / (1.0 + (-(v - centre) * slope).exp());
        let (f0, f1) = (f(0.0), f(1.0));
        pixels.iter_mut().for_each(|v| *v = (f(*v) - f0) / (f1 - f0));
    }
    match rng.gen_range(0..3) {
        0 => {
            let amount = rng.gen_range(0.3..1.5f32);
            let blurred = box_blur(pixels, s, rng.gen_range(1..=3));
            pixels
                .iter_mut()
                .zip(&blurred)
                .for_each(|(v, b)| *v = (*v + amount * (*v - b)).clamp(0.0, 1.0));
        }
        1 => {
            let blurred = box_blur(pixels, s, 1);
            pixels.copy_from_slice(&blurred);
        }
        _ => {}
    }
    if rng.gen_bool(0.3) {
        let factor = rng.gen_range(1.5..3.0f64);
        let small = ((s as f64 / factor).round() as usize).max(8);
        let down = resize_f32(pixels, s, s, small, small);
        let up = resize_f32(&down, small, small, s, s);
        pixels.copy_from_slice(&up);
    }
    if rng.gen_bool(0.5) {
        let sigma = rng.gen_range(0.005..0.04f32);
        pixels.iter_mut().for_each(|v| {
            // Box–Muller; darker (less exposed) areas are noisier.
            let (u1, u2): (f32, f32) = (rng.gen_range(f32::EPSILON..1.0), rng.gen());
            let n = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
            *v = (*v + n * sigma * (1.5 - *v)).clamp(0.0, 1.0);
        });
    }
    let free = |x0: usize, y0: usize, x1: usize, y1: usize| {
        let region = BBox::new(x0 as f32, y0 as f32, x1 as f32, y1 as f32);
        boxes.iter().all(|(_, b)| b.intersection_area(&region) == 0.0)
    };
    if rng.gen_bool(0.3) {
        let brightness = rng.gen_range(0.75..1.0f32);
        for _ in 0..rng.gen_range(1..=2) {
            let width = rng.gen_range(s / 40..=s / 8).max(1);
            // Left, right, top or bottom; a band that would cover a box is left out.
            let (x0, y0, x1, y1) = match rng.gen_range(0..4) {
                0 => (0, 0, width, s),
                1 => (s - width, 0, s, s),
                2 => (0, 0, s, width),
                _ => (0, s - width, s, s),
            };
            if free(x0, y0, x1, y1) {
                for y in y0..y1 {
                    pixels[y * s + x0..y * s + x1].iter_mut().for_each(|v| *v = brightness);
                }
            }
        }
    }
    if rng.gen_bool(0.3) {
        const TEXTS: [&str; 6] = ["R", "L", "AP", "HIP", "STANDING", "1"];
        let text = TEXTS[rng.gen_range(0..TEXTS.len())];
        let scale = (s as i64 / 100).max(1) * rng.gen_range(1..=2);
        let (w, h) = (hipfrac_imaging::font::width(text, scale) as usize, 7 * scale as usize);
        if w + 2 < s && h + 2 < s {
            let (x0, y0) = (rng.gen_range(0..s - w), rng.gen_range(0..s - h));
            if free(x0, y0, x0 + w, y0 + h) {
                let ink = if rng.gen_bool(0.8) { 1.0 } else { 0.0 };
                hipfrac_imaging::font::draw(text, x0 as i64, y0 as i64, scale, |x, y| {
                    if x >= 0 && y >= 0 && (x as usize) < s && (y as usize) < s {
                        pixels[y as usize * s + x as usize] = ink;
                    }
                });
            }
        }
    }
    if rng.gen_bool(0.05) {
        pixels.iter_mut().for_each(|v| *v = 1.0 - *v);
    }
}

/// `src` (`w × h`) resampled to `nw × nh`: area average when shrinking, bilinear when growing.
fn resize_f32(src: &[f32], w: usize, h: usize, nw: usize, nh: usize) -> Vec<f32> {
    let mut out = vec![0f32; nw * nh];
    let (sx, sy) = (w as f64 / nw as f64, h as f64 / nh as f64);
    for y in 0..nh {
        for x in 0..nw {
            out[y * nw + x] = if sx >= 1.0 && sy >= 1.0 {
                let (x0, x1) = (
                    (x as f64 * sx) as usize,
                    (((x + 1) as f64 * sx) as usize).clamp((x as f64 * sx) as usize + 1, w),
                );
                let (y0, y1) = (
                    (y as f64 * sy) as usize,
                    (((y + 1) as f64 * sy) as usize).clamp((y as f64 * sy) as usize + 1, h),
                );
                let sum: f32 = (y0..y1)
                    .flat_map(|yy| (x0..x1).map(move |xx| (xx, yy)))
                    .map(|(xx, yy)| src[yy * w + xx])
                    .sum();
                sum / ((x1 - x0) * (y1 - y0)) as f32
            } else {
                let fx = ((x as f64 + 0.5) * sx - 0.5).clamp(0.0, (w - 1) as f64);
                let fy = ((y as f64 + 0.5) * sy - 0.5).clamp(0.0, (h - 1) as f64);
                let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
                let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
                let (ax, ay) = ((fx - x0 as f64) as f32, (fy - y0 as f64) as f32);
                let top = src[y0 * w + x0] * (1.0 - ax) + src[y0 * w + x1] * ax;
                let bottom = src[y1 * w + x0] * (1.0 - ax) + src[y1 * w + x1] * ax;
                top * (1.0 - ay) + bottom * ay
            };
        }
    }
    out
}

/// A box blur of radius `r` (separable, edges clamped).
fn box_blur(pixels: &[f32], s: usize, r: usize) -> Vec<f32> {
    let pass = |input: &[f32], horizontal: bool| -> Vec<f32> {
        let mut out = vec![0f32; s * s];
        for a in 0..s {
            for b in 0..s {
                let mut sum = 0.0;
                for d in 0..=2 * r {
                    let k = (b + d).saturating_sub(r).min(s - 1);
                    sum += if horizontal { input[a * s + k] } else { input[k * s + a] };
                }
                let at = if horizontal { a * s + b } else { b * s + a };
                out[at] = sum / (2 * r + 1) as f32;
            }
        }
        out
    };
    pass(&pass(pixels, true), false)
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
            boxes.push((
                *class,
                BBox::new(
                    b.x_min + x0 as f32,
                    b.y_min + y0 as f32,
                    b.x_max + x0 as f32,
                    b.y_max + y0 as f32,
                ),
            ));
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
            (clipped.area() >= 0.4 * moved.area() && clipped.width() >= 2.0 && clipped.height() >= 2.0)
                .then_some((class, clipped))
        })
        .collect();
    Sample {
        name: format!("mosaic:{}", parts[0].name),
        patient: parts[0].patient.clone(),
        site: parts[0].site.clone(),
        label: parts[0].label,
        simulated: parts.iter().any(|p| p.simulated),
        size: s as i64,
        pixels,
        boxes,
    }
}

/// MixUp (as YOLOX): the average of two images, with both sets of boxes.
pub fn mixup(a: Augmented, b: Augmented) -> Augmented {
    let pixels = a.0.iter().zip(&b.0).map(|(x, y)| 0.5 * (x + y)).collect();
    let mut boxes = a.1;
    boxes.extend(b.1);
    (pixels, boxes)
}

/// An augmented image (its pixels, row-major) with its boxes (`None`: a fracture of unknown
/// type).
pub type Augmented = (Vec<f32>, Vec<(Option<FractureClass>, BBox)>);

/// A batch as tensors: images `[B, 1, S, S]` and per-image targets.
pub fn batch(
    samples: &[&Sample],
    a: &Augment,
    seeds: &[u64],
    device: Device,
) -> (Tensor, Vec<hipfrac_model::loss::Targets>) {
    let parts: Vec<Augmented> = samples
        .par_iter()
        .zip(seeds.par_iter())
        .map(|(s, &seed)| augment(s, a, seed))
        .collect();
    to_tensors(parts, samples[0].size, device)
}

/// Tensors from augmented images.
pub fn to_tensors(parts: Vec<Augmented>, size: i64, device: Device) -> (Tensor, Vec<hipfrac_model::loss::Targets>) {
    let count = parts.len() as i64;
    let mut flat = Vec::with_capacity(parts.len() * (size * size) as usize);
    let mut targets = Vec::new();
    for (pixels, boxes) in parts {
        flat.extend_from_slice(&pixels);
        let coords: Vec<f32> = boxes
            .iter()
            .flat_map(|(_, b)| [b.x_min, b.y_min, b.x_max, b.y_max])
            .collect();
        let labels: Vec<i64> = boxes
            .iter()
            .map(|(c, _)| c.map_or(hipfrac_model::loss::UNTYPED, |c| c.index() as i64))
            .collect();
        targets.push(hipfrac_model::loss::Targets {
            boxes: Tensor::from_slice(&coords)
                .reshape([boxes.len() as i64, 4])
                .to_device(device),
            labels: Tensor::from_slice(&labels).to_kind(Kind::Int64).to_device(device),
        });
    }
    let images = Tensor::from_slice(&flat)
        .reshape([count, 1, size, size])
        .to_device(device);
    (images, targets)
}
