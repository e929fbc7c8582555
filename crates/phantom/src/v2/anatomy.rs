//! The v2 patient in 3D: both proximal femora, both hemipelves, the sacrum and the lower
//! lumbar spine as smooth signed-distance fields, each bone a cortical shell of varying thickness around cancellous
//! bone whose bone volume fraction carries a 3D trabecular texture; bowel gas as lumpy
//! pockets. Soft tissue (fat and muscle) is analytic and lives in [`super::project`].
//!
//! World frame as v1's (`crate::anatomy`): millimetres, x to the image's right (the
//! simulated hip is drawn as a right hip, so x is medial and the pelvic midline is at
//! x = `half_pelvis`), y down (towards the feet), z along the beam (anterior → posterior).
//! The simulated hip's joint centre is the origin.
//!
//! Proportions (adult, scaled by `scale`): femoral head diameter 40–55 mm, neck-shaft angle
//! 118–142°, femoral offset 32–50 mm, anteversion −2–28° (v1's draws, kept so the manifest's
//! columns stay true), neck waist about two thirds of the head's diameter, shaft 27–29 mm wide
//! with a 5–6 mm diaphyseal cortex thinning to about 1 mm in the head and 1.5 mm in the upper
//! neck, a thick (≈ 4 mm) calcar; pelvis: hip centres 156–216 mm apart, acetabulum opening
//! about 45° inferolaterally, the obturator foramen between the rami, iliac crest about
//! 125–130 mm above the hip centre (at the L4–L5 disc), S1 under it.

use super::sdf::{
    ellipsoid_local, fbm2, noise, p3, smax, smin, smoothstep, sphere, Blend, Capsule, Ellipsoid, Motion, Obb, Part,
    Rot, Spans, MAX_PARTS, P3, SPAN_MARGIN,
};
use crate::anatomy::{normal, PatientParams};
use rand::{Rng, SeedableRng};
use std::sync::Arc;

/// What a solid is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Material {
    /// Cortical shell around cancellous bone.
    Bone,
    /// Air in the bowel (replaces soft tissue).
    Gas,
}

/// One evaluation of a solid at a world point.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Signed distance to the outer surface, mm (negative inside).
    pub distance: f32,
    /// Local cortical thickness, mm (0 for gas).
    pub cortex: f32,
    /// The point lies in the proximal femur region that a `hip` box covers.
    pub hip: bool,
}

/// A solid the projector marches through.
pub trait Solid: Send + Sync {
    fn material(&self) -> Material;
    /// World axis-aligned bounds `(low, high)`.
    fn bounds(&self) -> (P3, P3);
    fn sample(&self, p: P3) -> Sample;
    /// Each part's interval along the world ray `origin + t·direction` (see [`Spans`]).
    fn spans(&self, origin: P3, direction: P3) -> Spans;
    /// [`Solid::sample`] at the ray's point `p` (parameter `t`), evaluating only the parts
    /// whose intervals hold `t`: the same field wherever it is below [`SPAN_MARGIN`].
    fn sample_on(&self, p: P3, t: f32, spans: &Spans) -> Sample;
    /// Bone volume fraction of the cancellous interior at `p` (texture included), 0–1.
    fn bone_fraction(&self, p: P3) -> f32;
    /// Which hip box (0: the simulated hip, 1: the other) this solid's hip region belongs to.
    fn hip_index(&self) -> Option<usize> {
        None
    }
}

/// Everything about the v2 patient beyond v1's [`PatientParams`] (which v2 reuses).
#[derive(Debug, Clone, PartialEq)]
pub struct Params3 {
    pub scale: f32,
    pub head_radius: f32,
    pub neck_shaft_angle: f32,
    pub anteversion: f32,
    /// Perpendicular distance from the head centre to the shaft axis, mm.
    pub offset: f32,
    pub osteoporosis: f32,
    pub half_pelvis: f32,
    /// Lateral flare of the iliac wings (1 = average).
    pub iliac_flare: f32,
    pub body_half_width: f32,
    pub body_half_depth: f32,
    pub fat: f32,
    /// Coronal tilt of the simulated femur, degrees (+ abduction).
    pub abduction: f32,
    /// Rotation of the simulated leg about the vertical, degrees (+ external), after the
    /// usual 12° of internal rotation for an AP hip.
    pub leg_rotation: f32,
    pub other_abduction: f32,
    pub other_leg_rotation: f32,
    pub gas_pockets: u32,
    pub texture_seed: u32,
    /// Seed of the v2-only draws.
    pub seed: u64,
}

impl Params3 {
    /// v1's patient plus the draws v2 adds (from the patient's texture seed, so the same
    /// patient keeps them across repeat images).
    pub fn new(p: &PatientParams) -> Self {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(p.texture_seed ^ 0x7632_7632_7632_7632);
        let scale = p.scale as f32;
        let mut n = || normal(&mut rng) as f32;
        Params3 {
            scale,
            head_radius: p.head_radius as f32,
            neck_shaft_angle: p.neck_shaft_angle as f32,
            anteversion: p.anteversion as f32,
            offset: ((41.0 + 4.0 * n()) * scale).clamp(32.0, 50.0),
            osteoporosis: p.osteoporosis as f32,
            half_pelvis: p.half_pelvis as f32,
            iliac_flare: (1.0 + 0.07 * n()).clamp(0.85, 1.15),
            body_half_width: p.body_half_width as f32,
            body_half_depth: p.body_half_depth as f32,
            fat: p.fat as f32,
            abduction: p.abduction as f32,
            leg_rotation: p.leg_rotation as f32 - 12.0,
            other_abduction: (3.0 + 4.0 * n()).clamp(-6.0, 12.0),
            other_leg_rotation: (-12.0 + 8.0 * n()).clamp(-30.0, 15.0),
            gas_pockets: p.gas_pockets,
            texture_seed: p.texture_seed as u32,
            seed: rng.gen(),
        }
    }
}

