//! v2's reader: v1's acquisition chain ([`crate::acquisition::expose_with`]: automatic
//! exposure, heel effect, scatter, quantum noise, blur, log, tone curve) with these
//! differences, so that v1's films do not change: the collimated border is blacked out
//! (electronic shutter), not left white; the tone curve's percentiles are taken over the
//! anatomy, not over the direct exposure beside it; the site's unsharpness blurs the image
//! before quantum noise (the focal spot's geometric unsharpness), so the noise keeps its fine
//! grain; no dynamic range compression or unsharp masking.

use crate::acquisition::{expose_with, Exposure, Reader, SiteProfile};

/// Attenuation `−ln(I/I₀)` below which a pixel counts as direct exposure (about 50 mm of
/// water at 60–80 kVp).
const DIRECT_EXPOSURE: f32 = 1.0;

/// v2's reader.
const READER: Reader = Reader {
    outside: 0.0,
    direct_exposure: Some(DIRECT_EXPOSURE),
    blur_before_noise: true,
};

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
    // v2's reader applies the site's tone curve but neither dynamic range compression nor
    // unsharp masking: both lift the power between 2 and 10 mm far above a real CR's
    // (`patches.py` against RG2, 2026-12-07: 0.99 with them, 0.84 without).
    let mut site = site.clone();
    site.lut.drc_amount = 0.0;
    site.lut.unsharp_amount = 0.0;
    expose_with(attenuation, width, height, spacing, &site, exposure, READER)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lag-one correlation of neighbouring pixels along rows, inside a margin.
    fn neighbour_correlation(values: &[f32], width: usize, height: usize) -> f64 {
        let inner: Vec<(f64, f64)> = (8..height - 8)
            .flat_map(|y| (8..width - 9).map(move |x| (y * width + x, y * width + x + 1)))
            .map(|(a, b)| (values[a] as f64, values[b] as f64))
            .collect();
        let n = inner.len() as f64;
        let (ma, mb) = (
            inner.iter().map(|p| p.0).sum::<f64>() / n,
            inner.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let cov = inner.iter().map(|p| (p.0 - ma) * (p.1 - mb)).sum::<f64>() / n;
        let (va, vb) = (
            inner.iter().map(|p| (p.0 - ma).powi(2)).sum::<f64>() / n,
            inner.iter().map(|p| (p.1 - mb).powi(2)).sum::<f64>() / n,
        );
        cov / (va * vb).sqrt()
    }

    fn site() -> SiteProfile {
        let mut site = SiteProfile::load("site-a").unwrap();
        site.heel = 0.0;
        site.collimation_mm = 0.0;
        site.blur_sigma_mm = 1.0;
        site
    }

    #[test]
    fn v2_noise_keeps_its_grain_where_v1_blurs_it() {
        // A flat slab: what varies between pixels is quantum noise only.
        let (width, height, spacing) = (96, 96, 0.5);
        let attenuation = vec![3.0f32; width * height];
        let exposure = Exposure {
            collimation: [0.0; 4],
            noise_seed: 5,
        };
        let site = site();
        let (v2, _) = expose(&attenuation, width, height, spacing, &site, &exposure);
        let (v1, _) = expose_with(&attenuation, width, height, spacing, &site, &exposure, Reader::PLAIN);
        let (c1, c2) = (
            neighbour_correlation(&v1, width, height),
            neighbour_correlation(&v2, width, height),
        );
        assert!(c1 > 0.5, "v1 blurs the noise: neighbours correlate {c1:.2}");
        assert!(c2.abs() < 0.1, "v2's noise is white: neighbours correlate {c2:.2}");
    }

    #[test]
    fn v2_reader_adds_no_edge_overshoot() {
        // A step from thin to thick tissue: unsharp masking would overshoot on both sides.
        let (width, height, spacing) = (128, 32, 0.5);
        let attenuation: Vec<f32> = (0..width * height)
            .map(|i| if i % width < width / 2 { 2.0 } else { 4.0 })
            .collect();
        let exposure = Exposure {
            collimation: [0.0; 4],
            noise_seed: 1,
        };
        let mut site = site();
        site.photons = 1e9;
        site.scatter_fraction = 0.0;
        site.lut.unsharp_amount = 1.5;
        let (display, _) = expose(&attenuation, width, height, spacing, &site, &exposure);
        let row = &display[16 * width..17 * width];
        let (thin, thick) = (row[8], row[width - 8]);
        // v1's reader, with the same site, does overshoot.
        let (v1, _) = expose_with(&attenuation, width, height, spacing, &site, &exposure, Reader::PLAIN);
        let v1_row = &v1[16 * width..17 * width];
        let (lo, hi) = (v1_row[8].min(v1_row[width - 8]), v1_row[8].max(v1_row[width - 8]));
        assert!(
            v1_row.iter().any(|&v| v < lo - 0.02 || v > hi + 0.02),
            "v1's unsharp masking should overshoot the step"
        );
        for (x, &v) in row.iter().enumerate() {
            assert!(
                v >= thin.min(thick) - 0.01 && v <= thin.max(thick) + 0.01,
                "pixel {x}: {v} outside the plateaus {thin}..{thick}"
            );
        }
    }
}
