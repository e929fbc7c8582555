//! Projection: the line integral of attenuation along parallel rays (the beam along +z)
//! through every body, for every detector pixel. Chords are analytic; bodies are culled per
//! tile by their projected bounds; tiles render in parallel.

use crate::anatomy::{mu, Bone, SoftTissue};
use crate::fracture::Region;
use crate::geometry::{Ray, Rigid, Shape, Spans, V3};
use rayon::prelude::*;
use std::sync::Arc;

/// A body in the scene.
#[derive(Debug, Clone)]
pub enum Body {
    /// A bone (or one fragment of it): `motion` takes its local frame to the world.
    Bone {
        bone: Arc<Bone>,
        region: Region,
        motion: Rigid,
    },
    /// Fat and muscle.
    Tissue(SoftTissue),
    /// A uniform material (metal; gas as negative muscle).
    Uniform { shapes: Vec<Shape>, mu: f64 },
}

/// The bodies and the detector grid.
#[derive(Debug, Clone)]
pub struct Scene {
    pub bodies: Vec<Body>,
    /// Bone contrast relative to water (the site's kVp): 1 = nominal.
    pub bone_contrast: f64,
}

/// Where the detector pixels lie in the world.
#[derive(Debug, Clone, Copy)]
pub struct Grid {
    pub width: usize,
    pub height: usize,
    /// World position of pixel (0, 0)'s centre, mm.
    pub origin: (f64, f64),
    /// Pixel spacing, mm.
    pub spacing: f64,
}

impl Grid {
    pub fn world(&self, column: f64, row: f64) -> (f64, f64) {
        (
            self.origin.0 + column * self.spacing,
            self.origin.1 + row * self.spacing,
        )
    }
    pub fn pixel(&self, x: f64, y: f64) -> (f64, f64) {
        (
            (x - self.origin.0) / self.spacing + 0.5,
            (y - self.origin.1) / self.spacing + 0.5,
        )
    }
}

fn union(shapes: &[Shape], ray: &Ray) -> Spans {
    let mut spans = Spans::default();
    for shape in shapes {
        if let Some(chord) = shape.chord(ray) {
            spans.add(chord);
        }
    }
    spans
}

fn bone_group(shapes: &[Shape], holes: &[Shape], ray: &Ray, keep: Option<(f64, f64)>, minus: &Spans) -> f64 {
    let mut spans = union(shapes, ray);
    if spans.is_empty() {
        return 0.0;
    }
    if !holes.is_empty() {
        spans = spans.subtract(&union(holes, ray));
    }
    if let Some(keep) = keep {
        spans = spans.clip(keep);
    }
    spans.subtract(minus).total()
}

/// World-space bounding circle `(x, y, r)` of a shape seen through `motion`.
fn shape_circle(shape: &Shape, motion: &Rigid) -> (f64, f64, f64) {
    let (c, r) = shape.bounds();
    let c = motion.apply(c);
    (c.0, c.1, r)
}

fn overlaps(circle: (f64, f64, f64), rect: (f64, f64, f64, f64)) -> bool {
    circle.0 + circle.2 >= rect.0
        && circle.0 - circle.2 <= rect.2
        && circle.1 + circle.2 >= rect.1
        && circle.1 - circle.2 <= rect.3
}

fn keep_near(shapes: &[Shape], motion: &Rigid, rect: (f64, f64, f64, f64)) -> Vec<Shape> {
    shapes
        .iter()
        .filter(|s| overlaps(shape_circle(s, motion), rect))
        .copied()
        .collect()
}

