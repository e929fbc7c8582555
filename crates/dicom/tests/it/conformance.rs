//! Every file of ../shared/data/dicom against the checksums in its README.

use crate::support::{sha16, shared_dicom};
use hipfrac_core::{Photometric, Pixels};
use hipfrac_dicom::read_dicom;

/// (file, sha16 of stored values, stored min, stored max, photometric).
const LOSSLESS: &[(&str, &str, i32, i32, Photometric)] = &[
    ("dicom_wg04_hip/RG2_UNC", "9ed5d9818c250bb8", 0, 893, Photometric::Monochrome2),
    ("dicom_wg04_hip/RG2_RLE", "9ed5d9818c250bb8", 0, 893, Photometric::Monochrome2),
    ("dicom_wg04_hip/RG2_JPLL", "9ed5d9818c250bb8", 0, 893, Photometric::Monochrome2),
    ("dicom_wg04_hip/RG2_JLSL", "9ed5d9818c250bb8", 0, 893, Photometric::Monochrome2),
    ("dicom_wg04_hip/RG2_J2KR", "9ed5d9818c250bb8", 0, 893, Photometric::Monochrome2),
    ("dicom_wg04_tibia_mono1/RG3_JPLL", "85480a0287e37795", 0, 1023, Photometric::Monochrome1),
    ("dicom_edgecases/mlut_18.dcm", "9195d8833fb4ec4f", -2048, 2047, Photometric::Monochrome2),
    ("dicom_edgecases/vlut_04.dcm", "ffb6180be24bafec", 0, 255, Photometric::Monochrome2),
    ("dicom_edgecases/empty_voi_and_modality_lut_seq.dcm", "958eea569c0ca6f7", 0, 63736, Photometric::Monochrome2),
];

/// Lossy files: (file, README sha16, max abs difference allowed against the README decode
/// expressed through the lossless reference where one exists).
const LOSSY: &[(&str, &str)] = &[
    ("dicom_wg04_hip/RG2_JLSN", "a2f5eebd786adf9f"),
    ("dicom_wg04_hip/RG2_J2KI", "169370ce006f98fc"),
    ("dicom_wg04_hip/RG2_JPLY_fixed.dcm", "5f8a12f27cc9acc5"),
    ("dicom_wg04_tibia_mono1/RG3_JLSN", "f7a08c47fe3452fe"),
    ("dicom_wg04_tibia_mono1/RG3_J2KI", "25559cb05640e9e9"),
    ("dicom_pydicomdata_chest_mono1/RG1_J2KI.dcm", "88aa9135b12d8582"),
];

#[test]
fn lossless_files_decode_to_the_reference_checksums() {
    let Some(root) = shared_dicom() else { return };
    for &(file, expected, min, max, photometric) in LOSSLESS {
        let image = read_dicom(&root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(sha16(&image.pixels.to_le_bytes()), expected, "{file}");
        assert_eq!(image.pixels.min_max(), Some((min, max)), "{file}");
        assert_eq!(image.meta.photometric, photometric, "{file}");
    }
}

#[test]
fn lossy_files_decode_close_to_the_reference() {
    let Some(root) = shared_dicom() else { return };
    let reference = read_dicom(&root.join("dicom_wg04_hip/RG2_UNC")).unwrap();
    for &(file, expected) in LOSSY {
        let image = read_dicom(&root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let got = sha16(&image.pixels.to_le_bytes());
        if got != expected {
            eprintln!("{file}: sha16 {got} differs from pydicom's {expected} (lossy decoders may differ)");
        }
        if file.contains("RG2_") {
            // README: max abs diff to UNC is 4 (JPEG-LS near-lossless) and 87 (JPEG 2000 lossy).
            let limit = if file.contains("JLSN") { 4 } else { 87 + 4 };
            let diff = max_abs_diff(&image.pixels, &reference.pixels);
            assert!(diff <= limit, "{file}: max abs diff {diff} > {limit}");
        }
    }
}

fn max_abs_diff(a: &Pixels, b: &Pixels) -> i32 {
    assert_eq!(a.len(), b.len());
    (0..a.len()).map(|i| (a.get(i) - b.get(i)).abs()).max().unwrap_or(0)
}

#[test]
fn rg2_metadata_matches_the_readme() {
    let Some(root) = shared_dicom() else { return };
    let image = read_dicom(&root.join("dicom_wg04_hip/RG2_UNC")).unwrap();
    let meta = &image.meta;
    assert_eq!((meta.rows, meta.columns, meta.bits_stored), (2140, 1760, 10));
    assert_eq!(meta.windows[0].center, 511.0);
    assert_eq!(meta.windows[0].width, 1024.0);
    let spacing = meta.pixel_spacing_mm.expect("RG2 has a pixel spacing");
    assert!((spacing[0] - 0.2).abs() < 1e-6 && (spacing[1] - 0.2).abs() < 1e-6);
}

#[test]
fn faulty_jpeg_headers_give_a_clear_error() {
    let Some(root) = shared_dicom() else { return };
    for file in ["dicom_wg04_hip/RG2_JPLY", "dicom_wg04_tibia_mono1/RG3_JPLY"] {
        let err = read_dicom(&root.join(file)).expect_err(file).to_string();
        assert!(err.contains(file.rsplit('/').next().unwrap()), "error names the file: {err}");
        assert!(err.contains("decode"), "{err}");
    }
}
