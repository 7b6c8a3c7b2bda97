//! Unauthenticated flood: what any client can make `chainview broker` keep.
//!
//! Starts the real binary (`chainview broker`, its own process, so its RSS
//! is the broker's alone) and drives a mix of requests that need no
//! credentials, at full speed from 32 keep-alive connections, for FLOOD_SECS
//! (default 60; docs/benchmarks.md's figure is 600):
//!
//! - `POST /v1/app/auth` with a unique 64 KiB `client_id` (every 50th: 1 MiB − 1 KiB)
//! - `POST /v1/token/renew` with an unsigned token whose `exp` is a 300 KB string
//! - `POST /v1/token/renew` with no Authorization header
//! - `POST /v1/admin/auth` with a wrong secret and a fresh `X-Forwarded-For`
//! - `GET /v1/challenge`
//!
//! The broker's RSS is sampled every 10 s; the run prints minute-by-minute
//! figures and the peak.
//!
//!     FLOOD_SECS=600 cargo bench --bench unauth_flood
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

#[path = "common/mod.rs"]
mod common;
use common::rss_mb;

fn main() {
    let secs: u64 = std::env::var("FLOOD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let mut child = Command::new(env!("CARGO_BIN_EXE_chainview"))
        .args(["broker", "--port", "0"])
        .env("AGENTWRIT_ADMIN_SECRET", "flood-admin-secret-0123456789")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chainview broker starts");
    let pid = child.id();
    let mut addr = None;
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    for line in lines.by_ref() {
        let line = line.expect("line");
        if let Some(u) = line.strip_prefix("export AGENTWRIT_BROKER_URL=http://") {
            addr = Some(u.parse::<std::net::SocketAddr>().expect("addr"));
            break;
        }
    }
    // Keep reading what the broker prints.
    std::thread::spawn(move || lines.for_each(drop));
    let addr = addr.expect("broker URL");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let start_rss = rss_mb(Some(pid));
    let sent = Arc::new(AtomicU64::new(0));
    let bytes_sent = Arc::new(AtomicU64::new(0));
    let begun = Instant::now();
    let deadline = begun + Duration::from_secs(secs);
    let forged = {
        let claims = URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":"{}"}}"#, "9".repeat(300_000)));
        Arc::new(format!("eyJhbGciOiJFZERTQSJ9.{claims}.AAAA"))
    };
    let samples = rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..32u64 {
            let (sent, bytes_sent, forged) = (sent.clone(), bytes_sent.clone(), forged.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let Ok((mut send, conn)) =
                        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
                    else {
                        continue;
                    };
                    tokio::spawn(conn);
                    while Instant::now() < deadline {
                        if send.ready().await.is_err() {
                            break;
                        }
                        i += 1;
                        let n = c * 1_000_000_000 + i;
                        let mut req = hyper::Request::builder().header("host", "x");
                        let body = match i % 5 {
                            0 => {
                                req = req.method("POST").uri("/v1/app/auth");
                                let size = if i.is_multiple_of(50) {
                                    (1 << 20) - 1024
                                } else {
                                    64 << 10
                                };
                                let id = format!("{n}-{}", "c".repeat(size));
                                format!(r#"{{"client_id":"{id}","client_secret":"x"}}"#)
                            }
                            1 => {
                                req = req
                                    .method("POST")
                                    .uri("/v1/token/renew")
                                    .header("authorization", format!("Bearer {forged}"));
                                String::new()
                            }
                            2 => {
                                req = req.method("POST").uri("/v1/token/renew");
                                String::new()
                            }
                            3 => {
                                req = req.method("POST").uri("/v1/admin/auth").header(
                                    "x-forwarded-for",
                                    format!(
                                        "10.{}.{}.{}",
                                        n % 251,
                                        (n / 251) % 251,
                                        (n / 63001) % 251
                                    ),
                                );
                                r#"{"secret":"wrong"}"#.to_string()
                            }
                            _ => {
                                req = req.method("GET").uri("/v1/challenge");
                                String::new()
                            }
                        };
                        bytes_sent.fetch_add(body.len() as u64, Ordering::Relaxed);
                        let Ok(req) = req.body(Full::new(Bytes::from(body))) else {
                            break;
                        };
                        match send.send_request(req).await {
                            Ok(resp) => {
                                let _ = resp.into_body().collect().await;
                                sent.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => break,
                        }
                    }
                }
            }));
        }
        let mut samples = Vec::new();
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(10).min(deadline - Instant::now())).await;
            let at = begun.elapsed().as_secs();
            let rss = rss_mb(Some(pid));
            if at % 60 < 10 || Instant::now() >= deadline {
                println!(
                    "unauth_flood: {at:>4} s  RSS {rss:6.1} MB  {} requests  {:.0} MB sent",
                    sent.load(Ordering::Relaxed),
                    bytes_sent.load(Ordering::Relaxed) as f64 / 1e6
                );
            }
            samples.push((at, rss));
        }
        for t in tasks {
            let _ = t.await;
        }
        samples
    });
    let peak = samples.iter().map(|s| s.1).fold(0.0, f64::max);
    let end = samples.last().map_or(0.0, |s| s.1);
    let total = sent.load(Ordering::Relaxed);
    println!(
        "unauth_flood: {secs} s, {total} requests ({:.0}/s), {:.0} MB of bodies; broker RSS {start_rss:.1} MB at start, {end:.1} MB at end, {peak:.1} MB peak",
        total as f64 / secs as f64,
        bytes_sent.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = child.kill();
    let _ = child.wait();
}