impl Body {
    /// The body with only the shapes whose bounds meet `rect` (world mm): exact for every
    /// ray inside `rect`, and much cheaper per ray. `None` when nothing is left.
    pub fn near(&self, rect: (f64, f64, f64, f64)) -> Option<Body> {
        match self {
            Body::Bone { bone, region, motion } => {
                let outer = keep_near(&bone.outer, motion, rect);
                if outer.is_empty() {
                    return None;
                }
                let culled = Bone {
                    outer,
                    outer_holes: keep_near(&bone.outer_holes, motion, rect),
                    inner: keep_near(&bone.inner, motion, rect),
                    inner_holes: keep_near(&bone.inner_holes, motion, rect),
                    marrow: keep_near(&bone.marrow, motion, rect),
                    mu_cortical: bone.mu_cortical,
                    mu_trabecular: bone.mu_trabecular,
                    trabeculae: bone.trabeculae,
                };
                Some(Body::Bone {
                    bone: Arc::new(culled),
                    region: region.clone(),
                    motion: *motion,
                })
            }
            Body::Tissue(t) => {
                let outer = keep_near(&t.outer, &Rigid::IDENTITY, rect);
                (!outer.is_empty()).then(|| {
                    Body::Tissue(SoftTissue {
                        outer,
                        muscle: keep_near(&t.muscle, &Rigid::IDENTITY, rect),
                    })
                })
            }
            Body::Uniform { shapes, mu } => {
                let shapes = keep_near(shapes, &Rigid::IDENTITY, rect);
                (!shapes.is_empty()).then_some(Body::Uniform { shapes, mu: *mu })
            }
        }
    }

    /// Projected bounds `(x0, y0, x1, y1)` in world mm.
    pub fn bounds(&self) -> (f64, f64, f64, f64) {
        let mut b = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
        let mut grow = |(c, r): (V3, f64)| {
            b = (b.0.min(c.0 - r), b.1.min(c.1 - r), b.2.max(c.0 + r), b.3.max(c.1 + r));
        };
        match self {
            Body::Bone { bone, motion, .. } => bone.outer.iter().for_each(|s| {
                let (c, r) = s.bounds();
                grow((motion.apply(c), r));
            }),
            Body::Tissue(t) => t.outer.iter().for_each(|s| grow(s.bounds())),
            Body::Uniform { shapes, .. } => shapes.iter().for_each(|s| grow(s.bounds())),
        }
        b
    }

    /// ∫μ along any ray (the reference implementation; [`project`] uses a version
    /// specialised to the parallel beam, checked against this one in the tests).
    pub fn integrate(&self, ray: &Ray, bone_contrast: f64) -> f64 {
        match self {
            Body::Bone { bone, region, motion } => {
                let local = Ray {
                    origin: motion.inverse_point(ray.origin),
                    direction: motion.inverse_direction(ray.direction),
                };
                let (keep, minus_list) = region.spans(&local);
                if keep.is_none() && !region.keep.is_empty() {
                    return 0.0;
                }
                let mut minus = Spans::default();
                minus_list.into_iter().for_each(|s| minus.add(s));
                let outer = bone_group(&bone.outer, &bone.outer_holes, &local, keep, &minus);
                if outer <= 0.0 {
                    return 0.0;
                }
                let inner = bone_group(&bone.inner, &bone.inner_holes, &local, keep, &minus).min(outer);
                let marrow = bone_group(&bone.marrow, &[], &local, keep, &minus).min(inner);
                let water = mu::MUSCLE;
                let cortical = water + bone_contrast * (bone.mu_cortical - water);
                let mut trabecular = water + bone_contrast * (bone.mu_trabecular - water);
                if let (Some(texture), true) = (&bone.trabeculae, inner > marrow) {
                    // Texture where the ray crosses the femur's mid-plane (local z = 0).
                    if local.direction.2.abs() > 1e-6 {
                        let t = -local.origin.2 / local.direction.2;
                        let p = local.origin + local.direction * t;
                        trabecular *= 1.0 + 0.32 * texture.value(p);
                    }
                }
                cortical * (outer - inner) + trabecular * (inner - marrow) + mu::MARROW * marrow
            }
            Body::Tissue(t) => {
                let outer = union(&t.outer, ray).total();
                if outer <= 0.0 {
                    return 0.0;
                }
                let muscle = union(&t.muscle, ray).total().min(outer);
                mu::FAT * (outer - muscle) + mu::MUSCLE * muscle
            }
            Body::Uniform { shapes, mu } => mu * union(shapes, ray).total(),
        }
    }
}

/// `base + x·ex + y·ey`: a quantity that is affine in the detector position.
#[derive(Debug, Clone, Copy)]
struct Affine {
    base: V3,
    ex: V3,
    ey: V3,
}

