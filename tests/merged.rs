//! The explorer's merged view (`O`: other clients' chains from the audit
//! trail), driven through the interactive session the way a user drives it —
//! keys into the session, worker events and the 1 s tick as the event loop
//! takes them — against a broker reached by URL (an embedded one started
//! here, or the broker of `AGENTWRIT_CONFORMANCE_URL`) on which "another
//! client" makes its own agents and delegations over real loopback HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chainview::app::{TokenStatus, unix_now};
use chainview::broker::types::{AuditQuery, DelegateResponse};
use chainview::scenario::parse;
use chainview::tui::Session;
use crossterm::event::KeyCode;

mod common;
use common::{Env, key};

const DEPLOY: &str = include_str!("../assets/scenarios/deploy.chainview");
/// Generous: a slow machine, a broker, a poll a second.
const WAIT: Duration = Duration::from_secs(60);

/// Runs the session's event loop (worker events and the tick, no terminal)
/// until `cond` holds.
async fn until(s: &mut Session, what: &str, cond: impl Fn(&Session) -> bool) {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while !cond(s) {
        assert!(
            start.elapsed() < WAIT,
            "timed out waiting for {what}; the status bar says {:?}",
            s.view.message
        );
        tokio::select! {
            Some(ev) = s.driver.worker.events.recv() => s.on_worker(ev),
            _ = tick.tick() => s.tick(),
        }
    }
}

async fn press(s: &mut Session, c: char) {
    assert_eq!(s.press(key(KeyCode::Char(c))).await.unwrap(), None);
}

fn type_text(s: &mut Session, text: &str) {
    for c in text.chars() {
        s.view.handle_key(&s.driver.app, key(KeyCode::Char(c)));
    }
}

fn clear_field(s: &mut Session) {
    s.view.handle_key(&s.driver.app, key(KeyCode::End));
    for _ in 0..200 {
        s.view.handle_key(&s.driver.app, key(KeyCode::Backspace));
    }
}

/// `n` and wait until the step has run.
async fn next_step(s: &mut Session) {
    let before = s.driver.runner.position();
    press(s, 'n').await;
    until(s, "the step to end", |s| {
        !s.driver.runner.busy() && s.driver.runner.position() > before
    })
    .await;
}

/// How many events the broker's audit trail holds now.
async fn trail_len(env: &Env) -> usize {
    let admin = env.admin().await;
    let page = env
        .client
        .audit_events(&admin, &AuditQuery::default())
        .await
        .expect("audit");
    page.total as usize
}

/// Waits until the merged view has read the whole trail as it is now, and
/// merged it.
async fn read_all(s: &mut Session, env: &Env) {
    let n = trail_len(env).await;
    until(s, "the merged view to read the trail", |s| {
        s.others_read()
            .is_some_and(|(read, polling)| read >= n && !polling)
    })
    .await;
}

/// The explorer's own tokens that were issued, with what the broker says of
/// each now (validate).
async fn own_truth(s: &Session, env: &Env) -> Vec<(String, bool, TokenStatus)> {
    let mut out = Vec::new();
    for t in s.driver.app.tokens.iter().filter(|t| !t.foreign) {
        if let Some(raw) = &t.raw {
            out.push((
                s.driver.app.token_name(t.id),
                env.valid(raw).await,
                t.status_at(unix_now()),
            ));
        }
    }
    out
}

/// Every own token the broker says is valid is valid in the explorer (not
/// `EXPIRED`, not judged again from the trail), and the live check asks
/// about it.
async fn assert_own_truth(s: &Session, env: &Env, when: &str) {
    let truth = own_truth(s, env).await;
    assert!(!truth.is_empty(), "{when}: no own tokens");
    let live: Vec<usize> = s
        .driver
        .app
        .live_tokens()
        .iter()
        .map(|(id, _)| *id)
        .collect();
    for (name, valid, status) in &truth {
        if *valid {
            assert_eq!(
                status,
                &TokenStatus::Valid,
                "{when}: {name} is valid on the broker"
            );
            let id = s
                .driver
                .app
                .tokens
                .iter()
                .find(|t| !t.foreign && &s.driver.app.token_name(t.id) == name)
                .unwrap()
                .id;
            assert!(live.contains(&id), "{when}: the live check skips {name}");
        }
    }
}

