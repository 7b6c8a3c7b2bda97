//! The explorer's actions (issue: create, delegate, renew, release, revoke,
//! import, audit, export, live check), driven the way the interactive session
//! drives them: keys into `View`, the form checked, the step run through the
//! runner and the worker, the report taken back. Each test runs twice: on
//! chainview's own embedded broker, and on a broker reached by URL with app
//! credentials (an embedded one started here, or the broker named by
//! `AGENTWRIT_CONFORMANCE_URL` + `AGENTWRIT_ADMIN_SECRET`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chainview::app::{TokenStatus, unix_now};
use chainview::broker::BrokerClient;
use chainview::broker::types::{CreateAppRequest, DelegateRequest, RevokeLevel};
use chainview::scenario::replay::Replay;
use chainview::scenario::{StepKind, parse};
use chainview::session::Settings;
use chainview::ui::render_text;
use chainview::view::form::{FormStatus, Submit};
use chainview::view::{Action, View};
use chainview::worker::Command;
use crossterm::event::KeyCode;

const DEPLOY: &str = include_str!("../assets/scenarios/deploy.chainview");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// chainview starts its own embedded broker (`cargo run`).
    Own,
    /// `--broker URL` with app credentials and the admin secret.
    External,
    /// `--broker https://…` to an embedded broker in mtls mode, with
    /// `--ca-cert`, `--client-cert` and `--client-key`.
    Mtls,
}

mod common;
use common::{Env, key};

/// The broker "another client" reaches by URL: the one CI names (through
/// the shared test harness), an embedded one started here, or one in mtls
/// mode; none when chainview runs its own.
async fn outside(mode: Mode) -> Option<Env> {
    match mode {
        Mode::Own => None,
        Mode::External => Some(Env::new().await),
        Mode::Mtls => Some(Env::tls(true).await),
    }
}

/// The deploy scenario up to and including hop 2's refusal (line 12).
async fn at_hop2(mode: Mode, outside: &Option<Env>) -> (Replay, View) {
    let script = parse("deploy.chainview", DEPLOY).unwrap();
    let settings = match mode {
        Mode::Own => Settings::default(),
        Mode::External | Mode::Mtls => match outside {
            Some(env) => env.settings().await,
            None => unreachable!("an outside broker for {mode:?}"),
        },
    };
    let mut replay = Replay::start(script, &settings).await.unwrap();
    let mut view = View::new(Some(replay.script()), true);
    loop {
        let r = replay.next().await.unwrap();
        view.on_report(&replay.driver.app, &r);
        if r.source.contains("as=hop2") {
            assert_eq!(r.result.word(), "refused");
            break;
        }
    }
    (replay, view)
}

fn screen(replay: &Replay, view: &mut View) -> String {
    render_text(&replay.driver.app, view, 100, 32, unix_now()).join("\n")
}

fn type_text(replay: &Replay, view: &mut View, text: &str) {
    for c in text.chars() {
        assert_eq!(
            view.handle_key(&replay.driver.app, key(KeyCode::Char(c))),
            Action::None
        );
    }
}

fn clear_field(replay: &Replay, view: &mut View) {
    view.handle_key(&replay.driver.app, key(KeyCode::End));
    for _ in 0..2000 {
        view.handle_key(&replay.driver.app, key(KeyCode::Backspace));
    }
}

/// Enter on the open form, then what the event loop does with it.
async fn submit(
    replay: &mut Replay,
    view: &mut View,
) -> Option<chainview::scenario::report::StepReport> {
    assert_eq!(
        view.handle_key(&replay.driver.app, key(KeyCode::Enter)),
        Action::Submit
    );
    match view.take_submit(&replay.driver.app)? {
        Submit::Step(kind) => {
            assert_eq!(view.form.as_ref().unwrap().status, FormStatus::Running);
            let r = replay.act(kind).await;
            view.on_action(&replay.driver.app, &r);
            Some(r)
        }
        Submit::Export(path) => {
            let r = chainview::export::write(&replay.driver.app, replay.journal(), &path)
                .map_err(|e| e.to_string());
            view.on_export(r);
            None
        }
    }
}

