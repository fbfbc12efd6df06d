#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| morsd::fuzz::custom(data));
