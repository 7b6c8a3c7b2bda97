//! Hardening: forged and misused tokens against the embedded broker (every
//! Bearer route and validate), oversized bodies on every route, a broker
//! stopped in the middle of a scenario, secrets in every output format, and a
//! load run of 100 concurrent agents whose audit chain must verify.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chainview::app::unix_now;
use chainview::broker::BrokerClient;
use chainview::broker::embedded::{Config, EmbeddedBroker};
use chainview::broker::types::{AuditQuery, DelegateRequest, RevokeLevel, verify_audit_chain};
use chainview::jwt::{self, Claims};
use chainview::scenario::replay::Replay;
use chainview::scenario::report::StepResult;
use chainview::scenario::transcript;
use chainview::session::Settings;
use chainview::view::View;
use common::*;
use ed25519_dalek::SigningKey;
use reqwest::Method;
use serde_json::json;
use sha2::Sha256;

/// Every route that takes a Bearer token, with a body that would be valid.
fn bearer_routes() -> Vec<(Method, &'static str, Option<serde_json::Value>)> {
    vec![
        (Method::POST, "/v1/token/renew", None),
        (Method::POST, "/v1/token/release", None),
        (
            Method::POST,
            "/v1/delegate",
            Some(
                json!({"delegate_to":"spiffe://agentwrit.local/agent/o/t/0000000000000000","scope":["read:data:x"]}),
            ),
        ),
        (
            Method::POST,
            "/v1/revoke",
            Some(json!({"level":"token","target":"x"})),
        ),
        (Method::GET, "/v1/audit/events", None),
        (
            Method::POST,
            "/v1/admin/launch-tokens",
            Some(json!({"agent_name":"x","allowed_scope":["read:data:*"]})),
        ),
        (
            Method::POST,
            "/v1/app/launch-tokens",
            Some(json!({"agent_name":"x","allowed_scope":["read:data:*"]})),
        ),
        (
            Method::POST,
            "/v1/admin/apps",
            Some(json!({"name":"forged","scopes":["read:data:*"]})),
        ),
        (Method::GET, "/v1/admin/apps", None),
    ]
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    let mut h = hmac::Hmac::<Sha256>::new_from_slice(key).unwrap();
    h.update(msg);
    h.finalize().into_bytes().to_vec()
}

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// Admin-scoped claims (so a forgery would pass every route's scope check).
fn admin_claims(exp: i64, nbf: i64) -> Claims {
    Claims {
        sub: "admin".into(),
        exp,
        iat: nbf,
        nbf,
        jti: "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0".into(),
        scope: vec![
            "admin:launch-tokens:*".into(),
            "admin:revoke:*".into(),
            "admin:audit:*".into(),
            "app:launch-tokens:*".into(),
        ],
        ..Claims::default()
    }
}

async fn refused_everywhere(env: &Env, token: &str, what: &str) {
    assert!(!env.valid(token).await, "{what}: validate must say invalid");
    for (method, path, body) in bearer_routes() {
        let r = env.bearer(method.clone(), path, token, body).await;
        assert_problem(&r, 401, "unauthorized", "token verification failed", path);
        let _ = what;
    }
}

