//! The conformance checklist of the broker spec (§16), one named test per item,
//! run over real loopback HTTP through chainview's client. Against the
//! embedded broker by default; against any broker when
//! `AGENTWRIT_CONFORMANCE_URL` and `AGENTWRIT_ADMIN_SECRET` are set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chainview::broker::embedded::Config;
use chainview::broker::types::*;
use chainview::jwt;
use common::*;
use ed25519_dalek::{Signer, SigningKey};
use reqwest::Method;
use serde_json::json;

// ── Global ─────────────────────────────────────────────────────────────

async fn check_01(env: &Env) {
    let r = env
        .raw(Method::GET, "/v1/health", &[("x-request-id", "abc")], None)
        .await;
    assert_eq!(r.header("x-request-id"), Some("abc"));
    let r = env
        .raw(Method::POST, "/v1/token/validate", &[], Some(json!({})))
        .await;
    let rid = r.header("x-request-id").unwrap().to_string();
    assert!(is_hex(&rid, 16), "{rid}");
    assert_eq!(r.json().unwrap()["request_id"], rid);
}

async fn check_02(env: &Env) {
    let r = env.raw(Method::GET, "/v1/health", &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // HSTS exactly when the broker serves TLS (spec §1.1 item 4).
    let hsts = env.tls.then_some("max-age=63072000; includeSubDomains");
    assert_eq!(r.header("strict-transport-security"), hsts);
}

async fn check_03(env: &Env) {
    let r = env
        .raw_bytes(Method::POST, "/v1/token/validate", vec![b' '; 1_048_577])
        .await;
    assert_problem(
        &r,
        413,
        "payload_too_large",
        "request body must not exceed 1 MB",
        "/v1/token/validate",
    );
    assert_eq!(r.header("x-frame-options"), None);
    assert!(r.header("x-request-id").is_some());
    // Exactly 1 MiB is accepted.
    let mut body = br#"{"token":"x"}"#.to_vec();
    body.resize(1_048_576, b' ');
    let r = env
        .raw_bytes(Method::POST, "/v1/token/validate", body)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn check_04(env: &Env) {
    let r = env.raw(Method::GET, "/v1/nope", &[], None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, b"404 page not found\n");
    assert!(r.json().is_none());
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    let r = env.raw(Method::GET, "/v1/register", &[], None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.body, b"Method Not Allowed\n");
    assert_eq!(r.header("allow"), Some("POST"));
    let r = env.raw(Method::POST, "/v1/health", &[], None).await;
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = env.raw(Method::POST, "/v1/admin/apps/x", &[], None).await;
    assert_eq!(r.header("allow"), Some("DELETE, GET, HEAD, PUT"));
    let r = env.raw(Method::HEAD, "/v1/health", &[], None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
}

async fn check_05(env: &Env) {
    let ag = env.agent(&["read:data:*"]).await;
    let answers = [
        env.raw(Method::POST, "/v1/register", &[], Some(json!({})))
            .await,
        env.raw(Method::POST, "/v1/token/renew", &[], None).await,
        env.bearer(
            Method::POST,
            "/v1/revoke",
            &ag.access_token,
            Some(json!({})),
        )
        .await,
        env.bearer(
            Method::POST,
            "/v1/delegate",
            &ag.access_token,
            Some(json!({"delegate_to":"x","scope":["read:data:x"]})),
        )
        .await,
    ];
    for r in answers {
        let p = r.json().unwrap();
        assert!(p.get("hint").is_none());
        let t = p["type"].as_str().unwrap();
        assert_eq!(
            t.strip_prefix("urn:agentwrit:error:"),
            p["error_code"].as_str()
        );
        let keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 7, "{keys:?}");
    }
}

/// The transport items (1–5), each over plain HTTP (or the external broker)
/// and over TLS and mtls to the embedded broker.
macro_rules! transport_item {
    ($check:ident, $plain:ident, $tls:ident, $mtls:ident) => {
        #[tokio::test]
        async fn $plain() {
            $check(&Env::new().await).await;
        }
        #[tokio::test]
        async fn $tls() {
            $check(&Env::tls(false).await).await;
        }
        #[tokio::test]
        async fn $mtls() {
            $check(&Env::tls(true).await).await;
        }
    };
}

transport_item!(
    check_01,
    item_01_request_id_echoed_or_generated,
    item_01_over_tls,
    item_01_over_mtls
);
transport_item!(
    check_02,
    item_02_security_headers_hsts_only_over_tls,
    item_02_over_tls,
    item_02_over_mtls
);
transport_item!(
    check_03,
    item_03_body_over_one_mib_is_413_without_security_headers,
    item_03_over_tls,
    item_03_over_mtls
);
transport_item!(
    check_04,
    item_04_router_404_and_405,
    item_04_over_tls,
    item_04_over_mtls
);
transport_item!(
    check_05,
    item_05_problems_have_no_hint_and_code_matches_type,
    item_05_over_tls,
    item_05_over_mtls
);

// ── Challenge / register ───────────────────────────────────────────────

#[tokio::test]
async fn item_06_challenge_nonces() {
    let env = Env::new().await;
    let a = env.client.challenge().await.unwrap();
    let b = env.client.challenge().await.unwrap();
    assert!(is_hex(&a.nonce, 64));
    assert_eq!(a.expires_in, 30);
    assert_ne!(a.nonce, b.nonce);
}

#[tokio::test]
async fn item_07_registration_shape_and_spiffe_id() {
    let env = Env::new().await;
    let lt = env.default_launch().await;
    let key = SigningKey::from_bytes(&rand::random());
    let ch = env.client.challenge().await.unwrap();
    let nonce = hex::decode(&ch.nonce).unwrap();
    let task = uniq();
    let r = env
        .raw(
            Method::POST,
            "/v1/register",
            &[],
            Some(json!({
            "launch_token": lt, "nonce": ch.nonce,
            "public_key": STANDARD.encode(key.verifying_key().to_bytes()),
            "signature": STANDARD.encode(key.sign(&nonce).to_bytes()),
            "orch_id": "orch-1", "task_id": task, "requested_scope": ["read:data:*"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json().unwrap();
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["access_token", "agent_id", "expires_in"]);
    let id = body["agent_id"].as_str().unwrap();
    let prefix = format!("spiffe://agentwrit.local/agent/orch-1/{task}/");
    assert!(id.starts_with(&prefix), "{id}");
    assert!(is_hex(&id[prefix.len()..], 16), "{id}");
}

async fn ttl_case(env: &Env, max_ttl: Option<i64>, expect: i64) {
    let mut body = json!({"agent_name":"ttl","allowed_scope":["read:data:*"]});
    if let Some(m) = max_ttl {
        body["max_ttl"] = json!(m);
    }
    let lt = env.launch(body).await;
    let r = env
        .register(&lt, "orch-1", &uniq(), &["read:data:*"])
        .await
        .unwrap();
    assert_eq!(r.expires_in, expect);
    let p = payload(&r.access_token);
    assert_eq!(
        p["exp"].as_i64().unwrap() - p["iat"].as_i64().unwrap(),
        expect
    );
}

#[tokio::test]
async fn item_08_max_ttl_600() {
    ttl_case(&Env::new().await, Some(600), 600).await;
}

#[tokio::test]
async fn item_09_max_ttl_clamped_to_86400() {
    ttl_case(&Env::new().await, Some(100000), 86400).await;
}

#[tokio::test]
async fn item_10_default_max_ttl_300() {
    ttl_case(&Env::new().await, None, 300).await;
}

fn register_body(
    lt: &str,
    nonce: &str,
    key: &SigningKey,
    orch: &str,
    scope: serde_json::Value,
) -> serde_json::Value {
    let n = hex::decode(nonce).unwrap();
    json!({"launch_token": lt, "nonce": nonce,
           "public_key": STANDARD.encode(key.verifying_key().to_bytes()),
           "signature": STANDARD.encode(key.sign(&n).to_bytes()),
           "orch_id": orch, "task_id": uniq(), "requested_scope": scope})
}

#[tokio::test]
async fn item_11_empty_orch_id() {
    let env = Env::new().await;
    let lt = env.default_launch().await;
    let ch = env.client.challenge().await.unwrap();
    let key = SigningKey::from_bytes(&rand::random());
    let r = env
        .raw(
            Method::POST,
            "/v1/register",
            &[],
            Some(register_body(
                &lt,
                &ch.nonce,
                &key,
                "",
                json!(["read:data:*"]),
            )),
        )
        .await;
    assert_problem(
        &r,
        400,
        "invalid_request",
        "missing required field",
        "/v1/register",
    );
}

#[tokio::test]
async fn item_12_empty_requested_scope() {
    let env = Env::new().await;
    let lt = env.default_launch().await;
    let ch = env.client.challenge().await.unwrap();
    let key = SigningKey::from_bytes(&rand::random());
    let r = env
        .raw(
            Method::POST,
            "/v1/register",
            &[],
            Some(register_body(&lt, &ch.nonce, &key, "o", json!([]))),
        )
        .await;
    assert_problem(
        &r,
        400,
        "invalid_request",
        "missing required field: requested_scope",
        "/v1/register",
    );
}

#[tokio::test]
async fn item_13_unknown_launch_token() {
    let env = Env::new().await;
    let res = env
        .register(&"ab".repeat(32), "o", &uniq(), &["read:data:*"])
        .await;
    assert_refused(
        res,
        401,
        "unauthorized",
        "launch token: launch token not found",
    );
}

#[tokio::test]
async fn item_14_single_use_launch_token_reuse() {
    let env = Env::new().await;
    let lt = env.default_launch().await;
    env.register(&lt, "o", &uniq(), &["read:data:*"])
        .await
        .unwrap();
    let res = env.register(&lt, "o", &uniq(), &["read:data:*"]).await;
    assert_refused(
        res,
        401,
        "unauthorized",
        "launch token: launch token already consumed",
    );
}

#[tokio::test]
async fn item_15_expired_launch_token() {
    let env = Env::new().await;
    let lt = env
        .launch(json!({"agent_name":"x","allowed_scope":["read:data:*"],"ttl":1}))
        .await;
    env.pass(Duration::from_millis(2100)).await;
    let res = env.register(&lt, "o", &uniq(), &["read:data:*"]).await;
    assert_refused(
        res,
        401,
        "unauthorized",
        "launch token: launch token expired",
    );
}

#[tokio::test]
async fn item_16_scope_violation_consumes_nothing() {
    let env = Env::new().await;
    let lt = env
        .launch(json!({"agent_name":"x","allowed_scope":["read:data:*"]}))
        .await;
    let res = env.register(&lt, "o", &uniq(), &["admin:revoke:*"]).await;
    assert_refused(
        res,
        403,
        "scope_violation",
        "requested scope exceeds allowed scope",
    );
    env.register(&lt, "o", &uniq(), &["read:data:*"])
        .await
        .expect("launch token still usable");
}

#[tokio::test]
async fn item_17_nonce_reuse() {
    let env = Env::new().await;
    let ch = env.client.challenge().await.unwrap();
    let key = SigningKey::from_bytes(&rand::random());
    let lt = env
        .launch(json!({"agent_name":"x","allowed_scope":["read:data:*"],"single_use":false}))
        .await;
    let body = register_body(&lt, &ch.nonce, &key, "o", json!(["read:data:*"]));
    let r = env
        .raw(Method::POST, "/v1/register", &[], Some(body.clone()))
        .await;
    assert_eq!(r.status, 200);
    let r = env.raw(Method::POST, "/v1/register", &[], Some(body)).await;
    assert_problem(
        &r,
        401,
        "unauthorized",
        "nonce: nonce already consumed",
        "/v1/register",
    );
}

#[tokio::test]
async fn item_18_nonce_expires_after_30_seconds() {
    let env = Env::new().await;
    let ch = env.client.challenge().await.unwrap();
    env.pass(Duration::from_millis(31_200)).await;
    let lt = env.default_launch().await;
    let key = SigningKey::from_bytes(&rand::random());
    let r = env
        .raw(
            Method::POST,
            "/v1/register",
            &[],
            Some(register_body(
                &lt,
                &ch.nonce,
                &key,
                "o",
                json!(["read:data:*"]),
            )),
        )
        .await;
    assert_problem(
        &r,
        401,
        "unauthorized",
        "nonce: nonce not found or expired",
        "/v1/register",
    );
}

#[tokio::test]
async fn item_19_signing_the_ascii_nonce_fails_and_burns_it() {
    let env = Env::new().await;
    let lt = env.default_launch().await;
    let ch = env.client.challenge().await.unwrap();
    let key = SigningKey::from_bytes(&rand::random());
    let mut body = register_body(&lt, &ch.nonce, &key, "o", json!(["read:data:*"]));
    body["signature"] = json!(STANDARD.encode(key.sign(ch.nonce.as_bytes()).to_bytes()));
    let r = env.raw(Method::POST, "/v1/register", &[], Some(body)).await;
    assert_problem(
        &r,
        401,
        "unauthorized",
        "nonce signature verification failed",
        "/v1/register",
    );
    let r = env
        .raw(
            Method::POST,
            "/v1/register",
            &[],
            Some(register_body(
                &lt,
                &ch.nonce,
                &key,
                "o",
                json!(["read:data:*"]),
            )),
        )
        .await;
    assert_problem(
        &r,
        401,
        "unauthorized",
        "nonce: nonce already consumed",
        "/v1/register",
    );
    env.register(&lt, "o", &uniq(), &["read:data:*"])
        .await
        .expect("launch token still usable");
}

#[tokio::test]
async fn item_20_short_public_key() {
    let env = Env::new().await;
    let lt = env.default_launch().await;
    let ch = env.client.challenge().await.unwrap();
    let key = SigningKey::from_bytes(&rand::random());
    let mut body = register_body(&lt, &ch.nonce, &key, "o", json!(["read:data:*"]));
    body["public_key"] = json!(STANDARD.encode([7u8; 31]));
    let r = env.raw(Method::POST, "/v1/register", &[], Some(body)).await;
    assert_problem(
        &r,
        401,
        "unauthorized",
        "invalid Ed25519 public key: wrong key size",
        "/v1/register",
    );
}

#[tokio::test]
async fn item_21_reusable_launch_token() {
    let env = Env::new().await;
    let lt = env
        .launch(json!({"agent_name":"x","allowed_scope":["read:data:*"],"single_use":false}))
        .await;
    let a = env
        .register(&lt, "o", &uniq(), &["read:data:*"])
        .await
        .unwrap();
    let b = env
        .register(&lt, "o", &uniq(), &["read:data:*"])
        .await
        .unwrap();
    assert_ne!(a.agent_id, b.agent_id);
}

#[tokio::test]
async fn item_22_bad_orch_id_is_500_after_consuming() {
    let env = Env::new().await;
    let lt = env.default_launch().await;
    let res = env.register(&lt, "bad id", &uniq(), &["read:data:*"]).await;
    assert_refused(res, 500, "internal_error", "registration failed");
    let res = env.register(&lt, "o", &uniq(), &["read:data:*"]).await;
    assert_refused(
        res,
        401,
        "unauthorized",
        "launch token: launch token already consumed",
    );
}

// ── Token format ───────────────────────────────────────────────────────

#[tokio::test]
async fn item_23_header_kid_and_signature() {
    let env = Env::new().await;
    let ag = env.agent(&["read:data:*"]).await;
    let h: serde_json::Value = serde_json::from_str(&header_json(&ag.access_token)).unwrap();
    let kid = h["kid"].as_str().unwrap().to_string();
    assert_eq!(
        header_json(&ag.access_token),
        format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}"}}"#)
    );
    assert_eq!(kid.len(), 43);
    if let Some(pk) = env.public_key {
        assert_eq!(kid, jwt::kid(&pk));
        assert!(jwt::decode(&ag.access_token).unwrap().signature_ok(&pk));
    }
}

#[tokio::test]
async fn item_24_agent_payload() {
    let env = Env::new().await;
    let lt = env.default_launch().await;
    let task = uniq();
    let ag = env
        .register(&lt, "orch-1", &task, &["read:data:*"])
        .await
        .unwrap();
    let p = payload(&ag.access_token);
    assert_eq!(p["iss"], "");
    for absent in ["aud", "sid", "delegation_chain", "chain_hash"] {
        assert!(p.get(absent).is_none(), "{absent}");
    }
    assert_eq!(p["nbf"], p["iat"]);
    assert!(is_hex(p["jti"].as_str().unwrap(), 32));
    assert_eq!(p["scope"], json!(["read:data:*"]));
    assert_eq!(p["task_id"], task.as_str());
    assert_eq!(p["orch_id"], "orch-1");
    let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "iss", "sub", "exp", "nbf", "iat", "jti", "scope", "task_id", "orch_id"
        ]
    );
}

#[tokio::test]
async fn item_25_admin_payload() {
    let env = Env::new().await;
    let p = payload(&env.admin().await);
    assert_eq!(p["sub"], "admin");
    assert_eq!(
        p["scope"],
        json!(["admin:launch-tokens:*", "admin:revoke:*", "admin:audit:*"])
    );
    assert!(p.get("task_id").is_none() && p.get("orch_id").is_none());
}

// ── Validate ───────────────────────────────────────────────────────────

#[tokio::test]
async fn item_26_validate_agent_token() {
    let env = Env::new().await;
    let ag = env.agent(&["read:data:*"]).await;
    let r = env
        .raw(
            Method::POST,
            "/v1/token/validate",
            &[],
            Some(json!({"token": ag.access_token})),
        )
        .await;
    let v = r.json().unwrap();
    assert_eq!(v["valid"], true);
    for k in [
        "iss", "sub", "exp", "nbf", "iat", "jti", "scope", "task_id", "orch_id",
    ] {
        assert!(v["claims"].get(k).is_some(), "{k}");
    }
    assert_eq!(v["claims"]["iss"], "");
    assert_eq!(v["claims"], payload(&ag.access_token));
}

#[tokio::test]
async fn item_27_validate_garbage() {
    let env = Env::new().await;
    let r = env
        .raw(
            Method::POST,
            "/v1/token/validate",
            &[],
            Some(json!({"token":"completely-fake"})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json().unwrap(),
        json!({"valid":false,"error":"token is invalid or expired"})
    );
}

#[tokio::test]
async fn item_28_validate_bad_bodies() {
    let env = Env::new().await;
    let r = env
        .raw(Method::POST, "/v1/token/validate", &[], Some(json!({})))
        .await;
    assert_problem(
        &r,
        400,
        "invalid_request",
        "token field is required",
        "/v1/token/validate",
    );
    let r = env
        .raw_bytes(Method::POST, "/v1/token/validate", b"not json".to_vec())
        .await;
    assert_problem(
        &r,
        400,
        "invalid_request",
        "malformed JSON body",
        "/v1/token/validate",
    );
}

#[tokio::test]
async fn item_29_alg_none_is_invalid() {
    let env = Env::new().await;
    let ag = env.agent(&["read:data:*"]).await;
    let parts: Vec<&str> = ag.access_token.split('.').collect();
    let h = header_json(&ag.access_token).replace("EdDSA", "none");
    let forged = format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(h), parts[1], parts[2]);
    assert!(!env.valid(&forged).await);
    let forged_empty_sig = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header_json(&ag.access_token).replace("EdDSA", "none")),
        parts[1]
    );
    assert!(!env.valid(&forged_empty_sig).await);
}

#[tokio::test]
async fn item_30_expired_token_is_invalid() {
    let env = Env::new().await;
    let lt = env
        .launch(json!({"agent_name":"x","allowed_scope":["read:data:*"],"max_ttl":1}))
        .await;
    let ag = env
        .register(&lt, "o", &uniq(), &["read:data:*"])
        .await
        .unwrap();
    assert!(env.valid(&ag.access_token).await);
    env.pass(Duration::from_millis(2100)).await;
    let v = env.client.validate(&ag.access_token).await.unwrap();
    assert!(!v.valid);
    assert_eq!(v.error.as_deref(), Some("token is invalid or expired"));
}

// ── Renew / release ────────────────────────────────────────────────────

#[tokio::test]
async fn item_31_renew() {
    let env = Env::new().await;
    let lt = env
        .launch(json!({"agent_name":"x","allowed_scope":["read:data:*"],"max_ttl":777}))
        .await;
    let ag = env
        .register(&lt, "o", &uniq(), &["read:data:*"])
        .await
        .unwrap();
    let r = env
        .bearer(Method::POST, "/v1/token/renew", &ag.access_token, None)
        .await;
    assert_eq!(r.status, 200);
    let body = r.json().unwrap();
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["access_token", "expires_in"]);
    assert_eq!(body["expires_in"], 777);
    let new = body["access_token"].as_str().unwrap();
    assert_ne!(payload(new)["jti"], payload(&ag.access_token)["jti"]);
    assert!(!env.valid(&ag.access_token).await);
    assert!(env.valid(new).await);
}