fn select(replay: &Replay, view: &mut View, label: &str) {
    let id = replay.driver.app.labels[label];
    view.select_token(&replay.driver.app, id);
}

/// Picks `want` in the focused choice field with →.
fn choose(replay: &Replay, view: &mut View, want: &str) {
    for _ in 0..20 {
        let f = view.form.as_ref().unwrap();
        if f.fields[f.focus].value() == want {
            return;
        }
        view.handle_key(&replay.driver.app, key(KeyCode::Right));
    }
    panic!("no choice {want}");
}

async fn delegate_refused_then_repaired(mode: Mode) {
    let outside = outside(mode).await;
    let (mut replay, mut view) = at_hop2(mode, &outside).await;
    // d on hop1 (the multi-hop case: a delegated token delegates again).
    select(&replay, &mut view, "hop1");
    view.handle_key(&replay.driver.app, key(KeyCode::Char('d')));
    let form = view.form.as_ref().expect("the delegate form opens");
    assert_eq!(
        form.value("scope"),
        "read:config:production,read:deploy:web-service",
        "prefilled with the holder's scope"
    );
    view.handle_key(&replay.driver.app, key(KeyCode::BackTab));
    choose(&replay, &mut view, "deployer");
    view.handle_key(&replay.driver.app, key(KeyCode::Tab));
    clear_field(&replay, &mut view);
    type_text(&replay, &mut view, "write:deploy:web-service");
    // Validated as typed: the form already says the broker will refuse.
    let s = screen(&replay, &mut view);
    assert!(
        s.contains("write:deploy:web-service not held: no grant has this action"),
        "{s}"
    );
    // A malformed scope is caught before anything is sent.
    type_text(&replay, &mut view, ",bogus");
    assert!(submit(&mut replay, &mut view).await.is_none());
    let s = screen(&replay, &mut view);
    assert!(s.contains("✗ bogus:"), "{s}");
    for _ in 0..6 {
        view.handle_key(&replay.driver.app, key(KeyCode::Backspace));
    }
    // Submitted anyway: the broker's words and what was not held, in place.
    let r = submit(&mut replay, &mut view).await.unwrap();
    assert_eq!(r.result.word(), "refused");
    let s = screen(&replay, &mut view);
    assert!(
        s.contains("✗ refused by the broker: 403 scope_violation — \"delegated scope exceeds"),
        "{s}"
    );
    assert!(
        s.contains("not held: write:deploy:web-service — no grant has this action"),
        "{s}"
    );
    assert!(view.form.is_some(), "a refusal keeps the form open");
    // The log has the broker's answer.
    let last = replay.driver.app.log.last().unwrap();
    assert_eq!(
        (last.call.path.as_str(), last.call.status),
        ("/v1/delegate", Some(403))
    );
    // Repaired in place: a scope hop1 holds.
    clear_field(&replay, &mut view);
    type_text(&replay, &mut view, "read:config:production");
    let r = submit(&mut replay, &mut view).await.unwrap();
    assert_eq!(r.result.word(), "ok", "{r:?}");
    assert!(view.form.is_none());
    assert_eq!(
        view.message.as_deref(),
        Some("✓ d2 issued to deployer (depth 2)")
    );
    let d1 = replay.driver.app.token("d2").unwrap();
    assert_eq!(d1.status_at(unix_now()), TokenStatus::Valid);
    assert_eq!(d1.depth(), 2);
    // The refused attempt and the new token are both in the tree.
    let s = screen(&replay, &mut view);
    assert!(s.contains("deployer (d2)"), "{s}");
    assert_eq!(
        replay
            .driver
            .app
            .token("d1")
            .unwrap()
            .status_at(unix_now())
            .word(),
        "refused"
    );
    replay.finish().await;
    drop(outside);
}

#[tokio::test]
async fn delegate_form_refused_then_repaired_own_broker() {
    delegate_refused_then_repaired(Mode::Own).await;
}

#[tokio::test]
async fn delegate_form_refused_then_repaired_external_broker() {
    delegate_refused_then_repaired(Mode::External).await;
}

