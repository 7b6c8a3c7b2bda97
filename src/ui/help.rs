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

/// The keys column: a key and what it does; what does not fit goes on
/// below, under the description, never past the column.
fn key_lines(k: &str, what: &str, width: usize, t: Theme) -> Vec<Line<'static>> {
    const KEY: usize = 11;
    let mut out = Vec::new();
    // A key label wider than its column ("R d a w x i e v y") gets a line
    // of its own, the words below it.
    let long = k.chars().count() >= KEY - 1;
    if long {
        out.push(Line::from(Span::styled(format!(" {k}"), t.accent())));
    }
    for (i, w) in super::wrap_words(what, width.saturating_sub(KEY))
        .into_iter()
        .enumerate()
    {
        let k = if i == 0 && !long { k } else { "" };
        out.push(Line::from(vec![
            Span::styled(format!(" {k:<10}"), t.accent()),
            Span::raw(w),
        ]));
    }
    out
}

/// `observing`: the keys of `chainview observe` (the timeline, no actions).
pub fn draw(f: &mut Frame, area: Rect, t: Theme, observing: bool) {
    let mode = if observing {
        Mode::Observe
    } else {
        Mode::Normal
    };
    // 78 columns at 80x24, more on a wider screen; never wider than it.
    let w = (area.width.saturating_sub(2))
        .clamp(20, 104)
        .min(area.width);
    let h = (area.height * 2 / 3).clamp(24, 34).min(area.height);
    let rect = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    f.render_widget(Clear, rect);
    let block = Block::bordered()
        .title(" Help — keys (any key closes) ")
        .title_bottom(Span::styled(
            if observing {
                " Tab moves focus; only /, t and f type · click selects · Ctrl-C quits "
            } else {
                " Tab moves focus; only / and forms type · click selects · Ctrl-C quits "
            },
            t.dim(),
        ));
    let inner = block.inner(rect);
    f.render_widget(block, rect);
    // The keys column, a gap, the panes column: side by side, never over
    // each other; the keys column as wide as its longest line needs.
    let left_w = 33.min(inner.width / 2);
    let [left, _, right] = Layout::horizontal([
        Constraint::Length(left_w),
        Constraint::Length(1),
        Constraint::Fill(1),
    ])
    .areas(inner);
    let lw = left.width as usize;
    let mut l = vec![Line::from(Span::styled("Everywhere", t.strong()))];
    let global: Vec<_> = help_lines(mode, None).collect();
    // The judgment's keys share a row in the explorer (80x24 has no more).
    let judgment = |v: Verb| matches!(v, Verb::Findings | Verb::WhoCan);
    // Ctrl-C is said on the right (it quits in every mode).
    for b in global.iter().filter(|b| {
        (!is_action(b.verb) && b.verb != Verb::Quit || b.label == "q")
            && (observing || !judgment(b.verb))
    }) {
        l.extend(key_lines(b.label, b.what, lw, t));
    }
    if !observing {
        let j: Vec<_> = global.iter().filter(|b| judgment(b.verb)).collect();
        let labels: Vec<&str> = j.iter().map(|b| b.label).collect();
        let whats: Vec<&str> = j.iter().map(|b| b.what).collect();
        l.extend(key_lines(&labels.join(" · "), &whats.join(" · "), lw, t));
    }
    let actions: Vec<_> = global.iter().filter(|b| is_action(b.verb)).collect();
    for b in actions {
        l.extend(key_lines(b.label, b.what, lw, t));
    }
    f.render_widget(Paragraph::new(l), left);
    // One line per view: a title, then each key and what it does (a key
    // and its words never split across lines).
    let keys_of = |mode: Mode, focus: Option<Focus>, edit: bool| -> Vec<(&str, &str)> {
        // Ctrl-C is under "Everywhere"; the editing keys have a line of their own.
        help_lines(mode, focus)
            .filter(|b| b.verb != Verb::Quit && (b.verb == Verb::Edit) == edit)
            .map(|b| (b.label, b.what))
            .collect()
    };
    let line = |title: String, keys: Vec<(&str, &str)>| {
        let mut spans = vec![Span::styled(format!("{title}:"), t.strong())];
        for (label, what) in keys {
            spans.push(Span::raw(" "));
            spans.push(Span::styled(super::unbroken(label), t.accent()));
            spans.push(Span::raw(super::unbroken(&format!(" {what}"))));
        }
        Line::from(spans)
    };
    // Panes with the same keys share a line ("Detail, Steps: ↑↓/jk scroll").
    let mut panes: Vec<(String, Vec<(&str, &str)>)> = Vec::new();
    for focus in [
        Focus::Tree,
        Focus::Detail,
        Focus::Probe,
        Focus::Log,
        Focus::Agents,
        Focus::Steps,
    ] {
        let title = match focus {
            Focus::Steps if observing => "Denials".to_string(),
            Focus::Log if observing => continue,
            f => f.title().to_string(),
        };
        let keys = keys_of(mode, Some(focus), false);
        match panes.iter_mut().find(|(_, k)| *k == keys) {
            Some((t, _)) => {
                t.push_str(", ");
                t.push_str(&title);
            }
            None => panes.push((title, keys)),
        }
    }
    let mut r: Vec<Line> = panes.into_iter().map(|(t, k)| line(t, k)).collect();
    r.push(line(
        "Typing a scope (/)".into(),
        keys_of(Mode::Probe, None, false),
    ));
    if observing {
        r.push(line("Jumping (t)".into(), keys_of(Mode::Jump, None, false)));
        r.push(line(
            "Filtering (f)".into(),
            keys_of(Mode::Filter, None, false),
        ));
    } else {
        r.push(line("Forms".into(), keys_of(Mode::Form, None, false)));
    }
    r.push(line("Audit view".into(), keys_of(Mode::Audit, None, false)));
    r.push(line("Any input".into(), keys_of(Mode::Probe, None, true)));
    r.push(Line::from(Span::styled(super::legend(), t.dim())));
    f.render_widget(Paragraph::new(r).wrap(Wrap { trim: true }), right);
}
