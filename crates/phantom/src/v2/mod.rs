//! Phantom v2 (issue 27, first core): radiographs projected from 3D anatomy with X-ray
//! physics, opt-in beside v1 (`hipfrac phantom --generator v2`). v1 stays the default and
//! writes the same bytes per seed.
//!
//! - [`anatomy`]: both proximal femora, both hemipelves and the sacrum as smooth
//!   signed-distance fields in millimetres (cortical shell of varying thickness, cancellous
//!   bone with a 3D trabecular texture), the lower lumbar spine, bowel gas;
//! - [`project`]: rays from a point source through the patient to each detector pixel
//!   (magnification ≈ 1.2 at the hip), path lengths per material, a polychromatic spectrum
//!   by kVp (beam hardening), then v1's acquisition chain with v2's reader ([`acquire`]:
//!   scatter, blur before quantum noise, log, dynamic range compression, tone curve, unsharp
//!   masking, a gradation to a dark-grey anatomy) and v1's DICOM/PNG/VOC writers;
//! - [`fracture`]: the four fracture types as 3D events: planes split the femur into
//!   fragments that move rigidly, cut faces without cortex, overlapping fragments summed
//!   (DF: neck cut, head in varus, shaft externally rotated and migrated; VF: head tilted into
//!   valgus and impacted onto the neck; SF: intertrochanteric cut with a small varus gap; UF:
//!   the same or a reverse-oblique cut, a lesser-trochanter fragment, varus collapse);
//! - exact boxes from the 3D geometry: `hip` boxes are the projected pixels whose rays cross
//!   the proximal femur (head to just below the lesser trochanter); a fracture's box is the
//!   projection of every fragment's cut faces.
//!
//! Not yet: implants, children, an object-dependent scatter kernel, detector
//! noise power shaping, burned-in text (see docs/phantom.md).

pub mod acquire;
pub mod anatomy;
pub mod fracture;
pub mod project;
pub mod sdf;

use crate::acquisition::SiteProfile;
use crate::output::{write_case, GenerateOptions, OutputError, PhantomRow};
use crate::{finish, flip, CasePlan, ClassMix, Simulated, BOX_MARGIN_MM, HIP_MARGIN_MM};
use anatomy::{femur_pose, FemurModel, FemurPiece, Gas, Hemipelvis, Params3, Sacrum, Solid, Spine};
use fracture::Fracture3;
use hipfrac_core::BBox;
use project::{Body, Detector, Spectrum};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use sdf::{Motion, P3};
use std::sync::Arc;

/// Source-to-image distance of an AP hip, mm (115 cm, a common bucky setting).
pub const SOURCE_IMAGE_DISTANCE_MM: f64 = 1150.0;
/// Total filtration of the tube, mm aluminium.
pub const FILTRATION_AL_MM: f32 = 2.5;

/// Everything projected for one case.
pub struct Scene3 {
    pub params: Params3,
    pub femur: Arc<FemurModel>,
    pub pose: Motion,
    pub fracture: Option<Fracture3>,
    pub pieces: Vec<FemurPiece>,
    pub other: FemurPiece,
    pub pelvis: [Hemipelvis; 2],
    pub sacrum: Sacrum,
    pub spine: Spine,
    pub gas: Option<Gas>,
    pub body: Body,
}

impl Scene3 {
    /// The case's scene; `intact` leaves the femur whole whatever the label.
    pub fn new(case: &CasePlan, intact: bool) -> Self {
        let p = Params3::new(&case.params);
        let seed = p.texture_seed;
        let femur = Arc::new(FemurModel::new(&p, seed));
        let other_model = Arc::new(FemurModel::new(&p, seed ^ 0x0f0f_0f0f));
        let pose = femur_pose(p.abduction, p.leg_rotation);
        let m = p.half_pelvis;
        let fracture = match (case.label.fracture(), intact) {
            (Some(class), false) => {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(case.fracture_seed);
                Some(Fracture3::sample(class, &femur, case.severity, &mut rng))
            }
            _ => None,
        };
        let pieces = match &fracture {
            None => vec![FemurPiece::new(femur.clone(), pose, None, None, 0)],
            Some(f) => f
                .fragments
                .iter()
                .map(|fragment| {
                    FemurPiece::new(
                        femur.clone(),
                        pose.after(&fragment.motion),
                        None,
                        Some(fragment.region.clone()),
                        0,
                    )
                })
                .collect(),
        };
        let other = FemurPiece::new(
            other_model,
            femur_pose(p.other_abduction, p.other_leg_rotation),
            Some(m),
            None,
            1,
        );
        let body = Body {
            midline: m,
            half_width: trunk_half_width(&p),
            half_depth: p.body_half_depth,
            depth_center: 15.0 * p.scale,
            fat: p.fat,
            scale: p.scale,
        };
        Scene3 {
            pelvis: [
                Hemipelvis::new(&p, None, seed ^ 0x1111),
                Hemipelvis::new(&p, Some(m), seed ^ 0x2222),
            ],
            sacrum: Sacrum::new(&p, seed ^ 0x3333),
            spine: Spine::new(&p, seed ^ 0x4444),
            gas: Gas::new(&p, case.image_seed),
            femur,
            pose,
            fracture,
            pieces,
            other,
            body,
            params: p,
        }
    }