#[tokio::test]
async fn item_32_renew_without_or_with_wrong_authorization() {
    let env = Env::new().await;
    let r = env.raw(Method::POST, "/v1/token/renew", &[], None).await;
    assert_problem(
        &r,
        401,
        "unauthorized",
        "missing authorization header",
        "/v1/token/renew",
    );
    let r = env
        .raw(
            Method::POST,
            "/v1/token/renew",
            &[("authorization", "Token x")],
            None,
        )
        .await;
    assert_problem(
        &r,
        401,
        "unauthorized",
        "invalid authorization scheme",
        "/v1/token/renew",
    );
}

#[tokio::test]
async fn item_33_renew_already_renewed() {
    let env = Env::new().await;
    let ag = env.agent(&["read:data:*"]).await;
    env.client.renew(&ag.access_token).await.unwrap();
    let res = env.client.renew(&ag.access_token).await;
    assert_refused(res, 401, "unauthorized", "token verification failed");
}

#[tokio::test]
async fn item_34_renew_delegated_keeps_chain() {
    let env = Env::new().await;
    let a = env.agent(&["read:data:*"]).await;
    let b = env.agent(&["read:data:*"]).await;
    let d = env
        .delegate(&a.access_token, &b.agent_id, &["read:data:x"], None)
        .await
        .unwrap();
    let r = env.client.renew(&d.access_token).await.unwrap();
    let (old, new) = (payload(&d.access_token), payload(&r.access_token));
    assert_eq!(old["delegation_chain"], new["delegation_chain"]);
    assert_eq!(old["chain_hash"], new["chain_hash"]);
    assert_eq!(old["sub"], new["sub"]);
    assert_eq!(r.expires_in, 60);
}

