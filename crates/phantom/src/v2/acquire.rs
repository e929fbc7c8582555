//! v2's reader: v1's acquisition chain ([`crate::acquisition::expose_with`]: automatic
//! exposure, heel effect, scatter, quantum noise, detector blur, log, dynamic range
//! compression, tone curve, unsharp masking) with two differences, so that v1's films do not
//! change: the collimated border is blacked out (electronic shutter), not left white; the tone
//! curve's percentiles are taken over the anatomy, not over the direct exposure beside it.

use crate::acquisition::{expose_with, Exposure, Reader, SiteProfile};

/// Attenuation `−ln(I/I₀)` below which a pixel counts as direct exposure (about 50 mm of
/// water at 60–80 kVp).
const DIRECT_EXPOSURE: f32 = 1.0;

/// v2's reader.
const READER: Reader = Reader {
    outside: 0.0,
    direct_exposure: Some(DIRECT_EXPOSURE),
};

/// Turns an attenuation image into normalised display values in [0, 1] (bright = dense),
/// and returns the collimated field's pixel rectangle.
pub fn expose(
    attenuation: &[f32],
    width: usize,
    height: usize,
    spacing: f64,
    site: &SiteProfile,
    exposure: &Exposure,
) -> (Vec<f32>, [usize; 4]) {
    expose_with(attenuation, width, height, spacing, site, exposure, READER)
}
