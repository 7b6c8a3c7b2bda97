//! The probe answering "who can" (`W`, or a pattern with `*` as action or
//! resource): per agent, live / may / dead, by which grant, and the selected
//! row's path from the chain's root with the scope at each hop. Enter goes
//! to the holder's token and highlights the path in the tree.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{Theme, fit, open_pane};
use crate::app::App;
use crate::view::{Focus, View};

/// An agent as the panes name it (the explorer's name, observe's
/// `task/inst`), a SPIFFE id shortened when it has none.
fn short(app: &App, a: &str) -> String {
    match app.agent_name(a) {
        Some(n) if !n.starts_with("spiffe://") => n.to_string(),
        _ => crate::rules::spiffe::short(a, true),
    }
}

pub fn draw(f: &mut Frame, area: Rect, app: &App, view: &mut View, t: Theme) {
    let inner = open_pane(f, area, view, Focus::Probe, " Who can (W) ");
    if inner.height < 2 {
        return;
    }
    let input = view.probe.value().to_string();
    let prompt = "who can › ";
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(prompt, t.accent()),
            Span::styled(input.clone(), t.strong()),
        ])),
        Rect { height: 1, ..inner },
    );
    if view.focus == Focus::Probe {
        let x = inner.x + prompt.chars().count() as u16 + view.probe.visual_cursor() as u16;
        f.set_cursor_position(Position::new(
            x.min(inner.right().saturating_sub(1)),
            inner.y,
        ));
    }
    let j = &view.judgment;
    let line1 = Rect {
        y: inner.y + 1,
        height: 1,
        ..inner
    };
    let summary = match (&j.unavailable, &j.who) {
        (Some(why), _) => Line::from(Span::styled(format!("not judged: {why}"), t.warn())),
        (None, None) => Line::from(Span::styled(
            "type a pattern: action:resource:identifier, * for any (write:*:production)",
            t.dim(),
        )),
        (None, Some((_, Err(e)))) => Line::from(Span::styled(format!("✗ {e}"), t.bad())),
        (None, Some((_, Ok(rows)))) => {
            let n = |s: &str| rows.iter().filter(|r| r.access.status == s).count();
            Line::from(vec![
                Span::styled(format!("✓ {} live", n("live")), t.good()),
                Span::raw(" · "),
                Span::styled(format!("◌ {} may", n("maybe")), t.warn()),
                Span::raw(" · "),
                Span::styled(format!("{} dead", n("dead")), t.dead()),
                Span::styled(" agents", t.dim()),
            ])
        }
    };
    f.render_widget(Paragraph::new(summary), line1);
    let rows = j.who_rows();
    if rows.is_empty() {
        if matches!(&j.who, Some((_, Ok(_)))) {
            f.render_widget(
                Paragraph::new(Span::styled("nobody holds a grant meeting it", t.dim())),
                Rect {
                    y: inner.y + 2,
                    height: 1,
                    ..inner
                },
            );
        }
        return;
    }
    let w = inner.width as usize;
    let body_h = inner.height.saturating_sub(2);
    let foot_h: u16 = match body_h {
        0..=3 => 0,
        4..=7 => 2,
        _ => 3,
    };
    let list_h = body_h.saturating_sub(foot_h) as usize;
    let sel = j.who_sel.min(rows.len() - 1);
    let offset = (sel + 1).saturating_sub(list_h.max(1));
    let name_w = (w / 3).clamp(10, 28);
    let lines: Vec<Line> = rows[offset..]
        .iter()
        .take(list_h)
        .enumerate()
        .map(|(k, r)| {
            let a = &r.access;
            let (mark, style) = match a.status {
                "live" => ("✓", t.good()),
                "maybe" => ("◌", t.warn()),
                _ => ("·", t.dead()),
            };
            // The explorer's name for the token; observe's tree shows node ids.
            let token = r
                .token
                .filter(|&t| !view.observing && t < app.tokens.len())
                .map_or_else(|| a.node.clone(), |t| app.token_name(t));
            let text = format!(
                "{:<5} {:<name_w$} {:<5} by {}",
                a.status,
                fit(&short(app, &a.agent), name_w),
                token,
                a.grants.join(" ")
            );
            let line = Line::from(vec![
                Span::styled(format!("{mark} "), style),
                Span::raw(fit(&text, w.saturating_sub(2))),
            ]);
            if offset + k == sel {
                line.style(t.selected())
            } else {
                line
            }
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines),
        Rect {
            y: inner.y + 2,
            height: list_h as u16,
            ..inner
        },
    );
    if foot_h > 0 {
        let a = &rows[sel].access;
        let hops: Vec<String> = a
            .path
            .iter()
            .map(|h| format!("{} [{}]", short(app, &h.agent), h.scope.join(" ")))
            .collect();
        let mut foot = vec![Line::from(vec![
            Span::styled("path: ", t.accent()),
            Span::raw(hops.join(" → ")),
        ])];
        if a.status != "live" {
            foot.push(Line::from(Span::styled(a.status_why.clone(), t.dim())));
        }
        f.render_widget(
            Paragraph::new(foot).wrap(Wrap { trim: true }),
            Rect {
                y: inner.y + 2 + list_h as u16,
                height: foot_h,
                ..inner
            },
        );
    }
}