/// A proximal femur in its own frame: origin at the head centre, x medial, y distal, z
/// posterior (a right femur; the other one is mirrored).
#[derive(Debug, Clone)]
pub struct FemurModel {
    pub head_radius: f32,
    /// Unit neck axis pointing to the head.
    pub neck_axis: P3,
    /// Where the neck axis meets the shaft axis.
    pub junction: P3,
    neck_head: Capsule,
    neck_base: Capsule,
    metaphysis: Capsule,
    shaft: Capsule,
    greater: Ellipsoid,
    lesser: Ellipsoid,
    pub lesser_center: P3,
    pub greater_center: P3,
    crest: Capsule,
    /// The parts above, blended.
    parts: Blend,
    /// Unit vector across the neck towards the calcar (inferomedial).
    calcar_direction: P3,
    ward_center: P3,
    compressive: P3,
    tensile: P3,
    /// Cortex thinning with osteoporosis (1 = none).
    thin: f32,
    bone_fraction: f32,
    seed: u32,
    pub scale: f32,
    /// Local y below which the shaft is outside the `hip` box.
    pub hip_limit_y: f32,
}

impl FemurModel {
    pub fn new(p: &Params3, seed: u32) -> Self {
        let s = p.scale;
        let r = p.head_radius;
        let theta = p.neck_shaft_angle.to_radians();
        let av = p.anteversion.to_radians();
        let neck_axis = p3(theta.sin() * av.cos(), theta.cos(), -theta.sin() * av.sin());
        let length = p.offset / theta.sin();
        let junction = neck_axis * -length;
        let at = |v: P3| junction + v * s;
        let waist = junction + neck_axis * (0.45 * length);
        let lesser_center = at(p3(14.0, 32.0, 9.0));
        let greater_center = at(p3(-15.0, -12.0, 7.0));
        let calcar_direction = p3(-neck_axis.y, neck_axis.x, 0.0).unit();
        let mut model = FemurModel {
            head_radius: r,
            neck_axis,
            junction,
            neck_head: Capsule::new(p3(0.0, 0.0, 0.0) - neck_axis * (0.2 * r), waist, 0.8 * r, 0.66 * r),
            neck_base: Capsule::new(waist, junction + neck_axis * (0.05 * length), 0.66 * r, 0.92 * r),
            metaphysis: Capsule::new(at(p3(-3.0, -4.0, 2.0)), at(p3(0.0, 45.0, 0.0)), 19.0 * s, 16.0 * s),
            shaft: Capsule::new(at(p3(0.0, 30.0, 0.0)), at(p3(0.0, 260.0, 0.0)), 16.0 * s, 13.5 * s),
            greater: Ellipsoid::oriented(
                greater_center,
                p3(13.0 * s, 24.0 * s, 17.0 * s),
                Rot::about(p3(0.0, 0.0, 1.0), 0.17),
            ),
            lesser: Ellipsoid::new(lesser_center, p3(8.0 * s, 11.0 * s, 8.0 * s)),
            lesser_center,
            greater_center,
            crest: Capsule::new(
                greater_center + p3(3.0, 10.0, 6.0) * s,
                lesser_center + p3(-4.0, -2.0, 2.0) * s,
                8.0 * s,
                7.0 * s,
            ),
            calcar_direction,
            ward_center: junction + neck_axis * (0.3 * length) + calcar_direction * (0.1 * r),
            // Compressive group: weight-bearing dome of the head down to the calcar; tensile
            // group: along the neck, arching up towards the greater trochanter.
            compressive: (at(p3(12.0, 14.0, 0.0)) - p3(-0.2 * r, -r, 0.0)).unit(),
            tensile: (neck_axis + p3(0.0, -0.3, 0.0)).unit(),
            thin: 1.0 - 0.45 * p.osteoporosis,
            bone_fraction: 0.32 * (1.0 - 0.55 * p.osteoporosis),
            seed,
            scale: s,
            hip_limit_y: lesser_center.y + 11.0 * s + 8.0 * s,
            parts: Blend::default(),
        };
        let mut parts = Blend::default();
        parts.add(Part::Capsule(model.neck_head), 6.0);
        parts.add(Part::Capsule(model.neck_base), 10.0);
        parts.add(Part::Capsule(model.metaphysis), 12.0);
        parts.add(Part::Capsule(model.shaft), 15.0);
        parts.add(Part::Ellipsoid(model.greater), 10.0);
        parts.add(Part::Ellipsoid(model.lesser), 6.0);
        parts.add(Part::Capsule(model.crest), 6.0);
        model.parts = parts;
        model
    }

    /// Signed distance in the femur's frame.
    pub fn distance(&self, q: P3) -> f32 {
        self.parts.distance(q, sphere(q, p3(0.0, 0.0, 0.0), self.head_radius))
    }

    /// The head's and each part's interval along a ray in the femur's frame.
    pub fn spans(&self, origin: P3, direction: P3) -> Spans {
        let mut spans = Spans::default();
        let head = Obb {
            center: p3(0.0, 0.0, 0.0),
            frame: Rot::IDENTITY,
            half: p3(self.head_radius, self.head_radius, self.head_radius),
        };
        spans.push(head.ray(origin, direction, SPAN_MARGIN));
        self.parts.spans(origin, direction, &mut spans);
        spans
    }

    /// [`FemurModel::distance`] at the ray's point `q` (parameter `t`).
    pub fn distance_on(&self, q: P3, t: f32, spans: &Spans) -> f32 {
        let head = if spans.active(0, t) {
            sphere(q, p3(0.0, 0.0, 0.0), self.head_radius)
        } else {
            SPAN_MARGIN
        };
        self.parts.distance_on(q, head, t, spans, 1)
    }