/// Another client of the broker: an agent that released its token, two
/// agents and a delegation between them.
struct Other {
    a: chainview::broker::client::Agent,
    b: chainview::broker::client::Agent,
    hop: DelegateResponse,
}

async fn other_client(env: &Env) -> Other {
    let c = env
        .create_agent("other-client", &common::uniq(), &["read:data:*"])
        .await;
    env.client.release(&c.access_token).await.unwrap();
    let a = env
        .create_agent("other-client", &common::uniq(), &["read:data:*"])
        .await;
    let b = env
        .create_agent("other-client", &common::uniq(), &["read:data:*"])
        .await;
    let hop = env
        .delegate(&a.access_token, &b.agent_id, &["read:data:x"], Some(600))
        .await
        .unwrap();
    Other { a, b, hop }
}

async fn session(env: &Env) -> Session {
    let script = parse("deploy.chainview", DEPLOY).unwrap();
    let mut s = Session::start(env.settings().await, Some(script), true, None)
        .await
        .unwrap();
    // An external broker: changes are asked for once (tests/pty.rs asks
    // and answers in a real terminal); here, answered yes up front.
    s.allow_changes();
    s
}

fn foreign_subs(s: &Session) -> Vec<String> {
    s.driver
        .app
        .tokens
        .iter()
        .filter(|t| t.foreign && s.driver.app.shown(t))
        .filter_map(|t| t.claims.as_ref().map(|c| c.sub.clone()))
        .collect()
}

/// Issue 26: `O`, `n`×4, `b`, `O` against an external broker showed none of
/// the other clients' tokens and could flip the session's own fresh tokens
/// to expired (the merged view kept its map from trail nodes to the tokens
/// of the App the replay threw away, and judged "those" tokens again). Now
/// the merged view survives `b`/`r` (rebuilt: it shows the other clients'
/// tokens again, the earlier run's included), and the explorer's own
/// statuses never change because it is on, off or rebuilt.
#[tokio::test]
async fn the_merged_view_survives_a_replay_and_never_touches_own_statuses() {
    let env = Env::new().await;
    let other = other_client(&env).await;
    let mut s = session(&env).await;
    press(&mut s, 'O').await;
    assert!(s.driver.app.show_others);
    read_all(&mut s, &env).await;
    assert!(foreign_subs(&s).contains(&other.b.agent_id));
    for _ in 0..4 {
        next_step(&mut s).await;
    }
    read_all(&mut s, &env).await;
    let first_run: Vec<String> = s
        .driver
        .app
        .tokens
        .iter()
        .filter(|t| !t.foreign)
        .filter_map(|t| t.claims.as_ref().map(|c| c.sub.clone()))
        .collect();
    assert!(!first_run.is_empty());
    assert_own_truth(&s, &env, "after 4 steps").await;
    let to = s.driver.runner.position() - 1;
    press(&mut s, 'b').await;
    until(&mut s, "the replay to end", |s| {
        !s.driver.runner.busy() && s.driver.runner.position() >= to
    })
    .await;
    let survived = s.driver.app.show_others;
    if !survived {
        // What the user did: the merged view looked off, so O again.
        press(&mut s, 'O').await;
    }
    read_all(&mut s, &env).await;
    assert_own_truth(&s, &env, "after b").await;
    let subs = foreign_subs(&s);
    assert!(
        subs.contains(&other.a.agent_id) && subs.contains(&other.b.agent_id),
        "the other client's tokens are shown again after b: {subs:?}; status bar {:?}",
        s.view.message
    );
    // The earlier run's tokens are on the broker too: now another run's.
    assert!(
        first_run.iter().all(|sub| subs.contains(sub)),
        "the earlier run's tokens: {first_run:?} in {subs:?}"
    );
    assert!(survived, "b turned the merged view off");
    // Off and on again: the explorer's own statuses stay the broker's.
    press(&mut s, 'O').await;
    assert!(!s.driver.app.show_others);
    assert_own_truth(&s, &env, "merged view off").await;
    press(&mut s, 'O').await;
    read_all(&mut s, &env).await;
    assert_own_truth(&s, &env, "merged view on again").await;
    assert!(foreign_subs(&s).contains(&other.b.agent_id));
    // r: the same again.
    press(&mut s, 'r').await;
    until(&mut s, "the restart to end", |s| {
        !s.driver.runner.busy() && s.driver.runner.position() >= 2
    })
    .await;
    next_step(&mut s).await; // say
    next_step(&mut s).await; // agent orchestrator
    assert!(s.driver.app.show_others, "r turned the merged view off");
    read_all(&mut s, &env).await;
    assert_own_truth(&s, &env, "after r").await;
    assert!(foreign_subs(&s).contains(&other.b.agent_id));
    s.shutdown().await;
}

