use super::*;

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

#[test]
fn pane_keys_win_over_any_pane_keys_and_input_modes_type() {
    assert_eq!(
        lookup(Normal, Focus::Tree, key(Char('j'))),
        Some(Verb::Down)
    );
    assert_eq!(lookup(Normal, Focus::Log, key(End)), Some(Verb::End));
    assert_eq!(lookup(Normal, Focus::Detail, key(End)), None);
    assert_eq!(
        lookup(Normal, Focus::Tree, key(Char('q'))),
        Some(Verb::Quit)
    );
    // In the probe and forms, letters are typed.
    assert_eq!(lookup(Probe, Focus::Probe, key(Char('q'))), None);
    assert_eq!(lookup(Form, Focus::Tree, key(Char('j'))), None);
    // Ctrl-C quits everywhere; any key closes help.
    let ctrl_c = KeyEvent::new(Char('c'), KeyModifiers::CONTROL);
    for m in [Normal, Probe, Form, Audit, Help] {
        assert_eq!(lookup(m, Focus::Tree, ctrl_c), Some(Verb::Quit), "{m:?}");
    }
    assert_eq!(
        lookup(Help, Focus::Tree, key(Char('x'))),
        Some(Verb::CloseHelp)
    );
    // A plain `c` is not Ctrl-C.
    assert_eq!(lookup(Normal, Focus::Tree, key(Char('c'))), None);
}

#[test]
fn the_key_bar_always_ends_with_help_and_quit() {
    for focus in [
        Focus::Tree,
        Focus::Agents,
        Focus::Steps,
        Focus::Detail,
        Focus::Log,
    ] {
        let (_, pinned) = bar(Normal, focus);
        let labels: Vec<&str> = pinned.iter().map(|b| b.label).collect();
        assert_eq!(labels, ["?", "q"], "{focus:?}");
    }
}

#[test]
fn summary_wraps_and_names_every_global_key() {
    let s = summary(80);
    assert!(s.lines().all(|l| l.chars().count() <= 80), "{s}");
    for k in [
        "n/Space next step",
        "q quit",
        "? help",
        "A audit trail (admin)",
    ] {
        assert!(s.contains(k), "{k} in {s}");
    }
}
