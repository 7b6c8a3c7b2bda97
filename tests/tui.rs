//! The TUI without a terminal: every view rendered into a TestBackend and
//! snapshotted (insta), the deploy scenario at each step at 80x24 and 120x40,
//! key handling against a live app state, and the `--frames` output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use chainview::app::unix_now;
use chainview::scenario::{parse, replay::Replay};
use chainview::session::Settings;
use chainview::ui::render_text;
use chainview::view::{Action, Focus, View};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const DEPLOY: &str = include_str!("../assets/scenarios/deploy.chainview");

/// Replays the deploy scenario, rendering after every step.
/// The deploy scenario run up to step `n`, the view following it.
async fn at_step(n: usize) -> (Replay, View) {
    let script = parse("deploy.chainview", DEPLOY).unwrap();
    let mut replay = Replay::start(script, &Settings::default()).await.unwrap();
    let mut view = View::new(Some(replay.script()), true);
    for _ in 0..n {
        let r = replay.next().await.unwrap();
        view.on_report(&replay.driver.app, &r);
    }
    (replay, view)
}

async fn deploy_frames(width: u16, height: u16) -> (Vec<String>, Replay, View) {
    let script = parse("deploy.chainview", DEPLOY).unwrap();
    let mut replay = Replay::start(script, &Settings::default()).await.unwrap();
    let mut view = View::new(Some(replay.script()), true);
    let mut frames = vec![format!(
        "── first screen\n{}",
        render_text(&replay.driver.app, &mut view, width, height, unix_now()).join("\n")
    )];
    while let Some(r) = replay.next().await {
        view.on_report(&replay.driver.app, &r);
        let screen =
            render_text(&replay.driver.app, &mut view, width, height, unix_now()).join("\n");
        frames.push(format!(
            "── after step {} · line {} · {}\n{screen}",
            r.index, r.line, r.source
        ));
    }
    (frames, replay, view)
}

#[tokio::test]
async fn deploy_every_step_80x24() {
    let (frames, replay, _) = deploy_frames(80, 24).await;
    assert_eq!(frames.len(), 44);
    // Hop 2 is shown refused, in the tree and the detail, at 80x24.
    let hop2 = &frames[12];
    assert!(
        hop2.contains("✗ deployer (hop2) REFUSED 403 scope_viola…"),
        "{hop2}"
    );
    assert!(hop2.contains("✗ hop2 held by deployer"), "{hop2}");
    insta::with_settings!({ filters => common::screen_filters() }, {
        insta::assert_snapshot!("deploy_80x24", frames.join("\n\n"));
    });
    replay.finish().await;
}

#[tokio::test]
async fn deploy_every_step_120x40() {
    let (frames, replay, _) = deploy_frames(120, 40).await;
    insta::with_settings!({ filters => common::screen_filters() }, {
        insta::assert_snapshot!("deploy_120x40", frames.join("\n\n"));
    });
    replay.finish().await;
}

