#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| provisor::fuzzing::user_csv(data));
