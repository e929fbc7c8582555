//! Signed-distance building blocks in millimetres, in `f32` (the projection evaluates them
//! hundreds of millions of times per run): vectors, rotations, primitives, smooth unions and a
//! seeded 3D value noise.
//!
//! A signed distance is negative inside. The primitives and smooth unions here are not all
//! exact distances (the tapered capsule and the ellipsoid are bounds that can be off by a few
//! per cent near their ends), so the ray marcher steps 0.85 of the distance.

use std::ops::{Add, Mul, Neg, Sub};

/// A point or direction, mm.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct P3 {
    pub x: f32,
    pub y: f32,
    pub z: f32,
}

/// Shorthand constructor.
pub const fn p3(x: f32, y: f32, z: f32) -> P3 {
    P3 { x, y, z }
}

impl P3 {
    pub fn dot(self, o: P3) -> f32 {
        self.x * o.x + self.y * o.y + self.z * o.z
    }
    pub fn cross(self, o: P3) -> P3 {
        p3(
            self.y * o.z - self.z * o.y,
            self.z * o.x - self.x * o.z,
            self.x * o.y - self.y * o.x,
        )
    }
    pub fn length(self) -> f32 {
        self.dot(self).sqrt()
    }
    pub fn unit(self) -> P3 {
        self * (1.0 / self.length())
    }
    pub fn mirrored_x(self, midline: f32) -> P3 {
        p3(2.0 * midline - self.x, self.y, self.z)
    }
}

impl Add for P3 {
    type Output = P3;
    fn add(self, o: P3) -> P3 {
        p3(self.x + o.x, self.y + o.y, self.z + o.z)
    }
}
impl Sub for P3 {
    type Output = P3;
    fn sub(self, o: P3) -> P3 {
        p3(self.x - o.x, self.y - o.y, self.z - o.z)
    }
}
impl Neg for P3 {
    type Output = P3;
    fn neg(self) -> P3 {
        p3(-self.x, -self.y, -self.z)
    }
}
impl Mul<f32> for P3 {
    type Output = P3;
    fn mul(self, s: f32) -> P3 {
        p3(self.x * s, self.y * s, self.z * s)
    }
}

/// A rotation matrix (rows).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rot(pub [P3; 3]);

impl Rot {
    pub const IDENTITY: Rot = Rot([p3(1.0, 0.0, 0.0), p3(0.0, 1.0, 0.0), p3(0.0, 0.0, 1.0)]);

    /// Rotation by `angle` radians about the unit `axis` (right-handed, Rodrigues).
    pub fn about(axis: P3, angle: f32) -> Rot {
        let a = axis.unit();
        let (s, c) = angle.sin_cos();
        let t = 1.0 - c;
        Rot([
            p3(t * a.x * a.x + c, t * a.x * a.y - s * a.z, t * a.x * a.z + s * a.y),
            p3(t * a.x * a.y + s * a.z, t * a.y * a.y + c, t * a.y * a.z - s * a.x),
            p3(t * a.x * a.z - s * a.y, t * a.y * a.z + s * a.x, t * a.z * a.z + c),
        ])
    }
    pub fn apply(&self, v: P3) -> P3 {
        p3(self.0[0].dot(v), self.0[1].dot(v), self.0[2].dot(v))
    }
    pub fn transpose(&self) -> Rot {
        let m = &self.0;
        Rot([
            p3(m[0].x, m[1].x, m[2].x),
            p3(m[0].y, m[1].y, m[2].y),
            p3(m[0].z, m[1].z, m[2].z),
        ])
    }
    /// `self · other` (apply `other` first).
    pub fn then(&self, other: &Rot) -> Rot {
        let t = other.transpose();
        Rot([
            p3(self.0[0].dot(t.0[0]), self.0[0].dot(t.0[1]), self.0[0].dot(t.0[2])),
            p3(self.0[1].dot(t.0[0]), self.0[1].dot(t.0[1]), self.0[1].dot(t.0[2])),
            p3(self.0[2].dot(t.0[0]), self.0[2].dot(t.0[1]), self.0[2].dot(t.0[2])),
        ])
    }
}

