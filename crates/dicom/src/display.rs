//! The DICOM greyscale display pipeline (PS3.3 C.11, PS3.14): stored value → Modality LUT →
//! VOI LUT → (MONOCHROME1: inversion) → 8-bit grey, and stored value → modality value for
//! 16-bit export.
//!
//! Both are computed once per possible stored value into a table, then applied per pixel,
//! which keeps a 3.7-megapixel radiograph to a few milliseconds.

use crate::checks::MAX_DISPLAY_VALUE;
use hipfrac_core::{LutData, Photometric, Pixels, Radiograph, VoiFunction, Window};
use serde::{Deserialize, Serialize};

/// Which VOI transformation to apply.
#[derive(Debug, Clone, PartialEq)]
pub enum VoiChoice {
    /// The file's own: its first window, else its first VOI LUT, else [`VoiChoice::Auto`].
    File,
    /// The file's window number `n` (1-based, as dcmtk's `+Wi n`).
    FileWindow(usize),
    /// The file's VOI LUT number `n` (1-based, as dcmtk's `+Wl n`).
    FileLut(usize),
    /// An explicit window in modality units (LINEAR function).
    Explicit {
        /// Window centre.
        center: f64,
        /// Window width.
        width: f64,
    },
    /// A window spanning the given lower and upper percentiles of the modality values.
    Auto {
        /// Lower percentile, 0–100.
        low_percentile: f64,
        /// Upper percentile, 0–100.
        high_percentile: f64,
    },
}

impl VoiChoice {
    /// The default automatic window: 0.5th to 99.5th percentile.
    pub const AUTO: VoiChoice = VoiChoice::Auto {
        low_percentile: 0.5,
        high_percentile: 99.5,
    };
}

/// The VOI transformation that was actually applied, for the sidecar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AppliedVoi {
    /// A window (centre/width in modality units).
    Window {
        /// Centre.
        center: f64,
        /// Width.
        width: f64,
        /// Function.
        function: VoiFunction,
        /// Where it came from: `file window N`, `explicit`, or `auto pL-pH`.
        source: String,
    },
    /// A VOI LUT from the file.
    Lut {
        /// Which (1-based).
        index: usize,
        /// Bits of its output.
        bits: u16,
    },
}

impl AppliedVoi {
    /// One phrase for messages: `window 300/800 (file window 1)`, `VOI LUT 1`.
    pub fn describe(&self) -> String {
        match self {
            AppliedVoi::Window {
                center, width, source, ..
            } => format!("window {center}/{width}, {source}"),
            AppliedVoi::Lut { index, .. } => format!("VOI LUT {index}"),
        }
    }
}

/// Why an image cannot be rendered for display.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VoiError {
    /// The choice does not fit the image: a window or VOI LUT the file does not have, an
    /// explicit window that is not one.
    #[error("{0}")]
    Choice(String),
    /// The file's own window is not a usable display value (NaN, infinite, absurd): shown
    /// through it the image would be black or white.
    #[error("{0}")]
    BadWindow(String),
    /// Nothing to see: every pixel is one grey level after the display pipeline (a constant
    /// image, or a window that misses every value in it).
    #[error("{0}")]
    Blank(String),
}

impl VoiError {
    /// The reason when the image itself shows nothing a reader could assess
    /// ([`VoiError::BadWindow`], [`VoiError::Blank`]); `None` for a choice that does not fit.
    pub fn unreadable(&self) -> Option<&str> {
        match self {
            VoiError::BadWindow(reason) | VoiError::Blank(reason) => Some(reason),
            VoiError::Choice(_) => None,
        }
    }
}

