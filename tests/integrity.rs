//! Integrity claims that hold (issue 26): what `observe` and `audit dump`
//! say about a trail — consistent, cut, matching a checkpoint — over real
//! files and real loopback HTTP, against a hostile audit server that lies
//! about its total, repeats events and sends ids going backwards, and the
//! explorer's audit step on a broker holding more than one read takes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/clean.rs"]
mod clean;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chainview::broker::types::AuditEvent;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_chainview");

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real-broker-audit/audit.json")
}

fn fixture_events() -> Vec<AuditEvent> {
    let v: Value = serde_json::from_slice(&std::fs::read(fixture()).unwrap()).unwrap();
    serde_json::from_value(v["events"].clone()).unwrap()
}

use clean::run;

fn summary(stdout: &str) -> Value {
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

fn write_dump(path: &Path, events: &[AuditEvent], total: usize) {
    let v = serde_json::json!({"events": events, "total": total});
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// Recomputes every hash from `from` on: a rewrite the chain alone cannot tell.
fn rechain(events: &mut [AuditEvent], from: usize) {
    for i in from..events.len() {
        if i > 0 {
            events[i].prev_hash = events[i - 1].hash.clone();
        }
        events[i].hash = events[i].compute_hash();
    }
}

fn observe_json(file: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "observe",
        "--from",
        file.to_str().unwrap(),
        "--print",
        "json",
    ];
    args.extend_from_slice(extra);
    run(&args, &[])
}

#[test]
fn a_dump_whose_total_says_more_is_cut_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("cut.json");
    let all = fixture_events();
    write_dump(&f, &all[..60], 136);
    let (code, out, err) = observe_json(&f, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("the trail is cut: its total says 136 events but the events read reach only 60 (the last 76 are missing)"),
        "{err}"
    );
    let s = summary(&out);
    assert_eq!(s["hash_chain"], "consistent", "the chain alone cannot tell");
    assert_eq!(
        (s["total"].as_u64(), s["tail_cut"].as_bool()),
        (Some(136), Some(true))
    );
    assert_eq!(s["integrity"], "failed");
    // Text says it too, and nothing says "verified".
    let (code, text, _) = run(
        &["observe", "--from", f.to_str().unwrap(), "--print", "text"],
        &[],
    );
    assert_eq!(code, 1);
    assert!(text.contains("INTEGRITY: the trail is cut"), "{text}");
    assert!(!text.contains("verified"), "{text}");
}

