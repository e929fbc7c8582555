//! Fractures as rigid cuts of the femur: planes split it into fragments, and each fragment
//! moves rigidly. Everything here is in the femur's own frame (see [`crate::anatomy`]).
//!
//! * DF (Garden III/IV): complete neck cut; the head rotates in the socket (varus); the
//!   shaft migrates proximally and rotates externally.
//! * VF (Garden I/II): subcapital cut; the head tilts into valgus and the neck is driven into
//!   it (impaction): the fragments overlap along the cut, a dense band.
//! * SF (Evans I / AO 31-A1): two-part cut from the greater to the lesser trochanter; a thin
//!   gap, a small hinge at the intact medial cortex.
//! * UF (Evans II / AO 31-A2/A3): the same cut (or reverse obliquity) plus a separate
//!   lesser-trochanter fragment pulled proximally and medially (loss of the posteromedial
//!   buttress), varus collapse and shortening of the shaft.
//!
//! Severity in [0, 1] scales every displacement; low severities give subtle fractures.

use crate::anatomy::{Bone, FemurFrame};
use crate::geometry::{HalfSpace, Ray, Rigid, Span, M3, V3};
use hipfrac_core::FractureClass;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// A region of the femur: inside every `keep` half-space and outside each convex region of
/// `minus` (each an intersection of half-spaces).
#[derive(Debug, Clone, Default)]
pub struct Region {
    pub keep: Vec<HalfSpace>,
    pub minus: Vec<Vec<HalfSpace>>,
}

impl Region {
    pub fn contains(&self, p: V3) -> bool {
        self.keep.iter().all(|h| h.contains(p)) && !self.minus.iter().any(|hs| hs.iter().all(|h| h.contains(p)))
    }

    fn convex_span(halfspaces: &[HalfSpace], ray: &Ray) -> Option<Span> {
        let mut span = (f64::NEG_INFINITY, f64::INFINITY);
        for h in halfspaces {
            let (a, b) = h.span(ray)?;
            span = (span.0.max(a), span.1.min(b));
            if span.1 <= span.0 {
                return None;
            }
        }
        Some(span)
    }

    /// The `keep` span of the ray (None: the ray misses the region) and the spans removed.
    pub fn spans(&self, ray: &Ray) -> (Option<Span>, Vec<Span>) {
        let keep = Self::convex_span(&self.keep, ray);
        let minus = self.minus.iter().filter_map(|hs| Self::convex_span(hs, ray)).collect();
        (keep, minus)
    }
}

/// One piece of the femur and how it moved (femur frame → femur frame).
#[derive(Debug, Clone)]
pub struct Fragment {
    pub region: Region,
    pub motion: Rigid,
}

/// A cut surface between fragments: the part of `plane`'s boundary inside the bone and
/// inside `within`, seen on each fragment that carries it.
#[derive(Debug, Clone)]
pub struct CutFace {
    pub plane: HalfSpace,
    pub within: Region,
    pub motions: Vec<Rigid>,
}

/// The parameters drawn for one fracture, recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FractureParams {
    /// 0 (subtle) … 1 (obvious).
    pub severity: f64,
    /// Rotation of the moving fragment, degrees.
    pub rotation_deg: f64,
    /// Translation of the moving fragment, mm.
    pub translation_mm: f64,
    /// Cut position along the neck (0 shaft axis … 1 head centre), neck fractures.
    pub neck_position: f64,
    /// UF: reverse obliquity.
    pub reverse_obliquity: bool,
    /// UF: displacement of the lesser-trochanter fragment, mm.
    pub lesser_trochanter_mm: f64,
}

/// A femur, cut or intact.
#[derive(Debug, Clone)]
pub struct Fracture {
    pub class: Option<FractureClass>,
    pub fragments: Vec<Fragment>,
    pub faces: Vec<CutFace>,
    pub params: FractureParams,
}

impl Fracture {
    /// An intact femur.
    pub fn none() -> Self {
        Fracture {
            class: None,
            fragments: vec![Fragment {
                region: Region::default(),
                motion: Rigid::IDENTITY,
            }],
            faces: vec![],
            params: FractureParams::default(),
        }
    }

    /// Draws a fracture of `class` with `severity`.
    pub fn sample(class: FractureClass, severity: f64, frame: &FemurFrame, rng: &mut impl Rng) -> Self {
        match class {
            FractureClass::DisplacedNeck | FractureClass::ValgusImpactedNeck => neck(class, severity, frame, rng),
            FractureClass::StableIntertrochanteric | FractureClass::UnstableIntertrochanteric => {
                intertrochanteric(class, severity, frame, rng)
            }
        }
    }

