//! The audit view (`A`): the broker's audit events, filtered as the user
//! types (event type, agent, task: substrings; an agent name matches its
//! SPIFFE id), with the hash chain checked over every event read, and —
//! when the trail was longer than a read takes — which part of it this is.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use super::{Theme, fit};
use crate::app::App;
use crate::view::AuditView;

pub fn draw(f: &mut Frame, area: Rect, app: &App, view: &mut AuditView, t: Theme) {
    let rect = Rect::new(
        area.x + 1,
        area.y + 1,
        area.width.saturating_sub(2),
        area.height.saturating_sub(2),
    );
    f.render_widget(Clear, rect);
    let block = Block::bordered()
        .border_type(BorderType::Thick)
        .border_style(t.accent())
        .title(Span::styled(" Audit trail ", t.strong()))
        .title_bottom(Line::from(Span::styled(
            " type to filter · Tab next filter · ↑↓ PgUp PgDn select · Enter refresh · Esc close ",
            t.dim(),
        )));
    let inner = block.inner(rect);
    f.render_widget(block, rect);
    let [filters_a, chain_a, list_a, detail_a] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(6),
    ])
    .areas(inner);
    filter_line(f, filters_a, view, t);
    let trail = match &app.audit {
        None => {
            f.render_widget(
                Paragraph::new(Span::styled("… fetching the audit trail", t.warn())),
                chain_a,
            );
            return;
        }
        Some(Err(e)) => {
            f.render_widget(
                Paragraph::new(Span::styled(format!("✗ {e}"), t.bad())),
                chain_a,
            );
            return;
        }
        Some(Ok(trail)) => trail,
    };
    let filter = view.filter();
    let shown: Vec<_> = trail
        .events
        .iter()
        .filter(|e| filter.matches(app, e, true))
        .collect();
    let (ok, words) = trail.chain_short();
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(
                format!(" {} of {} events shown", shown.len(), trail.events.len()),
                t.dim(),
            ),
            Span::styled(
                match trail.cut_words() {
                    Some(cut) => format!(" · CUT: {cut}"),
                    None => String::new(),
                },
                t.warn(),
            ),
            Span::styled(
                format!(" · {} hash chain {words}", if ok { "✓" } else { "✗" }),
                if ok { t.good() } else { t.bad() },
            ),
        ])),
        chain_a,
    );
    let lines = event_lines(app, trail, &shown, view, list_a, t);
    if let Some(e) = shown.get(view.offset) {
        selected_detail(f, detail_a, e, t);
    }
    if lines.is_empty() {
        f.render_widget(
            Paragraph::new(Span::styled("no event matches the filters", t.dim())),
            list_a,
        );
    } else {
        f.render_widget(Paragraph::new(lines), list_a);
    }
}

/// The filter line, with the cursor in the focused filter.
fn filter_line(f: &mut Frame, area: Rect, view: &AuditView, t: Theme) {
    let mut spans = Vec::new();
    let mut x = 0u16;
    let mut cursor = None;
    for (i, name) in AuditView::FILTER_NAMES.iter().enumerate() {
        let focused = i == view.focus;
        let label = format!("{name}: ");
        x += label.chars().count() as u16;
        spans.push(Span::styled(
            label,
            if focused { t.accent() } else { t.strong() },
        ));
        let v = view.filters[i].value();
        let shown = if v.is_empty() {
            "·".to_string()
        } else {
            fit(v, 18)
        };
        if focused {
            cursor = Some(x + view.filters[i].visual_cursor().min(18) as u16);
        }
        x += shown.chars().count() as u16 + 3;
        spans.push(Span::styled(
            shown,
            if focused { t.selected() } else { t.dim() },
        ));
        spans.push(Span::raw("   "));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
    if let Some(cx) = cursor {
        f.set_cursor_position(Position::new(area.x + cx, area.y));
    }
}

/// The visible events, the selected one highlighted, the first broken link red.
fn event_lines(
    app: &App,
    trail: &crate::app::AuditTrail,
    shown: &[&crate::broker::types::AuditEvent],
    view: &mut AuditView,
    list_a: Rect,
    t: Theme,
) -> Vec<Line<'static>> {
    let h = (list_a.height as usize).max(1);
    // `offset` is the selected event; the list scrolls to keep it visible.
    view.offset = view.offset.min(shown.len().saturating_sub(1));
    let first = view.offset.saturating_sub(h - 1);
    let w = list_a.width as usize;
    let broken_id = trail.chain.as_ref().err().map(|b| b.id.as_str());
    shown
        .iter()
        .enumerate()
        .skip(first)
        .take(h)
        .map(|(i, e)| {
            let who = app
                .agent_name(&e.agent_id)
                .map(str::to_string)
                .unwrap_or_else(|| super::short_spiffe(&e.agent_id));
            let time = e.timestamp.get(11..19).unwrap_or(&e.timestamp);
            let style = if Some(e.id.as_str()) == broken_id {
                t.bad()
            } else if e.outcome == "denied" {
                t.warn()
            } else {
                ratatui::style::Style::new()
            };
            let text = format!(
                "{} {time} {:<32} {:<7} {:<14} {}",
                e.id,
                e.event_type,
                e.outcome,
                fit(&who, 14),
                e.detail
            );
            let style = if i == view.offset {
                style.patch(t.selected())
            } else {
                style
            };
            Line::from(Span::styled(fit(&text, w), style))
        })
        .collect()
}

/// The selected event whole: who, when, the full detail, its hash link.
fn selected_detail(f: &mut Frame, area: Rect, e: &crate::broker::types::AuditEvent, t: Theme) {
    let mut d = vec![Line::from(Span::styled(
        format!(
            "{} · {} · {} {} · agent {} · task {}",
            e.id,
            e.timestamp,
            e.event_type,
            e.outcome,
            if e.agent_id.is_empty() {
                "-"
            } else {
                &e.agent_id
            },
            if e.task_id.is_empty() {
                "-"
            } else {
                &e.task_id
            },
        ),
        t.strong(),
    ))];
    d.push(Line::from(Span::styled(
        format!(
            "hash {}… ← prev {}…",
            e.hash.get(..16).unwrap_or(&e.hash),
            e.prev_hash.get(..16).unwrap_or(&e.prev_hash)
        ),
        t.dim(),
    )));
    d.push(Line::from(e.detail.clone()));
    f.render_widget(
        Paragraph::new(d).wrap(ratatui::widgets::Wrap { trim: true }),
        area,
    );
}