#[tokio::test]
async fn forged_and_misused_tokens_are_refused_on_every_route() {
    let env = Env::new().await;
    let broker_key = env.public_key.expect("embedded broker key");
    let kid = jwt::kid(&broker_key);
    let now = unix_now();
    let payload = b64(&jwt::gojson::to_vec(&admin_claims(now + 300, now)));

    // alg: none, with and without a signature part.
    let none_header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    refused_everywhere(&env, &format!("{none_header}.{payload}."), "alg none").await;
    refused_everywhere(
        &env,
        &format!("{none_header}.{payload}.AAAA"),
        "alg none + sig",
    )
    .await;

    // HS256 signed with the broker's public key as the HMAC secret.
    let hs_header = b64(format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#).as_bytes());
    let input = format!("{hs_header}.{payload}");
    let mac = hmac_sha256(&broker_key.to_bytes(), input.as_bytes());
    refused_everywhere(
        &env,
        &format!("{input}.{}", b64(&mac)),
        "HS256 key confusion",
    )
    .await;

    // A valid EdDSA signature from another key (with and without the broker's kid).
    let other = SigningKey::from_bytes(&[42u8; 32]);
    let forged = jwt::sign(&admin_claims(now + 300, now), &other, &kid);
    refused_everywhere(&env, &forged, "other key, broker kid").await;
    let forged = jwt::sign(
        &admin_claims(now + 300, now),
        &other,
        &jwt::kid(&other.verifying_key()),
    );
    refused_everywhere(&env, &forged, "other key").await;

    // A genuine agent token with its payload edited to claim admin scopes.
    let ag = env.agent(&["read:data:*"]).await;
    let parts: Vec<&str> = ag.access_token.split('.').collect();
    let mut claims = jwt::decode(&ag.access_token).unwrap().claims;
    claims.scope = admin_claims(0, 0).scope;
    let edited = format!(
        "{}.{}.{}",
        parts[0],
        b64(&jwt::gojson::to_vec(&claims)),
        parts[2]
    );
    refused_everywhere(&env, &edited, "edited payload").await;

    // Truncated and garbage tokens.
    refused_everywhere(
        &env,
        &ag.access_token[..ag.access_token.len() - 5],
        "truncated",
    )
    .await;
    refused_everywhere(&env, "not.a.jwt", "garbage").await;
}

#[tokio::test]
async fn expired_not_yet_valid_released_and_revoked_tokens_are_refused() {
    // A broker whose key we hold, so we can mint expired and future tokens.
    let env = Env::with_config(Config {
        signing_seed: Some([9u8; 32]),
        ..Config::with_admin_secret("s")
    })
    .await;
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let kid = jwt::kid(&key.verifying_key());
    let now = unix_now();
    refused_everywhere(
        &env,
        &jwt::sign(&admin_claims(now - 10, now - 70), &key, &kid),
        "expired",
    )
    .await;
    refused_everywhere(
        &env,
        &jwt::sign(&admin_claims(now + 600, now + 300), &key, &kid),
        "nbf in the future",
    )
    .await;
    // The same key, valid times: accepted (so the refusals above are about time).
    let good = jwt::sign(&admin_claims(now + 300, now), &key, &kid);
    assert!(env.valid(&good).await);

    let released = env.agent(&["read:data:*"]).await.access_token;
    env.client.release(&released).await.unwrap();
    refused_everywhere(&env, &released, "released").await;

    let revoked = env.agent(&["read:data:*"]).await.access_token;
    let jti = jwt::decode(&revoked).unwrap().claims.jti;
    let adm = env.admin().await;
    env.client
        .revoke(&adm, RevokeLevel::Token, &jti)
        .await
        .unwrap();
    refused_everywhere(&env, &revoked, "revoked").await;
}

#[tokio::test]
async fn admin_and_app_tokens_stay_on_their_own_routes() {
    let env = Env::new().await;
    let adm = env.admin().await;
    let (_, app_tok) = env.app(&["read:data:*"]).await;
    let body = json!({"agent_name":"x","allowed_scope":["read:data:*"]});
    let r = env
        .bearer(
            Method::POST,
            "/v1/app/launch-tokens",
            &adm,
            Some(body.clone()),
        )
        .await;
    assert_problem(
        &r,
        403,
        "insufficient_scope",
        "token lacks required scope: app:launch-tokens:*",
        "/v1/app/launch-tokens",
    );
    for (method, path, need) in [
        (
            Method::POST,
            "/v1/admin/launch-tokens",
            "admin:launch-tokens:*",
        ),
        (Method::GET, "/v1/admin/apps", "admin:launch-tokens:*"),
        (Method::POST, "/v1/revoke", "admin:revoke:*"),
        (Method::GET, "/v1/audit/events", "admin:audit:*"),
    ] {
        let r = env.bearer(method, path, &app_tok, Some(body.clone())).await;
        assert_problem(
            &r,
            403,
            "insufficient_scope",
            &format!("token lacks required scope: {need}"),
            path,
        );
    }
}

#[tokio::test]
async fn oversized_bodies_are_413_on_every_route() {
    let env = Env::new().await;
    let big = vec![b' '; 1_048_577];
    let routes = [
        (Method::GET, "/v1/challenge"),
        (Method::POST, "/v1/register"),
        (Method::POST, "/v1/token/validate"),
        (Method::POST, "/v1/token/renew"),
        (Method::POST, "/v1/delegate"),
        (Method::POST, "/v1/admin/auth"),
        (Method::POST, "/v1/app/auth"),
        (Method::GET, "/v1/health"),
        (Method::POST, "/v1/nope"),
    ];
    for (m, path) in routes {
        let r = env.raw_bytes(m, path, big.clone()).await;
        assert_problem(
            &r,
            413,
            "payload_too_large",
            "request body must not exceed 1 MB",
            path,
        );
    }
}

// Nonce and single-use launch-token replays: conformance items 14 and 17.

/// Runs a scenario against `broker` as an external broker with these credentials.
fn settings(url: &str, client_id: &str, client_secret: &str, admin: &str) -> Settings {
    Settings {
        broker_url: Some(url.to_string()),
        client_id: Some(client_id.to_string()),
        client_secret: Some(client_secret.to_string()),
        admin_secret: Some(admin.to_string()),
        timeout: Some(Duration::from_secs(2)),
        ..Settings::default()
    }
}

#[tokio::test]
async fn broker_stopped_mid_scenario_is_exit_3_with_the_rest_not_run() {
    let broker = EmbeddedBroker::start(Config::default()).await.unwrap();
    let app = broker
        .register_app("mid", &["read:data:*".to_string()])
        .unwrap();
    let text = "app ceiling=read:data:*\nagent a scope=read:data:*\nagent b scope=read:data:*\ndelegate a -> b scope=read:data:x as=h\nexpect h valid\nrelease a\n";
    let script = chainview::scenario::parse("mid.chainview", text).unwrap();
    let s = settings(
        &broker.url(),
        &app.client_id,
        app.client_secret.as_deref().unwrap(),
        broker.admin_secret(),
    );
    let mut replay = Replay::start(script, &s).await.unwrap();
    for _ in 0..3 {
        let r = replay.next().await.unwrap();
        assert_eq!(r.result, StepResult::Ok, "{r:?}");
    }
    broker.shutdown().await;
    let r = replay.next().await.unwrap();
    match &r.result {
        StepResult::Unreachable(why) => assert!(why.contains("127.0.0.1"), "{why}"),
        other => panic!("expected a transport failure, got {other:?}"),
    }
    let text = transcript::step_text(&r);
    assert!(
        text.contains("✗ broker unreachable: cannot connect to http://127.0.0.1:"),
        "{text}"
    );
    for _ in 0..2 {
        let r = replay.next().await.unwrap();
        assert_eq!(r.result, StepResult::NotRun);
        assert!(transcript::step_text(&r).contains("not run"));
    }
    let summary = replay.finish().await;
    assert_eq!(summary.exit_code(), 3);
    assert_eq!(summary.not_run, 2);
}

#[tokio::test]
async fn no_output_format_contains_a_secret() {
    let broker = EmbeddedBroker::start(Config::default()).await.unwrap();
    let admin_secret = broker.admin_secret().to_string();
    let dir = format!("{}/assets/scenarios", env!("CARGO_MANIFEST_DIR"));
    for (i, name) in [
        "deploy.chainview",
        "depth-limit.chainview",
        "escalation.chainview",
        "revocation.chainview",
        "lifecycle.chainview",
        "audit.chainview",
    ]
    .into_iter()
    .enumerate()
    {
        // One app per scenario: app logins are rate-limited per client id.
        let ceiling = [
            "read:config:*",
            "read:deploy:*",
            "write:deploy:*",
            "read:data:*",
            "write:data:*",
            "read:logs:*",
        ];
        let app = broker
            .register_app(&format!("secrets-{i}"), &ceiling.map(String::from))
            .unwrap();
        let client_secret = app.client_secret.clone().unwrap();
        let text = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
        let script = chainview::scenario::parse(name, &text).unwrap();
        let s = settings(&broker.url(), &app.client_id, &client_secret, &admin_secret);
        let mut replay = Replay::start(script, &s).await.unwrap();
        let mut view = View::new(Some(replay.script()), true);
        let mut out = String::new();
        while let Some(r) = replay.next().await {
            out.push_str(&transcript::step_text(&r));
            out.push_str(&transcript::step_json(&r).to_string());
            view.on_report(&replay.driver.app, &r);
            for (w, h) in [(80, 24), (120, 40)] {
                out.push_str(
                    &chainview::ui::render_text(&replay.driver.app, &mut view, w, h, unix_now())
                        .join("\n"),
                );
            }
        }
        let secrets: Vec<String> = replay
            .driver
            .app
            .tokens
            .iter()
            .filter_map(|t| t.raw.clone())
            .chain([client_secret.clone(), admin_secret.clone()])
            .collect();
        assert!(secrets.len() > 2, "{name} created tokens");
        for secret in &secrets {
            assert!(
                !out.contains(secret.as_str()),
                "{name}: a secret appears in the output"
            );
            // Not even the part after the redaction prefix.
            let tail = &secret[secret.len().saturating_sub(24)..];
            assert!(
                !out.contains(tail),
                "{name}: the end of a secret appears in the output"
            );
        }
        // Launch tokens and client secrets are 64 hex: none may appear.
        let hex64 = regex_lite::Regex::new(r"[0-9a-f]{64}").unwrap();
        assert!(!hex64.is_match(&out), "{name}: a 64-hex secret appears");
        replay.finish().await;
    }
    broker.shutdown().await;
}

/// 100 concurrent agents, each: register → three delegations → validate → release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_100_concurrent_agents_audit_chain_verifies() {
    let env = Env::new().await;
    let adm = env.admin().await;
    let before = env.client.health().await.unwrap().audit_events_count;
    let target = env.agent(&["read:data:*"]).await;
    let base = env.client.health().await.unwrap().audit_events_count;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let client: BrokerClient = env.client.clone();
        let adm = adm.clone();
        let to = target.agent_id.clone();
        tasks.push(tokio::spawn(async move {
            let scope = vec!["read:data:*".to_string()];
            let a = client
                .create_agent(&adm, "load", &format!("t{i}"), &scope, None)
                .await?;
            let mut tok = a.access_token.clone();
            for _ in 0..3 {
                let d = client
                    .delegate(
                        &tok,
                        &DelegateRequest {
                            delegate_to: to.clone(),
                            scope: scope.clone(),
                            ttl: None,
                        },
                    )
                    .await?;
                tok = d.access_token;
            }
            let v = client.validate(&tok).await?;
            assert!(v.valid);
            client.release(&a.access_token).await?;
            Ok::<_, chainview::broker::ClientError>(())
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("zero errors");
    }
    let _ = before;
    // Per agent: launch_token_issued, agent_registered, token_issued,
    // 3 × delegation_created, token_released = 7 events.
    let adm2 = env.admin().await; // + admin_auth
    let page = env
        .client
        .audit_events(
            &adm2,
            &AuditQuery {
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, base + 100 * 7 + 1, "exact audit event count");
    // The whole log in pages of 1000, verified end to end.
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let p = env
            .client
            .audit_events(
                &adm2,
                &AuditQuery {
                    limit: Some(1000),
                    offset: Some(offset),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if p.events.is_empty() {
            break;
        }
        offset += p.events.len() as i64;
        all.extend(p.events);
    }
    assert_eq!(all.len() as i64, page.total);
    assert_eq!(verify_audit_chain(&all), Ok(()));
}

mod bodies {
    //! Mirrors the `broker_bodies` fuzz target: arbitrary bodies to every
    //! route, through the real HTTP service in-process.
    use std::net::SocketAddr;

    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::Request;
    use chainview::broker::embedded::{Config, service};
    use proptest::prelude::*;
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

    async fn send(
        router: &axum::Router,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1");
        if let Some(t) = auth {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let mut req = req.body(Body::from(body)).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))));
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        (
            status,
            axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec(),
        )
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            // JSON-ish bodies that reach the checks after decoding.
            proptest::string::string_regex(r#"\{("(delegate_to|scope|ttl|token|level|target|secret|name|scopes|token_ttl|agent_name|allowed_scope|max_ttl|client_id|client_secret|launch_token|nonce|public_key|signature|orch_id|task_id|requested_scope)":(null|-?[0-9]{1,6}|"[a-z:*]{0,12}"|\["[a-z:*]{0,12}"\]|true),?){0,4}\}"#)
                .unwrap()
                .prop_map(String::into_bytes),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn every_route_answers_success_or_a_problem(sel in 0usize..ROUTES.len(), b in body()) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let router = service(Config::with_admin_secret("prop")).expect("service");
                let (_, admin) = send(&router, "POST", "/v1/admin/auth", None, br#"{"secret":"prop"}"#.to_vec()).await;
                let admin: serde_json::Value = serde_json::from_slice(&admin).unwrap();
                let admin = admin["access_token"].as_str().unwrap().to_string();
                let (method, path) = ROUTES[sel];
                let (status, resp) = send(&router, method, path, Some(&admin), b).await;
                assert!(status < 500 || path == "/v1/register" || path == "/v1/delegate", "{path}: {status}");
                if status >= 400 {
                    let v: serde_json::Value = serde_json::from_slice(&resp).expect("problem+json");
                    assert_eq!(v["status"].as_u64(), Some(u64::from(status)));
                }
            });
        }
    }
}

