//! Fractures of the v2 femur as 3D events: planes split the femur (in its own frame) into
//! fragments, each a [`Region`] of the bone that moves rigidly; the cut faces have no cortex
//! (cancellous bone reaches them, see `FemurPiece`), and where fragments overlap after their
//! motions the projection sums the bone of both (an impaction band is denser bone). Every
//! fracture's box is the projection of every fragment's cut faces.
//!
//! - **DF** (Garden III–IV): a plane across the neck, the head rotated in the socket into varus,
//!   the shaft externally rotated and migrated proximally, laterally and anteriorly.
//! - **VF** (Garden I–II): a subcapital to transcervical plane, the head tilted in the socket
//!   into valgus with a slight posterior tilt and impacted onto the neck: the head fragment
//!   reaches past the cut by a band chosen so that after its tilt it overlaps the neck
//!   everywhere by at least 1–3 mm (more superolaterally, where the tilt drives it in); no
//!   shortening (the shaft does not move).
//! - **SF** (AO/OTA 31A1): a plane from the lower greater trochanter (above the vastus ridge:
//!   the lateral wall below stays whole) obliquely down to the medial cortex just above the
//!   lesser trochanter; the shaft hinges into 1–4° of varus on the medial cortex with a gap of
//!   0.5–2 mm and a step of up to 2 mm along the cut.
//! - **UF** (31A2–A3): the same cut or (a quarter of them) a reverse-oblique one from the lateral
//!   cortex below the vastus ridge up to the medial cortex (the lateral wall broken), plus a
//!   posteromedial lesser-trochanter fragment pulled medially and proximally by the iliopsoas;
//!   the shaft collapses into varus about the head and rides medially and proximally.
//!
//! Severity in [0, 1] scales every displacement.

use super::anatomy::{Cut, FemurModel, Region};
use super::sdf::{p3, Motion, Rot, P3};
use crate::fracture::FractureParams;
use hipfrac_core::FractureClass;
use rand::Rng;

/// One piece of the femur and how it moves, both in the femur's frame.
#[derive(Debug, Clone)]
pub struct Fragment {
    pub region: Region,
    pub motion: Motion,
}

/// A plane that may carry cut faces, with the square of it to sample: `center` on the plane,
/// `reach` mm each way along two in-plane axes.
#[derive(Debug, Clone, Copy)]
pub struct Face {
    pub plane: Cut,
    pub center: P3,
    pub reach: f32,
}

impl Face {
    fn new(plane: Cut, near: P3, reach: f32) -> Self {
        let n = plane.normal;
        Face {
            plane,
            center: near - n * (plane.value(near)),
            reach,
        }
    }

    /// The grid of the plane's square, every `step` mm.
    fn grid(&self, step: f32) -> Vec<P3> {
        let normal = self.plane.normal;
        let helper = if normal.z.abs() < 0.9 {
            p3(0.0, 0.0, 1.0)
        } else {
            p3(1.0, 0.0, 0.0)
        };
        let e1 = normal.cross(helper).unit();
        let e2 = normal.cross(e1).unit();
        let n = (self.reach / step).ceil() as i32;
        let mut out = Vec::with_capacity(((2 * n + 1) * (2 * n + 1)) as usize);
        for i in -n..=n {
            for j in -n..=n {
                out.push(self.center + e1 * (i as f32 * step) + e2 * (j as f32 * step));
            }
        }
        out
    }
}

/// A point of a face grid lies on a fragment's cut face when it is this close to the
/// fragment's region boundary, mm (the grid points lie on their plane to rounding).
const ON_FACE_MM: f32 = 1e-2;

/// A fractured femur: its fragments (the first holds the head) and the planes of their cuts.
#[derive(Debug, Clone)]
pub struct Fracture3 {
    pub class: FractureClass,
    pub fragments: Vec<Fragment>,
    pub faces: Vec<Face>,
    pub params: FractureParams,
}

