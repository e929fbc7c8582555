//! Contact sheets: a grid of thumbnails with the boxes and labels drawn, for human review.

use hipfrac_core::Label;
use hipfrac_data::{manifest, voc, LabelMap};
use hipfrac_imaging::{class_colour, Canvas};
use std::path::{Path, PathBuf};

/// A contact sheet that cannot be drawn.
#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    /// An image cannot be read.
    #[error(transparent)]
    Image(#[from] hipfrac_dicom::Error),
    /// An image cannot be shown in its own window.
    #[error("{}: cannot render it for display", path.display())]
    Display {
        /// The image.
        path: PathBuf,
        /// Why.
        #[source]
        source: hipfrac_dicom::display::VoiError,
    },
    /// An annotation or the manifest cannot be read.
    #[error(transparent)]
    Dataset(#[from] hipfrac_data::Error),
}

/// One tile: an image file with its boxes.
pub struct Tile {
    pub image: PathBuf,
    pub annotation: Option<PathBuf>,
    pub caption: String,
}

/// Draws `tiles` in a grid of `columns`, each `tile_size` pixels on its longer side.
pub fn contact_sheet(tiles: &[Tile], columns: usize, tile_size: usize, footer: &str) -> Result<Canvas, SheetError> {
    let rows = tiles.len().div_ceil(columns).max(1);
    let caption_height = 16;
    let footer_height = 22;
    let mut canvas = Canvas::new(
        columns * (tile_size + 4) + 4,
        rows * (tile_size + caption_height + 4) + 4 + footer_height,
    );
    for (index, tile) in tiles.iter().enumerate() {
        let image = hipfrac_dicom::read_radiograph(&tile.image)?;
        // An 8-bit PNG is shown as it is; DICOM through its own window.
        let grey = hipfrac_dicom::display::to_display(&image).map_err(|source| SheetError::Display {
            path: tile.image.clone(),
            source,
        })?;
        let (w, h) = (image.width() as usize, image.height() as usize);
        let scale = w.max(h) as f64 / tile_size as f64;
        let (tw, th) = ((w as f64 / scale) as usize, (h as f64 / scale) as usize);
        let left = 4 + (index % columns) * (tile_size + 4) + (tile_size - tw) / 2;
        let top = 4 + (index / columns) * (tile_size + caption_height + 4);
        // Box-filter downscale.
        for ty in 0..th {
            for tx in 0..tw {
                let (sx0, sy0) = ((tx as f64 * scale) as usize, (ty as f64 * scale) as usize);
                let (sx1, sy1) = (
                    (((tx + 1) as f64 * scale) as usize).min(w).max(sx0 + 1),
                    (((ty + 1) as f64 * scale) as usize).min(h).max(sy0 + 1),
                );
                let mut sum = 0u32;
                for sy in sy0..sy1 {
                    for sx in sx0..sx1 {
                        sum += grey[sy * w + sx] as u32;
                    }
                }
                let v = (sum / ((sx1 - sx0) * (sy1 - sy0)) as u32) as u8;
                canvas.set((left + tx) as i64, (top + ty) as i64, [v, v, v]);
            }
        }
        let mut caption_colour = [220, 220, 220];
        if let Some(xml) = &tile.annotation {
            let annotation = voc::read(xml, &LabelMap::default())?.annotation;
            for object in &annotation.objects {
                if let Some(class) = object.label.fracture() {
                    let colour = class_colour(class);
                    caption_colour = colour;
                    let b = object.bbox;
                    let map = |v: f32| (v as f64 / scale) as i64;
                    canvas.rectangle(
                        left as i64 + map(b.x_min),
                        top as i64 + map(b.y_min),
                        left as i64 + map(b.x_max),
                        top as i64 + map(b.y_max),
                        2,
                        colour,
                    );
                    canvas.text(
                        class.code(),
                        left as i64 + map(b.x_min),
                        top as i64 + map(b.y_min) - 10,
                        1,
                        colour,
                    );
                }
            }
        }
        canvas.text(
            &tile.caption,
            (4 + (index % columns) * (tile_size + 4)) as i64,
            (top + tile_size + 4) as i64,
            1,
            caption_colour,
        );
    }
    canvas.text(
        footer,
        6,
        (canvas.height - footer_height + 6) as i64,
        2,
        [255, 255, 255],
    );
    Ok(canvas)
}

/// The tiles of a phantom (or any dataset) folder with a `manifest.csv`: the first `count`
/// images, or evenly spread over the classes when `by_class`.
pub fn tiles_from_manifest(dir: &Path, count: usize) -> Result<Vec<Tile>, hipfrac_data::Error> {
    let rows = manifest::read(&dir.join("manifest.csv"))?;
    // Round-robin over the labels so every class shows.
    let mut by_label: Vec<Vec<&manifest::ManifestRow>> = Label::ALL
        .iter()
        .map(|l| rows.iter().filter(|r| r.label == *l).collect())
        .collect();
    let mut picked = Vec::new();
    'outer: loop {
        let mut any = false;
        for group in by_label.iter_mut() {
            if !group.is_empty() {
                picked.push(group.remove(0));
                any = true;
                if picked.len() == count {
                    break 'outer;
                }
            }
        }
        if !any {
            break;
        }
    }
    Ok(picked
        .into_iter()
        .map(|row| Tile {
            image: dir.join(&row.image),
            annotation: (!row.annotation.is_empty()).then(|| dir.join(&row.annotation)),
            caption: format!("{} {}", row.label.code(), row.site),
        })
        .collect())
}