#[test]
fn reveal_secrets_prints_whole_tokens_only_when_asked() {
    let bin = env!("CARGO_BIN_EXE_chainview");
    let script = format!(
        "{}/assets/scenarios/deploy.chainview",
        env!("CARGO_MANIFEST_DIR")
    );
    let jwt =
        regex_lite::Regex::new(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{20,}")
            .unwrap();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(bin)
            .args(["--script", &script])
            .args(extra)
            .env_remove("AGENTWRIT_BROKER_URL")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(!jwt.is_match(&run(&[])));
    assert!(jwt.is_match(&run(&["--reveal-secrets"])));
    assert!(jwt.is_match(&run(&["--reveal-secrets", "--format", "json"])));
}

#[test]
fn logs_go_to_a_file_and_hold_no_secret() {
    let bin = env!("CARGO_BIN_EXE_chainview");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("chainview.log");
    let script = format!(
        "{}/assets/scenarios/lifecycle.chainview",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = std::process::Command::new(bin)
        .args(["--script", &script])
        .env_remove("AGENTWRIT_BROKER_URL")
        .env("CHAINVIEW_LOG", "debug")
        .env("CHAINVIEW_LOG_FILE", &log)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "nothing logged to the terminal");
    let text = std::fs::read_to_string(&log).expect("log file written");
    assert!(
        text.contains("broker call") && text.contains("/v1/delegate"),
        "{text}"
    );
    assert!(text.contains("embedded broker"));
    let jwt = regex_lite::Regex::new(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.").unwrap();
    assert!(!jwt.is_match(&text), "a token in the log");
    assert!(
        !regex_lite::Regex::new(r"[0-9a-f]{64}")
            .unwrap()
            .is_match(&text),
        "a 64-hex secret in the log"
    );
}
