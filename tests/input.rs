//! Issue 21 item 4, input never surprises: Tab and Shift-Tab only move
//! focus (a hotkey after Tab is a hotkey, never text); typing starts only
//! with `/`, `t`, `f` or a form; `/` selects what the probe held (typing
//! replaces it); Ctrl-U, Ctrl-W and Home/End edit; in observe the
//! explorer's keys say observe is read-only; while a filter is typed the
//! key bar says so; after `f` the tree shows the matches. Rendered through
//! `ui::render_text` at 80x24, 120x40 and 200x60.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chainview::app::unix_now;
use chainview::scenario::{parse, replay::Replay};
use chainview::session::Settings;
use chainview::ui::render_text;
use chainview::view::{Action, Focus, View};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const DEPLOY: &str = include_str!("../assets/scenarios/deploy.chainview");
const SIZES: [(u16, u16); 3] = [(80, 24), (120, 40), (200, 60)];

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

fn key(c: KeyCode) -> KeyEvent {
    common::key(c)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn screen(replay: &Replay, view: &mut View, (w, h): (u16, u16)) -> String {
    render_text(&replay.driver.app, view, w, h, unix_now()).join("\n")
}

/// Tab onto the probe's pane focuses it, and what follows are hotkeys:
/// before, Tab dropped into typing and `jjjd` became the probe's text.
#[tokio::test]
async fn tab_onto_the_probe_only_focuses_it_and_hotkeys_stay_hotkeys() {
    let (replay, mut view) = at_step(12).await;
    let app = &replay.driver.app;
    view.handle_key(app, key(KeyCode::Tab));
    view.handle_key(app, key(KeyCode::Tab));
    assert_eq!(view.focus, Focus::Probe);
    for c in "jjk".chars() {
        view.handle_key(app, key(KeyCode::Char(c)));
    }
    assert_eq!(view.probe.value(), "");
    assert_eq!(
        view.handle_key(app, key(KeyCode::Char('n'))),
        Action::NextStep
    );
    assert_eq!(view.handle_key(app, key(KeyCode::Char('q'))), Action::Quit);
    for size in SIZES {
        let s = screen(&replay, &mut view, size);
        // The key bar is the probe pane's, not the input's.
        let bar = s.lines().last().unwrap();
        assert!(bar.starts_with(" Scope probe "), "{size:?}: {bar}");
        assert!(!bar.contains("leave input"), "{size:?}: {bar}");
        assert!(s.contains("press / and type a scope"), "{size:?}:\n{s}");
    }
    // Shift-Tab back: focus only.
    view.handle_key(app, key(KeyCode::BackTab));
    assert_eq!(view.focus, Focus::Detail);
    assert_eq!(view.probe.value(), "");
    // Typing in the probe, Tab leaves the input and moves on; the next
    // letters are hotkeys again.
    view.handle_key(app, key(KeyCode::Char('/')));
    for c in "read:data:x".chars() {
        view.handle_key(app, key(KeyCode::Char(c)));
    }
    view.handle_key(app, key(KeyCode::Tab));
    assert_eq!(view.focus, Focus::Log);
    assert_eq!(
        view.handle_key(app, key(KeyCode::Char('n'))),
        Action::NextStep
    );
    assert_eq!(view.probe.value(), "read:data:x");
}

/// `/` selects what the probe held: typing replaces it (before, it was
/// appended: `write:deploy:web-servicewrite:deploy:pay`); a move keeps it
/// and edits from there; Ctrl-U clears, Ctrl-W deletes a word.
#[tokio::test]
async fn slash_selects_the_old_text_and_typing_replaces_it() {
    let (replay, mut view) = at_step(12).await;
    let app = &replay.driver.app;
    view.handle_key(app, key(KeyCode::Char('/')));
    for c in "write:deploy:web-service".chars() {
        view.handle_key(app, key(KeyCode::Char(c)));
    }
    view.handle_key(app, key(KeyCode::Esc));
    view.handle_key(app, key(KeyCode::Char('/')));
    assert!(view.probe_selected);
    for size in SIZES {
        let s = screen(&replay, &mut view, size);
        assert!(
            s.contains("scope › write:deploy:web-service"),
            "{size:?}:\n{s}"
        );
    }
    for c in "read:x:y".chars() {
        view.handle_key(app, key(KeyCode::Char(c)));
    }
    assert_eq!(view.probe.value(), "read:x:y");
    // Again: Home keeps the text and goes to its start.
    view.handle_key(app, key(KeyCode::Esc));
    view.handle_key(app, key(KeyCode::Char('/')));
    view.handle_key(app, key(KeyCode::Home));
    view.handle_key(app, key(KeyCode::Char('x')));
    assert_eq!(view.probe.value(), "xread:x:y");
    // Backspace over the selection deletes it all.
    view.handle_key(app, key(KeyCode::Esc));
    view.handle_key(app, key(KeyCode::Char('/')));
    view.handle_key(app, key(KeyCode::Backspace));
    assert_eq!(view.probe.value(), "");
    // Ctrl-W deletes the last word, Ctrl-U the whole input; End goes to the end.
    for c in "read:data:x more".chars() {
        view.handle_key(app, key(KeyCode::Char(c)));
    }
    view.handle_key(app, ctrl('w'));
    assert_eq!(view.probe.value(), "read:data:x ");
    view.handle_key(app, key(KeyCode::Home));
    view.handle_key(app, key(KeyCode::End));
    view.handle_key(app, key(KeyCode::Char('z')));
    assert_eq!(view.probe.value(), "read:data:x z");
    view.handle_key(app, ctrl('u'));
    assert_eq!(view.probe.value(), "");
    // A paste over the selection replaces it too.
    for c in "read:a:b".chars() {
        view.handle_key(app, key(KeyCode::Char(c)));
    }
    view.handle_key(app, key(KeyCode::Esc));
    view.handle_key(app, key(KeyCode::Char('/')));
    view.handle_paste("write:c:d");
    assert_eq!(view.probe.value(), "write:c:d");
}

/// In observe the explorer's keys say observe is read-only (or what to
/// use instead); before, they did nothing at all.
#[tokio::test]
async fn in_observe_the_explorers_keys_say_it_is_read_only() {
    let (replay, mut view) = at_step(12).await;
    let app = &replay.driver.app;
    view.observing = true;
    // R is observe's own (the read-only what-if, tests/tui_judgment.rs).
    for c in ['d', 'a', 'w', 'x', 'i', 'e', 'v', 'y', 'Y', 'r', 'O'] {
        view.message = None;
        assert_eq!(view.handle_key(app, key(KeyCode::Char(c))), Action::None);
        let m = view.message.clone().unwrap_or_default();
        assert!(
            m.contains("observe is read-only")
                || m.contains("observe has no restart")
                || m.contains("observe already shows"),
            "{c}: {m:?}"
        );
        assert!(view.form.is_none(), "{c} opened a form");
    }
    view.message = None;
    view.handle_key(app, key(KeyCode::Char('d')));
    for size in SIZES {
        let s = screen(&replay, &mut view, size);
        assert!(s.contains("observe is read-only"), "{size:?}:\n{s}");
    }
}

/// While a filter is typed the key bar says Filter and how to apply it
/// (it said "Jump" before); `t` says Jump to.
#[tokio::test]
async fn the_key_bar_says_what_is_being_typed() {
    let (replay, mut view) = at_step(12).await;
    let app = &replay.driver.app;
    view.observing = true;
    view.handle_key(app, key(KeyCode::Char('f')));
    for c in "review".chars() {
        view.handle_key(app, key(KeyCode::Char(c)));
    }
    for size in SIZES {
        let s = screen(&replay, &mut view, size);
        let bar = s.lines().last().unwrap();
        assert!(
            bar.starts_with(" Filter  Enter apply the filter"),
            "{size:?}: {bar}"
        );
    }
    // Ctrl-W edits the filter; it is not the explorer's key.
    view.handle_key(app, ctrl('w'));
    assert_eq!(view.jump.as_ref().unwrap().value(), "");
    view.handle_key(app, key(KeyCode::Esc));
    view.handle_key(app, key(KeyCode::Char('t')));
    let s = screen(&replay, &mut view, (80, 24));
    assert!(
        s.lines()
            .last()
            .unwrap()
            .starts_with(" Jump to  Enter jump"),
        "{s}"
    );
}

/// A scroll left past the rows (a filter that leaves fewer, as after `f`)
/// no longer shows one row at the bottom of an empty pane: the rows there
/// are shown from the top.
#[tokio::test]
async fn a_stale_scroll_never_hides_the_rows() {
    let (replay, mut view) = at_step(12).await;
    view.selected = None;
    view.tree.offset = 1000;
    for size in SIZES {
        let s = screen(&replay, &mut view, size);
        // Before: the last row alone, the rest of the pane empty.
        let want = if size.1 > 24 { 4 } else { 2 };
        assert!(s.matches('⏱').count() >= want, "{size:?}:\n{s}");
        view.tree.offset = 1000;
    }
}
