//! Reader-study files (`study.toml`), as `hipfrac study serve` loads them: parsed and checked,
//! or refused with an error; never a panic, whatever the bytes (wrong types, unknown keys,
//! NaN or infinite numbers, password hashes that are not argon2, bad phase names).
#![no_main]
mod common;
use hipfrac_study::config::Step;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file = common::file_with(data, ".toml");
    if let Ok(config) = hipfrac_study::StudyConfig::load(file.path()) {
        // What loads passes its own checks, and its phases name their reads.
        assert!(config.check().is_ok());
        for phase in &config.phases {
            let _ = (phase.key(Step::Unaided), phase.key(Step::Final));
        }
    }
});