/// The merged view on, the whole trail read.
async fn merged_session(env: &Env) -> Session {
    let mut s = session(env).await;
    press(&mut s, 'O').await;
    read_all(&mut s, env).await;
    s
}

/// The other client's token shown for `sub` with this scope.
fn foreign_token(s: &Session, sub: &str, scope: &[&str]) -> usize {
    s.driver
        .app
        .tokens
        .iter()
        .find(|t| {
            t.foreign
                && t.claims.as_ref().is_some_and(|c| c.sub == sub)
                && t.scope() == scope
                && !t.status_at(unix_now()).is_dead()
        })
        .unwrap_or_else(|| panic!("no foreign token of {sub} with {scope:?}"))
        .id
}

/// Enter on the open form, and the action it starts run to its end.
async fn submit(s: &mut Session) {
    assert_eq!(s.press(key(KeyCode::Enter)).await.unwrap(), None);
    until(s, "the action to end", |s| !s.driver.runner.busy()).await;
}

fn form_value(s: &Session, name: &str) -> String {
    s.view
        .form
        .as_ref()
        .expect("a form")
        .value(name)
        .to_string()
}

/// Issue 26: revoking an observed token by the jti the detail pane shows was
/// refused ("holds no token to revoke"). Now R on another client's token
/// offers its jti, and the jti typed by hand is taken too.
#[tokio::test]
async fn an_observed_token_is_revoked_by_its_jti() {
    let env = Env::new().await;
    let other = other_client(&env).await;
    let mut s = merged_session(&env).await;
    let id = foreign_token(&s, &other.a.agent_id, &["read:data:*"]);
    let jti = s.driver.app.tokens[id].claims.as_ref().unwrap().jti.clone();
    assert!(!jti.is_empty());
    s.view.select_token(&s.driver.app, id);
    press(&mut s, 'R').await;
    assert_eq!(form_value(&s, "target"), jti, "R offers the jti");
    // Typed by hand, as the detail pane shows it.
    s.view.handle_key(&s.driver.app, key(KeyCode::Down));
    clear_field(&mut s);
    type_text(&mut s, &jti);
    let check = s.view.form.as_ref().unwrap().check(&s.driver.app);
    assert!(
        check.errors.iter().all(Option::is_none),
        "{:?}",
        check.errors
    );
    submit(&mut s).await;
    assert!(s.view.form.is_none(), "{:?}", s.view.message);
    assert!(
        !env.valid(&other.a.access_token).await,
        "the broker revoked it"
    );
    let m = s.view.message.clone().unwrap_or_default();
    assert!(m.starts_with("✓ revoked: predicted 1 ("), "{m}");
    // A delegated token whose jti the trail does not carry says what to do.
    let hop = foreign_token(&s, &other.b.agent_id, &["read:data:x"]);
    if s.driver.app.tokens[hop]
        .claims
        .as_ref()
        .unwrap()
        .jti
        .is_empty()
    {
        let name = s.driver.app.token_name(hop);
        let e = s
            .driver
            .app
            .revoke_target(chainview::broker::types::RevokeLevel::Token, &name);
        assert!(e.as_ref().is_err_and(|e| e.contains("jti")), "{e:?}");
    }
    s.shutdown().await;
}

