//! Hostile clients against the embedded broker, over real loopback TCP:
//! slow and idle connections, connection floods, numbers that meet time,
//! huge client-supplied strings, forged client IPs, whitespace around tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chainview::broker::BrokerClient;
use chainview::broker::embedded::{Config, EmbeddedBroker, MAX_DETAIL, Timeouts};
use chainview::broker::types::*;
use common::Env;
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn short_timeouts() -> Timeouts {
    Timeouts {
        read_header: Duration::from_millis(300),
        read: Duration::from_millis(600),
        write: Duration::from_secs(1),
        idle: Duration::from_millis(500),
    }
}

async fn broker(max_connections: usize) -> EmbeddedBroker {
    EmbeddedBroker::start(Config {
        timeouts: short_timeouts(),
        max_connections,
        ..Config::with_admin_secret("hostile-admin-secret")
    })
    .await
    .expect("broker")
}

/// Reads until the server closes the connection or `limit` passes; returns
/// what was read and whether it closed.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (String::from_utf8_lossy(&got).into(), false);
        }
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into(), false),
        }
    }
}

const HEALTH: &[u8] = b"GET /v1/health HTTP/1.1\r\nhost: x\r\n\r\n";

#[test]
fn default_timeouts_are_the_real_brokers() {
    let t = Timeouts::default();
    assert_eq!(
        (t.read_header, t.read, t.write, t.idle),
        (
            Duration::from_secs(5),
            Duration::from_secs(15),
            Duration::from_secs(30),
            Duration::from_secs(120)
        )
    );
}