/// Each view in focus, at both sizes, after the deploy scenario's step 21
/// (the repaired chain validated).
#[tokio::test]
async fn every_view() {
    let script = parse("deploy.chainview", DEPLOY).unwrap();
    let mut replay = Replay::start(script, &Settings::default()).await.unwrap();
    let mut view = View::new(Some(replay.script()), true);
    while replay.script().steps.len() > view.step_pos && view.step_pos < 21 {
        let r = replay.next().await.unwrap();
        view.on_report(&replay.driver.app, &r);
    }
    let app = &replay.driver.app;
    let mut shots = Vec::new();
    let mut shoot = |name: &str, view: &mut View| {
        for (w, h) in [(80, 24), (120, 40)] {
            shots.push(format!(
                "── {name} at {w}x{h}\n{}",
                render_text(app, view, w, h, unix_now()).join("\n")
            ));
        }
    };
    // Chain tree focused, the repaired hop 2 selected (detail below it).
    assert_eq!(view.focus, Focus::Tree);
    shoot("chain tree + detail", &mut view);
    // Agents.
    view.handle_key(app, common::key(KeyCode::Tab));
    view.handle_key(app, common::key(KeyCode::Tab));
    view.handle_key(app, common::key(KeyCode::Tab));
    view.handle_key(app, common::key(KeyCode::Tab));
    assert_eq!(view.focus, Focus::Agents);
    view.handle_key(app, common::key(KeyCode::Down));
    shoot("agents (analyst selected)", &mut view);
    // Steps.
    view.handle_key(app, common::key(KeyCode::Tab));
    assert_eq!(view.focus, Focus::Steps);
    shoot("steps", &mut view);
    // Probe with typed input, then malformed input.
    view.handle_key(app, common::key(KeyCode::Char('/')));
    for c in "write:deploy:payment-svc".chars() {
        view.handle_key(app, common::key(KeyCode::Char(c)));
    }
    shoot("probe write:deploy:payment-svc", &mut view);
    for _ in 0..12 {
        view.handle_key(app, common::key(KeyCode::Backspace));
    }
    shoot("probe malformed input", &mut view);
    view.handle_key(app, common::key(KeyCode::Esc));
    // Event log.
    view.handle_key(app, common::key(KeyCode::Tab));
    view.handle_key(app, common::key(KeyCode::Tab));
    view.handle_key(app, common::key(KeyCode::Tab));
    assert_eq!(view.focus, Focus::Log);
    shoot("event log", &mut view);
    // Help overlay.
    view.handle_key(app, common::key(KeyCode::Char('?')));
    shoot("help", &mut view);
    view.handle_key(app, common::key(KeyCode::Char('x')));
    assert!(!view.help);
    // Too small.
    shots.push(format!(
        "── too small at 60x20\n{}",
        render_text(app, &mut view, 60, 20, unix_now()).join("\n")
    ));
    insta::with_settings!({ filters => common::screen_filters() }, {
        insta::assert_snapshot!("every_view", shots.join("\n\n"));
    });
    replay.finish().await;
}

#[tokio::test]
async fn keys_drive_the_state() {
    let (replay, mut view) = at_step(12).await;
    let app = &replay.driver.app;
    // The refused hop 2 is selected after step 12.
    let hop2 = app.labels["hop2"];
    assert_eq!(view.selected, Some(hop2));
    // Step keys become actions for the event loop.
    assert_eq!(
        view.handle_key(app, common::key(KeyCode::Char('n'))),
        Action::NextStep
    );
    assert_eq!(
        view.handle_key(app, common::key(KeyCode::Char(' '))),
        Action::NextStep
    );
    assert_eq!(
        view.handle_key(app, common::key(KeyCode::Char('b'))),
        Action::BackStep
    );
    assert_eq!(
        view.handle_key(app, common::key(KeyCode::Char('r'))),
        Action::Restart
    );
    // v on a refused token (no token to validate) is a notice, not an action.
    assert_eq!(
        view.handle_key(app, common::key(KeyCode::Char('v'))),
        Action::None
    );
    assert!(view.message.is_some());
    // Moving up (after a render, as in the event loop) selects hop1, which can be validated.
    render_text(app, &mut view, 80, 24, unix_now());
    view.handle_key(app, common::key(KeyCode::Up));
    let sel = view.selected.unwrap();
    assert_eq!(app.token_name(sel), "hop1");
    assert_eq!(
        view.handle_key(app, common::key(KeyCode::Char('v'))),
        Action::Validate(sel)
    );
    // t reveals the selected token, and hides it again.
    assert!(!view.reveal);
    view.handle_key(app, common::key(KeyCode::Char('t')));
    assert!(view.reveal);
    let screen = render_text(app, &mut view, 120, 40, unix_now()).join("\n");
    assert!(screen.contains(app.tokens[sel].raw.as_deref().unwrap().get(..40).unwrap()));
    view.handle_key(app, common::key(KeyCode::Char('t')));
    let screen = render_text(app, &mut view, 120, 40, unix_now()).join("\n");
    assert!(!screen.contains(app.tokens[sel].raw.as_deref().unwrap().get(..40).unwrap()));
    // In the probe input, letters are text: q does not quit.
    view.handle_key(app, common::key(KeyCode::Char('/')));
    assert_eq!(view.focus, Focus::Probe);
    assert_eq!(
        view.handle_key(app, common::key(KeyCode::Char('q'))),
        Action::None
    );
    assert_eq!(view.probe.value(), "q");
    // Esc leaves the input; then q quits.
    view.handle_key(app, common::key(KeyCode::Esc));
    assert_eq!(view.focus, Focus::Tree);
    assert_eq!(
        view.handle_key(app, common::key(KeyCode::Char('q'))),
        Action::Quit
    );
    // Ctrl-C quits from anywhere, even the probe input.
    view.handle_key(app, common::key(KeyCode::Char('/')));
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(view.handle_key(app, ctrl_c), Action::Quit);
    // Shift-Tab goes backwards.
    view.handle_key(app, common::key(KeyCode::Esc));
    view.handle_key(app, common::key(KeyCode::BackTab));
    assert_eq!(view.focus, Focus::Steps);
    replay.finish().await;
}