impl Fracture3 {
    /// Draws a fracture of `class` with `severity`.
    pub fn sample(class: FractureClass, femur: &FemurModel, severity: f64, rng: &mut impl Rng) -> Self {
        match class {
            FractureClass::DisplacedNeck => displaced_neck(femur, severity, rng),
            FractureClass::ValgusImpactedNeck => valgus_impacted(femur, severity, rng),
            FractureClass::StableIntertrochanteric => intertrochanteric(femur, severity, false, rng),
            FractureClass::UnstableIntertrochanteric => intertrochanteric(femur, severity, true, rng),
        }
    }

    /// Points of fragment `k`'s cut faces inside the bone, every `step` mm, in the femur's
    /// frame before the fragment moves.
    pub fn face_points(&self, femur: &FemurModel, k: usize, step: f32) -> Vec<P3> {
        let region = &self.fragments[k].region;
        self.faces
            .iter()
            .flat_map(|f| f.grid(step))
            .filter(|&q| region.distance(q).abs() <= ON_FACE_MM && femur.distance(q) < 0.0)
            .collect()
    }

    /// The fragment whose region holds `q` (the last one if none does).
    pub fn fragment_of(&self, q: P3) -> usize {
        self.fragments
            .iter()
            .position(|f| f.region.distance(q) <= 0.0)
            .unwrap_or(self.fragments.len() - 1)
    }
}

fn z_axis() -> P3 {
    p3(0.0, 0.0, 1.0)
}

/// DF: a cut between subcapital and transcervical, tilted like the Pauwels angles; the head
/// rotates in the socket (varus and a posterior tilt), the shaft rotates externally about its
/// axis and rides up, laterally and anteriorly; all scaled by `severity`.
fn displaced_neck(femur: &FemurModel, severity: f64, rng: &mut impl Rng) -> Fracture3 {
    let sev = severity as f32;
    let r = femur.head_radius;
    let length = femur.junction.length();
    let distance = r * rng.gen_range(0.6..1.15);
    let tilt = rng.gen_range(-15.0f32..25.0).to_radians();
    let normal = Rot::about(z_axis(), tilt).apply(femur.neck_axis).unit();
    let point = femur.neck_axis * -distance;
    let varus = (5.0 + 25.0 * sev) * rng.gen_range(0.7..1.0);
    let back_tilt = rng.gen_range(-10.0f32..10.0) * sev;
    let head_rotation =
        Rot::about(z_axis(), varus.to_radians()).then(&Rot::about(p3(1.0, 0.0, 0.0), back_tilt.to_radians()));
    let external = (8.0 + 27.0 * sev) * rng.gen_range(0.6..1.0);
    let shift = p3(-(1.5 + 4.0 * sev), -(3.0 + 10.0 * sev), -(2.0 + 5.0 * sev));
    let shaft = Motion::pivoted(
        Rot::about(p3(0.0, 1.0, 0.0), external.to_radians()),
        femur.junction,
        shift,
    );
    let offset = normal.dot(point);
    let cut = Cut { normal, offset };
    Fracture3 {
        class: FractureClass::DisplacedNeck,
        fragments: vec![
            Fragment {
                region: Region::keep(cut.flipped()),
                motion: Motion::pivoted(head_rotation, p3(0.0, 0.0, 0.0), p3(0.0, 0.0, 0.0)),
            },
            Fragment {
                region: Region::keep(cut),
                motion: shaft,
            },
        ],
        faces: vec![Face {
            plane: cut,
            center: normal * offset,
            reach: 1.4 * r,
        }],
        params: FractureParams {
            severity,
            rotation_deg: varus as f64,
            translation_mm: shift.length() as f64,
            neck_position: ((length - distance) / length) as f64,
            reverse_obliquity: false,
            lesser_trochanter_mm: 0.0,
        },
    }
}

