#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lambda_detect_fuzz::image_decode(data));