/// Issue 26: after an agent-level revoke of another client's agent the status
/// bar said "0 tokens died ()" though the prediction named one and the trail
/// later showed it revoked. Now it says what was predicted, that the trail
/// will confirm, and then the confirmation.
#[tokio::test]
async fn a_revocation_says_its_prediction_and_the_trail_confirms_it() {
    let env = Env::new().await;
    let other = other_client(&env).await;
    let mut s = merged_session(&env).await;
    // The deploy scenario's own agents too.
    for _ in 0..4 {
        next_step(&mut s).await;
    }
    read_all(&mut s, &env).await;
    let hop = foreign_token(&s, &other.b.agent_id, &["read:data:x"]);
    let hop_name = s.driver.app.token_name(hop);
    s.view.select_token(&s.driver.app, hop);
    press(&mut s, 'R').await;
    for _ in 0..4 {
        if form_value(&s, "level") == "agent" {
            break;
        }
        s.view.handle_key(&s.driver.app, key(KeyCode::Right));
    }
    assert_eq!(form_value(&s, "target"), other.b.agent_id);
    let notes = format!(
        "{:?}",
        s.view.form.as_ref().unwrap().check(&s.driver.app).notes
    );
    assert!(
        notes.contains("would kill 2 live tokens")
            && notes.contains("(2 other clients': the audit trail will confirm)"),
        "{notes}"
    );
    submit(&mut s).await;
    let m = s.view.message.clone().unwrap_or_default();
    assert!(!m.contains("died ()"), "{m}");
    assert!(m.starts_with("✓ revoked: predicted 2 ("), "{m}");
    assert!(m.contains(&hop_name), "{m}");
    assert!(m.contains("the trail will confirm"), "{m}");
    assert!(!env.valid(&other.hop.access_token).await);
    until(&mut s, "the trail's confirmation", |s| {
        s.view
            .message
            .as_deref()
            .is_some_and(|m| m.contains("the trail confirms"))
    })
    .await;
    let m = s.view.message.clone().unwrap();
    assert!(m.contains(&hop_name) && m.contains("2 of 2"), "{m}");
    assert!(matches!(
        s.driver.app.tokens[hop].status_at(unix_now()),
        TokenStatus::Revoked { .. }
    ));
    assert_own_truth(&s, &env, "after the revocation").await;
    // One of the explorer's own: the broker confirms at once.
    let orch = s.driver.app.labels["orchestrator"];
    s.view.select_token(&s.driver.app, orch);
    press(&mut s, 'R').await;
    s.view.handle_key(&s.driver.app, key(KeyCode::Right));
    assert_eq!(form_value(&s, "level"), "agent");
    submit(&mut s).await;
    let m = s.view.message.clone().unwrap_or_default();
    assert!(
        m.starts_with("✓ revoked: predicted 1 (orchestrator); the broker confirms: 1 died"),
        "{m}"
    );
    assert!(!m.contains("the trail will confirm"), "{m}");
    s.shutdown().await;
}

