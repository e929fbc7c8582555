//! Acquisition "site profiles": how a hospital's X-ray unit and plate reader turn the
//! attenuation image into stored pixel values. The same patient at two sites must look like
//! two hospitals: contrast (kVp), dose (quantum noise), scatter, unsharpness, heel effect,
//! collimation, the reader's tone curve and edge enhancement, bit depth, photometric
//! interpretation, field of view.

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
    /// Centre of the S-curve (sigmoid only), 0–1; higher is darker.
    #[serde(default = "half")]
    pub midpoint: f64,
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

fn half() -> f64 {
    0.5
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

/// A site profile that cannot be loaded. `origin` is `built-in site NAME` or the file.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// Neither a built-in name nor a file.
    #[error("unknown site {name:?}: built-in sites are {built_in:?}, or give a .toml file")]
    Unknown {
        /// What was asked for.
        name: String,
        /// The built-in names.
        built_in: Vec<&'static str>,
    },
    /// The file cannot be read.
    #[error("{}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not a site profile in TOML.
    #[error("{origin}")]
    Toml {
        /// Where the profile came from.
        origin: String,
        /// What the TOML parser said.
        #[source]
        source: toml::de::Error,
    },
    /// A value out of range.
    #[error("{origin}")]
    Invalid {
        /// Where the profile came from.
        origin: String,
        /// Which value.
        #[source]
        source: InvalidSite,
    },
}

/// A site profile value out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidSite {
    /// `bits_stored` outside 10–16.
    #[error("bits_stored {0} must be 10–16")]
    BitsStored(u16),
    /// Not MONOCHROME1/2.
    #[error("photometric {0:?} must be MONOCHROME1 or MONOCHROME2")]
    Photometric(String),
    /// Not log/sigmoid.
    #[error("lut.kind {0:?} must be log or sigmoid")]
    LutKind(String),
    /// No photons or too small a field.
    #[error("photons and field_mm must be positive (field at least 50 mm)")]
    Geometry,
}

impl SiteProfile {
    /// A built-in profile by name, or a TOML file.
    pub fn load(name_or_path: &str) -> Result<Self, SiteError> {
        let (origin, text) = match BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            Some((n, text)) => (format!("built-in site {n}"), text.to_string()),
            None => {
                let path = std::path::Path::new(name_or_path);
                if !path.is_file() {
                    let built_in: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
                    return Err(SiteError::Unknown {
                        name: name_or_path.to_string(),
                        built_in,
                    });
                }
                let text = std::fs::read_to_string(path).map_err(|source| SiteError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                (path.display().to_string(), text)
            }
        };
        let site: SiteProfile = match toml::from_str(&text) {
            Ok(site) => site,
            Err(source) => return Err(SiteError::Toml { origin, source }),
        };
        if let Err(source) = site.validate() {
            return Err(SiteError::Invalid { origin, source });
        }
        Ok(site)
    }