impl Affine {
    #[inline]
    fn at(&self, x: f64, y: f64) -> V3 {
        V3(
            self.base.0 + x * self.ex.0 + y * self.ey.0,
            self.base.1 + x * self.ex.1 + y * self.ey.1,
            self.base.2 + x * self.ex.2 + y * self.ey.2,
        )
    }
    fn map(&self, m: &crate::geometry::M3, shift: V3) -> Affine {
        Affine {
            base: m.apply(self.base - shift),
            ex: m.apply(self.ex),
            ey: m.apply(self.ey),
        }
    }
}

/// A shape specialised to the parallel beam through one body's motion: the ray origin in
/// the shape's unit frame is affine in (x, y) and the direction is constant, so a chord costs
/// a few multiply-adds and one square root.
#[derive(Debug, Clone, Copy)]
enum Compiled {
    Ellipsoid {
        origin: Affine,
        direction: V3,
        a: f64,
    },
    Cylinder {
        origin: Affine,
        direction: V3,
        a: f64,
        half: f64,
    },
}

impl Compiled {
    fn new(shape: &Shape, local_origin: &Affine, local_direction: V3) -> Compiled {
        match shape {
            Shape::Ellipsoid { center, to_unit } => {
                let direction = to_unit.apply(local_direction);
                Compiled::Ellipsoid {
                    origin: local_origin.map(to_unit, *center),
                    direction,
                    a: direction.dot(direction),
                }
            }
            Shape::Cylinder { center, to_unit, half } => {
                let direction = to_unit.apply(local_direction);
                Compiled::Cylinder {
                    origin: local_origin.map(to_unit, *center),
                    direction,
                    a: direction.0 * direction.0 + direction.1 * direction.1,
                    half: *half,
                }
            }
        }
    }

    #[inline]
    fn chord(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        match self {
            Compiled::Ellipsoid {
                origin,
                direction: d,
                a,
            } => {
                let o = origin.at(x, y);
                crate::geometry::quadratic(*a, 2.0 * o.dot(*d), o.dot(o) - 1.0)
            }
            Compiled::Cylinder {
                origin,
                direction: d,
                a,
                half,
            } => crate::geometry::cylinder_chord(origin.at(x, y), *d, *a, *half),
        }
    }
}

/// A half-space along the beam: inside where `nd·t ≤ s(x, y)`.
#[derive(Debug, Clone, Copy)]
struct CompiledHalf {
    s_base: f64,
    s_x: f64,
    s_y: f64,
    nd: f64,
}

impl CompiledHalf {
    fn new(h: &crate::geometry::HalfSpace, origin: &Affine, direction: V3) -> Self {
        CompiledHalf {
            s_base: h.normal.dot(h.point - origin.base),
            s_x: -h.normal.dot(origin.ex),
            s_y: -h.normal.dot(origin.ey),
            nd: h.normal.dot(direction),
        }
    }
    #[inline]
    fn span(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let s = self.s_base + x * self.s_x + y * self.s_y;
        if self.nd.abs() < 1e-12 {
            return (s >= 0.0).then_some((f64::NEG_INFINITY, f64::INFINITY));
        }
        let t = s / self.nd;
        Some(if self.nd > 0.0 {
            (f64::NEG_INFINITY, t)
        } else {
            (t, f64::INFINITY)
        })
    }
}

fn convex(halves: &[CompiledHalf], x: f64, y: f64) -> Option<(f64, f64)> {
    let mut span = (f64::NEG_INFINITY, f64::INFINITY);
    for h in halves {
        let (a, b) = h.span(x, y)?;
        span = (span.0.max(a), span.1.min(b));
        if span.1 <= span.0 {
            return None;
        }
    }
    Some(span)
}

fn compiled_union(shapes: &[Compiled], x: f64, y: f64) -> Spans {
    let mut spans = Spans::default();
    for shape in shapes {
        if let Some(chord) = shape.chord(x, y) {
            spans.add(chord);
        }
    }
    spans
}

/// A body compiled for one tile (a few per tile, made once: their sizes do not matter).
#[allow(clippy::large_enum_variant)]
enum CompiledBody {
    Bone {
        outer: Vec<Compiled>,
        outer_holes: Vec<Compiled>,
        inner: Vec<Compiled>,
        inner_holes: Vec<Compiled>,
        marrow: Vec<Compiled>,
        keep: Vec<CompiledHalf>,
        minus: Vec<Vec<CompiledHalf>>,
        local_origin: Affine,
        local_direction: V3,
        cortical: f64,
        trabecular: f64,
        trabeculae: Option<crate::texture::Trabeculae>,
    },
    Tissue {
        outer: Vec<Compiled>,
        muscle: Vec<Compiled>,
    },
    Uniform {
        shapes: Vec<Compiled>,
        mu: f64,
    },
}

