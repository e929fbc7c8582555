//! Overlay pictures: the radiograph as displayed, predicted boxes in class colours with their
//! code and score, optional true boxes (dashed white), and a banner with the verdict.

use crate::canvas::{class_colour as colour, Canvas as Picture};
use crate::font;
use crate::preprocess::resize;
use hipfrac_core::verdict::{OperatingPoint, Verdict};
use hipfrac_core::{BBox, Detection, FractureClass, Radiograph};
use hipfrac_dicom::display::VoiError;

/// `text` in upper case on a `bg` band.
fn label(picture: &mut Picture, text: &str, x: i64, y: i64, scale: i64, fg: [u8; 3], bg: [u8; 3]) {
    let text = text.to_uppercase();
    picture.fill(x, y, font::width(&text, scale) + 2 * scale, 9 * scale, bg);
    picture.text(&text, x + scale, y + scale, scale, fg);
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
pub fn render(image: &Radiograph, marks: &Marks<'_>, max_side: u32) -> Result<Picture, VoiError> {
    let grey = hipfrac_dicom::display::to_display(image)?;
    let (w, h) = (image.width(), image.height());
    let scale = (max_side as f64 / w.max(h) as f64).min(1.0);
    let (nw, nh) = (((w as f64 * scale).round() as u32).max(1), ((h as f64 * scale).round() as u32).max(1));
    let small = if scale < 1.0 { resize(&grey, w as usize, h as usize, nw as usize, nh as usize) } else { grey };
    let mut picture = Picture { width: nw as usize, height: nh as usize, rgb: small.iter().flat_map(|&g| [g, g, g]).collect() };
    let (sx, sy) = (nw as f32 / w as f32, nh as f32 / h as f32);
    let map = |b: &BBox| BBox::new(b.x_min * sx, b.y_min * sy, b.x_max * sx, b.y_max * sy);
    let thickness = ((nw.max(nh) as i64) / 400).max(1);
    let text_scale = ((nw.max(nh) as i64) / 300).max(1);
    // Boxes are half-open: the last pixel row/column inside is max − 1.
    let corners = |b: &BBox| (b.x_min.round() as i64, b.y_min.round() as i64, b.x_max.round() as i64 - 1, b.y_max.round() as i64 - 1);
    for (_, b) in marks.truth {
        let (x0, y0, x1, y1) = corners(&map(b));
        picture.dashed_rectangle(x0, y0, x1, y1, thickness, [255, 255, 255]);
    }
    // Least confident first, so the strongest box is drawn on top.
    for d in marks.detections.iter().rev() {
        let b = map(&d.bbox);
        let c = colour(d.class);
        let (x0, y0, x1, y1) = corners(&b);
        picture.rectangle(x0, y0, x1, y1, thickness, c);
        let text = format!("{} {:.2}", d.class.code(), d.score);
        let y = (b.y_min as i64 - 9 * text_scale).max(0);
        label(&mut picture, &text, b.x_min as i64, y, text_scale, [0, 0, 0], c);
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
        label(&mut picture, &text, 0, y, text_scale, [0, 0, 0], bg);
        y += 9 * text_scale;
    }
    if let Some(note) = &marks.note {
        label(&mut picture, note, 0, y, text_scale, [255, 255, 255], [0, 0, 0]);
    }
    Ok(picture)
}