    fn validate(&self) -> Result<(), InvalidSite> {
        if !(10..=16).contains(&self.bits_stored) {
            return Err(InvalidSite::BitsStored(self.bits_stored));
        }
        if self.photometric != "MONOCHROME1" && self.photometric != "MONOCHROME2" {
            return Err(InvalidSite::Photometric(self.photometric.clone()));
        }
        if self.lut.kind != "log" && self.lut.kind != "sigmoid" {
            return Err(InvalidSite::LutKind(self.lut.kind.clone()));
        }
        if !(self.photons > 0.0 && self.field_mm[0] > 50.0 && self.field_mm[1] > 50.0) {
            return Err(InvalidSite::Geometry);
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

/// Separable box blur of radius `r` pixels, in place. The vertical pass keeps one running
/// sum per column and walks the rows in order, so memory is read sequentially.
fn box_blur(data: &mut [f32], width: usize, height: usize, r: usize) {
    if r == 0 {
        return;
    }
    let mut out = vec![0f32; width];
    for row in data.chunks_mut(width) {
        box_line(row, &mut out, r);
        row.copy_from_slice(&out);
    }
    let source = data.to_vec();
    let row = |y: isize| {
        let y = y.clamp(0, height as isize - 1) as usize;
        &source[y * width..(y + 1) * width]
    };
    let r = r as isize;
    let mut sums = vec![0f32; width];
    for y in -r..=r {
        for (s, v) in sums.iter_mut().zip(row(y)) {
            *s += v;
        }
    }
    let scale = 1.0 / (2 * r + 1) as f32;
    for y in 0..height as isize {
        let target = &mut data[y as usize * width..(y as usize + 1) * width];
        for (t, s) in target.iter_mut().zip(&sums) {
            *t = s * scale;
        }
        let (add, remove) = (row(y + r + 1), row(y - r));
        for ((s, a), b) in sums.iter_mut().zip(add).zip(remove) {
            *s += a - b;
        }
    }
}

/// The 3-tap kernel `[a, 1 − 2a, a]` (variance 2a) along rows and columns, for blurs under
/// about a pixel, where box filters are too coarse.
fn small_blur(data: &mut [f32], width: usize, height: usize, sigma: f64) {
    let a = ((sigma * sigma) / 2.0).min(1.0 / 3.0) as f32;
    let centre = 1.0 - 2.0 * a;
    let mut line = vec![0f32; width.max(height)];
    for row in data.chunks_mut(width) {
        for x in 0..width {
            let (l, r) = (row[x.saturating_sub(1)], row[(x + 1).min(width - 1)]);
            line[x] = centre * row[x] + a * (l + r);
        }
        row.copy_from_slice(&line[..width]);
    }
    let source = data.to_vec();
    for y in 0..height {
        let (up, down) = (y.saturating_sub(1), (y + 1).min(height - 1));
        for x in 0..width {
            data[y * width + x] =
                centre * source[y * width + x] + a * (source[up * width + x] + source[down * width + x]);
        }
    }
}

/// Gaussian-like blur with standard deviation `sigma` pixels: a 3-tap kernel below ~1 px,
/// three box passes above (σ² = (w² − 1)/4 for box width w).
pub fn blur(data: &mut [f32], width: usize, height: usize, sigma: f64) {
    if sigma < 0.2 {
        return;
    }
    if sigma < 1.0 {
        small_blur(data, width, height, sigma);
        return;
    }
    let w = (4.0 * sigma * sigma + 1.0).sqrt();
    let r = ((w - 1.0) / 2.0).round().max(1.0) as usize;
    for _ in 0..3 {
        box_blur(data, width, height, r);
    }
}

/// A broad blur computed at a quarter of the resolution (for scatter and other smooth
/// fields), then brought back by bilinear interpolation.
pub fn broad_blur(data: &[f32], width: usize, height: usize, sigma: f64) -> Vec<f32> {
    const F: usize = 4;
    let (w, h) = (width.div_ceil(F), height.div_ceil(F));
    let mut small = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let (mut sum, mut n) = (0f32, 0f32);
            for yy in y * F..((y + 1) * F).min(height) {
                for xx in x * F..((x + 1) * F).min(width) {
                    sum += data[yy * width + xx];
                    n += 1.0;
                }
            }
            small[y * w + x] = sum / n;
        }
    }
    blur(&mut small, w, h, sigma / F as f64);
    let mut out = vec![0f32; width * height];
    for y in 0..height {
        let fy = ((y as f32 + 0.5) / F as f32 - 0.5).clamp(0.0, (h - 1) as f32);
        let (y0, ty) = (fy.floor() as usize, fy - fy.floor());
        let y1 = (y0 + 1).min(h - 1);
        for x in 0..width {
            let fx = ((x as f32 + 0.5) / F as f32 - 0.5).clamp(0.0, (w - 1) as f32);
            let (x0, tx) = (fx.floor() as usize, fx - fx.floor());
            let x1 = (x0 + 1).min(w - 1);
            let top = small[y0 * w + x0] * (1.0 - tx) + small[y0 * w + x1] * tx;
            let bottom = small[y1 * w + x0] * (1.0 - tx) + small[y1 * w + x1] * tx;
            out[y * width + x] = top * (1.0 - ty) + bottom * ty;
        }
    }
    out
}

/// The `p`-th percentile (0–100) of `values` (reordered), in linear time.
pub fn percentile(values: &mut [f32], p: f64) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let index = ((p / 100.0) * (values.len() - 1) as f64).round() as usize;
    *values.select_nth_unstable_by(index, |a, b| a.total_cmp(b)).1
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
        Exposure {
            collimation: [margin(), margin(), margin(), margin()],
            noise_seed: rng.gen(),
        }
    }
}