    /// Sample points of every cut face inside the bone, in the femur frame after the
    /// fragments moved (each face point once per fragment carrying it).
    pub fn face_points(&self, bone: &Bone, step: f64) -> Vec<V3> {
        let mut points = Vec::new();
        for face in &self.faces {
            let normal = face.plane.normal.unit();
            let helper = if normal.0.abs() < 0.9 {
                V3(1.0, 0.0, 0.0)
            } else {
                V3(0.0, 1.0, 0.0)
            };
            let a = normal.cross(helper).unit();
            let b = normal.cross(a);
            let steps = (80.0 / step) as i32;
            for i in -steps..=steps {
                for j in -steps..=steps {
                    let p = face.plane.point + a * (i as f64 * step) + b * (j as f64 * step);
                    if bone.contains(p) && face.within.contains(p) {
                        points.extend(face.motions.iter().map(|m| m.apply(p)));
                    }
                }
            }
        }
        points
    }

    /// How far the fragments on either side of the first cut moved apart at its centre, mm.
    pub fn displacement_at_cut(&self) -> f64 {
        self.faces.first().map_or(0.0, |f| {
            let p = f.plane.point;
            f.motions
                .windows(2)
                .map(|w| (w[0].apply(p) - w[1].apply(p)).norm())
                .fold(0.0, f64::max)
        })
    }
}

fn rot_z(deg: f64) -> M3 {
    M3::rotation(V3(0.0, 0.0, 1.0), deg.to_radians())
}

fn neck(class: FractureClass, s: f64, frame: &FemurFrame, rng: &mut impl Rng) -> Fracture {
    let displaced = class == FractureClass::DisplacedNeck;
    let n = frame.neck_axis;
    let neck_length = frame.head_center.norm();
    // Subcapital to transcervical; the plane tilts within the AP plane (Pauwels angle).
    let position = if displaced {
        rng.gen_range(0.55..0.8)
    } else {
        rng.gen_range(0.62..0.8)
    };
    let point = n * (position * neck_length);
    let tilt = rng.gen_range(-22.0..22.0f64);
    let normal = rot_z(tilt).apply(n).unit();
    let towards_head = HalfSpace { point, normal: -normal }; // normal·(p−P) ≥ 0
    let towards_shaft = towards_head.flipped();
    let head = frame.head_center;
    let (head_motion, shaft_motion, rotation, translation) = if displaced {
        let varus = 8.0 + 24.0 * s;
        let head_motion = Rigid {
            rotation: rot_z(-varus),
            pivot: head,
            translation: V3::default(),
        };
        let external = 8.0 + 32.0 * s;
        let rise = 3.0 + 14.0 * s;
        let shaft_rotation = M3::rotation(V3(0.0, 1.0, 0.0), external.to_radians());
        let lateral = rng.gen_range(0.0..4.0) * s;
        let shaft_motion = Rigid {
            rotation: shaft_rotation,
            pivot: V3::default(),
            translation: V3(-lateral, -rise, 0.0),
        };
        (head_motion, shaft_motion, varus.max(external), rise)
    } else {
        let valgus = 4.0 + 14.0 * s;
        let head_motion = Rigid {
            rotation: rot_z(valgus),
            pivot: head,
            translation: V3::default(),
        };
        // The neck is driven into the head along its axis: the fragments overlap.
        let impaction = 1.5 + 4.5 * s;
        let shaft_motion = Rigid {
            rotation: M3::IDENTITY,
            pivot: V3::default(),
            translation: n * impaction,
        };
        (head_motion, shaft_motion, valgus, impaction)
    };
    Fracture {
        class: Some(class),
        fragments: vec![
            Fragment {
                region: Region {
                    keep: vec![towards_head],
                    minus: vec![],
                },
                motion: head_motion,
            },
            Fragment {
                region: Region {
                    keep: vec![towards_shaft],
                    minus: vec![],
                },
                motion: shaft_motion,
            },
        ],
        faces: vec![CutFace {
            plane: towards_shaft,
            within: Region::default(),
            motions: vec![head_motion, shaft_motion],
        }],
        params: FractureParams {
            severity: s,
            rotation_deg: rotation,
            translation_mm: translation,
            neck_position: position,
            ..Default::default()
        },
    }
}

