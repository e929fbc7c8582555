//! Acquisition "site profiles": how a hospital's X-ray unit and plate reader turn the
//! attenuation image into stored pixel values. The same patient at two sites must look like
//! two hospitals: contrast (kVp), dose (quantum noise), scatter, unsharpness, heel effect,
//! collimation, the reader's tone curve and edge enhancement, bit depth, photometric
//! interpretation, field of view.

use crate::anatomy::normal;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Built-in profiles: two internal sites and one external.
pub const BUILT_IN: [(&str, &str); 3] = [
    ("site-a", include_str!("../sites/site-a.toml")),
    ("site-b", include_str!("../sites/site-b.toml")),
    ("site-c", include_str!("../sites/site-c.toml")),
];

/// The reader's tone curve and edge enhancement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lut {
    /// `log`: the normalised log exposure raised to `gamma`; `sigmoid`: an S-shaped
    /// (film-like) curve of slope `gamma` around mid-grey.
    pub kind: String,
    pub gamma: f64,
    /// Unsharp masking: `v + amount·(v − blur(v))`.
    pub unsharp_amount: f64,
    pub unsharp_sigma_mm: f64,
    /// Dynamic range compression (as CR readers do): subtract this fraction of a broad
    /// low-pass of the log image, so soft-tissue thickness does not swamp bone contrast.
    pub drc_amount: f64,
    pub drc_sigma_mm: f64,
    /// Attenuation percentiles mapped to the ends of the output range.
    pub low_percentile: f64,
    pub high_percentile: f64,
}

/// One site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteProfile {
    pub name: String,
    pub institution: String,
    pub manufacturer: String,
    pub model: String,
    pub kvp: f64,
    /// Bone contrast relative to water (lower at higher kVp).
    pub bone_contrast: f64,
    /// Photons per mm² reaching the detector unattenuated (dose → quantum noise).
    pub photons: f64,
    pub scatter_fraction: f64,
    pub scatter_sigma_mm: f64,
    /// Detector unsharpness.
    pub blur_sigma_mm: f64,
    /// Heel effect: relative intensity difference between the top and bottom edge.
    pub heel: f64,
    /// Mean collimation margin, mm.
    pub collimation_mm: f64,
    /// Field of view `[width, height]`, mm.
    pub field_mm: [f64; 2],
    pub bits_stored: u16,
    /// `MONOCHROME1` or `MONOCHROME2`.
    pub photometric: String,
    /// Lead side marker (R/L) in the field.
    pub side_marker: bool,
    pub lut: Lut,
}

impl SiteProfile {
    /// A built-in profile by name, or a TOML file.
    pub fn load(name_or_path: &str) -> Result<Self, String> {
        let (source, text) = match BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            Some((n, text)) => (format!("built-in site {n}"), text.to_string()),
            None => {
                let path = std::path::Path::new(name_or_path);
                if !path.is_file() {
                    let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
                    return Err(format!("unknown site {name_or_path:?}: built-in sites are {names:?}, or give a .toml file"));
                }
                (path.display().to_string(), std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?)
            }
        };
        let site: SiteProfile = toml::from_str(&text).map_err(|e| format!("{source}: {e}"))?;
        site.validate().map_err(|e| format!("{source}: {e}"))?;
        Ok(site)
    }

    fn validate(&self) -> Result<(), String> {
        if !(10..=16).contains(&self.bits_stored) {
            return Err(format!("bits_stored {} must be 10–16", self.bits_stored));
        }
        if self.photometric != "MONOCHROME1" && self.photometric != "MONOCHROME2" {
            return Err(format!("photometric {:?} must be MONOCHROME1 or MONOCHROME2", self.photometric));
        }
        if self.lut.kind != "log" && self.lut.kind != "sigmoid" {
            return Err(format!("lut.kind {:?} must be log or sigmoid", self.lut.kind));
        }
        if !(self.photons > 0.0 && self.field_mm[0] > 50.0 && self.field_mm[1] > 50.0) {
            return Err("photons and field_mm must be positive (field at least 50 mm)".into());
        }
        Ok(())
    }

    /// Image size `(width, height)` for a longer side of `size` pixels, and the spacing.
    pub fn image_size(&self, size: usize) -> (usize, usize, f64) {
        let [w, h] = self.field_mm;
        let spacing = w.max(h) / size as f64;
        ((w / spacing).round() as usize, (h / spacing).round() as usize, spacing)
    }
}

