//! A walk over a DICOM file's element headers, before the real parser reads it, that
//! checks every declared length against the bytes left in the file.
//!
//! dicom-rs allocates each value's buffer at its declared length before reading it, so a
//! corrupt or hostile length (up to 4 GiB) costs seconds and gigabytes before the read fails.
//! This walk reads only tags and lengths (a few hundred small reads for a radiograph), skips
//! values, and refuses the file with a message that names the element and the byte offset.
//!
//! It also bounds what the parser may be made to do: sequences and items of every form nest
//! at most [`MAX_DEPTH`] deep (the parser recurses on them), fixed-size VRs hold whole values
//! (a VR changed by corruption desynchronises the parser into a 4 GiB "length"), files without
//! the 128-byte preamble are walked too, and a deflated data set is inflated under a ceiling
//! ([`MAX_INFLATED`]) and walked like any other.

use crate::error::StructureError;
use crate::{Error, Result};
use std::io::{Read, Seek, SeekFrom};

const UNDEFINED: u32 = 0xFFFF_FFFF;
/// The deepest nesting accepted, sequences and items each counting one level (16 nested
/// sequences; real radiographs use a handful, structured reports a dozen).
pub const MAX_DEPTH: usize = 32;

/// The largest inflated data set accepted from a deflated transfer syntax.
pub const MAX_INFLATED: u64 = 512 * 1024 * 1024;

/// The size of one value of a fixed-size VR (the length must be a multiple of it).
fn unit(vr: &[u8; 2]) -> Option<u32> {
    match vr {
        b"US" | b"SS" | b"OW" => Some(2),
        b"UL" | b"SL" | b"FL" | b"AT" | b"OF" | b"OL" => Some(4),
        b"FD" | b"OD" | b"SV" | b"UV" | b"OV" => Some(8),
        _ => None,
    }
}

/// Every value representation of PS3.5 6.2; anything else in an explicit VR file is corruption.
const KNOWN_VRS: [&[u8; 2]; 34] = [
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"OB", b"OD", b"OF", b"OL",
    b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM", b"UC", b"UI", b"UL", b"UN", b"UR", b"US",
    b"UT", b"UV",
];

/// The value representations whose explicit-VR header has two reserved bytes and a 4-byte
/// length (PS3.5 7.1.2); the others have a 2-byte length.
const LONG_VRS: [&[u8; 2]; 13] = [
    b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV",
];

struct Walker<R> {
    source: R,
    size: u64,
    explicit: bool,
    big_endian: bool,
}

/// What a defined-length value holds, as far as the walk cares.
enum Value {
    Sequence,
    /// An explicit VR UN value (implicit VR inside).
    Unknown,
    Other,
}

/// What ended a walk of a list of elements.
enum End {
    /// The range or the file ended.
    Range,
    /// An item or sequence delimiter.
    Delimiter,
    /// Pixel Data was reached in header-only mode.
    PixelData,
}

