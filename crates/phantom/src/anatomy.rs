//! The patient: pelvis, femora and soft tissue as analytic bodies, in world millimetres.
//!
//! World frame: x to the image's right, y down (towards the feet), z along the beam. The
//! simulated hip is always drawn as a right hip (on the image's left, its midline to +x);
//! left hips are made by flipping the finished image, so both sides come out.
//! The hip joint centre of the simulated side is the world origin.

use crate::geometry::{Rigid, Shape, M3, V3};
use crate::texture::Trabeculae;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Linear attenuation coefficients, per mm, at a radiographic effective energy (~60 keV).
pub mod mu {
    pub const FAT: f64 = 0.0175;
    pub const MUSCLE: f64 = 0.0205;
    pub const MARROW: f64 = 0.0190;
    pub const TRABECULAR: f64 = 0.0340;
    pub const CORTICAL: f64 = 0.0750;
    pub const METAL: f64 = 0.60;
}

/// A bone: cortical shell (outer − inner), cancellous bone (inner − marrow), marrow.
#[derive(Debug, Clone)]
pub struct Bone {
    pub outer: Vec<Shape>,
    pub outer_holes: Vec<Shape>,
    pub inner: Vec<Shape>,
    pub inner_holes: Vec<Shape>,
    pub marrow: Vec<Shape>,
    pub mu_cortical: f64,
    pub mu_trabecular: f64,
    /// Texture of the cancellous bone, in this bone's local frame.
    pub trabeculae: Option<Trabeculae>,
}

impl Bone {
    /// True when `p` (local frame) is inside the bone's outer surface.
    pub fn contains(&self, p: V3) -> bool {
        self.outer.iter().any(|s| s.contains(p)) && !self.outer_holes.iter().any(|s| s.contains(p))
    }

    /// The bone with every shape mapped by `f` (the texture, tied to the original frame, is
    /// dropped).
    pub fn map_shapes(&self, f: impl Fn(&Shape) -> Shape) -> Bone {
        let m = |shapes: &Vec<Shape>| shapes.iter().map(&f).collect();
        Bone {
            outer: m(&self.outer),
            outer_holes: m(&self.outer_holes),
            inner: m(&self.inner),
            inner_holes: m(&self.inner_holes),
            marrow: m(&self.marrow),
            mu_cortical: self.mu_cortical,
            mu_trabecular: self.mu_trabecular,
            trabeculae: None,
        }
    }

    fn mirrored(&self, midline: f64) -> Bone {
        self.map_shapes(|s| mirror(s, midline))
    }
}

/// The reflection `x ↦ 2·midline − x` of a shape.
pub fn mirror(shape: &Shape, midline: f64) -> Shape {
    let flip = |c: V3| V3(2.0 * midline - c.0, c.1, c.2);
    let flip_columns = |m: &M3| {
        M3([
            V3(-m.0[0].0, m.0[0].1, m.0[0].2),
            V3(-m.0[1].0, m.0[1].1, m.0[1].2),
            V3(-m.0[2].0, m.0[2].1, m.0[2].2),
        ])
    };
    match shape {
        Shape::Ellipsoid { center, to_unit } => Shape::Ellipsoid {
            center: flip(*center),
            to_unit: flip_columns(to_unit),
        },
        Shape::Cylinder { center, to_unit, half } => Shape::Cylinder {
            center: flip(*center),
            to_unit: flip_columns(to_unit),
            half: *half,
        },
    }
}

/// What varies between patients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatientParams {
    /// Overall size (1 = average adult).
    pub scale: f64,
    /// Neck-shaft angle, degrees (normal 120–140).
    pub neck_shaft_angle: f64,
    /// Femoral anteversion, degrees.
    pub anteversion: f64,
    /// Osteoporosis 0 (none) … 1 (severe): thinner cortices, sparser trabeculae.
    pub osteoporosis: f64,
    /// Femoral head radius, mm.
    pub head_radius: f64,
    /// Hip centre to pelvic midline, mm.
    pub half_pelvis: f64,
    /// Body half-width and half-depth at the hips, mm.
    pub body_half_width: f64,
    pub body_half_depth: f64,
    /// Subcutaneous fat thickness, mm.
    pub fat: f64,
    /// Abduction of the simulated hip, degrees.
    pub abduction: f64,
    /// Rotation of the leg about the shaft axis, degrees (+ external).
    pub leg_rotation: f64,
    /// A total hip replacement on the other side (a distractor).
    pub contralateral_implant: bool,
    /// Bowel gas pockets in view.
    pub gas_pockets: u32,
    /// The patient's right (true) or left hip.
    pub right_side: bool,
    /// Seed of the patient's trabecular texture and gas.
    pub texture_seed: u64,
}