/// A rigid motion `p ↦ rotation·p + translation`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Motion {
    pub rotation: Rot,
    pub translation: P3,
}

impl Motion {
    pub const IDENTITY: Motion = Motion {
        rotation: Rot::IDENTITY,
        translation: p3(0.0, 0.0, 0.0),
    };
    /// Rotation about `pivot`, then a shift.
    pub fn pivoted(rotation: Rot, pivot: P3, shift: P3) -> Motion {
        Motion {
            rotation,
            translation: pivot + shift - rotation.apply(pivot),
        }
    }
    pub fn apply(&self, p: P3) -> P3 {
        self.rotation.apply(p) + self.translation
    }
    pub fn inverse_apply(&self, q: P3) -> P3 {
        self.rotation.transpose().apply(q - self.translation)
    }
    /// `self ∘ first`: `first` applied, then `self`.
    pub fn after(&self, first: &Motion) -> Motion {
        Motion {
            rotation: self.rotation.then(&first.rotation),
            translation: self.rotation.apply(first.translation) + self.translation,
        }
    }
}

/// Distance to a sphere.
pub fn sphere(p: P3, center: P3, radius: f32) -> f32 {
    (p - center).length() - radius
}

/// A capsule from `a` (radius `ra`) to `b` (radius `rb`) whose radius varies linearly along
/// the segment: a bound on the distance, exact when `ra == rb`.
#[derive(Debug, Clone, Copy)]
pub struct Capsule {
    a: P3,
    ab: P3,
    inv_len2: f32,
    ra: f32,
    rb: f32,
}

impl Capsule {
    pub fn new(a: P3, b: P3, ra: f32, rb: f32) -> Self {
        let ab = b - a;
        Capsule {
            a,
            ab,
            inv_len2: 1.0 / ab.dot(ab).max(1e-6),
            ra,
            rb,
        }
    }
    pub fn distance(&self, p: P3) -> f32 {
        let ap = p - self.a;
        let h = (ap.dot(self.ab) * self.inv_len2).clamp(0.0, 1.0);
        (ap - self.ab * h).length() - (self.ra + (self.rb - self.ra) * h)
    }
    /// Position along the axis, 0 at `a`, 1 at `b` (not clamped).
    pub fn along(&self, p: P3) -> f32 {
        (p - self.a).dot(self.ab) * self.inv_len2
    }
}

/// An ellipsoid with semi-axes `radii` along the rows of `frame` (world → local), as the
/// usual first-order bound `k0 (k0 − 1) / k1`.
#[derive(Debug, Clone, Copy)]
pub struct Ellipsoid {
    pub center: P3,
    pub frame: Rot,
    pub radii: P3,
    /// `1/radii` and `1/radii²` (the bound multiplies instead of dividing).
    inverse: P3,
    inverse2: P3,
}

impl Ellipsoid {
    pub fn new(center: P3, radii: P3) -> Self {
        Self::oriented(center, radii, Rot::IDENTITY)
    }
    pub fn oriented(center: P3, radii: P3, frame: Rot) -> Self {
        let inverse = p3(1.0 / radii.x, 1.0 / radii.y, 1.0 / radii.z);
        Ellipsoid {
            center,
            frame,
            radii,
            inverse,
            inverse2: p3(inverse.x * inverse.x, inverse.y * inverse.y, inverse.z * inverse.z),
        }
    }
    pub fn distance(&self, p: P3) -> f32 {
        let q = self.frame.apply(p - self.center);
        let k0 = p3(q.x * self.inverse.x, q.y * self.inverse.y, q.z * self.inverse.z).length();
        let k1 = p3(q.x * self.inverse2.x, q.y * self.inverse2.y, q.z * self.inverse2.z).length();
        ellipsoid_bound(k0, k1, self.radii)
    }
}

/// Ellipsoid bound in its own frame.
pub fn ellipsoid_local(q: P3, r: P3) -> f32 {
    let k0 = p3(q.x / r.x, q.y / r.y, q.z / r.z).length();
    let k1 = p3(q.x / (r.x * r.x), q.y / (r.y * r.y), q.z / (r.z * r.z)).length();
    ellipsoid_bound(k0, k1, r)
}

