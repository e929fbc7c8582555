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
    Bone { bone: Arc<Bone>, region: Region, motion: Rigid },
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
        (self.origin.0 + column * self.spacing, self.origin.1 + row * self.spacing)
    }
    pub fn pixel(&self, x: f64, y: f64) -> (f64, f64) {
        ((x - self.origin.0) / self.spacing + 0.5, (y - self.origin.1) / self.spacing + 0.5)
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

impl Body {
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

    /// ∫μ along the ray, per mm of path summed: a dimensionless attenuation.
    pub fn integrate(&self, ray: &Ray, bone_contrast: f64) -> f64 {
        match self {
            Body::Bone { bone, region, motion } => {
                let local = Ray { origin: motion.inverse_point(ray.origin), direction: motion.inverse_direction(ray.direction) };
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

const TILE: usize = 32;

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
            let active: Vec<&Body> = scene
                .bodies
                .iter()
                .zip(&bounds)
                .filter(|(_, b)| b.0 <= x1 && b.2 >= x0 && b.1 <= y1 && b.3 >= y0)
                .map(|(body, _)| body)
                .collect();
            let mut values = Vec::with_capacity((c1 - c0) * (r1 - r0));
            for row in r0..r1 {
                for column in c0..c1 {
                    let (x, y) = grid.world(column as f64, row as f64);
                    let ray = Ray { origin: V3(x, y, -2000.0), direction: V3(0.0, 0.0, 1.0) };
                    let total: f64 = active.iter().map(|b| b.integrate(&ray, scene.bone_contrast)).sum();
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
