#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| provisor::fuzzing::scim_group_body(data));
