//! Vectors, rigid transforms, rays and the analytic chord intervals of convex primitives.
//!
//! Everything is in millimetres. A ray is `origin + t·direction` with a unit direction, so
//! interval lengths are path lengths in mm.

use std::ops::{Add, Mul, Neg, Sub};

/// A 3-vector.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct V3(pub f64, pub f64, pub f64);

impl V3 {
    pub fn dot(self, o: V3) -> f64 {
        self.0 * o.0 + self.1 * o.1 + self.2 * o.2
    }
    pub fn cross(self, o: V3) -> V3 {
        V3(
            self.1 * o.2 - self.2 * o.1,
            self.2 * o.0 - self.0 * o.2,
            self.0 * o.1 - self.1 * o.0,
        )
    }
    pub fn norm(self) -> f64 {
        self.dot(self).sqrt()
    }
    pub fn unit(self) -> V3 {
        self * (1.0 / self.norm())
    }
    pub fn scale(self, s: V3) -> V3 {
        V3(self.0 * s.0, self.1 * s.1, self.2 * s.2)
    }
}

impl Add for V3 {
    type Output = V3;
    fn add(self, o: V3) -> V3 {
        V3(self.0 + o.0, self.1 + o.1, self.2 + o.2)
    }
}
impl Sub for V3 {
    type Output = V3;
    fn sub(self, o: V3) -> V3 {
        V3(self.0 - o.0, self.1 - o.1, self.2 - o.2)
    }
}
impl Neg for V3 {
    type Output = V3;
    fn neg(self) -> V3 {
        V3(-self.0, -self.1, -self.2)
    }
}
impl Mul<f64> for V3 {
    type Output = V3;
    fn mul(self, s: f64) -> V3 {
        V3(self.0 * s, self.1 * s, self.2 * s)
    }
}

/// A 3×3 matrix, rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct M3(pub [V3; 3]);

impl M3 {
    pub const IDENTITY: M3 = M3([V3(1.0, 0.0, 0.0), V3(0.0, 1.0, 0.0), V3(0.0, 0.0, 1.0)]);

    pub fn apply(&self, v: V3) -> V3 {
        V3(self.0[0].dot(v), self.0[1].dot(v), self.0[2].dot(v))
    }
    pub fn transpose(&self) -> M3 {
        let [a, b, c] = self.0;
        M3([V3(a.0, b.0, c.0), V3(a.1, b.1, c.1), V3(a.2, b.2, c.2)])
    }
    pub fn mul(&self, o: &M3) -> M3 {
        let t = o.transpose();
        M3([
            V3(self.0[0].dot(t.0[0]), self.0[0].dot(t.0[1]), self.0[0].dot(t.0[2])),
            V3(self.0[1].dot(t.0[0]), self.0[1].dot(t.0[1]), self.0[1].dot(t.0[2])),
            V3(self.0[2].dot(t.0[0]), self.0[2].dot(t.0[1]), self.0[2].dot(t.0[2])),
        ])
    }
    /// Rotation by `angle` radians about a unit `axis` (right-handed).
    pub fn rotation(axis: V3, angle: f64) -> M3 {
        let V3(x, y, z) = axis.unit();
        let (s, c) = angle.sin_cos();
        let t = 1.0 - c;
        M3([
            V3(t * x * x + c, t * x * y - s * z, t * x * z + s * y),
            V3(t * x * y + s * z, t * y * y + c, t * y * z - s * x),
            V3(t * x * z - s * y, t * y * z + s * x, t * z * z + c),
        ])
    }
    /// The rotation taking local z onto `axis` (any such rotation).
    pub fn z_onto(axis: V3) -> M3 {
        let z = axis.unit();
        let helper = if z.0.abs() < 0.9 {
            V3(1.0, 0.0, 0.0)
        } else {
            V3(0.0, 1.0, 0.0)
        };
        let x = helper.cross(z).unit();
        let y = z.cross(x);
        // Columns x, y, z: local → world.
        M3([x, y, z]).transpose()
    }
}

/// A rigid motion `p ↦ rotation·(p − pivot) + pivot + translation`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rigid {
    pub rotation: M3,
    pub pivot: V3,
    pub translation: V3,
}

impl Rigid {
    pub const IDENTITY: Rigid = Rigid {
        rotation: M3::IDENTITY,
        pivot: V3(0.0, 0.0, 0.0),
        translation: V3(0.0, 0.0, 0.0),
    };

