//! hipfrac-phantom: a simulator of AP hip radiographs with the four fracture types of the
//! paper and exact boxes.
//!
//! **What it is:** a tool to drive tests, the demo and benchmarks where no labelled
//! hip-fracture radiographs can be had. **What it is not:** a model of real patients; a
//! detector's accuracy on phantom images is not clinical evidence.
//!
//! Pipeline: [`anatomy`] builds pelvis, femora and soft tissue as analytic bodies;
//! [`fracture`] cuts the femur and moves the fragments; [`render`] integrates attenuation
//! along parallel rays (I = I0·exp(−∫μ dl)); [`acquisition`] applies a hospital's X-ray unit
//! and plate reader (scatter, quantum noise, blur, heel effect, collimation, tone curve,
//! unsharp masking, bit depth, MONOCHROME1/2); [`output`] writes DICOM, PNG, VOC and a
//! manifest. Same seed → byte-identical output.

pub mod acquisition;
pub mod anatomy;
pub mod demo_set;
pub mod fracture;
pub mod geometry;
pub mod output;
pub mod render;
pub mod sheet;
pub mod texture;
pub mod v2;

use acquisition::{expose, Exposure, SiteProfile};
use anatomy::{mu, Bone, PatientParams};
use fracture::{Fracture, FractureParams, Region};
use geometry::{Rigid, V3};
use hipfrac_core::{
    BBox, FractureClass, Label, Laterality, ModalityLut, Photometric, Pixels, Radiograph, RadiographMeta, VoiFunction,
    Window,
};
use hipfrac_imaging::font;
use rand::{Rng, SeedableRng};
use render::{Body, Grid, Scene};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The label every phantom file carries, in DICOM Image Comments and the manifest.
pub const SIMULATED: &str = "SIMULATED IMAGE (hipfrac phantom) - not a patient";

/// Relative frequency of DF, VF, SF, UF and no fracture.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassMix(pub [f64; 5]);

impl Default for ClassMix {
    /// The paper's internal set: DF 1410, VF 720, SF 1044, UF 984, none 335.
    fn default() -> Self {
        ClassMix([1410.0, 720.0, 1044.0, 984.0, 335.0])
    }
}

/// A class mix (`--mix`) that cannot be used; each names the part of the text at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseMixError {
    /// A part without `=`.
    #[error("--mix {part:?}: expected LABEL=WEIGHT")]
    Syntax {
        /// The part.
        part: String,
    },
    /// A part whose label is not one of the five.
    #[error("--mix {part:?}")]
    Label {
        /// The part.
        part: String,
        /// The unknown label.
        #[source]
        source: hipfrac_core::ParseLabelError,
    },
    /// A weight that is not a number.
    #[error("--mix {part:?}: {value:?} is not a number")]
    NotANumber {
        /// The part.
        part: String,
        /// The weight as written.
        value: String,
    },
    /// A fracture of unknown type: the phantom always knows what it simulates.
    #[error("--mix {part:?}: the phantom simulates typed fractures; name DF, VF, SF, UF or none")]
    Untyped {
        /// The part.
        part: String,
    },
    /// A negative or infinite weight.
    #[error("--mix {part:?}: weights must be ≥ 0")]
    Negative {
        /// The part.
        part: String,
    },
    /// All weights zero.
    #[error("--mix {text:?}: at least one weight must be positive")]
    AllZero {
        /// The whole text.
        text: String,
    },
}

impl std::str::FromStr for ClassMix {
    type Err = ParseMixError;
    /// `DF=1410,VF=720,SF=1044,UF=984,none=335`; unnamed labels get 0.
    fn from_str(text: &str) -> Result<Self, ParseMixError> {
        let mut weights = [0.0; 5];
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| ParseMixError::Syntax { part: part.to_string() })?;
            let label: Label = name.trim().parse().map_err(|source| ParseMixError::Label {
                part: part.to_string(),
                source,
            })?;
            let weight: f64 = value.trim().parse().map_err(|_| ParseMixError::NotANumber {
                part: part.to_string(),
                value: value.to_string(),
            })?;
            if !(weight >= 0.0 && weight.is_finite()) {
                return Err(ParseMixError::Negative { part: part.to_string() });
            }
            if label == Label::UntypedFracture {
                return Err(ParseMixError::Untyped { part: part.to_string() });
            }
            weights[label.index()] = weight;
        }
        if weights.iter().sum::<f64>() <= 0.0 {
            return Err(ParseMixError::AllZero { text: text.to_string() });
        }
        Ok(ClassMix(weights))
    }
}

