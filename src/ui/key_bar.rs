//! The bottom line: the keys of the focused view, then the global ones.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::Theme;
use crate::view::{Focus, View};

/// Keys of each view, as (key, what) pairs.
pub fn focused_keys(focus: Focus) -> &'static [(&'static str, &'static str)] {
    match focus {
        Focus::Tree => &[
            ("↑↓/jk", "move"),
            ("←→/hl", "fold"),
            ("Enter", "toggle"),
            ("v", "validate"),
            ("d", "delegate"),
            ("t", "reveal"),
        ],
        Focus::Agents => &[("↑↓/jk", "select agent")],
        Focus::Steps => &[("↑↓/jk", "scroll")],
        Focus::Detail => &[
            ("↑↓/jk", "scroll"),
            ("t", "reveal token"),
            ("v", "validate"),
        ],
        Focus::Probe => &[
            ("type", "a scope"),
            ("↑↓", "scroll"),
            ("Esc", "leave input"),
        ],
        Focus::Log => &[("↑↓/jk", "scroll"), ("End", "follow")],
    }
}

/// The explorer's actions (each opens a form; Enter submits, Esc cancels).
pub const ACTION_KEYS: &[(&str, &str)] = &[
    ("a", "create an agent"),
    ("d", "delegate from selected"),
    ("w", "renew selected"),
    ("x", "release selected"),
    ("R", "revoke (admin)"),
    ("i", "import a pasted JWT"),
    ("A", "audit trail (admin)"),
    ("e", "export scenario + JSON"),
];

pub const GLOBAL_KEYS: &[(&str, &str)] = &[
    ("n/Space", "next step"),
    ("b", "back"),
    ("r", "restart"),
    ("/", "probe"),
    ("Tab", "focus"),
    ("?", "help"),
    ("q", "quit"),
];

pub fn draw(f: &mut Frame, area: Rect, view: &View, t: Theme) {
    let modal: Option<&[(&str, &str)]> = if view.form.is_some() {
        Some(&[
            ("Enter", "submit"),
            ("Esc", "cancel"),
            ("Tab", "next field"),
            ("Ctrl-C", "quit"),
        ])
    } else if view.audit.is_some() {
        Some(&[
            ("type", "filter"),
            ("Tab", "next filter"),
            ("Enter", "refresh"),
            ("Esc", "close"),
        ])
    } else {
        None
    };
    if let Some(keys) = modal {
        let mut spans = Vec::new();
        for (k, what) in keys {
            spans.push(Span::styled(
                format!(" {k}"),
                t.accent().add_modifier(ratatui::style::Modifier::BOLD),
            ));
            spans.push(Span::raw(format!(" {what}")));
        }
        f.render_widget(Paragraph::new(Line::from(spans)), area);
        return;
    }
    let mut spans = vec![Span::styled(
        format!(" {} ", view.focus.title()),
        t.strong(),
    )];
    let global: &[(&str, &str)] = if view.focus == Focus::Probe {
        &[("Tab", "focus"), ("Ctrl-C", "quit")]
    } else {
        GLOBAL_KEYS
    };
    for (k, what) in focused_keys(view.focus).iter().chain(global) {
        spans.push(Span::styled(
            format!(" {k}"),
            t.accent().add_modifier(ratatui::style::Modifier::BOLD),
        ));
        spans.push(Span::raw(format!(" {what}")));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}
