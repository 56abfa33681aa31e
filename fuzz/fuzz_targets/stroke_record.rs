#![no_main]
//! libFuzzer entry for `doodlebox::fuzz::stroke_record`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| doodlebox::fuzz::stroke_record(data));