    pub fn solids(&self) -> Vec<&dyn Solid> {
        let mut out: Vec<&dyn Solid> = Vec::new();
        for piece in &self.pieces {
            out.push(piece);
        }
        out.push(&self.other);
        out.push(&self.pelvis[0]);
        out.push(&self.pelvis[1]);
        out.push(&self.sacrum);
        out.push(&self.spine);
        if let Some(gas) = &self.gas {
            out.push(gas);
        }
        out
    }

    /// Each fragment's cut-face points inside the bone, every `step` mm, in the world (one
    /// list per piece; empty without a fracture).
    pub fn face_points_world(&self, step: f32) -> Vec<Vec<P3>> {
        let Some(f) = &self.fracture else {
            return Vec::new();
        };
        self.pieces
            .iter()
            .enumerate()
            .map(|(k, piece)| {
                f.face_points(&self.femur, k, step)
                    .into_iter()
                    .map(|q| piece.world(q))
                    .collect()
            })
            .collect()
    }

    /// Where a point of the femur's frame (the simulated femur) is in the world, carried by
    /// the fragment that holds it.
    pub fn femur_point_world(&self, q: P3) -> P3 {
        let k = self.fracture.as_ref().map_or(0, |f| f.fragment_of(q));
        self.pieces[k].world(q)
    }
}

/// Half the trunk's width at the hips, mm: the patient's draw, but at least what covers the
/// greater trochanters (about 70 mm lateral of the hip centre) with 20 mm of muscle and the
/// patient's fat, as lying supine spreads the soft tissue (v1's draw alone could leave the
/// trochanters outside the skin, and the film's flanks black).
pub fn trunk_half_width(p: &Params3) -> f32 {
    p.body_half_width.max(p.half_pelvis + 90.0 * p.scale + p.fat)
}

/// The field of an AP pelvis at the detector, mm: landscape, the 43 × 35 cm cassette's
/// aspect, widened so that a hip box spans what it spans on real AP pelvis films (hipfrac's
/// hip boxes on the FracAtlas films: median width 0.227 of the film's longer side; v2's 0.269
/// at 430 × 350 mm, 0.234 at this field). A framing choice, not a physical cassette: the
/// mismatch may as well come from the anatomy's scale or the magnification.
pub const PELVIS_FIELD_MM: [f64; 2] = [505.0, 411.0];

/// Whether a case is an AP pelvis (both hips, centred on the midline) rather than the site's
/// AP hip: half of them, drawn from the image's seed. Suspected hip fractures are imaged with
/// both views, so a site's films hold both framings.
pub fn pelvis_view(case: &CasePlan) -> bool {
    image_draw(case, 0x7065_6c76_6973).gen_bool(0.5)
}

/// A random stream of its own per image and purpose (`salt`), from the image's seed, so that a
/// framing draw never shifts another.
fn image_draw(case: &CasePlan, salt: u64) -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::seed_from_u64(case.image_seed ^ salt)
}

/// Whether an AP pelvis is taken on an upright (portrait) cassette, the field turned to hold
/// the pelvis and both upper femora, as on about a third of the real AP films hipfrac holds:
/// 40 % of them, drawn from the image's seed.
pub fn portrait_pelvis(case: &CasePlan) -> bool {
    image_draw(case, 0x706f_7274_7261_6974).gen_bool(0.4)
}

/// How often a film is stored turned by 90° (as some real films are, the PACS showing them on
/// their side).
pub const TURNED_FRACTION: f64 = 0.08;