impl<R: Read + Seek> Walker<R> {
    fn read(&mut self, at: u64, buffer: &mut [u8]) -> Result<(), StructureError> {
        if at + buffer.len() as u64 > self.size {
            return Err(StructureError::TruncatedHeader { at });
        }
        self.source
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.source.read_exact(buffer))
            .map_err(|source| StructureError::Read { at, source })
    }

    /// An explicit-VR element header at `position` (`head`: its first 8 bytes): the VR, the
    /// header's size and the value's length. An unknown VR is refused: the parser would read
    /// it as UN, with a 4-byte length where a 2-byte one was read here.
    fn explicit_header(
        &mut self,
        group: u16,
        element: u16,
        head: [u8; 8],
        position: u64,
    ) -> Result<([u8; 2], u64, u32), StructureError> {
        let vr = [head[4], head[5]];
        if !KNOWN_VRS.contains(&&vr) {
            return Err(StructureError::BadVr {
                group,
                element,
                at: position,
                vr,
            });
        }
        if LONG_VRS.contains(&&vr) {
            let mut length = [0u8; 4];
            self.read(position + 8, &mut length)?;
            Ok((vr, 12, self.u32(length)))
        } else {
            Ok((vr, 8, self.u16([head[6], head[7]]) as u32))
        }
    }

    fn u16(&self, bytes: [u8; 2]) -> u16 {
        if self.big_endian {
            u16::from_be_bytes(bytes)
        } else {
            u16::from_le_bytes(bytes)
        }
    }

    fn u32(&self, bytes: [u8; 4]) -> u32 {
        if self.big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        }
    }

    /// Walks elements from `position` up to `end`; returns where it stopped and why.
    /// With `fragments`, items hold bytes (encapsulated pixel data), not elements.
    fn elements(
        &mut self,
        mut position: u64,
        end: u64,
        depth: usize,
        stop_at_pixels: bool,
        fragments: bool,
    ) -> Result<(u64, End), StructureError> {
        if depth > MAX_DEPTH {
            return Err(StructureError::TooDeep {
                depth: MAX_DEPTH,
                at: position,
            });
        }
        while position < end {
            let mut head = [0u8; 8];
            self.read(position, &mut head)?;
            let group = self.u16([head[0], head[1]]);
            let element = self.u16([head[2], head[3]]);
            if group == 0xFFFE {
                // Item (E000) or delimiters (E00D, E0DD): always 4-byte length, no VR.
                let length = self.u32([head[4], head[5], head[6], head[7]]);
                position += 8;
                match element {
                    0xE00D | 0xE0DD => return Ok((position, End::Delimiter)),
                    _ if length == UNDEFINED => {
                        let (after, _) = self.elements(position, end, depth + 1, false, false)?;
                        position = after;
                    }
                    _ => {
                        // An item of defined length holds elements (walked one level down), or
                        // a fragment of pixel data (skipped).
                        self.check(group, element, length, position, end)?;
                        if !fragments {
                            self.elements(position, position + length as u64, depth + 1, false, false)?;
                        }
                        position += length as u64;
                    }
                }
                continue;
            }
            if stop_at_pixels && depth == 0 && (group, element) == (0x7FE0, 0x0010) {
                return Ok((position, End::PixelData));
            }
            let (header, length, is_sequence) = if self.explicit {
                let (vr, header, length) = self.explicit_header(group, element, head, position)?;
                if let Some(unit) = unit(&vr).filter(|u| length != UNDEFINED && length % u != 0) {
                    let vr = String::from_utf8_lossy(&vr).to_string();
                    return Err(StructureError::BadLength {
                        group,
                        element,
                        at: position + header,
                        vr,
                        length,
                        unit,
                    });
                }
                (
                    header,
                    length,
                    if &vr == b"SQ" {
                        Value::Sequence
                    } else if &vr == b"UN" {
                        Value::Unknown
                    } else {
                        Value::Other
                    },
                )
            } else {
                (8, self.u32([head[4], head[5], head[6], head[7]]), Value::Other)
            };
            position += header;
            if length == UNDEFINED {
                // A sequence or encapsulated pixel data: items until the sequence delimiter.
                let pixels = (group, element) == (0x7FE0, 0x0010);
                let (after, _) = self.elements(position, end, depth + 1, false, pixels)?;
                position = after;
                continue;
            }
            self.check(group, element, length, position, end)?;
            match is_sequence {
                Value::Sequence => {
                    self.elements(position, position + length as u64, depth + 1, false, false)?;
                }
                // UN holds implicit VR items (PS3.5 6.2.2) that the parser keeps as bytes:
                // nothing to walk, nothing it recurses into.
                Value::Unknown => {}
                Value::Other => self.items_or_skip(position, length as u64, depth)?,
            }
            position += length as u64;
        }
        Ok((position, End::Range))
    }

    fn check(&self, group: u16, element: u16, length: u32, position: u64, end: u64) -> Result<(), StructureError> {
        let left = end.saturating_sub(position);
        if length as u64 > left {
            return Err(StructureError::TooLong {
                group,
                element,
                at: position,
                length,
                left,
            });
        }
        Ok(())
    }

    /// A defined-length value that starts like an item (implicit VR sequences look so) is
    /// walked as one; anything else is skipped.
    fn items_or_skip(&mut self, position: u64, length: u64, depth: usize) -> Result<(), StructureError> {
        if length >= 8 {
            let mut tag = [0u8; 4];
            self.read(position, &mut tag)?;
            if self.u16([tag[0], tag[1]]) == 0xFFFE && self.u16([tag[2], tag[3]]) == 0xE000 {
                self.elements(position, position + length, depth + 1, false, false)?;
            }
        }
        Ok(())
    }
}