#[test]
fn a_trail_from_mid_way_is_consistent_but_never_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("late.json");
    let all = fixture_events();
    std::fs::write(&f, serde_json::to_string(&all[9..]).unwrap()).unwrap();
    let (code, text, err) = run(
        &["observe", "--from", f.to_str().unwrap(), "--print", "text"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let head = text.lines().next().unwrap();
    assert!(head.contains("hash chain consistent over 127 events from evt-000010 — the trail does not start at the broker's first event"), "{head}");
    assert!(
        !text.contains("end to end") && !text.contains("verified"),
        "{text}"
    );
    assert!(
        text.contains("note: the trail starts at evt-000010"),
        "{text}"
    );
    let (_, out, _) = observe_json(&f, &[]);
    let s = summary(&out);
    assert_eq!(s["from_genesis"], false);
    assert!(
        s["notes"][0]
            .as_str()
            .unwrap()
            .contains("not the broker's first event")
    );
}

#[test]
fn repeated_or_backwards_ids_are_an_integrity_failure() {
    let dir = tempfile::tempdir().unwrap();
    let all = fixture_events();
    let f = dir.path().join("again.json");
    // The same events twice: each one's hash and link still check out in
    // itself, only the ids tell.
    let twice = [&all[..], &all[..]].concat();
    std::fs::write(&f, serde_json::to_string(&twice).unwrap()).unwrap();
    let (code, out, err) = observe_json(&f, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("BROKEN at evt-000001: the ids go backwards (evt-000001 after evt-000136)"),
        "{err}"
    );
    assert_eq!(summary(&out)["first_broken"], "evt-000001");
    let f = dir.path().join("repeat.json");
    let mut rep = all[..20].to_vec();
    rep.insert(10, all[9].clone());
    std::fs::write(&f, serde_json::to_string(&rep).unwrap()).unwrap();
    let (code, _, err) = observe_json(&f, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("BROKEN at evt-000010: the id repeats"),
        "{err}"
    );
}

#[test]
fn nodes_built_at_or_after_the_first_break_are_marked() {
    let text = std::fs::read_to_string(fixture()).unwrap();
    let tampered = text.replacen(
        "requested=[read:data:payroll]",
        "requested=[read:data:other]",
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("t.json");
    std::fs::write(&f, tampered).unwrap();
    let (code, out, _) = observe_json(&f, &[]);
    assert_eq!(code, 1);
    let nodes: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["kind"] == "node")
        .collect();
    let num = |v: &Value| v["event"].as_str().unwrap()[4..].parse::<u32>().unwrap();
    assert!(nodes.iter().any(|n| num(n) < 62) && nodes.iter().any(|n| num(n) >= 62));
    for n in &nodes {
        assert_eq!(n["consistent"].as_bool(), Some(num(n) < 62), "{n}");
    }
    let (_, text, _) = run(
        &["observe", "--from", f.to_str().unwrap(), "--print", "text"],
        &[],
    );
    let marked = text
        .lines()
        .filter(|l| l.contains("⚠ unverified: at or after the break at evt-000062"))
        .count();
    assert_eq!(
        marked,
        nodes.iter().filter(|n| num(n) >= 62).count(),
        "{text}"
    );
}

/// `observe --from T --print json --checkpoint C` twice → 0; a truncated
/// copy → 1; a copy rewritten with a recomputed chain → 1.
#[test]
fn a_checkpoint_catches_truncation_and_a_consistent_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let cp = dir.path().join("trail.checkpoint");
    let c = cp.to_str().unwrap();
    let t = fixture();
    let (code, _, err) = observe_json(&t, &["--checkpoint", c]);
    assert_eq!(code, 0, "{err}");
    let saved: Value = serde_json::from_slice(&std::fs::read(&cp).unwrap()).unwrap();
    assert_eq!(saved["id"], "evt-000136");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&cp).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let (code, out, err) = observe_json(&t, &["--checkpoint", c]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("the trail matches checkpoint"), "{err}");
    assert!(
        summary(&out)["checkpoint"]
            .as_str()
            .unwrap()
            .starts_with("matches checkpoint")
    );

    // Truncated, with its total made to agree: only the checkpoint tells.
    let all = fixture_events();
    let short = dir.path().join("short.json");
    write_dump(&short, &all[..100], 100);
    let (code, out, err) = observe_json(&short, &["--checkpoint", c]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("the trail ends at evt-000100, before the checkpoint's evt-000136"),
        "{err}"
    );
    assert!(err.contains(c), "names the checkpoint: {err}");
    assert_eq!(summary(&out)["hash_chain"], "consistent");

    // Rewritten at evt-000066 and re-hashed from there: consistent, and wrong.
    let mut rewritten = all.clone();
    rewritten[65].detail = rewritten[65]
        .detail
        .replace("read:data:reports", "read:data:*");
    assert_ne!(rewritten[65].detail, all[65].detail);
    rechain(&mut rewritten, 65);
    let rw = dir.path().join("rewritten.json");
    write_dump(&rw, &rewritten, 136);
    let (code, out, err) = observe_json(&rw, &[]);
    assert_eq!(code, 0, "the chain alone cannot tell: {err}");
    assert_eq!(summary(&out)["hash_chain"], "consistent");
    let (code, _, err) = observe_json(&rw, &["--checkpoint", c]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("does not match checkpoint") && err.contains("at evt-000136"),
        "{err}"
    );
    // A failed run leaves the checkpoint where it was.
    let again: Value = serde_json::from_slice(&std::fs::read(&cp).unwrap()).unwrap();
    assert_eq!(again["hash"], saved["hash"]);

    // A longer trail that still holds the checkpoint's event advances it.
    let mut longer = all.clone();
    let mut next = all[135].clone();
    next.id = "evt-000137".into();
    longer.push(next);
    rechain(&mut longer, 136);
    let lf = dir.path().join("longer.json");
    write_dump(&lf, &longer, 137);
    let (code, _, err) = observe_json(&lf, &["--checkpoint", c]);
    assert_eq!(code, 0, "{err}");
    let advanced: Value = serde_json::from_slice(&std::fs::read(&cp).unwrap()).unwrap();
    assert_eq!(advanced["id"], "evt-000137");
    // A checkpoint that is not one is bad input.
    std::fs::write(&cp, "not json").unwrap();
    let (code, _, err) = observe_json(&t, &["--checkpoint", c]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a chainview checkpoint"), "{err}");
}

