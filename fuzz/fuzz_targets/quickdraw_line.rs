#![no_main]
//! libFuzzer entry for `doodlebox::fuzz::quickdraw_line`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| doodlebox::fuzz::quickdraw_line(data));