/// VF: see the module's documentation.
fn valgus_impacted(femur: &FemurModel, severity: f64, rng: &mut impl Rng) -> Fracture3 {
    let sev = severity as f32;
    let r = femur.head_radius;
    let length = femur.junction.length();
    let distance = r * rng.gen_range(0.55..0.95);
    let tilt = rng.gen_range(-10.0f32..20.0).to_radians();
    let normal = Rot::about(z_axis(), tilt).apply(femur.neck_axis).unit();
    let offset = normal.dot(femur.neck_axis * -distance);
    let valgus = (4.0 + 11.0 * sev) * rng.gen_range(0.7..1.0);
    let back_tilt = (1.0 + 5.0 * sev) * rng.gen_range(0.3..1.0);
    // Valgus turns the head's axis towards the shaft's (−z rotation here, as DF's varus is +z);
    // a posterior tilt turns it towards +z (−y rotation).
    let rotation =
        Rot::about(z_axis(), -valgus.to_radians()).then(&Rot::about(p3(0.0, 1.0, 0.0), -back_tilt.to_radians()));
    let head = Motion::pivoted(rotation, p3(0.0, 0.0, 0.0), p3(0.0, 0.0, 0.0));
    // How far each point of the cut moves away from the neck with the head's tilt (positive:
    // a gap would open there); the head fragment reaches past the cut far enough to close
    // every gap and still overlap the neck by `impaction`.
    let cut = Cut { normal, offset };
    let reach = 1.4 * r;
    let face = Face {
        plane: cut,
        center: normal * offset,
        reach,
    };
    let (mut lift_max, mut lift_min) = (0.0f32, 0.0f32);
    for q in face.grid(1.0) {
        if femur.distance(q) < 0.0 {
            let lift = (head.apply(q) - q).dot(normal);
            lift_max = lift_max.max(lift);
            lift_min = lift_min.min(lift);
        }
    }
    let impaction = (1.0 + 2.0 * sev) * rng.gen_range(0.7..1.0);
    let band = impaction + lift_max;
    let head_face = Cut {
        normal,
        offset: offset - band,
    };
    Fracture3 {
        class: FractureClass::ValgusImpactedNeck,
        fragments: vec![
            Fragment {
                region: Region::keep(head_face.flipped()),
                motion: head,
            },
            Fragment {
                region: Region::keep(cut),
                motion: Motion::IDENTITY,
            },
        ],
        faces: vec![
            Face {
                plane: head_face,
                center: normal * head_face.offset,
                reach,
            },
            face,
        ],
        params: FractureParams {
            severity,
            rotation_deg: valgus as f64,
            // The deepest overlap of the fragments.
            translation_mm: (band - lift_min) as f64,
            neck_position: ((length - distance) / length) as f64,
            reverse_obliquity: false,
            lesser_trochanter_mm: 0.0,
        },
    }
}

/// Where the femur's surface is, walking from `from` along `direction` (unit), mm.
fn surface(femur: &FemurModel, from: P3, direction: P3) -> P3 {
    let mut t = 0.0;
    while t < 120.0 && femur.distance(from + direction * t) < 0.0 {
        t += 0.25;
    }
    from + direction * t
}

