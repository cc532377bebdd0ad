#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| provisor::fuzzing::idp_metadata(data));
