//! Judgment at scale, on observe's synthetic trail (benches/observe.rs):
//!
//! * `check` over a 1,000,000-event trail against `observe --print json`
//!   on the same file, both through the release binary, best of three
//!   runs each, and the ratio (target: check adds at most 25 %);
//! * live mode: 1,000 new events folded, then the findings brought up to
//!   date by [`LiveCheck::update`] — over a 100,000-event reconstruction
//!   and over the whole trail (target: ≤ 5 ms), with the from-scratch
//!   `check` beside it.
//!
//!     cargo bench --bench judge
//!
//! `CHAINVIEW_BENCH_EVENTS` changes the size of the big trail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "common/trail.rs"]
mod trail;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chainview::broker::types::AuditEvent;
use chainview::judge::check::check;
use chainview::judge::live::LiveCheck;
use chainview::observe::Observed;

const BIN: &str = env!("CARGO_BIN_EXE_chainview");

fn timed(args: &[&str]) -> Duration {
    let t = Instant::now();
    let status = Command::new(BIN)
        .args(args)
        .env_remove("AGENTWRIT_BROKER_URL")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let d = t.elapsed();
    assert!(status.code().is_some_and(|c| c <= 1), "{args:?}: {status}");
    d
}

#[derive(serde::Deserialize)]
struct Page {
    events: Vec<AuditEvent>,
}

/// 1,000 events folded onto the first `base`, then the findings updated:
/// the update's time (median of `runs`), and a from-scratch check's.
fn poll(
    all: &[AuditEvent],
    base: usize,
    runs: usize,
) -> (Duration, Duration, usize, (usize, usize)) {
    let mut times = Vec::new();
    let mut scratch = Duration::ZERO;
    let mut findings = 0;
    let mut judged = (0, 0);
    for r in 0..runs {
        let start = base - r * 1000;
        let mut o = Observed::new();
        for e in &all[..start] {
            o.fold(&e.as_ref(), None);
        }
        let mut live = LiveCheck::new();
        live.update(&o);
        for e in &all[start..start + 1000] {
            o.fold(&e.as_ref(), None);
        }
        let t = Instant::now();
        live.update(&o);
        times.push(t.elapsed());
        findings = live.len();
        judged = live.judged;
        if r == 0 {
            let t = Instant::now();
            let all = check(&o, o.head().unwrap());
            scratch = t.elapsed();
            assert_eq!(all.len(), findings, "incremental equals from scratch");
        }
    }
    times.sort();
    (times[times.len() / 2], scratch, findings, judged)
}

fn main() {
    let n: usize = std::env::var("CHAINVIEW_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trail.json");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        trail::synthetic_trail(n, &mut w);
        std::io::Write::flush(&mut w).unwrap();
    }
    let f = path.to_str().unwrap();
    let observe = ["observe", "--from", f, "--print", "json"];
    let judge = [
        "check",
        "--from",
        f,
        "--format",
        "json",
        "--fail-on",
        "never",
    ];
    let (mut o_best, mut c_best) = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        o_best = o_best.min(timed(&observe));
        c_best = c_best.min(timed(&judge));
    }
    let ratio = c_best.as_secs_f64() / o_best.as_secs_f64();
    println!(
        "judge/check {n} events: observe --print json {:.2} s, check {:.2} s: check/observe = {ratio:.3} ({:+.1} %; target ≤ +25 %)",
        o_best.as_secs_f64(),
        c_best.as_secs_f64(),
        (ratio - 1.0) * 100.0
    );
    let bytes = std::fs::read(&path).unwrap();
    let all: Vec<AuditEvent> = serde_json::from_slice::<Page>(&bytes).unwrap().events;
    drop(bytes);
    for base in [100_000.min(n - 1000), n - 1000] {
        let (update, scratch, findings, (nodes, entries)) =
            poll(&all, base, if base > 200_000 { 1 } else { 5 });
        println!(
            "judge/live poll of 1000 events onto {base}: findings updated in {:.2} ms (target ≤ 5 ms; {nodes} tokens and {entries} revocation entries judged again); from scratch {:.1} ms; {findings} findings",
            update.as_secs_f64() * 1e3,
            scratch.as_secs_f64() * 1e3
        );
    }
}
