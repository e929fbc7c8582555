//! Projection: rays from a point source to every detector pixel, path lengths per material
//! (bone mineral, marrow, fat, muscle, gas) by marching the signed-distance solids, and a
//! polychromatic beam (Kramers spectrum at the site's kVp through 2.5 mm Al, energy bins of
//! 5 keV, energy-integrating detector), which gives beam hardening by itself. The result is
//! the effective attenuation `−ln(I/I₀)` per pixel, which v1's acquisition chain
//! ([`crate::acquisition::expose`]: heel effect, scatter, quantum noise, blur, log, dynamic
//! range compression, tone curve, unsharp masking) turns into a radiograph.

use super::anatomy::{Material, Solid};
use super::sdf::{inverse, p3, ray_box, Spans, P3};
use rayon::prelude::*;

/// Source, patient and detector (supine AP: source anterior at −z, detector behind the
/// table at +z). Pixel `(i, j)` is at `center + ((i − (W−1)/2)·spacing, (j − (H−1)/2)·spacing)`
/// in the detector plane; the central ray passes through `center` in the plane z = 0 (the
/// hip centre's depth), so anatomy at z = 0 is magnified by `sid / source_distance`.
#[derive(Debug, Clone, Copy)]
pub struct Detector {
    pub width: usize,
    pub height: usize,
    /// Pixel spacing at the detector, mm.
    pub spacing: f64,
    /// Where the central ray crosses the plane z = 0, mm.
    pub center: (f64, f64),
    /// Source to the plane z = 0, mm.
    pub source_distance: f64,
    /// The detector plane's z, mm (source-to-image distance = source_distance + detector_z).
    pub detector_z: f64,
}

impl Detector {
    pub fn source(&self) -> P3 {
        p3(self.center.0 as f32, self.center.1 as f32, -self.source_distance as f32)
    }

    /// The detector-plane point of pixel centre `(column, row)`.
    pub fn pixel_point(&self, column: f64, row: f64) -> P3 {
        p3(
            (self.center.0 + (column - (self.width as f64 - 1.0) / 2.0) * self.spacing) as f32,
            (self.center.1 + (row - (self.height as f64 - 1.0) / 2.0) * self.spacing) as f32,
            self.detector_z as f32,
        )
    }

    /// Where a world point lands, in box coordinates (pixel `i` spans `[i, i+1)`), before any
    /// left/right flip.
    pub fn project(&self, p: P3) -> (f64, f64) {
        let s = self.source();
        let t = (self.detector_z - s.z as f64) / (p.z as f64 - s.z as f64);
        let x = s.x as f64 + (p.x as f64 - s.x as f64) * t;
        let y = s.y as f64 + (p.y as f64 - s.y as f64) * t;
        (
            (x - self.center.0) / self.spacing + (self.width as f64 - 1.0) / 2.0 + 0.5,
            (y - self.center.1) / self.spacing + (self.height as f64 - 1.0) / 2.0 + 0.5,
        )
    }

    /// Magnification of the plane z = 0.
    pub fn magnification(&self) -> f64 {
        (self.source_distance + self.detector_z) / self.source_distance
    }
}

/// Soft tissue: a superellipse trunk (fat over muscle) ending in rounded buttocks, and two
/// thighs, in the x–z plane, varying with y.
#[derive(Debug, Clone, Copy)]
pub struct Body {
    pub midline: f32,
    pub half_width: f32,
    pub half_depth: f32,
    pub depth_center: f32,
    pub fat: f32,
    pub scale: f32,
}

/// Chord (along z) of the superellipse `|x/a|^n + |z/b|^n ≤ 1` at `x`.
fn superellipse_chord(x: f32, a: f32, b: f32) -> f32 {
    const N: f32 = 2.6;
    if a <= 0.0 || b <= 0.0 {
        return 0.0;
    }
    let u = (x / a).abs();
    if u >= 1.0 {
        return 0.0;
    }
    2.0 * b * (1.0 - u.powf(N)).powf(1.0 / N)
}

