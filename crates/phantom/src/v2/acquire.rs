//! v2's reader: v1's acquisition chain ([`crate::acquisition::expose_with`]: automatic
//! exposure, heel effect, scatter, quantum noise, blur, log, dynamic range compression, tone
//! curve, unsharp masking) with these differences, so that v1's films do not change: the
//! collimated border is blacked out (electronic shutter), not left white; the tone curve's
//! percentiles are taken over the anatomy, not over the direct exposure beside it; the site's
//! unsharpness (`blur_sigma_mm`) blurs the image before quantum noise, as geometric
//! (focal-spot) unsharpness does — a shortcut: the site's one figure stands for all
//! unsharpness — so the noise keeps its fine grain; the lateral collimator blades close to
//! the patient's skin, the top and bottom ones near the film's edges; the detector records
//! three times the site's quanta (as a CR plate behind an AP pelvis does), unsharp masking
//! and range compression act at a fifth and three tenths of the site's amounts; the tone
//! curve maps at most the anatomy's lowest 0.5 % to black and a film-like S curve is centred
//! at mid-range at most; a gradation after the tone curve, linear on each side of the
//! anatomy's median, puts that median at a fixed dark grey.

use crate::acquisition::{anatomy_values, expose_with, Exposure, Reader, SiteProfile};

/// Attenuation `−ln(I/I₀)` below which a pixel counts as direct exposure (about 50 mm of
/// water at 60–80 kVp).
const DIRECT_EXPOSURE: f32 = 1.0;

/// The display value of the anatomy's median after v2's gradation (real processed AP pelvis
/// films hold most of their soft tissue between 0.2 and 0.4).
const ANATOMY_MEDIAN: f32 = 0.3;

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
    let site = &reader_site(site);
    let exposure = &collimated_to_the_body(attenuation, width, height, spacing, site, exposure);
    let (mut display, field) = expose_with(attenuation, width, height, spacing, site, exposure, READER);
    // Gradation: the reader darkens the mid-tones until the anatomy's median sits at
    // ANATOMY_MEDIAN, as CR/DR readers normalise the displayed density of the body part
    // (exposure recognition), so soft tissue reads dark grey and bone stands out, as on real
    // processed films, whatever the patient's thickness. Linear on each side of the median, so
    // the thin soft tissue at the flanks keeps its grey levels in proportion (a power curve
    // crushed it to black).
    if let Some(mut anatomy) = anatomy_values(&display, attenuation, width, field, DIRECT_EXPOSURE) {
        let median = crate::acquisition::percentile(&mut anatomy, 50.0).clamp(0.05, 0.95);
        if median > ANATOMY_MEDIAN {
            let (below, above) = (ANATOMY_MEDIAN / median, (1.0 - ANATOMY_MEDIAN) / (1.0 - median));
            for v in &mut display {
                *v = if *v <= median {
                    *v * below
                } else {
                    1.0 - (1.0 - *v) * above
                };
            }
        }
    }
    (display, field)
}

/// The anatomy's percentile that v2's tone curve maps to black (at most; the site's own
/// when lower): real CR/DR processing keeps the thinnest soft tissue above black.
const LOW_PERCENTILE: f64 = 0.5;

/// The highest midpoint of a film-like (sigmoid) tone curve under v2's reader.
const SIGMOID_MIDPOINT: f64 = 0.5;

/// The quanta v2's detector records at the field's median, as a multiple of the site's
/// `photons` (v1's figures, 3,500–9,000 per mm²): a 70 kVp beam (IEC 62220-1's RQA5) carries
/// about 29,650 photons per mm² per µGy, a CR plate behind an AP pelvis receives 2.5–5 µGy
/// and records them with a DQE of about 0.15–0.3, some 10,000–45,000 noise-equivalent quanta
/// per mm², so three times the site's figure. (A twentieth, tried before, rested on a wrong
/// photon count and made the films' fine grain some ten times too strong: `patches.py`
/// against RG2 0.988 ± 0.007, 0.933 at three times.)
const DETECTED_QUANTA: f64 = 3.0;

/// v2's unsharp masking and dynamic range compression as fractions of the site's amounts:
/// at v1's amounts v2's bone edges were about twice as steep as real films' (99th percentile
/// of the gradient 0.27–0.29 against 0.16 in `films.py`'s terms), and a localiser trained on
/// films read at these fractions found more real hips (`bench/real.sh`, docs/phantom.md).
const UNSHARP_FRACTION: f64 = 0.2;
const COMPRESSION_FRACTION: f64 = 0.3;

/// The site as v2's reader applies it: black from the anatomy's [`LOW_PERCENTILE`] at most,
/// an S curve centred at [`SIGMOID_MIDPOINT`] at most, so the flanks' thin soft tissue stays
/// grey as on real processed films; [`DETECTED_QUANTA`] of the site's photons;
/// [`UNSHARP_FRACTION`] and [`COMPRESSION_FRACTION`] of its edge enhancement and range
/// compression.
fn reader_site(site: &SiteProfile) -> SiteProfile {
    let mut site = site.clone();
    site.lut.low_percentile = site.lut.low_percentile.min(LOW_PERCENTILE);
    site.lut.midpoint = site.lut.midpoint.min(SIGMOID_MIDPOINT);
    site.photons *= DETECTED_QUANTA;
    site.lut.unsharp_amount *= UNSHARP_FRACTION;
    site.lut.drc_amount *= COMPRESSION_FRACTION;
    site
}

