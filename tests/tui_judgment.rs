//! Judgment in the panes, rendered without a terminal (insta, ids and times
//! filtered) at 80x24, 120x40 and 200x60: the findings pane and Enter to the
//! node, the probe answering "who can" for a pattern and Enter to the holder
//! with its path highlighted, observe's read-only what-if with the commands,
//! and the explorer's revoke form with the three lists and the plan before
//! Enter — over the real broker's recorded trail and the embedded broker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use chainview::app::App;
use chainview::observe::Observed;
use chainview::observe::project::{Filter, app_at};
use chainview::ui::render_text;
use chainview::view::judgment::refresh;
use chainview::view::{Focus, View};
use crossterm::event::KeyCode;

use common::key;

const TRAIL: &str = "tests/fixtures/real-broker-audit/audit.json";
const SIZES: [(u16, u16); 3] = [(80, 24), (120, 40), (200, 60)];

/// The real broker's trail as observe shows it at `at` (an event id).
async fn observed(at: &str) -> (Observed, usize, App, View) {
    let o = chainview::watch::read_file(TRAIL.into()).await.unwrap();
    let at = chainview::watch::resolve_at(&o, Some(at)).unwrap();
    let app = app_at(&o, at, &format!("file:{TRAIL}"), &Filter::default());
    let mut view = View::new(None, true);
    view.observing = true;
    refresh(&mut view, &app, &o, at);
    (o, at, app, view)
}

fn now_of(o: &Observed, at: usize) -> i64 {
    o.events[at].ms / 1000
}

fn press(view: &mut View, app: &App, o: &Observed, at: usize, k: KeyCode) {
    view.handle_key(app, key(k));
    refresh(view, app, o, at);
}

fn typed(view: &mut View, app: &App, o: &Observed, at: usize, text: &str) {
    for c in text.chars() {
        press(view, app, o, at, KeyCode::Char(c));
    }
}

fn shots(name: &str, app: &App, view: &mut View, now: i64, out: &mut Vec<String>) {
    for (w, h) in SIZES {
        out.push(format!(
            "── {name} at {w}x{h}\n{}",
            render_text(app, view, w, h, now).join("\n")
        ));
    }
}

#[tokio::test]
async fn findings_pane_and_enter_to_the_node() {
    let (o, at, app, mut view) = observed("evt-000048").await;
    let now = now_of(&o, at);
    // The tree marks the nodes with findings (n17: at the depth limit).
    let j = &view.judgment;
    assert!(j.findings.len() >= 10, "{}", j.findings.len());
    let n17 = app
        .tokens
        .iter()
        .position(|t| t.label.as_deref() == Some("n17"))
        .unwrap();
    assert_eq!(
        j.marks.get(&n17),
        Some(&chainview::judge::check::Severity::Warning)
    );
    let mut out = Vec::new();
    press(&mut view, &app, &o, at, KeyCode::Char('F'));
    assert_eq!(view.focus, Focus::Findings);
    shots("findings", &app, &mut view, now, &mut out);
    // The fifth finding: chain-at-depth-limit on n17.
    let k = view
        .judgment
        .findings
        .iter()
        .position(|r| r.finding.rule == "chain-at-depth-limit")
        .unwrap();
    for _ in 0..k {
        press(&mut view, &app, &o, at, KeyCode::Down);
    }
    press(&mut view, &app, &o, at, KeyCode::Enter);
    assert_eq!(view.selected, Some(n17), "Enter selects the finding's node");
    let said = view.message.clone().unwrap();
    assert!(
        said.contains("chain-at-depth-limit on n17") && said.contains("fix: Shorten the chain"),
        "{said}"
    );
    shots(
        "findings, Enter on chain-at-depth-limit",
        &app,
        &mut view,
        now,
        &mut out,
    );
    let screen = render_text(&app, &mut view, 120, 40, now).join("\n");
    assert!(
        screen.contains("⚑"),
        "a finding mark in the tree:\n{screen}"
    );
    insta::with_settings!({ filters => common::screen_filters() }, {
        insta::assert_snapshot!("judgment_findings", out.join("\n\n"));
    });
}