/// The bound from `k0 = |q/r|` and `k1 = |q/r²|` (the centre, where `k1` vanishes: minus the
/// smallest radius).
#[inline]
fn ellipsoid_bound(k0: f32, k1: f32, r: P3) -> f32 {
    if k1 < 1e-9 {
        return -r.x.min(r.y).min(r.z);
    }
    k0 * (k0 - 1.0) / k1
}

/// A primitive of a [`Blend`].
#[derive(Debug, Clone, Copy)]
pub enum Part {
    Capsule(Capsule),
    Ellipsoid(Ellipsoid),
}

impl Part {
    pub fn distance(&self, p: P3) -> f32 {
        match self {
            Part::Capsule(c) => c.distance(p),
            Part::Ellipsoid(e) => e.distance(p),
        }
    }
    /// An oriented box that holds the primitive.
    pub fn obb(&self) -> Obb {
        match self {
            Part::Capsule(c) => {
                let length = c.ab.length();
                let u = if length > 1e-6 {
                    c.ab * (1.0 / length)
                } else {
                    p3(0.0, 1.0, 0.0)
                };
                let helper = if u.x.abs() < 0.9 {
                    p3(1.0, 0.0, 0.0)
                } else {
                    p3(0.0, 1.0, 0.0)
                };
                let v = u.cross(helper).unit();
                let w = u.cross(v);
                let r = c.ra.max(c.rb);
                Obb {
                    center: c.a + c.ab * 0.5,
                    frame: Rot([u, v, w]),
                    half: p3(0.5 * length + r, r, r),
                }
            }
            Part::Ellipsoid(e) => Obb {
                center: e.center,
                frame: e.frame,
                half: e.radii,
            },
        }
    }
    /// A sphere that holds the primitive.
    fn bounding_sphere(&self) -> (P3, f32) {
        match self {
            Part::Capsule(c) => (c.a + c.ab * 0.5, 0.5 * c.ab.length() + c.ra.max(c.rb)),
            Part::Ellipsoid(e) => (e.center, e.radii.x.max(e.radii.y).max(e.radii.z)),
        }
    }
}

/// Primitives joined by smooth unions, each with its blend width; a primitive whose bounding
/// sphere is farther than the running distance plus its blend width cannot change the result
/// and is skipped (most of a bone is far from any one point).
#[derive(Debug, Clone, Default)]
pub struct Blend {
    /// (part, bounding-sphere centre and radius, blend width, its inverse)
    parts: Vec<(Part, P3, f32, f32, f32)>,
    boxes: Vec<Obb>,
}

impl Blend {
    pub fn add(&mut self, part: Part, blend: f32) {
        let (center, radius) = part.bounding_sphere();
        self.parts.push((part, center, radius, blend, 1.0 / blend));
        self.boxes.push(part.obb());
    }
    /// How many parts.
    pub fn len(&self) -> usize {
        self.parts.len()
    }
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
    /// Appends each part's interval along the ray (in the blend's frame) to `spans`.
    pub fn spans(&self, origin: P3, direction: P3, spans: &mut Spans) {
        for b in &self.boxes {
            spans.push(b.ray(origin, direction, SPAN_MARGIN));
        }
    }
    /// [`Blend::distance`] at the ray's point `p = origin + t·direction`, evaluating only
    /// the parts whose intervals (from [`Blend::spans`], starting at `spans.t[first]`) hold `t`.
    pub fn distance_on(&self, p: P3, start: f32, t: f32, spans: &Spans, first: usize) -> f32 {
        let mut d = start;
        for (i, (part, center, radius, blend, inv)) in self.parts.iter().enumerate() {
            if !spans.active(first + i, t) || beyond(p - *center, radius + d + blend) {
                continue;
            }
            d = smin_inv(d, part.distance(p), *blend, *inv);
        }
        d
    }
    /// The smooth union of `start` and every part at `p`.
    pub fn distance(&self, p: P3, start: f32) -> f32 {
        let mut d = start;
        for (part, center, radius, blend, inv) in &self.parts {
            if beyond(p - *center, radius + d + blend) {
                continue;
            }
            d = smin_inv(d, part.distance(p), *blend, *inv);
        }
        d
    }
}