/// Whether a film is stored turned by 90° ([`TURNED_FRACTION`] of them, drawn from the
/// image's seed), and which way: `Some(true)` a quarter turn clockwise.
pub fn stored_turn(case: &CasePlan) -> Option<bool> {
    let mut rng = image_draw(case, 0x7475_726e);
    rng.gen_bool(TURNED_FRACTION).then(|| rng.gen_bool(0.5))
}

/// The detector of a case, 55 mm behind the patient's back: an AP hip takes the site's field
/// (at the detector) and pixel count with the central ray where v1 centres its view; an AP
/// pelvis ([`pelvis_view`]) takes [`PELVIS_FIELD_MM`] at the same pixel count of its longer
/// side, centred on the midline between the iliac crests and the lesser trochanters, or, on a
/// portrait cassette ([`portrait_pelvis`]), the same field turned upright, a tenth larger, and
/// centred 60 mm below the hip centres (L3–L5 above, as far as v2 models the spine, to the
/// femoral shafts' modelled length below).
pub fn detector(case: &CasePlan, site: &SiteProfile, size: usize, p: &Params3) -> Detector {
    let detector_z = (15.0 * p.scale + p.body_half_depth + 55.0) as f64;
    let (width, height, spacing, center) = if pelvis_view(case) {
        let [mut w, mut h] = PELVIS_FIELD_MM;
        let mut center_y = -35.0 * p.scale as f64;
        if portrait_pelvis(case) {
            // Turned upright and a tenth larger, so the trochanters stay in the narrower width.
            (w, h) = (1.1 * h, 1.1 * w);
            center_y = 60.0 * p.scale as f64;
        }
        let spacing = w.max(h) / size as f64;
        (
            (w / spacing).round() as usize,
            (h / spacing).round() as usize,
            spacing,
            (
                p.half_pelvis as f64 + 0.5 * case.view_offset.0,
                center_y + 0.5 * case.view_offset.1,
            ),
        )
    } else {
        let (width, height, spacing) = site.image_size(size);
        (
            width,
            height,
            spacing,
            (
                0.15 * p.half_pelvis as f64 + case.view_offset.0,
                15.0 + case.view_offset.1,
            ),
        )
    };
    Detector {
        width,
        height,
        spacing,
        center,
        source_distance: SOURCE_IMAGE_DISTANCE_MM - detector_z,
        detector_z,
    }
}

/// The effective attenuation `−ln(I/I₀)` as written (left hips flipped) with the hip mask
/// bits per pixel, for tests and inspection.
pub fn attenuation(case: &CasePlan, site: &SiteProfile, size: usize, intact: bool) -> (Vec<f32>, Vec<u8>, Detector) {
    let scene = Scene3::new(case, intact);
    let detector = detector(case, site, size, &scene.params);
    let paths = project::paths(&detector, &scene.solids(), &scene.body);
    let spectrum = Spectrum::new(site.kvp, FILTRATION_AL_MM);
    let mut image: Vec<f32> = paths.iter().map(|p| spectrum.attenuation(p)).collect();
    let mut hips: Vec<u8> = paths.iter().map(|p| p.hips).collect();
    if !case.params.right_side {
        flip(&mut image, detector.width);
        flip(&mut hips, detector.width);
    }
    (image, hips, detector)
}

fn bounding_box(points: impl Iterator<Item = (f64, f64)>) -> Option<[f64; 4]> {
    let mut b = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    let mut any = false;
    for (x, y) in points {
        any = true;
        b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
    }
    any.then_some(b)
}