#[tokio::test]
async fn probe_answers_who_can_per_agent_with_the_path() {
    let (o, at, app, mut view) = observed("evt-000048").await;
    let now = now_of(&o, at);
    let mut out = Vec::new();
    // W starts a new question: the scope typed before goes.
    typed(&mut view, &app, &o, at, "/read:data:x");
    press(&mut view, &app, &o, at, KeyCode::Esc);
    press(&mut view, &app, &o, at, KeyCode::Char('W'));
    assert_eq!(view.probe.value(), "");
    typed(&mut view, &app, &o, at, "write:deploy:*");
    let rows = view.judgment.who_rows().to_vec();
    assert!(!rows.is_empty());
    // The three buckets, live first, then may, then dead.
    let rank = |s: &str| {
        ["live", "maybe", "dead"]
            .iter()
            .position(|x| *x == s)
            .unwrap()
    };
    assert!(
        rows.windows(2)
            .all(|w| rank(w[0].access.status) <= rank(w[1].access.status))
    );
    shots("who can write:deploy:*", &app, &mut view, now, &mut out);
    // push's best token is two hops down release's chain (its own
    // registration was released).
    let k = rows.iter().position(|r| r.access.path.len() == 3).unwrap();
    assert_eq!(rows[k].access.status, "maybe");
    for _ in 0..k {
        press(&mut view, &app, &o, at, KeyCode::Down);
    }
    press(&mut view, &app, &o, at, KeyCode::Enter);
    let row = &rows[k];
    assert_eq!(view.selected, row.token, "Enter selects the holder's token");
    assert_eq!(view.judgment.path.len(), 3, "the path from the root");
    assert_eq!(view.judgment.path.last().copied(), row.token);
    shots(
        "who can, Enter on push (depth 2)",
        &app,
        &mut view,
        now,
        &mut out,
    );
    let screen = render_text(&app, &mut view, 120, 40, now).join("\n");
    for hop in ["◆ ≈ review-v2.4.1/8e77 (n4)", "◆ ≈ push-v2.4.1/c8bc (n5)"] {
        assert!(screen.contains(hop), "{hop} marked on the path:\n{screen}");
    }
    let tokens: Vec<Option<&str>> = view
        .judgment
        .path
        .iter()
        .map(|&t| app.tokens[t].label.as_deref())
        .collect();
    assert_eq!(tokens, [Some("n0"), Some("n4"), Some("n5")]);
    // A pattern with * as action switches by itself; a wrong one says why.
    press(&mut view, &app, &o, at, KeyCode::Esc);
    press(&mut view, &app, &o, at, KeyCode::Char('/'));
    assert!(!view.judgment.who_mode);
    for _ in 0.."write:deploy:*".len() {
        press(&mut view, &app, &o, at, KeyCode::Backspace);
    }
    assert!(view.judgment.who.is_none(), "an empty probe asks nothing");
    typed(&mut view, &app, &o, at, "*:deploy:*");
    assert!(view.judgment.who.as_ref().is_some_and(|(_, r)| r.is_ok()));
    shots(
        "who can *:deploy:* (typed in /)",
        &app,
        &mut view,
        now,
        &mut out,
    );
    insta::with_settings!({ filters => common::screen_filters() }, {
        insta::assert_snapshot!("judgment_who_can", out.join("\n\n"));
    });
}

