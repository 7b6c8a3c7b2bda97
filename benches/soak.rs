//! Soak: 100 concurrent agents, each looping register → three delegations →
//! validate → release, against the embedded broker for SOAK_SECS (default
//! 600), with the process's resident memory measured every minute. The
//! broker keeps its data as `chainview broker --data DIR` does (DIR a
//! temporary folder). Documented in docs/benchmarks.md; not run in CI.
//!
//!     SOAK_SECS=600 cargo bench --bench soak
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chainview::broker::BrokerClient;
use chainview::broker::embedded::{Config, EmbeddedBroker};
use chainview::broker::types::{AuditQuery, DelegateRequest, verify_audit_chain};

#[path = "common/mod.rs"]
mod common;
use common::rss_mb;

fn main() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let data = tempfile::tempdir().expect("data dir");
        let cfg = Config { data_dir: Some(data.path().to_path_buf()), ..Config::default() };
        let broker = EmbeddedBroker::start(cfg).await.expect("broker");
        let client = BrokerClient::new(&broker.url()).expect("client");
        let admin = client.admin_auth(broker.admin_secret()).await.expect("admin").access_token;
        let scope = vec!["read:data:*".to_string()];
        let target = client.create_agent(&admin, "soak", "target", &scope, Some(86400)).await.expect("target");
        let start_rss = rss_mb(None);
        let begun = Instant::now();
        let deadline = begun + Duration::from_secs(secs);
        let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(u64, f64)>::new()));
        {
            let samples = samples.clone();
            tokio::spawn(async move {
                let mut minute = 0;
                while Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    minute += 1;
                    let rss = rss_mb(None);
                    println!("soak: minute {minute}: RSS {rss:.1} MB");
                    samples.lock().expect("samples").push((minute, rss));
                }
            });
        }
        // One admin token for all, replaced every 100 s by one task (admin
        // logins are rate-limited per IP; the old token stays valid until it expires).
        let shared = std::sync::Arc::new(tokio::sync::RwLock::new(admin.clone()));
        {
            let (client, shared) = (client.clone(), shared.clone());
            let secret = broker.admin_secret().to_string();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_secs(100)).await;
                    if let Ok(r) = client.admin_auth(&secret).await {
                        *shared.write().await = r.access_token;
                    }
                }
            });
        }
        let mut tasks = Vec::new();
        for a in 0..100u64 {
            let (client, to, scope) = (client.clone(), target.agent_id.clone(), scope.clone());
            let shared = shared.clone();
            tasks.push(tokio::spawn(async move {
                let (mut rounds, mut errors) = (0u64, 0u64);
                while Instant::now() < deadline {
                    let admin = shared.read().await.clone();
                    let ok: Result<(), chainview::broker::ClientError> = async {
                        let ag = client.create_agent(&admin, "soak", &format!("a{a}-{rounds}"), &scope, None).await?;
                        let mut tok = ag.access_token.clone();
                        for _ in 0..3 {
                            tok = client.delegate(&tok, &DelegateRequest { delegate_to: to.clone(), scope: scope.clone(), ttl: Some(5) }).await?.access_token;
                        }
                        client.validate(&tok).await?;
                        client.release(&ag.access_token).await
                    }
                    .await;
                    rounds += 1;
                    if ok.is_err() {
                        errors += 1;
                    }
                }
                (rounds, errors)
            }));
        }
        let (mut rounds, mut errors) = (0, 0);
        for t in tasks {
            if let Ok((r, e)) = t.await {
                rounds += r;
                errors += e;
            }
        }
        let end_rss = rss_mb(None);
        let samples = samples.lock().expect("samples").clone();
        let peak = samples.iter().map(|s| s.1).fold(end_rss, f64::max);
        let mut admin = client.admin_auth(broker.admin_secret()).await.expect("admin").access_token;
        let total = client.audit_events(&admin, &AuditQuery { limit: Some(1), ..Default::default() }).await.expect("audit").total;
        let mut all = Vec::new();
        let mut offset = 0;
        let mut pages = 0;
        while offset < total {
            pages += 1;
            if pages % 100 == 0 {
                admin = client.admin_auth(broker.admin_secret()).await.expect("admin").access_token;
            }
            let p = client.audit_events(&admin, &AuditQuery { limit: Some(1000), offset: Some(offset), ..Default::default() }).await.expect("page");
            offset += p.events.len() as i64;
            all.extend(p.events);
        }
        println!(
            "soak: {secs} s, 100 agents: {rounds} rounds ({:.0}/s), {errors} errors; audit {total} events, chain {}; RSS {start_rss:.1} MB at start, {:.1} MB at minute 1, {end_rss:.1} MB at end, {peak:.1} MB peak",
            rounds as f64 / secs as f64,
            if verify_audit_chain(&all).is_ok() { "verifies" } else { "BROKEN" },
            samples.first().map_or(end_rss, |s| s.1),
        );
        broker.shutdown().await;
    });
}
