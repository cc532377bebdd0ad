#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| provisor::fuzzing::saml_prescan(data));
