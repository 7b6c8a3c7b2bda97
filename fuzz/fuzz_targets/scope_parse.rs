#![no_main]
//! The scope rule on arbitrary text: parse, covers, explain, attenuation.
use chainview::scope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let parts: Vec<&str> = s.split('\n').collect();
    let _ = scope::Scope::parse(s);
    if let [req, granted @ ..] = parts.as_slice() {
        let all = scope::explain(&[*req], granted)
            .iter()
            .all(|e| e.verdict.is_covered());
        assert_eq!(all, scope::is_subset(&[*req], granted));
        let _ = scope::attenuation(granted, &[*req]);
        for g in granted {
            if scope::covers(g, req) {
                assert!(scope::validate(req).is_ok());
            }
        }
    }
});