fn intertrochanteric(class: FractureClass, s: f64, frame: &FemurFrame, rng: &mut impl Rng) -> Fracture {
    let unstable = class == FractureClass::UnstableIntertrochanteric;
    let reverse = unstable && rng.gen_bool(0.25);
    let gt = frame.greater_trochanter;
    let lt = frame.lesser_trochanter;
    let r = frame.shaft_radius;
    // Evans: from just below the greater trochanter to just above the lesser; reverse
    // obliquity runs from the lateral cortex below the trochanters up to the medial side.
    let (lateral, medial) = if reverse {
        (V3(-r - 2.0, lt.1 + 12.0, 0.0), V3(lt.0 - 2.0, lt.1 - 26.0, 0.0))
    } else {
        (
            V3(gt.0 - 2.0, gt.1 + 16.0 + rng.gen_range(-4.0..4.0), 0.0),
            V3(lt.0 - 3.0, lt.1 - 9.0 + rng.gen_range(-3.0..3.0), 0.0),
        )
    };
    let along = (medial - lateral).unit();
    let mut normal = V3(-along.1, along.0, rng.gen_range(-0.15..0.15)).unit();
    // The greater trochanter stays with the head-neck fragment in both patterns.
    if normal.dot(gt - lateral) < 0.0 {
        normal = -normal;
    }
    let cut = HalfSpace {
        point: lateral,
        normal: -normal,
    }; // inside = proximal side
       // The distal fragment is the distal side of the cut; a reverse-oblique line, rising
       // medially, would meet the head if extended, so it is closed off at the medial cortex by
       // a plane through its medial end (the distal side also lies below that plane).
    let mut distal_region = vec![cut.flipped()];
    if reverse {
        distal_region.push(HalfSpace {
            point: medial,
            normal: V3(0.0, -1.0, 0.0),
        });
    }
    let proximal_region = Region {
        keep: vec![],
        minus: vec![distal_region.clone()],
    };
    let head = frame.head_center;
    if !unstable {
        // Small hinge at the intact medial cortex, a thin gap laterally.
        let hinge = 0.5 + 3.0 * s;
        let gap = 0.6 + 1.4 * s;
        let shaft_motion = Rigid {
            rotation: rot_z(-hinge),
            pivot: medial,
            translation: -normal * gap,
        };
        let head_motion = Rigid::IDENTITY;
        return Fracture {
            class: Some(class),
            fragments: vec![
                Fragment {
                    region: proximal_region,
                    motion: head_motion,
                },
                Fragment {
                    region: Region {
                        keep: distal_region.clone(),
                        minus: vec![],
                    },
                    motion: shaft_motion,
                },
            ],
            faces: vec![CutFace {
                plane: cut,
                within: Region::default(),
                motions: vec![head_motion, shaft_motion],
            }],
            params: FractureParams {
                severity: s,
                rotation_deg: hinge,
                translation_mm: gap,
                ..Default::default()
            },
        };
    }
    // Lesser-trochanter fragment: below the main cut, medial of a vertical plane, above a
    // plane under the trochanter.
    let lt_lateral = HalfSpace {
        point: V3(lt.0 - 11.0, 0.0, 0.0),
        normal: V3(-1.0, 0.0, 0.15).unit(),
    };
    let lt_below = HalfSpace {
        point: V3(0.0, lt.1 + 15.0, 0.0),
        normal: V3(0.25, 1.0, 0.0).unit(),
    };
    let mut lt_region = distal_region.clone();
    lt_region.extend([lt_lateral, lt_below]);
    let varus = 3.0 + 9.0 * s;
    let shortening = 3.0 + 10.0 * s;
    let shaft_motion = Rigid {
        rotation: rot_z(-varus),
        pivot: head,
        translation: V3(2.0 + 5.0 * s, -shortening, 0.0),
    };
    let lt_shift = 4.0 + 9.0 * s;
    let lt_motion = Rigid {
        rotation: rot_z(10.0 + 25.0 * s),
        pivot: lt,
        translation: V3(0.55 * lt_shift, -0.8 * lt_shift, rng.gen_range(-2.0..2.0)),
    };
    let head_motion = Rigid::IDENTITY;
    Fracture {
        class: Some(class),
        fragments: vec![
            Fragment {
                region: proximal_region,
                motion: head_motion,
            },
            Fragment {
                region: Region {
                    keep: distal_region.clone(),
                    minus: vec![lt_region.clone()],
                },
                motion: shaft_motion,
            },
            Fragment {
                region: Region {
                    keep: lt_region.clone(),
                    minus: vec![],
                },
                motion: lt_motion,
            },
        ],
        faces: {
            let mut faces = vec![
                CutFace {
                    plane: cut,
                    within: Region {
                        keep: distal_region[1..].to_vec(),
                        minus: vec![lt_region.clone()],
                    },
                    motions: vec![head_motion, shaft_motion],
                },
                CutFace {
                    plane: cut,
                    within: Region {
                        keep: lt_region[1..].to_vec(),
                        minus: vec![],
                    },
                    motions: vec![head_motion, lt_motion],
                },
                CutFace {
                    plane: lt_lateral,
                    within: Region {
                        keep: vec![distal_region[0], lt_below],
                        minus: vec![],
                    },
                    motions: vec![shaft_motion, lt_motion],
                },
                CutFace {
                    plane: lt_below,
                    within: Region {
                        keep: vec![distal_region[0], lt_lateral],
                        minus: vec![],
                    },
                    motions: vec![shaft_motion, lt_motion],
                },
            ];
            if reverse {
                faces.push(CutFace {
                    plane: distal_region[1],
                    within: Region {
                        keep: vec![distal_region[0]],
                        minus: vec![],
                    },
                    motions: vec![head_motion, shaft_motion],
                });
            }
            faces
        },
        params: FractureParams {
            severity: s,
            rotation_deg: varus,
            translation_mm: shortening,
            reverse_obliquity: reverse,
            lesser_trochanter_mm: lt_shift,
            ..Default::default()
        },
    }
}
