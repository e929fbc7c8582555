//! Checks that keep hostile or nonsensical files from reaching the decoders and the display
//! pipeline, and the guard that turns a decoder's panic into that file's error.

use crate::{Error, Result};
use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use hipfrac_core::RadiographMeta;
use std::path::Path;

/// A panic caught by [`guarded`], with its message.
pub(crate) struct Panicked(pub String);

thread_local! {
    /// How many [`guarded`] calls are running on this thread.
    static GUARDED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs `f`, turning a panic into its message. The panic is not printed (the caller reports
/// it as the file's error, in one line); panics elsewhere print as before.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> std::result::Result<T, Panicked> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(|g| g.get()) == 0 {
                previous(info);
            }
        }));
    });
    GUARDED.with(|g| g.set(g.get() + 1));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(g.get() - 1));
    outcome.map_err(|panic| Panicked(panic_text(&panic)))
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panicked".into())
}

/// The largest magnitude a display value (rescale, window) may have: far beyond any real
/// detector, well below where the pipeline's arithmetic loses meaning.
pub const MAX_DISPLAY_VALUE: f64 = 1e9;

/// Refuses a non-finite or absurd display value: it would render a black or white image that
/// the model then reads with confidence.
pub(crate) fn sane(path: &Path, name: &str, value: f64) -> Result<()> {
    if value.is_finite() && value.abs() <= MAX_DISPLAY_VALUE {
        return Ok(());
    }
    Err(Error::unsupported(
        path,
        format!("{name} is {value}: not a usable display value (finite, at most {MAX_DISPLAY_VALUE:e} in magnitude)"),
    ))
}

/// RLE Lossless.
const RLE: &str = "1.2.840.10008.1.2.5";

/// Checks what the header says against the pixel data before a decoder allocates for it:
/// native data must hold Rows × Columns × frames samples (trailing padding shorter than one
/// row allowed), and
/// every RLE fragment's header must name at most 15 segments that lie inside it (PS3.5 G.3).
pub(crate) fn check_pixel_data(
    path: &Path,
    object: &DefaultDicomObject,
    meta: &RadiographMeta,
    transfer_syntax: &str,
) -> Result<()> {
    let refuse = |reason: String| Err(Error::unsupported(path, reason));
    let Ok(element) = object.element(tags::PIXEL_DATA) else {
        return Ok(());
    };
    match element.value() {
        dicom_core::value::Value::Primitive(value) => {
            let frames = crate::read::int(object, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1) as u64;
            let bits = crate::read::int(object, tags::BITS_ALLOCATED).unwrap_or(16) as u64;
            let expected = meta.rows as u64 * meta.columns as u64 * frames * bits / 8;
            let held = value.calculate_byte_len() as u64;
            // Short data cannot be an image; an excess of a row or more means the geometry is
            // wrong (a sheared picture). Less is trailing padding some writers leave.
            let row = meta.columns as u64 * bits / 8;
            if held < expected || held - expected >= row.max(2) {
                return refuse(format!(
                    "pixel data holds {held} bytes, but {}×{} × {frames} frame(s) at {bits} bits need {expected}: the header does not describe the pixels",
                    meta.columns, meta.rows
                ));
            }
        }
        dicom_core::value::Value::PixelSequence(sequence) if transfer_syntax == RLE => {
            for (k, fragment) in sequence.fragments().iter().enumerate() {
                let Some(head) = fragment.get(..64) else {
                    return refuse(format!(
                        "RLE fragment {} is {} bytes, shorter than its 64-byte header",
                        k + 1,
                        fragment.len()
                    ));
                };
                let word =
                    |i: usize| u32::from_le_bytes([head[4 * i], head[4 * i + 1], head[4 * i + 2], head[4 * i + 3]]);
                let segments = word(0);
                if !(1..=15).contains(&segments) {
                    return refuse(format!(
                        "RLE fragment {} declares {segments} segments (1 to 15 allowed)",
                        k + 1
                    ));
                }
                if let Some(offset) = (1..=segments as usize)
                    .map(word)
                    .find(|&o| o < 64 || o as usize >= fragment.len())
                {
                    return refuse(format!(
                        "RLE fragment {} has a segment offset {offset} outside its {} bytes",
                        k + 1,
                        fragment.len()
                    ));
                }
            }
        }
        _ => {}
    }
    Ok(())
}
