//! A strict decoder for greyscale JPEG in the Huffman sequential processes: baseline (8-bit,
//! SOF0) and extended (8- or 12-bit, SOF1) — DICOM's JPEG Extended transfer syntax
//! (1.2.840.10008.1.2.4.51), which CR archives use for 10–12-bit radiographs and which the
//! pure-Rust JPEG decoder in dicom-rs does not take (12-bit precision).
//!
//! Written from ITU-T T.81 (Annex A: frame/scan structure, Annex C/F.2.2: Huffman decoding,
//! A.3.3: IDCT). One component, one scan; restart intervals honoured. Scan headers are
//! checked strictly (Ss = 0, Se = 63, Ah = Al = 0 for a sequential scan), so a stream with a
//! corrupt header is refused instead of decoded into garbage.

use std::fmt;

/// Why a stream was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JpegError(pub String);

impl fmt::Display for JpegError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JpegError {}

fn fail<T>(message: impl Into<String>) -> Result<T, JpegError> {
    Err(JpegError(message.into()))
}

/// A decoded greyscale image.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Sample precision in bits (8 or 12).
    pub precision: u8,
    /// Samples, row-major.
    pub samples: Vec<u16>,
}

/// Zigzag position → natural (row-major) index in the 8×8 block (T.81 Figure A.6).
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
    28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54,
    47, 55, 62, 63,
];

/// A Huffman table in the form of T.81 F.2.2.3 (MAXCODE, VALPTR, MINCODE).
#[derive(Clone)]
struct Huffman {
    max_code: [i32; 17],
    val_ptr: [i32; 17],
    min_code: [i32; 17],
    values: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], values: Vec<u8>) -> Result<Self, JpegError> {
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        if total != values.len() || total > 256 {
            return fail("Huffman table: code counts do not match the values");
        }
        let mut table = Huffman {
            max_code: [-1; 17],
            val_ptr: [0; 17],
            min_code: [0; 17],
            values,
        };
        let mut code = 0i32;
        let mut index = 0i32;
        for length in 1..=16 {
            let count = counts[length - 1] as i32;
            if count > 0 {
                table.val_ptr[length] = index;
                table.min_code[length] = code;
                code += count;
                index += count;
                table.max_code[length] = code - 1;
                if code > (1 << length) {
                    return fail("Huffman table: more codes than the lengths allow");
                }
            }
            code <<= 1;
        }
        Ok(table)
    }
}

