#![no_main]
//! The scenario parser on arbitrary text: never panics; errors carry positions.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = chainview::scenario::parse("fuzz.chainview", s) {
        for e in errors.0 {
            assert!(e.line >= 1 && e.col >= 1);
        }
    }
});