    /// Cortical thickness, mm: ≈ 1.3 mm in the head and upper neck, a thick calcar, rising
    /// to ≈ 6 mm in the diaphysis; all thinner with osteoporosis.
    pub fn cortex(&self, q: P3) -> f32 {
        let below = q.y - self.junction.y;
        let across = q.dot(self.calcar_direction);
        let along = -q.dot(self.neck_axis);
        let calcar = smoothstep(0.25, 0.6, across / self.head_radius)
            * smoothstep(0.5 * self.head_radius, self.head_radius, along);
        let proximal = (1.3 + 2.8 * calcar) * self.thin;
        let diaphysis = 6.0 * self.scale * self.thin;
        (proximal + (diaphysis - proximal) * smoothstep(25.0, 80.0, below)).max(0.7)
    }

    /// Bone volume fraction: two oriented groups of trabecular rods (stretched noise) in the
    /// head and neck, sparse in Ward's triangle and the greater trochanter, vertical in the
    /// intertrochanteric region, almost nothing in the medullary canal.
    pub fn bone_fraction(&self, q: P3) -> f32 {
        let below = q.y - self.junction.y;
        let canal = 1.0 - 0.92 * smoothstep(40.0, 90.0, below);
        let ward = 1.0 - 0.65 * (1.0 - smoothstep(0.15, 0.45, (q - self.ward_center).length() / self.head_radius));
        let trochanter = 1.0 - 0.4 * (1.0 - smoothstep(0.6, 1.1, self.greater_weight(q)));
        let rods = |direction: P3, seed: u32| {
            // Rods ~1.2 mm apart across, ~7 mm long along the group's direction.
            let along = q.dot(direction);
            let across = q - direction * along;
            let n = noise(across * 0.8 + direction * (along * 0.14), seed);
            smoothstep(-0.05, 0.55, n)
        };
        let head_neck = 1.0 - smoothstep(10.0, 40.0, below);
        // Each group only where it has weight (the noise is most of the cost).
        let (compressive, tensile) = if head_neck > 0.0 {
            (
                rods(self.compressive, self.seed),
                rods(self.tensile, self.seed ^ 0x9e37),
            )
        } else {
            (0.0, 0.0)
        };
        let vertical = if head_neck < 1.0 {
            rods(p3(0.0, 1.0, 0.0), self.seed ^ 0x51ed)
        } else {
            0.0
        };
        let texture = head_neck * (0.6 * compressive + 0.4 * tensile) + (1.0 - head_neck) * vertical;
        (self.bone_fraction * canal * ward * trochanter * (0.3 + 1.4 * texture)).clamp(0.0, 0.9)
    }

    fn greater_weight(&self, q: P3) -> f32 {
        let local = self.greater.frame.apply(q - self.greater.center);
        let r = self.greater.radii;
        p3(local.x / r.x, local.y / r.y, local.z / r.z).length()
    }

    /// Local bounds (generous).
    pub fn local_bounds(&self) -> (P3, P3) {
        let s = self.scale;
        let r = self.head_radius;
        (
            p3(self.junction.x - 45.0 * s, -r - 6.0, -45.0 * s),
            p3(r + 6.0, self.junction.y + 265.0 * s, 45.0 * s),
        )
    }
}

/// A keep-side of a cut plane in the femur's frame: the piece keeps `normal·q ≤ offset`.
#[derive(Debug, Clone, Copy)]
pub struct Cut {
    pub normal: P3,
    pub offset: f32,
}

impl Cut {
    /// Signed distance to the plane, negative on the kept side.
    pub fn value(&self, q: P3) -> f32 {
        q.dot(self.normal) - self.offset
    }
    /// The other side.
    pub fn flipped(&self) -> Cut {
        Cut {
            normal: -self.normal,
            offset: -self.offset,
        }
    }
}

/// A fragment's part of the femur's frame: on the kept side of every `keep` cut and outside
/// each convex region of `minus` (each the intersection of its cuts).
#[derive(Debug, Clone, Default)]
pub struct Region {
    pub keep: Vec<Cut>,
    pub minus: Vec<Vec<Cut>>,
}

impl Region {
    /// The kept side of one cut.
    pub fn keep(cut: Cut) -> Self {
        Region {
            keep: vec![cut],
            minus: vec![],
        }
    }

    /// The kept side of every one of `cuts`.
    pub fn inside(cuts: Vec<Cut>) -> Self {
        Region {
            keep: cuts,
            minus: vec![],
        }
    }

    /// A bound on the signed distance to the region (negative inside; exact for one cut).
    pub fn distance(&self, q: P3) -> f32 {
        let mut d = f32::NEG_INFINITY;
        for cut in &self.keep {
            d = d.max(cut.value(q));
        }
        for convex in &self.minus {
            let mut inside = f32::NEG_INFINITY;
            for cut in convex {
                inside = inside.max(cut.value(q));
            }
            d = d.max(-inside);
        }
        d
    }
}

/// A femur (or one fragment of it) placed in the world.
pub struct FemurPiece {
    pub model: Arc<FemurModel>,
    /// Femur frame → world (before the mirror).
    pub motion: Motion,
    /// Reflect about this world x after the motion (the other hip).
    pub mirror: Option<f32>,
    /// The fragment's region of the femur (None: the whole femur).
    pub region: Option<Region>,
    pub hip: usize,
    bounds: (P3, P3),
}

impl FemurPiece {
    pub fn new(
        model: Arc<FemurModel>,
        motion: Motion,
        mirror: Option<f32>,
        region: Option<Region>,
        hip: usize,
    ) -> Self {
        let (lo, hi) = model.local_bounds();
        let mut low = p3(f32::MAX, f32::MAX, f32::MAX);
        let mut high = p3(f32::MIN, f32::MIN, f32::MIN);
        for i in 0..8 {
            let corner = p3(
                if i & 1 == 0 { lo.x } else { hi.x },
                if i & 2 == 0 { lo.y } else { hi.y },
                if i & 4 == 0 { lo.z } else { hi.z },
            );
            let mut w = motion.apply(corner);
            if let Some(m) = mirror {
                w = w.mirrored_x(m);
            }
            low = p3(low.x.min(w.x), low.y.min(w.y), low.z.min(w.z));
            high = p3(high.x.max(w.x), high.y.max(w.y), high.z.max(w.z));
        }
        FemurPiece {
            model,
            motion,
            mirror,
            region,
            hip,
            bounds: (low, high),
        }
    }

