//! The one keymap: (mode, pane, key) → verb, each with its description.
//! The key handler ([`View::handle_key`](super::View::handle_key)) looks
//! keys up here; the key bar, the help overlay and `--help` render this same
//! table. A new key is one line here.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::Focus;

/// What the keyboard is talking to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The panes.
    Normal,
    /// Typing a scope into the probe.
    Probe,
    /// An action's form.
    Form,
    /// The audit view's filters.
    Audit,
    /// The help overlay.
    Help,
    /// The panes of `chainview observe` (read-only; a timeline instead of steps).
    Observe,
    /// Typing an event id or time to jump to (observe).
    Jump,
    /// Typing a filter (observe).
    Filter,
    /// A question on screen (a change to an external broker, dropping your
    /// actions): y or n.
    Confirm,
}

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Quit,
    Help,
    CloseHelp,
    NextStep,
    BackStep,
    Restart,
    OpenProbe,
    FocusNext,
    FocusPrev,
    /// Normal: dismiss the notice and cancel the step in flight.
    Escape,
    /// Probe: back to the panes.
    LeaveInput,
    Reveal,
    /// Copy the selected token to the clipboard (OSC 52).
    Copy,
    /// Save the selected token to a file.
    SaveToken,
    Validate,
    CreateAgent,
    Delegate,
    Renew,
    Release,
    Revoke,
    Import,
    Audit,
    Export,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    Enter,
    PageUp,
    PageDown,
    /// Form: carry it out; Audit: fetch again.
    Submit,
    /// Form or audit view: close without doing anything.
    Close,
    NextField,
    PrevField,
    /// Form: the previous / next choice of a choice field (text fields take
    /// the key as editing).
    ChoicePrev,
    ChoiceNext,
    /// Observe: one event forward / back on the timeline.
    NextEvent,
    PrevEvent,
    /// Observe: the first event; the head (and follow it, live).
    FirstEvent,
    FollowHead,
    /// Observe: type an event id or a time to jump to.
    Jump,
    /// Observe: type a filter (task, orch, agent or app).
    Filter,
    /// Explorer: show or hide other clients' chains (the merged view).
    Others,
    /// The findings pane (`check`'s findings, Enter jumps to the node).
    Findings,
    /// The probe answers "who can" for a pattern (`write:*:production`).
    WhoCan,
    /// Observe: what a revocation of the selected token would do (read-only).
    WhatIf,
    /// An input's own editing key (Ctrl-U, Ctrl-W, Home/End): typed, and
    /// listed in help.
    Edit,
    /// Observe: a key of the explorer's (an action); says observe is read-only.
    ReadOnly,
    /// Confirm: go ahead / do not.
    Allow,
    Deny,
}

/// One line of the keymap.
#[derive(Debug)]
pub struct Binding {
    pub modes: &'static [Mode],
    /// Only while this pane has focus (normal mode); `None`: any pane.
    pub focus: Option<Focus>,
    /// The keys; empty: any key.
    pub keys: &'static [KeyCode],
    pub ctrl: bool,
    /// As shown: `n/Space`.
    pub label: &'static str,
    pub verb: Verb,
    pub what: &'static str,
    /// Key bar order (lower first); `Some(0)`: always shown, at the end;
    /// `None`: only in help.
    pub bar: Option<u8>,
}

use KeyCode::*;
use Mode::*;

const ALL: &[Mode] = &[
    Normal, Probe, Form, Audit, Help, Observe, Jump, Filter, Confirm,
];
/// The modes that type into an input.
const INPUTS: &[Mode] = &[Probe, Jump, Filter, Form, Audit];
/// The panes, in the explorer and in observe.
const N: &[Mode] = &[Normal, Observe];
/// The explorer only (scenario steps and broker actions).
const E: &[Mode] = &[Normal];
/// Observe only (the timeline).
const O: &[Mode] = &[Observe];