/// Renders one case with v2.
pub fn simulate(case: &CasePlan, site: &SiteProfile, size: usize) -> Simulated {
    let scene = Scene3::new(case, false);
    let detector = detector(case, site, size, &scene.params);
    let (width, height, spacing) = (detector.width, detector.height, detector.spacing);
    let paths = project::paths(&detector, &scene.solids(), &scene.body);
    let spectrum = Spectrum::new(site.kvp, FILTRATION_AL_MM);
    let mut image: Vec<f32> = paths.iter().map(|p| spectrum.attenuation(p)).collect();
    let mut mask: Vec<u8> = paths.iter().map(|p| p.hips).collect();
    let right = case.params.right_side;
    if !right {
        flip(&mut image, width);
        flip(&mut mask, width);
    }
    let (display, field) = acquire::expose(&image, width, height, spacing, site, &case.exposure);

    let as_written = |(x, y): (f64, f64)| (if right { x } else { width as f64 - x }, y);
    let mut boxes = Vec::new();
    if let Some(fracture) = &scene.fracture {
        let points = scene.face_points_world(1.0);
        if let Some(b) = bounding_box(points.iter().flatten().map(|&p| as_written(detector.project(p)))) {
            let margin = BOX_MARGIN_MM / spacing;
            let bbox = BBox::new(
                (b[0] - margin).floor().max(0.0) as f32,
                (b[1] - margin).floor().max(0.0) as f32,
                (b[2] + margin).ceil().min(width as f64) as f32,
                (b[3] + margin).ceil().min(height as f64) as f32,
            );
            if !bbox.is_degenerate() {
                boxes.push((fracture.class, bbox));
            }
        }
    }
    let mut hips = hip_boxes(&mask, width, height, spacing, boxes.first().map(|(_, b)| b));
    let radiograph = match stored_turn(case) {
        None => finish(case, site, width, height, spacing, display, field),
        Some(clockwise) => {
            let turn = Turn {
                width,
                height,
                clockwise,
            };
            for (_, b) in &mut boxes {
                *b = turn.bbox(b);
            }
            for b in &mut hips {
                *b = turn.bbox(b);
            }
            finish(
                case,
                site,
                height,
                width,
                spacing,
                turn.image(&display),
                turn.rect(field),
            )
        }
    };
    Simulated {
        radiograph,
        boxes,
        hips,
        fracture: scene.fracture.as_ref().map(|f| f.params.clone()).unwrap_or_default(),
    }
}

/// A quarter turn of a `width` × `height` image (the turned one is `height` wide).
#[derive(Debug, Clone, Copy)]
pub struct Turn {
    pub width: usize,
    pub height: usize,
    pub clockwise: bool,
}

impl Turn {
    /// Where the point `(x, y)` of the image (pixel edges, not centres) lands.
    pub fn point(&self, x: f32, y: f32) -> (f32, f32) {
        if self.clockwise {
            (self.height as f32 - y, x)
        } else {
            (y, self.width as f32 - x)
        }
    }

    /// The turned pixel rectangle `[left, top, right, bottom)`.
    pub fn rect(&self, [left, top, right, bottom]: [usize; 4]) -> [usize; 4] {
        let (w, h) = (self.width, self.height);
        if self.clockwise {
            [h - bottom, left, h - top, right]
        } else {
            [top, w - right, bottom, w - left]
        }
    }

    pub fn bbox(&self, b: &BBox) -> BBox {
        let (ax, ay) = self.point(b.x_min, b.y_min);
        let (bx, by) = self.point(b.x_max, b.y_max);
        BBox::new(ax.min(bx), ay.min(by), ax.max(bx), ay.max(by))
    }

    /// The turned image.
    pub fn image<T: Copy>(&self, values: &[T]) -> Vec<T> {
        let (w, h) = (self.width, self.height);
        let mut out = Vec::with_capacity(values.len());
        for row in 0..w {
            for column in 0..h {
                // The source pixel whose centre lands on (column, row)'s centre.
                let (x, y) = if self.clockwise {
                    (row, h - 1 - column)
                } else {
                    (w - 1 - row, column)
                };
                out.push(values[y * w + x]);
            }
        }
        out
    }
}

/// `hip` boxes from the projected mask: the pixels whose rays cross a proximal femur (head
/// to just below the lesser trochanter), plus [`HIP_MARGIN_MM`]; the simulated hip's box
/// widened to hold the fracture box; the other hip's only when its region does not touch the
/// image's edge.
pub fn hip_boxes(mask: &[u8], width: usize, height: usize, spacing: f64, fracture: Option<&BBox>) -> Vec<BBox> {
    let margin = HIP_MARGIN_MM / spacing;
    let region = |bit: u8| {
        bounding_box(
            mask.iter()
                .enumerate()
                .filter(|(_, &m)| m & bit != 0)
                .flat_map(|(i, _)| {
                    let (x, y) = ((i % width) as f64, (i / width) as f64);
                    [(x, y), (x + 1.0, y + 1.0)]
                }),
        )
    };
    let to_box = |b: [f64; 4]| {
        BBox::new(
            (b[0] - margin).floor() as f32,
            (b[1] - margin).floor() as f32,
            (b[2] + margin).ceil() as f32,
            (b[3] + margin).ceil() as f32,
        )
    };
    let mut out = Vec::new();
    if let Some(b) = region(1) {
        let mut own = to_box(b);
        if let Some(f) = fracture {
            own = BBox::new(
                own.x_min.min(f.x_min),
                own.y_min.min(f.y_min),
                own.x_max.max(f.x_max),
                own.y_max.max(f.y_max),
            );
        }
        let own = own.clip(width as u32, height as u32);
        if !own.is_degenerate() {
            out.push(own);
        }
    }
    if let Some(b) = region(2) {
        let touches = b[0] <= 0.0 || b[1] <= 0.0 || b[2] >= width as f64 || b[3] >= height as f64;
        let other = to_box(b);
        if !touches && other.is_inside(width as u32, height as u32) && !other.is_degenerate() {
            out.push(other);
        }
    }
    out
}