    /// World → femur frame.
    pub fn local(&self, p: P3) -> P3 {
        let p = match self.mirror {
            Some(m) => p.mirrored_x(m),
            None => p,
        };
        self.motion.inverse_apply(p)
    }

    /// Femur frame → world.
    pub fn world(&self, q: P3) -> P3 {
        let w = self.motion.apply(q);
        match self.mirror {
            Some(m) => w.mirrored_x(m),
            None => w,
        }
    }

    fn sample_with(&self, q: P3, g: f32) -> Sample {
        let t = self.model.cortex(q);
        let hip = q.y < self.model.hip_limit_y;
        match &self.region {
            None => Sample {
                distance: g,
                cortex: t,
                hip,
            },
            Some(region) => {
                // The cut faces are cancellous bone: the cortex follows the outer surface only.
                let plane = region.distance(q);
                let d = g.max(plane);
                Sample {
                    distance: d,
                    cortex: (g + t).max(plane) - d,
                    hip,
                }
            }
        }
    }
}

impl Solid for FemurPiece {
    fn material(&self) -> Material {
        Material::Bone
    }
    fn bounds(&self) -> (P3, P3) {
        self.bounds
    }
    fn sample(&self, p: P3) -> Sample {
        let q = self.local(p);
        self.sample_with(q, self.model.distance(q))
    }
    fn spans(&self, origin: P3, direction: P3) -> Spans {
        let o = self.local(origin);
        self.model.spans(o, self.local(origin + direction) - o)
    }
    fn sample_on(&self, p: P3, t: f32, spans: &Spans) -> Sample {
        let q = self.local(p);
        self.sample_with(q, self.model.distance_on(q, t, spans))
    }
    fn bone_fraction(&self, p: P3) -> f32 {
        self.model.bone_fraction(self.local(p))
    }
    fn hip_index(&self) -> Option<usize> {
        Some(self.hip)
    }
}

/// A right hemipelvis in world coordinates (the left one is mirrored about the midline).
pub struct Hemipelvis {
    acetabulum: Ellipsoid,
    opening: P3,
    opening_offset: f32,
    socket_radius: f32,
    ilium_body: Capsule,
    posterior_column: Capsule,
    wing: Ellipsoid,
    crest: [Capsule; 3],
    brim: [Capsule; 3],
    teardrop: Ellipsoid,
    superior_ramus: Capsule,
    pubic_body: Ellipsoid,
    inferior_ramus: Capsule,
    ischium: Capsule,
    tuberosity: Ellipsoid,
    ischial_ramus: Capsule,
    /// Everything but the acetabulum, blended.
    parts: Blend,
    head_radius: f32,
    thin: f32,
    bone_fraction: f32,
    seed: u32,
    mirror: Option<f32>,
    bounds: (P3, P3),
}

impl Hemipelvis {
    pub fn new(p: &Params3, mirror: Option<f32>, seed: u32) -> Self {
        let s = p.scale;
        let m = p.half_pelvis;
        let f = p.iliac_flare;
        let r = p.head_radius;
        let v = |x: f32, y: f32, z: f32| p3(x * s, y * s, z * s);
        let asis = v(-40.0 * f, -60.0, -42.0);
        let back = p3(m - 44.0 * s, -92.0 * s, 52.0 * s);
        let u = (back - asis).unit();
        let up = (p3(0.0, 1.0, 0.0) - u * u.y).unit();
        let n = u.cross(up);
        let wing_center = (asis + back) * 0.5 + v(0.0, -8.0, 0.0);
        let half_length = (back - asis).length() * 0.5 + 8.0 * s;
        let lateral_crest = asis + v(-5.0 * f, -27.0, 8.0);
        let top = wing_center + v(0.0, -40.0, 0.0);
        let sacroiliac = back + v(0.0, -14.0, 0.0);
        let brim0 = p3(m - 46.0 * s, -72.0 * s, 48.0 * s);
        let brim1 = v(34.0, -35.0, 22.0);
        let brim2 = v(36.0, 2.0, -8.0);
        let brim3 = p3(m - 28.0 * s, 20.0 * s, -38.0 * s);
        let mut bounds = (
            p3(-62.0 * s * f, -140.0 * s, -65.0 * s),
            p3(m + 4.0, 110.0 * s, 80.0 * s),
        );
        if let Some(mid) = mirror {
            let (lo, hi) = bounds;
            bounds = (p3(2.0 * mid - hi.x, lo.y, lo.z), p3(2.0 * mid - lo.x, hi.y, hi.z));
        }
        let mut pelvis = Hemipelvis {
            acetabulum: Ellipsoid::new(p3(0.25 * r, -0.2 * r, 0.1 * r), p3(1.45 * r, 1.45 * r, 1.5 * r)),
            opening: p3(-0.72, 0.55, -0.42).unit(),
            opening_offset: 0.15 * r,
            socket_radius: r + 2.5 * s,
            ilium_body: Capsule::new(v(8.0, -22.0, 10.0), v(14.0, -54.0, 24.0), 20.0 * s, 11.0 * s),
            posterior_column: Capsule::new(v(14.0, -30.0, 25.0), v(14.0, 25.0, 22.0), 16.0 * s, 14.0 * s),
            wing: Ellipsoid::oriented(wing_center, p3(half_length, 42.0 * s, 4.0 * s), Rot([u, up, n])),
            crest: [
                Capsule::new(asis, lateral_crest, 5.0 * s, 7.0 * s),
                Capsule::new(lateral_crest, top, 7.0 * s, 7.0 * s),
                Capsule::new(top, sacroiliac, 7.0 * s, 8.0 * s),
            ],
            brim: [
                Capsule::new(brim0, brim1, 6.0 * s, 5.0 * s),
                Capsule::new(brim1, brim2, 5.0 * s, 5.0 * s),
                Capsule::new(brim2, brim3, 5.0 * s, 5.5 * s),
            ],
            teardrop: Ellipsoid::new(p3(r + 8.0 * s, 4.0 * s, 2.0 * s), v(4.5, 15.0, 18.0)),
            superior_ramus: Capsule::new(
                v(15.0, 8.0, -22.0),
                p3(m - 20.0 * s, 22.0 * s, -44.0 * s),
                11.0 * s,
                8.0 * s,
            ),
            pubic_body: Ellipsoid::new(p3(m - 14.0 * s, 34.0 * s, -44.0 * s), v(10.0, 19.0, 10.0)),
            inferior_ramus: Capsule::new(
                p3(m - 16.0 * s, 48.0 * s, -40.0 * s),
                v(36.0, 82.0, -6.0),
                6.5 * s,
                6.0 * s,
            ),
            ischium: Capsule::new(v(10.0, 18.0, 22.0), v(22.0, 68.0, 20.0), 15.0 * s, 12.0 * s),
            tuberosity: Ellipsoid::new(v(24.0, 80.0, 18.0), v(13.0, 15.0, 12.0)),
            ischial_ramus: Capsule::new(v(26.0, 86.0, 12.0), v(36.0, 82.0, -6.0), 7.0 * s, 6.5 * s),
            head_radius: r,
            thin: 1.0 - 0.4 * p.osteoporosis,
            bone_fraction: 0.24 * (1.0 - 0.5 * p.osteoporosis),
            seed,
            mirror,
            bounds,
            parts: Blend::default(),
        };
        let mut parts = Blend::default();
        parts.add(Part::Capsule(pelvis.ilium_body), 10.0);
        parts.add(Part::Capsule(pelvis.posterior_column), 8.0);
        parts.add(Part::Ellipsoid(pelvis.wing), 8.0);
        for c in pelvis.crest {
            parts.add(Part::Capsule(c), 5.0);
        }
        for c in pelvis.brim {
            parts.add(Part::Capsule(c), 6.0);
        }
        parts.add(Part::Ellipsoid(pelvis.teardrop), 5.0);
        parts.add(Part::Capsule(pelvis.superior_ramus), 8.0);
        parts.add(Part::Ellipsoid(pelvis.pubic_body), 8.0);
        parts.add(Part::Capsule(pelvis.inferior_ramus), 6.0);
        parts.add(Part::Capsule(pelvis.ischium), 8.0);
        parts.add(Part::Ellipsoid(pelvis.tuberosity), 8.0);
        parts.add(Part::Capsule(pelvis.ischial_ramus), 6.0);
        pelvis.parts = parts;
        pelvis
    }

