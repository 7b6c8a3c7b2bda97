//! The bottom line: the keys of the focused view, then the global ones.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::Theme;
use crate::app::view::{Focus, View};

/// Keys of each view, as (key, what) pairs.
pub fn focused_keys(focus: Focus) -> &'static [(&'static str, &'static str)] {
    match focus {
        Focus::Tree => &[
            ("↑↓/jk", "move"),
            ("←→/hl", "fold"),
            ("Enter", "toggle"),
            ("v", "validate"),
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