/// Checks the element lengths of a DICOM Part 10 file. Files without the `DICM` magic or in
/// a deflated transfer syntax are left to the parser. With `header_only`, the walk stops at
/// Pixel Data. A file that cannot be opened is [`Error::Io`]; a broken structure is
/// [`Error::Parse`] with a [`StructureError`] as its cause.
pub fn check_file(path: &std::path::Path, header_only: bool) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    walk(file, size, header_only).map_err(|e| Error::parse(path, e))
}

fn walk(file: std::fs::File, size: u64, header_only: bool) -> Result<(), StructureError> {
    let mut walker = Walker {
        source: file,
        size,
        explicit: true,
        big_endian: false,
    };
    // DICM after the 128-byte preamble, or at byte 0 (the parser accepts both).
    let mut magic = [0u8; 4];
    let mut position = if size >= 132 && walker.read(128, &mut magic).is_ok() && &magic == b"DICM" {
        132
    } else if walker.read(0, &mut magic).is_ok() && &magic == b"DICM" {
        4
    } else {
        return Ok(());
    };
    // File meta group: explicit VR little endian; find the transfer syntax.
    let mut transfer_syntax = String::new();
    loop {
        let mut head = [0u8; 8];
        if walker.read(position, &mut head).is_err() {
            return Err(StructureError::TruncatedMeta { at: position });
        }
        if u16::from_le_bytes([head[0], head[1]]) != 0x0002 {
            break;
        }
        let element = u16::from_le_bytes([head[2], head[3]]);
        // Read as in the data set (the walker is little endian until the transfer syntax says
        // otherwise): a fuzzed meta group with an unknown VR once made the parser allocate
        // 775 MB for a UID.
        let (_, header, length) = walker.explicit_header(0x0002, element, head, position)?;
        walker.check(0x0002, element, length, position + header, size)?;
        if element == 0x0010 {
            let mut value = vec![0u8; length as usize];
            walker.read(position + header, &mut value)?;
            transfer_syntax = String::from_utf8_lossy(&value)
                .trim_end_matches(['\0', ' '])
                .to_string();
        }
        position += header + length as u64;
    }
    match transfer_syntax.as_str() {
        "1.2.840.10008.1.2" => walker.explicit = false,
        "1.2.840.10008.1.2.2" => walker.big_endian = true,
        "1.2.840.10008.1.2.1.99" => return walk_deflated(walker.source, position, header_only),
        _ => {}
    }
    walker.elements(position, size, 0, header_only, false).map(|_| ())
}