#[tokio::test]
async fn slow_drip_headers_are_cut_off() {
    let b = broker(64).await;
    let mut s = TcpStream::connect(b.addr()).await.unwrap();
    let start = Instant::now();
    // One byte every 50 ms: the headers would take ~2 s to arrive.
    let drip = async {
        for byte in HEALTH {
            if s.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), drip).await;
    let (got, closed) = read_until_closed(&mut s, Duration::from_secs(2)).await;
    assert!(closed, "connection still open");
    assert!(
        !got.contains("200 OK"),
        "the dripped request was served: {got}"
    );
    assert!(start.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let b = broker(64).await;
    let mut s = TcpStream::connect(b.addr()).await.unwrap();
    s.write_all(HEALTH).await.unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let start = Instant::now();
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(closed, "idle connection kept open");
    assert!(start.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn a_body_that_never_arrives_is_a_400() {
    let b = broker(64).await;
    let mut s = TcpStream::connect(b.addr()).await.unwrap();
    s.write_all(
        b"POST /v1/token/validate HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"tok",
    )
    .await
    .unwrap();
    let (got, _) = read_until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(got.starts_with("HTTP/1.1 400"), "{got}");
    assert!(got.contains("failed to read request body"), "{got}");
}

/// A flood of idle connections cannot lock out a health check: the
/// longest-idle one makes room. Only when every connection is busy is a
/// newcomer refused, and only until the busy ones time out.
#[tokio::test]
async fn a_connection_flood_degrades_into_refusals_of_the_flood() {
    let b = broker(8).await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(b.addr()).await.unwrap();
        s.write_all(HEALTH).await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await;
        idle.push(s);
    }
    let client = BrokerClient::new(&b.url()).unwrap();
    assert!(
        client.health().await.is_ok(),
        "health check through an idle flood"
    );

    // Eight connections in the middle of their headers: all busy.
    let mut busy = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(b.addr()).await.unwrap();
        s.write_all(b"GET /v1/health HTTP/1.1\r\n").await.unwrap();
        busy.push(s);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut refused = TcpStream::connect(b.addr()).await.unwrap();
    refused.write_all(HEALTH).await.unwrap();
    let (got, closed) = read_until_closed(&mut refused, Duration::from_millis(250)).await;
    assert!(
        closed && got.is_empty(),
        "served while all were busy: {got}"
    );

    // The busy ones time out (header read); then service resumes.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        client.health().await.is_ok(),
        "health after the flood timed out"
    );
}

/// Every numeric field of every route, with any 64-bit value or a number no
/// i64 holds, over real HTTP: never a 5xx, never a dropped connection.
#[test]
fn numeric_fields_never_panic_or_drop_the_connection() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config as PtConfig, TestRunner};

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (b, client, admin, app_tok, agent, target, app_id) = rt.block_on(async {
        let b = broker(64).await;
        let client = BrokerClient::new(&b.url()).unwrap();
        let admin = client
            .admin_auth(b.admin_secret())
            .await
            .unwrap()
            .access_token;
        let app = client
            .create_app(
                &admin,
                &CreateAppRequest {
                    name: "numbers".into(),
                    scopes: vec!["read:data:*".into()],
                    token_ttl: None,
                },
            )
            .await
            .unwrap();
        let app_tok = client
            .app_auth(&app.client_id, app.client_secret.as_deref().unwrap())
            .await
            .unwrap()
            .access_token;
        let scope = vec!["read:data:*".to_string()];
        let agent = client
            .create_agent(&admin, "o", "t", &scope, None)
            .await
            .unwrap();
        let target = client
            .create_agent(&admin, "o", "t2", &scope, None)
            .await
            .unwrap();
        (b, client, admin, app_tok, agent, target, app.app_id)
    });
    let number = prop_oneof![
        Just("9223372036854775807".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("10000000000000".to_string()),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("1e19".to_string()),
        Just("-99999999999999999999".to_string()),
        Just("1.5".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        (-100_000i64..100_000).prop_map(|n| n.to_string()),
    ];
    let mut runner = TestRunner::new(PtConfig {
        cases: 200,
        failure_persistence: None,
        ..PtConfig::default()
    });
    runner
        .run(&(0usize..9, number), |(route, n)| {
            let (method, path, token, body): (Method, String, &str, String) = match route {
                0 => (
                    Method::POST,
                    "/v1/admin/launch-tokens".into(),
                    &admin,
                    format!(r#"{{"agent_name":"n","allowed_scope":["read:data:*"],"ttl":{n}}}"#),
                ),
                1 => (
                    Method::POST,
                    "/v1/admin/launch-tokens".into(),
                    &admin,
                    format!(r#"{{"agent_name":"n","allowed_scope":["read:data:*"],"max_ttl":{n}}}"#),
                ),
                2 => (
                    Method::POST,
                    "/v1/app/launch-tokens".into(),
                    &app_tok,
                    format!(r#"{{"agent_name":"n","allowed_scope":["read:data:*"],"ttl":{n},"max_ttl":{n}}}"#),
                ),
                3 => (
                    Method::POST,
                    "/v1/delegate".into(),
                    &agent.access_token,
                    format!(
                        r#"{{"delegate_to":"{}","scope":["read:data:x"],"ttl":{n}}}"#,
                        target.agent_id
                    ),
                ),
                4 => (
                    Method::POST,
                    "/v1/admin/apps".into(),
                    &admin,
                    format!(r#"{{"name":"n{}","scopes":["read:data:*"],"token_ttl":{n}}}"#, rand::random::<u32>()),
                ),
                5 => (
                    Method::PUT,
                    format!("/v1/admin/apps/{app_id}"),
                    &admin,
                    format!(r#"{{"token_ttl":{n}}}"#),
                ),
                6 => (Method::GET, format!("/v1/audit/events?limit={n}"), &admin, String::new()),
                7 => (Method::GET, format!("/v1/audit/events?offset={n}&limit=2"), &admin, String::new()),
                _ => (
                    Method::POST,
                    "/v1/admin/launch-tokens".into(),
                    &admin,
                    format!(r#"{{"agent_name":"n","allowed_scope":["read:data:*"],"ttl":{n},"max_ttl":{n},"single_use":false}}"#),
                ),
            };
            let auth = format!("Bearer {token}");
            let r = rt
                .block_on(client.send_raw(method, &path, &[("authorization", &auth)], Some(body.into_bytes())))
                .map_err(|e| TestCaseError::fail(format!("{path} {n}: connection failed: {e}")))?;
            prop_assert!(r.status < 500, "{} {}: {} {}", path, n, r.status, r.text());
            // A launch token made with any max_ttl still registers an agent
            // with a bounded lifetime.
            if route == 8 && r.status == 201 {
                let lt = r.json().unwrap()["launch_token"].as_str().unwrap().to_string();
                let key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
                let reg = rt.block_on(client.register_with_key(&lt, &key, "o", "t", &["read:data:x".to_string()]));
                if let Ok(reg) = reg {
                    prop_assert!(reg.expires_in > 0 && reg.expires_in <= 86400);
                }
            }
            Ok(())
        })
        .unwrap();
    rt.block_on(b.shutdown());
}

#[tokio::test]
async fn launch_token_ttls_past_go_durations_wrap_as_go_computes_them() {
    let env = Env::new().await;
    let admin = env.admin().await;
    for ttl in ["10000000000000", "9223372036854775807"] {
        let r = env
            .bearer(
                Method::POST,
                "/v1/admin/launch-tokens",
                &admin,
                Some(
                    serde_json::from_str(&format!(
                        r#"{{"agent_name":"x","allowed_scope":["read:data:*"],"ttl":{ttl}}}"#
                    ))
                    .unwrap(),
                ),
            )
            .await;
        assert_eq!(r.status, 201, "ttl {ttl}: {}", r.text());
        let at = r.json().unwrap()["expires_at"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(chrono::DateTime::parse_from_rfc3339(&at).is_ok(), "{at}");
    }
}

#[tokio::test]
async fn huge_client_strings_leave_a_bounded_trace() {
    let env = Env::new().await;
    let huge = "A".repeat(900_000);
    for i in 0..5 {
        let r = env
            .raw(
                Method::POST,
                "/v1/app/auth",
                &[],
                Some(json!({"client_id": format!("{i}{huge}"), "client_secret": "x"})),
            )
            .await;
        assert_eq!(r.status, 401);
    }
    // An unsigned token whose `exp` is a 300 KB string.
    let claims = URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":"{}"}}"#, "9".repeat(300_000)));
    let forged = format!("eyJhbGciOiJFZERTQSJ9.{claims}.AAAA");
    let r = env
        .bearer(Method::POST, "/v1/token/renew", &forged, None)
        .await;
    assert_eq!(r.status, 401);
    let admin = env.admin().await;
    let r = env
        .bearer(Method::GET, "/v1/audit/events?limit=1000", &admin, None)
        .await;
    assert!(
        r.body.len() < 100_000,
        "one audit page is {} bytes",
        r.body.len()
    );
    let page: AuditPage = serde_json::from_slice(&r.body).unwrap();
    for e in &page.events {
        assert!(
            e.detail.len() <= MAX_DETAIL + 40,
            "{}: {} bytes",
            e.event_type,
            e.detail.len()
        );
    }
    assert!(
        page.events
            .iter()
            .any(|e| e.event_type == "app_auth_failed")
    );
    assert_eq!(verify_audit_chain(&page.events), Ok(()));
}

#[tokio::test]
async fn forwarded_for_is_ignored_unless_behind_a_proxy() {
    // Default: X-Forwarded-For does not choose the rate-limit bucket.
    let b = EmbeddedBroker::start(Config::with_admin_secret("xff-admin-secret-0123"))
        .await
        .unwrap();
    let client = BrokerClient::new(&b.url()).unwrap();
    let mut statuses = Vec::new();
    for i in 0..11 {
        let ip = format!("198.51.100.{i}");
        let r = client
            .send_raw(
                Method::POST,
                "/v1/admin/auth",
                &[("x-forwarded-for", &ip)],
                Some(br#"{"secret":"wrong"}"#.to_vec()),
            )
            .await
            .unwrap();
        statuses.push(r.status);
    }
    assert_eq!(statuses[..10], [401; 10]);
    assert_eq!(
        statuses[10], 429,
        "a fresh X-Forwarded-For bypassed the limit"
    );
}

#[test]
fn short_admin_secrets_are_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chainview"))
        .args(["broker", "--port", "0", "--admin-secret", "hunter2"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least 16 characters"), "{err}");
    assert!(!err.contains("hunter2"), "the secret is echoed: {err}");
}

/// Under a low file-descriptor limit (`ulimit -n 256`), 400 idle keep-alive
/// connections still cannot lock anyone out: the cap follows the limit, so
/// idle connections are evicted before `accept` runs out of descriptors.
#[cfg(unix)]
#[test]
fn idle_connections_past_the_fd_limit_do_not_lock_everyone_out() {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 256 && exec {} broker --port 0",
            env!("CARGO_BIN_EXE_chainview")
        ))
        .env("AGENTWRIT_ADMIN_SECRET", "fd-limit-admin-secret")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(u) = line.strip_prefix("export AGENTWRIT_BROKER_URL=http://") {
            break u.to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let mut idle = Vec::new();
    let mut served = 0;
    for _ in 0..400 {
        let Ok(mut s) = std::net::TcpStream::connect(&addr) else {
            break;
        };
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        if s.write_all(HEALTH).is_ok() {
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).unwrap_or(0);
            if String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200") {
                served += 1;
            }
        }
        idle.push(s);
        if served < idle.len() {
            break; // one was not answered: no need to wait for the rest
        }
    }
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(HEALTH).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(served, 400, "connection {} was never answered", served + 1);
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "health check after 400 idle connections under ulimit -n 256: {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
}