/// The beam: rays start at z = −2000 mm and run along +z.
const RAY_START_Z: f64 = -2000.0;

impl CompiledBody {
    fn new(body: &Body, bone_contrast: f64) -> CompiledBody {
        let world_origin = Affine {
            base: V3(0.0, 0.0, RAY_START_Z),
            ex: V3(1.0, 0.0, 0.0),
            ey: V3(0.0, 1.0, 0.0),
        };
        let world_direction = V3(0.0, 0.0, 1.0);
        let compile = |shapes: &[Shape], origin: &Affine, direction: V3| -> Vec<Compiled> {
            shapes.iter().map(|s| Compiled::new(s, origin, direction)).collect()
        };
        match body {
            Body::Bone { bone, region, motion } => {
                let inverse = motion.rotation.transpose();
                let local_origin = Affine {
                    base: inverse.apply(world_origin.base - motion.pivot - motion.translation) + motion.pivot,
                    ex: inverse.apply(world_origin.ex),
                    ey: inverse.apply(world_origin.ey),
                };
                let local_direction = inverse.apply(world_direction);
                let water = mu::MUSCLE;
                CompiledBody::Bone {
                    outer: compile(&bone.outer, &local_origin, local_direction),
                    outer_holes: compile(&bone.outer_holes, &local_origin, local_direction),
                    inner: compile(&bone.inner, &local_origin, local_direction),
                    inner_holes: compile(&bone.inner_holes, &local_origin, local_direction),
                    marrow: compile(&bone.marrow, &local_origin, local_direction),
                    keep: region
                        .keep
                        .iter()
                        .map(|h| CompiledHalf::new(h, &local_origin, local_direction))
                        .collect(),
                    minus: region
                        .minus
                        .iter()
                        .map(|hs| {
                            hs.iter()
                                .map(|h| CompiledHalf::new(h, &local_origin, local_direction))
                                .collect()
                        })
                        .collect(),
                    local_origin,
                    local_direction,
                    cortical: water + bone_contrast * (bone.mu_cortical - water),
                    trabecular: water + bone_contrast * (bone.mu_trabecular - water),
                    trabeculae: bone.trabeculae,
                }
            }
            Body::Tissue(t) => CompiledBody::Tissue {
                outer: compile(&t.outer, &world_origin, world_direction),
                muscle: compile(&t.muscle, &world_origin, world_direction),
            },
            Body::Uniform { shapes, mu } => CompiledBody::Uniform {
                shapes: compile(shapes, &world_origin, world_direction),
                mu: *mu,
            },
        }
    }

    #[inline]
    fn integrate(&self, x: f64, y: f64) -> f64 {
        match self {
            CompiledBody::Bone {
                outer,
                outer_holes,
                inner,
                inner_holes,
                marrow,
                keep,
                minus,
                local_origin,
                local_direction,
                cortical,
                trabecular,
                trabeculae,
            } => {
                let keep_span = convex(keep, x, y);
                if keep_span.is_none() {
                    return 0.0;
                }
                let mut removed = Spans::default();
                for hs in minus {
                    if let Some(span) = convex(hs, x, y) {
                        removed.add(span);
                    }
                }
                let group = |shapes: &[Compiled], holes: &[Compiled]| -> f64 {
                    let mut spans = compiled_union(shapes, x, y);
                    if spans.is_empty() {
                        return 0.0;
                    }
                    if !holes.is_empty() {
                        spans = spans.subtract(&compiled_union(holes, x, y));
                    }
                    if let Some(k) = keep_span {
                        spans = spans.clip(k);
                    }
                    spans.subtract(&removed).total()
                };
                let l_outer = group(outer, outer_holes);
                if l_outer <= 0.0 {
                    return 0.0;
                }
                let l_inner = group(inner, inner_holes).min(l_outer);
                let l_marrow = group(marrow, &[]).min(l_inner);
                let mut mu_trabecular = *trabecular;
                if let (Some(texture), true) = (trabeculae, l_inner > l_marrow) {
                    if local_direction.2.abs() > 1e-6 {
                        let o = local_origin.at(x, y);
                        let t = -o.2 / local_direction.2;
                        mu_trabecular *= 1.0 + 0.32 * texture.value(o + *local_direction * t);
                    }
                }
                cortical * (l_outer - l_inner) + mu_trabecular * (l_inner - l_marrow) + mu::MARROW * l_marrow
            }
            CompiledBody::Tissue { outer, muscle } => {
                let l_outer = compiled_union(outer, x, y).total();
                if l_outer <= 0.0 {
                    return 0.0;
                }
                let l_muscle = compiled_union(muscle, x, y).total().min(l_outer);
                mu::FAT * (l_outer - l_muscle) + mu::MUSCLE * l_muscle
            }
            CompiledBody::Uniform { shapes, mu } => mu * compiled_union(shapes, x, y).total(),
        }
    }
}