// ---- A hostile audit server over loopback HTTP. ----

#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// Holds 60 events, says its total is 136, then sends empty pages.
    LiesAboutTotal,
    /// Ignores the offset: the same first page every time.
    SameEventsAgain,
    /// Each page starts with the last event of the page before.
    Overlaps,
    /// Ids going backwards within a page.
    Backwards,
    /// New, valid, chained events for ever, with a total that keeps ahead.
    Endless,
    /// The chain breaks on the second page, and the total says there is much more.
    BreaksWhileCatchingUp,
    /// Says it holds 5 events and sends none.
    NothingButTotal,
}

/// A valid trail of `n` events from genesis.
fn chain(n: usize) -> Vec<AuditEvent> {
    let mut prev = "0".repeat(64);
    (1..=n)
        .map(|i| {
            let mut e = AuditEvent {
                id: format!("evt-{i:06}"),
                timestamp: format!("2026-11-26T10:{:02}:{:02}Z", (i / 60) % 60, i % 60),
                event_type: "admin_auth".into(),
                detail: "admin authenticated as admin".into(),
                outcome: "success".into(),
                prev_hash: prev.clone(),
                ..AuditEvent::default()
            };
            e.hash = e.compute_hash();
            prev = e.hash.clone();
            e
        })
        .collect()
}

struct Server {
    url: String,
    /// Audit pages asked for.
    pages: Arc<AtomicUsize>,
    _rt: tokio::runtime::Runtime,
}

fn query(uri: &hyper::Uri, key: &str) -> Option<usize> {
    uri.query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))?
        .parse()
        .ok()
}

fn page(mode: Hostile, all: &[AuditEvent], offset: usize, limit: usize) -> Value {
    let limit = limit.clamp(1, 1000);
    let slice = |from: usize, n: usize| -> Vec<AuditEvent> {
        all.iter().skip(from).take(n).cloned().collect()
    };
    let (events, total) = match mode {
        Hostile::LiesAboutTotal => (
            slice(offset, limit.min(60usize.saturating_sub(offset))),
            136,
        ),
        Hostile::SameEventsAgain => (slice(0, 100), 1_000_000),
        Hostile::Overlaps => (slice(offset.saturating_sub(1), 100), 1_000_000),
        Hostile::Backwards => {
            let mut v = slice(offset, 50);
            v.reverse();
            (v, 1_000_000)
        }
        Hostile::Endless => (slice(offset, limit), 1_000_000_000),
        Hostile::BreaksWhileCatchingUp => {
            let mut v = slice(offset, limit);
            if offset > 0
                && let Some(e) = v.get_mut(3)
            {
                e.detail = "admin authenticated as mallory".into();
            }
            (v, 50_000)
        }
        Hostile::NothingButTotal => (Vec::new(), 5),
    };
    serde_json::json!({"events": events, "total": total, "offset": offset, "limit": limit})
}