/// A window of the file (`n`, 1-based, of `count`) that can be applied: a finite centre and
/// a finite positive width, neither beyond [`MAX_DISPLAY_VALUE`]. The reader keeps such
/// windows in the header so that the image's prediction can say why it is not assessable.
fn check_file_window(window: &Window, n: usize, count: usize) -> Result<(), VoiError> {
    let which = if count > 1 {
        format!("window {n} of the file: ")
    } else {
        String::new()
    };
    let (center, width) = (window.center, window.width);
    if !(width.is_finite() && width > 0.0 && width <= MAX_DISPLAY_VALUE) {
        return Err(VoiError::BadWindow(format!(
            "{which}Window Width (0028,1051) is {width}: window width is not a finite positive number (at most {MAX_DISPLAY_VALUE:e})"
        )));
    }
    if !(center.is_finite() && center.abs() <= MAX_DISPLAY_VALUE) {
        return Err(VoiError::BadWindow(format!(
            "{which}Window Center (0028,1050) is {center}: window center is not a finite number (at most {MAX_DISPLAY_VALUE:e} in magnitude)"
        )));
    }
    Ok(())
}

/// Offset and number of entries of the table indexed by stored value.
fn stored_domain(image: &Radiograph) -> (i32, usize) {
    let bits = image.meta.bits_stored.clamp(1, 16) as u32;
    if image.pixels.is_signed() {
        (-(1i32 << (bits - 1)), 1usize << bits)
    } else {
        (0, 1usize << bits)
    }
}

/// Modality value for every possible stored value, indexed by `stored - offset`.
fn modality_table(image: &Radiograph) -> (i32, Vec<f64>) {
    let (offset, len) = stored_domain(image);
    let lut = &image.meta.modality_lut;
    let table = (0..len).map(|i| lut.apply(i as i32 + offset)).collect();
    (offset, table)
}

/// LINEAR window, PS3.3 C.11.2.1.2.1, output in [0, 1].
fn linear(x: f64, center: f64, width: f64) -> f64 {
    let width = width.max(1.0);
    if x <= center - 0.5 - (width - 1.0) / 2.0 {
        0.0
    } else if x > center - 0.5 + (width - 1.0) / 2.0 {
        1.0
    } else if width <= 1.0 {
        // Width 1 is a threshold: the middle branch is empty.
        1.0
    } else {
        (x - (center - 0.5)) / (width - 1.0) + 0.5
    }
}

/// LINEAR_EXACT window, PS3.3 C.11.2.1.3.2, output in [0, 1].
fn linear_exact(x: f64, center: f64, width: f64) -> f64 {
    if x <= center - width / 2.0 {
        0.0
    } else if x > center + width / 2.0 {
        1.0
    } else {
        (x - center) / width + 0.5
    }
}

/// SIGMOID window, PS3.3 C.11.2.1.3.1, output in (0, 1).
fn sigmoid(x: f64, center: f64, width: f64) -> f64 {
    1.0 / (1.0 + (-4.0 * (x - center) / width).exp())
}

fn window_fn(function: VoiFunction) -> fn(f64, f64, f64) -> f64 {
    match function {
        VoiFunction::Linear => linear,
        VoiFunction::LinearExact => linear_exact,
        VoiFunction::Sigmoid => sigmoid,
    }
}

/// Percentile window over the modality values actually present.
fn auto_window(image: &Radiograph, modality: &[f64], offset: i32, low: f64, high: f64) -> (f64, f64) {
    let mut histogram = vec![0u64; modality.len()];
    match &image.pixels {
        Pixels::Unsigned(v) => v.iter().for_each(|&s| histogram[(s as i32 - offset) as usize] += 1),
        Pixels::Signed(v) => v.iter().for_each(|&s| histogram[(s as i32 - offset) as usize] += 1),
    }
    // Order stored values by modality value (a Modality LUT table need not be monotonic).
    let mut order: Vec<usize> = (0..modality.len()).filter(|&i| histogram[i] > 0).collect();
    order.sort_by(|&a, &b| modality[a].total_cmp(&modality[b]));
    let total: u64 = histogram.iter().sum();
    let quantile = |p: f64| -> f64 {
        let target = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for &i in &order {
            seen += histogram[i];
            if seen >= target {
                return modality[i];
            }
        }
        order.last().map(|&i| modality[i]).unwrap_or(0.0)
    };
    let (lo, hi) = (quantile(low), quantile(high));
    let width = (hi - lo).max(1.0);
    // LINEAR maps [c - 0.5 - (w-1)/2, c - 0.5 + (w-1)/2] onto the output range.
    (lo + (width - 1.0) / 2.0 + 0.5, width)
}