    fn local(&self, p: P3) -> P3 {
        match self.mirror {
            Some(m) => p.mirrored_x(m),
            None => p,
        }
    }

    fn distance(&self, q: P3) -> f32 {
        let acetabulum = smax(
            self.acetabulum.distance(q),
            q.dot(self.opening) - self.opening_offset,
            4.0,
        );
        let d = self.parts.distance(q, acetabulum);
        // The socket: the femoral head plus the joint space.
        smax(d, self.socket_radius - q.length(), 2.0)
    }

    /// [`Hemipelvis::distance`] at the ray's point `q` (parameter `t`).
    fn distance_on(&self, q: P3, t: f32, spans: &Spans) -> f32 {
        let acetabulum = if spans.active(0, t) {
            smax(
                self.acetabulum.distance(q),
                q.dot(self.opening) - self.opening_offset,
                4.0,
            )
        } else {
            SPAN_MARGIN
        };
        let d = self.parts.distance_on(q, acetabulum, t, spans, 1);
        smax(d, self.socket_radius - q.length(), 2.0)
    }

    fn cortex(&self, q: P3) -> f32 {
        // The acetabular roof (sourcil) is the thickest cortex of the pelvis.
        let roof = (1.0 - smoothstep(2.0, 9.0, q.length() - self.socket_radius))
            * smoothstep(0.0, -0.5 * self.head_radius, q.y);
        ((1.2 + 2.2 * roof) * self.thin).max(0.6)
    }
}

impl Solid for Hemipelvis {
    fn material(&self) -> Material {
        Material::Bone
    }
    fn bounds(&self) -> (P3, P3) {
        self.bounds
    }
    fn sample(&self, p: P3) -> Sample {
        let q = self.local(p);
        Sample {
            distance: self.distance(q),
            cortex: self.cortex(q),
            hip: false,
        }
    }
    fn spans(&self, origin: P3, direction: P3) -> Spans {
        let o = self.local(origin);
        let d = self.local(origin + direction) - o;
        let mut spans = Spans::default();
        spans.push(Part::Ellipsoid(self.acetabulum).obb().ray(o, d, SPAN_MARGIN));
        self.parts.spans(o, d, &mut spans);
        spans
    }
    fn sample_on(&self, p: P3, t: f32, spans: &Spans) -> Sample {
        let q = self.local(p);
        Sample {
            distance: self.distance_on(q, t, spans),
            cortex: self.cortex(q),
            hip: false,
        }
    }
    fn bone_fraction(&self, p: P3) -> f32 {
        let q = self.local(p);
        let t = fbm2(q * 0.7, self.seed);
        (self.bone_fraction * (0.35 + 1.3 * smoothstep(-0.35, 0.45, t))).clamp(0.0, 0.9)
    }
}

/// Half the sacrum's height in the AP view (S1's top to the apex), mm at scale 1.
const SACRUM_HALF_HEIGHT: f32 = 48.0;

/// The sacrum: a wedge narrowing downwards on the midline, with four pairs of foramina; S1's
/// top about 110 mm above the hip centres, under L5, its apex at the level of the femoral heads'
/// tops.
pub struct Sacrum {
    center: P3,
    scale: f32,
    foramina: Vec<Capsule>,
    bone_fraction: f32,
    seed: u32,
    bounds: (P3, P3),
}