const TILE: usize = 16;

/// Renders the attenuation image (∫μ dl per pixel), row-major.
pub fn project(scene: &Scene, grid: &Grid) -> Vec<f32> {
    let bounds: Vec<_> = scene.bodies.iter().map(Body::bounds).collect();
    let tiles_x = grid.width.div_ceil(TILE);
    let tiles_y = grid.height.div_ceil(TILE);
    let tiles: Vec<(usize, Vec<f32>)> = (0..tiles_x * tiles_y)
        .into_par_iter()
        .map(|tile| {
            let (tx, ty) = (tile % tiles_x, tile / tiles_x);
            let (c0, r0) = (tx * TILE, ty * TILE);
            let (c1, r1) = ((c0 + TILE).min(grid.width), (r0 + TILE).min(grid.height));
            let (x0, y0) = grid.world(c0 as f64 - 0.5, r0 as f64 - 0.5);
            let (x1, y1) = grid.world(c1 as f64 + 0.5, r1 as f64 + 0.5);
            let active: Vec<CompiledBody> = scene
                .bodies
                .iter()
                .zip(&bounds)
                .filter(|(_, b)| b.0 <= x1 && b.2 >= x0 && b.1 <= y1 && b.3 >= y0)
                .filter_map(|(body, _)| body.near((x0, y0, x1, y1)))
                .map(|body| CompiledBody::new(&body, scene.bone_contrast))
                .collect();
            let mut values = Vec::with_capacity((c1 - c0) * (r1 - r0));
            for row in r0..r1 {
                for column in c0..c1 {
                    let (x, y) = grid.world(column as f64, row as f64);
                    let total: f64 = active.iter().map(|b| b.integrate(x, y)).sum();
                    values.push(total as f32);
                }
            }
            (tile, values)
        })
        .collect();
    let mut image = vec![0f32; grid.width * grid.height];
    for (tile, values) in tiles {
        let (tx, ty) = (tile % tiles_x, tile / tiles_x);
        let (c0, r0) = (tx * TILE, ty * TILE);
        let w = (c0 + TILE).min(grid.width) - c0;
        for (i, chunk) in values.chunks(w).enumerate() {
            let start = (r0 + i) * grid.width + c0;
            image[start..start + w].copy_from_slice(chunk);
        }
    }
    image
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acquisition::SiteProfile;
    use crate::{plan, scene, ClassMix, Femur};

    #[test]
    fn the_beam_specialised_integral_equals_the_reference() {
        let site = SiteProfile::load("site-a").unwrap();
        for case in plan(6, &site, 9, &ClassMix::default()) {
            let femur = Femur::new(&case, false);
            let scene = scene(&case, &femur, &site);
            for body in &scene.bodies {
                let compiled = CompiledBody::new(body, scene.bone_contrast);
                for i in 0..400 {
                    let (x, y) = (-150.0 + (i % 20) as f64 * 17.3, -160.0 + (i / 20) as f64 * 16.1);
                    let ray = Ray {
                        origin: V3(x, y, RAY_START_Z),
                        direction: V3(0.0, 0.0, 1.0),
                    };
                    let (a, b) = (body.integrate(&ray, scene.bone_contrast), compiled.integrate(x, y));
                    assert!((a - b).abs() < 1e-9 * a.abs().max(1.0), "({x}, {y}): {a} vs {b}");
                }
            }
        }
    }
}
