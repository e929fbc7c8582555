//! Training configs (TOML): parsed and range-checked, or refused with an error; never a
//! panic, whatever the bytes (NaN, infinities, huge numbers, wrong types, unknown keys).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(config) = hipfrac_train::TrainConfig::parse(text, std::path::Path::new("fuzz/train.toml")) {
            // What parses is in range: the model it describes can be configured.
            let _ = config.model_config();
            let _ = hipfrac_train::config::commented(&config);
        }
    }
});
