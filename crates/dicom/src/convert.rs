//! One radiograph → PNG (8-bit displayed, or 16-bit modality values) + JSON sidecar.

use crate::atomic::write_atomic;
use crate::display::{applied_voi, modality_16bit, render_8bit, AppliedVoi, Mapping16, VoiChoice};
use crate::png_io::{write_png_with_comment, GreyPixels};
use crate::{read_radiograph, Error, Result};
use hipfrac_core::RadiographMeta;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Output bit depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PngBits {
    /// 8-bit grey through the display pipeline (window/VOI LUT, MONOCHROME1 inverted).
    Eight,
    /// 16-bit modality values (see [`Mapping16`]).
    Sixteen,
}

/// How to convert.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Bit depth of the PNG.
    pub bits: PngBits,
    /// VOI choice for 8-bit output (recorded, and used for the 16-bit sidecar's window).
    pub voi: VoiChoice,
    /// Write the JSON sidecar.
    pub sidecar: bool,
    /// Replace existing outputs; without it an existing output is an error.
    pub overwrite: bool,
}

/// The JSON written beside each PNG.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sidecar {
    /// hipfrac version that wrote it.
    pub hipfrac_version: String,
    /// The input file.
    pub source: PathBuf,
    /// PNG bit depth (8 or 16).
    pub png_bits: u8,
    /// For 8-bit: the VOI transformation applied. For 16-bit: the window the file suggests,
    /// still in modality units.
    pub voi: AppliedVoi,
    /// For 16-bit output: `modality = offset + sign × png`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mapping_16bit: Option<Mapping16>,
    /// Smallest and largest stored value.
    pub stored_range: Option<(i32, i32)>,
    /// The radiograph's metadata.
    pub meta: RadiographMeta,
}

/// Where the outputs of one conversion go.
#[derive(Debug, Clone)]
pub struct Outputs {
    /// The PNG.
    pub png: PathBuf,
    /// The sidecar (written when [`ConvertOptions::sidecar`]).
    pub json: PathBuf,
}

/// Converts `input`; on error nothing is written.
pub fn convert_file(input: &Path, outputs: &Outputs, options: &ConvertOptions) -> Result<Sidecar> {
    if !options.overwrite {
        for existing in [&outputs.png, &outputs.json] {
            if existing.exists() && (existing == &outputs.png || options.sidecar) {
                return Err(Error::Option {
                    path: existing.clone(),
                    reason: "output exists; pass --overwrite to replace it".into(),
                });
            }
        }
    }
    let image = read_radiograph(input)?;
    let option_error = |source: crate::display::VoiError| Error::Window {
        path: input.to_path_buf(),
        source,
    };
    let (voi, png_bits, mapping) = match options.bits {
        PngBits::Eight => {
            let (grey, voi) = render_8bit(&image, &options.voi).map_err(option_error)?;
            write_png_with_comment(
                &outputs.png,
                image.width(),
                image.height(),
                GreyPixels::Eight(&grey),
                simulated_mark(&image),
            )?;
            (voi, 8, None)
        }
        PngBits::Sixteen => {
            let (values, mapping) = modality_16bit(&image);
            // The window is resolved (for the sidecar) before anything is written.
            let voi = applied_voi(&image, &options.voi).map_err(option_error)?;
            write_png_with_comment(
                &outputs.png,
                image.width(),
                image.height(),
                GreyPixels::Sixteen(&values),
                simulated_mark(&image),
            )?;
            (voi, 16, Some(mapping))
        }
    };
    let sidecar = Sidecar {
        hipfrac_version: env!("CARGO_PKG_VERSION").to_string(),
        source: input.to_path_buf(),
        png_bits,
        voi,
        mapping_16bit: mapping,
        stored_range: image.pixels.min_max(),
        meta: image.meta,
    };
    if options.sidecar {
        let json = serde_json::to_vec_pretty(&sidecar).expect("sidecar should serialise");
        if let Err(e) = write_atomic(&outputs.json, &json) {
            // No half-finished pair: drop the PNG this call wrote.
            let _ = std::fs::remove_file(&outputs.png);
            return Err(e);
        }
    }
    Ok(sidecar)
}

/// The phantom's mark, carried into the PNG so a converted simulated image stays labelled as
/// such. Other Image Comments are free text that may identify a patient: never copied.
fn simulated_mark(image: &hipfrac_core::Radiograph) -> Option<&str> {
    image
        .meta
        .is_simulated()
        .then_some(image.meta.image_comments.as_deref())
        .flatten()
}
