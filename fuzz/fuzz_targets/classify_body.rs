#![no_main]
//! libFuzzer entry for `doodlebox::fuzz::classify_body`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| doodlebox::fuzz::classify_body(data));