#[tokio::test]
async fn delegate_form_refused_then_repaired_mtls_broker() {
    delegate_refused_then_repaired(Mode::Mtls).await;
}

async fn create_renew_release_revoke(mode: Mode) {
    let outside = outside(mode).await;
    let (mut replay, mut view) = at_hop2(mode, &outside).await;
    // a: a new agent.
    view.handle_key(&replay.driver.app, key(KeyCode::Char('a')));
    assert_eq!(view.form.as_ref().unwrap().value("name"), "agent1");
    type_text(&replay, &mut view, "read:config:*");
    let r = submit(&mut replay, &mut view).await.unwrap();
    assert_eq!(r.result.word(), "ok", "{r:?}");
    assert!(
        view.message
            .as_deref()
            .unwrap()
            .starts_with("✓ agent1 registered as spiffe://"),
        "{:?}",
        view.message
    );
    // A name already taken cannot be submitted.
    view.handle_key(&replay.driver.app, key(KeyCode::Char('a')));
    view.handle_key(&replay.driver.app, key(KeyCode::Up));
    view.handle_key(&replay.driver.app, key(KeyCode::Up));
    view.handle_key(&replay.driver.app, key(KeyCode::Up));
    clear_field(&replay, &mut view);
    type_text(&replay, &mut view, "analyst");
    assert!(submit(&mut replay, &mut view).await.is_none());
    assert!(screen(&replay, &mut view).contains("'analyst' is already used"));
    view.handle_key(&replay.driver.app, key(KeyCode::Esc));
    assert!(view.form.is_none());
    // w: renew hop1; the label moves to the new token.
    select(&replay, &mut view, "hop1");
    let old = replay.driver.app.labels["hop1"];
    view.handle_key(&replay.driver.app, key(KeyCode::Char('w')));
    let r = submit(&mut replay, &mut view).await.unwrap();
    assert_eq!(r.result.word(), "ok", "{r:?}");
    assert_eq!(
        replay.driver.app.tokens[old].status_at(unix_now()),
        TokenStatus::RenewedAway
    );
    let new = replay.driver.app.labels["hop1"];
    assert_ne!(old, new);
    // x: release the renewed token.
    select(&replay, &mut view, "hop1");
    view.handle_key(&replay.driver.app, key(KeyCode::Char('x')));
    assert!(screen(&replay, &mut view).contains("Enter confirm"));
    let r = submit(&mut replay, &mut view).await.unwrap();
    assert_eq!(r.result.word(), "ok");
    assert_eq!(
        replay.driver.app.tokens[new].status_at(unix_now()),
        TokenStatus::Released
    );
    // Renewing a released token: the form warns, the broker refuses, in place.
    view.handle_key(&replay.driver.app, key(KeyCode::Char('w')));
    assert!(screen(&replay, &mut view).contains("⚠ hop1 is released — the broker will refuse"));
    let r = submit(&mut replay, &mut view).await.unwrap();
    assert_eq!(r.result.word(), "refused");
    assert!(
        screen(&replay, &mut view).contains("✗ refused by the broker: 401 unauthorized"),
        "{}",
        screen(&replay, &mut view)
    );
    view.handle_key(&replay.driver.app, key(KeyCode::Esc));
    // R: revoke, level agent, target prefilled from the selection.
    select(&replay, &mut view, "orchestrator");
    view.handle_key(&replay.driver.app, key(KeyCode::Char('R')));
    assert_eq!(view.form.as_ref().unwrap().value("target"), "orchestrator");
    choose(&replay, &mut view, "agent");
    assert_eq!(view.form.as_ref().unwrap().value("target"), "orchestrator");
    let s = screen(&replay, &mut view);
    assert!(s.contains("would kill 1 live token: orchestrator"), "{s}");
    let r = submit(&mut replay, &mut view).await.unwrap();
    assert_eq!(r.result.word(), "ok", "{r:?}");
    assert_eq!(
        view.message.as_deref(),
        Some(
            "✓ revoked: predicted 1 (orchestrator); the broker confirms: 1 died (orchestrator), 3 live on"
        )
    );
    // e: the exploration saved as a scenario replays the same answers headless.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("explored.chainview");
    view.handle_key(&replay.driver.app, key(KeyCode::Char('e')));
    clear_field(&replay, &mut view);
    type_text(&replay, &mut view, path.to_str().unwrap());
    assert!(submit(&mut replay, &mut view).await.is_none());
    let text = std::fs::read_to_string(&path).unwrap();
    for line in [
        "agent agent1 orch=chainview task=agent1 scope=read:config:*",
        "renew hop1",
        "release hop1",
        "revoke agent orchestrator",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
    }
    if mode == Mode::Own {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_chainview"))
            .args(["--script", path.to_str().unwrap()])
            .env_remove("AGENTWRIT_BROKER_URL")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{out}");
        assert!(out.contains("✓ agent1 registered as spiffe://"), "{out}");
        assert!(
            out.contains("refused by the broker: 401 unauthorized"),
            "{out}"
        );
        assert!(out.contains("† orchestrator (orchestrator) dies"), "{out}");
    }
    replay.finish().await;
    drop(outside);
}