#[test]
fn frames_output_golden() {
    let bin = env!("CARGO_BIN_EXE_chainview");
    let script = format!(
        "{}/assets/scenarios/depth-limit.chainview",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = Command::new(bin)
        .args(["--script", &script, "--frames", "80x24"])
        .env_remove("AGENTWRIT_BROKER_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\u{1b}'), "no escape codes");
    let mut filters = common::screen_filters();
    filters.push((r"/\S*/assets/scenarios/", "[SCENARIOS]/"));
    filters.push((r"· \d+ ms", "· [MS] ms"));
    insta::with_settings!({ filters => filters }, {
        insta::assert_snapshot!("frames_depth_limit_80x24", text);
    });
}

#[test]
fn frames_size_is_validated() {
    let bin = env!("CARGO_BIN_EXE_chainview");
    let out = Command::new(bin)
        .args(["--script", "x", "--frames", "huge"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected WIDTHxHEIGHT like 120x40"));
}

#[test]
fn without_a_terminal_the_session_says_so_and_writes_no_escape_codes() {
    let bin = env!("CARGO_BIN_EXE_chainview");
    let out = Command::new(bin)
        .env_remove("AGENTWRIT_BROKER_URL")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty(), "nothing written to a pipe");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs an interactive terminal") && err.contains("--script"),
        "{err}"
    );
    assert!(!err.contains('\u{1b}'));
}

/// Every action form and the audit view, at 80x24, after the deploy
/// scenario's step 21 (the repaired chain validated).
#[tokio::test]
async fn every_form_80x24() {
    let script = parse("deploy.chainview", DEPLOY).unwrap();
    let mut replay = Replay::start(script, &Settings::default()).await.unwrap();
    let mut view = View::new(Some(replay.script()), true);
    while view.step_pos < 21 {
        let r = replay.next().await.unwrap();
        view.on_report(&replay.driver.app, &r);
    }
    let hop1 = replay.driver.app.labels["hop1-fixed"];
    view.select_token(&replay.driver.app, hop1);
    let mut shots = Vec::new();
    for (name, k) in [
        ("a: create an agent", 'a'),
        ("d: delegate from hop1-fixed", 'd'),
        ("w: renew hop1-fixed", 'w'),
        ("x: release hop1-fixed", 'x'),
        ("R: revoke (token level, prefilled)", 'R'),
        ("i: import", 'i'),
        ("e: export", 'e'),
    ] {
        view.handle_key(&replay.driver.app, common::key(KeyCode::Char(k)));
        assert!(view.form.is_some(), "{name}");
        shots.push(format!(
            "── {name}\n{}",
            render_text(&replay.driver.app, &mut view, 80, 24, unix_now()).join("\n")
        ));
        view.handle_key(&replay.driver.app, common::key(KeyCode::Esc));
        assert!(view.form.is_none(), "{name}: Esc closes");
    }
    // The audit view, fetched through the worker.
    assert_eq!(
        view.handle_key(&replay.driver.app, common::key(KeyCode::Char('A'))),
        Action::FetchAudit
    );
    replay
        .command(chainview::worker::Command::Audit)
        .await
        .unwrap();
    for c in "delegation_".chars() {
        view.handle_key(&replay.driver.app, common::key(KeyCode::Char(c)));
    }
    let audit = render_text(&replay.driver.app, &mut view, 120, 30, unix_now()).join("\n");
    assert!(audit.contains("✓ hash chain consistent over"), "{audit}");
    assert!(
        audit.contains("delegation_attenuation_violation denied"),
        "{audit}"
    );
    let mut f = common::screen_filters();
    f.push((
        r"chainview-session-\d{8}-\d{6}",
        "chainview-session-[STAMP]",
    ));
    insta::with_settings!({ filters => f }, {
        insta::assert_snapshot!("every_form_80x24", shots.join("\n\n"));
    });
    replay.finish().await;
}

/// Issue 12 item 3: a step that did not go as written says why when it is
/// selected in the Steps pane (here hop 2's refusal, step 12).
#[tokio::test]
async fn a_selected_step_says_why_it_failed() {
    let (_, replay, mut view) = deploy_frames(120, 40).await;
    view.focus = Focus::Steps;
    view.steps_offset = 11;
    let screen = render_text(&replay.driver.app, &mut view, 120, 40, unix_now()).join("\n");
    // (Wrapped in the narrow pane.)
    assert!(screen.contains("refused by the broker: 403"), "{screen}");
    assert!(
        screen.contains("┃scope_violation — \"delegated"),
        "{screen}"
    );
    // A step that went as written says nothing more.
    view.steps_offset = 10;
    let screen = render_text(&replay.driver.app, &mut view, 120, 40, unix_now()).join("\n");
    assert!(!screen.contains("refused by the broker"), "{screen}");
}

/// Issue 12 item 8: the event log shows a refusal's detail and the token a
/// call was about, and Enter opens the selected entry whole.
#[tokio::test]
async fn the_event_log_shows_refusals_and_opens_an_entry() {
    let (replay, mut view) = at_step(12).await;
    let app = &replay.driver.app;
    let screen = render_text(app, &mut view, 160, 40, unix_now()).join("\n");
    assert!(screen.contains("POST /v1/delegate · hop2"), "{screen}");
    assert!(
        screen.contains("✗ scope_violation delegated scope"),
        "{screen}"
    );
    view.focus = Focus::Log;
    view.handle_key(app, common::key(KeyCode::Enter));
    let screen = render_text(app, &mut view, 160, 40, unix_now()).join("\n");
    assert!(screen.contains("about hop2"), "{screen}");
    assert!(screen.contains("exceeds delegator scope"), "{screen}");
    view.handle_key(app, common::key(KeyCode::Esc));
    let screen = render_text(app, &mut view, 160, 40, unix_now()).join("\n");
    assert!(!screen.contains("about hop2"), "{screen}");
}

/// Issue 12 item 6: a scope list that does not fit is wrapped onto
/// continuation lines (after a comma), not cut; a click on any line of a
/// wrapped node selects that node.
#[tokio::test]
async fn scope_lists_wrap_and_clicks_follow_them() {
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let (replay, mut view) = at_step(12).await;
    let app = &replay.driver.app;
    let screen = render_text(app, &mut view, 80, 24, unix_now());
    let at = screen
        .iter()
        .position(|l| l.contains("┃      read:config:production,"))
        .unwrap_or_else(|| panic!("wrapped scope line:\n{}", screen.join("\n")));
    assert!(
        screen[at + 1].contains("┃      read:deploy:web-service "),
        "{}",
        screen.join("\n")
    );
    // Click the continuation line: hop1 is selected.
    view.selected = None;
    let click = MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: view.areas.tree.x + 10,
        row: at as u16 + 1,
        modifiers: KeyModifiers::NONE,
    };
    view.handle_mouse(app, click);
    assert_eq!(view.selected, Some(app.labels["hop1"]));
}

/// After the screen grows, rows scrolled away above come back while the
/// selected node still fits (they stayed hidden before).
#[tokio::test]
async fn a_bigger_screen_brings_back_rows_above() {
    let (replay, mut view) = at_step(12).await;
    let app = &replay.driver.app;
    let small = render_text(app, &mut view, 80, 24, unix_now()).join("\n");
    assert!(!small.contains("✓ orchestrator ⏱"), "{small}");
    let big = render_text(app, &mut view, 200, 60, unix_now()).join("\n");
    assert!(big.contains("▾ ✓ orchestrator ⏱"), "{big}");
    assert!(
        big.contains("✗ deployer (hop2) REFUSED 403 scope_violation"),
        "{big}"
    );
}

/// The help overlay fits whole from 80x24 to 200x60, in the explorer and
/// in observe: every global key and action from the keymap, the legend's
/// last words (one more key would push a line out), and its two columns
/// never touch (issue 21: "f filter: task, orch, agentDenials: ↑↓/jk
/// scroll" — the left column ran into the right one).
#[tokio::test]
async fn help_fits_and_its_columns_never_touch_at_every_size() {
    use chainview::view::keymap::{KEYMAP, Mode};
    let (replay, mut view) = at_step(2).await;
    for observing in [false, true] {
        view.observing = observing;
        let mode = if observing {
            Mode::Observe
        } else {
            Mode::Normal
        };
        for (w, h) in [(80, 24), (100, 30), (120, 40), (160, 50), (200, 60)] {
            view.help = true;
            let lines: Vec<String> = render_text(&replay.driver.app, &mut view, w, h, unix_now())
                .into_iter()
                .map(|l| l.replace('\u{a0}', " "))
                .collect();
            let screen = lines.join("\n");
            let at = format!("{w}x{h}, observing {observing}:\n{screen}");
            for b in KEYMAP {
                if b.modes.contains(&mode)
                    && b.focus.is_none()
                    && !b.label.is_empty()
                    && !b.what.is_empty()
                {
                    assert!(screen.contains(b.label), "{} missing at {at}", b.label);
                }
            }
            assert!(screen.contains("to x."), "the legend is cut at {at}");
            assert!(screen.contains("Ctrl-U clear"), "{at}");
            if observing {
                assert!(screen.contains("dismiss the notice"), "{at}");
                assert!(!screen.contains("cancel step"), "{at}");
                assert!(!screen.contains("Event log:"), "{at}");
                assert!(screen.contains("observe is read-only"), "{at}");
            } else {
                assert!(screen.contains("export scenario + JSON"), "{at}");
            }
            // The right column starts where "Chains:" does; the column
            // before it is blank on every row of the box.
            let (row, col) = lines
                .iter()
                .enumerate()
                .find_map(|(i, l)| l.find("Chains:").map(|c| (i, l[..c].chars().count())))
                .expect("the panes column");
            for l in &lines[row..] {
                if l.contains('└') && l.contains('┘') && l.contains("──") {
                    break;
                }
                let before: Vec<char> = l.chars().collect();
                assert_eq!(
                    before.get(col - 1).copied().unwrap_or(' '),
                    ' ',
                    "columns touch at {at}\nrow: {l}"
                );
            }
        }
    }
}