#[tokio::test]
async fn item_35_release() {
    let env = Env::new().await;
    let ag = env.agent(&["read:data:*"]).await;
    let r = env
        .bearer(Method::POST, "/v1/token/release", &ag.access_token, None)
        .await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-type"), None);
    assert!(!env.valid(&ag.access_token).await);
    let r = env
        .bearer(Method::POST, "/v1/token/release", &ag.access_token, None)
        .await;
    assert_problem(
        &r,
        401,
        "unauthorized",
        "token verification failed",
        "/v1/token/release",
    );
}

// ── Delegate ───────────────────────────────────────────────────────────

#[tokio::test]
async fn item_36_delegation_record() {
    let env = Env::new().await;
    let a = env.agent(&["read:data:*", "write:data:*"]).await;
    let b = env.agent(&["read:data:*"]).await;
    let r = env
        .bearer(
            Method::POST,
            "/v1/delegate",
            &a.access_token,
            Some(json!({"delegate_to": b.agent_id, "scope": ["read:data:x"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json().unwrap();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access_token", "expires_in", "delegation_chain"]);
    assert_eq!(body["expires_in"], 60);
    let chain = body["delegation_chain"].as_array().unwrap();
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0]["agent"], a.agent_id.as_str());
    assert_eq!(chain[0]["scope"], json!(["read:data:*", "write:data:*"]));
    let at = chain[0]["delegated_at"].as_str().unwrap();
    assert!(
        at.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(at).is_ok(),
        "{at}"
    );
    assert!(is_hex(chain[0]["signature"].as_str().unwrap(), 128));
}

#[tokio::test]
async fn item_37_delegated_token_claims_hash_and_record_signature() {
    let env = Env::new().await;
    let a = env.agent(&["read:data:*", "write:data:*"]).await;
    let b = env.agent(&["read:data:*"]).await;
    let d = env
        .delegate(&a.access_token, &b.agent_id, &["read:data:x"], None)
        .await
        .unwrap();
    let p = payload(&d.access_token);
    let pa = payload(&a.access_token);
    assert_eq!(p["sub"], b.agent_id.as_str());
    assert_eq!(p["scope"], json!(["read:data:x"]));
    assert_eq!(p["task_id"], pa["task_id"]);
    assert_eq!(p["orch_id"], pa["orch_id"]);
    let decoded = jwt::decode(&d.access_token).unwrap();
    assert_eq!(
        decoded.claims.chain_hash,
        jwt::chain_hash(&decoded.claims.delegation_chain)
    );
    assert_eq!(decoded.claims.delegation_chain, d.delegation_chain);
    if let Some(pk) = env.public_key {
        assert!(decoded.verify(&pk).all_ok());
    }
}

#[tokio::test]
async fn item_38_equal_scope_delegation() {
    let env = Env::new().await;
    let a = env.agent(&["read:data:*", "write:data:*"]).await;
    let b = env.agent(&["read:data:*"]).await;
    env.delegate(
        &a.access_token,
        &b.agent_id,
        &["read:data:*", "write:data:*"],
        None,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn item_39_widening_refused() {
    let env = Env::new().await;
    let a = env.agent(&["read:data:*"]).await;
    let b = env.agent(&["read:data:*"]).await;
    let res = env
        .delegate(&a.access_token, &b.agent_id, &["admin:revoke:*"], None)
        .await;
    assert_refused(
        res,
        403,
        "scope_violation",
        "delegated scope exceeds delegator scope",
    );
}

#[tokio::test]
async fn item_40_unregistered_target() {
    let env = Env::new().await;
    let a = env.agent(&["read:data:*"]).await;
    let res = env
        .delegate(
            &a.access_token,
            "spiffe://agentwrit.local/agent/x/y/0000000000000000",
            &["read:data:x"],
            None,
        )
        .await;
    assert_refused(res, 404, "not_found", "delegate agent not found");
}

#[tokio::test]
async fn item_41_scope_checked_before_existence() {
    let env = Env::new().await;
    let a = env.agent(&["read:data:*"]).await;
    let res = env
        .delegate(
            &a.access_token,
            "spiffe://agentwrit.local/agent/x/y/0000000000000000",
            &["write:data:x"],
            None,
        )
        .await;
    assert_refused(
        res,
        403,
        "scope_violation",
        "delegated scope exceeds delegator scope",
    );
}

/// The real broker answers 500 (spec §15 #2); the embedded broker answers the
/// documented 400 unless `strict_500s` is set. Both are checked here.
#[tokio::test]
async fn item_42_missing_delegate_to_is_500() {
    let strict = Env::with_config(Config {
        strict_500s: true,
        ..Config::with_admin_secret("s")
    })
    .await;
    let body = json!({"scope":["read:data:*"]});
    let a = strict.agent(&["read:data:*"]).await;
    let r = strict
        .bearer(
            Method::POST,
            "/v1/delegate",
            &a.access_token,
            Some(body.clone()),
        )
        .await;
    assert_problem(
        &r,
        500,
        "internal_error",
        "delegation failed",
        "/v1/delegate",
    );
    let env = Env::new().await;
    let a = env.agent(&["read:data:*"]).await;
    let r = env
        .bearer(Method::POST, "/v1/delegate", &a.access_token, Some(body))
        .await;
    if env.external {
        assert_problem(
            &r,
            500,
            "internal_error",
            "delegation failed",
            "/v1/delegate",
        );
    } else {
        assert_problem(
            &r,
            400,
            "invalid_request",
            "missing required field: delegate_to",
            "/v1/delegate",
        );
        let r = env
            .bearer(
                Method::POST,
                "/v1/delegate",
                &a.access_token,
                Some(json!({"delegate_to":"x"})),
            )
            .await;
        assert_problem(
            &r,
            400,
            "invalid_request",
            "missing required field: scope",
            "/v1/delegate",
        );
    }
}

#[tokio::test]
async fn item_43_multi_hop_with_delegated_token() {
    let env = Env::new().await;
    let a = env.agent(&["read:data:*"]).await;
    let b = env.agent(&["read:data:*"]).await;
    let c = env.agent(&["read:data:*"]).await;
    let hop1 = env
        .delegate(&a.access_token, &b.agent_id, &["read:data:x"], None)
        .await
        .unwrap();
    let hop2 = env
        .delegate(&hop1.access_token, &c.agent_id, &["read:data:x"], None)
        .await
        .unwrap();
    assert_eq!(hop2.delegation_chain.len(), 2);
    let first_1 =
        serde_json::to_string(&payload(&hop1.access_token)["delegation_chain"][0]).unwrap();
    let first_2 =
        serde_json::to_string(&payload(&hop2.access_token)["delegation_chain"][0]).unwrap();
    assert_eq!(first_1, first_2);
    assert_eq!(hop2.delegation_chain[1].agent, b.agent_id);
    assert_eq!(hop2.delegation_chain[1].scope, vec!["read:data:x"]);
}

#[tokio::test]
async fn item_44_depth_limit() {
    let env = Env::new().await;
    let mut agents = Vec::new();
    for _ in 0..7 {
        agents.push(env.agent(&["read:data:*"]).await);
    }
    let mut token = agents[0].access_token.clone();
    for (hop, next) in agents.iter().enumerate().take(6).skip(1) {
        let d = env
            .delegate(&token, &next.agent_id, &["read:data:*"], None)
            .await
            .unwrap();
        assert_eq!(d.delegation_chain.len(), hop);
        token = d.access_token;
    }
    let res = env
        .delegate(&token, &agents[6].agent_id, &["read:data:*"], None)
        .await;
    assert_refused(
        res,
        403,
        "scope_violation",
        "delegation depth limit exceeded",
    );
    let res = env
        .delegate(
            &token,
            "spiffe://agentwrit.local/agent/x/y/0000000000000000",
            &["write:data:*"],
            None,
        )
        .await;
    assert_refused(
        res,
        403,
        "scope_violation",
        "delegation depth limit exceeded",
    );
}

#[tokio::test]
async fn item_45_delegation_ttl() {
    let env = Env::new().await;
    let a = env.agent(&["read:data:*"]).await;
    let b = env.agent(&["read:data:*"]).await;
    let d = env
        .delegate(&a.access_token, &b.agent_id, &["read:data:x"], Some(5000))
        .await
        .unwrap();
    assert_eq!(d.expires_in, 5000);
    let d = env
        .delegate(&a.access_token, &b.agent_id, &["read:data:x"], Some(0))
        .await
        .unwrap();
    assert_eq!(d.expires_in, 60);
}

// ── Revoke ─────────────────────────────────────────────────────────────

#[tokio::test]
async fn item_46_revoke_needs_admin_scope() {
    let env = Env::new().await;
    let ag = env.agent(&["read:data:*"]).await;
    let res = env
        .client
        .revoke(&ag.access_token, RevokeLevel::Token, "x")
        .await;
    assert_refused(
        res,
        403,
        "insufficient_scope",
        "token lacks required scope: admin:revoke:*",
    );
}

#[tokio::test]
async fn item_47_revoke_token_level() {
    let env = Env::new().await;
    let ag = env.agent(&["read:data:*"]).await;
    let jti = payload(&ag.access_token)["jti"]
        .as_str()
        .unwrap()
        .to_string();
    let adm = env.admin().await;
    let r = env
        .bearer(
            Method::POST,
            "/v1/revoke",
            &adm,
            Some(json!({"level":"token","target":jti})),
        )
        .await;
    assert_eq!(
        r.json().unwrap(),
        json!({"revoked":true,"level":"token","target":jti,"count":1})
    );
    assert!(!env.valid(&ag.access_token).await);
    let res = env.client.renew(&ag.access_token).await;
    assert_refused(res, 401, "unauthorized", "token verification failed");
}

#[tokio::test]
async fn item_48_revoke_bad_requests() {
    let env = Env::new().await;
    let adm = env.admin().await;
    let r = env
        .bearer(
            Method::POST,
            "/v1/revoke",
            &adm,
            Some(json!({"level":"foo","target":"x"})),
        )
        .await;
    assert_problem(
        &r,
        400,
        "invalid_request",
        "invalid revocation level: foo",
        "/v1/revoke",
    );
    let r = env
        .bearer(
            Method::POST,
            "/v1/revoke",
            &adm,
            Some(json!({"level":"token"})),
        )
        .await;
    assert_problem(
        &r,
        400,
        "invalid_request",
        "level and target are required",
        "/v1/revoke",
    );
}

#[tokio::test]
async fn item_49_agent_level_revocation() {
    let env = Env::new().await;
    let a = env.agent(&["read:data:*"]).await;
    let b = env.agent(&["read:data:*"]).await;
    let c = env.agent(&["read:data:*"]).await;
    let a_to_b = env
        .delegate(&a.access_token, &b.agent_id, &["read:data:x"], None)
        .await
        .unwrap();
    let adm = env.admin().await;
    env.client
        .revoke(&adm, RevokeLevel::Agent, &a.agent_id)
        .await
        .unwrap();
    assert!(!env.valid(&a.access_token).await);
    let c_to_a = env
        .delegate(&c.access_token, &a.agent_id, &["read:data:x"], None)
        .await
        .expect("issued with 200");
    assert!(
        !env.valid(&c_to_a.access_token).await,
        "future tokens of A are dead too"
    );
    assert!(
        env.valid(&a_to_b.access_token).await,
        "what A delegated to B lives on"
    );
}

#[tokio::test]
async fn item_50_task_level_revocation_applies_to_future_tokens() {
    let env = Env::new().await;
    let task = uniq();
    let adm = env.admin().await;
    env.client
        .revoke(&adm, RevokeLevel::Task, &task)
        .await
        .unwrap();
    let lt = env.default_launch().await;
    let ag = env
        .register(&lt, "o", &task, &["read:data:*"])
        .await
        .expect("200");
    assert!(!env.valid(&ag.access_token).await);
}

#[tokio::test]
async fn item_51_chain_level_spares_the_root() {
    let env = Env::new().await;
    let a = env.agent(&["read:data:*"]).await;
    let b = env.agent(&["read:data:*"]).await;
    let c = env.agent(&["read:data:*"]).await;
    let hop1 = env
        .delegate(&a.access_token, &b.agent_id, &["read:data:*"], None)
        .await
        .unwrap();
    let hop2 = env
        .delegate(&hop1.access_token, &c.agent_id, &["read:data:x"], None)
        .await
        .unwrap();
    let other = env
        .delegate(&b.access_token, &c.agent_id, &["read:data:x"], None)
        .await
        .unwrap();
    let adm = env.admin().await;
    env.client
        .revoke(&adm, RevokeLevel::Chain, &a.agent_id)
        .await
        .unwrap();
    assert!(!env.valid(&hop1.access_token).await);
    assert!(!env.valid(&hop2.access_token).await);
    assert!(
        env.valid(&a.access_token).await,
        "root's own token survives"
    );
    assert!(
        env.valid(&other.access_token).await,
        "chains rooted elsewhere survive"
    );
}

#[tokio::test]
async fn item_52_revoke_is_idempotent() {
    let env = Env::new().await;
    let adm = env.admin().await;
    let t = uniq();
    env.client
        .revoke(&adm, RevokeLevel::Task, &t)
        .await
        .unwrap();
    let r = env
        .client
        .revoke(&adm, RevokeLevel::Task, &t)
        .await
        .unwrap();
    assert!(r.revoked && r.count == 1);
}

// ── Admin auth and launch tokens ───────────────────────────────────────

#[tokio::test]
async fn item_53_admin_auth() {
    let env = Env::new().await;
    let r = env.client.admin_auth(&env.admin_secret).await.unwrap();
    assert_eq!((r.expires_in, r.token_type.as_str()), (300, "Bearer"));
    assert_eq!(r.access_token.split('.').count(), 3);
}

#[tokio::test]
async fn item_54_admin_auth_failures() {
    let env = Env::new().await;
    let xff = [("x-forwarded-for", "192.0.2.54")];
    let r = env
        .raw(
            Method::POST,
            "/v1/admin/auth",
            &xff,
            Some(json!({"secret":"wrong"})),
        )
        .await;
    assert_problem(
        &r,
        401,
        "unauthorized",
        "invalid credentials",
        "/v1/admin/auth",
    );
    let r = env
        .raw(Method::POST, "/v1/admin/auth", &xff, Some(json!({})))
        .await;
    assert_problem(
        &r,
        400,
        "invalid_request",
        "secret is required",
        "/v1/admin/auth",
    );
}

#[tokio::test]
async fn item_55_old_admin_auth_format() {
    let env = Env::new().await;
    let r = env
        .raw(
            Method::POST,
            "/v1/admin/auth",
            &[("x-forwarded-for", "192.0.2.55")],
            Some(json!({"client_id":"a","client_secret":"b"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json().unwrap()["detail"]
            .as_str()
            .unwrap()
            .starts_with("Admin auth format changed.")
    );
}

#[tokio::test]
async fn item_56_admin_auth_rate_limit() {
    let env = Env::new().await;
    let ip = format!("203.0.113.{}", rand::random::<u8>());
    let xff = [("x-forwarded-for", ip.as_str())];
    for i in 0..10 {
        let r = env
            .raw(Method::POST, "/v1/admin/auth", &xff, Some(json!({})))
            .await;
        assert_eq!(r.status, 400, "request {i}");
    }
    let r = env
        .raw(Method::POST, "/v1/admin/auth", &xff, Some(json!({})))
        .await;
    assert_problem(
        &r,
        429,
        "rate_limited",
        "rate limit exceeded, try again later",
        "/v1/admin/auth",
    );
    assert_eq!(r.header("retry-after"), Some("1"));
}

#[tokio::test]
async fn item_57_admin_launch_token() {
    let env = Env::new().await;
    let adm = env.admin().await;
    let before = chrono::Utc::now();
    let r = env
        .bearer(
            Method::POST,
            "/v1/admin/launch-tokens",
            &adm,
            Some(json!({"agent_name":"x","allowed_scope":["read:data:*"]})),
        )
        .await;
    assert_eq!(r.status, 201);
    let b = r.json().unwrap();
    assert!(is_hex(b["launch_token"].as_str().unwrap(), 64));
    assert_eq!(
        b["policy"],
        json!({"allowed_scope":["read:data:*"],"max_ttl":300})
    );
    let exp = b["expires_at"].as_str().unwrap();
    assert!(exp.ends_with('Z') && !exp.contains('.'), "{exp}");
    let exp = chrono::DateTime::parse_from_rfc3339(exp).unwrap();
    let delta = (exp.with_timezone(&chrono::Utc) - before).num_seconds();
    assert!((28..=31).contains(&delta), "{delta}");
}

#[tokio::test]
async fn item_58_launch_token_validation() {
    let env = Env::new().await;
    let adm = env.admin().await;
    let r = env
        .bearer(
            Method::POST,
            "/v1/admin/launch-tokens",
            &adm,
            Some(json!({"allowed_scope":["read:data:*"]})),
        )
        .await;
    assert_problem(
        &r,
        400,
        "invalid_request",
        "agent_name is required",
        "/v1/admin/launch-tokens",
    );
    let r = env
        .bearer(
            Method::POST,
            "/v1/admin/launch-tokens",
            &adm,
            Some(json!({"agent_name":"x","allowed_scope":[]})),
        )
        .await;
    assert_problem(
        &r,
        400,
        "invalid_request",
        "allowed_scope must not be empty",
        "/v1/admin/launch-tokens",
    );
}

#[tokio::test]
async fn item_59_admin_token_on_app_route() {
    let env = Env::new().await;
    let adm = env.admin().await;
    let r = env
        .bearer(
            Method::POST,
            "/v1/app/launch-tokens",
            &adm,
            Some(json!({"agent_name":"x","allowed_scope":["read:data:*"]})),
        )
        .await;
    assert_problem(
        &r,
        403,
        "insufficient_scope",
        "token lacks required scope: app:launch-tokens:*",
        "/v1/app/launch-tokens",
    );
}

#[tokio::test]
async fn item_60_app_ceiling() {
    let env = Env::new().await;
    let (_, tok) = env.app(&["read:data:*"]).await;
    let detail = "requested scopes exceed app ceiling; allowed: [read:data:*]";
    let r = env
        .bearer(
            Method::POST,
            "/v1/app/launch-tokens",
            &tok,
            Some(json!({"agent_name":"x","allowed_scope":["write:data:x"]})),
        )
        .await;
    assert_problem(&r, 403, "forbidden", detail, "/v1/app/launch-tokens");
    let r = env
        .bearer(
            Method::POST,
            "/v1/app/launch-tokens",
            &tok,
            Some(json!({"allowed_scope":["write:data:x"]})),
        )
        .await;
    assert_problem(&r, 403, "forbidden", detail, "/v1/app/launch-tokens");
}

#[tokio::test]
async fn item_61_app_within_ceiling() {
    let env = Env::new().await;
    let (_, tok) = env.app(&["read:data:*"]).await;
    let r = env
        .bearer(
            Method::POST,
            "/v1/app/launch-tokens",
            &tok,
            Some(json!({"agent_name":"x","allowed_scope":["read:data:customers"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

// ── Apps ───────────────────────────────────────────────────────────────

fn abbrev(name: &str) -> String {
    let parts: Vec<&str> = name.split('-').collect();
    if parts.len() == 1 {
        name.chars().take(2).collect()
    } else {
        parts
            .iter()
            .filter_map(|p| p.chars().next())
            .take(3)
            .collect()
    }
}

#[tokio::test]
async fn item_62_app_registration_shape() {
    let env = Env::new().await;
    let name = if env.external {
        format!("weather-bot-{}", uniq())
    } else {
        "weather-bot".to_string()
    };
    let adm = env.admin().await;
    let r = env
        .bearer(
            Method::POST,
            "/v1/admin/apps",
            &adm,
            Some(json!({"name": name, "scopes":["read:weather:*"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let b = r.json().unwrap();
    let app_id = b["app_id"].as_str().unwrap();
    let id_prefix = format!("app-{name}-");
    assert!(
        app_id.starts_with(&id_prefix) && is_hex(&app_id[id_prefix.len()..], 6),
        "{app_id}"
    );
    let cid = b["client_id"].as_str().unwrap();
    let cprefix = format!("{}-", abbrev(&name));
    assert!(
        cid.starts_with(&cprefix) && is_hex(&cid[cprefix.len()..], 12),
        "{cid}"
    );
    if !env.external {
        assert!(cid.starts_with("wb-"));
    }
    assert!(is_hex(b["client_secret"].as_str().unwrap(), 64));
    assert_eq!(b["token_ttl"], 1800);
    assert_eq!(b["name"], "");
    assert_eq!(b["status"], "");
    assert!(b.get("created_at").is_none());
}

#[tokio::test]
async fn item_63_app_registration_validation() {
    let env = Env::new().await;
    let adm = env.admin().await;
    let post =
        |body: serde_json::Value| env.bearer(Method::POST, "/v1/admin/apps", &adm, Some(body));
    let r = post(json!({"name":"My_App","scopes":["read:data:*"]})).await;
    assert_problem(
        &r,
        400,
        "invalid_request",
        "invalid app name: must be lowercase letters, digits, and hyphens",
        "/v1/admin/apps",
    );
    let r = post(json!({"name":"ok-name","scopes":["read:data:*"],"token_ttl":0})).await;
    assert_problem(
        &r,
        400,
        "invalid_ttl",
        "invalid token TTL: must be between 60 and 86400 seconds, got 0",
        "/v1/admin/apps",
    );
    let r = post(json!({"name":"ok-name","scopes":["read:data:*"],"token_ttl":59})).await;
    assert_problem(
        &r,
        400,
        "invalid_ttl",
        "invalid token TTL: must be between 60 and 86400 seconds, got 59",
        "/v1/admin/apps",
    );
    let r = post(json!({"name":"ok-name","scopes":["read:data"]})).await;
    assert_problem(
        &r,
        400,
        "invalid_request",
        "invalid scope format: use action:resource:identifier",
        "/v1/admin/apps",
    );
}

/// The real broker answers 500 (spec §15 #8); the embedded broker answers the
/// documented 409 unless `strict_500s` is set. Both are checked here.
#[tokio::test]
async fn item_64_duplicate_app_name() {
    let strict = Env::with_config(Config {
        strict_500s: true,
        ..Config::with_admin_secret("s")
    })
    .await;
    let env = Env::new().await;
    for (e, is_strict) in [(&strict, true), (&env, false)] {
        let adm = e.admin().await;
        let name = format!("dup-{}", uniq());
        let body = json!({"name": name, "scopes":["read:data:*"]});
        assert_eq!(
            e.bearer(Method::POST, "/v1/admin/apps", &adm, Some(body.clone()))
                .await
                .status,
            201
        );
        let r = e
            .bearer(Method::POST, "/v1/admin/apps", &adm, Some(body))
            .await;
        if is_strict || e.external {
            assert_problem(
                &r,
                500,
                "internal_error",
                "failed to register app",
                "/v1/admin/apps",
            );
        } else {
            assert_problem(
                &r,
                409,
                "conflict",
                "an app with this name already exists",
                "/v1/admin/apps",
            );
        }
    }
}

#[tokio::test]
async fn item_65_list_and_get_apps() {
    let env = Env::new().await;
    let (first, _) = env.app(&["read:data:*"]).await;
    env.pass(Duration::from_millis(1100)).await;
    let (second, _) = env.app(&["read:data:*"]).await;
    let adm = env.admin().await;
    let list = env.client.list_apps(&adm).await.unwrap();
    assert_eq!(list.total as usize, list.apps.len());
    let pos = |id: &str| list.apps.iter().position(|a| a.app_id == id).unwrap();
    assert!(pos(&second.app_id) < pos(&first.app_id), "newest first");
    assert!(list.apps.iter().all(|a| a.client_secret.is_none()));
    let raw = env.bearer(Method::GET, "/v1/admin/apps", &adm, None).await;
    assert!(!raw.text().contains("client_secret"));
    let r = env
        .bearer(Method::GET, "/v1/admin/apps/app-missing", &adm, None)
        .await;
    assert_problem(
        &r,
        404,
        "not_found",
        "app not found",
        "/v1/admin/apps/app-missing",
    );
}

#[tokio::test]
async fn item_66_update_app() {
    let env = Env::new().await;
    let (app, _) = env.app(&["read:data:*"]).await;
    let adm = env.admin().await;
    let path = format!("/v1/admin/apps/{}", app.app_id);
    let r = env.bearer(Method::PUT, &path, &adm, Some(json!({}))).await;
    assert_problem(
        &r,
        400,
        "invalid_request",
        "at least one of scopes or token_ttl must be provided",
        &path,
    );
    let before = env.client.get_app(&adm, &app.app_id).await.unwrap();
    let after = env
        .client
        .update_app(
            &adm,
            &app.app_id,
            &UpdateAppRequest {
                scopes: None,
                token_ttl: Some(3600),
            },
        )
        .await
        .unwrap();
    assert_eq!(after.token_ttl, 3600);
    assert!(after.updated_at >= before.updated_at);
}

#[tokio::test]
async fn item_67_delete_app() {
    let env = Env::new().await;
    let (app, _) = env.app(&["read:data:*"]).await;
    let adm = env.admin().await;
    let path = format!("/v1/admin/apps/{}", app.app_id);
    let r = env.bearer(Method::DELETE, &path, &adm, None).await;
    assert_eq!(r.status, 200);
    let b = r.json().unwrap();
    assert_eq!(b["status"], "inactive");
    assert!(b["deregistered_at"].is_string());
    assert!(b["scopes"].is_null());
    let res = env
        .client
        .app_auth(&app.client_id, app.client_secret.as_deref().unwrap())
        .await;
    assert_refused(res, 401, "unauthorized", "Authentication failed");
}

#[tokio::test]
async fn item_68_app_auth() {
    let env = Env::new().await;
    let (app, _) = env.app(&["read:data:*"]).await;
    let r = env
        .raw(
            Method::POST,
            "/v1/app/auth",
            &[],
            Some(json!({"client_id": app.client_id, "client_secret": app.client_secret})),
        )
        .await;
    assert_eq!(r.status, 200);
    let b = r.json().unwrap();
    assert_eq!(b["expires_in"], 1800);
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(
        b["scopes"],
        json!(["app:launch-tokens:*", "app:agents:*", "app:audit:read"])
    );
    assert_eq!(
        payload(b["access_token"].as_str().unwrap())["sub"],
        format!("app:{}", app.app_id)
    );
}

#[tokio::test]
async fn item_69_app_auth_rate_limit_per_client_id() {
    let env = Env::new().await;
    let adm = env.admin().await;
    let app = env
        .client
        .create_app(
            &adm,
            &CreateAppRequest {
                name: format!("rl-{}", uniq()),
                scopes: vec!["read:data:*".into()],
                token_ttl: None,
            },
        )
        .await
        .unwrap();
    let body = json!({"client_id": app.client_id, "client_secret": "wrong"});
    let attempt = |ip: &'static str| {
        let body = body.clone();
        let env = &env;
        async move {
            env.raw(
                Method::POST,
                "/v1/app/auth",
                &[("x-forwarded-for", ip)],
                Some(body),
            )
            .await
        }
    };
    for i in 0..3 {
        assert_eq!(attempt("192.0.2.100").await.status, 401, "request {i}");
    }
    let r = attempt("192.0.2.100").await;
    assert_problem(
        &r,
        429,
        "rate_limited",
        "rate limit exceeded, try again later",
        "/v1/app/auth",
    );
    assert_eq!(r.header("retry-after"), Some("60"));
    if !env.external {
        // Deviation (README): the real broker keys this bucket by client_id
        // alone, so three requests from anywhere lock the app out for
        // everyone. Here the bucket is per client_id and client IP.
        assert_eq!(attempt("192.0.2.201").await.status, 401);
    }
}

#[tokio::test]
async fn item_70_app_token_outlives_deregistration() {
    let env = Env::new().await;
    let (app, tok) = env.app(&["read:data:*"]).await;
    let adm = env.admin().await;
    env.client.delete_app(&adm, &app.app_id).await.unwrap();
    let lt = env
        .client
        .app_launch_token(
            &tok,
            &LaunchTokenRequest {
                agent_name: "x".into(),
                allowed_scope: vec!["read:data:x".into()],
                ..Default::default()
            },
        )
        .await;
    assert!(lt.is_ok(), "{lt:?}");
    env.client
        .renew(&tok)
        .await
        .expect("renewable after deregistration");
}

// ── Audit and health ───────────────────────────────────────────────────

#[tokio::test]
async fn item_71_audit_hash_chain() {
    let env = Env::new().await;
    env.agent(&["read:data:*"]).await;
    let adm = env.admin().await;
    let page = env
        .client
        .audit_events(&adm, &AuditQuery::default())
        .await
        .unwrap();
    assert_eq!((page.offset, page.limit), (0, 100));
    assert!(!page.events.is_empty());
    let first = env
        .client
        .audit_events(
            &adm,
            &AuditQuery {
                limit: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(first.events[0].id, "evt-000001");
    assert_eq!(first.events[0].prev_hash, "0".repeat(64));
    assert_eq!(verify_audit_chain(&page.events), Ok(()));
}

#[tokio::test]
async fn item_72_audit_limit_parsing() {
    let env = Env::new().await;
    let adm = env.admin().await;
    let r = env
        .bearer(Method::GET, "/v1/audit/events?limit=5000", &adm, None)
        .await;
    let b = r.json().unwrap();
    assert_eq!(b["limit"], 5000);
    assert!(b["events"].as_array().unwrap().len() <= 1000);
    let r = env
        .bearer(Method::GET, "/v1/audit/events?limit=abc", &adm, None)
        .await;
    assert_eq!(r.json().unwrap()["limit"], 100);
}

#[tokio::test]
async fn item_73_audit_filter_registration() {
    let env = Env::new().await;
    let ag = env.agent(&["read:data:*"]).await;
    let adm = env.admin().await;
    let page = env
        .client
        .audit_events(
            &adm,
            &AuditQuery {
                event_type: Some("agent_registered".into()),
                agent_id: Some(ag.agent_id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    let e = &page.events[0];
    assert!(!e.task_id.is_empty() && e.orch_id == "orch-1");
    assert_eq!(e.outcome, "success");
    assert!(
        e.detail.starts_with("Agent registered with scope ["),
        "{}",
        e.detail
    );
}

#[tokio::test]
async fn item_74_app_token_cannot_read_audit() {
    let env = Env::new().await;
    let (_, tok) = env.app(&["read:data:*"]).await;
    let r = env
        .bearer(Method::GET, "/v1/audit/events", &tok, None)
        .await;
    assert_problem(
        &r,
        403,
        "insufficient_scope",
        "token lacks required scope: admin:audit:*",
        "/v1/audit/events",
    );
}

#[tokio::test]
async fn item_75_delegation_audit_events() {
    let env = Env::new().await;
    let a = env.agent(&["read:data:*"]).await;
    let b = env.agent(&["read:data:*"]).await;
    let _ = env
        .delegate(&a.access_token, &b.agent_id, &["write:data:x"], None)
        .await;
    let d = env
        .delegate(&a.access_token, &b.agent_id, &["read:data:x"], None)
        .await
        .unwrap();
    let adm = env.admin().await;
    let bad = env
        .client
        .audit_events(
            &adm,
            &AuditQuery {
                event_type: Some("delegation_attenuation_violation".into()),
                agent_id: Some(a.agent_id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(bad.total, 1);
    assert_eq!(bad.events[0].outcome, "denied");
    let good = env
        .client
        .audit_events(
            &adm,
            &AuditQuery {
                event_type: Some("delegation_created".into()),
                agent_id: Some(b.agent_id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(good.total, 1);
    assert_eq!(good.events[0].deleg_depth, 1);
    assert_eq!(
        good.events[0].deleg_chain_hash,
        payload(&d.access_token)["chain_hash"].as_str().unwrap()
    );
}

#[tokio::test]
async fn item_76_health_fields_and_audit_count() {
    let env = Env::new().await;
    let adm = env.admin().await;
    let r = env.raw(Method::GET, "/v1/health", &[], None).await;
    let h = r.json().unwrap();
    let mut keys: Vec<&String> = h.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "audit_events_count",
            "db_connected",
            "status",
            "uptime",
            "version"
        ]
    );
    assert_eq!(
        (h["status"].as_str(), h["version"].as_str()),
        (Some("ok"), Some("2.0.0"))
    );
    assert!(h["uptime"].is_i64() && h["db_connected"].is_boolean());
    let before = env.client.health().await.unwrap().audit_events_count;
    let total = env
        .client
        .audit_events(
            &adm,
            &AuditQuery {
                limit: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .total;
    let after = env.client.health().await.unwrap().audit_events_count;
    assert!(
        before <= total && total <= after,
        "{before} <= {total} <= {after}"
    );
    if !env.external {
        assert_eq!(before, total);
    }
}

/// Beyond §16: the real broker takes the token untrimmed (spec §1.7 row 3),
/// so whitespace around it makes it invalid.
#[tokio::test]
async fn also_whitespace_around_a_token_is_refused() {
    let env = Env::new().await;
    let agent = env.agent(&["read:data:*"]).await;
    let tok = agent.access_token;
    assert!(env.valid(&tok).await);
    for padded in [format!(" {tok}"), format!("{tok} "), format!("{tok}\n")] {
        let r = env
            .raw(
                Method::POST,
                "/v1/token/validate",
                &[],
                Some(json!({ "token": padded })),
            )
            .await;
        assert_eq!(r.json().unwrap()["valid"], false, "{padded:?}");
    }
    let r = env
        .raw(
            Method::POST,
            "/v1/token/renew",
            &[("authorization", &format!("Bearer  {tok}"))],
            None,
        )
        .await;
    assert_problem(
        &r,
        401,
        "unauthorized",
        "token verification failed",
        "/v1/token/renew",
    );
}

// ── HTTP as Go's server (beyond §16; each also holds for the real broker) ──

/// The broker's `host:port`.
fn host_port(env: &Env) -> String {
    env.client
        .base_url()
        .trim_start_matches("http://")
        .to_string()
}

/// Sends `request` as raw bytes and reads until the broker closes the
/// connection (or 20 s pass): the whole answer, as text.
async fn raw_tcp(env: &Env, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(host_port(env))
        .await
        .unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Go's `ReadHeaderTimeout` runs from the accept: a connection that never
/// sends a byte is closed (silently) then, not after the idle timeout.
#[tokio::test]
async fn also_a_silent_connection_is_closed_at_the_header_timeout() {
    use tokio::io::AsyncReadExt;
    let env = Env::with_config(Config {
        timeouts: chainview::broker::embedded::Timeouts {
            read_header: Duration::from_millis(300),
            idle: Duration::from_secs(600),
            ..Default::default()
        },
        ..Config::with_admin_secret("conformance-admin-secret")
    })
    .await;
    let mut s = tokio::net::TcpStream::connect(host_port(&env))
        .await
        .unwrap();
    let mut buf = Vec::new();
    // Real broker: 5 s. Bounded so a broker that never closes fails here.
    let read = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was never closed");
    assert!(
        buf.is_empty(),
        "closed silently: {:?}",
        String::from_utf8_lossy(&buf)
    );
}

#[tokio::test]
async fn also_a_request_without_host_is_400() {
    let env = Env::new().await;
    let r = raw_tcp(&env, b"GET /v1/health HTTP/1.1\r\n\r\n").await;
    assert!(
        r.starts_with("HTTP/1.1 400 Bad Request: missing required Host header\r\n"),
        "{r}"
    );
    assert!(
        r.ends_with("\r\n\r\n400 Bad Request: missing required Host header"),
        "{r}"
    );
    // HTTP/1.0 needs no Host.
    let r = raw_tcp(&env, b"GET /v1/health HTTP/1.0\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.0 200 OK\r\n"), "{r}");
}

/// Go's ServeMux matches the unescaped path, and redirects (301) a path
/// that is not clean to the clean one, query kept.
#[tokio::test]
async fn also_paths_are_unescaped_and_cleaned_as_gos_mux() {
    let env = Env::new().await;
    let r = env.raw(Method::GET, "/v1/%68ealth", &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Dot segments as sent (chainview's client, like a browser, would
    // resolve them itself before sending).
    let host = host_port(&env);
    for path in ["/v1/./health", "/v1/admin/../health"] {
        let r = raw_tcp(
            &env,
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(
            r.starts_with("HTTP/1.1 301 Moved Permanently\r\n"),
            "{path}: {r}"
        );
        assert!(
            r.to_lowercase().contains("\r\nlocation: /v1/health\r\n"),
            "{path}: {r}"
        );
    }
    for (path, location) in [
        ("/v1//health", "/v1/health"),
        ("/v1//audit/events?limit=1", "/v1/audit/events?limit=1"),
    ] {
        let r = env.raw(Method::GET, path, &[], None).await;
        assert_eq!(r.status, 301, "{path}");
        assert_eq!(r.header("location"), Some(location), "{path}");
        assert_eq!(
            r.text(),
            format!(
                "<a href=\"{}\">Moved Permanently</a>.\n\n",
                location.replace('&', "&amp;")
            ),
            "{path}"
        );
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
    }
    // Any method is redirected; only GET and HEAD get the HTML body.
    let r = env
        .raw(
            Method::POST,
            "/v1//token/validate",
            &[],
            Some(json!({"token": "x"})),
        )
        .await;
    assert_eq!(
        (r.status, r.header("location")),
        (301, Some("/v1/token/validate"))
    );
    assert!(r.body.is_empty());
    // A malformed escape is refused by the server itself.
    let r = raw_tcp(
        &env,
        format!("GET /v1/%zz HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{r}");
}

/// Go limits request headers by size (1 MiB), not by count.
#[tokio::test]
async fn also_headers_are_limited_by_bytes_not_by_count() {
    let env = Env::new().await;
    let host = host_port(&env);
    let many: String = (0..300).map(|i| format!("X-Extra-{i}: v\r\n")).collect();
    let r = raw_tcp(
        &env,
        format!("GET /v1/health HTTP/1.1\r\nHost: {host}\r\n{many}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert!(
        r.starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        &r[..r.len().min(200)]
    );
    // 600 KiB in one header is still under the limit…
    let big = "a".repeat(600 << 10);
    let r = raw_tcp(
        &env,
        format!(
            "GET /v1/health HTTP/1.1\r\nHost: {host}\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert!(
        r.starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        &r[..r.len().min(200)]
    );
    // …1.1 MiB is not.
    let huge = "a".repeat(1100 << 10);
    let r = raw_tcp(
        &env,
        format!("GET /v1/health HTTP/1.1\r\nHost: {host}\r\nX-Big: {huge}\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 431 "), "{}", &r[..r.len().min(200)]);
}

/// `since`/`until` far outside the range of nanoseconds in an i64 still
/// compare as times: after every event, before every event.
#[tokio::test]
async fn also_since_and_until_compare_without_overflow() {
    let env = Env::new().await;
    let adm = env.admin().await;
    let total = |q: &'static str| {
        let (env, adm) = (&env, &adm);
        async move {
            let r = env
                .raw(
                    Method::GET,
                    &format!("/v1/audit/events?{q}"),
                    &[("authorization", &format!("Bearer {adm}"))],
                    None,
                )
                .await;
            r.json().unwrap()["total"].as_i64().unwrap()
        }
    };
    let all = total("limit=1").await;
    assert!(all > 0);
    assert_eq!(total("since=3000-01-01T00:00:00Z").await, 0);
    assert_eq!(total("until=1500-01-01T00:00:00Z").await, 0);
    assert!(total("since=1500-01-01T00:00:00Z").await >= all);
    assert!(total("until=3000-01-01T00:00:00Z").await >= all);
}

/// The embedded broker caches the verification of every token it issued;
/// revocation is still checked on each use, so a cached token is refused
/// the moment it is revoked (token level by admin, token level by release,
/// task level), as the validate answer and as a Bearer.
#[tokio::test]
async fn a_revoked_token_is_refused_though_its_verification_is_cached() {
    let env = Env::new().await;
    let a = env.agent(&["read:data:*"]).await;
    let b = env.agent(&["read:data:*"]).await;
    let adm = env.admin().await;
    let d = env
        .delegate(&a.access_token, &b.agent_id, &["read:data:x"], None)
        .await
        .unwrap();
    // Used once each: from here on their verification is cached.
    assert!(env.valid(&a.access_token).await);
    assert!(env.valid(&d.access_token).await);

    let jti = jwt::decode(&d.access_token).unwrap().claims.jti;
    env.client
        .revoke(&adm, RevokeLevel::Token, &jti)
        .await
        .unwrap();
    assert!(!env.valid(&d.access_token).await, "token-level revocation");
    assert!(
        env.client.renew(&d.access_token).await.is_err(),
        "refused as a Bearer too"
    );

    let e = env
        .delegate(&a.access_token, &b.agent_id, &["read:data:x"], None)
        .await
        .unwrap();
    assert!(env.valid(&e.access_token).await);
    env.client.release(&e.access_token).await.unwrap();
    assert!(!env.valid(&e.access_token).await, "released");

    let task = jwt::decode(&a.access_token).unwrap().claims.task_id;
    env.client
        .revoke(&adm, RevokeLevel::Task, &task)
        .await
        .unwrap();
    assert!(!env.valid(&a.access_token).await, "task-level revocation");
    assert!(
        env.delegate(&a.access_token, &b.agent_id, &["read:data:x"], None)
            .await
            .is_err(),
        "a revoked delegator cannot delegate"
    );
}