/// Issue 26: importing a token the merged view already shows added a twin
/// (a delegated token: the trail does not carry its jti) or was refused as
/// a duplicate of "other nN" (a registration token). Now the shown node
/// becomes the imported token: the broker's validate settles its status,
/// and the merged view leaves it alone from then on.
#[tokio::test]
async fn importing_a_token_the_merged_view_shows_resolves_that_node() {
    let env = Env::new().await;
    let other = other_client(&env).await;
    let mut s = merged_session(&env).await;
    let before = s.driver.app.tokens.len();
    for (raw, sub, scope) in [
        (&other.hop.access_token, &other.b.agent_id, "read:data:x"),
        (&other.a.access_token, &other.a.agent_id, "read:data:*"),
    ] {
        let node = foreign_token(&s, sub, &[scope]);
        press(&mut s, 'i').await;
        let label = form_value(&s, "as");
        type_text(&mut s, raw);
        let check = s.view.form.as_ref().unwrap().check(&s.driver.app);
        assert!(
            check.errors.iter().all(Option::is_none),
            "{:?}",
            check.errors
        );
        submit(&mut s).await;
        assert!(s.view.form.is_none(), "{:?}", s.view.message);
        let app = &s.driver.app;
        assert_eq!(app.labels.get(&label), Some(&node), "the node is resolved");
        let t = &app.tokens[node];
        assert!(!t.foreign && t.raw.as_deref() == Some(raw.as_str()));
        assert_eq!(t.validated.as_ref().map(|v| v.valid), Some(true));
        assert_eq!(t.status_at(unix_now()), TokenStatus::Valid);
        assert_eq!(app.tokens.len(), before, "no twin");
        let m = s.view.message.clone().unwrap_or_default();
        assert!(m.contains("the broker says valid"), "{m}");
    }
    // The broker's word stays: the trail (which shows the release) does not
    // judge it again…
    env.client.release(&other.hop.access_token).await.unwrap();
    read_all(&mut s, &env).await;
    let hop = s
        .driver
        .app
        .tokens
        .iter()
        .find(|t| t.raw.as_deref() == Some(&other.hop.access_token))
        .unwrap();
    assert_eq!(hop.status_at(unix_now()), TokenStatus::Valid);
    assert!(
        s.driver
            .app
            .live_tokens()
            .iter()
            .any(|(id, _)| *id == hop.id)
    );
    // … until the broker says otherwise: the live check asks it.
    let id = hop.id;
    s.revalidate();
    until(&mut s, "the live check", |s| {
        s.driver.app.tokens[id].status_at(unix_now()) != TokenStatus::Valid
    })
    .await;
    assert_eq!(
        s.driver.app.tokens[id].status_at(unix_now()),
        TokenStatus::Invalid
    );
    s.shutdown().await;
}

/// The broker the session started for itself (no broker configured).
fn own_broker(s: &Session) -> Env {
    let secret = s
        .target
        .embedded
        .as_ref()
        .expect("the embedded broker")
        .admin_secret()
        .to_string();
    Env::reach(&s.driver.app.broker_url, &secret)
}

/// The same on chainview's own embedded broker: `b` starts a fresh one, so
/// the merged view starts its trail afresh (the old one's tokens are gone
/// with it) and shows another client of the new broker; the explorer's own
/// statuses stay the broker's throughout.
#[tokio::test]
async fn on_its_own_broker_the_merged_view_starts_afresh_after_b() {
    let script = parse("deploy.chainview", DEPLOY).unwrap();
    let mut s = Session::start(Default::default(), Some(script), true, None)
        .await
        .unwrap();
    let env = own_broker(&s);
    let other = other_client(&env).await;
    press(&mut s, 'O').await;
    read_all(&mut s, &env).await;
    assert!(foreign_subs(&s).contains(&other.b.agent_id));
    for _ in 0..4 {
        next_step(&mut s).await;
    }
    read_all(&mut s, &env).await;
    assert_own_truth(&s, &env, "after 4 steps").await;
    let to = s.driver.runner.position() - 1;
    press(&mut s, 'b').await;
    until(&mut s, "the replay to end", |s| {
        !s.driver.runner.busy() && s.driver.runner.position() >= to
    })
    .await;
    assert!(s.driver.app.show_others, "b turned the merged view off");
    let env = own_broker(&s);
    let fresh = other_client(&env).await;
    read_all(&mut s, &env).await;
    assert_own_truth(&s, &env, "after b").await;
    let subs = foreign_subs(&s);
    assert!(subs.contains(&fresh.b.agent_id), "{subs:?}");
    assert!(!subs.contains(&other.b.agent_id), "{subs:?}");
    s.shutdown().await;
}