impl Sacrum {
    pub fn new(p: &Params3, seed: u32) -> Self {
        let s = p.scale;
        let m = p.half_pelvis;
        let center = p3(m, -62.0 * s, 50.0 * s);
        let mut foramina = Vec::new();
        for y in [-90.0f32, -72.0, -55.0, -39.0] {
            let half = 0.55 * Self::half_width(y * s, s);
            for side in [-1.0, 1.0] {
                let x = m + side * half;
                // The anterior foramina: short canals through the front of the sacrum only,
                // so they read as faint rings, not holes.
                foramina.push(Capsule::new(
                    p3(x, y * s, 20.0 * s),
                    p3(x, y * s, 42.0 * s),
                    3.5 * s,
                    3.0 * s,
                ));
            }
        }
        Sacrum {
            center,
            scale: s,
            foramina,
            bone_fraction: 0.14 * (1.0 - 0.5 * p.osteoporosis),
            seed,
            bounds: (
                p3(m - 52.0 * s, -115.0 * s, 25.0 * s),
                p3(m + 52.0 * s, -9.0 * s, 75.0 * s),
            ),
        }
    }

    fn half_width(y: f32, s: f32) -> f32 {
        20.0 * s + 28.0 * s * ((-14.0 * s - y) / (96.0 * s)).clamp(0.0, 1.0)
    }
}

impl Solid for Sacrum {
    fn material(&self) -> Material {
        Material::Bone
    }
    fn bounds(&self) -> (P3, P3) {
        self.bounds
    }
    fn sample(&self, p: P3) -> Sample {
        let s = self.scale;
        let radii = p3(Self::half_width(p.y, s), SACRUM_HALF_HEIGHT * s, 18.0 * s);
        let mut d = ellipsoid_local(p - self.center, radii);
        for f in &self.foramina {
            d = smax(d, -f.distance(p), 1.5);
        }
        Sample {
            distance: d,
            cortex: 1.0,
            hip: false,
        }
    }
    fn spans(&self, origin: P3, direction: P3) -> Spans {
        let s = self.scale;
        let mut spans = Spans::default();
        let body = Obb {
            center: self.center,
            frame: Rot::IDENTITY,
            half: p3(Self::half_width(-110.0 * s, s), SACRUM_HALF_HEIGHT * s, 18.0 * s),
        };
        spans.push(body.ray(origin, direction, SPAN_MARGIN));
        for f in &self.foramina {
            spans.push(Part::Capsule(*f).obb().ray(origin, direction, SPAN_MARGIN));
        }
        spans
    }
    fn sample_on(&self, p: P3, t: f32, spans: &Spans) -> Sample {
        if !spans.active(0, t) {
            return Sample {
                distance: SPAN_MARGIN,
                cortex: 1.0,
                hip: false,
            };
        }
        let s = self.scale;
        let radii = p3(Self::half_width(p.y, s), SACRUM_HALF_HEIGHT * s, 18.0 * s);
        let mut d = ellipsoid_local(p - self.center, radii);
        for (i, f) in self.foramina.iter().enumerate() {
            if spans.active(1 + i, t) {
                d = smax(d, -f.distance(p), 1.5);
            }
        }
        Sample {
            distance: d,
            cortex: 1.0,
            hip: false,
        }
    }
    fn bone_fraction(&self, p: P3) -> f32 {
        let t = fbm2(p * 0.7, self.seed);
        (self.bone_fraction * (0.4 + 1.2 * smoothstep(-0.35, 0.45, t))).clamp(0.0, 0.9)
    }
}

/// The lower lumbar spine (L3–L5) above the sacrum on the midline: per vertebra a body
/// (a bar rounded at its lateral ends, whose cortex tangent to the beam draws the AP film's
/// rectangle), two pedicles running back from it (the AP film's "eyes") around a canal
/// ≈ 24 mm wide, the laminar arch, the spinous process (a teardrop on the midline) and two
/// transverse processes; the discs are gaps of ≈ 9 mm between the bodies (soft tissue);
/// lordosis brings L3 forward of L5 (z runs front to back). Proportions after Panjabi et al.
/// (Spine 1992): bodies 46–48 mm wide and 26 mm high. At most [`MAX_PARTS`] parts.
pub struct Spine {
    parts: Blend,
    bone_fraction: f32,
    thin: f32,
    seed: u32,
    bounds: (P3, P3),
}

impl Spine {
    pub fn new(p: &Params3, seed: u32) -> Self {
        let s = p.scale;
        let m = p.half_pelvis;
        let mut parts = Blend::default();
        // (centre height, body depth centre, body half width, transverse reach) of L5, L4, L3.
        for (y, z, half, reach) in [
            (-132.0, 30.0, 24.0, 40.0),
            (-168.0, 20.0, 23.5, 44.0),
            (-204.0, 14.0, 23.0, 40.0),
        ] {
            let (y, z, half, reach) = (y * s, z * s, half * s, reach * s);
            // The body: a bar of radius 13 mm whose rounded ends reach `half` from the midline.
            let radius = 13.0 * s;
            parts.add(
                Part::Capsule(Capsule::new(
                    p3(m - half + radius, y, z),
                    p3(m + half - radius, y, z),
                    radius,
                    radius,
                )),
                2.0,
            );
            for side in [-1.0f32, 1.0] {
                let x = m + side * 0.75 * half;
                parts.add(
                    Part::Capsule(Capsule::new(
                        p3(x, y - 4.0 * s, z + 9.0 * s),
                        p3(x + side * 1.5 * s, y - 4.0 * s, z + 27.0 * s),
                        5.5 * s,
                        5.0 * s,
                    )),
                    2.5,
                );
                parts.add(
                    Part::Capsule(Capsule::new(
                        p3(x + side * 2.0 * s, y - 3.0 * s, z + 26.0 * s),
                        p3(m + side * reach, y - 6.0 * s, z + 24.0 * s),
                        5.0 * s,
                        3.5 * s,
                    )),
                    2.5,
                );
            }
            parts.add(
                Part::Capsule(Capsule::new(
                    p3(m - 0.9 * half, y, z + 30.0 * s),
                    p3(m + 0.9 * half, y, z + 30.0 * s),
                    5.0 * s,
                    5.0 * s,
                )),
                3.0,
            );
            parts.add(
                Part::Capsule(Capsule::new(
                    p3(m, y + 2.0 * s, z + 32.0 * s),
                    p3(m, y + 14.0 * s, z + 60.0 * s),
                    5.5 * s,
                    4.0 * s,
                )),
                3.0,
            );
        }
        assert!(parts.len() <= MAX_PARTS, "the spine has {} parts", parts.len());
        Spine {
            parts,
            bone_fraction: 0.16 * (1.0 - 0.5 * p.osteoporosis),
            thin: 1.0 - 0.4 * p.osteoporosis,
            seed,
            bounds: (
                p3(m - 48.0 * s, -227.0 * s, 0.0),
                p3(m + 48.0 * s, -105.0 * s, 106.0 * s),
            ),
        }
    }