/// SF and UF: see the module's documentation.
fn intertrochanteric(femur: &FemurModel, severity: f64, unstable: bool, rng: &mut impl Rng) -> Fracture3 {
    let sev = severity as f32;
    let s = femur.scale;
    let j = femur.junction;
    let lt = femur.lesser_center;
    let gt = femur.greater_center;
    let reverse = unstable && rng.gen_bool(0.25);
    let depth = j.z + 4.0 * s;
    let (lateral_y, medial_y) = if reverse {
        (
            lt.y + rng.gen_range(8.0..16.0) * s,
            lt.y - rng.gen_range(14.0..22.0) * s,
        )
    } else {
        (
            gt.y + rng.gen_range(10.0..18.0) * s,
            lt.y - rng.gen_range(8.0..14.0) * s,
        )
    };
    let lateral = surface(femur, p3(j.x, lateral_y, depth), p3(-1.0, 0.0, 0.0));
    let medial = surface(femur, p3(j.x, medial_y, depth), p3(1.0, 0.0, 0.0));
    let along = (medial - lateral).unit();
    let mut normal = p3(-along.y, along.x, rng.gen_range(-0.15..0.15)).unit();
    if normal.y < 0.0 {
        normal = -normal;
    }
    // `cut` keeps the proximal side; its normal points distally.
    let cut = Cut {
        normal,
        offset: normal.dot(lateral),
    };
    let middle = (lateral + medial) * 0.5;
    let span = (medial - lateral).length();
    let main_face = Face::new(cut, middle, 0.7 * span + 30.0 * s);
    // The distal side; a reverse-oblique cut rises medially and would run into the neck, so
    // the distal side ends at the medial cortex under a transverse plane through its end.
    let mut distal = vec![cut.flipped()];
    let mut faces = vec![main_face];
    if reverse {
        let top = Cut {
            normal: p3(0.0, -1.0, 0.0),
            offset: -medial.y,
        };
        distal.push(top);
        faces.push(Face::new(top, medial, 30.0 * s));
    }
    let proximal = Region {
        keep: vec![],
        minus: vec![distal.clone()],
    };
    if !unstable {
        // Varus hinging on the medial cortex, a thin gap and a small step along the cut.
        let hinge = (1.0 + 3.0 * sev) * rng.gen_range(0.6..1.0);
        let gap = (0.5 + 1.5 * sev) * rng.gen_range(0.7..1.0);
        let step = (0.5 + 1.5 * sev) * rng.gen_range(-1.0f32..1.0);
        let shift = normal * gap + along * step;
        let shaft = Motion::pivoted(Rot::about(z_axis(), -hinge.to_radians()), medial, shift);
        return Fracture3 {
            class: FractureClass::StableIntertrochanteric,
            fragments: vec![
                Fragment {
                    region: proximal,
                    motion: Motion::IDENTITY,
                },
                Fragment {
                    region: Region::inside(distal),
                    motion: shaft,
                },
            ],
            faces,
            params: FractureParams {
                severity,
                rotation_deg: hinge as f64,
                translation_mm: shift.length() as f64,
                ..Default::default()
            },
        };
    }
    // The posteromedial lesser-trochanter fragment, a wedge narrowing distally: on the distal
    // side, medial of a plane 6–10 mm lateral of the trochanter's centre that turns laterally
    // towards the back (45°) and upwards, above a plane under the trochanter that rises
    // medially.
    let inner = (p3(1.0, -0.5, 0.9)).unit();
    let inner_point = lt + p3(-rng.gen_range(6.0..10.0) * s, 0.0, 0.0);
    let lt_lateral = Cut {
        normal: -inner,
        offset: -inner.dot(inner_point),
    };
    let below = p3(0.25, 1.0, 0.0).unit();
    let below_point = lt + p3(0.0, rng.gen_range(11.0..16.0) * s, 0.0);
    let lt_below = Cut {
        normal: below,
        offset: below.dot(below_point),
    };
    faces.push(Face::new(lt_lateral, lt, 35.0 * s));
    faces.push(Face::new(lt_below, below_point, 35.0 * s));
    let mut lesser = distal.clone();
    lesser.extend([lt_lateral, lt_below]);
    // Varus collapse about the head, the shaft riding medially and proximally.
    let varus = (3.0 + 9.0 * sev) * rng.gen_range(0.7..1.0);
    let shift = p3(
        (2.0 + 5.0 * sev) * rng.gen_range(0.6..1.0),
        -(3.0 + 10.0 * sev) * rng.gen_range(0.7..1.0),
        rng.gen_range(-2.0..2.0),
    );
    let shaft = Motion::pivoted(Rot::about(z_axis(), -varus.to_radians()), p3(0.0, 0.0, 0.0), shift);
    let lt_shift = (4.0 + 9.0 * sev) * rng.gen_range(0.7..1.0);
    let lt_turn = (10.0 + 20.0 * sev) * rng.gen_range(0.6..1.0);
    let lt_motion = Motion::pivoted(
        Rot::about(z_axis(), lt_turn.to_radians()),
        lt,
        p3(0.55 * lt_shift, -0.8 * lt_shift, rng.gen_range(-2.0..2.0)),
    );
    Fracture3 {
        class: FractureClass::UnstableIntertrochanteric,
        fragments: vec![
            Fragment {
                region: proximal,
                motion: Motion::IDENTITY,
            },
            Fragment {
                region: Region {
                    keep: distal,
                    minus: vec![lesser.clone()],
                },
                motion: shaft,
            },
            Fragment {
                region: Region::inside(lesser),
                motion: lt_motion,
            },
        ],
        faces,
        params: FractureParams {
            severity,
            rotation_deg: varus as f64,
            translation_mm: shift.length() as f64,
            neck_position: 0.0,
            reverse_obliquity: reverse,
            lesser_trochanter_mm: lt_shift as f64,
        },
    }
}