impl Body {
    /// Where the trunk's depth ends below the hips at `x`, mm: it rounds off over the 120 mm
    /// above this (the buttocks), lowest under the middle of each buttock and 55 mm higher at
    /// the cleft and the flanks, so the gluteal folds curve as on real films instead of ending
    /// in one straight line (on the midline the perineum's own depth takes over).
    fn trunk_end(&self, x: f32) -> f32 {
        let u = ((x - self.midline).abs() / self.half_width.max(1.0)).min(1.0);
        let fold = (1.0 - ((u - 0.5) / 0.5).powi(2)).max(0.0);
        115.0 * self.scale + 55.0 * self.scale * fold
    }

    /// (outer, inner) z-chords at `(x, y)`: the skin's and the muscle's.
    fn chords(&self, x: f32, y: f32) -> (f32, f32) {
        let s = self.scale;
        let end = self.trunk_end(x);
        let start = end - 120.0 * s;
        let taper = if y > start {
            (1.0 - ((y - start) / (end - start)).powi(2)).max(0.0).sqrt()
        } else {
            1.0
        };
        let trunk = |shrink: f32| {
            superellipse_chord(
                x - self.midline,
                self.half_width - shrink,
                self.half_depth * taper - shrink,
            )
        };
        // Thighs: centred a little medial of each femoral shaft.
        let thigh = |shrink: f32| {
            if y < 0.0 {
                return 0.0;
            }
            let grow = smooth01(y / (120.0 * s));
            let a = (70.0 * s + 0.35 * self.fat) * grow;
            let b = (72.0 * s + 0.3 * self.fat) * grow;
            let cx = -22.0 * s + 0.12 * y;
            let left = superellipse_chord(x - cx, a - shrink, b - shrink);
            let right = superellipse_chord(x - (2.0 * self.midline - cx), a - shrink, b - shrink);
            left.max(right)
        };
        // The perineum between the thighs, below the trunk's end: soft tissue on the midline
        // whose depth falls off towards the knees (no air gap where the thighs meet).
        let perineum = |shrink: f32| {
            if y < start {
                return 0.0;
            }
            let depth = 0.55 * self.half_depth * (1.0 - smooth01((y - 140.0 * s) / (140.0 * s)));
            superellipse_chord(x - self.midline, 50.0 * s + 0.3 * self.fat - shrink, depth - shrink)
        };
        let outer = trunk(0.0).max(thigh(0.0)).max(perineum(0.0));
        let inner = trunk(self.fat).max(thigh(0.8 * self.fat)).max(perineum(self.fat));
        (outer, inner.min(outer))
    }
}