/// v2's collimation: the lateral blades close to the patient's skin, the site's margin then
/// setting how far each blade falls inside the skin (up to 0.7 of the margin) or outside it
/// (showing as much air), and the top and bottom blades stop near the film's edges (a quarter
/// of the site's margins), as on real AP hip and pelvis films, where the body fills the film's
/// width. The skin: the outermost columns of which at least a third is body (attenuation above
/// [`DIRECT_EXPOSURE`]); a film without such columns keeps the site's margins.
fn collimated_to_the_body(
    attenuation: &[f32],
    width: usize,
    height: usize,
    spacing: f64,
    site: &SiteProfile,
    exposure: &Exposure,
) -> Exposure {
    let body = |x: usize| {
        (0..height)
            .filter(|&y| attenuation[y * width + x] > DIRECT_EXPOSURE)
            .count()
            * 3
            >= height
    };
    let (Some(left), Some(right)) = ((0..width).find(|&x| body(x)), (0..width).rev().find(|&x| body(x))) else {
        return *exposure;
    };
    let [l, t, r, b] = exposure.collimation;
    // The drawn margin less the site's mean: −0.7 to +0.7 of it (positive: inside the skin).
    let inward = |margin: f64| margin - site.collimation_mm;
    Exposure {
        collimation: [
            (left as f64 * spacing + inward(l)).max(0.0),
            0.25 * t,
            ((width - 1 - right) as f64 * spacing + inward(r)).max(0.0),
            0.25 * b,
        ],
        ..*exposure
    }
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
    fn v2_collimation_closes_the_lateral_blades_to_the_skin() {
        // A body 40 columns wide in a film 100 wide: each lateral blade falls within 0.7 of the
        // site's margin of the skin, on both sides of it over the draws; top and bottom blades
        // take a quarter of the drawn margins; a film without a body keeps the drawn margins.
        use rand::SeedableRng;
        let (width, height, spacing) = (100, 60, 1.0);
        let body: Vec<f32> = (0..width * height)
            .map(|i| if (30..70).contains(&(i % width)) { 3.0 } else { 0.1 })
            .collect();
        let mut site = site();
        site.collimation_mm = 10.0;
        let (mut inside, mut outside) = (0, 0);
        for seed in 0..40 {
            let exposure = Exposure::sample(&site, &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
            let c = collimated_to_the_body(&body, width, height, spacing, &site, &exposure).collimation;
            for blade in [c[0], c[2]] {
                assert!(
                    (blade - 30.0).abs() <= 7.0 + 1e-9,
                    "blade {blade} mm from the film's edge"
                );
                if blade > 30.0 {
                    inside += 1;
                } else {
                    outside += 1;
                }
            }
            assert_eq!(
                [c[1], c[3]],
                [0.25 * exposure.collimation[1], 0.25 * exposure.collimation[3]]
            );
            let air = vec![0.1f32; width * height];
            assert_eq!(
                collimated_to_the_body(&air, width, height, spacing, &site, &exposure),
                exposure
            );
        }
        assert!(
            inside > 5 && outside > 5,
            "blades inside the skin {inside}, outside {outside}"
        );
    }

    #[test]
    fn v2_gradation_puts_the_anatomy_at_dark_grey_and_keeps_the_order_of_grey_levels() {
        // Projected cases of every site, both framings: the anatomy's median is dark grey after
        // the gradation (or stays where it was when it was darker).
        let mut framings = std::collections::BTreeSet::new();
        let mut darkened = 0;
        for name in ["site-a", "site-b", "site-c"] {
            let site = SiteProfile::load(name).unwrap();
            for case in crate::plan(4, &site, 23, &crate::ClassMix::default()) {
                framings.insert(crate::v2::pelvis_view(&case));
                let (attenuation, hips, d) = crate::v2::attenuation(&case, &site, 128, false);
                let (width, height) = (d.width, d.height);
                let (display, field) = expose(&attenuation, width, height, d.spacing, &site, &case.exposure);
                let reader = reader_site(&site);
                let exposure = collimated_to_the_body(&attenuation, width, height, d.spacing, &reader, &case.exposure);
                let (plain, _) = expose_with(&attenuation, width, height, d.spacing, &reader, &exposure, READER);
                let in_field = |i: usize| {
                    (field[0]..field[2]).contains(&(i % width)) && (field[1]..field[3]).contains(&(i / width))
                };
                let anatomy = |values: &[f32], hip: bool| -> Vec<f32> {
                    (0..width * height)
                        .filter(|&i| in_field(i) && attenuation[i] > DIRECT_EXPOSURE && (hips[i] != 0) == hip)
                        .map(|i| values[i])
                        .collect()
                };
                let median = |mut v: Vec<f32>| crate::acquisition::percentile(&mut v, 50.0);
                let all = |values: &[f32]| {
                    let mut v = anatomy(values, false);
                    v.extend(anatomy(values, true));
                    median(v)
                };
                let (before, after) = (all(&plain), all(&display));
                let expected = before.min(ANATOMY_MEDIAN);
                if before > ANATOMY_MEDIAN + 0.05 {
                    darkened += 1;
                }
                assert!(
                    (after - expected).abs() < 0.03,
                    "{}: the anatomy's median {before} became {after}, not {expected}",
                    case.name
                );
                // A tone change only: darker mid-tones, the order of grey levels kept, black and
                // white where they were.
                let mut order: Vec<usize> = (0..width * height).collect();
                order.sort_by(|&i, &j| plain[i].total_cmp(&plain[j]));
                for pair in order.windows(2) {
                    assert!(
                        display[pair[0]] <= display[pair[1]] + 1e-6,
                        "{}: order changed",
                        case.name
                    );
                }
                for (d, p) in display.iter().zip(&plain) {
                    assert!(*d <= p + 1e-6 && (*p < 1.0 || *d == 1.0) && (*p > 0.0 || *d == 0.0));
                }
            }
        }
        assert_eq!(framings.len(), 2, "both framings were projected");
        assert!(darkened >= 3, "the gradation darkened only {darkened} of 12 films");
    }
}