const fn b(
    modes: &'static [Mode],
    focus: Option<Focus>,
    keys: &'static [KeyCode],
    label: &'static str,
    verb: Verb,
    what: &'static str,
    bar: Option<u8>,
) -> Binding {
    Binding {
        modes,
        focus,
        keys,
        ctrl: false,
        label,
        verb,
        what,
        bar,
    }
}

const fn pane(
    focus: Focus,
    keys: &'static [KeyCode],
    label: &'static str,
    verb: Verb,
    what: &'static str,
    bar: Option<u8>,
) -> Binding {
    b(N, Some(focus), keys, label, verb, what, bar)
}

/// The keymap. The first line that matches wins, so pane lines come before
/// the lines for any pane.
pub const KEYMAP: &[Binding] = &[
    Binding {
        modes: ALL,
        focus: None,
        keys: &[Char('c')],
        ctrl: true,
        label: "Ctrl-C",
        verb: Verb::Quit,
        what: "quit",
        bar: None,
    },
    b(
        &[Help],
        None,
        &[],
        "any key",
        Verb::CloseHelp,
        "close help",
        Some(0),
    ),
    // Panes.
    pane(
        Focus::Tree,
        &[Up, Char('k')],
        "↑↓/jk",
        Verb::Up,
        "move",
        Some(1),
    ),
    pane(Focus::Tree, &[Down, Char('j')], "", Verb::Down, "", None),
    pane(
        Focus::Tree,
        &[Left, Char('h')],
        "←→/hl",
        Verb::Left,
        "fold",
        Some(2),
    ),
    pane(Focus::Tree, &[Right, Char('l')], "", Verb::Right, "", None),
    pane(
        Focus::Tree,
        &[Enter],
        "Enter",
        Verb::Enter,
        "toggle",
        Some(6),
    ),
    pane(
        Focus::Tree,
        &[Home],
        "Home/End",
        Verb::Home,
        "first/last",
        None,
    ),
    pane(Focus::Tree, &[End], "", Verb::End, "", None),
    b(
        E,
        Some(Focus::Tree),
        &[Char('O')],
        "O",
        Verb::Others,
        "others' chains",
        Some(8),
    ),
    pane(
        Focus::Agents,
        &[Up, Char('k')],
        "↑↓/jk",
        Verb::Up,
        "select agent",
        Some(1),
    ),
    pane(Focus::Agents, &[Down, Char('j')], "", Verb::Down, "", None),
    pane(
        Focus::Agents,
        &[Enter],
        "Enter",
        Verb::Enter,
        "its token",
        None,
    ),
    pane(
        Focus::Steps,
        &[Up, Char('k')],
        "↑↓/jk",
        Verb::Up,
        "scroll",
        Some(1),
    ),
    pane(Focus::Steps, &[Down, Char('j')], "", Verb::Down, "", None),
    pane(
        Focus::Detail,
        &[Up, Char('k')],
        "↑↓/jk",
        Verb::Up,
        "scroll",
        Some(1),
    ),
    pane(Focus::Detail, &[Down, Char('j')], "", Verb::Down, "", None),
    pane(
        Focus::Log,
        &[Up, Char('k')],
        "↑↓/jk",
        Verb::Up,
        "scroll",
        Some(1),
    ),
    pane(Focus::Log, &[Down, Char('j')], "", Verb::Down, "", None),
    pane(
        Focus::Findings,
        &[Up, Char('k')],
        "↑↓/jk",
        Verb::Up,
        "select",
        Some(1),
    ),
    pane(
        Focus::Findings,
        &[Down, Char('j')],
        "",
        Verb::Down,
        "",
        None,
    ),
    pane(
        Focus::Findings,
        &[Enter],
        "Enter",
        Verb::Enter,
        "go to its node",
        Some(2),
    ),
    pane(Focus::Log, &[End], "End", Verb::End, "follow", Some(2)),
    pane(
        Focus::Log,
        &[Enter],
        "Enter",
        Verb::Enter,
        "open entry",
        Some(3),
    ),
    pane(
        Focus::Probe,
        &[Up, Char('k')],
        "↑↓/jk",
        Verb::Up,
        "scroll",
        Some(1),
    ),
    pane(Focus::Probe, &[Down, Char('j')], "", Verb::Down, "", None),
    // Any pane.
    b(
        E,
        None,
        &[Char('n'), Char(' ')],
        "n/Space",
        Verb::NextStep,
        "next step",
        Some(1),
    ),
    b(
        N,
        None,
        &[Char('/')],
        "/",
        Verb::OpenProbe,
        "probe",
        Some(3),
    ),
    b(N, None, &[Char('F')], "F", Verb::Findings, "findings", None),
    b(N, None, &[Char('W')], "W", Verb::WhoCan, "who can", None),
    b(
        O,
        None,
        &[Char('R')],
        "R",
        Verb::WhatIf,
        "what if revoked",
        None,
    ),
    b(
        E,
        None,
        &[Char('v')],
        "v",
        Verb::Validate,
        "validate selected",
        Some(4),
    ),
    b(
        E,
        None,
        &[Char('d')],
        "d",
        Verb::Delegate,
        "delegate from selected",
        Some(4),
    ),
    b(
        E,
        None,
        &[Char('b')],
        "b",
        Verb::BackStep,
        "back a step",
        Some(5),
    ),
    b(
        E,
        None,
        &[Char('r')],
        "r",
        Verb::Restart,
        "restart",
        Some(5),
    ),
    b(
        E,
        None,
        &[Char('a')],
        "a",
        Verb::CreateAgent,
        "create an agent",
        Some(6),
    ),
    b(
        E,
        None,
        &[Char('t')],
        "t",
        Verb::Reveal,
        "reveal/hide the token",
        Some(7),
    ),
    b(
        E,
        None,
        &[Char('y')],
        "y/Y",
        Verb::Copy,
        "copy / save the token",
        Some(8),
    ),
    b(E, None, &[Char('Y')], "", Verb::SaveToken, "", None),
    // The timeline (observe).
    b(
        O,
        None,
        &[Char('n'), Char(' ')],
        "n/Space",
        Verb::NextEvent,
        "next event",
        Some(1),
    ),
    b(
        O,
        None,
        &[Char('b')],
        "b",
        Verb::PrevEvent,
        "previous event",
        Some(1),
    ),
    b(
        O,
        None,
        &[Char('g')],
        "g",
        Verb::FirstEvent,
        "first event",
        Some(5),
    ),
    b(
        O,
        None,
        &[Char('G')],
        "G",
        Verb::FollowHead,
        "last event, follow live",
        Some(4),
    ),
    b(
        O,
        None,
        &[Char('t')],
        "t",
        Verb::Jump,
        "jump to an event or time",
        Some(4),
    ),
    b(
        O,
        None,
        &[Char('f')],
        "f",
        Verb::Filter,
        "filter: task, orch, agent, app",
        Some(5),
    ),
    b(
        O,
        None,
        &[
            Char('r'),
            Char('v'),
            Char('d'),
            Char('a'),
            Char('y'),
            Char('Y'),
            Char('w'),
            Char('x'),
            Char('R'),
            Char('i'),
            Char('e'),
            Char('O'),
        ],
        "R d a w x i e v y",
        Verb::ReadOnly,
        "observe is read-only (says where)",
        None,
    ),
    b(
        N,
        None,
        &[Tab],
        "Tab",
        Verb::FocusNext,
        "next pane",
        Some(7),
    ),
    b(
        N,
        None,
        &[BackTab],
        "Shift-Tab",
        Verb::FocusPrev,
        "previous pane",
        None,
    ),
    b(
        E,
        None,
        &[Char('w')],
        "w",
        Verb::Renew,
        "renew selected",
        Some(8),
    ),
    b(
        E,
        None,
        &[Char('x')],
        "x",
        Verb::Release,
        "release selected",
        Some(8),
    ),
    b(
        E,
        None,
        &[Char('R')],
        "R",
        Verb::Revoke,
        "revoke (admin)",
        Some(9),
    ),
    b(
        E,
        None,
        &[Char('i')],
        "i",
        Verb::Import,
        "import a pasted JWT",
        Some(9),
    ),
    b(
        N,
        None,
        &[Char('A')],
        "A",
        Verb::Audit,
        "audit trail (admin)",
        Some(9),
    ),
    b(
        E,
        None,
        &[Char('e')],
        "e",
        Verb::Export,
        "export scenario + JSON",
        Some(9),
    ),
    b(
        E,
        None,
        &[Esc],
        "Esc",
        Verb::Escape,
        "dismiss / cancel step",
        Some(9),
    ),
    b(
        O,
        None,
        &[Esc],
        "Esc",
        Verb::Escape,
        "dismiss the notice",
        Some(9),
    ),
    b(N, None, &[Char('?')], "?", Verb::Help, "help", Some(0)),
    b(N, None, &[Char('q')], "q", Verb::Quit, "quit", Some(0)),
    // Typing where to jump (observe).
    b(
        &[Jump],
        None,
        &[Enter],
        "Enter",
        Verb::Submit,
        "jump",
        Some(1),
    ),
    b(&[Jump], None, &[Esc], "Esc", Verb::Close, "cancel", Some(1)),
    // Typing a filter (observe).
    b(
        &[Filter],
        None,
        &[Enter],
        "Enter",
        Verb::Submit,
        "apply the filter",
        Some(1),
    ),
    b(
        &[Filter],
        None,
        &[Esc],
        "Esc",
        Verb::Close,
        "cancel",
        Some(1),
    ),
    // A question on screen.
    b(
        &[Confirm],
        None,
        &[Char('y')],
        "y",
        Verb::Allow,
        "yes, go ahead",
        Some(1),
    ),
    b(
        &[Confirm],
        None,
        &[Char('n'), Esc],
        "n/Esc",
        Verb::Deny,
        "no",
        Some(1),
    ),
    // Typing a scope.
    b(
        &[Probe],
        None,
        &[Esc],
        "Esc",
        Verb::LeaveInput,
        "leave input",
        Some(1),
    ),
    b(&[Probe], None, &[Up], "↑↓", Verb::Up, "scroll", Some(2)),
    b(&[Probe], None, &[Down], "", Verb::Down, "", None),
    b(
        &[Probe],
        None,
        &[Enter],
        "Enter",
        Verb::Enter,
        "its holder",
        Some(4),
    ),
    b(
        &[Probe],
        None,
        &[Tab],
        "Tab",
        Verb::FocusNext,
        "leave, next pane",
        Some(3),
    ),
    b(&[Probe], None, &[BackTab], "", Verb::FocusPrev, "", None),
    // Editing any input: typed, listed so help can say them.
    Binding {
        modes: INPUTS,
        focus: None,
        keys: &[Char('u')],
        ctrl: true,
        label: "Ctrl-U",
        verb: Verb::Edit,
        what: "clear",
        bar: None,
    },
    Binding {
        modes: INPUTS,
        focus: None,
        keys: &[Char('w')],
        ctrl: true,
        label: "Ctrl-W",
        verb: Verb::Edit,
        what: "delete a word",
        bar: None,
    },
    b(
        INPUTS,
        None,
        &[Home, End],
        "Home/End",
        Verb::Edit,
        "start / end",
        None,
    ),
    // A form.
    b(
        &[Form],
        None,
        &[Enter],
        "Enter",
        Verb::Submit,
        "submit",
        Some(1),
    ),
    b(&[Form], None, &[Esc], "Esc", Verb::Close, "cancel", Some(1)),
    b(
        &[Form],
        None,
        &[Tab, Down],
        "Tab",
        Verb::NextField,
        "next field",
        Some(2),
    ),
    b(&[Form], None, &[BackTab, Up], "", Verb::PrevField, "", None),
    b(
        &[Form],
        None,
        &[Left],
        "←→",
        Verb::ChoicePrev,
        "choose",
        Some(3),
    ),
    b(
        &[Form],
        None,
        &[Right, Char(' ')],
        "",
        Verb::ChoiceNext,
        "",
        None,
    ),
    // The audit view.
    b(
        &[Audit],
        None,
        &[Enter],
        "Enter",
        Verb::Submit,
        "refresh",
        Some(2),
    ),
    b(&[Audit], None, &[Esc], "Esc", Verb::Close, "close", Some(1)),
    b(
        &[Audit],
        None,
        &[Tab],
        "Tab",
        Verb::NextField,
        "next filter",
        Some(3),
    ),
    b(&[Audit], None, &[BackTab], "", Verb::PrevField, "", None),
    b(
        &[Audit],
        None,
        &[Up],
        "↑↓",
        Verb::Up,
        "select event",
        Some(4),
    ),
    b(&[Audit], None, &[Down], "", Verb::Down, "", None),
    b(
        &[Audit],
        None,
        &[PageUp],
        "PgUp/PgDn",
        Verb::PageUp,
        "page",
        None,
    ),
    b(&[Audit], None, &[PageDown], "", Verb::PageDown, "", None),
];

