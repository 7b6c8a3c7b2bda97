#![no_main]
//! JWT decoding and verification on arbitrary input, and on tokens built
//! from arbitrary header/payload bytes.
use base64::Engine;
use chainview::jwt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = ed25519_dalek::SigningKey::from_bytes(&[1u8; 32]).verifying_key();
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(d) = jwt::decode(s) {
            let _ = d.verify(&key);
        }
        let _ = jwt::redact(s);
    }
    // The same bytes as a header and payload of a compact token.
    let mid = data.len() / 2;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let tok = format!(
        "{}.{}.{}",
        e.encode(&data[..mid]),
        e.encode(&data[mid..]),
        e.encode([0u8; 64])
    );
    if let Ok(d) = jwt::decode(&tok) {
        assert!(!d.signature_ok(&key));
    }
});
