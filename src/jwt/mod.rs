//! AgentWrit JWTs: decoding for display, EdDSA signing and verification,
//! delegation-record signatures, `chain_hash`, and redaction (spec §2, §6).
//!
//! Decoding never panics: garbage, truncated or non-JWT input yields a
//! [`JwtError`] naming what is wrong.

pub mod gojson;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

/// How many leading characters of a secret [`redact`] keeps.
pub const REDACT_KEEP: usize = 12;

/// The longest delegation chain a broker issues (spec §6.1): longer ones
/// are forged or foreign, and are never rendered whole.
pub const MAX_CHAIN: usize = 5;

/// The largest token chainview takes in (the broker's 1 MiB body limit).
pub const MAX_TOKEN: usize = 1 << 20;

/// A token or secret shown as its first 12 characters and `…`.
pub fn redact(secret: &str) -> String {
    let mut it = secret.char_indices();
    match it.nth(REDACT_KEEP) {
        Some((cut, _)) => format!("{}…", &secret[..cut]),
        None => format!("{secret}…"),
    }
}

/// Errors from decoding or checking a compact JWT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("empty token")]
    Empty,
    #[error("not a JWT: expected 3 dot-separated parts, found {found}")]
    PartCount { found: usize },
    #[error("bad base64url in part {part} ({name})")]
    Base64 { part: usize, name: &'static str },
    #[error("part {part} ({name}) is not JSON: {message}")]
    NotJson {
        part: usize,
        name: &'static str,
        message: String,
    },
    #[error("missing claim '{0}'")]
    MissingClaim(&'static str),
    #[error("claim '{claim}' has the wrong type: {message}")]
    BadClaim { claim: String, message: String },
    #[error("signature must be 64 bytes, found {0}")]
    SignatureLength(usize),
}

const PART_NAMES: [&str; 3] = ["header", "payload", "signature"];

/// Go's `encoding/json` reads `null` as the zero value.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// JOSE header. Serialises in the broker's order: alg, typ, kid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    #[serde(default, deserialize_with = "null_default")]
    pub alg: String,
    #[serde(default, deserialize_with = "null_default")]
    pub typ: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
}

/// One delegation hop as recorded in `delegation_chain` (spec §6.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegRecord {
    #[serde(default, deserialize_with = "null_default")]
    pub agent: String,
    #[serde(default, deserialize_with = "null_default")]
    pub scope: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub delegated_at: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub signature: String,
}

impl DelegRecord {
    /// The canonical string the broker signs: `agent|scope,csv|delegated_at`.
    pub fn canonical(&self) -> String {
        format!(
            "{}|{}|{}",
            self.agent,
            self.scope.join(","),
            self.delegated_at
        )
    }
}

/// AgentWrit claims, in the broker's emission order and omission rules (spec §2.3).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default, deserialize_with = "null_default")]
    pub iss: String,
    #[serde(default, deserialize_with = "null_default")]
    pub sub: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub aud: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub exp: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub nbf: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub iat: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub jti: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub sid: String,
    #[serde(default, deserialize_with = "null_default")]
    pub scope: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub task_id: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub orch_id: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub delegation_chain: Vec<DelegRecord>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub chain_hash: String,
}

impl Claims {
    /// Delegation depth: the number of chain records (0 for an agent token).
    pub fn depth(&self) -> usize {
        self.delegation_chain.len()
    }

    /// The claims a revocation entry can match (spec §7.1).
    pub fn subject(&self) -> crate::rules::Subject<'_> {
        crate::rules::Subject {
            jti: &self.jti,
            sub: &self.sub,
            task: &self.task_id,
            chain_root: self.delegation_chain.first().map(|r| r.agent.as_str()),
        }
    }
}

/// A decoded compact JWT. Nothing about it is trusted until [`Decoded::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub header: Header,
    pub claims: Claims,
    /// `part0.part1`, the bytes the signature covers.
    pub signing_input: String,
    pub signature: Vec<u8>,
}

fn b64(part: usize, s: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Base64 {
        part: part + 1,
        name: PART_NAMES[part],
    })
}

fn json_err(part: usize, e: &serde_json::Error) -> JwtError {
    JwtError::NotJson {
        part: part + 1,
        name: PART_NAMES[part],
        message: e.to_string(),
    }
}