/// Reads entropy-coded bits, undoing byte stuffing and stopping at markers.
struct Bits<'a> {
    data: &'a [u8],
    position: usize,
    buffer: u32,
    count: u32,
    /// A marker was met; only zero bits are produced until it is consumed.
    marker: Option<u8>,
    /// Zero bytes produced past a marker or the end of the data.
    padding_bytes: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], position: usize) -> Self {
        Bits {
            data,
            position,
            buffer: 0,
            count: 0,
            marker: None,
            padding_bytes: 0,
        }
    }

    fn fill(&mut self) {
        while self.count <= 24 {
            let byte = if self.marker.is_some() || self.position >= self.data.len() {
                self.padding_bytes += 1;
                0
            } else {
                let b = self.data[self.position];
                if b == 0xFF {
                    let next = self.data.get(self.position + 1).copied().unwrap_or(0xD9);
                    if next == 0x00 {
                        self.position += 2;
                        0xFF
                    } else {
                        self.marker = Some(next);
                        0
                    }
                } else {
                    self.position += 1;
                    b
                }
            };
            self.buffer |= (byte as u32) << (24 - self.count);
            self.count += 8;
        }
    }

    fn bit(&mut self) -> u32 {
        if self.count == 0 {
            self.fill();
        }
        let bit = self.buffer >> 31;
        self.buffer <<= 1;
        self.count -= 1;
        bit
    }

    fn bits(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        if self.count < n {
            self.fill();
        }
        let value = self.buffer >> (32 - n);
        self.buffer <<= n;
        self.count -= n;
        value
    }

    fn decode(&mut self, table: &Huffman) -> Result<u8, JpegError> {
        let mut code = self.bit() as i32;
        for length in 1..=16 {
            if table.max_code[length] >= code && table.max_code[length] >= 0 {
                let index = table.val_ptr[length] + code - table.min_code[length];
                return table
                    .values
                    .get(index as usize)
                    .copied()
                    .ok_or_else(|| JpegError("bad Huffman code".into()));
            }
            code = (code << 1) | self.bit() as i32;
        }
        fail("corrupt entropy-coded data: no Huffman code matches")
    }

    /// T.81 F.2.2.1 RECEIVE + EXTEND.
    fn receive_extend(&mut self, size: u8) -> Result<i32, JpegError> {
        if size == 0 {
            return Ok(0);
        }
        if size > 16 {
            return fail(format!("coefficient magnitude category {size} is out of range"));
        }
        let value = self.bits(size as u32) as i32;
        Ok(if value < (1 << (size - 1)) {
            value - (1 << size) + 1
        } else {
            value
        })
    }

    /// Drops buffered bits and consumes the expected restart marker.
    fn restart(&mut self, expected: u8) -> Result<(), JpegError> {
        self.buffer = 0;
        self.count = 0;
        self.padding_bytes = 0;
        if self.marker.is_none() {
            // Skip to the marker (padding bits of the last byte were already consumed).
            while self.position + 1 < self.data.len()
                && !(self.data[self.position] == 0xFF
                    && self.data[self.position + 1] != 0x00
                    && self.data[self.position + 1] != 0xFF)
            {
                self.position += 1;
            }
            self.marker = self.data.get(self.position + 1).copied();
        }
        match self.marker {
            Some(m) if m == 0xD0 + expected => {
                self.position += 2;
                self.marker = None;
                Ok(())
            }
            other => fail(format!("expected restart marker RST{expected}, found {other:02X?}")),
        }
    }
}

/// The IDCT basis: `BASIS[x][u] = C(u)/2 · cos((2x+1)uπ/16)`.
fn idct_basis() -> [[f64; 8]; 8] {
    let mut basis = [[0.0; 8]; 8];
    for (x, row) in basis.iter_mut().enumerate() {
        for (u, value) in row.iter_mut().enumerate() {
            let c = if u == 0 { std::f64::consts::FRAC_1_SQRT_2 } else { 1.0 };
            *value = c / 2.0 * (((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI) / 16.0).cos();
        }
    }
    basis
}

fn u16_at(data: &[u8], at: usize) -> Result<usize, JpegError> {
    match data.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]]) as usize),
        None => fail("stream ends inside a marker segment"),
    }
}

