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
    // hipfrac turns a parser or decoder panic into the file's error; for the fuzzer it is
    // still a finding.
    let panicked = |e: &hipfrac_dicom::Error| {
        hipfrac_core::error_chain(e).contains("panicked")
            || match e {
                hipfrac_dicom::Error::Parse { source, .. } => matches!(**source, hipfrac_dicom::ParseFault::Panic(_)),
                hipfrac_dicom::Error::Decode { source, .. } => {
                    matches!(**source, hipfrac_dicom::DecodeFault::Panic(_))
                }
                _ => false,
            }
    };
    if let Err(e) = hipfrac_dicom::read_dicom_header(path) {
        assert!(!panicked(&e), "caught panic: {}", hipfrac_core::error_chain(&e));
    }
    match hipfrac_dicom::read_dicom(path) {
        Ok(image) => {
            let _ = hipfrac_dicom::display::to_display(&image);
            let _ = hipfrac_dicom::display::modality_16bit(&image);
        }
        Err(e) => assert!(!panicked(&e), "caught panic: {}", hipfrac_core::error_chain(&e)),
    }
});