    pub fn distance(&self, p: P3) -> f32 {
        self.parts.distance(p, SPAN_MARGIN)
    }

    fn cortex(&self) -> f32 {
        (1.1 * self.thin).max(0.6)
    }
}

impl Solid for Spine {
    fn material(&self) -> Material {
        Material::Bone
    }
    fn bounds(&self) -> (P3, P3) {
        self.bounds
    }
    fn sample(&self, p: P3) -> Sample {
        Sample {
            distance: self.distance(p),
            cortex: self.cortex(),
            hip: false,
        }
    }
    fn spans(&self, origin: P3, direction: P3) -> Spans {
        let mut spans = Spans::default();
        self.parts.spans(origin, direction, &mut spans);
        spans
    }
    fn sample_on(&self, p: P3, t: f32, spans: &Spans) -> Sample {
        Sample {
            distance: self.parts.distance_on(p, SPAN_MARGIN, t, spans, 0),
            cortex: self.cortex(),
            hip: false,
        }
    }
    fn bone_fraction(&self, p: P3) -> f32 {
        let t = fbm2(p * 0.7, self.seed);
        (self.bone_fraction * (0.4 + 1.2 * smoothstep(-0.35, 0.45, t))).clamp(0.0, 0.9)
    }
}

/// Bowel gas: lumpy pockets (a few overlapping ellipsoids with a noisy surface).
pub struct Gas {
    blobs: Vec<Ellipsoid>,
    seed: u32,
    bounds: (P3, P3),
}