#[tokio::test]
async fn create_renew_release_revoke_own_broker() {
    create_renew_release_revoke(Mode::Own).await;
}

#[tokio::test]
async fn create_renew_release_revoke_external_broker() {
    create_renew_release_revoke(Mode::External).await;
}

#[tokio::test]
async fn create_renew_release_revoke_mtls_broker() {
    create_renew_release_revoke(Mode::Mtls).await;
}

async fn import_audit_export_live(mode: Mode) {
    let outside = outside(mode).await;
    let (mut replay, mut view) = at_hop2(mode, &outside).await;
    let client = match mode {
        Mode::Own => BrokerClient::new(&replay.driver.app.broker_url).unwrap(),
        _ => outside.as_ref().unwrap().client.clone(),
    };
    // Another client of the same broker delegates from the orchestrator's
    // token: a token chainview has never seen.
    let orch = replay
        .driver
        .app
        .token("orchestrator")
        .unwrap()
        .raw
        .clone()
        .unwrap();
    let analyst_id = replay
        .driver
        .app
        .agent_by_name("analyst")
        .unwrap()
        .1
        .agent_id
        .clone()
        .unwrap();
    let elsewhere = client
        .delegate(
            &orch,
            &DelegateRequest {
                delegate_to: analyst_id.clone(),
                scope: vec!["read:deploy:web-service".into()],
                ttl: Some(90),
            },
        )
        .await
        .unwrap()
        .access_token;
    // i: garbage and truncated input are rejected with the reason, not stored.
    let tokens_before = replay.driver.app.tokens.len();
    view.handle_key(&replay.driver.app, key(KeyCode::Char('i')));
    view.handle_paste("hello");
    assert!(submit(&mut replay, &mut view).await.is_none());
    let s = screen(&replay, &mut view);
    assert!(
        s.contains("✗ not an AgentWrit token: not a JWT: expected 3 dot-separated parts, found 1"),
        "{s}"
    );
    clear_field(&replay, &mut view);
    view.handle_paste(&elsewhere[..elsewhere.len() - 20]);
    assert!(submit(&mut replay, &mut view).await.is_none());
    let s = screen(&replay, &mut view);
    assert!(s.contains("the token looks truncated"), "{s}");
    assert_eq!(replay.driver.app.tokens.len(), tokens_before);
    // The whole token: decoded at once, validated, placed under its delegator.
    clear_field(&replay, &mut view);
    view.handle_paste(&format!("{elsewhere}\n"));
    let s = screen(&replay, &mut view);
    assert!(
        s.contains("✓ analyst · depth 1 · read:deploy:web-service"),
        "{s}"
    );
    let r = submit(&mut replay, &mut view).await.unwrap();
    assert_eq!(r.result.word(), "ok", "{r:?}");
    assert_eq!(
        view.message.as_deref(),
        Some("✓ imported1 imported — the broker says valid")
    );
    let imp = replay.driver.app.token("imported1").unwrap();
    let orch_id = replay.driver.app.labels["orchestrator"];
    assert_eq!(imp.parent(), Some(orch_id), "under its known delegator");
    assert!(
        !screen(&replay, &mut view).contains(&elsewhere),
        "never shown whole"
    );
    // A token whose delegator chainview has never seen: an orphan chain with
    // its recorded hops.
    let admin = outside_admin(&replay, &outside, mode).await;
    let stranger = {
        let n: u64 = rand::random();
        let app = client
            .create_app(
                &admin,
                &CreateAppRequest {
                    name: format!("stranger-{n:016x}"),
                    scopes: vec!["read:deploy:*".into()],
                    token_ttl: None,
                },
            )
            .await
            .unwrap();
        let app_token = client
            .app_auth(&app.client_id, app.client_secret.as_deref().unwrap())
            .await
            .unwrap()
            .access_token;
        let agent = client
            .create_agent(
                &app_token,
                "elsewhere",
                "stranger",
                &["read:deploy:*".into()],
                None,
            )
            .await
            .unwrap();
        client
            .delegate(
                &agent.access_token,
                &DelegateRequest {
                    delegate_to: analyst_id.clone(),
                    scope: vec!["read:deploy:api".into()],
                    ttl: Some(90),
                },
            )
            .await
            .unwrap()
            .access_token
    };
    view.handle_key(&replay.driver.app, key(KeyCode::Char('i')));
    view.handle_paste(&stranger);
    let r = submit(&mut replay, &mut view).await.unwrap();
    assert_eq!(r.result.word(), "ok", "{r:?}");
    let orphan = replay.driver.app.token("imported2").unwrap();
    assert_eq!(orphan.parent(), None);
    assert_eq!(orphan.depth(), 1);
    let s = screen(&replay, &mut view);
    assert!(
        s.contains("analyst (imported2)") && s.contains("imported · orphan chain stranger/"),
        "{s}"
    );
    // The same token twice is refused.
    view.handle_key(&replay.driver.app, key(KeyCode::Char('i')));
    view.handle_paste(&elsewhere);
    assert!(submit(&mut replay, &mut view).await.is_none());
    assert!(screen(&replay, &mut view).contains("already known as 'imported1'"));
    view.handle_key(&replay.driver.app, key(KeyCode::Esc));

    // Live: another client revokes the analyst; the live check notices.
    let admin = outside_admin(&replay, &outside, mode).await;
    client
        .revoke(&admin, RevokeLevel::Agent, &analyst_id)
        .await
        .unwrap();
    let live = replay.driver.app.live_tokens();
    assert!(
        live.iter()
            .any(|(id, _)| *id == replay.driver.app.labels["hop1"])
    );
    replay.command(Command::Revalidate(live)).await.unwrap();
    for l in ["hop1", "analyst", "imported1", "imported2"] {
        assert_eq!(
            replay.driver.app.token(l).unwrap().status_at(unix_now()),
            TokenStatus::Invalid,
            "{l}"
        );
    }
    assert_eq!(
        replay
            .driver
            .app
            .token("orchestrator")
            .unwrap()
            .status_at(unix_now()),
        TokenStatus::Valid
    );
    let died: Vec<&str> = replay
        .driver
        .app
        .log
        .iter()
        .filter_map(|l| l.call.error.as_deref())
        .filter(|e| e.contains("died elsewhere"))
        .collect();
    assert_eq!(died.len(), 4, "{died:?}");
    // A quiet check adds nothing to the log.
    let n = replay.driver.app.log.len();
    let live = replay.driver.app.live_tokens();
    replay.command(Command::Revalidate(live)).await.unwrap();
    assert_eq!(replay.driver.app.log.len(), n);

    // A: the audit trail, hash chain checked, filtered as typed.
    assert_eq!(
        view.handle_key(&replay.driver.app, key(KeyCode::Char('A'))),
        Action::FetchAudit
    );
    replay.command(Command::Audit).await.unwrap();
    let s = screen(&replay, &mut view);
    assert!(s.contains("✓ hash chain consistent over"), "{s}");
    type_text(&replay, &mut view, "attenuation");
    let s = screen(&replay, &mut view);
    assert!(s.contains("delegation_attenuation_violation denied"), "{s}");
    assert!(!s.contains("delegation_created"), "{s}");
    // An agent name matches that agent's SPIFFE id: this run's analyst only
    // (a shared external broker holds other runs' events too).
    view.handle_key(&replay.driver.app, key(KeyCode::Tab));
    type_text(&replay, &mut view, "analyst");
    let s = screen(&replay, &mut view);
    assert!(s.contains(" 1 of "), "{s}");
    assert!(
        s.contains("delegation_attenuation_violation denied  analyst"),
        "{s}"
    );
    view.handle_key(&replay.driver.app, key(KeyCode::Esc));
    assert!(view.audit.is_none());

    // e: export as a scenario and JSON.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.chainview");
    view.handle_key(&replay.driver.app, key(KeyCode::Char('e')));
    clear_field(&replay, &mut view);
    type_text(&replay, &mut view, path.to_str().unwrap());
    assert!(submit(&mut replay, &mut view).await.is_none());
    assert!(
        view.message
            .as_deref()
            .unwrap()
            .starts_with("✓ exported to"),
        "{:?}",
        view.message
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let script = parse("session.chainview", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(
        text.contains("import imported1 env=CHAINVIEW_TOKEN_IMPORTED1"),
        "{text}"
    );
    assert!(!text.contains(&elsewhere[..40]), "no token in the scenario");
    assert!(matches!(
        script.steps.last().unwrap().kind,
        StepKind::Import { .. }
    ));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("session.json")).unwrap())
            .unwrap();
    let tokens = json["tokens"].as_array().unwrap();
    assert!(tokens.iter().any(|t| t["label"] == "imported1"
        && t["kind"] == "imported"
        && t["parent"] == "orchestrator"));
    assert!(!json.to_string().contains(&elsewhere[..40]));
    assert!(json["log"].as_array().unwrap().len() > 10);
    // …and the tree as diagrams, beside them.
    let mmd = std::fs::read_to_string(dir.path().join("session.mmd")).unwrap();
    assert!(
        mmd.starts_with("flowchart LR\n") && mmd.contains("orchestrator"),
        "{mmd}"
    );
    let dot = std::fs::read_to_string(dir.path().join("session.dot")).unwrap();
    assert!(
        dot.starts_with("digraph chainview {") && !dot.contains(&elsewhere[..40]),
        "{dot}"
    );
    replay.finish().await;
    drop(outside);
}

