//! PNG in and out: 8-bit and 16-bit grey.

use crate::atomic::write_atomic_with;
use crate::{Error, Result, MAX_PIXELS};
use hipfrac_core::{Pixels, Radiograph, RadiographMeta};
use std::path::Path;

/// Grey samples to write.
pub enum GreyPixels<'a> {
    /// 8-bit samples.
    Eight(&'a [u8]),
    /// 16-bit samples.
    Sixteen(&'a [u16]),
}

/// Writes a greyscale PNG atomically (no partial file on failure). Compression favours speed:
/// radiographs are large and converted in bulk.
pub fn write_png(path: &Path, width: u32, height: u32, pixels: GreyPixels<'_>) -> Result<()> {
    write_png_with_comment(path, width, height, pixels, None)
}

/// [`write_png`] with a `Comment` text chunk (e.g. the DICOM Image Comments, where the
/// phantom marks its images as simulated); [`read_png`] reads it back into `image_comments`.
pub fn write_png_with_comment(
    path: &Path,
    width: u32,
    height: u32,
    pixels: GreyPixels<'_>,
    comment: Option<&str>,
) -> Result<()> {
    let png_error = |reason: String| Error::Png {
        path: path.to_path_buf(),
        reason,
    };
    let expected = width as usize * height as usize;
    let (depth, bytes): (png::BitDepth, std::borrow::Cow<'_, [u8]>) = match pixels {
        GreyPixels::Eight(v) => {
            if v.len() != expected {
                return Err(png_error(format!("{} samples for {width}×{height}", v.len())));
            }
            (png::BitDepth::Eight, std::borrow::Cow::Borrowed(v))
        }
        GreyPixels::Sixteen(v) => {
            if v.len() != expected {
                return Err(png_error(format!("{} samples for {width}×{height}", v.len())));
            }
            // PNG stores 16-bit samples big-endian.
            (png::BitDepth::Sixteen, v.iter().flat_map(|s| s.to_be_bytes()).collect())
        }
    };
    write_atomic_with(path, |writer| {
        let mut encoder = png::Encoder::new(writer, width, height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(depth);
        encoder.set_compression(png::Compression::Fast);
        if let Some(text) = comment {
            // tEXt is Latin-1; anything else would be refused by readers.
            let latin1: String = text
                .chars()
                .map(|c| if (c as u32) < 256 && !c.is_control() { c } else { '?' })
                .collect();
            encoder
                .add_text_chunk("Comment".into(), latin1)
                .map_err(std::io::Error::other)?;
        }
        let mut png_writer = encoder.write_header().map_err(std::io::Error::other)?;
        png_writer.write_image_data(&bytes).map_err(std::io::Error::other)?;
        png_writer.finish().map_err(std::io::Error::other)
    })
}

/// Width, height and bit depth of a PNG, from its header only.
pub fn png_header(path: &Path) -> Result<(u32, u32, u8)> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let reader = decoder.read_info().map_err(|source| Error::PngDecode {
        path: path.to_path_buf(),
        source: Box::new(source),
    })?;
    let info = reader.info();
    Ok((info.width, info.height, info.bit_depth as u8))
}

/// Reads an 8- or 16-bit PNG as a MONOCHROME2 radiograph. Grey+alpha keeps the grey; RGB is
/// accepted only when the three channels are equal everywhere.
pub fn read_png(path: &Path) -> Result<Radiograph> {
    let png_error = |reason: String| Error::Png {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND);
    decoder.set_limits(png::Limits {
        bytes: (MAX_PIXELS * 8) as usize,
    });
    let decode_error = |source: png::DecodingError| Error::PngDecode {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let mut reader = decoder.read_info().map_err(decode_error)?;
    let (width, height) = (reader.info().width, reader.info().height);
    if width as u64 * height as u64 > MAX_PIXELS {
        return Err(png_error(format!("{width}×{height} pixels exceeds the limit")));
    }
    let mut buffer = vec![0u8; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buffer).map_err(decode_error)?;
    let channels = frame.color_type.samples();
    let sixteen = frame.bit_depth == png::BitDepth::Sixteen;
    let bytes_per_sample = if sixteen { 2 } else { 1 };
    let count = width as usize * height as usize;
    let sample = |pixel: usize, channel: usize| -> u16 {
        let at = (pixel * channels + channel) * bytes_per_sample;
        if sixteen {
            u16::from_be_bytes([buffer[at], buffer[at + 1]])
        } else {
            buffer[at] as u16
        }
    };
    let is_rgb = matches!(frame.color_type, png::ColorType::Rgb | png::ColorType::Rgba);
    if is_rgb && (0..count).any(|p| sample(p, 0) != sample(p, 1) || sample(p, 0) != sample(p, 2)) {
        return Err(png_error("colour image: a radiograph must be greyscale".into()));
    }
    let values: Vec<u16> = (0..count).map(|p| sample(p, 0)).collect();
    let mut meta = RadiographMeta::plain(height, width, if sixteen { 16 } else { 8 });
    meta.image_comments = reader
        .info()
        .uncompressed_latin1_text
        .iter()
        .find(|t| t.keyword == "Comment")
        .map(|t| t.text.clone());
    Ok(Radiograph {
        meta,
        pixels: Pixels::Unsigned(values),
    })
}