fn lut_output(lut: &LutData, x: f64) -> f64 {
    let max = ((1u32 << lut.bits) - 1) as f64;
    lut.lookup(x.round() as i64) as f64 / max
}

/// A VOI transformation, modality value → [0, 1], with its description.
type Voi = (Box<dyn Fn(f64) -> f64>, AppliedVoi);

/// Resolves `choice` for `image` (`modality` indexed by `stored − offset`).
fn resolve_voi(image: &Radiograph, choice: &VoiChoice, offset: i32, modality: &[f64]) -> Result<Voi, VoiError> {
    let meta = &image.meta;
    let resolved = match choice {
        VoiChoice::File => {
            if !meta.windows.is_empty() {
                VoiChoice::FileWindow(1)
            } else if !meta.voi_luts.is_empty() {
                VoiChoice::FileLut(1)
            } else {
                VoiChoice::AUTO
            }
        }
        other => other.clone(),
    };
    Ok(match resolved {
        VoiChoice::FileWindow(n) => {
            let window: &Window = n.checked_sub(1).and_then(|i| meta.windows.get(i)).ok_or_else(|| {
                VoiError::Choice(format!("the file has {} window(s), not window {n}", meta.windows.len()))
            })?;
            check_file_window(window, n, meta.windows.len())?;
            let (c, w, f) = (window.center, window.width, meta.voi_function);
            let func = window_fn(f);
            (
                Box::new(move |x| func(x, c, w)),
                AppliedVoi::Window {
                    center: c,
                    width: w,
                    function: f,
                    source: format!("file window {n}"),
                },
            )
        }
        VoiChoice::FileLut(n) => {
            let lut = n
                .checked_sub(1)
                .and_then(|i| meta.voi_luts.get(i))
                .ok_or_else(|| {
                    VoiError::Choice(format!("the file has {} VOI LUT(s), not LUT {n}", meta.voi_luts.len()))
                })?
                .clone();
            let bits = lut.bits;
            (
                Box::new(move |x| lut_output(&lut, x)),
                AppliedVoi::Lut { index: n, bits },
            )
        }
        VoiChoice::Explicit { center, width } => {
            if width < 1.0 || !center.is_finite() || !width.is_finite() {
                return Err(VoiError::Choice(format!("window width must be ≥ 1, got {width}")));
            }
            (
                Box::new(move |x| linear(x, center, width)),
                AppliedVoi::Window {
                    center,
                    width,
                    function: VoiFunction::Linear,
                    source: "explicit".into(),
                },
            )
        }
        VoiChoice::Auto {
            low_percentile,
            high_percentile,
        } => {
            let (c, w) = auto_window(image, modality, offset, low_percentile, high_percentile);
            (
                Box::new(move |x| linear(x, c, w)),
                AppliedVoi::Window {
                    center: c,
                    width: w,
                    function: VoiFunction::Linear,
                    source: format!("auto p{low_percentile}-p{high_percentile}"),
                },
            )
        }
        VoiChoice::File => unreachable!("File was resolved above"),
    })
}

/// The VOI transformation `choice` means for `image`, without rendering it.
pub fn applied_voi(image: &Radiograph, choice: &VoiChoice) -> Result<AppliedVoi, VoiError> {
    let (offset, modality) = modality_table(image);
    resolve_voi(image, choice, offset, &modality).map(|(_, applied)| applied)
}

/// Renders `image` to 8-bit grey (0 black, 255 white), row-major, through the full
/// pipeline. Returns the pixels and the VOI transformation used.
pub fn render_8bit(image: &Radiograph, choice: &VoiChoice) -> Result<(Vec<u8>, AppliedVoi), VoiError> {
    let (offset, modality) = modality_table(image);
    let meta = &image.meta;
    let (voi, applied) = resolve_voi(image, choice, offset, &modality)?;
    let invert = meta.photometric == Photometric::Monochrome1;
    let table: Vec<u8> = modality
        .iter()
        .map(|&m| {
            let y = (voi(m).clamp(0.0, 1.0) * 255.0).round() as u8;
            if invert {
                255 - y
            } else {
                y
            }
        })
        .collect();
    let out: Vec<u8> = match &image.pixels {
        Pixels::Unsigned(v) => v.iter().map(|&s| table[(s as i32 - offset) as usize]).collect(),
        Pixels::Signed(v) => v.iter().map(|&s| table[(s as i32 - offset) as usize]).collect(),
    };
    // A picture of one grey level shows nothing: a reader (or the model) must not be handed
    // it as if it were a radiograph.
    if let Some(&first) = out.first() {
        if out.len() > 1 && out.iter().all(|&g| g == first) {
            return Err(VoiError::Blank(match constant_value(&image.pixels) {
                Some(value) => format!("the image is constant: every pixel is {value}"),
                None => format!(
                    "every pixel is grey level {first} after the display pipeline ({}): nothing to read",
                    applied.describe()
                ),
            }));
        }
    }
    Ok((out, applied))
}

