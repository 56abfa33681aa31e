#![no_main]
//! libFuzzer entry for `doodlebox::fuzz::drawing_json`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| doodlebox::fuzz::drawing_json(data));