/// An admin token for "another client" of the broker the replay uses.
async fn outside_admin(replay: &Replay, outside: &Option<Env>, mode: Mode) -> String {
    match mode {
        Mode::External | Mode::Mtls => outside.as_ref().unwrap().admin().await,
        Mode::Own => {
            let secret = replay
                .target
                .embedded
                .as_ref()
                .unwrap()
                .admin_secret()
                .to_string();
            BrokerClient::new(&replay.driver.app.broker_url)
                .unwrap()
                .admin_auth(&secret)
                .await
                .unwrap()
                .access_token
        }
    }
}

#[tokio::test]
async fn import_audit_export_live_own_broker() {
    import_audit_export_live(Mode::Own).await;
}

#[tokio::test]
async fn import_audit_export_live_external_broker() {
    import_audit_export_live(Mode::External).await;
}

#[tokio::test]
async fn import_audit_export_live_mtls_broker() {
    import_audit_export_live(Mode::Mtls).await;
}

/// Issue 12 item 15: a refused create-agent does not take its name for good:
/// the form stays open with the same name, the retry takes it, the agents
/// pane shows the agent once, and an export still parses.
#[tokio::test]
async fn a_refused_agent_name_can_be_taken_again() {
    let (mut replay, mut view) = at_hop2(Mode::Own, &None).await;
    view.handle_key(&replay.driver.app, key(KeyCode::Char('a')));
    assert!(view.form.is_some());
    type_text(&replay, &mut view, "admin:revoke:*");
    let r = submit(&mut replay, &mut view).await.expect("a step");
    assert!(
        matches!(
            r.result,
            chainview::scenario::report::StepResult::Refused(_)
        ),
        "{:?}",
        r.result
    );
    let form = view.form.as_ref().expect("a refusal keeps the form open");
    assert_eq!(form.fields[0].value(), "agent1");
    clear_field(&replay, &mut view);
    type_text(&replay, &mut view, "read:config:x");
    let r = submit(&mut replay, &mut view).await.expect("a step");
    assert_eq!(r.result, chainview::scenario::report::StepResult::Ok);
    let app = &replay.driver.app;
    let (_, agent) = app.agent_by_name("agent1").unwrap();
    assert!(agent.agent_id.is_some());
    assert_eq!(app.agents.iter().filter(|a| a.name == "agent1").count(), 1);
    // The agents pane shows the agent once, registered (the refused attempt
    // stays in the tree as history).
    let s = screen(&replay, &mut view);
    assert!(!s.contains("✗ agent1 refused"), "{s}");
    assert!(s.contains("✓ agent1 valid"), "{s}");
    // The export replays: the refused attempt is left out.
    let text = chainview::export::scenario_text(app, replay.journal());
    assert_eq!(text.matches("agent agent1 ").count(), 1, "{text}");
    parse("export.chainview", &text).expect("the export parses");
}

