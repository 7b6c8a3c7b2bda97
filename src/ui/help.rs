//! The help overlay (`?`): every key of the one keymap, in two columns so it
//! fits 80x24.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::Theme;
use crate::view::Focus;
use crate::view::keymap::{Mode, Verb, help_lines};

/// The verbs that open a form.
fn is_action(v: Verb) -> bool {
    matches!(
        v,
        Verb::CreateAgent
            | Verb::Delegate
            | Verb::Renew
            | Verb::Release
            | Verb::Revoke
            | Verb::Import
            | Verb::Audit
            | Verb::Export
    )
}

/// `observing`: the keys of `chainview observe` (the timeline, no actions).
pub fn draw(f: &mut Frame, area: Rect, t: Theme, observing: bool) {
    let mode = if observing {
        Mode::Observe
    } else {
        Mode::Normal
    };
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
    let key = |k: &str, what: &str| {
        Line::from(vec![
            Span::styled(format!(" {k:<10}"), t.accent()),
            Span::raw(what.to_string()),
        ])
    };
    let mut l = vec![Line::from(Span::styled("Everywhere", t.strong()))];
    let global: Vec<_> = help_lines(mode, None).collect();
    // The judgment's keys share a row in the explorer (80x24 has no more).
    let judgment = |v: Verb| matches!(v, Verb::Findings | Verb::WhoCan);
    // Ctrl-C is said on the right (it quits in every mode).
    for b in global
        .iter()
        .filter(|b| !is_action(b.verb) && !b.ctrl && (observing || !judgment(b.verb)))
    {
        l.push(key(b.label, b.what));
    }
    if !observing {
        let j: Vec<_> = global.iter().filter(|b| judgment(b.verb)).collect();
        let labels: Vec<&str> = j.iter().map(|b| b.label).collect();
        let whats: Vec<&str> = j.iter().map(|b| b.what).collect();
        l.push(key(&labels.join(" · "), &whats.join(" · ")));
    }
    let actions: Vec<_> = global.iter().filter(|b| is_action(b.verb)).collect();
    for b in actions {
        l.push(key(b.label, b.what));
    }
    f.render_widget(Paragraph::new(l), left);
    let line = |title: String, mode: Mode, focus: Option<Focus>| {
        let mut spans = vec![Span::styled(format!("{title}:"), t.strong())];
        // Ctrl-C is under "Everywhere".
        // A key and what it does stay on one line.
        for b in help_lines(mode, focus).filter(|b| !b.ctrl) {
            spans.push(Span::raw(" "));
            spans.push(Span::styled(super::unbroken(b.label), t.accent()));
            spans.push(Span::raw(super::unbroken(&format!(" {}", b.what))));
        }
        Line::from(spans)
    };
    let mut r = Vec::new();
    for focus in [
        Focus::Tree,
        Focus::Detail,
        Focus::Log,
        Focus::Agents,
        Focus::Steps,
    ] {
        let title = match focus {
            Focus::Steps if observing => "Denials".to_string(),
            f => f.title().to_string(),
        };
        r.push(line(title, mode, Some(focus)));
    }
    r.push(line("Typing a scope".into(), Mode::Probe, None));
    if observing {
        r.push(line("Jumping (t)".into(), Mode::Jump, None));
    } else {
        r.push(line("Forms".into(), Mode::Form, None));
    }
    r.push(line("Audit view".into(), Mode::Audit, None));
    r.push(Line::from(Span::styled(
        format!("Click selects. {}", super::legend()),
        t.dim(),
    )));
    f.render_widget(Paragraph::new(r).wrap(Wrap { trim: true }), right);
}