/// `|v| > reach` without a square root.
#[inline]
fn beyond(v: P3, reach: f32) -> bool {
    reach < 0.0 || v.dot(v) > reach * reach
}

/// How close (mm) a ray must pass to a part's box for the part to be evaluated along it:
/// more than the widest blend, so a part left out could change neither the sign of a field
/// nor its fillets.
pub const SPAN_MARGIN: f32 = 17.0;
/// The most parts one solid may have.
pub const MAX_PARTS: usize = 24;

/// For one ray and one solid: per part, the interval of the ray's parameter `t` where the ray
/// lies within [`SPAN_MARGIN`] of the part's box (empty: `start > end`). Outside every
/// interval the solid's field is positive and at least about [`SPAN_MARGIN`], so the marcher
/// skips it, and a part is evaluated only inside its own interval.
#[derive(Debug, Clone, Copy)]
pub struct Spans {
    pub len: usize,
    pub t: [(f32, f32); MAX_PARTS],
}

impl Default for Spans {
    fn default() -> Self {
        Spans {
            len: 0,
            t: [(f32::INFINITY, f32::NEG_INFINITY); MAX_PARTS],
        }
    }
}

impl Spans {
    /// Appends a part's interval (`None`: the ray misses it).
    pub fn push(&mut self, span: Option<(f32, f32)>) {
        self.t[self.len] = span.unwrap_or((f32::INFINITY, f32::NEG_INFINITY));
        self.len += 1;
    }
    /// Part `i` matters at `t`.
    pub fn active(&self, i: usize, t: f32) -> bool {
        let (a, b) = self.t[i];
        a <= t && t <= b
    }
    /// The union of the parts' intervals clipped to `[t0, t1]`, in order (no allocation:
    /// this runs for every ray and solid).
    pub fn merged(&self, t0: f32, t1: f32) -> impl Iterator<Item = (f32, f32)> {
        let mut spans = [(0.0f32, 0.0f32); MAX_PARTS];
        let mut n = 0;
        for &(a, b) in &self.t[..self.len] {
            let (a, b) = (a.max(t0), b.min(t1));
            if a < b {
                // Insertion by start.
                let mut i = n;
                while i > 0 && spans[i - 1].0 > a {
                    spans[i] = spans[i - 1];
                    i -= 1;
                }
                spans[i] = (a, b);
                n += 1;
            }
        }
        let mut out = [(0.0f32, 0.0f32); MAX_PARTS];
        let mut m = 0;
        for &(a, b) in &spans[..n] {
            if m > 0 && a <= out[m - 1].1 {
                out[m - 1].1 = out[m - 1].1.max(b);
            } else {
                out[m] = (a, b);
                m += 1;
            }
        }
        out.into_iter().take(m)
    }
}

/// An oriented box: the rows of `frame` are its axes (world → local), `half` its half
/// extents.
#[derive(Debug, Clone, Copy)]
pub struct Obb {
    pub center: P3,
    pub frame: Rot,
    pub half: P3,
}

impl Obb {
    /// The interval of `origin + t·direction` within `margin` of the box, if any.
    pub fn ray(&self, origin: P3, direction: P3, margin: f32) -> Option<(f32, f32)> {
        // Most rays miss most boxes: the sphere around the box first (no rotation).
        let e = self.half + p3(margin, margin, margin);
        let v = self.center - origin;
        let along = v.dot(direction);
        if v.dot(v) - along * along / direction.dot(direction) > e.dot(e) {
            return None;
        }
        let o = self.frame.apply(origin - self.center);
        let d = self.frame.apply(direction);
        ray_box(o, inverse(d), -e, e)
    }
}

/// Componentwise `1/d`, with zero components made tiny instead (no NaN in the slabs).
pub fn inverse(d: P3) -> P3 {
    let inv = |x: f32| 1.0 / if x.abs() < 1e-12 { 1e-12 } else { x };
    p3(inv(d.x), inv(d.y), inv(d.z))
}

