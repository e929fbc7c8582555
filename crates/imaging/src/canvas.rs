//! An RGB canvas with rectangles, dashes and bitmap text, and the class palette. Contact
//! sheets, prediction overlays and the report's plots all draw with these.

use crate::font;
use hipfrac_core::FractureClass;
use std::path::Path;

/// Box colour per class (RGB): four Okabe–Ito colours, warm for the femoral neck (vermillion,
/// yellow), blue for the trochanteric region (sky blue, blue), chosen so that every pair stays
/// apart (CIELAB ΔE ≥ 20) with normal vision and simulated protanopia, deuteranopia and
/// tritanopia (tested below). Contact sheets, overlays, report plots and the reading
/// workstation all use these.
pub fn class_colour(class: FractureClass) -> [u8; 3] {
    match class {
        FractureClass::DisplacedNeck => [213, 94, 0],
        FractureClass::ValgusImpactedNeck => [240, 228, 66],
        FractureClass::StableIntertrochanteric => [86, 180, 233],
        FractureClass::UnstableIntertrochanteric => [0, 114, 178],
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

#[cfg(test)]
mod tests {
    use super::*;

    /// sRGB (0–255) to linear light.
    fn linear(c: u8) -> f64 {
        let c = c as f64 / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    }

    /// Linear RGB to CIELAB (D65).
    fn lab([r, g, b]: [f64; 3]) -> [f64; 3] {
        let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
        let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
        let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
        let f = |t: f64| {
            if t > 0.008856 {
                t.cbrt()
            } else {
                7.787 * t + 16.0 / 116.0
            }
        };
        [116.0 * f(y) - 16.0, 500.0 * (f(x) - f(y)), 200.0 * (f(y) - f(z))]
    }

    /// Colour-vision deficiencies at full severity (Machado, Oliveira & Fernandes 2009), as
    /// matrices on linear RGB; the identity is normal vision.
    const VISIONS: [(&str, [[f64; 3]; 3]); 4] = [
        ("normal", [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
        (
            "protanopia",
            [
                [0.152286, 1.052583, -0.204868],
                [0.114503, 0.786281, 0.099216],
                [-0.003882, -0.048116, 1.051998],
            ],
        ),
        (
            "deuteranopia",
            [
                [0.367322, 0.860646, -0.227968],
                [0.280085, 0.672501, 0.047413],
                [-0.011820, 0.042940, 0.968881],
            ],
        ),
        (
            "tritanopia",
            [
                [1.255528, -0.076749, -0.178779],
                [-0.078411, 0.930809, 0.147602],
                [0.004733, 0.691367, 0.303900],
            ],
        ),
    ];

    #[test]
    fn class_colours_stay_apart_with_colour_vision_deficiencies() {
        for (vision, m) in VISIONS {
            let seen = |c: FractureClass| {
                let rgb = class_colour(c).map(linear);
                lab(std::array::from_fn(|i| {
                    (0..3).map(|j| m[i][j] * rgb[j]).sum::<f64>().clamp(0.0, 1.0)
                }))
            };
            for (k, &a) in FractureClass::ALL.iter().enumerate() {
                for &b in &FractureClass::ALL[k + 1..] {
                    let (p, q) = (seen(a), seen(b));
                    let distance = (0..3).map(|i| (p[i] - q[i]).powi(2)).sum::<f64>().sqrt();
                    assert!(
                        distance >= 20.0,
                        "{vision}: {a:?} and {b:?} only ΔE {distance:.1} apart"
                    );
                }
            }
        }
    }
}