/// What the reader (the CR/DR plate's processing) does beyond the site's tone curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reader {
    /// The display value outside the collimated field: 1.0 leaves the unexposed plate white
    /// (maximal density), 0.0 is an electronic shutter that blacks it out.
    pub outside: f32,
    /// When set, the tone curve's percentiles leave out direct exposure: pixels whose
    /// attenuation `−ln(I/I₀)` is at or below this (all of the field when the anatomy is under
    /// a tenth of it), as a reader's histogram analysis excludes the raw-beam peak.
    pub direct_exposure: Option<f32>,
    /// Where the site's unsharpness (`blur_sigma_mm`) acts in the acquisition before this
    /// reader: `false` on the detected signal, noise included (v1); `true` on the image before
    /// quantum noise, as the focal spot's geometric unsharpness does (the site's one figure
    /// then stands for all unsharpness), so the noise keeps its fine grain.
    pub blur_before_noise: bool,
}

impl Reader {
    /// The phantom's reader (v1): white border, percentiles over the whole field.
    pub const PLAIN: Reader = Reader {
        outside: 1.0,
        direct_exposure: None,
        blur_before_noise: false,
    };
}

/// The indices of the collimated field's pixels (`field`: left, top, right, bottom).
fn field_pixels(width: usize, field: [usize; 4]) -> impl Iterator<Item = usize> {
    (field[1]..field[3]).flat_map(move |y| (field[0]..field[2]).map(move |x| y * width + x))
}

/// `values` at the field's anatomy: the pixels whose attenuation is above `direct` (direct
/// exposure left out), or `None` when they are under a tenth of the field.
pub fn anatomy_values(
    values: &[f32],
    attenuation: &[f32],
    width: usize,
    field: [usize; 4],
    direct: f32,
) -> Option<Vec<f32>> {
    let anatomy: Vec<f32> = field_pixels(width, field)
        .filter(|&i| attenuation[i] > direct)
        .map(|i| values[i])
        .collect();
    (anatomy.len() * 10 >= (field[2] - field[0]) * (field[3] - field[1])).then_some(anatomy)
}

/// Turns an attenuation image into normalised display values in [0, 1] (bright = dense),
/// and returns the collimated field's pixel rectangle.
pub fn expose(
    attenuation: &[f32],
    width: usize,
    height: usize,
    spacing: f64,
    site: &SiteProfile,
    exposure: &Exposure,
) -> (Vec<f32>, [usize; 4]) {
    expose_with(attenuation, width, height, spacing, site, exposure, Reader::PLAIN)
}

