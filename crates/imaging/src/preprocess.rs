//! How a radiograph becomes network input. Training and inference call this one module, so a
//! model always sees its images prepared the way it was trained on them.

use hipfrac_core::{BBox, Radiograph};
use hipfrac_dicom::display::VoiError;

/// Area-averaging resize of a grey image.
pub fn resize(src: &[u8], w: usize, h: usize, nw: usize, nh: usize) -> Vec<u8> {
    let mut out = vec![0u8; nw * nh];
    let (sx, sy) = (w as f64 / nw as f64, h as f64 / nh as f64);
    for y in 0..nh {
        let (y0, y1) = (
            (y as f64 * sy) as usize,
            (((y + 1) as f64 * sy).ceil() as usize)
                .min(h)
                .max((y as f64 * sy) as usize + 1),
        );
        for x in 0..nw {
            let (x0, x1) = (
                (x as f64 * sx) as usize,
                (((x + 1) as f64 * sx).ceil() as usize)
                    .min(w)
                    .max((x as f64 * sx) as usize + 1),
            );
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
    /// Where the letterboxed region starts in the original image (0, 0 unless it is a crop,
    /// [`letterbox_regions`]).
    pub offset_x: f32,
    pub offset_y: f32,
}

impl Letterbox {
    /// A box in original pixels → letterboxed pixels.
    pub fn to_letterbox(&self, b: &BBox) -> BBox {
        let (x, y) = (self.offset_x, self.offset_y);
        BBox::new(
            (b.x_min - x) * self.scale_x,
            (b.y_min - y) * self.scale_y,
            (b.x_max - x) * self.scale_x,
            (b.y_max - y) * self.scale_y,
        )
    }

    /// A box in letterboxed pixels → original pixels, clipped to the image.
    pub fn to_original(&self, b: &BBox) -> BBox {
        let (x, y) = (self.offset_x, self.offset_y);
        BBox::new(
            b.x_min / self.scale_x + x,
            b.y_min / self.scale_y + y,
            b.x_max / self.scale_x + x,
            b.y_max / self.scale_y + y,
        )
        .clip(self.width, self.height)
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
    let grey = hipfrac_dicom::display::to_display(image)?;
    let (w, h) = (image.width() as usize, image.height() as usize);
    Ok(place(grey, w, h, (0, 0, w, h), preprocess))
}

/// Letterboxes regions of a radiograph (each [`Letterbox`] maps its boxes back to the whole
/// image's pixels): the display rendering of the whole image, cut to each region, then
/// equalised and resized as [`letterbox`] does. Regions are clipped to the image.
pub fn letterbox_regions(
    image: &Radiograph,
    preprocess: &Preprocess,
    regions: &[BBox],
) -> Result<Vec<Letterbox>, VoiError> {
    let grey = hipfrac_dicom::display::to_display(image)?;
    let (w, h) = (image.width() as usize, image.height() as usize);
    Ok(regions
        .iter()
        .map(|r| {
            let r = r.clip(w as u32, h as u32);
            let x0 = (r.x_min.floor().max(0.0) as usize).min(w - 1);
            let y0 = (r.y_min.floor().max(0.0) as usize).min(h - 1);
            let x1 = (r.x_max.ceil() as usize).clamp(x0 + 1, w);
            let y1 = (r.y_max.ceil() as usize).clamp(y0 + 1, h);
            let mut cut = Vec::with_capacity((x1 - x0) * (y1 - y0));
            for y in y0..y1 {
                cut.extend_from_slice(&grey[y * w + x0..y * w + x1]);
            }
            place(cut, w, h, (x0, y0, x1 - x0, y1 - y0), preprocess)
        })
        .collect())
}

/// `grey` (`region`'s pixels: x, y, width, height in an image of `full_w × full_h`)
/// equalised if asked, resized so its longer side is `size`, at the top-left of the canvas.
fn place(
    mut grey: Vec<u8>,
    full_w: usize,
    full_h: usize,
    region: (usize, usize, usize, usize),
    preprocess: &Preprocess,
) -> Letterbox {
    let size = preprocess.size;
    if preprocess.equalize {
        equalize(&mut grey);
    }
    let (x, y, w, h) = region;
    let scale = size as f64 / w.max(h) as f64;
    let (nw, nh) = (
        ((w as f64 * scale).round() as usize).clamp(1, size as usize),
        ((h as f64 * scale).round() as usize).clamp(1, size as usize),
    );
    let small = resize(&grey, w, h, nw, nh);
    let mut pixels = vec![0u8; (size * size) as usize];
    for row in 0..nh {
        pixels[row * size as usize..row * size as usize + nw].copy_from_slice(&small[row * nw..(row + 1) * nw]);
    }
    Letterbox {
        size,
        pixels,
        scale_x: nw as f32 / w as f32,
        scale_y: nh as f32 / h as f32,
        width: full_w as u32,
        height: full_h as u32,
        offset_x: x as f32,
        offset_y: y as f32,
    }
}

/// How much larger than a hip box (femoral head to lesser trochanter) the square crop the
/// fracture detector sees is: the box's longer side times this, centred on the box.
pub const HIP_CROP_SCALE: f32 = 1.4;

/// The square region around a hip box that the two-stage detector reads: centred on the box,
/// side [`HIP_CROP_SCALE`] × its longer side, moved inside the image where it fits (so a hip
/// near the edge keeps its full context) and clipped where it does not.
pub fn hip_region(hip: &BBox, width: u32, height: u32) -> BBox {
    let side = hip.width().max(hip.height()) * HIP_CROP_SCALE;
    let (cx, cy) = hip.center();
    let shift = |c: f32, limit: f32| -> f32 {
        let start = c - side / 2.0;
        if side >= limit {
            (limit - side) / 2.0
        } else {
            start.clamp(0.0, limit - side)
        }
    };
    let (x0, y0) = (shift(cx, width as f32), shift(cy, height as f32));
    BBox::new(x0, y0, x0 + side, y0 + side).clip(width, height)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hipfrac_core::{Pixels, RadiographMeta};

    fn ramp(width: u32, height: u32) -> Radiograph {
        let meta = RadiographMeta::plain(height, width, 8);
        let pixels = (0..height)
            .flat_map(|y| (0..width).map(move |x| ((x + 3 * y) % 256) as u16))
            .collect();
        Radiograph {
            meta,
            pixels: Pixels::Unsigned(pixels),
        }
    }

    #[test]
    fn a_region_maps_its_boxes_back_to_the_whole_image() {
        let image = ramp(300, 200);
        let prep = Preprocess {
            size: 64,
            equalize: false,
        };
        let region = BBox::new(100.0, 50.0, 228.0, 178.0);
        let [crop] = letterbox_regions(&image, &prep, &[region]).unwrap().try_into().unwrap();
        assert_eq!(
            (crop.offset_x, crop.offset_y, crop.width, crop.height),
            (100.0, 50.0, 300, 200)
        );
        assert_eq!(crop.scale_x, 0.5);
        let inside = BBox::new(120.0, 60.0, 160.0, 100.0);
        let there = crop.to_letterbox(&inside);
        assert_eq!(
            (there.x_min, there.y_min, there.x_max, there.y_max),
            (10.0, 5.0, 30.0, 25.0)
        );
        assert_eq!(crop.to_original(&there), inside);
        // The whole image through the same path is the plain letterbox.
        let whole = letterbox(&image, &prep).unwrap();
        let [again] = letterbox_regions(&image, &prep, &[BBox::new(0.0, 0.0, 300.0, 200.0)])
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(whole.pixels, again.pixels);
    }

    #[test]
    fn the_hip_region_is_a_square_kept_inside_the_image() {
        let r = hip_region(&BBox::new(100.0, 100.0, 200.0, 180.0), 1000, 800);
        assert_eq!((r.width(), r.height()), (140.0, 140.0));
        assert_eq!(r.center(), (150.0, 140.0));
        // Near the edge it moves inside rather than losing context.
        let r = hip_region(&BBox::new(0.0, 10.0, 100.0, 110.0), 1000, 800);
        assert_eq!((r.x_min, r.y_min, r.width()), (0.0, 0.0, 140.0));
        // Larger than the image: clipped.
        let r = hip_region(&BBox::new(0.0, 0.0, 90.0, 90.0), 100, 100);
        assert_eq!((r.x_min, r.y_min, r.x_max, r.y_max), (0.0, 0.0, 100.0, 100.0));
    }
}