/// The merged view (`O`): another client's chain on the same broker, rebuilt
/// from the audit trail, appears beside the explorer's own — its own tokens
/// never twice — and hides again.
#[tokio::test]
async fn merged_view_shows_other_clients_chains_beside_its_own() {
    use chainview::observe::Observed;
    use chainview::observe::merge::{Merged, merge};
    use chainview::worker::Outcome;
    let outside = outside(Mode::External).await;
    let env = outside.as_ref().unwrap();
    let (mut replay, mut view) = at_hop2(Mode::External, &outside).await;
    let own = replay.driver.app.tokens.len();
    // Another client: two agents and a delegation between them.
    let task = common::uniq();
    let a = env
        .create_agent("other-client", &task, &["read:data:*"])
        .await;
    let b = env
        .create_agent("other-client", &common::uniq(), &["read:data:*"])
        .await;
    env.delegate(&a.access_token, &b.agent_id, &["read:data:x"], None)
        .await
        .unwrap();
    let ev = replay
        .driver
        .command(Command::AuditSince {
            offset: 0,
            pages: 200,
        })
        .await
        .unwrap();
    let Outcome::AuditSince {
        result: Ok((events, _)),
        ..
    } = ev.outcome
    else {
        panic!("audit: {:?}", ev.outcome)
    };
    let mut o = Observed::new();
    for e in &events {
        o.fold(&e.as_ref(), None);
    }
    let mut m = Merged::default();
    let app = &mut replay.driver.app;
    app.show_others = true;
    merge(app, &o, &mut m);
    // Its own tokens were recognised (by jti and chain hash), not added again.
    let own_jtis: Vec<String> = app.tokens[..own]
        .iter()
        .filter_map(|t| t.claims.as_ref().map(|c| c.jti.clone()))
        .collect();
    let foreign: Vec<_> = app.tokens.iter().filter(|t| t.foreign).collect();
    assert!(foreign.len() >= 3, "{}", foreign.len());
    assert!(
        foreign
            .iter()
            .all(|t| !own_jtis.contains(&t.claims.as_ref().unwrap().jti)
                || t.claims.as_ref().unwrap().jti.is_empty())
    );
    // The other client's delegation, under its delegator's registration token.
    let hop = foreign
        .iter()
        .find(|t| t.claims.as_ref().unwrap().sub == b.agent_id && t.scope() == ["read:data:x"])
        .unwrap();
    let parent = &app.tokens[hop.parent().unwrap()];
    assert_eq!(parent.claims.as_ref().unwrap().sub, a.agent_id);
    let s = screen(&replay, &mut view);
    assert!(s.contains("other n"), "{s}");
    // O hides them again: the tree shows the explorer's own only.
    replay.driver.app.show_others = false;
    replay.driver.app.generation += 1;
    let s = screen(&replay, &mut view);
    assert!(!s.contains("other n"), "{s}");
    assert!(s.contains("analyst (hop1)"), "{s}");
    replay.finish().await;
}