/// Polynomial smooth minimum with blend width `k` mm (Quílez): unions that fillet.
#[inline]
pub fn smin(a: f32, b: f32, k: f32) -> f32 {
    smin_inv(a, b, k, 1.0 / k)
}

/// [`smin`] with `1/k` given (no division where `k` is a stored width).
#[inline]
pub fn smin_inv(a: f32, b: f32, k: f32, inv_k: f32) -> f32 {
    let h = (k - (a - b).abs()).max(0.0) * inv_k;
    a.min(b) - h * h * k * 0.25
}

/// Smooth maximum (intersection / subtraction with a fillet).
pub fn smax(a: f32, b: f32, k: f32) -> f32 {
    -smin(-a, -b, k)
}

/// `x` mapped smoothly from 0 (at `e0`) to 1 (at `e1`).
pub fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// A 32-bit integer hash (lowbias32 by C. Wellons).
const fn lowbias32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb_352d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846c_a68b);
    h ^= h >> 16;
    h
}

/// The noise lattice's permutation of 0..256 (Fisher–Yates driven by [`lowbias32`]), twice
/// over so that `PERM[PERM[x] + y]` needs no wrap; computed at compile time, so the same on
/// every platform.
const PERM: [u8; 512] = {
    let mut p = [0u8; 512];
    let mut i = 0;
    while i < 256 {
        p[i] = i as u8;
        i += 1;
    }
    let mut i = 255;
    while i > 0 {
        let j = (lowbias32(i as u32 ^ 0x2c1b_3c6d) % (i as u32 + 1)) as usize;
        let t = p[i];
        p[i] = p[j];
        p[j] = t;
        i -= 1;
    }
    let mut i = 0;
    while i < 256 {
        p[256 + i] = p[i];
        i += 1;
    }
    p
};

/// The lattice's values: uniform draws in [−1, 1) less their mean (so the noise averages
/// zero), which leaves them within about [−0.95, 1.03].
const LATTICE: [f32; 256] = {
    let mut v = [0.0f32; 256];
    let mut sum = 0.0f32;
    let mut i = 0;
    while i < 256 {
        v[i] = (lowbias32(i as u32 ^ 0x6a09_e667) >> 8) as f32 * (2.0 / 16_777_216.0) - 1.0;
        sum += v[i];
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        v[i] -= sum / 256.0;
        i += 1;
    }
    v
};

/// `x.floor()` without the libm call that baseline x86-64 makes of it (no SSE4.1 round);
/// exact for |x| < 2³¹.
#[inline]
fn floor(x: f32) -> f32 {
    let i = x as i32 as f32;
    if i > x {
        i - 1.0
    } else {
        i
    }
}

/// Value noise within the lattice's range (about [−0.95, 1.03], zero mean) with unit lattice
/// spacing, smoothly interpolated; the same `seed` and point give the same value on every
/// platform. The lattice values come from a table by a permutation hash, so the field repeats
/// every 256 lattice units along each axis; the seed shifts the lattice by up to 128 units per
/// axis (about one seed pair in 2²⁴ shares a field).
pub fn noise(p: P3, seed: u32) -> f32 {
    let (fx, fy, fz) = (floor(p.x), floor(p.y), floor(p.z));
    let h = lowbias32(seed);
    let ix = (fx as i32).wrapping_add(h as i32) as usize & 255;
    let iy = (fy as i32).wrapping_add((h >> 8) as i32) as usize & 255;
    let iz = (fz as i32).wrapping_add((h >> 16) as i32) as usize & 255;
    let s = |t: f32| t * t * (3.0 - 2.0 * t);
    let (u, v, w) = (s(p.x - fx), s(p.y - fy), s(p.z - fz));
    let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
    let (x0, x1) = (PERM[ix] as usize, PERM[ix + 1] as usize);
    let (y00, y10) = (PERM[x0 + iy] as usize + iz, PERM[x0 + iy + 1] as usize + iz);
    let (y01, y11) = (PERM[x1 + iy] as usize + iz, PERM[x1 + iy + 1] as usize + iz);
    let c = |i: usize| LATTICE[PERM[i] as usize];
    let x_00 = lerp(c(y00), c(y01), u);
    let x_10 = lerp(c(y10), c(y11), u);
    let x_01 = lerp(c(y00 + 1), c(y01 + 1), u);
    let x_11 = lerp(c(y10 + 1), c(y11 + 1), u);
    lerp(lerp(x_00, x_10, v), lerp(x_01, x_11, v), w)
}