fn hostile(mode: Hostile) -> Server {
    use http_body_util::Full;
    use hyper::body::Bytes;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let pages = Arc::new(AtomicUsize::new(0));
    let all = Arc::new(chain(6000));
    let counter = pages.clone();
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (all, counter) = (all.clone(), counter.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (all, counter) = (all.clone(), counter.clone());
                    async move {
                        let body = if req.uri().path() == "/v1/admin/auth" {
                            serde_json::json!({"access_token": "hostile", "expires_in": 300, "token_type": "Bearer"})
                        } else {
                            counter.fetch_add(1, Ordering::SeqCst);
                            let offset = query(req.uri(), "offset").unwrap_or(0);
                            let limit = query(req.uri(), "limit").unwrap_or(100);
                            page(mode, &all, offset, limit)
                        };
                        let resp = hyper::Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(body.to_string())))
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    Server {
        url,
        pages,
        _rt: rt,
    }
}

fn against(s: &Server, args: &[&str]) -> (i32, String, String) {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--broker", &s.url]);
    run(&all, &[("AGENTWRIT_ADMIN_SECRET", "hostile-admin-secret")])
}

#[test]
fn a_broker_that_lies_about_its_total_is_named_and_not_read_for_ever() {
    let s = hostile(Hostile::LiesAboutTotal);
    let (code, out, err) = against(&s, &["observe", "--print", "json"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("the broker says its trail holds 136 events but sends none after the first 60: its total does not hold"),
        "{err}"
    );
    assert!(err.contains(&s.url), "names the broker: {err}");
    let sm = summary(&out);
    assert_eq!(
        (sm["events_read"].as_u64(), sm["integrity"].as_str()),
        (Some(60), Some("failed"))
    );
    assert!(
        s.pages.load(Ordering::SeqCst) <= 3,
        "{} pages",
        s.pages.load(Ordering::SeqCst)
    );
    // audit dump: the file is whole JSON, with the broker's own total in it.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("dump.json");
    let (code, _, err) = against(&s, &["audit", "dump", "--out", f.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("its total does not hold"), "{err}");
    let (code, _, err) = observe_json(&f, &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("the trail is cut"),
        "the saved total tells later: {err}"
    );
}

#[test]
fn a_broker_whose_total_holds_no_events_is_an_integrity_failure_not_bad_input() {
    let s = hostile(Hostile::NothingButTotal);
    let (code, out, err) = against(&s, &["observe", "--print", "json"]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("holds 5 events but sends none after the first 0"),
        "{err}"
    );
    assert!(s.pages.load(Ordering::SeqCst) <= 2);
}

#[test]
fn a_broker_sending_the_same_events_again_is_stopped_at_once() {
    for (mode, said) in [
        (
            Hostile::SameEventsAgain,
            "BROKEN at evt-000001: the ids go backwards (evt-000001 after evt-000100)",
        ),
        (Hostile::Overlaps, "BROKEN at evt-000100: the id repeats"),
    ] {
        let s = hostile(mode);
        let (code, _, err) = against(&s, &["observe", "--print", "json"]);
        assert_eq!(code, 1, "{mode:?}: {err}");
        assert!(err.contains(said), "{mode:?}: {err}");
        // A page that does not continue the one before ends the worker's
        // batch; one that repeats the last event read is named when the
        // batch arrives. Two polls at most.
        let n = s.pages.load(Ordering::SeqCst);
        assert!(n <= 2 + chainview::watch::POLL_PAGES, "{mode:?}: {n} pages");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("dump.json");
        let (code, _, err) = against(&s, &["audit", "dump", "--out", f.to_str().unwrap()]);
        assert_eq!(code, 1, "{mode:?}: {err}");
        assert!(err.contains(said), "{mode:?}: {err}");
    }
}

#[test]
fn ids_going_backwards_stop_the_reading() {
    let s = hostile(Hostile::Backwards);
    let (code, _, err) = against(&s, &["observe", "--print", "text"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("BROKEN at evt-000049: the ids go backwards (evt-000049 after evt-000050)"),
        "{err}"
    );
    assert!(
        s.pages.load(Ordering::SeqCst) <= 2,
        "{} pages",
        s.pages.load(Ordering::SeqCst)
    );
}

#[test]
fn an_endless_broker_is_read_up_to_the_cap_only() {
    let s = hostile(Hostile::Endless);
    let (code, out, err) = against(&s, &["observe", "--print", "json", "--max-events", "2500"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("stopped reading at the cap of 2500 events"),
        "{err}"
    );
    assert!(err.contains("--max-events raises it"), "{err}");
    assert_eq!(summary(&out)["events_read"], 2500);
    assert!(
        s.pages.load(Ordering::SeqCst) <= 4,
        "{} pages",
        s.pages.load(Ordering::SeqCst)
    );
}

#[test]
fn a_chain_that_breaks_while_catching_up_stops_the_reading_there() {
    let s = hostile(Hostile::BreaksWhileCatchingUp);
    let (code, out, err) = against(&s, &["observe", "--print", "json"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("BROKEN at evt-001004: its hash does not match its contents"),
        "{err}"
    );
    let sm = summary(&out);
    assert_eq!(sm["events_read"], 1004, "nothing read past the break");
    assert_eq!(sm["first_broken"], "evt-001004");
    // One poll's batch of pages at most: the follower asks no more.
    let n = s.pages.load(Ordering::SeqCst);
    assert!(n <= chainview::watch::POLL_PAGES, "{n} pages");
}

/// The live follower (what the interactive observer polls through) stops
/// for good with a clear message, and polls no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_follower_stops_with_a_message_and_polls_no_more() {
    use chainview::watch::Live;
    let s = tokio::task::spawn_blocking(|| hostile(Hostile::SameEventsAgain))
        .await
        .unwrap();
    let settings = chainview::session::Settings {
        broker_url: Some(s.url.clone()),
        admin_secret: Some("hostile-admin-secret".into()),
        ..Default::default()
    };
    let mut live = Live::connect(&settings).await.unwrap();
    let mut read = 0;
    for _ in 0..50 {
        if !live.poll() {
            break;
        }
        let ev = live.worker.events.recv().await.unwrap();
        let (events, _) = live.take(ev.outcome).unwrap().unwrap();
        read += events.len();
    }
    let why = live.stopped().unwrap();
    assert!(why.contains("the ids go backwards"), "{why}");
    assert!(why.starts_with(&s.url), "{why}");
    assert!(!live.poll(), "stopped for good");
    assert!(read <= 101, "{read}");
    let n = s.pages.load(Ordering::SeqCst);
    assert!(n <= 4, "{n} pages");
    tokio::task::spawn_blocking(move || drop(s)).await.unwrap();
}

// ---- The explorer's audit step and view on a trail longer than a read. ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_step_and_view_say_when_they_were_cut() {
    use chainview::scenario::{parse, replay::Replay};
    use chainview::worker::ReadCap;
    let script = parse(
        "t.chainview",
        "app ceiling=read:data:*\naudit\nexpect audit admin_auth count>=1\nexpect audit token_auth_failed count<=5\nexpect audit token_auth_failed count>=1000\n",
    )
    .unwrap();
    let settings = chainview::session::Settings {
        audit_cap: ReadCap::events(100),
        ..Default::default()
    };
    let mut replay = Replay::start(script, &settings).await.unwrap();
    // Before the script: 300 refused calls, so the trail's first events
    // hold no admin login and the cap cuts it.
    let http = reqwest::Client::new();
    for _ in 0..300 {
        let r = http
            .get(format!("{}/v1/audit/events", replay.target.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let mut reports = Vec::new();
    while let Some(r) = replay.next().await {
        reports.push(r);
    }
    let audit = reports[1].audit.clone().unwrap();
    assert_eq!(audit.read, 100);
    assert!(
        audit.total > 300,
        "the broker's total, not what was read: {}",
        audit.total
    );
    let cut = audit.cut.clone().unwrap();
    assert_eq!(cut, format!("the newest 100 of {} events", audit.total));
    let verdicts: Vec<_> = reports[2..]
        .iter()
        .map(|r| r.expectation.clone().unwrap())
        .collect();
    assert!(verdicts[0].ok, "{}", verdicts[0].reason);
    assert!(
        verdicts[0].reason.contains("in the newest 100 of"),
        "{}",
        verdicts[0].reason
    );
    assert!(!verdicts[1].ok, "{}", verdicts[1].reason);
    assert!(
        verdicts[1].reason.contains("judged on the events read"),
        "{}",
        verdicts[1].reason
    );
    assert!(!verdicts[2].ok);
    assert!(
        verdicts[2].reason.contains("cannot be judged"),
        "{}",
        verdicts[2].reason
    );
    // The A view says it too.
    let mut view = chainview::view::View::new(Some(replay.script()), true);
    view.handle_key(
        &replay.driver.app,
        crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Char('A'),
            crossterm::event::KeyModifiers::NONE,
        ),
    );
    let screen = chainview::ui::render_text(
        &replay.driver.app,
        &mut view,
        160,
        30,
        chainview::app::unix_now(),
    )
    .join("\n");
    assert!(screen.contains("CUT: the newest 100 of"), "{screen}");
    assert!(
        screen.contains("✓ hash chain consistent over 100 events from evt-"),
        "{screen}"
    );
    let _ = replay.finish().await;
}

/// `--checkpoint` against a live broker: observe headless and `audit dump`
/// share the file; a run after more events advances it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_broker_matches_its_checkpoint_run_after_run() {
    use chainview::broker::embedded::{Config, EmbeddedBroker};
    let secret = "integrity-test-admin-secret";
    let broker = EmbeddedBroker::start(Config::with_admin_secret(secret))
        .await
        .unwrap();
    let url = broker.url();
    let result = tokio::task::spawn_blocking(move || {
        let env = [
            ("AGENTWRIT_BROKER_URL", url.as_str()),
            ("AGENTWRIT_ADMIN_SECRET", secret),
        ];
        let dir = tempfile::tempdir().unwrap();
        let cp = dir.path().join("live.checkpoint");
        let c = cp.to_str().unwrap();
        let first = run(&["observe", "--print", "json", "--checkpoint", c], &env);
        let id1: Value = serde_json::from_slice(&std::fs::read(&cp).unwrap()).unwrap();
        // Each run logs in as admin: the trail grows, the checkpoint holds.
        let second = run(&["observe", "--print", "json", "--checkpoint", c], &env);
        let id2: Value = serde_json::from_slice(&std::fs::read(&cp).unwrap()).unwrap();
        let out = dir.path().join("dump.json");
        let dump = run(
            &[
                "audit",
                "dump",
                "--out",
                out.to_str().unwrap(),
                "--checkpoint",
                c,
            ],
            &env,
        );
        let id3: Value = serde_json::from_slice(&std::fs::read(&cp).unwrap()).unwrap();
        // The saved trail read back against the same checkpoint.
        let offline = observe_json(&out, &["--checkpoint", c]);
        (first, second, dump, offline, [id1, id2, id3])
    })
    .await
    .unwrap();
    let (first, second, dump, offline, ids) = result;
    assert_eq!(first.0, 0, "{}", first.2);
    assert_eq!(second.0, 0, "{}", second.2);
    assert!(
        second.2.contains("the trail matches checkpoint"),
        "{}",
        second.2
    );
    assert_eq!(dump.0, 0, "{}", dump.2);
    assert!(
        dump.2.contains("the trail matches checkpoint"),
        "{}",
        dump.2
    );
    assert_eq!(offline.0, 0, "{}", offline.2);
    let n = |v: &Value| v["id"].as_str().unwrap()[4..].parse::<u32>().unwrap();
    assert!(
        n(&ids[0]) < n(&ids[1]) && n(&ids[1]) < n(&ids[2]),
        "{ids:?}"
    );
    broker.shutdown().await;
}

// ---- In a real terminal: the status bar and the exit code. ----

/// chainview in a pseudo-terminal, its screen read through vt100.
struct Pty {
    parser: Arc<std::sync::Mutex<vt100::Parser>>,
    raw: Arc<std::sync::Mutex<Vec<u8>>>,
    writer: Box<dyn std::io::Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

const PTY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Pty {
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Pty {
        use portable_pty::{CommandBuilder, PtySize, native_pty_system};
        let (rows, cols) = (30, 220);
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = CommandBuilder::new(BIN);
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        cmd.env("NO_COLOR", "1");
        for v in [
            "AGENTWRIT_BROKER_URL",
            "AGENTWRIT_CLIENT_ID",
            "AGENTWRIT_CLIENT_SECRET",
            "AGENTWRIT_ADMIN_SECRET",
        ] {
            cmd.env_remove(v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let size = |n: u16| std::num::NonZeroU16::new(n).unwrap();
        let parser = Arc::new(std::sync::Mutex::new(vt100::Parser::new(
            size(rows),
            size(cols),
            0,
        )));
        let raw = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut reader = pair.master.try_clone_reader().unwrap();
        {
            let (parser, raw) = (parser.clone(), raw.clone());
            std::thread::spawn(move || {
                use std::io::Read;
                let mut buf = [0u8; 8192];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    parser.lock().unwrap().process(&buf[..n]);
                    raw.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        Pty {
            parser,
            raw,
            writer: pair.master.take_writer().unwrap(),
            child,
            _master: pair.master,
        }
    }

    fn screen(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Waits until the screen shows `text`.
    fn wait_for(&self, text: &str) -> String {
        let start = std::time::Instant::now();
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(
                start.elapsed() < PTY_WAIT,
                "timed out waiting for {text:?}:\n{s}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Presses q; the exit code and everything written.
    fn quit(mut self) -> (u32, String) {
        self.writer.write_all(b"q").unwrap();
        self.writer.flush().unwrap();
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > PTY_WAIT {
                let _ = self.child.kill();
                panic!("chainview did not exit after q:\n{}", self.screen());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        // What was written last reaches the reader once the child is gone.
        let start = std::time::Instant::now();
        let out = loop {
            let out = String::from_utf8_lossy(&self.raw.lock().unwrap()).into_owned();
            if out.contains("\x1b[?1049l") || start.elapsed() > PTY_WAIT {
                break out;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        (status.exit_code(), out)
    }
}

#[test]
fn the_interactive_observer_says_why_it_stopped_and_exits_1() {
    let s = hostile(Hostile::SameEventsAgain);
    let t = Pty::spawn(
        &["observe", "--broker", &s.url, "--interval", "0.3"],
        &[("AGENTWRIT_ADMIN_SECRET", "hostile-admin-secret")],
    );
    let screen = t.wait_for("BROKEN at evt-000001: the ids go backwards");
    assert!(!screen.contains("verified"), "{screen}");
    assert!(s.pages.load(Ordering::SeqCst) <= 4);
    let (code, out) = t.quit();
    assert_eq!(code, 1, "{out}");
    // Said again once the terminal is restored, where it stays readable.
    let after = &out[out.rfind("\x1b[?1049l").unwrap()..];
    assert!(after.contains("the ids go backwards"), "{after:?}");
}

#[test]
fn the_status_bar_never_calls_a_trail_from_mid_way_whole() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("late.json");
    let all = fixture_events();
    std::fs::write(&f, serde_json::to_string(&all[9..]).unwrap()).unwrap();
    let t = Pty::spawn(&["observe", "--from", f.to_str().unwrap()], &[]);
    let screen = t.wait_for("hash chain consistent over 127 events from evt-000010 only: not from the broker's first event");
    assert!(
        !screen.contains("end to end") && !screen.contains("verified"),
        "{screen}"
    );
    let (code, out) = t.quit();
    assert_eq!(code, 0, "{out}");
}