/// Box filter of radius `r` over one line, edges clamped.
fn box_line(input: &[f32], output: &mut [f32], r: usize) {
    let n = input.len() as isize;
    let at = |i: isize| input[i.clamp(0, n - 1) as usize];
    let r = r as isize;
    let mut sum: f32 = (-r..=r).map(at).sum();
    let scale = 1.0 / (2 * r + 1) as f32;
    for i in 0..n {
        output[i as usize] = sum * scale;
        sum += at(i + r + 1) - at(i - r);
    }
}

/// Separable box blur of radius `r` pixels, in place.
fn box_blur(data: &mut [f32], width: usize, height: usize, r: usize) {
    if r == 0 {
        return;
    }
    let mut out = vec![0f32; width.max(height)];
    for row in data.chunks_mut(width) {
        box_line(row, &mut out[..width], r);
        row.copy_from_slice(&out[..width]);
    }
    let mut column = vec![0f32; height];
    for x in 0..width {
        for y in 0..height {
            column[y] = data[y * width + x];
        }
        box_line(&column, &mut out[..height], r);
        for y in 0..height {
            data[y * width + x] = out[y];
        }
    }
}

/// Gaussian-like blur (three box passes) with standard deviation `sigma` pixels.
pub fn blur(data: &mut [f32], width: usize, height: usize, sigma: f64) {
    if sigma < 0.3 {
        return;
    }
    // Three boxes of width w: σ² = 3·(w² − 1)/12.
    let w = (4.0 * sigma * sigma + 1.0).sqrt();
    let r = ((w - 1.0) / 2.0).round().max(1.0) as usize;
    for _ in 0..3 {
        box_blur(data, width, height, r);
    }
}

/// Per-image acquisition jitter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Exposure {
    /// Collimation margins left, top, right, bottom, mm.
    pub collimation: [f64; 4],
    pub noise_seed: u64,
}

impl Exposure {
    pub fn sample(site: &SiteProfile, rng: &mut impl Rng) -> Self {
        let mut margin = || site.collimation_mm * rng.gen_range(0.3..1.7);
        Exposure { collimation: [margin(), margin(), margin(), margin()], noise_seed: rng.gen() }
    }
}