/// The verb for a key in this mode and pane; `None`: not bound (in an
/// input mode the key is then typed).
pub fn lookup(mode: Mode, focus: Focus, key: KeyEvent) -> Option<Verb> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    KEYMAP
        .iter()
        .find(|bd| {
            bd.modes.contains(&mode)
                && bd
                    .focus
                    .is_none_or(|f| f == focus && matches!(mode, Mode::Normal | Mode::Observe))
                && (bd.keys.is_empty() || (bd.keys.contains(&key.code) && bd.ctrl == ctrl))
        })
        .map(|bd| bd.verb)
}

/// The lines a key bar shows in this mode and pane, in order, with the
/// always-shown ones (`Some(0)`) last.
pub fn bar(mode: Mode, focus: Focus) -> (Vec<&'static Binding>, Vec<&'static Binding>) {
    let shown = |bd: &&Binding| {
        bd.modes.contains(&mode)
            && bd
                .focus
                .is_none_or(|f| f == focus && matches!(mode, Mode::Normal | Mode::Observe))
            && !bd.label.is_empty()
    };
    let mut rest: Vec<&Binding> = KEYMAP
        .iter()
        .filter(shown)
        .filter(|bd| bd.bar.is_some_and(|p| p > 0))
        .collect();
    rest.sort_by_key(|bd| bd.bar);
    let pinned: Vec<&Binding> = KEYMAP
        .iter()
        .filter(shown)
        .filter(|bd| bd.bar == Some(0))
        .collect();
    (rest, pinned)
}

