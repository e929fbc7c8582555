//! DICOM parse + pixel decode + display pipeline, as `convert` and `predict` run them: any
//! input must give an image or an error — no panic, no abort, bounded memory (run under
//! `-rss_limit_mb=1024`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::NamedTempFile::new().expect("a temp file");
    file.write_all(data).expect("write");
    let path = file.path();
    let _ = hipfrac_dicom::read_dicom_header(path);
    if let Ok(image) = hipfrac_dicom::read_dicom(path) {
        let _ = hipfrac_dicom::display::to_display(&image);
        let _ = hipfrac_dicom::display::modality_16bit(&image);
    }
});
