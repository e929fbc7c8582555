//! Trabecular texture of the proximal femur: stretched noise following the principal
//! compressive group (from the weight-bearing dome of the head down to the calcar) and the
//! principal tensile group (arching along the neck), with Ward's triangle — where neither
//! runs — left sparse. Evaluated in the femur's own frame, so it moves with each fragment:
//! misaligned trabecular lines across a fracture come for free.

use crate::geometry::V3;

/// Texture parameters of one femur.
#[derive(Debug, Clone, Copy)]
pub struct Trabeculae {
    seed: u64,
    /// Unit 2-D directions (x, y) of the two groups.
    compressive: (f64, f64),
    tensile: (f64, f64),
    head: (f64, f64),
    calcar: (f64, f64),
    /// 1 = dense normal bone, lower = osteoporotic (fewer, fainter trabeculae).
    pub density: f64,
}

fn unit(x: f64, y: f64) -> (f64, f64) {
    let n = (x * x + y * y).sqrt();
    (x / n, y / n)
}

impl Trabeculae {
    pub fn new(seed: u64, neck_axis: V3, head_center: V3, density: f64) -> Self {
        let calcar = (12.0, 18.0);
        let dome = (head_center.0 - 8.0, head_center.1 - 20.0);
        Trabeculae {
            seed,
            compressive: unit(calcar.0 - dome.0, calcar.1 - dome.1),
            tensile: unit(neck_axis.0, neck_axis.1),
            head: (head_center.0, head_center.1),
            calcar,
            density,
        }
    }

    /// Texture value, roughly in [−1, 1], at local point `p`.
    pub fn value(&self, p: V3) -> f64 {
        let (x, y) = (p.0, p.1);
        // Weight of the compressive group: near the segment from the head to the calcar.
        let w_c = gaussian(distance_to_segment((x, y), self.head, self.calcar), 16.0);
        // Tensile group: a band along the neck axis, shifted superiorly, reaching the
        // lateral cortex below the greater trochanter.
        let along = x * self.tensile.0 + y * self.tensile.1;
        let across = -x * self.tensile.1 + y * self.tensile.0;
        let w_t = gaussian(across + 6.0, 13.0) * smooth_window(along, -25.0, 75.0);
        let streaks = |d: (f64, f64), salt: u64| {
            let u = (x * d.0 + y * d.1) / 7.0;
            let v = (-x * d.1 + y * d.0) / 0.9;
            value_noise(self.seed ^ salt, u, v)
        };
        let iso = value_noise(self.seed ^ 0x5bd1, x / 1.3, y / 1.3);
        let t = w_c * streaks(self.compressive, 0x9e37)
            + w_t * streaks(self.tensile, 0x7f4a)
            + 0.55 * (1.0 - w_c.max(w_t)) * iso;
        // Sparse bone (Ward's triangle, osteoporosis) loses contrast.
        t * (0.45 + 0.55 * w_c.max(w_t)) * self.density
    }
}

fn gaussian(d: f64, sigma: f64) -> f64 {
    (-0.5 * (d / sigma) * (d / sigma)).exp()
}

fn smooth_window(x: f64, lo: f64, hi: f64) -> f64 {
    let a = ((x - lo) / 10.0).clamp(0.0, 1.0);
    let b = ((hi - x) / 10.0).clamp(0.0, 1.0);
    a.min(b)
}

fn distance_to_segment(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let t = (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
    let (cx, cy) = (a.0 + t * dx - p.0, a.1 + t * dy - p.1);
    (cx * cx + cy * cy).sqrt()
}

fn hash(seed: u64, i: i64, j: i64) -> f64 {
    let mut h = seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (j as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// Smoothly interpolated lattice noise in [−1, 1].
pub fn value_noise(seed: u64, u: f64, v: f64) -> f64 {
    let (i, j) = (u.floor(), v.floor());
    let (fu, fv) = (u - i, v - j);
    let (su, sv) = (fu * fu * (3.0 - 2.0 * fu), fv * fv * (3.0 - 2.0 * fv));
    let (i, j) = (i as i64, j as i64);
    let a = hash(seed, i, j);
    let b = hash(seed, i + 1, j);
    let c = hash(seed, i, j + 1);
    let d = hash(seed, i + 1, j + 1);
    (a + (b - a) * su) + ((c + (d - c) * su) - (a + (b - a) * su)) * sv
}