#[tokio::test]
async fn observe_what_if_is_read_only_with_the_commands() {
    let (o, at, app, mut view) = observed("evt-000016").await;
    let now = now_of(&o, at);
    // n3: review's delegated token (the docs' example).
    let n3 = app
        .tokens
        .iter()
        .position(|t| t.label.as_deref() == Some("n3"))
        .unwrap();
    view.select_token(&app, n3);
    let mut out = Vec::new();
    press(&mut view, &app, &o, at, KeyCode::Char('R'));
    assert!(view.form.is_some(), "{:?}", view.message);
    // → agent level.
    press(&mut view, &app, &o, at, KeyCode::Right);
    let w = view.judgment.what_if.clone().unwrap();
    assert_eq!(w.level.as_str(), "agent");
    let kinds = |k: &str| w.effects.iter().filter(|e| e.effect == k).count();
    assert_eq!(
        (kinds("dies"), kinds("may die"), kinds("survives")),
        (2, 1, 1)
    );
    assert_eq!(w.plan.as_ref().unwrap().entries.len(), 2);
    shots("observe: R, agent level", &app, &mut view, now, &mut out);
    // The popup's rows joined: the body is whole (wrapped, never cut).
    let screen = render_text(&app, &mut view, 120, 40, now);
    let popup: String = screen
        .iter()
        .filter_map(|l| {
            let inner: Vec<&str> = l.split('┃').collect();
            (inner.len() >= 3).then(|| inner[inner.len() - 2].to_string())
        })
        .collect();
    assert!(
        popup.contains(r#"POST /v1/revoke {"level":"agent","target":"spiffe://agentwrit.local/agent/deploy-pipeline/review-v2.4.1/8e777f8d86415be5"}"#),
        "{}",
        screen.join("\n")
    );
    // Enter never revokes: observe says so and the form stays.
    let action = view.handle_key(&app, key(KeyCode::Enter));
    assert_eq!(action, chainview::view::Action::Submit);
    // Each level: chain.
    press(&mut view, &app, &o, at, KeyCode::Right);
    press(&mut view, &app, &o, at, KeyCode::Right);
    assert_eq!(
        view.judgment.what_if.as_ref().unwrap().level.as_str(),
        "chain"
    );
    shots("observe: R, chain level", &app, &mut view, now, &mut out);
    insta::with_settings!({ filters => common::screen_filters() }, {
        insta::assert_snapshot!("judgment_observe_what_if", out.join("\n\n"));
    });
}

/// The explorer on the embedded broker: the deploy scenario to its
/// repaired chain, the trail read for judgment with other clients' chains
/// hidden, then the revoke form at agent level on the orchestrator.
#[tokio::test]
async fn explorer_revoke_form_shows_the_what_if_before_enter() {
    use chainview::tui::Session;
    let script = chainview::scenario::parse(
        "deploy.chainview",
        include_str!("../assets/scenarios/deploy.chainview"),
    )
    .unwrap();
    let mut s = Session::start(Default::default(), Some(script), true, None)
        .await
        .unwrap();
    for _ in 0..21 {
        let before = s.driver.runner.position();
        s.press(key(KeyCode::Char('n'))).await.unwrap();
        until(&mut s, |s| {
            !s.driver.runner.busy() && s.driver.runner.position() > before
        })
        .await;
    }
    // Read the whole trail (the tick polls it), then judge.
    until(&mut s, |s| {
        s.others_read()
            .is_some_and(|(n, polling)| n > 0 && !polling)
    })
    .await;
    let n = s.others_read().unwrap().0;
    tokio::time::sleep(Duration::from_millis(300)).await;
    until(&mut s, |s| {
        s.others_read()
            .is_some_and(|(m, polling)| m >= n && !polling)
    })
    .await;
    s.judge();
    assert!(!s.driver.app.show_others, "the merged view stays off");
    assert!(
        s.driver.app.tokens.iter().all(|t| !t.foreign),
        "no other client's token was merged"
    );
    assert!(s.view.judgment.as_of.is_some());
    let now = chainview::app::unix_now();
    let mut out = Vec::new();
    s.press(key(KeyCode::Char('F'))).await.unwrap();
    s.judge();
    shots(
        "explorer: findings",
        &s.driver.app,
        &mut s.view,
        now,
        &mut out,
    );
    // The orchestrator's registration token, revoke form at agent level.
    let orch = s.driver.app.labels["orchestrator"];
    s.view.select_token(&s.driver.app, orch);
    s.press(key(KeyCode::Char('R'))).await.unwrap();
    s.press(key(KeyCode::Right)).await.unwrap();
    s.judge();
    let w = s.view.judgment.what_if.clone().unwrap();
    assert_eq!(w.level.as_str(), "agent");
    assert!(w.target.as_ref().unwrap().starts_with("spiffe://"));
    let kinds = |k: &str| w.effects.iter().filter(|e| e.effect == k).count();
    assert!(kinds("dies") >= 1, "{:?}", w.effects);
    assert!(
        kinds("survives") >= 1,
        "what it delegated survives: {:?}",
        w.effects
    );
    assert!(w.plan.as_ref().unwrap().entries.len() >= 2);
    shots(
        "explorer: R, agent orchestrator",
        &s.driver.app,
        &mut s.view,
        now,
        &mut out,
    );
    let screen = render_text(&s.driver.app, &mut s.view, 120, 40, now).join("\n");
    assert!(screen.contains("⚠ survives"), "{screen}");
    assert!(screen.contains("plan — the fewest revocations"), "{screen}");
    assert!(
        !screen.contains("POST /v1/revoke"),
        "the explorer revokes itself"
    );
    // A fresh broker's timestamps vary in length: the rest of their line too.
    let mut filters = common::screen_filters();
    filters.push((r"\[TIMESTAMP\][^│┃]*", "[TIMESTAMP]…"));
    insta::with_settings!({ filters => filters }, {
        insta::assert_snapshot!("judgment_explorer_revoke", out.join("\n\n"));
    });
    s.shutdown().await;
}

/// Runs the session's event loop (worker events and the tick) until `cond`.
async fn until(s: &mut chainview::tui::Session, cond: impl Fn(&chainview::tui::Session) -> bool) {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while !cond(s) {
        assert!(start.elapsed() < Duration::from_secs(60), "timed out");
        tokio::select! {
            Some(ev) = s.driver.worker.events.recv() => s.on_worker(ev),
            _ = tick.tick() => s.tick(),
        }
    }
}

/// The explorer on the embedded broker, the depth-limit scenario run whole:
/// the findings name its own tokens, Enter on chain-at-depth-limit selects
/// hop5 in the tree and says the fix; who can with a pattern, Enter selects
/// the holder's token.
#[tokio::test]
async fn explorer_enter_on_a_finding_and_a_who_can_row() {
    use chainview::tui::Session;
    let script = chainview::scenario::parse(
        "depth-limit.chainview",
        include_str!("../assets/scenarios/depth-limit.chainview"),
    )
    .unwrap();
    let steps = script.steps.len();
    let mut s = Session::start(Default::default(), Some(script), true, None)
        .await
        .unwrap();
    while s.driver.runner.position() < steps {
        let before = s.driver.runner.position();
        s.press(key(KeyCode::Char('n'))).await.unwrap();
        until(&mut s, |s| {
            !s.driver.runner.busy() && s.driver.runner.position() > before
        })
        .await;
    }
    // The trail as it is now, read whole.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    loop {
        until(&mut s, |s| {
            s.others_read().is_some_and(|(n, p)| n > 0 && !p)
        })
        .await;
        s.judge();
        if s.view
            .judgment
            .findings
            .iter()
            .any(|r| r.finding.rule == "chain-at-depth-limit")
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{:?}",
            s.view.judgment.findings
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let hop5 = s.driver.app.labels["hop5"];
    let now = chainview::app::unix_now();
    let mut out = Vec::new();
    s.press(key(KeyCode::Char('F'))).await.unwrap();
    let k = s
        .view
        .judgment
        .findings
        .iter()
        .position(|r| r.finding.rule == "chain-at-depth-limit")
        .unwrap();
    assert_eq!(s.view.judgment.findings[k].token, Some(hop5));
    for _ in 0..k {
        s.press(key(KeyCode::Down)).await.unwrap();
    }
    s.press(key(KeyCode::Enter)).await.unwrap();
    assert_eq!(s.view.selected, Some(hop5), "Enter selects hop5");
    let said = s.view.message.clone().unwrap();
    assert!(
        said.starts_with("chain-at-depth-limit on hop5 — fix:"),
        "{said}"
    );
    s.judge();
    shots(
        "explorer: Enter on chain-at-depth-limit",
        &s.driver.app,
        &mut s.view,
        now,
        &mut out,
    );
    let screen = render_text(&s.driver.app, &mut s.view, 120, 40, now).join("\n");
    assert!(
        screen.contains("chain-at-depth-limit    hop5"),
        "the explorer's name:\n{screen}"
    );
    // Who can: every agent holds read:data:* on its own registration.
    s.press(key(KeyCode::Char('W'))).await.unwrap();
    for c in "read:data:x".chars() {
        s.press(key(KeyCode::Char(c))).await.unwrap();
    }
    s.judge();
    let rows = s.view.judgment.who_rows().to_vec();
    assert_eq!(rows.len(), 7, "a1 … a7");
    s.press(key(KeyCode::Down)).await.unwrap();
    s.judge();
    s.press(key(KeyCode::Enter)).await.unwrap();
    assert_eq!(s.view.selected, rows[1].token);
    assert!(rows[1].token.is_some());
    assert_eq!(
        s.view.judgment.path,
        rows[1].path.iter().flatten().copied().collect::<Vec<_>>()
    );
    s.judge();
    shots(
        "explorer: who can read:data:x, Enter on the second",
        &s.driver.app,
        &mut s.view,
        now,
        &mut out,
    );
    // Revoke a6 (agent level): hop5, a delegation whose ttl the trail does
    // not carry ("may" there), dies by the broker's answer for the
    // explorer's own valid token.
    s.press(key(KeyCode::Esc)).await.unwrap();
    s.view.select_token(&s.driver.app, hop5);
    s.press(key(KeyCode::Char('R'))).await.unwrap();
    s.press(key(KeyCode::Right)).await.unwrap();
    s.judge();
    let w = s.view.judgment.what_if.clone().unwrap();
    let hop5_node = s
        .view
        .judgment
        .findings
        .iter()
        .find(|r| r.token == Some(hop5))
        .and_then(|r| r.finding.node.clone())
        .unwrap();
    let e = w.effects.iter().find(|e| e.node == hop5_node).unwrap();
    assert_eq!(e.effect, "dies", "{e:?}");
    assert!(e.why.ends_with("(valid by the broker's answer)"), "{e:?}");
    let mut filters = common::screen_filters();
    filters.push((r"\[TIMESTAMP\][^│┃]*", "[TIMESTAMP]…"));
    filters.push((r"evt-\d{6}", "evt-[N]"));
    filters.push((r"(depth/t\d)/[0-9a-f]{4}", "$1/[INST]"));
    insta::with_settings!({ filters => filters }, {
        insta::assert_snapshot!("judgment_explorer_depth_limit", out.join("\n\n"));
    });
    s.shutdown().await;
}
