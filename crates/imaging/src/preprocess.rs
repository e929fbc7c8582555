//! How a radiograph becomes network input. Training and inference call this one module, so a
//! model always sees its images prepared the way it was trained on them.

use hipfrac_core::{BBox, Radiograph};
use hipfrac_dicom::display::VoiError;

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
pub fn letterbox(image: &Radiograph, preprocess: &Preprocess) -> Result<Letterbox, VoiError> {
    let size = preprocess.size;
    let mut grey = hipfrac_dicom::display::to_display(image)?;
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