/// Decodes one greyscale JPEG (Huffman, sequential, 8- or 12-bit).
pub fn decode(data: &[u8]) -> Result<Decoded, JpegError> {
    if data.get(..2) != Some(&[0xFF, 0xD8]) {
        return fail("not a JPEG stream (no SOI marker)");
    }
    let mut position = 2;
    let mut dc_tables: [Option<Huffman>; 4] = Default::default();
    let mut ac_tables: [Option<Huffman>; 4] = Default::default();
    let mut quant: [Option<[u16; 64]>; 4] = Default::default();
    let mut frame: Option<(u8, u32, u32, u8, u8)> = None; // precision, width, height, component id, quant table
    let mut restart_interval = 0usize;
    loop {
        // Find the next marker (fill bytes 0xFF may precede it).
        while position < data.len() && data[position] != 0xFF {
            position += 1;
        }
        while position < data.len() && data[position] == 0xFF {
            position += 1;
        }
        let Some(&marker) = data.get(position) else {
            return fail("stream ends before a scan");
        };
        position += 1;
        match marker {
            0xD8 | 0x01 | 0xD0..=0xD7 => continue,
            0xD9 => return fail("end of image before any scan"),
            _ => {}
        }
        let length = u16_at(data, position)?;
        let segment = data
            .get(position + 2..position + length)
            .ok_or_else(|| JpegError("stream ends inside a marker segment".into()))?;
        position += length;
        match marker {
            0xC0 | 0xC1 => {
                if segment.len() < 6 {
                    return fail("SOF segment too short");
                }
                let precision = segment[0];
                let height = u16::from_be_bytes([segment[1], segment[2]]) as u32;
                let width = u16::from_be_bytes([segment[3], segment[4]]) as u32;
                let components = segment[5];
                if precision != 8 && precision != 12 {
                    return fail(format!("sample precision {precision} (8 or 12 expected)"));
                }
                if components != 1 || segment.len() < 9 {
                    return fail(format!("{components} components: only greyscale JPEG is supported"));
                }
                if width == 0 || height == 0 {
                    return fail("image size 0 (DNL marker not supported)");
                }
                frame = Some((precision, width, height, segment[6], segment[8] & 0x0F));
            }
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return fail(format!(
                    "JPEG process SOF{} is not sequential Huffman (progressive, lossless, hierarchical or arithmetic)",
                    marker - 0xC0
                ));
            }
            0xC4 => {
                let mut at = 0;
                while at < segment.len() {
                    let class = segment[at] >> 4;
                    let id = (segment[at] & 0x0F) as usize;
                    let counts: [u8; 16] = segment
                        .get(at + 1..at + 17)
                        .and_then(|c| c.try_into().ok())
                        .ok_or_else(|| JpegError("DHT segment too short".into()))?;
                    let total: usize = counts.iter().map(|&c| c as usize).sum();
                    let values = segment
                        .get(at + 17..at + 17 + total)
                        .ok_or_else(|| JpegError("DHT segment too short".into()))?
                        .to_vec();
                    if id > 3 || class > 1 {
                        return fail("DHT: bad table class or id");
                    }
                    let table = Some(Huffman::new(&counts, values)?);
                    if class == 0 {
                        dc_tables[id] = table
                    } else {
                        ac_tables[id] = table
                    }
                    at += 17 + total;
                }
            }
            0xDB => {
                let mut at = 0;
                while at < segment.len() {
                    let wide = segment[at] >> 4 == 1;
                    let id = (segment[at] & 0x0F) as usize;
                    if id > 3 {
                        return fail("DQT: bad table id");
                    }
                    let size = if wide { 128 } else { 64 };
                    let raw = segment
                        .get(at + 1..at + 1 + size)
                        .ok_or_else(|| JpegError("DQT segment too short".into()))?;
                    let mut table = [0u16; 64];
                    for (k, entry) in table.iter_mut().enumerate() {
                        *entry = if wide {
                            u16::from_be_bytes([raw[2 * k], raw[2 * k + 1]])
                        } else {
                            raw[k] as u16
                        };
                    }
                    quant[id] = Some(table);
                    at += 1 + size;
                }
            }
            0xDD => restart_interval = u16_at(segment, 0)?,
            0xDA => {
                let (precision, width, height, component, quant_id) =
                    frame.ok_or_else(|| JpegError("scan before frame header".into()))?;
                if segment.first() != Some(&1) || segment.len() < 6 {
                    return fail("scan header: exactly one component expected");
                }
                if segment[1] != component {
                    return fail("scan header names a component the frame does not have");
                }
                let (dc_id, ac_id) = ((segment[2] >> 4) as usize, (segment[2] & 0x0F) as usize);
                let (ss, se, ah_al) = (segment[3], segment[4], segment[5]);
                if ss != 0 || se != 63 || ah_al != 0 {
                    return fail(format!(
                        "scan header: spectral selection {ss}..{se}, approximation {ah_al:02X} — a sequential scan needs 0..63 and 00 (corrupt header)"
                    ));
                }
                let dc = dc_tables
                    .get(dc_id)
                    .and_then(|t| t.clone())
                    .ok_or_else(|| JpegError("scan uses an undefined DC table".into()))?;
                let ac = ac_tables
                    .get(ac_id)
                    .and_then(|t| t.clone())
                    .ok_or_else(|| JpegError("scan uses an undefined AC table".into()))?;
                let q = quant
                    .get(quant_id as usize)
                    .copied()
                    .flatten()
                    .ok_or_else(|| JpegError("frame uses an undefined quantisation table".into()))?;
                return decode_scan(data, position, precision, width, height, &dc, &ac, &q, restart_interval);
            }
            _ => {} // APPn, COM and others: skipped.
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn decode_scan(
    data: &[u8],
    position: usize,
    precision: u8,
    width: u32,
    height: u32,
    dc: &Huffman,
    ac: &Huffman,
    quant: &[u16; 64],
    restart_interval: usize,
) -> Result<Decoded, JpegError> {
    let blocks_x = (width as usize).div_ceil(8);
    let blocks_y = (height as usize).div_ceil(8);
    let mut samples = vec![0u16; width as usize * height as usize];
    let basis = idct_basis();
    let level_shift = (1i32 << (precision - 1)) as f64;
    let max = (1i32 << precision) - 1;
    let mut bits = Bits::new(data, position);
    let mut predictor = 0i32;
    let mut next_restart = 0u8;
    for block in 0..blocks_x * blocks_y {
        if restart_interval > 0 && block > 0 && block % restart_interval == 0 {
            bits.restart(next_restart)?;
            next_restart = (next_restart + 1) % 8;
            predictor = 0;
        }
        // The reader looks up to 4 bytes ahead; more than that past a marker or the end of
        // the data means the entropy-coded segment ended early.
        if bits.padding_bytes > 8 {
            return fail(format!(
                "entropy-coded data end after {block} of {} blocks (truncated)",
                blocks_x * blocks_y
            ));
        }
        let mut coefficients = [0f64; 64];
        let size = bits.decode(dc)?;
        predictor += bits.receive_extend(size)?;
        coefficients[0] = predictor as f64 * quant[0] as f64;
        let mut k = 1;
        while k < 64 {
            let rs = bits.decode(ac)?;
            let (run, size) = ((rs >> 4) as usize, rs & 0x0F);
            if size == 0 {
                if run == 15 {
                    k += 16;
                    continue;
                }
                break; // end of block
            }
            k += run;
            if k > 63 {
                return fail("corrupt entropy-coded data: coefficient index past 63");
            }
            coefficients[ZIGZAG[k]] = bits.receive_extend(size)? as f64 * quant[k] as f64;
            k += 1;
        }
        // Separable IDCT: rows (over u) then columns (over v).
        let mut rows = [0f64; 64];
        for v in 0..8 {
            for x in 0..8 {
                rows[v * 8 + x] = (0..8).map(|u| basis[x][u] * coefficients[v * 8 + u]).sum();
            }
        }
        let (bx, by) = (block % blocks_x, block / blocks_x);
        for (y, weights) in basis.iter().enumerate() {
            let row = by * 8 + y;
            if row >= height as usize {
                break;
            }
            for x in 0..8 {
                let column = bx * 8 + x;
                if column >= width as usize {
                    break;
                }
                let value: f64 = (0..8).map(|v| weights[v] * rows[v * 8 + x]).sum::<f64>() + level_shift;
                samples[row * width as usize + column] = (value.round() as i32).clamp(0, max) as u16;
            }
        }
    }
    Ok(Decoded {
        width,
        height,
        precision,
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_it_cannot_decode() {
        assert!(decode(b"not a jpeg").unwrap_err().0.contains("SOI"));
        // SOI, then a progressive SOF2 header.
        let progressive = [0xFF, 0xD8, 0xFF, 0xC2, 0x00, 0x0B, 12, 0, 8, 0, 8, 1, 1, 0x11, 0];
        assert!(decode(&progressive).unwrap_err().0.contains("SOF2"));
        let truncated = [0xFF, 0xD8, 0xFF, 0xC1, 0x00, 0x0B, 12];
        assert!(decode(&truncated).is_err());
    }

    #[test]
    fn idct_of_a_dc_only_block_is_flat() {
        let basis = idct_basis();
        // F(0,0) = 8·d gives d everywhere: C(0)²/4 · 8d = d.
        let value: f64 = basis[3][0] * basis[5][0] * 8.0 * 10.0;
        assert!((value - 10.0).abs() < 1e-12);
    }
}
