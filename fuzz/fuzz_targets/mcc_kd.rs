#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| morsd::fuzz::mcc_kd(data));