    pub fn apply(&self, p: V3) -> V3 {
        self.rotation.apply(p - self.pivot) + self.pivot + self.translation
    }
    pub fn apply_direction(&self, d: V3) -> V3 {
        self.rotation.apply(d)
    }
    pub fn inverse_point(&self, p: V3) -> V3 {
        self.rotation.transpose().apply(p - self.pivot - self.translation) + self.pivot
    }
    pub fn inverse_direction(&self, d: V3) -> V3 {
        self.rotation.transpose().apply(d)
    }
    /// `self` after `first`: p ↦ self(first(p)).
    pub fn then(&self, first: &Rigid) -> Rigid {
        // self(first(p)) = R2(R1(p − c1) + c1 + t1 − c2) + c2 + t2; express with pivot 0.
        let rotation = self.rotation.mul(&first.rotation);
        let origin = self.apply(first.apply(V3::default()));
        Rigid {
            rotation,
            pivot: V3::default(),
            translation: origin,
        }
    }
}

/// A line `origin + t·direction`.
#[derive(Debug, Clone, Copy)]
pub struct Ray {
    pub origin: V3,
    pub direction: V3,
}

/// A closed interval of the ray parameter.
pub type Span = (f64, f64);

/// Up to `N` disjoint spans, sorted — a union of chords, kept on the stack.
#[derive(Debug, Clone, Copy)]
pub struct Spans {
    items: [Span; 16],
    len: usize,
}

impl Default for Spans {
    fn default() -> Self {
        Spans {
            items: [(0.0, 0.0); 16],
            len: 0,
        }
    }
}

impl Spans {
    pub fn as_slice(&self) -> &[Span] {
        &self.items[..self.len]
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn total(&self) -> f64 {
        self.as_slice().iter().map(|(a, b)| b - a).sum()
    }
    /// Adds a span, merging overlaps (in place; spans stay sorted and disjoint).
    pub fn add(&mut self, span: Span) {
        if span.1 <= span.0 {
            return;
        }
        let (mut lo, mut hi) = span;
        // First span that ends at or after `lo`.
        let mut first = 0;
        while first < self.len && self.items[first].1 < lo {
            first += 1;
        }
        // Spans from `first` that start at or before `hi` merge with it.
        let mut last = first;
        while last < self.len && self.items[last].0 <= hi {
            lo = lo.min(self.items[last].0);
            hi = hi.max(self.items[last].1);
            last += 1;
        }
        let merged = last - first;
        if merged == 0 {
            if self.len == self.items.len() {
                return;
            }
            self.items.copy_within(first..self.len, first + 1);
            self.len += 1;
        } else if merged > 1 {
            self.items.copy_within(last..self.len, first + 1);
            self.len -= merged - 1;
        }
        self.items[first] = (lo, hi);
    }
    fn push(&mut self, span: Span) {
        if self.len < self.items.len() {
            self.items[self.len] = span;
            self.len += 1;
        }
    }
    /// The part of these spans inside `span`.
    pub fn clip(&self, span: Span) -> Spans {
        let mut out = Spans::default();
        for &(a, b) in self.as_slice() {
            let (lo, hi) = (a.max(span.0), b.min(span.1));
            if hi > lo {
                out.push((lo, hi));
            }
        }
        out
    }
    /// These spans minus `other`.
    pub fn subtract(&self, other: &Spans) -> Spans {
        let mut current = *self;
        for &(c, d) in other.as_slice() {
            let mut out = Spans::default();
            for &(a, b) in current.as_slice() {
                if d <= a || c >= b {
                    out.push((a, b));
                } else {
                    if c > a {
                        out.push((a, c));
                    }
                    if d < b {
                        out.push((d, b));
                    }
                }
            }
            current = out;
        }
        current
    }
}

/// Convex primitives with an analytic chord.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// `|M(p − center)| ≤ 1` where `M = diag(1/semi_axes)·Rᵀ`.
    Ellipsoid { center: V3, to_unit: M3 },
    /// Elliptic cylinder: in the frame `to_unit·(p − center)`, `x² + y² ≤ 1` and `|z| ≤ half`
    /// (z not scaled).
    Cylinder { center: V3, to_unit: M3, half: f64 },
}