impl PatientParams {
    /// A random elderly patient.
    pub fn sample(rng: &mut impl Rng) -> Self {
        let scale = (1.0 + 0.07 * normal(rng)).clamp(0.82, 1.2);
        // Hip-fracture patients are old: most have some osteoporosis.
        let osteoporosis = (rng.gen::<f64>().powf(0.7)).clamp(0.0, 1.0);
        Self {
            scale,
            neck_shaft_angle: (130.0 + 5.0 * normal(rng)).clamp(118.0, 142.0),
            anteversion: (12.0 + 6.0 * normal(rng)).clamp(-2.0, 28.0),
            osteoporosis,
            head_radius: (23.5 + 1.6 * normal(rng)).clamp(20.0, 27.5) * scale,
            half_pelvis: (92.0 + 6.0 * normal(rng)).clamp(78.0, 108.0) * scale,
            body_half_width: (175.0 + 22.0 * normal(rng)).clamp(135.0, 230.0) * scale,
            body_half_depth: (120.0 + 15.0 * normal(rng)).clamp(90.0, 165.0) * scale,
            fat: (25.0 + 10.0 * normal(rng)).clamp(8.0, 55.0),
            abduction: (3.0 + 5.0 * normal(rng)).clamp(-8.0, 15.0),
            leg_rotation: (5.0 * normal(rng)).clamp(-15.0, 15.0),
            contralateral_implant: rng.gen_bool(0.08),
            gas_pockets: if rng.gen_bool(0.7) { rng.gen_range(1..=4) } else { 0 },
            right_side: rng.gen_bool(0.5),
            texture_seed: rng.gen(),
        }
    }
}