impl ClassMix {
    fn sample(&self, rng: &mut impl Rng) -> Label {
        let total: f64 = self.0.iter().sum();
        let mut pick = rng.gen::<f64>() * total;
        for (label, weight) in Label::ALL.iter().zip(self.0) {
            if pick < weight {
                return *label;
            }
            pick -= weight;
        }
        Label::NoFracture
    }
}

/// Everything that decides one image, drawn up front so rendering can run in any order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CasePlan {
    pub index: usize,
    /// File stem.
    pub name: String,
    pub patient_id: String,
    pub params: PatientParams,
    pub label: Label,
    pub severity: f64,
    pub fracture_seed: u64,
    pub exposure: Exposure,
    /// Field-of-view centre offset, mm.
    pub view_offset: (f64, f64),
    /// Seed of the per-image UIDs and gas.
    pub image_seed: u64,
}

/// Draws the cases of a run: patients with 1–3 images each (repeat exposures of the same
/// hip, so a patient-level split matters), classes from `mix`, severities skewed to subtle.
pub fn plan(count: usize, site: &SiteProfile, seed: u64, mix: &ClassMix) -> Vec<CasePlan> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ stable_hash(&site.name));
    let mut cases = Vec::with_capacity(count);
    let mut patient = 0;
    while cases.len() < count {
        patient += 1;
        let images = match rng.gen_range(0..10) {
            0..=5 => 1,
            6..=8 => 2,
            _ => 3,
        }
        .min(count - cases.len());
        let params = PatientParams::sample(&mut rng);
        let label = mix.sample(&mut rng);
        // Many fractures are subtle: severity leans towards 0.
        let severity = rng.gen::<f64>().powf(1.5);
        let fracture_seed = rng.gen();
        let patient_id = format!("PH-{}-{patient:05}-{:04X}", site.name, seed & 0xFFFF);
        for _ in 0..images {
            let index = cases.len();
            cases.push(CasePlan {
                index,
                name: format!("{}_{:06}", site.name, index),
                patient_id: patient_id.clone(),
                params: params.clone(),
                label,
                severity,
                fracture_seed,
                exposure: Exposure::sample(site, &mut rng),
                view_offset: (12.0 * anatomy::normal(&mut rng), 10.0 * anatomy::normal(&mut rng)),
                image_seed: rng.gen(),
            });
        }
    }
    cases
}

/// A deterministic 64-bit hash of a string (FNV-1a), stable across runs and platforms.
pub fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// A simulated image with its ground truth.
#[derive(Debug, Clone)]
pub struct Simulated {
    pub radiograph: Radiograph,
    /// Fracture boxes in pixels of the written image.
    pub boxes: Vec<(FractureClass, BBox)>,
    /// Proximal femur boxes (femoral head to lesser trochanter, [`hip_boxes`]) in pixels of
    /// the written image: the simulated hip's, and the other hip's when it is wholly in view.
    pub hips: Vec<BBox>,
    pub fracture: FractureParams,
}

/// The femur, its fracture and where it sits.
pub struct Femur {
    pub bone: Arc<Bone>,
    pub frame: anatomy::FemurFrame,
    pub pose: Rigid,
    pub fracture: Fracture,
}

impl Femur {
    pub fn new(case: &CasePlan, intact: bool) -> Self {
        let (bone, frame) = anatomy::femur(&case.params);
        let pose = anatomy::femur_pose(&case.params, &frame);
        let fracture = match (case.label.fracture(), intact) {
            (Some(class), false) => {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(case.fracture_seed);
                Fracture::sample(class, case.severity, &frame, &mut rng)
            }
            _ => Fracture::none(),
        };
        Femur {
            bone: Arc::new(bone),
            frame,
            pose,
            fracture,
        }
    }
}