impl Shape {
    /// An ellipsoid with semi-axes along the columns of `frame` (local → world).
    pub fn ellipsoid(center: V3, semi_axes: V3, frame: M3) -> Shape {
        let inv = frame.transpose();
        let to_unit = M3([
            inv.0[0] * (1.0 / semi_axes.0),
            inv.0[1] * (1.0 / semi_axes.1),
            inv.0[2] * (1.0 / semi_axes.2),
        ]);
        Shape::Ellipsoid { center, to_unit }
    }
    pub fn sphere(center: V3, radius: f64) -> Shape {
        Shape::ellipsoid(center, V3(radius, radius, radius), M3::IDENTITY)
    }
    /// A cylinder from `a` to `b` with radii `(r1, r2)` across it.
    pub fn cylinder(a: V3, b: V3, radius: f64, radius2: f64) -> Shape {
        let axis = b - a;
        let frame = M3::z_onto(axis);
        let inv = frame.transpose();
        let to_unit = M3([inv.0[0] * (1.0 / radius), inv.0[1] * (1.0 / radius2), inv.0[2]]);
        Shape::Cylinder {
            center: (a + b) * 0.5,
            to_unit,
            half: axis.norm() / 2.0,
        }
    }

    /// The shape after the rigid motion `motion`.
    pub fn moved(&self, motion: &Rigid) -> Shape {
        let inverse = motion.rotation.transpose();
        match self {
            Shape::Ellipsoid { center, to_unit } => Shape::Ellipsoid {
                center: motion.apply(*center),
                to_unit: to_unit.mul(&inverse),
            },
            Shape::Cylinder { center, to_unit, half } => Shape::Cylinder {
                center: motion.apply(*center),
                to_unit: to_unit.mul(&inverse),
                half: *half,
            },
        }
    }

    /// The chord of the ray through the shape.
    pub fn chord(&self, ray: &Ray) -> Option<Span> {
        match self {
            Shape::Ellipsoid { center, to_unit } => {
                let o = to_unit.apply(ray.origin - *center);
                let d = to_unit.apply(ray.direction);
                quadratic(d.dot(d), 2.0 * o.dot(d), o.dot(o) - 1.0)
            }
            Shape::Cylinder { center, to_unit, half } => {
                let o = to_unit.apply(ray.origin - *center);
                let d = to_unit.apply(ray.direction);
                cylinder_chord(o, d, d.0 * d.0 + d.1 * d.1, *half)
            }
        }
    }

    /// True when `p` is inside.
    pub fn contains(&self, p: V3) -> bool {
        match self {
            Shape::Ellipsoid { center, to_unit } => {
                let q = to_unit.apply(p - *center);
                q.dot(q) <= 1.0
            }
            Shape::Cylinder { center, to_unit, half } => {
                let q = to_unit.apply(p - *center);
                q.0 * q.0 + q.1 * q.1 <= 1.0 && q.2.abs() <= *half
            }
        }
    }

    /// A bounding sphere `(centre, radius)`.
    pub fn bounds(&self) -> (V3, f64) {
        // The largest semi-axis is the inverse of the smallest singular value of to_unit;
        // bound it by the inverse of the smallest row norm's… simpler: sample the frame.
        match self {
            Shape::Ellipsoid { center, to_unit } => (*center, max_extent(to_unit)),
            Shape::Cylinder { center, to_unit, half } => {
                let r = max_extent(&M3([to_unit.0[0], to_unit.0[1], V3(0.0, 0.0, 0.0)]));
                (*center, (r * r + half * half).sqrt())
            }
        }
    }
}

/// Largest semi-axis of `to_unit = diag(1/s)·Rᵀ`: rows are the axes scaled by `1/s`.
fn max_extent(to_unit: &M3) -> f64 {
    to_unit
        .0
        .iter()
        .map(|row| if row.norm() > 0.0 { 1.0 / row.norm() } else { 0.0 })
        .fold(0.0, f64::max)
}

/// Chord of the unit cylinder `x² + y² ≤ 1, |z| ≤ half` for the line `o + t·d`, with
/// `a = d.x² + d.y²` precomputed.
#[inline]
pub fn cylinder_chord(o: V3, d: V3, a: f64, half: f64) -> Option<Span> {
    let (mut lo, mut hi) = if a < 1e-12 {
        if o.0 * o.0 + o.1 * o.1 <= 1.0 {
            (f64::NEG_INFINITY, f64::INFINITY)
        } else {
            return None;
        }
    } else {
        quadratic(a, 2.0 * (o.0 * d.0 + o.1 * d.1), o.0 * o.0 + o.1 * o.1 - 1.0)?
    };
    if d.2.abs() < 1e-12 {
        if o.2.abs() > half {
            return None;
        }
    } else {
        let (t1, t2) = ((-half - o.2) / d.2, (half - o.2) / d.2);
        lo = lo.max(t1.min(t2));
        hi = hi.min(t1.max(t2));
    }
    (hi > lo).then_some((lo, hi))
}

