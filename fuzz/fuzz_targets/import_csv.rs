#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| surety::fuzzing::import_csv(data));
