//! Overlay pictures: the radiograph as displayed, predicted boxes in class colours with their
//! code and score, optional true boxes (dashed white), and a banner with the verdict.

use crate::verdict::{OperatingPoint, Verdict};
use hipfrac_core::{BBox, Detection, FractureClass, Radiograph};
use hipfrac_phantom::font;

/// Okabe–Ito colours (distinguishable with common colour-vision deficiencies).
pub fn colour(class: FractureClass) -> [u8; 3] {
    match class {
        FractureClass::DisplacedNeck => [213, 94, 0],
        FractureClass::ValgusImpactedNeck => [230, 159, 0],
        FractureClass::StableIntertrochanteric => [86, 180, 233],
        FractureClass::UnstableIntertrochanteric => [0, 158, 115],
    }
}

/// An RGB picture.
#[derive(Debug, Clone)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Picture {
    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as u32) < self.width && (y as u32) < self.height {
            let i = (y as usize * self.width as usize + x as usize) * 3;
            self.rgb[i..i + 3].copy_from_slice(&c);
        }
    }

    fn rect(&mut self, b: &BBox, thickness: i64, c: [u8; 3], dashed: bool) {
        let (x0, y0, x1, y1) = (b.x_min.round() as i64, b.y_min.round() as i64, b.x_max.round() as i64 - 1, b.y_max.round() as i64 - 1);
        let on = |t: i64| !dashed || (t / (4 * thickness)) % 2 == 0;
        for t in 0..thickness {
            for x in x0..=x1 {
                if on(x) {
                    self.set(x, y0 + t, c);
                    self.set(x, y1 - t, c);
                }
            }
            for y in y0..=y1 {
                if on(y) {
                    self.set(x0 + t, y, c);
                    self.set(x1 - t, y, c);
                }
            }
        }
    }

    fn fill(&mut self, x0: i64, y0: i64, w: i64, h: i64, c: [u8; 3]) {
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                self.set(x, y, c);
            }
        }
    }

    fn text(&mut self, text: &str, x: i64, y: i64, scale: i64, fg: [u8; 3], bg: [u8; 3]) {
        let text = text.to_uppercase();
        self.fill(x, y, font::width(&text, scale) + 2 * scale, 9 * scale, bg);
        font::draw(&text, x + scale, y + scale, scale, |px, py| self.set(px, py, fg));
    }

    /// The picture as PNG bytes.
    pub fn to_png(&self) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().expect("PNG header to memory");
            writer.write_image_data(&self.rgb).expect("PNG data to memory");
        }
        out
    }
}

/// What to draw.
#[derive(Debug, Clone, Default)]
pub struct Marks<'a> {
    pub detections: &'a [Detection],
    pub truth: &'a [(FractureClass, BBox)],
    pub verdict: Option<&'a Verdict>,
    /// A line of context (e.g. "PHANTOM" or the truth label), drawn under the verdict.
    pub note: Option<String>,
}

/// Draws `marks` over the displayed `image`, shrunk so its longer side is at most `max_side`.
pub fn render(image: &Radiograph, marks: &Marks<'_>, max_side: u32) -> Result<Picture, String> {
    let grey = hipfrac_dicom::display::to_display(image).map_err(|e| e.0)?;
    let (w, h) = (image.width(), image.height());
    let scale = (max_side as f64 / w.max(h) as f64).min(1.0);
    let (nw, nh) = (((w as f64 * scale).round() as u32).max(1), ((h as f64 * scale).round() as u32).max(1));
    let small = if scale < 1.0 { hipfrac_train::data::resize(&grey, w as usize, h as usize, nw as usize, nh as usize) } else { grey };
    let mut picture = Picture { width: nw, height: nh, rgb: small.iter().flat_map(|&g| [g, g, g]).collect() };
    let (sx, sy) = (nw as f32 / w as f32, nh as f32 / h as f32);
    let map = |b: &BBox| BBox::new(b.x_min * sx, b.y_min * sy, b.x_max * sx, b.y_max * sy);
    let thickness = ((nw.max(nh) as i64) / 400).max(1);
    let text_scale = ((nw.max(nh) as i64) / 300).max(1);
    for (_, b) in marks.truth {
        picture.rect(&map(b), thickness, [255, 255, 255], true);
    }
    // Least confident first, so the strongest box is drawn on top.
    for d in marks.detections.iter().rev() {
        let b = map(&d.bbox);
        let c = colour(d.class);
        picture.rect(&b, thickness, c, false);
        let label = format!("{} {:.2}", d.class.code(), d.score);
        let y = (b.y_min as i64 - 9 * text_scale).max(0);
        picture.text(&label, b.x_min as i64, y, text_scale, [0, 0, 0], c);
    }
    let mut y = 0;
    if let Some(v) = marks.verdict {
        let point = match v.operating_point {
            OperatingPoint::Fracture => "FRACTURE",
            OperatingPoint::Suspicious => "SUSPICIOUS",
            OperatingPoint::NoFracture => "",
        };
        let text = match v.label {
            hipfrac_core::Label::Fracture(class) => format!("AI: {} {:.2} {point}", class.code(), v.confidence),
            hipfrac_core::Label::NoFracture => "AI: NO VISIBLE FRACTURE".to_string(),
        };
        let bg = match v.label {
            hipfrac_core::Label::Fracture(class) => colour(class),
            hipfrac_core::Label::NoFracture => [200, 200, 200],
        };
        picture.text(&text, 0, y, text_scale, [0, 0, 0], bg);
        y += 9 * text_scale;
    }
    if let Some(note) = &marks.note {
        picture.text(note, 0, y, text_scale, [255, 255, 255], [0, 0, 0]);
    }
    Ok(picture)
}