fn moved_bone(bone: &Bone, motion: &Rigid, midline: Option<f64>) -> Bone {
    bone.map_shapes(|s| {
        let moved = s.moved(motion);
        midline.map_or(moved, |m| anatomy::mirror(&moved, m))
    })
}

/// The scene of a case.
pub fn scene(case: &CasePlan, femur: &Femur, site: &SiteProfile) -> Scene {
    let p = &case.params;
    let m = p.half_pelvis;
    let mut bodies = vec![Body::Tissue(anatomy::soft_tissue(p))];
    for fragment in &femur.fracture.fragments {
        bodies.push(Body::Bone {
            bone: femur.bone.clone(),
            region: fragment.region.clone(),
            motion: femur.pose.then(&fragment.motion),
        });
    }
    let identity = |bone: Bone| Body::Bone {
        bone: Arc::new(bone),
        region: Region::default(),
        motion: Rigid::IDENTITY,
    };
    bodies.push(identity(moved_bone(&femur.bone, &femur.pose, Some(m))));
    let pelvis = anatomy::hemipelvis(p, 3.0 * p.scale);
    bodies.push(identity(anatomy::contralateral(&pelvis, m)));
    bodies.push(identity(pelvis));
    bodies.push(identity(anatomy::sacrum(p)));
    if p.contralateral_implant {
        bodies.push(Body::Uniform {
            shapes: anatomy::implant(p, V3(2.0 * m, 0.0, 0.0)),
            mu: mu::METAL,
        });
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(p.texture_seed ^ case.image_seed);
    let gas = anatomy::gas(p, &mut rng);
    if !gas.is_empty() {
        bodies.push(Body::Uniform {
            shapes: gas,
            mu: -mu::MUSCLE,
        });
    }
    Scene {
        bodies,
        bone_contrast: site.bone_contrast,
    }
}

/// The detector grid of a case (before any left/right flip).
pub fn grid(case: &CasePlan, site: &SiteProfile, size: usize) -> Grid {
    let (width, height, spacing) = site.image_size(size);
    // An isolated hip view: centred just medial of the hip joint; the other hip is at most
    // partly in view.
    let center = (
        0.15 * case.params.half_pelvis + case.view_offset.0,
        15.0 + case.view_offset.1,
    );
    Grid {
        width,
        height,
        origin: (
            center.0 - (width as f64 - 1.0) / 2.0 * spacing,
            center.1 - (height as f64 - 1.0) / 2.0 * spacing,
        ),
        spacing,
    }
}

/// The attenuation image ∫μ dl as written (left hips flipped), for tests and inspection.
pub fn attenuation(case: &CasePlan, site: &SiteProfile, size: usize, intact: bool) -> (Vec<f32>, Grid) {
    let femur = Femur::new(case, intact);
    let grid = grid(case, site, size);
    let mut image = render::project(&scene(case, &femur, site), &grid);
    if !case.params.right_side {
        flip(&mut image, grid.width);
    }
    (image, grid)
}

fn flip<T>(image: &mut [T], width: usize) {
    for row in image.chunks_mut(width) {
        row.reverse();
    }
}

/// Margin around the projected cut surfaces, mm.
pub const BOX_MARGIN_MM: f64 = 4.0;

/// Pixel positions (as written) of the fracture's cut surfaces.
pub fn cut_pixels(femur: &Femur, grid: &Grid, right_side: bool, step_mm: f64) -> Vec<(f64, f64)> {
    femur
        .fracture
        .face_points(&femur.bone, step_mm)
        .into_iter()
        .map(|p| {
            let world = femur.pose.apply(p);
            let (x, y) = grid.pixel(world.0, world.1);
            (if right_side { x } else { grid.width as f64 - x }, y)
        })
        .collect()
}

/// Margin around a proximal femur's outline in its hip box, mm.
pub const HIP_MARGIN_MM: f64 = 3.0;

/// The proximal femur boxes of a case, in pixels as written: the bounding box of the femoral
/// head, the greater and lesser trochanters and the shaft just below the lesser trochanter
/// (its outline in the femur's own frame, placed by the pose and projected along the beam),
/// with [`HIP_MARGIN_MM`], widened to hold the fracture's box. The other hip (the intact femur
/// mirrored about the pelvic midline) gets its box only when it lies wholly in the image.
pub fn hip_boxes(case: &CasePlan, femur: &Femur, grid: &Grid, fracture: Option<&BBox>) -> Vec<BBox> {
    let s = case.params.scale;
    let f = &femur.frame;
    let mut outline = Vec::new();
    let mut extremes = |c: V3, rx: f64, ry: f64, rz: f64| {
        for (dx, dy, dz) in [
            (rx, 0.0, 0.0),
            (-rx, 0.0, 0.0),
            (0.0, ry, 0.0),
            (0.0, -ry, 0.0),
            (0.0, 0.0, rz),
            (0.0, 0.0, -rz),
        ] {
            outline.push(V3(c.0 + dx, c.1 + dy, c.2 + dz));
        }
    };
    extremes(f.head_center, f.head_radius, f.head_radius, f.head_radius);
    extremes(f.greater_trochanter, 15.0 * s, 24.0 * s, 16.0 * s);
    extremes(f.lesser_trochanter, 8.0 * s, 9.0 * s, 7.0 * s);
    extremes(V3(0.0, f.lesser_trochanter.1 + 9.0 * s, 0.0), 18.5 * s, 0.0, 17.5 * s);
    let world: Vec<V3> = outline.iter().map(|&p| femur.pose.apply(p)).collect();
    let margin = HIP_MARGIN_MM / grid.spacing;
    let width = grid.width as f64;
    let right = case.params.right_side;
    let to_box = |points: &mut dyn Iterator<Item = (f64, f64)>| {
        let (mut x0, mut y0, mut x1, mut y1) = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
        for (x, y) in points {
            let (x, y) = grid.pixel(x, y);
            let x = if right { x } else { width - x };
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
        BBox::new(
            (x0 - margin).floor() as f32,
            (y0 - margin).floor() as f32,
            (x1 + margin).ceil() as f32,
            (y1 + margin).ceil() as f32,
        )
    };
    let mut own = to_box(&mut world.iter().map(|p| (p.0, p.1)));
    if let Some(b) = fracture {
        own = BBox::new(
            own.x_min.min(b.x_min),
            own.y_min.min(b.y_min),
            own.x_max.max(b.x_max),
            own.y_max.max(b.y_max),
        );
    }
    let mut boxes = Vec::new();
    let own = own.clip(grid.width as u32, grid.height as u32);
    if !own.is_degenerate() {
        boxes.push(own);
    }
    let m = case.params.half_pelvis;
    let other = to_box(&mut world.iter().map(|p| (2.0 * m - p.0, p.1)));
    if other.is_inside(grid.width as u32, grid.height as u32) && !other.is_degenerate() {
        boxes.push(other);
    }
    boxes
}

/// Renders one case.
pub fn simulate(case: &CasePlan, site: &SiteProfile, size: usize) -> Simulated {
    let femur = Femur::new(case, false);
    let grid = grid(case, site, size);
    let (width, height) = (grid.width, grid.height);
    let mut image = render::project(&scene(case, &femur, site), &grid);
    let right = case.params.right_side;
    if !right {
        flip(&mut image, width);
    }
    let (display, field) = expose(&image, width, height, grid.spacing, site, &case.exposure);
    let radiograph = finish(case, site, width, height, grid.spacing, display, field);
    let mut boxes = Vec::new();
    if let Some(class) = femur.fracture.class {
        let points = cut_pixels(&femur, &grid, right, 1.0);
        if !points.is_empty() {
            let margin = BOX_MARGIN_MM / grid.spacing;
            let (mut x0, mut y0, mut x1, mut y1) = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
            for (x, y) in points {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x);
                y1 = y1.max(y);
            }
            let bbox = BBox::new(
                (x0 - margin).floor().max(0.0) as f32,
                (y0 - margin).floor().max(0.0) as f32,
                (x1 + margin).ceil().min(width as f64) as f32,
                (y1 + margin).ceil().min(height as f64) as f32,
            );
            if !bbox.is_degenerate() {
                boxes.push((class, bbox));
            }
        }
    }
    let hips = hip_boxes(case, &femur, &grid, boxes.first().map(|(_, b)| b));
    Simulated {
        radiograph,
        boxes,
        hips,
        fracture: femur.fracture.params.clone(),
    }
}

/// The stored radiograph from the display values in [0, 1] (bright = dense) and the exposed
/// field: the site's lead side marker, bits stored, MONOCHROME1/2, a default window from the
/// field's 1st–99th percentiles, and the DICOM attributes of the case. Shared by v1 and
/// [`v2`].
pub(crate) fn finish(
    case: &CasePlan,
    site: &SiteProfile,
    width: usize,
    height: usize,
    spacing: f64,
    mut display: Vec<f32>,
    field: [usize; 4],
) -> Radiograph {
    let right = case.params.right_side;
    if site.side_marker {
        // A lead letter in the upper lateral corner of the field.
        let scale = (height / 110).max(2) as i64;
        let text = if right { "R" } else { "L" };
        let margin = 3 * scale;
        let x0 = if right {
            field[0] as i64 + margin
        } else {
            field[2] as i64 - margin - font::width(text, scale)
        };
        let y0 = field[1] as i64 + margin;
        font::draw(text, x0, y0, scale, |x, y| {
            if x >= 0 && y >= 0 && (x as usize) < width && (y as usize) < height {
                display[y as usize * width + x as usize] = 1.0;
            }
        });
    }
    let max = ((1u32 << site.bits_stored) - 1) as f32;
    let mono1 = site.photometric == "MONOCHROME1";
    let stored: Vec<u16> = display
        .iter()
        .map(|&d| {
            let v = (d * max).round() as u16;
            if mono1 {
                max as u16 - v
            } else {
                v
            }
        })
        .collect();
    // Default window: 1st–99th percentile of the stored values inside the field.
    let mut values: Vec<u16> = (field[1]..field[3])
        .flat_map(|y| (field[0]..field[2]).map(move |x| (x, y)))
        .map(|(x, y)| stored[y * width + x])
        .collect();
    values.sort_unstable();
    let pick = |p: f64| values[((values.len() - 1) as f64 * p).round() as usize] as f64;
    let (lo, hi) = (pick(0.01), pick(0.99));
    let window = Window {
        center: ((lo + hi) / 2.0).round(),
        width: (hi - lo).max(2.0).round(),
        explanation: Some("PHANTOM".into()),
    };

    let uid = |kind: &str| {
        let h = stable_hash(&format!("{}/{}/{}/{kind}", site.name, case.patient_id, case.image_seed));
        // 2.25.<decimal of a 128-bit number> (PS3.5 B.2), from two stable hashes.
        let wide = ((h as u128) << 64) | stable_hash(&format!("{h}{kind}")) as u128;
        format!("2.25.{wide}")
    };
    let mut meta = RadiographMeta::plain(height as u32, width as u32, site.bits_stored);
    meta.photometric = if mono1 {
        Photometric::Monochrome1
    } else {
        Photometric::Monochrome2
    };
    meta.modality_lut = ModalityLut::default();
    meta.windows = vec![window];
    meta.voi_function = VoiFunction::Linear;
    meta.pixel_spacing_mm = Some([spacing, spacing]);
    meta.pixel_spacing_source = Some("PixelSpacing".into());
    meta.modality = Some("CR".into());
    meta.sop_class_uid = Some(hipfrac_dicom::write::CR_IMAGE_STORAGE.into());
    meta.sop_instance_uid = Some(uid("sop"));
    meta.study_instance_uid = Some(uid("study"));
    meta.series_instance_uid = Some(uid("series"));
    meta.patient_id = Some(case.patient_id.clone());
    meta.laterality = Some(if right { Laterality::Right } else { Laterality::Left });
    meta.body_part = Some("HIP".into());
    meta.institution = Some(site.institution.clone());
    Radiograph {
        meta,
        pixels: Pixels::Unsigned(stored),
    }
}