/// Inflates the data set after the meta group (raw deflate, PS3.5 A.5) under
/// [`MAX_INFLATED`], then walks it.
fn walk_deflated(mut file: std::fs::File, start: u64, header_only: bool) -> Result<(), StructureError> {
    let mut inflate = |limit: u64, sink: &mut dyn std::io::Write| -> Result<u64, StructureError> {
        file.seek(SeekFrom::Start(start))
            .map_err(|source| StructureError::Read { at: start, source })?;
        let mut stream = flate2::read::DeflateDecoder::new(std::io::BufReader::new(&mut file)).take(limit);
        std::io::copy(&mut stream, sink).map_err(StructureError::Inflate)
    };
    // First measure (nothing kept: a bomb costs time, not memory), then inflate to walk.
    if inflate(MAX_INFLATED + 1, &mut std::io::sink())? > MAX_INFLATED {
        return Err(StructureError::InflatesTooFar { limit: MAX_INFLATED });
    }
    let mut inflated = Vec::new();
    let size = inflate(MAX_INFLATED, &mut inflated)?;
    let mut walker = Walker {
        source: std::io::Cursor::new(inflated),
        size,
        explicit: true,
        big_endian: false,
    };
    walker.elements(0, size, 0, header_only, false).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Part 10 file: preamble, DICM, (0002,0010) = `ts`, then `dataset`.
    fn file_in(ts: &[u8], dataset: &[u8]) -> tempfile::NamedTempFile {
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(b"DICM");
        bytes.extend_from_slice(&[0x02, 0x00, 0x10, 0x00, b'U', b'I', ts.len() as u8, 0]);
        bytes.extend_from_slice(ts);
        bytes.extend_from_slice(dataset);
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        file
    }

    /// Explicit VR little endian.
    fn file_with(dataset: &[u8]) -> tempfile::NamedTempFile {
        file_in(b"1.2.840.10008.1.2.1\0", dataset)
    }

    /// Found by `bench/fuzz.sh` (2026-12-02): a meta group element whose VR was mutated to
    /// "QI". The parser reads an unknown VR as UN (4-byte length: 775 MB for a UID); the walk
    /// read it as a 2-byte length and let it through. Now refused before anything is allocated.
    #[test]
    fn an_unknown_vr_in_the_meta_group_is_refused() {
        let bytes = include_bytes!("../../cli/tests/data/bad-dicom/fuzz-dicom-meta-unknown-vr-775MB.dcm");
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, bytes).unwrap();
        let error = hipfrac_core::error_chain(&check_file(file.path(), true).unwrap_err());
        assert!(
            error.contains("(0002,0002)") && error.contains("no valid value representation (51 49)"),
            "{error}"
        );
    }

    #[test]
    fn sane_lengths_pass_and_huge_ones_are_named() {
        // (0010,0010) PN "DOE^J " then (7FE0,0010) OW with 4 bytes.
        let mut good = vec![0x10, 0x00, 0x10, 0x00, b'P', b'N', 6, 0];
        good.extend_from_slice(b"DOE^J ");
        good.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0, 4, 0, 0, 0, 1, 2, 3, 4]);
        check_file(file_with(&good).path(), false).unwrap();

        let mut bad = good.clone();
        bad[22..26].copy_from_slice(&0xF000_0000u32.to_le_bytes());
        let file = file_with(&bad);
        let err = check_file(file.path(), false).unwrap_err();
        assert!(
            matches!(&err, Error::Parse { path, .. } if path == file.path()),
            "{err:?}"
        );
        // The outer message does not repeat its cause.
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(!err.to_string().contains(&cause), "{err}");
        let err = hipfrac_core::error_chain(&err);
        assert!(err.contains("(7FE0,0010)") && err.contains("4026531840"), "{err}");
        // Header-only mode stops before the pixel data.
        check_file(file_with(&bad).path(), true).unwrap();

        let err = hipfrac_core::error_chain(&check_file(file_with(&good[..good.len() - 2]).path(), false).unwrap_err());
        assert!(
            err.contains("not a readable DICOM file: ") && err.contains("truncated"),
            "{err}"
        );
    }

    /// `depth` defined-length sequences, each with one defined-length item, around a string.
    fn nested(depth: usize) -> Vec<u8> {
        let mut inner = vec![0x10, 0x00, 0x10, 0x00, b'P', b'N', 6, 0];
        inner.extend_from_slice(b"DOE^J ");
        for _ in 0..depth {
            let mut item = vec![0xFE, 0xFF, 0x00, 0xE0];
            item.extend_from_slice(&(inner.len() as u32).to_le_bytes());
            item.extend_from_slice(&inner);
            let mut sequence = vec![0x09, 0x00, 0x10, 0x10, b'S', b'Q', 0, 0];
            sequence.extend_from_slice(&(item.len() as u32).to_le_bytes());
            sequence.extend_from_slice(&item);
            inner = sequence;
        }
        inner
    }

    #[test]
    fn defined_length_nesting_is_bounded() {
        check_file(file_with(&nested(8)).path(), false).unwrap();
        let err = hipfrac_core::error_chain(&check_file(file_with(&nested(40)).path(), false).unwrap_err());
        assert!(err.contains("nested more than 32 deep"), "{err}");
    }

    #[test]
    fn a_fixed_size_vr_with_a_partial_value_is_corrupt() {
        // (0010,0020) changed from LO to FD, 12 bytes: the parser would read 8 and lose sync.
        let mut bytes = vec![0x10, 0x00, 0x20, 0x00, b'F', b'D', 12, 0];
        bytes.extend_from_slice(b"PATIENT-0001");
        let err = hipfrac_core::error_chain(&check_file(file_with(&bytes).path(), false).unwrap_err());
        assert!(err.contains("(0010,0020)") && err.contains("FD with 12 bytes"), "{err}");
        bytes[6] = 16;
        bytes.extend_from_slice(&[0; 4]);
        check_file(file_with(&bytes).path(), false).unwrap();
    }

    #[test]
    fn a_file_without_preamble_is_walked_too() {
        let with = std::fs::read(file_with(&[0x11, 0x00, 0x00, 0x10, b'O', b'B', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF]).path())
            .unwrap();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, &with[128..]).unwrap();
        let err = hipfrac_core::error_chain(&check_file(file.path(), false).unwrap_err());
        assert!(err.contains("(0011,1000)") && err.contains("4294967280"), "{err}");
    }

    #[test]
    fn a_deflate_bomb_is_refused_without_holding_it() {
        use std::io::Write;
        let deflated = |dataset: &[u8], zeros: u64| {
            let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(dataset).unwrap();
            let block = vec![0u8; 1 << 20];
            for _ in 0..zeros >> 20 {
                encoder.write_all(&block).unwrap();
            }
            encoder.finish().unwrap()
        };
        let file_of = |body: Vec<u8>| file_in(b"1.2.840.10008.1.2.1.99", &body);
        // A small deflated data set passes; its corrupt twin is caught inside the deflate.
        let mut good = vec![0x10, 0x00, 0x10, 0x00, b'P', b'N', 6, 0];
        good.extend_from_slice(b"DOE^J ");
        check_file(file_of(deflated(&good, 0)).path(), false).unwrap();
        let mut bad = good.clone();
        bad[6] = 200;
        assert!(
            hipfrac_core::error_chain(&check_file(file_of(deflated(&bad, 0)).path(), false).unwrap_err())
                .contains("claims 200 bytes")
        );
        // An OB element of MAX_INFLATED + 1 MiB zeros.
        let mut bomb = vec![0x09, 0x00, 0x10, 0x10, b'O', b'B', 0, 0];
        bomb.extend_from_slice(&((MAX_INFLATED + (1 << 20)) as u32).to_le_bytes());
        let err = hipfrac_core::error_chain(
            &check_file(file_of(deflated(&bomb, MAX_INFLATED + (1 << 20))).path(), false).unwrap_err(),
        );
        assert!(err.contains("inflates to more than"), "{err}");
    }

    #[test]
    fn an_un_value_holding_implicit_items_passes() {
        // (0009,1010) UN, defined length, holding one implicit VR item with (0010,0010) "AB".
        let inner = [0x10, 0x00, 0x10, 0x00, 2, 0, 0, 0, b'A', b'B'];
        let mut item = vec![0xFE, 0xFF, 0x00, 0xE0];
        item.extend_from_slice(&(inner.len() as u32).to_le_bytes());
        item.extend_from_slice(&inner);
        let mut un = vec![0x09, 0x00, 0x10, 0x10, b'U', b'N', 0, 0];
        un.extend_from_slice(&(item.len() as u32).to_le_bytes());
        un.extend_from_slice(&item);
        check_file(file_with(&un).path(), false).unwrap();
    }
}