/// Two octaves of [`noise`].
pub fn fbm2(p: P3, seed: u32) -> f32 {
    0.67 * noise(p, seed) + 0.33 * noise(p * 2.03 + p3(17.1, 5.3, 9.7), seed ^ 0x5bd1)
}

/// A ray–axis-aligned-box intersection: the entry and exit distances, or `None`.
pub fn ray_box(origin: P3, inv_dir: P3, lo: P3, hi: P3) -> Option<(f32, f32)> {
    let slab = |o: f32, inv: f32, a: f32, b: f32| {
        let (t0, t1) = ((a - o) * inv, (b - o) * inv);
        (t0.min(t1), t0.max(t1))
    };
    let (x0, x1) = slab(origin.x, inv_dir.x, lo.x, hi.x);
    let (y0, y1) = slab(origin.y, inv_dir.y, lo.y, hi.y);
    let (z0, z1) = slab(origin.z, inv_dir.z, lo.z, hi.z);
    let t0 = x0.max(y0).max(z0).max(0.0);
    let t1 = x1.min(y1).min(z1);
    (t1 > t0).then_some((t0, t1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_primitives_measure_distance() {
        assert!((sphere(p3(10.0, 0.0, 0.0), p3(0.0, 0.0, 0.0), 4.0) - 6.0).abs() < 1e-6);
        let c = Capsule::new(p3(0.0, 0.0, 0.0), p3(0.0, 10.0, 0.0), 2.0, 2.0);
        assert!((c.distance(p3(5.0, 5.0, 0.0)) - 3.0).abs() < 1e-6);
        let e = Ellipsoid::new(p3(0.0, 0.0, 0.0), p3(10.0, 5.0, 5.0));
        assert!((e.distance(p3(12.0, 0.0, 0.0)) - 2.0).abs() < 1e-4);
        assert!(e.distance(p3(0.0, 4.0, 0.0)) < 0.0);
        let r = Rot::about(p3(0.0, 0.0, 1.0), std::f32::consts::FRAC_PI_2);
        let q = r.apply(p3(1.0, 0.0, 0.0));
        assert!((q.x).abs() < 1e-6 && (q.y - 1.0).abs() < 1e-6);
        let m = Motion::pivoted(r, p3(1.0, 2.0, 3.0), p3(0.5, 0.0, -1.0));
        let p = p3(4.0, -2.0, 7.0);
        let back = m.inverse_apply(m.apply(p));
        assert!((back - p).length() < 1e-5);
        // The pivot moves only by the shift.
        assert!((m.apply(p3(1.0, 2.0, 3.0)) - p3(1.5, 2.0, 2.0)).length() < 1e-5);
        let twice = m.after(&m);
        assert!((twice.apply(p) - m.apply(m.apply(p))).length() < 1e-4);
    }

    #[test]
    fn v2_noise_is_bounded_and_seeded() {
        let mut differ = 0;
        for i in 0..500 {
            let p = p3(i as f32 * 0.37, i as f32 * 0.11, -(i as f32) * 0.23);
            let a = noise(p, 1);
            assert!((-0.96..=1.04).contains(&a));
            assert_eq!(a, noise(p, 1));
            if (a - noise(p, 2)).abs() > 1e-3 {
                differ += 1;
            }
        }
        assert!(
            differ > 400,
            "seeds should give different fields ({differ} of 500 differ)"
        );
        // The lattice averages zero, so sums of octaves do not drift.
        assert!(LATTICE.iter().sum::<f32>().abs() < 1e-3);
        assert!(LATTICE.iter().all(|v| (-0.96..=1.04).contains(v)));
    }
}