/// The stored value of every pixel, when they are all one.
fn constant_value(pixels: &Pixels) -> Option<i32> {
    fn one<T: Copy + PartialEq + Into<i32>>(v: &[T]) -> Option<i32> {
        let first = *v.first()?;
        v.iter().all(|&x| x == first).then(|| first.into())
    }
    match pixels {
        Pixels::Unsigned(v) => one(v),
        Pixels::Signed(v) => one(v),
    }
}

/// The image as a person would see it: 8-bit PNGs (no DICOM attributes) as they are,
/// everything else through the file's own VOI (window or LUT, else automatic).
pub fn to_display(image: &Radiograph) -> Result<Vec<u8>, VoiError> {
    let choice = if image.meta.transfer_syntax.is_none() && image.meta.bits_stored == 8 {
        VoiChoice::Explicit {
            center: 128.0,
            width: 256.0,
        }
    } else {
        VoiChoice::File
    };
    render_8bit(image, &choice).map(|(grey, _)| grey)
}

/// How 16-bit PNG values relate to modality values: `modality = offset + sign × png`.
///
/// MONOCHROME1 images are stored inverted (`sign = -1`) so that every PNG shows bone bright.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Mapping16 {
    /// Added after the sign.
    pub offset: f64,
    /// +1 or −1.
    pub sign: f64,
}

impl Mapping16 {
    /// The PNG value of modality value `m` (unclamped).
    pub fn to_png(&self, m: f64) -> f64 {
        (m - self.offset) * self.sign
    }
}