/// The roots of `a·t² + b·t + c`, when two.
#[inline]
pub fn quadratic(a: f64, b: f64, c: f64) -> Option<Span> {
    let disc = b * b - 4.0 * a * c;
    if disc <= 0.0 || a <= 0.0 {
        return None;
    }
    let root = disc.sqrt();
    Some(((-b - root) / (2.0 * a), (-b + root) / (2.0 * a)))
}

/// A half-space `normal·(p − point) ≤ 0`.
#[derive(Debug, Clone, Copy)]
pub struct HalfSpace {
    pub point: V3,
    pub normal: V3,
}

impl HalfSpace {
    pub fn contains(&self, p: V3) -> bool {
        self.normal.dot(p - self.point) <= 0.0
    }
    pub fn flipped(&self) -> HalfSpace {
        HalfSpace {
            point: self.point,
            normal: -self.normal,
        }
    }
    /// The ray parameters inside.
    pub fn span(&self, ray: &Ray) -> Option<Span> {
        let nd = self.normal.dot(ray.direction);
        let s = self.normal.dot(self.point - ray.origin);
        if nd.abs() < 1e-12 {
            return (s >= 0.0).then_some((f64::NEG_INFINITY, f64::INFINITY));
        }
        let t = s / nd;
        Some(if nd > 0.0 {
            (f64::NEG_INFINITY, t)
        } else {
            (t, f64::INFINITY)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-9;

    #[test]
    fn chords_of_sphere_and_cylinder() {
        let ray = Ray {
            origin: V3(3.0, 0.0, -100.0),
            direction: V3(0.0, 0.0, 1.0),
        };
        let (a, b) = Shape::sphere(V3(0.0, 0.0, 0.0), 5.0).chord(&ray).unwrap();
        assert!((b - a - 8.0).abs() < EPS); // 2·√(25 − 9)
                                            // A cylinder along x, radius 5, length 20: the same chord across it.
        let cyl = Shape::cylinder(V3(-10.0, 0.0, 0.0), V3(10.0, 0.0, 0.0), 5.0, 5.0);
        let (a, b) = cyl.chord(&ray).unwrap();
        assert!((b - a - 10.0).abs() < EPS, "{}", b - a);
        let outside = Ray {
            origin: V3(11.0, 0.0, -100.0),
            direction: V3(0.0, 0.0, 1.0),
        };
        assert!(cyl.chord(&outside).is_none());
        // Along its axis: the length.
        let along = Ray {
            origin: V3(-50.0, 1.0, 0.0),
            direction: V3(1.0, 0.0, 0.0),
        };
        let (a, b) = cyl.chord(&along).unwrap();
        assert!((b - a - 20.0).abs() < EPS);
        assert!(cyl.contains(V3(9.0, 3.0, 3.0)) && !cyl.contains(V3(9.0, 4.0, 4.0)));
    }

    #[test]
    fn spans_union_clip_subtract() {
        let mut s = Spans::default();
        s.add((0.0, 2.0));
        s.add((5.0, 6.0));
        s.add((1.0, 3.0));
        assert_eq!(s.as_slice(), &[(0.0, 3.0), (5.0, 6.0)]);
        assert!((s.total() - 4.0).abs() < EPS);
        assert_eq!(s.clip((2.0, 5.5)).as_slice(), &[(2.0, 3.0), (5.0, 5.5)]);
        let mut hole = Spans::default();
        hole.add((1.0, 2.0));
        assert_eq!(s.subtract(&hole).as_slice(), &[(0.0, 1.0), (2.0, 3.0), (5.0, 6.0)]);
    }

    #[test]
    fn rigid_motions_compose_and_invert() {
        let a = Rigid {
            rotation: M3::rotation(V3(0.0, 0.0, 1.0), 0.3),
            pivot: V3(1.0, 2.0, 0.0),
            translation: V3(0.0, 5.0, 0.0),
        };
        let b = Rigid {
            rotation: M3::rotation(V3(1.0, 0.0, 0.0), -0.2),
            pivot: V3(0.0, 0.0, 3.0),
            translation: V3(1.0, 0.0, 0.0),
        };
        let p = V3(3.0, -1.0, 2.0);
        let composed = b.then(&a);
        let direct = b.apply(a.apply(p));
        assert!((composed.apply(p) - direct).norm() < EPS);
        assert!((a.inverse_point(a.apply(p)) - p).norm() < EPS);
        let h = HalfSpace {
            point: V3(0.0, 0.0, 1.0),
            normal: V3(0.0, 0.0, 1.0),
        };
        let ray = Ray {
            origin: V3(0.0, 0.0, -10.0),
            direction: V3(0.0, 0.0, 1.0),
        };
        assert_eq!(h.span(&ray), Some((f64::NEG_INFINITY, 11.0)));
    }
}
