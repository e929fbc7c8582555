//! An RGB canvas with rectangles, dashes and bitmap text, and the class palette. Contact
//! sheets, prediction overlays and the report's plots all draw with these.

use crate::font;
use hipfrac_core::FractureClass;
use std::path::Path;

/// Box colour per class (RGB): the Okabe–Ito colours, distinguishable with common colour-vision
/// deficiencies. Contact sheets, overlays and report plots all use these.
pub fn class_colour(class: FractureClass) -> [u8; 3] {
    match class {
        FractureClass::DisplacedNeck => [213, 94, 0],
        FractureClass::ValgusImpactedNeck => [230, 159, 0],
        FractureClass::StableIntertrochanteric => [86, 180, 233],
        FractureClass::UnstableIntertrochanteric => [0, 158, 115],
    }
}

/// An RGB canvas.
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Canvas {
    pub fn new(width: usize, height: usize) -> Self {
        Canvas {
            width,
            height,
            rgb: vec![24; width * height * 3],
        }
    }
    pub fn set(&mut self, x: i64, y: i64, colour: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let at = (y as usize * self.width + x as usize) * 3;
            self.rgb[at..at + 3].copy_from_slice(&colour);
        }
    }
    pub fn rectangle(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, thickness: i64, colour: [u8; 3]) {
        self.outline(x0, y0, x1, y1, thickness, colour, false);
    }
    /// A rectangle drawn in dashes 4 × `thickness` long.
    pub fn dashed_rectangle(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, thickness: i64, colour: [u8; 3]) {
        self.outline(x0, y0, x1, y1, thickness, colour, true);
    }
    #[allow(clippy::too_many_arguments)]
    fn outline(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, thickness: i64, colour: [u8; 3], dashed: bool) {
        let on = |t: i64| !dashed || (t / (4 * thickness)) % 2 == 0;
        for t in 0..thickness {
            for x in (x0..=x1).filter(|&x| on(x)) {
                self.set(x, y0 + t, colour);
                self.set(x, y1 - t, colour);
            }
            for y in (y0..=y1).filter(|&y| on(y)) {
                self.set(x0 + t, y, colour);
                self.set(x1 - t, y, colour);
            }
        }
    }
    pub fn fill(&mut self, x0: i64, y0: i64, width: i64, height: i64, colour: [u8; 3]) {
        for y in y0..y0 + height {
            for x in x0..x0 + width {
                self.set(x, y, colour);
            }
        }
    }
    pub fn text(&mut self, text: &str, x: i64, y: i64, scale: i64, colour: [u8; 3]) {
        let mut points = Vec::new();
        font::draw(text, x, y, scale, |px, py| points.push((px, py)));
        for (px, py) in points {
            self.set(px, py, colour);
        }
    }
    /// The canvas as PNG bytes.
    pub fn to_png(&self) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().expect("a PNG header should encode to memory");
            writer
                .write_image_data(&self.rgb)
                .expect("PNG data should encode to memory");
        }
        out
    }
    /// Writes the PNG atomically (a temporary file renamed into place).
    pub fn write_png(&self, path: &Path) -> Result<(), hipfrac_dicom::Error> {
        hipfrac_dicom::atomic::write_atomic(path, &self.to_png())
    }
}

/// A class colour as CSS (`#rrggbb`), for the report's plots and the workstation's page.
pub fn css_colour(class: FractureClass) -> String {
    let [r, g, b] = class_colour(class);
    format!("#{r:02x}{g:02x}{b:02x}")
}