/// Decodes a compact JWT into header and claims without checking anything.
/// Whitespace is not trimmed (the broker rejects `" " + token`); callers
/// taking pasted text trim it themselves.
pub fn decode(token: &str) -> Result<Decoded, JwtError> {
    if token.is_empty() {
        return Err(JwtError::Empty);
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(JwtError::PartCount { found: parts.len() });
    }
    let header_bytes = b64(0, parts[0])?;
    let header: Header = serde_json::from_slice(&header_bytes).map_err(|e| json_err(0, &e))?;
    let payload = b64(1, parts[1])?;
    let value: serde_json::Value = serde_json::from_slice(&payload).map_err(|e| json_err(1, &e))?;
    let obj = value.as_object().ok_or_else(|| JwtError::NotJson {
        part: 2,
        name: "payload",
        message: "not a JSON object".into(),
    })?;
    for claim in ["sub", "exp", "jti"] {
        if !obj.contains_key(claim) {
            return Err(JwtError::MissingClaim(claim));
        }
    }
    let claims: Claims = serde_json::from_value(value).map_err(|e| {
        // Find the first claim that does not decode on its own, to name it.
        let obj: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&payload).unwrap_or_default();
        let claim = obj
            .iter()
            .find(|(k, v)| {
                let mut single = serde_json::Map::new();
                single.insert((*k).clone(), (*v).clone());
                serde_json::from_value::<Claims>(serde_json::Value::Object(single)).is_err()
            })
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| "?".into());
        JwtError::BadClaim {
            claim,
            message: e.to_string(),
        }
    })?;
    let signature = b64(2, parts[2])?;
    Ok(Decoded {
        header,
        claims,
        signing_input: format!("{}.{}", parts[0], parts[1]),
        signature,
    })
}

/// The outcome of checking a decoded token against a known broker key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// `alg` is `EdDSA`, `kid` (when present) matches, and the signature verifies.
    pub signature: bool,
    /// One entry per chain record: does its signature verify?
    pub records: Vec<bool>,
    /// Does `chain_hash` match the chain? `None` when the token has no chain.
    pub chain_hash: Option<bool>,
}

impl Verification {
    pub fn all_ok(&self) -> bool {
        self.signature && self.records.iter().all(|r| *r) && self.chain_hash != Some(false)
    }
}

fn verify_bytes(key: &VerifyingKey, msg: &[u8], sig: &[u8]) -> bool {
    let Ok(bytes) = <[u8; 64]>::try_from(sig) else {
        return false;
    };
    key.verify(msg, &Signature::from_bytes(&bytes)).is_ok()
}

impl Decoded {
    /// Whether the header is acceptable to the broker and the signature verifies.
    pub fn signature_ok(&self, key: &VerifyingKey) -> bool {
        self.header.alg == "EdDSA"
            && self.header.kid.as_deref().is_none_or(|k| k == kid(key))
            && verify_bytes(key, self.signing_input.as_bytes(), &self.signature)
    }

    /// Checks the token signature, each chain record's signature and the chain hash.
    pub fn verify(&self, key: &VerifyingKey) -> Verification {
        let chain = &self.claims.delegation_chain;
        Verification {
            signature: self.signature_ok(key),
            records: chain.iter().map(|r| record_ok(r, key)).collect(),
            chain_hash: (!chain.is_empty()).then(|| chain_hash(chain) == self.claims.chain_hash),
        }
    }
}

/// Whether a chain record's signature verifies with the broker key.
pub fn record_ok(record: &DelegRecord, key: &VerifyingKey) -> bool {
    hex::decode(&record.signature)
        .map(|sig| verify_bytes(key, record.canonical().as_bytes(), &sig))
        .unwrap_or(false)
}

/// RFC 7638 JWK thumbprint of an Ed25519 public key, as the broker's `kid`.
pub fn kid(key: &VerifyingKey) -> String {
    let x = URL_SAFE_NO_PAD.encode(key.to_bytes());
    let input = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(input.as_bytes()))
}

/// Signs claims as the broker does: Go-escaped compact JSON, header with `kid`.
pub fn sign(claims: &Claims, key: &SigningKey, kid: &str) -> String {
    let header = Header {
        alg: "EdDSA".into(),
        typ: "JWT".into(),
        kid: Some(kid.to_string()),
    };
    let mut out = URL_SAFE_NO_PAD.encode(gojson::to_vec(&header));
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(gojson::to_vec(claims)));
    let sig = key.sign(out.as_bytes());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig.to_bytes()));
    out
}

/// Signs a delegation record's canonical string; returns lowercase hex.
pub fn sign_record(record: &DelegRecord, key: &SigningKey) -> String {
    hex::encode(key.sign(record.canonical().as_bytes()).to_bytes())
}