/// Turns an attenuation image into normalised display values in [0, 1] (bright = dense),
/// and returns the collimated field's pixel rectangle.
pub fn expose(attenuation: &[f32], width: usize, height: usize, spacing: f64, site: &SiteProfile, exposure: &Exposure) -> (Vec<f32>, [usize; 4]) {
    let px = |mm: f64| (mm / spacing).round() as usize;
    let field = [
        px(exposure.collimation[0]).min(width / 4),
        px(exposure.collimation[1]).min(height / 4),
        width - px(exposure.collimation[2]).min(width / 4),
        height - px(exposure.collimation[3]).min(height / 4),
    ];
    let inside = |x: usize, y: usize| x >= field[0] && x < field[2] && y >= field[1] && y < field[3];
    // Automatic exposure control: the dose is set so the median of the field gets the
    // nominal photon count.
    let mut field_attenuation: Vec<f32> = (field[1]..field[3]).flat_map(|y| (field[0]..field[2]).map(move |x| attenuation[y * width + x])).collect();
    let reference = if field_attenuation.is_empty() {
        0.0
    } else {
        let middle = field_attenuation.len() / 2;
        *field_attenuation.select_nth_unstable_by(middle, |a, b| a.total_cmp(b)).1 as f64
    };
    // Primary intensity with the heel effect; nothing outside the collimator.
    let mut primary = vec![0f32; width * height];
    for y in 0..height {
        let heel = 1.0 + site.heel * (0.5 - y as f64 / height as f64);
        for x in 0..width {
            if inside(x, y) {
                primary[y * width + x] = (heel * (reference - attenuation[y * width + x] as f64).exp()) as f32;
            }
        }
    }
    // Scatter: a broad blur of the primary, added.
    let mut scatter = primary.clone();
    blur(&mut scatter, width, height, site.scatter_sigma_mm / spacing);
    let photons_per_pixel = site.photons * spacing * spacing;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(exposure.noise_seed);
    let mut signal: Vec<f32> = primary
        .iter()
        .zip(&scatter)
        .map(|(&p, &s)| {
            let mean = (p + site.scatter_fraction as f32 * s) as f64;
            // Quantum noise: Poisson, as a Gaussian with variance = mean photon count.
            let counts = mean * photons_per_pixel;
            let noisy = counts + counts.max(1.0).sqrt() * normal(&mut rng);
            (noisy / photons_per_pixel).max(1e-6) as f32
        })
        .collect();
    blur(&mut signal, width, height, site.blur_sigma_mm / spacing);
    // The reader: log of the exposure (so brightness follows attenuation), dynamic range
    // compression, then the tone curve between percentiles of the exposed field.
    let mut log: Vec<f32> = signal.iter().map(|&v| -(v.max(1e-6)).ln()).collect();
    if site.lut.drc_amount > 0.0 {
        // Outside the field the log signal is meaningless; fill it with the field's median so
        // the broad low-pass does not bleed the collimator edge into the image.
        let inside_values: Vec<f32> = (field[1]..field[3]).flat_map(|y| (field[0]..field[2]).map(move |x| (x, y))).map(|(x, y)| log[y * width + x]).collect();
        let mut sorted = inside_values.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
        let mut low: Vec<f32> = log.iter().enumerate().map(|(i, &v)| if inside(i % width, i / width) { v } else { median }).collect();
        blur(&mut low, width, height, site.lut.drc_sigma_mm / spacing);
        let amount = site.lut.drc_amount as f32;
        for (v, l) in log.iter_mut().zip(&low) {
            *v -= amount * (l - median);
        }
    }
    let mut exposed: Vec<f32> = (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .filter(|&(x, y)| inside(x, y))
        .map(|(x, y)| log[y * width + x])
        .collect();
    exposed.sort_by(|a, b| a.total_cmp(b));
    let pick = |p: f64| exposed[((p / 100.0) * (exposed.len() - 1) as f64).round() as usize];
    let (lo, hi) = (pick(site.lut.low_percentile), pick(site.lut.high_percentile));
    let range = (hi - lo).max(1e-3);
    for (i, v) in log.iter_mut().enumerate() {
        let (x, y) = (i % width, i / width);
        let mut t = ((*v - lo) / range).clamp(0.0, 1.0);
        t = match site.lut.kind.as_str() {
            "sigmoid" => {
                let k = site.lut.gamma as f32;
                let f = |u: f32| 1.0 / (1.0 + (-k * (u - 0.5)).exp());
                (f(t) - f(0.0)) / (f(1.0) - f(0.0))
            }
            _ => t.powf(site.lut.gamma as f32),
        };
        // Unexposed plate (outside the collimator) reads as maximal density.
        *v = if inside(x, y) { t } else { 1.0 };
    }
    if site.lut.unsharp_amount > 0.0 {
        let mut low = log.clone();
        blur(&mut low, width, height, site.lut.unsharp_sigma_mm / spacing);
        let amount = site.lut.unsharp_amount as f32;
        for (v, l) in log.iter_mut().zip(&low) {
            *v = (*v + amount * (*v - l)).clamp(0.0, 1.0);
        }
    }
    (log, field)
}
