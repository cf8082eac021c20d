#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dax_probe_fuzz::analysis(data));