/// The lines help shows for a mode (and pane, in normal mode): those with a
/// label, in table order.
pub fn help_lines(mode: Mode, focus: Option<Focus>) -> impl Iterator<Item = &'static Binding> {
    KEYMAP.iter().filter(move |bd| {
        bd.modes.contains(&mode) && bd.focus == focus && !bd.label.is_empty() && !bd.what.is_empty()
    })
}

/// The normal-mode keys in one paragraph, for `--help`.
pub fn summary(width: usize) -> String {
    summary_of(Normal, width)
}

/// The keys of `mode` (any pane) in one paragraph, for a `--help`.
pub fn summary_of(mode: Mode, width: usize) -> String {
    let items: Vec<String> = KEYMAP
        .iter()
        .filter(|bd| bd.modes.contains(&mode) && bd.focus.is_none() && !bd.label.is_empty())
        .map(|bd| format!("{} {}", bd.label, bd.what))
        .collect();
    let mut out = String::new();
    let mut line = String::from(" ");
    for item in items {
        let sep = if line.trim().is_empty() { " " } else { " · " };
        if line.chars().count() + sep.len() + item.chars().count() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(" ");
            line.push(' ');
            line.push_str(&item);
        } else {
            line.push_str(sep);
            line.push_str(&item);
        }
    }
    out.push_str(line.trim_end());
    out
}

#[cfg(test)]
mod tests;