/// The class mix v2 uses when none is given: v1's, the paper's internal set (DF 1410, VF 720,
/// SF 1044, UF 984, none 335).
pub fn default_mix() -> ClassMix {
    ClassMix::default()
}

/// Generates a dataset with v2, in v1's layout (DICOM, PNG + VOC, manifest); the DICOMs'
/// model name ends in "(phantom v2)".
pub fn generate(options: &GenerateOptions, progress: impl Fn() + Sync) -> Result<Vec<PhantomRow>, OutputError> {
    let manifest = options.out.join("manifest.csv");
    if manifest.exists() && !options.overwrite {
        return Err(OutputError::Exists(manifest));
    }
    let mut cases = crate::plan(options.count, &options.site, options.seed, &options.mix);
    for case in &mut cases {
        // v2 draws no implant yet; the manifest must not claim one.
        case.params.contralateral_implant = false;
    }
    let mut site = options.site.clone();
    site.model = format!("{} (phantom v2)", site.model);
    let rows: Vec<PhantomRow> = cases
        .par_iter()
        .map(|case| {
            let simulated = simulate(case, &options.site, options.size);
            let row = write_case(&options.out, case, &site, &simulated);
            progress();
            row
        })
        .collect::<Result<_, _>>()?;
    crate::output::write_manifest(&manifest, &rows)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_a_quarter_turn_moves_pixels_and_boxes_together() {
        // A 7 × 4 image with one marked pixel inside a box: after a quarter turn either way the
        // marked pixel is inside the turned box, the image is 4 wide, and turning back restores
        // the image and the box.
        let (width, height) = (7, 4);
        let mut image = vec![0u8; width * height];
        image[2 * width + 5] = 9;
        let b = BBox::new(4.0, 1.0, 6.0, 3.0);
        for clockwise in [true, false] {
            let turn = Turn {
                width,
                height,
                clockwise,
            };
            let turned = turn.image(&image);
            let at = turned.iter().position(|&v| v == 9).unwrap();
            let (x, y) = ((at % height) as f32 + 0.5, (at / height) as f32 + 0.5);
            let tb = turn.bbox(&b);
            assert!(
                tb.x_min < x && x < tb.x_max && tb.y_min < y && y < tb.y_max,
                "{clockwise}: {tb:?} ({x}, {y})"
            );
            assert_eq!((tb.x_max - tb.x_min, tb.y_max - tb.y_min), (2.0, 2.0));
            let back = Turn {
                width: height,
                height: width,
                clockwise: !clockwise,
            };
            assert_eq!(back.image(&turned), image);
            assert_eq!(back.bbox(&tb), b);
        }
    }

    #[test]
    fn v2_framings_and_turns_are_drawn_per_image() {
        // Over 200 cases of a site: both pelvis cassettes and some films stored turned, about as
        // often as drawn.
        let site = SiteProfile::load("site-a").unwrap();
        let cases = crate::plan(200, &site, 7, &ClassMix::default());
        let pelvis: Vec<_> = cases.iter().filter(|c| pelvis_view(c)).collect();
        let portrait = pelvis.iter().filter(|c| portrait_pelvis(c)).count();
        let turned = cases.iter().filter(|c| stored_turn(c).is_some()).count();
        let clockwise = cases.iter().filter(|c| stored_turn(c) == Some(true)).count();
        assert!(
            (20..=60).contains(&portrait),
            "{portrait} of {} pelvis films portrait",
            pelvis.len()
        );
        assert!((5..=30).contains(&turned), "{turned} of 200 turned");
        assert!(
            clockwise > 0 && clockwise < turned,
            "{clockwise} of {turned} turned clockwise"
        );
    }
}
