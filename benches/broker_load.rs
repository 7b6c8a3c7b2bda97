//! Load benchmark: concurrent clients drive the embedded broker over loopback
//! HTTP and report requests/s and p50/p99 latency.
//!
//! Set-up (admin login, agents) goes through chainview's `BrokerClient`; the
//! load itself goes through lean keep-alive HTTP/1.1 connections (hyper's
//! low-level client, one per simulated client), like wrk, so that the load
//! generator takes as little of the shared 2 cores as possible.
//!
//!     cargo bench --bench broker_load              # 5 s per scenario, 32 clients
//!     LOAD_SECS=10 LOAD_CLIENTS=64 cargo bench --bench broker_load
//!
//! The broker runs as `chainview broker --data DIR` does (a data directory
//! in a temporary folder): a request is answered once its audit event is
//! committed and synced (group commit), every release/renewal revocation is
//! a synchronous insert. `LOAD_UNSYNCED=1` runs it as
//! `--power-loss-may-lose-events` (commits not synced).
//!
//! The load generator runs in the same process and on the same 2 cores as the
//! broker, so the figures include its cost too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chainview::broker::BrokerClient;
use chainview::broker::embedded::{Config, EmbeddedBroker};
use ed25519_dalek::{Signer, SigningKey};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::sync::Mutex;

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    addr: std::net::SocketAddr,
    send: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: std::net::SocketAddr) -> Conn {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).ok();
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        Conn { addr, send }
    }

    async fn call(
        &mut self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<String>,
    ) -> Option<(u16, Bytes)> {
        if self.send.ready().await.is_err() {
            *self = Conn::open(self.addr).await;
        }
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("content-type", "application/json");
        if let Some(t) = bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .ok()?;
        let resp = self.send.send_request(req).await.ok()?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.ok()?.to_bytes();
        Some((status, bytes))
    }
}

fn field(body: &Bytes, name: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get(name)?.as_str().map(str::to_string)
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Report {
    name: &'static str,
    ok: usize,
    errors: usize,
    secs: f64,
    /// CPU time (user + system) the whole process (broker and load
    /// generator) spent in the scenario.
    cpu: f64,
    lat: Vec<Duration>,
}

/// CPU seconds (user + system) used by this process so far. Divided by the
/// requests served it gives the CPU a request costs, which, unlike the rate,
/// hardly moves when other processes share the cores.
fn cpu_secs() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

impl Report {
    fn print(&mut self) {
        self.lat.sort_unstable();
        let pct = |p: f64| {
            if self.lat.is_empty() {
                Duration::ZERO
            } else {
                self.lat[((self.lat.len() as f64 * p) as usize).min(self.lat.len() - 1)]
            }
        };
        let per = self.cpu / self.ok.max(1) as f64;
        println!(
            "{:<22} {:>9.0} req/s   p50 {:>7.3} ms   p99 {:>7.3} ms   ({} ok, {} errors, {:.1} s; CPU {:.0} us/request, {:.2} cores used)",
            self.name,
            self.ok as f64 / self.secs,
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            self.ok,
            self.errors,
            self.secs,
            per * 1e6,
            self.cpu / self.secs,
        );
    }
}

/// Runs `op` from `clients` concurrent tasks for `secs`; each call is one request
/// (or, for the ceremony, one full ceremony).
async fn drive<F, Fut>(
    name: &'static str,
    addr: std::net::SocketAddr,
    clients: u64,
    secs: u64,
    op: F,
) -> Report
where
    F: Fn(Arc<Mutex<Conn>>, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let cpu0 = cpu_secs();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let op = op.clone();
        let conn = Arc::new(Mutex::new(Conn::open(addr).await));
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut err, mut lat) = (0usize, 0usize, Vec::with_capacity(1 << 16));
            let mut i = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                if op(conn.clone(), c * 1_000_000 + i).await {
                    ok += 1;
                } else {
                    err += 1;
                }
                lat.push(t.elapsed());
                i += 1;
            }
            (ok, err, lat)
        }));
    }
    let mut r = Report {
        name,
        ok: 0,
        errors: 0,
        secs: 0.0,
        cpu: 0.0,
        lat: Vec::new(),
    };
    for t in tasks {
        if let Ok((ok, err, lat)) = t.await {
            r.ok += ok;
            r.errors += err;
            r.lat.extend(lat);
        }
    }
    r.secs = start.elapsed().as_secs_f64();
    r.cpu = cpu_secs() - cpu0;
    r
}

