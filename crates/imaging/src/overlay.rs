//! Overlay pictures: the radiograph as displayed, predicted boxes in class colours with their
//! code and score, optional true boxes (dashed white), and a banner with the verdict.

use crate::canvas::{class_colour as colour, Canvas as Picture};
use crate::font;
use crate::preprocess::resize;
use hipfrac_core::verdict::OperatingPoint;
use hipfrac_core::{Answer, BBox, Detection, FractureClass, HipCall, Label, Radiograph};
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
    /// The hips the two-stage detector read (dashed, light blue, each with its side and answer).
    pub hips: &'a [HipCall],
    /// The answer: a verdict, or "not assessable" with its reason.
    pub answer: Option<&'a Answer>,
    /// A line of context (e.g. "PHANTOM" or the truth label), drawn under the verdict.
    pub note: Option<String>,
}

/// Draws `marks` over the displayed `image`, shrunk so its longer side is at most `max_side`.
pub fn render(image: &Radiograph, marks: &Marks<'_>, max_side: u32) -> Result<Picture, VoiError> {
    let grey = hipfrac_dicom::display::to_display(image)?;
    let (w, h) = (image.width(), image.height());
    let scale = (max_side as f64 / w.max(h) as f64).min(1.0);
    let (nw, nh) = (
        ((w as f64 * scale).round() as u32).max(1),
        ((h as f64 * scale).round() as u32).max(1),
    );
    let small = if scale < 1.0 {
        resize(&grey, w as usize, h as usize, nw as usize, nh as usize)
    } else {
        grey
    };
    let mut picture = Picture {
        width: nw as usize,
        height: nh as usize,
        rgb: small.iter().flat_map(|&g| [g, g, g]).collect(),
    };
    let (sx, sy) = (nw as f32 / w as f32, nh as f32 / h as f32);
    let map = |b: &BBox| BBox::new(b.x_min * sx, b.y_min * sy, b.x_max * sx, b.y_max * sy);
    let thickness = ((nw.max(nh) as i64) / 400).max(1);
    let text_scale = ((nw.max(nh) as i64) / 300).max(1);
    // Boxes are half-open: the last pixel row/column inside is max − 1.
    let corners = |b: &BBox| {
        (
            b.x_min.round() as i64,
            b.y_min.round() as i64,
            b.x_max.round() as i64 - 1,
            b.y_max.round() as i64 - 1,
        )
    };
    for (_, b) in marks.truth {
        let (x0, y0, x1, y1) = corners(&map(b));
        picture.dashed_rectangle(x0, y0, x1, y1, thickness, [255, 255, 255]);
    }
    for hip in marks.hips {
        let b = map(&hip.bbox);
        let (x0, y0, x1, y1) = corners(&b);
        picture.dashed_rectangle(x0, y0, x1, y1, thickness, HIP_COLOUR);
        let side = if hip.side.side == hipfrac_core::Side::Right {
            "R"
        } else {
            "L"
        };
        let text = format!("{side} hip: {}", hip.verdict.label.code());
        let y = (y1 - 9 * text_scale).max(0);
        label(&mut picture, &text, x0.max(0), y, text_scale, [0, 0, 0], HIP_COLOUR);
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
    // Lines wrap at the picture's width.
    let columns = ((nw as i64 - 2 * text_scale) / (6 * text_scale)).max(8) as usize;
    let mut lines = |picture: &mut Picture, text: &str, fg: [u8; 3], bg: [u8; 3]| {
        for line in wrap(text, columns) {
            label(picture, &line, 0, y, text_scale, fg, bg);
            y += 9 * text_scale;
        }
    };
    match marks.answer {
        Some(Answer::Verdict(v)) => {
            let point = match v.operating_point {
                OperatingPoint::Fracture => "FRACTURE",
                OperatingPoint::Suspicious => "SUSPICIOUS",
                OperatingPoint::NoFracture => "",
            };
            let (text, bg) = match v.label {
                Label::Fracture(class) => (
                    format!("AI: {} {:.2} {point}", class.code(), v.confidence.unwrap_or(0.0)),
                    colour(class),
                ),
                Label::NoFracture => ("AI: NO VISIBLE FRACTURE".to_string(), [200, 200, 200]),
                // Not a verdict hipfrac gives; drawn plainly should a caller pass one.
                Label::UntypedFracture => (
                    format!("AI: FRACTURE {:.2} {point}", v.confidence.unwrap_or(0.0)),
                    [230, 159, 0],
                ),
            };
            lines(&mut picture, &text, [0, 0, 0], bg);
        }
        Some(Answer::NotAssessable(n)) => {
            lines(
                &mut picture,
                "AI: NOT ASSESSABLE - NO VERDICT",
                [0, 0, 0],
                NOT_ASSESSABLE_COLOUR,
            );
            lines(&mut picture, &n.reason, [0, 0, 0], NOT_ASSESSABLE_COLOUR);
        }
        None => {}
    }
    if let Some(note) = &marks.note {
        lines(&mut picture, note, [255, 255, 255], [0, 0, 0]);
    }
    Ok(picture)
}

/// The outline of a hip the two-stage detector read (light blue: unlike every class colour).
pub const HIP_COLOUR: [u8; 3] = [140, 200, 255];

/// The banner of an image that got no verdict (amber: unlike every class colour and grey).
pub const NOT_ASSESSABLE_COLOUR: [u8; 3] = [255, 176, 0];

/// `text` broken at spaces into lines of at most `columns` characters (a longer word is cut).
fn wrap(text: &str, columns: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: String = word.to_string();
        while word.chars().count() > columns {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let rest = word.chars().skip(columns).collect();
            lines.push(word.chars().take(columns).collect());
            word = rest;
        }
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > columns {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_lines_wrap_at_spaces() {
        assert_eq!(
            super::wrap("AI RESULT - TRAINED ON SIMULATED RADIOGRAPHS", 20),
            ["AI RESULT - TRAINED", "ON SIMULATED", "RADIOGRAPHS"]
        );
        assert_eq!(super::wrap("ABCDEFGHIJ", 4), ["ABCD", "EFGH", "IJ"]);
        assert!(super::wrap("", 4).is_empty());
    }
}
