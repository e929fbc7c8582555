//! Files whose display values are unusable are read, and the display pipeline says why the
//! image cannot be shown: a prediction answers such an image not assessable, instead of the
//! file being an error that stops a whole evaluation.

use hipfrac_core::{Pixels, Radiograph, RadiographMeta, Window};
use hipfrac_dicom::display::{render_8bit, to_display, VoiChoice, VoiError};
use hipfrac_dicom::write::{write_cr, DicomAttributes};
use std::path::Path;

/// A 12-bit CR hip radiograph, 32 × 24, a gradient unless `constant`, with one window.
fn write(path: &Path, window: (f64, f64), constant: Option<u16>) {
    let mut meta = RadiographMeta::plain(24, 32, 12);
    meta.sop_instance_uid = Some("1.2.826.0.1.3680043.2.1125.9.1".into());
    meta.study_instance_uid = Some("1.2.826.0.1.3680043.2.1125.9.2".into());
    meta.series_instance_uid = Some("1.2.826.0.1.3680043.2.1125.9.3".into());
    meta.body_part = Some("HIP".into());
    meta.windows = vec![Window {
        center: window.0,
        width: window.1,
        explanation: None,
    }];
    let pixels = (0..32 * 24).map(|i| constant.unwrap_or((i * 5) as u16)).collect();
    let image = Radiograph {
        meta,
        pixels: Pixels::Unsigned(pixels),
    };
    let attributes = DicomAttributes {
        view_position: "AP".into(),
        ..Default::default()
    };
    write_cr(path, &image, &attributes).unwrap();
}

#[test]
fn a_file_with_an_unusable_window_is_read_and_its_rendering_says_why() {
    let dir = tempfile::tempdir().unwrap();
    for (window, tag, value) in [
        ((f64::NAN, 2048.0), "Window Center (0028,1050)", "NaN"),
        ((f64::INFINITY, 2048.0), "Window Center (0028,1050)", "inf"),
        ((2048.0, f64::NAN), "Window Width (0028,1051)", "NaN"),
        ((2048.0, 1e12), "Window Width (0028,1051)", "1000000000000"),
    ] {
        let path = dir.path().join("bad-window.dcm");
        write(&path, window, None);
        // The header and the pixels read; the window is kept as the file says.
        let header = hipfrac_dicom::check_dicom(&path).unwrap_or_else(|e| panic!("{tag} {value}: {e}"));
        assert_eq!(header.windows.len(), 1, "{tag} {value}");
        let image = hipfrac_dicom::read_radiograph(&path).unwrap();
        assert_eq!(image.meta.windows.len(), 1);
        assert_eq!(image.width(), 32);
        let error = to_display(&image).unwrap_err();
        let VoiError::BadWindow(reason) = &error else {
            panic!("{tag} {value}: {error:?}")
        };
        assert!(reason.starts_with(&format!("{tag} is {value}: ")), "{reason}");
        assert_eq!(error.unreadable(), Some(reason.as_str()));
        // Shown through an explicit window, the image is there.
        let explicit = VoiChoice::Explicit {
            center: 2048.0,
            width: 4096.0,
        };
        assert!(render_8bit(&image, &explicit).is_ok());
    }
    // A zero width is no window, as before: the image is shown through an automatic one.
    let path = dir.path().join("zero-width.dcm");
    write(&path, (2048.0, 0.0), None);
    let image = hipfrac_dicom::read_radiograph(&path).unwrap();
    assert!(image.meta.windows.is_empty());
    assert!(to_display(&image).is_ok());
}

#[test]
fn a_constant_file_is_read_and_its_rendering_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("constant.dcm");
    write(&path, (2048.0, 4096.0), Some(1234));
    let image = hipfrac_dicom::read_radiograph(&path).unwrap();
    assert_eq!(
        to_display(&image).unwrap_err(),
        VoiError::Blank("the image is constant: every pixel is 1234".into())
    );
}