fn main() {
    let secs = env_num("LOAD_SECS", 5);
    let clients = env_num("LOAD_CLIENTS", 32);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let data = tempfile::tempdir().expect("data dir");
        // LOAD_UNSYNCED=1: as --power-loss-may-lose-events (commits not synced).
        let unsynced = env_num("LOAD_UNSYNCED", 0) == 1;
        let cfg = Config {
            data_dir: Some(data.path().to_path_buf()),
            power_loss_may_lose_events: unsynced,
            ..Config::default()
        };
        let broker = EmbeddedBroker::start(cfg).await.expect("broker");
        let client = BrokerClient::new(&broker.url()).expect("client");
        let admin = client.admin_auth(broker.admin_secret()).await.expect("admin").access_token;
        let scope = vec!["read:data:*".to_string(), "write:data:*".to_string()];
        let a = client.create_agent(&admin, "load", "a", &scope, Some(3600)).await.expect("agent a");
        let b = client.create_agent(&admin, "load", "b", &scope, Some(3600)).await.expect("agent b");
        println!(
            "broker_load: {clients} concurrent clients, {secs} s per scenario, {} cores, --data {}, {}",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            data.path().display(),
            if unsynced { "commits not synced (--power-loss-may-lose-events)" } else { "each commit synced (durable default)" }
        );

        let addr = broker.addr();
        let body = serde_json::json!({ "token": a.access_token }).to_string();
        drive("validate", addr, clients, secs, move |conn, _| {
            let body = body.clone();
            async move {
                let r = conn.lock().await.call("POST", "/v1/token/validate", None, Some(body)).await;
                r.is_some_and(|(s, b)| s == 200 && b.starts_with(br#"{"valid":true"#))
            }
        })
        .await
        .print();

        let tok = Arc::new(a.access_token.clone());
        let body = serde_json::json!({ "delegate_to": b.agent_id, "scope": ["read:data:x"], "ttl": 60 }).to_string();
        drive("delegate", addr, clients, secs, move |conn, _| {
            let (tok, body) = (tok.clone(), body.clone());
            async move {
                let r = conn.lock().await.call("POST", "/v1/delegate", Some(&tok), Some(body)).await;
                r.is_some_and(|(s, _)| s == 200)
            }
        })
        .await
        .print();

        // The full ceremony: launch token + challenge + register (3 requests),
        // signing the hex-decoded nonce with a fresh Ed25519 key.
        let adm = Arc::new(admin.clone());
        drive("register ceremony", addr, clients, secs, move |conn, i| {
            let adm = adm.clone();
            async move {
                let mut conn = conn.lock().await;
                let lt_body = serde_json::json!({"agent_name": format!("load/{i}"), "allowed_scope": ["read:data:*"]}).to_string();
                let Some((201, lt)) = conn.call("POST", "/v1/admin/launch-tokens", Some(&adm), Some(lt_body)).await else { return false };
                let Some((200, ch)) = conn.call("GET", "/v1/challenge", None, None).await else { return false };
                let (Some(lt), Some(nonce)) = (field(&lt, "launch_token"), field(&ch, "nonce")) else { return false };
                let key = SigningKey::from_bytes(&rand::random());
                let Ok(raw) = hex::decode(&nonce) else { return false };
                let reg = serde_json::json!({
                    "launch_token": lt, "nonce": nonce,
                    "public_key": STANDARD.encode(key.verifying_key().to_bytes()),
                    "signature": STANDARD.encode(key.sign(&raw).to_bytes()),
                    "orch_id": "load", "task_id": format!("t{i}"), "requested_scope": ["read:data:x"],
                }).to_string();
                matches!(conn.call("POST", "/v1/register", None, Some(reg)).await, Some((200, _)))
            }
        })
        .await
        .print();
        // Churn: delegation rounds (short-lived tokens, each cached) between
        // validate rounds of a long-lived token issued before them all and of
        // one delegated in the first round, until 100,000 delegations (at
        // least three rounds). The verification cache keeps every issued
        // token until it expires, so validate should not fall off a cliff.
        let churn_secs = env_num("LOAD_CHURN_SECS", 2);
        let churn_target = env_num("LOAD_CHURN_DELEGATIONS", 100_000) as usize;
        let early = client
            .delegate(
                &a.access_token,
                &chainview::broker::types::DelegateRequest {
                    delegate_to: b.agent_id.clone(),
                    scope: vec!["read:data:x".to_string()],
                    ttl: Some(3600),
                },
            )
            .await
            .expect("early delegation")
            .access_token;
        let bodies = Arc::new([
            serde_json::json!({ "token": a.access_token }).to_string(),
            serde_json::json!({ "token": early }).to_string(),
        ]);
        let (mut delegated, mut round, mut worst) = (0usize, 0usize, f64::INFINITY);
        while round < 3 || (delegated < churn_target && round < 60) {
            round += 1;
            let tok = Arc::new(a.access_token.clone());
            let body = serde_json::json!({ "delegate_to": b.agent_id, "scope": ["read:data:x"], "ttl": 600 }).to_string();
            let d = drive("churn: delegate", addr, clients, churn_secs, move |conn, _| {
                let (tok, body) = (tok.clone(), body.clone());
                async move {
                    let r = conn.lock().await.call("POST", "/v1/delegate", Some(&tok), Some(body)).await;
                    r.is_some_and(|(s, _)| s == 200)
                }
            })
            .await;
            delegated += d.ok;
            let bodies = bodies.clone();
            let v = drive("churn: validate", addr, clients, churn_secs, move |conn, i| {
                let body = bodies[(i % 2) as usize].clone();
                async move {
                    let r = conn.lock().await.call("POST", "/v1/token/validate", None, Some(body)).await;
                    r.is_some_and(|(s, b)| s == 200 && b.starts_with(br#"{"valid":true"#))
                }
            })
            .await;
            let (dr, vr) = (d.ok as f64 / d.secs, v.ok as f64 / v.secs);
            worst = worst.min(vr);
            println!(
                "churn round {round:>2}: delegate {dr:>7.0} req/s ({} errors, {:.0} us CPU each), then validate {vr:>7.0} req/s ({} errors, {:.0} us CPU each, {:.2} cores used, {:.1}x the real broker's ~17,000); {delegated} delegations so far",
                d.errors,
                d.cpu / d.ok.max(1) as f64 * 1e6,
                v.errors,
                v.cpu / v.ok.max(1) as f64 * 1e6,
                v.cpu / v.secs,
                vr / 17_000.0
            );
        }
        println!(
            "churn: {delegated} delegations in {round} rounds; slowest validate round {worst:.0} req/s = {:.1}x the real broker's ~17,000 (target >= 4x)",
            worst / 17_000.0
        );

        let health = client.health().await.expect("health");
        broker.shutdown().await;
        let db = std::fs::metadata(data.path().join("broker.db")).map(|m| m.len()).unwrap_or(0)
            + std::fs::metadata(data.path().join("broker.db-wal")).map(|m| m.len()).unwrap_or(0);
        println!(
            "audit trail: {} events in SQLite ({:.1} MB on disk), db_connected {}",
            health.audit_events_count,
            db as f64 / 1e6,
            health.db_connected
        );
    });
}
