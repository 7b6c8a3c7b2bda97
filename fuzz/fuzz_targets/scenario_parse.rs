#![no_main]
//! The scenario parser on arbitrary text: never panics; errors carry
//! positions; and what it would print (its errors, each step's line) shows
//! no live control character once through `text::visible`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let live = |t: &str| {
        chainview::text::visible(t)
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    };
    match chainview::scenario::parse("fuzz.chainview", s) {
        Err(errors) => {
            assert!(!live(&errors.to_string()));
            for e in errors.0 {
                assert!(e.line >= 1 && e.col >= 1);
            }
        }
        Ok(script) => {
            for step in &script.steps {
                assert!(!live(&chainview::scenario::redact_source(&step.source)));
            }
        }
    }
});
