//! Step panel: the scenario's steps, the next one highlighted, marks for those run.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{Theme, fit, hint, open_pane};
use crate::view::{Focus, StepMark, View};

pub fn draw(f: &mut Frame, area: Rect, view: &View, t: Theme) {
    if view.observing {
        return denials(f, area, view, t);
    }
    // The title never runs into the corner: a long file name is cut with "…".
    let room = (area.width as usize).saturating_sub(12).max(4);
    let title = if view.file.is_empty() {
        " Steps ".to_string()
    } else {
        format!(
            " Steps · {} ",
            super::fit(view.file.rsplit('/').next().unwrap_or(&view.file), room)
        )
    };
    let inner = open_pane(f, area, view, Focus::Steps, title);
    if view.steps.is_empty() {
        f.render_widget(
            hint(
                "No scenario loaded: chainview demo [FILE] runs one (on this broker with --broker URL).",
                t,
            ),
            inner,
        );
        return;
    }
    let h = inner.height as usize;
    let first = if view.focus == Focus::Steps {
        view.steps_offset.min(view.steps.len().saturating_sub(1))
    } else {
        view.step_pos.saturating_sub(h / 3)
    };
    let w = inner.width as usize;
    let mut lines: Vec<Line> = view
        .steps
        .iter()
        .enumerate()
        .skip(first)
        .take(h)
        .map(|(i, s)| {
            let current = i == view.step_pos;
            let mark = match s.mark {
                Some(m) => Span::styled(
                    format!("{} ", m.symbol()),
                    match m {
                        StepMark::Held | StepMark::Done => t.good(),
                        StepMark::Refused | StepMark::Failed | StepMark::Error => t.bad(),
                        StepMark::NotRun => t.dim(),
                    },
                ),
                None if current => Span::styled("▶ ", t.accent().add_modifier(Modifier::BOLD)),
                None => Span::raw("  "),
            };
            let text = match &s.say {
                Some(say) => format!("» {say}"),
                None => s.source.clone(),
            };
            let mut style = if s.mark.is_some() {
                t.dim()
            } else {
                ratatui::style::Style::new()
            };
            if s.say.is_some() {
                style = style.add_modifier(Modifier::ITALIC);
            }
            if current {
                style = t.selected();
            }
            Line::from(vec![
                mark,
                Span::styled(fit(&text, w.saturating_sub(2)), style),
            ])
        })
        .collect();
    // The step selected in this pane (its top line) says why it went wrong.
    if view.focus == Focus::Steps
        && let Some(why) = view.steps.get(first).and_then(|s| s.why.as_deref())
        && !lines.is_empty()
    {
        lines.insert(1, Line::from(Span::styled(format!("  {why}"), t.bad())));
        lines.truncate(h);
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        return;
    }
    f.render_widget(Paragraph::new(lines), inner);
}

/// Observe: refused escalations, scope violations, auth failures, revoked
/// tokens still presented — by count (where the explorer has its steps).
fn denials(f: &mut Frame, area: Rect, view: &View, t: Theme) {
    let inner = open_pane(f, area, view, Focus::Steps, " Denials · by count ");
    if view.side.is_empty() {
        f.render_widget(hint("No denials so far.", t), inner);
        return;
    }
    let w = inner.width as usize;
    let first = if view.focus == Focus::Steps {
        view.steps_offset.min(view.side.len().saturating_sub(1))
    } else {
        0
    };
    let lines: Vec<Line> = view
        .side
        .iter()
        .skip(first)
        .take(inner.height as usize)
        .map(|l| Line::from(Span::styled(fit(l, w), t.bad())))
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}
