#![no_main]
//! The embedded broker's request bodies: arbitrary bytes posted to every
//! route (with a valid admin token as Bearer, so the body decoding and the
//! checks after it run), through the real HTTP service in-process. With the
//! selector's high bit set, the input instead fills every numeric field of a
//! route (ttl, max_ttl, token_ttl, limit, offset) with arbitrary 64-bit
//! values: those answers must never be a 5xx (a panic would be a 500).
use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use chainview::broker::embedded::{Config, service};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/register"),
    ("POST", "/v1/token/validate"),
    ("POST", "/v1/token/renew"),
    ("POST", "/v1/delegate"),
    ("POST", "/v1/revoke"),
    ("POST", "/v1/admin/auth"),
    ("POST", "/v1/admin/launch-tokens"),
    ("POST", "/v1/app/launch-tokens"),
    ("POST", "/v1/admin/apps"),
    ("PUT", "/v1/admin/apps/app-x-000000"),
    ("POST", "/v1/app/auth"),
    ("GET", "/v1/audit/events"),
];

struct Ctx {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    admin: String,
}

fn send(ctx: &Ctx, method: &str, path: &str, auth: Option<&str>, body: Vec<u8>) -> (u16, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(path).header("host", "127.0.0.1");
    if let Some(t) = auth {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let mut req = req.body(Body::from(body)).expect("request");
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))));
    ctx.rt.block_on(async {
        let resp = ctx.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, bytes.to_vec())
    })
}

fn ctx() -> &'static Ctx {
    static CTX: OnceLock<Ctx> = OnceLock::new();
    CTX.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let router = service(Config::with_admin_secret("fuzz")).expect("service");
        let mut c = Ctx {
            rt,
            router,
            admin: String::new(),
        };
        let (_, body) = send(
            &c,
            "POST",
            "/v1/admin/auth",
            None,
            br#"{"secret":"fuzz"}"#.to_vec(),
        );
        let v: serde_json::Value = serde_json::from_slice(&body).expect("admin token");
        c.admin = v["access_token"].as_str().expect("token").to_string();
        c
    })
}

/// Route, path and body with numbers `a` and `b` in every numeric field.
fn numeric(sel: u8, a: i64, b: i64) -> (&'static str, String, String) {
    match sel % 6 {
        0 => (
            "POST",
            "/v1/admin/launch-tokens".into(),
            format!(r#"{{"agent_name":"n","allowed_scope":["read:data:*"],"ttl":{a},"max_ttl":{b},"single_use":false}}"#),
        ),
        1 => (
            "POST",
            "/v1/delegate".into(),
            format!(r#"{{"delegate_to":"spiffe://agentwrit.local/agent/o/t/x","scope":["admin:audit:*"],"ttl":{a}}}"#),
        ),
        2 => (
            "POST",
            "/v1/admin/apps".into(),
            format!(r#"{{"name":"fz{}","scopes":["read:data:*"],"token_ttl":{a}}}"#, b.unsigned_abs() % 1_000_000),
        ),
        3 => (
            "PUT",
            "/v1/admin/apps/app-x-000000".into(),
            format!(r#"{{"token_ttl":{a}}}"#),
        ),
        4 => ("GET", format!("/v1/audit/events?limit={a}&offset={b}"), String::new()),
        _ => (
            "POST",
            "/v1/app/launch-tokens".into(),
            format!(r#"{{"agent_name":"n","allowed_scope":["read:data:*"],"ttl":{a},"max_ttl":{b}}}"#),
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((sel, body)) = data.split_first() else {
        return;
    };
    let c = ctx();
    if sel & 0x80 != 0 && body.len() >= 16 {
        let a = i64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
        let b = i64::from_le_bytes(body[8..16].try_into().expect("8 bytes"));
        let (method, path, json) = numeric(*sel, a, b);
        let (status, _) = send(c, method, &path, Some(&c.admin), json.into_bytes());
        assert!(status < 500, "{method} {path} with {a}, {b}: {status}");
        return;
    }
    let (method, path) = ROUTES[*sel as usize % ROUTES.len()];
    let (status, resp) = send(c, method, path, Some(&c.admin), body.to_vec());
    // Every answer is a success or a well-formed problem, never a crash.
    assert!(status < 600);
    if status >= 400 {
        let v: serde_json::Value = serde_json::from_slice(&resp).expect("problem+json");
        assert_eq!(v["status"].as_u64(), Some(status as u64));
    }
});