fn smooth01(t: f32) -> f32 {
    let t = t.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Path lengths of one ray, mm.
#[derive(Debug, Clone, Copy, Default)]
pub struct Paths {
    /// Cortical-bone equivalent: cortex plus bone volume fraction × cancellous length.
    pub bone: f32,
    /// The rest of the bone's interior (marrow).
    pub marrow: f32,
    pub fat: f32,
    pub muscle: f32,
    /// Bit `k` set: the ray crossed hip `k`'s proximal femur region.
    pub hips: u8,
}

/// Steps of the marcher, mm.
const MIN_STEP: f32 = 0.3;
/// Longest sampling step of the trabecular texture inside cancellous bone, mm.
const TEXTURE_STEP: f32 = 1.1;
/// Fraction of the signed distance stepped (the fields are bounds, not exact distances).
const SAFETY: f32 = 0.85;

/// Fraction of the segment where the linear interpolation of `a → b` is negative.
fn negative_fraction(a: f32, b: f32) -> f32 {
    match (a < 0.0, b < 0.0) {
        (true, true) => 1.0,
        (false, false) => 0.0,
        (true, false) => a / (a - b),
        (false, true) => b / (b - a),
    }
}

/// Lengths inside one solid along `origin + t·direction`, `t ∈ [t0, t1]`: (inside, cancellous,
/// bone-fraction-weighted cancellous, crossed the hip region).
fn march(solid: &dyn Solid, spans: &Spans, origin: P3, direction: P3, t0: f32, t1: f32) -> (f32, f32, f32, bool) {
    let bone = solid.material() == Material::Bone;
    let at = |t: f32| origin + direction * t;
    let mut t = t0;
    let mut previous = solid.sample_on(at(t), t, spans);
    let (mut inside, mut cancellous, mut weighted, mut hip) = (0.0f32, 0.0f32, 0.0f32, false);
    let mut lattice = t0 + 0.5 * TEXTURE_STEP;
    let mut held: Option<f32> = None;
    for _ in 0..4000 {
        if t >= t1 {
            break;
        }
        let outer = previous.distance;
        let inner = outer + previous.cortex;
        let distance = if outer > 0.0 {
            outer
        } else if bone {
            (-outer).min(inner.abs())
        } else {
            -outer
        };
        // Deep in cancellous bone the step follows the distance to the cortex too (the
        // texture is sampled every TEXTURE_STEP within it, below), so thick bone costs few
        // field evaluations.
        let step = (SAFETY * distance).max(MIN_STEP).min(t1 - t);
        let next = solid.sample_on(at(t + step), t + step, spans);
        let f_inside = negative_fraction(outer, next.distance);
        if f_inside > 0.0 {
            inside += f_inside * step;
            hip |= previous.hip || next.hip;
            if bone {
                // A cut face has no cortex: cancellous bone reaches the surface.
                let f_cancellous = negative_fraction(inner, next.distance + next.cortex);
                if f_cancellous > 0.0 {
                    let length = f_cancellous * step;
                    cancellous += length;
                    // The texture at the lattice points (every TEXTURE_STEP along the ray)
                    // inside this step; a short step between two of them keeps the last value.
                    let (mut sum, mut count) = (0.0, 0);
                    while lattice < t + step {
                        if lattice >= t {
                            sum += solid.bone_fraction(at(lattice));
                            count += 1;
                        }
                        lattice += TEXTURE_STEP;
                    }
                    let fraction = match (count, held) {
                        (0, Some(value)) => value,
                        (0, None) => solid.bone_fraction(at(t + 0.5 * step)),
                        _ => sum / count as f32,
                    };
                    held = Some(fraction);
                    weighted += length * fraction;
                }
            }
        }
        t += step;
        previous = next;
    }
    (inside, cancellous, weighted, hip)
}

/// The path lengths of every pixel (rows in parallel).
pub fn paths(detector: &Detector, solids: &[&dyn Solid], body: &Body) -> Vec<Paths> {
    let source = detector.source();
    let bounds: Vec<(P3, P3)> = solids.iter().map(|s| s.bounds()).collect();
    let mut out = vec![Paths::default(); detector.width * detector.height];
    out.par_chunks_mut(detector.width).enumerate().for_each(|(row, line)| {
        for (column, cell) in line.iter_mut().enumerate() {
            let target = detector.pixel_point(column as f64, row as f64);
            let direction = (target - source).unit();
            let inverse = inverse(direction);
            let mut paths = Paths::default();
            let mut gas = 0.0;
            let mut bone_total = 0.0;
            for (solid, (lo, hi)) in solids.iter().zip(&bounds) {
                let Some((t0, t1)) = ray_box(source, inverse, *lo, *hi) else {
                    continue;
                };
                // March only where the ray passes near one of the solid's parts.
                let spans = solid.spans(source, direction);
                let (mut inside, mut cancellous, mut weighted, mut hip) = (0.0, 0.0, 0.0, false);
                for (a, b) in spans.merged(t0, t1) {
                    let m = march(*solid, &spans, source, direction, a, b);
                    inside += m.0;
                    cancellous += m.1;
                    weighted += m.2;
                    hip |= m.3;
                }
                match solid.material() {
                    Material::Gas => gas += inside,
                    Material::Bone => {
                        let cortex = inside - cancellous;
                        paths.bone += cortex + weighted;
                        paths.marrow += cancellous - weighted;
                        bone_total += inside;
                        if hip {
                            if let Some(k) = solid.hip_index() {
                                paths.hips |= 1 << k;
                            }
                        }
                    }
                }
            }
            // Soft tissue where the ray crosses the body's mid-depth, corrected for obliquity.
            let t_mid = (body.depth_center - source.z) / direction.z;
            let mid = source + direction * t_mid;
            let (outer, inner) = body.chords(mid.x, mid.y);
            let oblique = 1.0 / direction.z.abs();
            paths.fat = (outer - inner) * oblique;
            paths.muscle = (inner * oblique - bone_total - gas).max(0.0);
            *cell = paths;
        }
    });
    out
}

/// Mass attenuation coefficients (cm²/g) at 20, 30, 40, 50, 60, 80, 100, 150 keV, from NIST
/// XCOM / ICRU 44 tables (water, adipose tissue, skeletal muscle, cortical bone, aluminium),
/// with their densities (g/cm³).
const ENERGIES: [f32; 8] = [20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0];
const WATER: ([f32; 8], f32) = ([0.8096, 0.3756, 0.2683, 0.2269, 0.2059, 0.1837, 0.1707, 0.1505], 1.0);
const ADIPOSE: ([f32; 8], f32) = ([0.5597, 0.3019, 0.2303, 0.2030, 0.1888, 0.1704, 0.1585, 0.1397], 0.95);
const MUSCLE: ([f32; 8], f32) = ([0.8205, 0.3783, 0.2685, 0.2262, 0.2048, 0.1823, 0.1693, 0.1492], 1.05);
const CORTICAL_BONE: ([f32; 8], f32) = ([4.001, 1.331, 0.6655, 0.4242, 0.3148, 0.2229, 0.1855, 0.1480], 1.92);
const ALUMINIUM: ([f32; 8], f32) = ([3.441, 1.128, 0.5685, 0.3681, 0.2778, 0.2018, 0.1704, 0.1378], 2.699);

/// Linear attenuation, per mm, at `energy` keV (log–log interpolation).
fn mu(table: ([f32; 8], f32), energy: f32) -> f32 {
    let (values, density) = table;
    let e = energy.clamp(ENERGIES[0], ENERGIES[7]);
    let i = ENERGIES.iter().rposition(|&x| x <= e).unwrap_or(0).min(6);
    let t = (e / ENERGIES[i]).ln() / (ENERGIES[i + 1] / ENERGIES[i]).ln();
    let log = values[i].ln() + t * (values[i + 1].ln() - values[i].ln());
    log.exp() * density / 10.0
}

/// The beam: energy bins with their weights (energy fluence × detector response, summing
/// to 1) and attenuation per material.
#[derive(Debug, Clone)]
pub struct Spectrum {
    /// Per bin: (weight, μ bone, μ marrow, μ fat, μ muscle), μ per mm.
    pub bins: Vec<[f32; 5]>,
}

impl Spectrum {
    /// Kramers' bremsstrahlung `(kVp − E)/E` photons per keV, filtered by `filter_al_mm` of
    /// aluminium, bins of 5 keV from 17.5 keV; an energy-integrating detector weights each
    /// photon by its energy.
    pub fn new(kvp: f64, filter_al_mm: f32) -> Self {
        let kvp = kvp.clamp(40.0, 150.0) as f32;
        let mut bins = Vec::new();
        let mut e = 17.5;
        while e < kvp {
            let photons = ((kvp - e) / e) * (-mu(ALUMINIUM, e) * filter_al_mm).exp();
            let marrow = 0.5 * (mu(ADIPOSE, e) + mu(WATER, e));
            bins.push([photons * e, mu(CORTICAL_BONE, e), marrow, mu(ADIPOSE, e), mu(MUSCLE, e)]);
            e += 5.0;
        }
        let total: f32 = bins.iter().map(|b| b[0]).sum();
        for b in &mut bins {
            b[0] /= total;
        }
        Spectrum { bins }
    }

    /// `−ln(I/I₀)` for one ray.
    pub fn attenuation(&self, p: &Paths) -> f32 {
        let mut transmitted = 0.0f32;
        for b in &self.bins {
            let exponent = b[1] * p.bone + b[2] * p.marrow + b[3] * p.fat + b[4] * p.muscle;
            transmitted += b[0] * (-exponent).exp();
        }
        -(transmitted.max(1e-30)).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_attenuation_coefficients_match_the_tables() {
        // NIST XCOM, water at 60 keV: 0.2059 cm²/g → 0.02059 /mm.
        assert!((mu(WATER, 60.0) - 0.02059).abs() < 1e-6);
        // Between table points the interpolation stays between the neighbours.
        let m = mu(CORTICAL_BONE, 55.0);
        assert!(m < mu(CORTICAL_BONE, 50.0) && m > mu(CORTICAL_BONE, 60.0));
    }

    #[test]
    fn v2_beam_hardens_and_bone_contrast_falls_with_kvp() {
        let low = Spectrum::new(60.0, 2.5);
        let high = Spectrum::new(100.0, 2.5);
        let water = |mm: f32| Paths {
            muscle: mm,
            ..Paths::default()
        };
        // Beam hardening: the effective μ per mm of the second 100 mm of tissue is lower
        // than that of the first.
        let first = low.attenuation(&water(100.0));
        let second = low.attenuation(&water(200.0)) - first;
        assert!(second < 0.95 * first, "first {first}, second {second}");
        // 10 mm of bone behind 200 mm of tissue contrasts less at 100 kVp than at 60.
        let bone = |s: &Spectrum| {
            s.attenuation(&Paths {
                bone: 10.0,
                muscle: 190.0,
                ..Paths::default()
            }) - s.attenuation(&water(200.0))
        };
        assert!(bone(&high) < 0.8 * bone(&low));
    }

    fn body() -> Body {
        Body {
            midline: 90.0,
            half_width: 170.0,
            half_depth: 120.0,
            depth_center: 15.0,
            fat: 20.0,
            scale: 1.0,
        }
    }

    #[test]
    fn v2_soft_tissue_fills_the_perineum_and_the_gluteal_folds_curve() {
        let b = body();
        // On the midline, from the hips down past the trunk's end, there is always tissue
        // (the perineum): no air gap between the thighs.
        for y in (0..=220).step_by(10) {
            let (outer, inner) = b.chords(b.midline, y as f32);
            assert!(outer > 40.0 && inner <= outer, "y {y}: chords {outer}, {inner}");
        }
        // The trunk ends lowest under the middle of each buttock (both sides), 55 mm higher at
        // the cleft and the flank, and in between the fold curves down and up again.
        for side in [-1.0, 1.0] {
            let end = |u: f32| b.trunk_end(b.midline + side * u * b.half_width);
            assert!((end(0.5) - end(0.0) - 55.0).abs() < 1e-3 && (end(0.5) - end(1.0) - 55.0).abs() < 1e-3);
            assert!(end(0.25) > end(0.0) && end(0.25) < end(0.5) && end(0.75) < end(0.5) && end(0.75) > end(1.0));
        }
    }

    #[test]
    fn v2_projection_magnifies_and_maps_the_central_ray_to_the_centre() {
        let d = Detector {
            width: 101,
            height: 81,
            spacing: 1.0,
            center: (5.0, -3.0),
            source_distance: 1000.0,
            detector_z: 200.0,
        };
        let (x, y) = d.project(p3(5.0, -3.0, 0.0));
        // The central ray meets the middle of the middle pixel (pixel i spans i..i+1).
        assert!((x - 50.5).abs() < 1e-4 && (y - 40.5).abs() < 1e-4, "{x} {y}");
        let (x2, _) = d.project(p3(15.0, -3.0, 0.0));
        assert!((x2 - x - 10.0 * d.magnification()).abs() < 1e-3);
        // A pixel's own ray projects back onto that pixel.
        let source = d.source();
        let target = d.pixel_point(10.0, 70.0);
        let mid = source + (target - source) * 0.8;
        let (cx, cy) = d.project(mid);
        assert!((cx - 10.5).abs() < 1e-2 && (cy - 70.5).abs() < 1e-2);
    }
}