/// [`expose`] with another [`Reader`].
pub fn expose_with(
    attenuation: &[f32],
    width: usize,
    height: usize,
    spacing: f64,
    site: &SiteProfile,
    exposure: &Exposure,
    reader: Reader,
) -> (Vec<f32>, [usize; 4]) {
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
    let mut field_attenuation: Vec<f32> = (field[1]..field[3])
        .flat_map(|y| (field[0]..field[2]).map(move |x| attenuation[y * width + x]))
        .collect();
    let reference = if field_attenuation.is_empty() {
        0.0
    } else {
        let middle = field_attenuation.len() / 2;
        *field_attenuation
            .select_nth_unstable_by(middle, |a, b| a.total_cmp(b))
            .1 as f64
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
    if reader.blur_before_noise {
        blur(&mut primary, width, height, site.blur_sigma_mm / spacing);
    }
    // Scatter: a broad blur of the primary, added.
    let scatter = broad_blur(&primary, width, height, site.scatter_sigma_mm / spacing);
    let photons_per_pixel = site.photons * spacing * spacing;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(exposure.noise_seed);
    // Quantum noise: Poisson, as a Gaussian with variance = mean photon count. Box–Muller
    // gives two independent normals per draw; both are used.
    let mut spare: Option<f64> = None;
    let mut gaussian = move || -> f64 {
        if let Some(z) = spare.take() {
            return z;
        }
        let u: f64 = rng.gen_range(1e-12..1.0);
        let v: f64 = rng.gen();
        let r = (-2.0 * u.ln()).sqrt();
        let (sin, cos) = (std::f64::consts::TAU * v).sin_cos();
        spare = Some(r * sin);
        r * cos
    };
    let mut signal: Vec<f32> = primary
        .iter()
        .zip(&scatter)
        .map(|(&p, &s)| {
            let mean = (p + site.scatter_fraction as f32 * s) as f64;
            let counts = mean * photons_per_pixel;
            let noisy = counts + counts.max(1.0).sqrt() * gaussian();
            (noisy / photons_per_pixel).max(1e-6) as f32
        })
        .collect();
    if !reader.blur_before_noise {
        blur(&mut signal, width, height, site.blur_sigma_mm / spacing);
    }
    // The reader: log of the exposure (so brightness follows attenuation), dynamic range
    // compression, then the tone curve between percentiles of the exposed field.
    let mut log: Vec<f32> = signal.iter().map(|&v| -(v.max(1e-6)).ln()).collect();
    if site.lut.drc_amount > 0.0 {
        // Outside the field the log signal is meaningless; fill it with the field's median so
        // the broad low-pass does not bleed the collimator edge into the image.
        let mut inside_values: Vec<f32> = (field[1]..field[3])
            .flat_map(|y| (field[0]..field[2]).map(move |x| (x, y)))
            .map(|(x, y)| log[y * width + x])
            .collect();
        let median = percentile(&mut inside_values, 50.0);
        let filled: Vec<f32> = log
            .iter()
            .enumerate()
            .map(|(i, &v)| if inside(i % width, i / width) { v } else { median })
            .collect();
        let low = broad_blur(&filled, width, height, site.lut.drc_sigma_mm / spacing);
        let amount = site.lut.drc_amount as f32;
        for (v, l) in log.iter_mut().zip(&low) {
            *v -= amount * (l - median);
        }
    }
    let mut exposed = reader
        .direct_exposure
        .and_then(|direct| anatomy_values(&log, attenuation, width, field, direct))
        .unwrap_or_else(|| field_pixels(width, field).map(|i| log[i]).collect());
    let (lo, hi) = (
        percentile(&mut exposed, site.lut.low_percentile),
        percentile(&mut exposed, site.lut.high_percentile),
    );
    let range = (hi - lo).max(1e-3);
    for (i, v) in log.iter_mut().enumerate() {
        let (x, y) = (i % width, i / width);
        let mut t = ((*v - lo) / range).clamp(0.0, 1.0);
        t = match site.lut.kind.as_str() {
            "sigmoid" => {
                let k = site.lut.gamma as f32;
                let m = site.lut.midpoint as f32;
                let f = |u: f32| 1.0 / (1.0 + (-k * (u - m)).exp());
                (f(t) - f(0.0)) / (f(1.0) - f(0.0))
            }
            _ => t.powf(site.lut.gamma as f32),
        };
        // Outside the collimator: the unexposed plate (maximal density), or the shutter.
        *v = if inside(x, y) { t } else { reader.outside };
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