impl Gas {
    /// The patient's pockets, placed by `image_seed` (gas moves between exposures).
    pub fn new(p: &Params3, image_seed: u64) -> Option<Self> {
        if p.gas_pockets == 0 {
            return None;
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(p.seed ^ image_seed);
        let s = p.scale;
        let m = p.half_pelvis;
        let mut blobs = Vec::new();
        for _ in 0..p.gas_pockets {
            let center = p3(
                m + rng.gen_range(-75.0..75.0) * s,
                rng.gen_range(-150.0..-50.0) * s,
                rng.gen_range(-55.0..5.0) * s,
            );
            let size = rng.gen_range(7.0..22.0) * s;
            for _ in 0..3 {
                let offset = p3(
                    rng.gen_range(-1.0..1.0),
                    rng.gen_range(-0.6..0.6),
                    rng.gen_range(-0.5..0.5),
                ) * size;
                let radii = p3(
                    size * rng.gen_range(0.5..1.0),
                    size * rng.gen_range(0.35..0.8),
                    size * rng.gen_range(0.4..0.8),
                );
                blobs.push(Ellipsoid::oriented(
                    center + offset,
                    radii,
                    Rot::about(p3(0.0, 0.0, 1.0), rng.gen_range(0.0..std::f32::consts::PI)),
                ));
            }
        }
        let mut lo = p3(f32::MAX, f32::MAX, f32::MAX);
        let mut hi = p3(f32::MIN, f32::MIN, f32::MIN);
        for b in &blobs {
            let r = b.radii.x.max(b.radii.y).max(b.radii.z) + 4.0;
            lo = p3(
                lo.x.min(b.center.x - r),
                lo.y.min(b.center.y - r),
                lo.z.min(b.center.z - r),
            );
            hi = p3(
                hi.x.max(b.center.x + r),
                hi.y.max(b.center.y + r),
                hi.z.max(b.center.z + r),
            );
        }
        Some(Gas {
            blobs,
            seed: rng.gen(),
            bounds: (lo, hi),
        })
    }
}

impl Solid for Gas {
    fn material(&self) -> Material {
        Material::Gas
    }
    fn bounds(&self) -> (P3, P3) {
        self.bounds
    }
    fn sample(&self, p: P3) -> Sample {
        let mut d = f32::MAX;
        for b in &self.blobs {
            d = smin(d, b.distance(p), 4.0);
        }
        Sample {
            distance: d + 2.5 * noise(p * 0.2, self.seed),
            cortex: 0.0,
            hip: false,
        }
    }
    fn spans(&self, origin: P3, direction: P3) -> Spans {
        let mut spans = Spans::default();
        for b in &self.blobs {
            spans.push(Part::Ellipsoid(*b).obb().ray(origin, direction, SPAN_MARGIN));
        }
        spans
    }
    fn sample_on(&self, p: P3, t: f32, spans: &Spans) -> Sample {
        let mut d = SPAN_MARGIN;
        for (i, b) in self.blobs.iter().enumerate() {
            if spans.active(i, t) {
                d = smin(d, b.distance(p), 4.0);
            }
        }
        Sample {
            distance: d + 2.5 * noise(p * 0.2, self.seed),
            cortex: 0.0,
            hip: false,
        }
    }
    fn bone_fraction(&self, _: P3) -> f32 {
        0.0
    }
}

/// How a femur sits: rotation about the vertical through the head centre (+ external), then
/// coronal tilt (+ abduction) with the shaft's usual 7° of adduction.
pub fn femur_pose(abduction_deg: f32, rotation_deg: f32) -> Motion {
    let rotation = Rot::about(p3(0.0, 0.0, 1.0), (abduction_deg - 7.0).to_radians())
        .then(&Rot::about(p3(0.0, 1.0, 0.0), rotation_deg.to_radians()));
    Motion {
        rotation,
        translation: p3(0.0, 0.0, 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params3 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        Params3::new(&PatientParams::sample(&mut rng))
    }

    #[test]
    fn v2_lumbar_spine_has_bodies_discs_pedicles_and_spinous_processes() {
        let p = params();
        let spine = Spine::new(&p, 1);
        let (s, m) = (p.scale, p.half_pelvis);
        // Inside L4's body, in the L4–L5 disc (between the bodies), inside one of L4's
        // pedicles and its spinous process, in the spinal canal between the pedicles; beside
        // the body, lateral of the transverse processes.
        assert!(spine.distance(p3(m, -168.0 * s, 20.0 * s)) < -8.0);
        assert!(spine.distance(p3(m, -150.0 * s, 25.0 * s)) > 0.0);
        assert!(spine.distance(p3(m + 0.75 * 23.5 * s, -172.0 * s, 38.0 * s)) < 0.0);
        assert!(spine.distance(p3(m + 9.0 * s, -172.0 * s, 38.0 * s)) > 0.0);
        // The body is 46–48 mm wide: bone at 22 mm from the midline, none at 26 mm.
        assert!(spine.distance(p3(m + 22.0 * s, -168.0 * s, 20.0 * s)) < 0.0);
        assert!(spine.distance(p3(m + 26.0 * s, -168.0 * s, 20.0 * s)) > 0.0);
        // Along rays through the spine, the field the marcher evaluates (parts within their
        // spans only) is the whole field near the bone (a part left out is farther than the
        // margin), and within 0.02 mm of it up to the margin less the widest blend (3 mm),
        // where a left-out part's fillet can still lower the running minimum a little.
        let source = p3(m, -105.0 * s, -1000.0);
        for k in 0..40 {
            let target = p3(m + (k as f32 - 20.0) * 2.5 * s, -(115.0 + 2.7 * k as f32) * s, 200.0);
            let direction = (target - source).unit();
            let spans = spine.spans(source, direction);
            for i in 0..400 {
                let t = 900.0 + i as f32 * 0.5;
                let p = source + direction * t;
                let (whole, marched) = (spine.sample(p).distance, spine.sample_on(p, t, &spans).distance);
                let tolerance = if whole < 2.0 { 1e-4 } else { 0.02 };
                if whole < SPAN_MARGIN - 3.0 {
                    assert!(
                        (whole - marched).abs() < tolerance,
                        "ray {k}, t {t}: {whole} vs {marched}"
                    );
                }
            }
        }
        assert!(spine.distance(p3(m, -160.0 * s, 66.0 * s)) < 0.0);
        assert!(spine.distance(p3(m + 60.0 * s, -168.0 * s, 20.0 * s)) > 0.0);
        // Nothing below the top of the sacrum.
        assert!(spine.distance(p3(m, -95.0 * s, 40.0 * s)) > 0.0);
        let (lo, hi) = spine.bounds();
        for q in [p3(m, -204.0 * s, 14.0 * s), p3(m, -132.0 * s, 30.0 * s)] {
            assert!(q.x > lo.x && q.y > lo.y && q.z > lo.z && q.x < hi.x && q.y < hi.y && q.z < hi.z);
        }
    }

    #[test]
    fn v2_femur_has_head_neck_shaft_and_trochanters_where_they_belong() {
        let p = params();
        let f = FemurModel::new(&p, 1);
        let r = p.head_radius;
        // Inside the head, just outside its dome, inside the shaft below the lesser trochanter.
        assert!(f.distance(p3(0.0, 0.0, 0.0)) < -0.8 * r);
        assert!(f.distance(p3(0.0, -r - 3.0, 0.0)) > 0.0);
        let shaft = f.junction + p3(0.0, 120.0, 0.0);
        assert!(f.distance(shaft) < -10.0);
        // The neck is narrower than the head: a point beside the waist, one head radius off
        // the axis, is outside.
        let waist = f.junction + f.neck_axis * (0.45 * (f.junction.length()));
        let side = p3(0.0, 0.0, 1.0);
        assert!(f.distance(waist + side * r) > 0.0);
        // Cortex: thin in the head, thick in the diaphysis.
        assert!(f.cortex(p3(0.0, -r, 0.0)) < 2.0);
        assert!(f.cortex(shaft) > 3.5);
        // The lesser trochanter is bone, medial of the shaft axis.
        assert!(f.distance(f.lesser_center) < 0.0);
        assert!(f.lesser_center.x > f.junction.x);
    }

    #[test]
    fn v2_pelvis_has_a_socket_and_an_obturator_foramen() {
        let p = params();
        let h = Hemipelvis::new(&p, None, 2);
        let r = p.head_radius;
        // The femoral head's place is empty; bone just above the socket (the roof).
        assert!(h.sample(p3(0.0, 0.0, 0.0)).distance > 0.0);
        assert!(h.sample(p3(0.0, -r - 6.0, 0.0)).distance < 0.0);
        // The obturator foramen (between the rami, medial-inferior of the socket) is empty,
        // the superior ramus beside it is bone.
        let s = p.scale;
        assert!(h.sample(p3(42.0 * s, 45.0 * s, -15.0 * s)).distance > 0.0);
        assert!(h.sample(p3(35.0 * s, 13.0 * s, -30.0 * s)).distance < 0.0);
        // Mirrored: the same about the midline.
        let m = p.half_pelvis;
        let other = Hemipelvis::new(&p, Some(m), 2);
        let q = p3(0.0, -r - 6.0, 0.0);
        assert_eq!(other.sample(q.mirrored_x(m)).distance, h.sample(q).distance);
    }
}
