//! The help overlay (`?`): every key, in two columns so it fits 80x24.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::Theme;
use super::key_bar::{ACTION_KEYS, GLOBAL_KEYS, focused_keys};
use crate::view::Focus;

const MORE_KEYS: &[(&str, &str)] = &[
    ("v", "validate selected"),
    ("t", "reveal/hide the token"),
    ("Esc", "leave input, dismiss"),
];

pub fn draw(f: &mut Frame, area: Rect, t: Theme) {
    let w = 78.min(area.width);
    let h = 24.min(area.height);
    let rect = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    f.render_widget(Clear, rect);
    let block = Block::bordered().title(" Help — keys (any key closes) ");
    let inner = block.inner(rect);
    f.render_widget(block, rect);
    let [left, right] =
        Layout::horizontal([Constraint::Length(36), Constraint::Fill(1)]).areas(inner);
    let mut l = vec![Line::from(Span::styled("Everywhere", t.strong()))];
    let key = |k: &str, what: &str| {
        Line::from(vec![
            Span::styled(format!(" {k:<8}"), t.accent()),
            Span::raw(what.to_string()),
        ])
    };
    for (k, what) in GLOBAL_KEYS.iter().chain(MORE_KEYS) {
        l.push(key(k, what));
    }
    l.push(Line::from(Span::styled(
        "Actions (a form each)",
        t.strong(),
    )));
    for (k, what) in ACTION_KEYS {
        l.push(key(k, what));
    }
    f.render_widget(Paragraph::new(l), left);
    let mut r = Vec::new();
    for focus in [
        Focus::Tree,
        Focus::Detail,
        Focus::Probe,
        Focus::Log,
        Focus::Agents,
        Focus::Steps,
    ] {
        let mut spans = vec![Span::styled(format!("{}:", focus.title()), t.strong())];
        for (k, what) in focused_keys(focus) {
            spans.push(Span::styled(format!(" {k}"), t.accent()));
            spans.push(Span::raw(format!(" {what}")));
        }
        r.push(Line::from(spans));
    }
    r.push(Line::from(Span::styled(
        "Shift-Tab previous pane · click focus/select · wheel scroll · Ctrl-C quit · paste works in forms.",
        t.dim(),
    )));
    r.push(Line::from(Span::styled(
        "b replays to the previous step on a fresh broker; r restarts (actions are dropped: e saves them first).",
        t.dim(),
    )));
    r.push(Line::from(Span::styled(super::legend(), t.dim())));
    f.render_widget(Paragraph::new(r).wrap(Wrap { trim: true }), right);
}