/// Modality values as 16-bit grey, rounded, shifted so the smallest possible value is ≥ 0,
/// and inverted for MONOCHROME1. Returns the pixels and the mapping back to modality units.
pub fn modality_16bit(image: &Radiograph) -> (Vec<u16>, Mapping16) {
    let (offset, modality) = modality_table(image);
    let lowest = modality.iter().copied().fold(f64::INFINITY, f64::min).round();
    let highest = modality.iter().copied().fold(f64::NEG_INFINITY, f64::max).round();
    let mapping = if image.meta.photometric == Photometric::Monochrome1 {
        Mapping16 {
            offset: highest,
            sign: -1.0,
        }
    } else {
        Mapping16 {
            offset: lowest.min(0.0),
            sign: 1.0,
        }
    };
    let table: Vec<u16> = modality
        .iter()
        .map(|&m| mapping.to_png(m.round()).clamp(0.0, 65535.0) as u16)
        .collect();
    let out = match &image.pixels {
        Pixels::Unsigned(v) => v.iter().map(|&s| table[(s as i32 - offset) as usize]).collect(),
        Pixels::Signed(v) => v.iter().map(|&s| table[(s as i32 - offset) as usize]).collect(),
    };
    (out, mapping)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hipfrac_core::{ModalityLut, RadiographMeta};

    fn image(values: Vec<u16>, bits: u16) -> Radiograph {
        let mut meta = RadiographMeta::plain(1, values.len() as u32, bits);
        meta.windows.push(Window {
            center: 512.0,
            width: 1024.0,
            explanation: None,
        });
        Radiograph {
            meta,
            pixels: Pixels::Unsigned(values),
        }
    }

    #[test]
    fn linear_window_follows_the_dicom_formula() {
        // c=512, w=1024: x ≤ 0 → 0; x > 1023 → 1; 511.5 maps to exactly 0.5.
        assert_eq!(linear(0.0, 512.0, 1024.0), 0.0);
        assert_eq!(linear(1024.0, 512.0, 1024.0), 1.0);
        assert!((linear(511.5, 512.0, 1024.0) - 0.5).abs() < 1e-12);
        assert!((linear(1023.0, 512.0, 1024.0) - 1.0).abs() < 1e-12);
        assert_eq!(linear(10.0, 10.0, 1.0), 1.0);
        assert_eq!(linear(9.0, 10.0, 1.0), 0.0);
        assert!((linear_exact(512.0, 512.0, 1024.0) - 0.5).abs() < 1e-12);
        assert!((sigmoid(512.0, 512.0, 100.0) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn render_windows_and_inverts_monochrome1() {
        let img = image(vec![0, 256, 512, 768, 1023], 10);
        let (out, applied) = render_8bit(&img, &VoiChoice::File).unwrap();
        assert_eq!(out, vec![0, 64, 128, 191, 255]);
        assert!(matches!(applied, AppliedVoi::Window { .. }));
        let mut mono1 = img.clone();
        mono1.meta.photometric = Photometric::Monochrome1;
        let (inv, _) = render_8bit(&mono1, &VoiChoice::File).unwrap();
        assert_eq!(inv, out.iter().map(|v| 255 - v).collect::<Vec<_>>());
        assert!(render_8bit(&img, &VoiChoice::FileWindow(2)).is_err());
        assert!(render_8bit(
            &img,
            &VoiChoice::Explicit {
                center: 0.0,
                width: 0.0
            }
        )
        .is_err());
    }

    #[test]
    fn rescale_applies_before_the_window_and_16bit_keeps_modality_values() {
        let mut img = image(vec![0, 100, 200], 12);
        img.meta.modality_lut = ModalityLut::Rescale {
            slope: 2.0,
            intercept: -1000.0,
        };
        img.meta.windows = vec![Window {
            center: -800.0,
            width: 400.0,
            explanation: None,
        }];
        // modality: -1000, -800, -600 → 0, ~128, 255
        let (out, _) = render_8bit(&img, &VoiChoice::File).unwrap();
        assert_eq!(out[0], 0);
        assert_eq!(out[2], 255);
        assert!((out[1] as i32 - 128).abs() <= 1);
        let (v16, mapping) = modality_16bit(&img);
        for (png, stored) in v16.iter().zip([0, 100, 200]) {
            let modality = mapping.offset + mapping.sign * *png as f64;
            assert_eq!(modality, stored as f64 * 2.0 - 1000.0);
        }
    }

    #[test]
    fn voi_lut_table_and_signed_pixels() {
        let mut meta = RadiographMeta::plain(1, 3, 12);
        meta.voi_luts.push(LutData {
            first_mapped: -2,
            bits: 8,
            data: vec![0, 100, 200, 255],
            explanation: None,
        });
        let img = Radiograph {
            meta,
            pixels: Pixels::Signed(vec![-2048, -1, 2047]),
        };
        let (out, applied) = render_8bit(&img, &VoiChoice::File).unwrap();
        // -2048 clamps to the first entry, -1 is entry 1, 2047 clamps to the last.
        assert_eq!(out, vec![0, 100, 255]);
        assert_eq!(applied, AppliedVoi::Lut { index: 1, bits: 8 });
    }

    /// A file window that is not a usable number, and an image of one value, are the image's
    /// fault (not assessable); a choice the file does not have is not.
    #[test]
    fn a_bad_file_window_or_a_constant_image_is_unreadable() {
        let img = image(vec![0, 256, 512, 768, 1023], 10);
        for (center, width, expected) in [
            (
                f64::NAN,
                1024.0,
                "Window Center (0028,1050) is NaN: window center is not a finite number (at most 1e9 in magnitude)",
            ),
            (
                f64::INFINITY,
                1024.0,
                "Window Center (0028,1050) is inf: window center is not a finite number (at most 1e9 in magnitude)",
            ),
            (
                512.0,
                f64::NAN,
                "Window Width (0028,1051) is NaN: window width is not a finite positive number (at most 1e9)",
            ),
            (
                512.0,
                1e12,
                "Window Width (0028,1051) is 1000000000000: window width is not a finite positive number (at most 1e9)",
            ),
            (
                512.0,
                -4.0,
                "Window Width (0028,1051) is -4: window width is not a finite positive number (at most 1e9)",
            ),
        ] {
            let mut bad = img.clone();
            bad.meta.windows[0] = Window {
                center,
                width,
                explanation: None,
            };
            for error in [
                render_8bit(&bad, &VoiChoice::File).unwrap_err(),
                applied_voi(&bad, &VoiChoice::File).unwrap_err(),
                to_display(&bad).unwrap_err(),
            ] {
                assert_eq!(error, VoiError::BadWindow(expected.into()));
                assert_eq!(error.unreadable(), Some(expected));
            }
            // An explicit window still renders the image.
            let explicit = VoiChoice::Explicit {
                center: 512.0,
                width: 1024.0,
            };
            assert!(render_8bit(&bad, &explicit).is_ok());
        }
        // The second of two windows names which.
        let mut two = img.clone();
        two.meta.windows.push(Window {
            center: f64::NAN,
            width: 10.0,
            explanation: None,
        });
        assert!(render_8bit(&two, &VoiChoice::File).is_ok());
        let error = render_8bit(&two, &VoiChoice::FileWindow(2)).unwrap_err();
        assert!(
            matches!(&error, VoiError::BadWindow(m) if m.starts_with("window 2 of the file: Window Center (0028,1050) is NaN")),
            "{error}"
        );

        // A constant image, through its window or an automatic one, signed or not.
        let constant = image(vec![700; 6], 10);
        let error = render_8bit(&constant, &VoiChoice::File).unwrap_err();
        assert_eq!(
            error,
            VoiError::Blank("the image is constant: every pixel is 700".into())
        );
        assert_eq!(error.unreadable(), Some("the image is constant: every pixel is 700"));
        let mut auto = constant.clone();
        auto.meta.windows.clear();
        assert_eq!(
            to_display(&auto).unwrap_err().to_string(),
            "the image is constant: every pixel is 700"
        );
        let signed = Radiograph {
            meta: RadiographMeta::plain(2, 2, 12),
            pixels: Pixels::Signed(vec![-5; 4]),
        };
        assert_eq!(
            to_display(&signed).unwrap_err(),
            VoiError::Blank("the image is constant: every pixel is -5".into())
        );
        // Not constant, but a window that misses every value: one grey level, said so.
        let mut missed = img.clone();
        missed.meta.windows[0] = Window {
            center: 10_000.0,
            width: 10.0,
            explanation: None,
        };
        let error = render_8bit(&missed, &VoiChoice::File).unwrap_err();
        assert!(
            matches!(&error, VoiError::Blank(m) if m.starts_with("every pixel is grey level 0 after the display pipeline (window 10000/10, file window 1)")),
            "{error}"
        );
        // A single pixel is not "constant".
        assert!(render_8bit(&image(vec![5], 10), &VoiChoice::File).is_ok());

        // Choices that do not fit are not the image's fault.
        for choice in [
            VoiChoice::FileWindow(3),
            VoiChoice::FileLut(1),
            VoiChoice::Explicit {
                center: f64::NAN,
                width: 100.0,
            },
        ] {
            let error = render_8bit(&img, &choice).unwrap_err();
            assert!(matches!(error, VoiError::Choice(_)), "{choice:?}: {error:?}");
            assert_eq!(error.unreadable(), None);
        }
    }

    #[test]
    fn auto_window_spans_the_percentiles() {
        let values: Vec<u16> = (0..1000).collect();
        let mut img = image(values, 10);
        img.meta.windows.clear();
        let (out, applied) = render_8bit(&img, &VoiChoice::File).unwrap();
        let AppliedVoi::Window { source, .. } = applied else {
            panic!("window expected")
        };
        assert!(source.starts_with("auto"));
        assert_eq!(out[0], 0);
        assert_eq!(out[999], 255);
        assert!(out[4] == 0 && out[996] == 255);
        assert!((out[500] as i32 - 128).abs() <= 1);
    }
}