/// `chain_hash`: lowercase hex SHA-256 of the Go-style JSON of the chain.
pub fn chain_hash(chain: &[DelegRecord]) -> String {
    hex::encode(Sha256::digest(gojson::to_vec(chain)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    const VECTOR_JWT: &str = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6IlVERFJlT1psMWlwWEFmcDl3WXNtMTNzREJNSzVvZy0tUVdkQmp6dWY2bzQifQ.eyJpc3MiOiIiLCJzdWIiOiJzcGlmZmU6Ly9hZ2VudHdyaXQubG9jYWwvYWdlbnQvb3JjaC0xL3Rhc2stMS8wMDExMjIzMzQ0NTU2Njc3IiwiZXhwIjoxNzAwMDAwMzAwLCJuYmYiOjE3MDAwMDAwMDAsImlhdCI6MTcwMDAwMDAwMCwianRpIjoiMDAxMTIyMzM0NDU1NjY3Nzg4OTlhYWJiY2NkZGVlZmYiLCJzY29wZSI6WyJyZWFkOmRhdGE6KiJdLCJ0YXNrX2lkIjoidGFzay0xIiwib3JjaF9pZCI6Im9yY2gtMSJ9.KCe8Z-KVpD7THze4tUO6dLqbWIwbxkUj_G5gH6U6NRcrvNSMdcpZObGzPBEWup02dFlDXy28Dv0rqF15fcI6Cg";
    const RECORD_SIG: &str = "4a6f515d765eaaf4d03274ca3745593678bd65f797d7ceb11b0c2c76daafd09fc63f4a193c16e0b853a74b9a49b88abec092acb15f0165e10c789ecd4cc7e50e";

    fn broker_key() -> SigningKey {
        SigningKey::from_bytes(&[1u8; 32])
    }

    fn vector_claims() -> Claims {
        Claims {
            sub: "spiffe://agentwrit.local/agent/orch-1/task-1/0011223344556677".into(),
            exp: 1700000300,
            nbf: 1700000000,
            iat: 1700000000,
            jti: "00112233445566778899aabbccddeeff".into(),
            scope: vec!["read:data:*".into()],
            task_id: "task-1".into(),
            orch_id: "orch-1".into(),
            ..Claims::default()
        }
    }

    fn vector_record() -> DelegRecord {
        DelegRecord {
            agent: "spiffe://agentwrit.local/agent/orch-1/task-1/0011223344556677".into(),
            scope: vec!["read:data:*".into(), "write:data:x".into()],
            delegated_at: "2026-04-14T20:26:27.2578Z".into(),
            signature: String::new(),
        }
    }

    #[test]
    fn vector_public_key_and_kid() {
        let vk = broker_key().verifying_key();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(vk.to_bytes()),
            "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w"
        );
        assert_eq!(kid(&vk), "UDDReOZl1ipXAfp9wYsm13sDBMK5og--QWdBjzuf6o4");
    }

    #[test]
    fn vector_header_and_claims_json() {
        let k = kid(&broker_key().verifying_key());
        let header = Header {
            alg: "EdDSA".into(),
            typ: "JWT".into(),
            kid: Some(k),
        };
        assert_eq!(
            String::from_utf8(gojson::to_vec(&header)).unwrap(),
            r#"{"alg":"EdDSA","typ":"JWT","kid":"UDDReOZl1ipXAfp9wYsm13sDBMK5og--QWdBjzuf6o4"}"#
        );
        assert_eq!(
            String::from_utf8(gojson::to_vec(&vector_claims())).unwrap(),
            r#"{"iss":"","sub":"spiffe://agentwrit.local/agent/orch-1/task-1/0011223344556677","exp":1700000300,"nbf":1700000000,"iat":1700000000,"jti":"00112233445566778899aabbccddeeff","scope":["read:data:*"],"task_id":"task-1","orch_id":"orch-1"}"#
        );
    }

    #[test]
    fn vector_jwt_byte_for_byte() {
        let key = broker_key();
        let token = sign(&vector_claims(), &key, &kid(&key.verifying_key()));
        assert_eq!(token, VECTOR_JWT);
        let d = decode(VECTOR_JWT).unwrap();
        assert_eq!(d.claims, vector_claims());
        assert!(d.verify(&key.verifying_key()).all_ok());
        assert_eq!(d.verify(&key.verifying_key()).chain_hash, None);
    }

    #[test]
    fn vector_record_signature_and_chain_hash() {
        let key = broker_key();
        let mut rec = vector_record();
        assert_eq!(
            rec.canonical(),
            "spiffe://agentwrit.local/agent/orch-1/task-1/0011223344556677|read:data:*,write:data:x|2026-04-14T20:26:27.2578Z"
        );
        rec.signature = sign_record(&rec, &key);
        assert_eq!(rec.signature, RECORD_SIG);
        assert!(record_ok(&rec, &key.verifying_key()));
        let chain = vec![rec];
        assert_eq!(
            String::from_utf8(gojson::to_vec(&chain)).unwrap(),
            format!(
                r#"[{{"agent":"spiffe://agentwrit.local/agent/orch-1/task-1/0011223344556677","scope":["read:data:*","write:data:x"],"delegated_at":"2026-04-14T20:26:27.2578Z","signature":"{RECORD_SIG}"}}]"#
            )
        );
        assert_eq!(
            chain_hash(&chain),
            "d91c79b0673459a0448610aa643fe9583c1e0d6b91216225f7f74940144aa3b6"
        );
    }

    #[test]
    fn vector_registration_signature() {
        let agent = SigningKey::from_bytes(&[2u8; 32]);
        let nonce = hex::decode("ab".repeat(32)).unwrap();
        assert_eq!(
            STANDARD.encode(agent.verifying_key().to_bytes()),
            "gTl3Dqh9F19Wo1Rmw0x+zMuNipG07jeiXfYPW4/Js5Q="
        );
        assert_eq!(
            STANDARD.encode(agent.sign(&nonce).to_bytes()),
            "vGYr34fmoYlbzg0Kgt/U1BZJZ8f4hxzfFSSvMZMOWGQ/hu1R26zmxzMxcJbSRWaU6qAAAW+HuFPLR8NLs9AkAQ=="
        );
    }

    #[test]
    fn delegated_token_verifies_records_and_hash() {
        let key = broker_key();
        let mut rec = vector_record();
        rec.signature = sign_record(&rec, &key);
        let mut claims = vector_claims();
        claims.delegation_chain = vec![rec];
        claims.chain_hash = chain_hash(&claims.delegation_chain);
        let token = sign(&claims, &key, &kid(&key.verifying_key()));
        let v = decode(&token).unwrap().verify(&key.verifying_key());
        assert_eq!(
            v,
            Verification {
                signature: true,
                records: vec![true],
                chain_hash: Some(true)
            }
        );
        // Another key: nothing verifies.
        let other = SigningKey::from_bytes(&[9u8; 32]).verifying_key();
        let v = decode(&token).unwrap().verify(&other);
        assert!(!v.signature && v.records == vec![false]);
        // Tampered hash.
        claims.chain_hash = "00".repeat(32);
        let token = sign(&claims, &key, &kid(&key.verifying_key()));
        let v = decode(&token).unwrap().verify(&key.verifying_key());
        assert_eq!(v.chain_hash, Some(false));
        assert!(!v.all_ok());
    }

    #[test]
    fn decode_errors_name_the_problem() {
        assert_eq!(decode("").unwrap_err(), JwtError::Empty);
        assert_eq!(
            decode("completely-fake").unwrap_err(),
            JwtError::PartCount { found: 1 }
        );
        assert_eq!(
            decode("a.b.c.d").unwrap_err().to_string(),
            "not a JWT: expected 3 dot-separated parts, found 4"
        );
        assert_eq!(
            decode("!!.e30.AA").unwrap_err().to_string(),
            "bad base64url in part 1 (header)"
        );
        let not_json = URL_SAFE_NO_PAD.encode("hello");
        assert!(matches!(
            decode(&format!("{not_json}.e30.AA")).unwrap_err(),
            JwtError::NotJson { part: 1, .. }
        ));
        let hdr = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA"}"#);
        assert_eq!(
            decode(&format!("{hdr}.e30.AA")).unwrap_err(),
            JwtError::MissingClaim("sub")
        );
        let bad = URL_SAFE_NO_PAD.encode(r#"{"sub":"x","exp":"soon","jti":"j"}"#);
        assert!(matches!(
            decode(&format!("{hdr}.{bad}.AA")).unwrap_err(),
            JwtError::BadClaim { ref claim, .. } if claim == "exp"
        ));
        // Truncated signature part of a real token.
        let truncated = &VECTOR_JWT[..VECTOR_JWT.len() - 1];
        let d = decode(truncated);
        assert!(d.is_err() || !d.unwrap().signature_ok(&broker_key().verifying_key()));
        // A token cut inside the payload.
        let cut = &VECTOR_JWT[..120];
        assert!(decode(cut).is_err());
    }

    #[test]
    fn redaction_keeps_twelve_chars() {
        assert_eq!(redact(VECTOR_JWT), "eyJhbGciOiJF…");
        assert_eq!(redact("short"), "short…");
        assert_eq!(redact("ééééééééééééééé"), "éééééééééééé…");
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(s in ".{0,200}") {
            let _ = decode(&s);
        }

        #[test]
        fn decode_never_panics_on_dotted_base64(a in "[A-Za-z0-9_-]{0,40}", b in "[A-Za-z0-9_-]{0,80}", c in "[A-Za-z0-9_-]{0,90}") {
            let _ = decode(&format!("{a}.{b}.{c}"));
        }
    }
}