/// One standard normal draw (Box–Muller).
pub fn normal(rng: &mut impl Rng) -> f64 {
    let u: f64 = rng.gen_range(1e-12..1.0);
    let v: f64 = rng.gen();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Landmarks of the femur in its own frame (origin where the neck axis meets the shaft axis,
/// x medial, y distal), used by the fracture cuts.
#[derive(Debug, Clone, Copy)]
pub struct FemurFrame {
    /// Unit neck axis, pointing to the head.
    pub neck_axis: V3,
    /// Head centre.
    pub head_center: V3,
    pub head_radius: f64,
    pub neck_radius: f64,
    pub shaft_radius: f64,
    /// Tip of the greater trochanter region (lateral, proximal) and lesser trochanter centre.
    pub greater_trochanter: V3,
    pub lesser_trochanter: V3,
}

/// Builds the femur in its own frame.
pub fn femur(p: &PatientParams) -> (Bone, FemurFrame) {
    let s = p.scale;
    let theta = p.neck_shaft_angle.to_radians();
    let av = p.anteversion.to_radians();
    let neck_axis = V3(theta.sin() * av.cos(), theta.cos(), -theta.sin() * av.sin());
    let r_head = p.head_radius;
    let neck_length = 2.2 * r_head + 3.0 * s;
    let head_center = neck_axis * neck_length;
    let r_neck = 0.64 * r_head;
    let r_shaft = 14.5 * s;
    // Cortex thickness: thinner with osteoporosis (the shaft loses most).
    let thin = 1.0 - 0.45 * p.osteoporosis;
    let c_head = 1.4 * thin;
    let c_neck = (2.6 * thin).max(1.0);
    let c_meta = (2.2 * thin).max(0.9);
    let c_shaft = (6.0 * s * thin).max(2.5);

    let gt_center = V3(-15.0 * s, -17.0 * s, 3.0 * s);
    let lt_center = V3(13.5 * s, 33.0 * s, 7.0 * s);
    let gt_frame = M3::rotation(V3(0.0, 0.0, 1.0), (-12.0f64).to_radians()).transpose();
    let neck_start = neck_axis * (0.15 * neck_length);
    let neck_end = head_center - neck_axis * (0.45 * r_head);
    let meta_center = V3(-2.0 * s, 10.0 * s, 1.0 * s);

    let outer_set = |shrink: f64| -> Vec<Shape> {
        vec![
            Shape::sphere(head_center, r_head - shrink),
            Shape::cylinder(neck_start, neck_end, r_neck - shrink, r_neck * 0.9 - shrink),
            Shape::ellipsoid(
                meta_center,
                V3(23.0 * s - shrink, 34.0 * s - shrink, 20.0 * s - shrink),
                M3::IDENTITY,
            ),
            Shape::ellipsoid(
                gt_center,
                V3(14.0 * s - shrink, 23.0 * s - shrink, 16.0 * s - shrink),
                gt_frame,
            ),
            Shape::ellipsoid(
                lt_center,
                V3(8.0 * s - shrink, 9.0 * s - shrink, 7.0 * s - shrink),
                M3::IDENTITY,
            ),
            Shape::ellipsoid(
                V3(0.0, 32.0 * s, 0.0),
                V3(18.5 * s - shrink, 40.0 * s, 17.5 * s - shrink),
                M3::IDENTITY,
            ),
            // Subtrochanteric taper into the shaft.
            Shape::ellipsoid(
                V3(0.0, 62.0 * s, 0.0),
                V3(16.2 * s - shrink, 48.0 * s, 15.8 * s - shrink),
                M3::IDENTITY,
            ),
        ]
    };
    let mut outer = outer_set(0.0);
    outer.push(Shape::cylinder(
        V3(0.0, 0.0, 0.0),
        V3(0.0, 300.0 * s, 0.0),
        r_shaft,
        r_shaft,
    ));
    let mut inner = outer_set(c_meta);
    inner[0] = Shape::sphere(head_center, r_head - c_head);
    inner[1] = Shape::cylinder(neck_start, neck_end, r_neck - c_neck, r_neck * 0.9 - c_neck);
    inner.push(Shape::cylinder(
        V3(0.0, 0.0, 0.0),
        V3(0.0, 302.0 * s, 0.0),
        r_shaft - c_shaft,
        r_shaft - c_shaft,
    ));
    // The medullary canal, its top rounded where cancellous bone gives way to marrow.
    let canal = r_shaft - c_shaft;
    let marrow = vec![
        Shape::cylinder(V3(0.0, 95.0 * s, 0.0), V3(0.0, 304.0 * s, 0.0), canal, canal),
        Shape::ellipsoid(V3(0.0, 95.0 * s, 0.0), V3(canal, 30.0 * s, canal), M3::IDENTITY),
    ];
    let trabeculae = Trabeculae::new(p.texture_seed, neck_axis, head_center, 1.0 - 0.55 * p.osteoporosis);
    let bone = Bone {
        outer,
        outer_holes: vec![],
        inner,
        inner_holes: vec![],
        marrow,
        mu_cortical: mu::CORTICAL,
        mu_trabecular: mu::TRABECULAR - 0.007 * p.osteoporosis,
        trabeculae: Some(trabeculae),
    };
    let frame = FemurFrame {
        neck_axis,
        head_center,
        head_radius: r_head,
        neck_radius: r_neck,
        shaft_radius: r_shaft,
        greater_trochanter: gt_center,
        lesser_trochanter: lt_center,
    };
    (bone, frame)
}

/// The femur's placement in the world: its head centre on the hip centre, abducted and
/// rotated about the shaft.
pub fn femur_pose(p: &PatientParams, frame: &FemurFrame) -> Rigid {
    // Leg rotation about the (vertical) shaft axis through the head centre, then abduction
    // about the beam axis through the head centre.
    let rotation_about_shaft = M3::rotation(V3(0.0, 1.0, 0.0), p.leg_rotation.to_radians());
    // The anatomical shaft axis runs down and medially (~8° adduction when standing straight);
    // abduction opens it laterally.
    let abduction = M3::rotation(V3(0.0, 0.0, 1.0), (p.abduction - 8.0).to_radians());
    let rotation = abduction.mul(&rotation_about_shaft);
    // Head centre (local) must land on the world origin.
    let moved_head = rotation.apply(frame.head_center);
    Rigid {
        rotation,
        pivot: V3::default(),
        translation: -moved_head,
    }
}

/// The right hemipelvis (the simulated side) around the hip centre at the origin.
pub fn hemipelvis(p: &PatientParams, joint_space: f64) -> Bone {
    let s = p.scale;
    let m = p.half_pelvis;
    let r = p.head_radius;
    let cortex = (1.8 * (1.0 - 0.4 * p.osteoporosis)).max(0.8);
    let rot = |deg: f64| M3::rotation(V3(0.0, 0.0, 1.0), deg.to_radians()).transpose();
    let set = |k: f64| -> Vec<Shape> {
        vec![
            // Acetabular body around the head (the socket is a hole).
            // Acetabular roof and medial wall: covers the head above, leaves its lower part free.
            Shape::ellipsoid(
                V3(8.0 * s, -17.0 * s, 2.0 * s),
                V3(r + 9.0 * s - k, r + 2.0 * s - k, r + 5.0 * s - k),
                M3::IDENTITY,
            ),
            // The ilium: its body above the acetabular roof, blending into the thin wing that
            // fans out laterally above it.
            Shape::ellipsoid(
                V3(-2.0 * s, -52.0 * s, 8.0 * s),
                V3(36.0 * s - k, 44.0 * s - k, 17.0 * s - k),
                rot(-15.0),
            ),
            Shape::ellipsoid(
                V3(-14.0 * s, -92.0 * s, 14.0 * s),
                V3(52.0 * s - k, 40.0 * s - k, 10.0 * s - k * 0.7),
                rot(-25.0),
            ),
            Shape::ellipsoid(
                V3(-24.0 * s, -128.0 * s, 22.0 * s),
                V3(80.0 * s - k, 50.0 * s - k, 6.5 * s - k * 0.5),
                rot(-25.0),
            ),
            // Superior pubic ramus to the pubic body at the symphysis.
            Shape::cylinder(
                V3(18.0 * s, 6.0 * s, -8.0 * s),
                V3(m - 10.0 * s, 24.0 * s, -30.0 * s),
                10.5 * s - k,
                9.0 * s - k,
            ),
            Shape::ellipsoid(
                V3(m - 11.0 * s, 40.0 * s, -30.0 * s),
                V3(12.0 * s - k, 25.0 * s - k, 11.0 * s - k),
                rot(8.0),
            ),
            // Inferior pubic and ischial rami around the obturator foramen.
            Shape::cylinder(
                V3(m - 13.0 * s, 60.0 * s, -26.0 * s),
                V3(36.0 * s, 88.0 * s, 4.0 * s),
                8.0 * s - k,
                7.0 * s - k,
            ),
            Shape::ellipsoid(
                V3(22.0 * s, 80.0 * s, 10.0 * s),
                V3(19.0 * s - k, 21.0 * s - k, 17.0 * s - k),
                rot(-20.0),
            ),
            Shape::cylinder(
                V3(20.0 * s, 68.0 * s, 9.0 * s),
                V3(9.0 * s, 14.0 * s, 4.0 * s),
                15.0 * s - k,
                13.0 * s - k,
            ),
        ]
    };
    Bone {
        outer: set(0.0),
        outer_holes: vec![Shape::sphere(V3::default(), r + joint_space)],
        inner: set(cortex),
        inner_holes: vec![Shape::sphere(V3::default(), r + joint_space + cortex * 1.6)],
        marrow: vec![],
        mu_cortical: mu::CORTICAL,
        mu_trabecular: mu::TRABECULAR - 0.008 * p.osteoporosis,
        trabeculae: None,
    }
}

/// The sacrum's lateral edge (once, at the midline).
pub fn sacrum(p: &PatientParams) -> Bone {
    let s = p.scale;
    let m = p.half_pelvis;
    let shape = |k: f64| {
        vec![Shape::ellipsoid(
            V3(m + 6.0 * s, -150.0 * s, 45.0 * s),
            V3(44.0 * s - k, 62.0 * s - k, 14.0 * s - k),
            M3::IDENTITY,
        )]
    };
    Bone {
        outer: shape(0.0),
        outer_holes: vec![],
        inner: shape(1.5),
        inner_holes: vec![],
        marrow: vec![],
        mu_cortical: mu::CORTICAL,
        mu_trabecular: mu::TRABECULAR - 0.008 - 0.006 * p.osteoporosis,
        trabeculae: None,
    }
}

/// The mirrored copy of a bone for the other side.
pub fn contralateral(bone: &Bone, midline: f64) -> Bone {
    bone.mirrored(midline)
}

/// Soft tissue: fat outside, muscle inside.
#[derive(Debug, Clone)]
pub struct SoftTissue {
    pub outer: Vec<Shape>,
    pub muscle: Vec<Shape>,
}

pub fn soft_tissue(p: &PatientParams) -> SoftTissue {
    let m = p.half_pelvis;
    // The body reaches well lateral of the greater trochanter; more so with more fat.
    let w = (p.body_half_width).max(m + 70.0 + 1.5 * p.fat);
    let (d, f) = (p.body_half_depth, p.fat);
    let thigh = 0.55 * w;
    let body = |k: f64| Shape::ellipsoid(V3(m, -170.0, 15.0), V3(w - k, 350.0 - k, d - k), M3::IDENTITY);
    let thigh_shape = |k: f64, x: f64| {
        let lean = M3::rotation(V3(0.0, 0.0, 1.0), if x < m { 0.08 } else { -0.08 }).transpose();
        Shape::ellipsoid(V3(x, 340.0, 15.0), V3(thigh - k, 420.0 - k, thigh * 0.95 - k), lean)
    };
    let buttocks = |k: f64| {
        Shape::ellipsoid(
            V3(m, 70.0, 45.0),
            V3(w * 0.96 - k, 120.0 - k, d * 0.92 - k),
            M3::IDENTITY,
        )
    };
    let lateral_thigh = m - 0.62 * w;
    let medial_thigh = m + 0.62 * w;
    SoftTissue {
        outer: vec![
            body(0.0),
            thigh_shape(0.0, lateral_thigh),
            thigh_shape(0.0, medial_thigh),
            buttocks(0.0),
        ],
        muscle: vec![
            body(f),
            thigh_shape(f, lateral_thigh),
            thigh_shape(f, medial_thigh),
            buttocks(f),
        ],
    }
}

/// Metal parts of a total hip replacement on the contralateral side.
pub fn implant(p: &PatientParams, contralateral_head: V3) -> Vec<Shape> {
    let r = p.head_radius * 0.93;
    let neck_end = contralateral_head + V3(32.0 * p.scale, 28.0 * p.scale, 0.0);
    vec![
        Shape::sphere(contralateral_head, r * 0.6),
        Shape::ellipsoid(
            contralateral_head + V3(0.0, -3.0, 0.0),
            V3(r + 4.0, r + 4.0, r + 4.0),
            M3::IDENTITY,
        ),
        Shape::cylinder(contralateral_head, neck_end, 6.5, 6.5),
        Shape::cylinder(neck_end, neck_end + V3(4.0, 140.0 * p.scale, 0.0), 7.5, 6.0),
    ]
}

/// Bowel gas pockets (air in the pelvis above the hip).
pub fn gas(p: &PatientParams, rng: &mut impl Rng) -> Vec<Shape> {
    let m = p.half_pelvis;
    (0..p.gas_pockets)
        .map(|_| {
            let center = V3(
                m + rng.gen_range(-70.0..40.0),
                rng.gen_range(-170.0..-55.0),
                rng.gen_range(-40.0..20.0),
            );
            let axes = V3(
                rng.gen_range(8.0..28.0),
                rng.gen_range(6.0..18.0),
                rng.gen_range(8.0..20.0),
            );
            Shape::ellipsoid(
                center,
                axes,
                M3::rotation(V3(0.0, 0.0, 1.0), rng.gen_range(-1.0..1.0)).transpose(),
            )
        })
        .collect()
}
