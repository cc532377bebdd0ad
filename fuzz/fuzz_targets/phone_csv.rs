#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| provisor::fuzzing::phone_csv(data));
