//! JPEG films (crates/cli/tests/data/jpeg, written by scripts/jpeg_fixtures.py): baseline,
//! progressive, colour, EXIF-turned and truncated files through `read_radiograph`.

use hipfrac_core::Pixels;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../cli/tests/data/jpeg")
        .join(name)
}

/// Mean grey level of the block the fixtures draw bright in the upright film's top-left corner
/// (x 4..28, y 4..20), and of the same-sized block at the bottom-right corner.
fn corners(name: &str) -> (u32, u32, f64, f64) {
    let film = hipfrac_dicom::read_radiograph(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (w, h) = (film.meta.columns, film.meta.rows);
    let Pixels::Unsigned(values) = &film.pixels else {
        panic!("{name}: 8-bit films are unsigned")
    };
    let mean = |x0: u32, y0: u32| {
        let mut sum = 0.0;
        for y in y0..y0 + 16 {
            for x in x0..x0 + 24 {
                sum += values[(y * w + x) as usize] as f64;
            }
        }
        sum / (16.0 * 24.0)
    };
    (w, h, mean(4, 4), mean(w - 28, h - 20))
}

#[test]
fn baseline_progressive_colour_and_exif_turned_films_read_upright_and_grey() {
    for name in [
        "baseline.jpg",
        "progressive.jpg",
        "colour-progressive.jpg",
        "exif-orientation-6.jpg",
        "exif-orientation-8.jpg",
    ] {
        let (w, h, bright, other) = corners(name);
        assert_eq!((w, h), (96, 64), "{name}: the film as shown is 96 wide, 64 high");
        assert!(
            bright > 200.0 && other < 150.0,
            "{name}: the bright block must be top-left ({bright:.0} vs {other:.0})"
        );
        assert_eq!(
            hipfrac_dicom::read_image_size(&fixture(name)).unwrap(),
            (96, 64),
            "{name}"
        );
    }
}

#[test]
fn a_truncated_film_and_an_unsupported_type_are_named_errors() {
    let message = hipfrac_dicom::read_radiograph(&fixture("truncated.jpg"))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("truncated.jpg") && message.contains("truncated"),
        "{message}"
    );
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, says) in [
        ("film.tif", &b"II*\0\x08\0\0\0rest"[..], "TIFF"),
        ("film.bmp", &b"BM\x36\0\0\0"[..], "BMP"),
        ("film.jpg", &b"not a jpeg at all"[..], ".jpg"),
        ("empty.dcm", &b""[..], "empty"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let message = hipfrac_dicom::read_radiograph(&path).unwrap_err().to_string();
        assert!(
            message.contains(name) && message.contains("unsupported file type") && message.contains(says),
            "{name}: {message}"
        );
    }
}
