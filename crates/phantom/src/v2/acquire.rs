//! v2's acquisition chain: v1's ([`crate::acquisition::expose`]: automatic exposure, heel
//! effect, scatter, quantum noise, detector blur, log, dynamic range compression, tone curve,
//! unsharp masking), copied so that v2 can change it without changing a byte of v1's films.
//! Differences from v1: the collimated border is blacked out by the reader (electronic
//! shutter), not left white; the tone curve's percentiles are taken over the anatomy, not
//! over the direct exposure beside it.

use crate::acquisition::{blur, broad_blur, percentile, Exposure, SiteProfile};
use rand::{Rng, SeedableRng};

/// Attenuation `−ln(I/I₀)` below which a pixel counts as direct exposure (about 50 mm of
/// water at 60–80 kVp).
const DIRECT_EXPOSURE: f32 = 1.0;

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
    blur(&mut signal, width, height, site.blur_sigma_mm / spacing);
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
    // The reader's histogram analysis: the tone curve's percentiles are taken over the
    // anatomy, leaving out direct exposure (rays through less than about 50 mm of water), as
    // a CR/DR reader recognises and excludes the raw-beam peak; all of the field when the
    // anatomy is under a tenth of it.
    let field_pixels = || (field[1]..field[3]).flat_map(|y| (field[0]..field[2]).map(move |x| y * width + x));
    let mut exposed: Vec<f32> = field_pixels()
        .filter(|&i| attenuation[i] > DIRECT_EXPOSURE)
        .map(|i| log[i])
        .collect();
    if exposed.len() * 10 < (field[2] - field[0]) * (field[3] - field[1]) {
        exposed = field_pixels().map(|i| log[i]).collect();
    }
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
        // The reader's electronic shutter blacks out the unexposed plate outside the
        // collimator (v1 leaves it white).
        *v = if inside(x, y) { t } else { 0.0 };
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
