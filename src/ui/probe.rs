//! Scope probe: type a scope; every token is listed as permits (and by which
//! grant), denies (and why, from `scope::explain`), or dead (permits nothing).
//! Malformed input is flagged inline. Verdicts are recomputed on every
//! keystroke without allocating; only the visible rows are formatted.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Theme, fit, pane, status_symbol};
use crate::app::view::{Focus, View};
use crate::app::{App, TokenId};
use crate::scope::{self, Scope, VerdictIdx};

/// A verdict by index, resolved to text only when shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compact {
    Permits(usize),
    Denies(VerdictIdx),
    Dead,
}

/// Probe results for the current input, recomputed when the input, the
/// state or the second changes.
#[derive(Debug, Default)]
pub struct ProbeCache {
    key: Option<(String, u64, i64)>,
    pub rows: Vec<(TokenId, Compact)>,
    pub permits: usize,
    pub denies: usize,
    pub dead: usize,
    pub error: Option<String>,
}

impl ProbeCache {
    pub fn update(&mut self, app: &App, input: &str, now: i64) {
        let key = (input.to_string(), app.generation, now);
        if self.key.as_ref() == Some(&key) {
            return;
        }
        self.key = Some(key);
        self.rows.clear();
        self.permits = 0;
        self.denies = 0;
        self.dead = 0;
        self.error = None;
        let input = input.trim();
        if input.is_empty() {
            return;
        }
        let req = match Scope::parse(input) {
            Ok(r) => r,
            Err(e) => {
                self.error = Some(e.to_string());
                return;
            }
        };
        self.rows.reserve(app.tokens.len());
        for t in &app.tokens {
            if t.raw.is_none() && !matches!(t.status_at(now), crate::app::TokenStatus::Refused(_)) {
                continue;
            }
            let c = if t.status_at(now).is_dead() {
                Compact::Dead
            } else {
                match scope::explain_parsed(&req, t.scope()) {
                    VerdictIdx::Covered(i) => Compact::Permits(i),
                    other => Compact::Denies(other),
                }
            };
            match c {
                Compact::Permits(_) => self.permits += 1,
                Compact::Denies(_) => self.denies += 1,
                Compact::Dead => self.dead += 1,
            }
            self.rows.push((t.id, c));
        }
        self.rows.sort_by_key(|(_, c)| match c {
            Compact::Permits(_) => 0,
            Compact::Denies(_) => 1,
            Compact::Dead => 2,
        });
    }
}

pub fn draw(
    f: &mut Frame,
    area: Rect,
    app: &App,
    view: &mut View,
    cache: &mut ProbeCache,
    t: Theme,
    now: i64,
) {
    let block = pane(view, Focus::Probe, " Scope probe (/) ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    if inner.height < 2 {
        return;
    }
    let input = view.probe.value().to_string();
    cache.update(app, &input, now);
    let prompt = "scope › ";
    let shown = if input.is_empty() && view.focus != Focus::Probe {
        Span::styled(
            "press / and type a scope, e.g. write:deploy:payment-svc",
            t.dim(),
        )
    } else {
        Span::styled(input.clone(), t.strong())
    };
    f.render_widget(
        Paragraph::new(Line::from(vec![Span::styled(prompt, t.accent()), shown])),
        Rect { height: 1, ..inner },
    );
    if view.focus == Focus::Probe {
        let x = inner.x + prompt.chars().count() as u16 + view.probe.visual_cursor() as u16;
        f.set_cursor_position(Position::new(
            x.min(inner.right().saturating_sub(1)),
            inner.y,
        ));
    }
    let summary = match &cache.error {
        Some(e) => Line::from(Span::styled(format!("✗ {e}"), t.bad())),
        None if input.trim().is_empty() => Line::from(Span::styled(
            "every token: permits · denies · dead",
            t.dim(),
        )),
        None => Line::from(vec![
            Span::styled(format!("✓ {} permit", cache.permits), t.good()),
            Span::raw(" · "),
            Span::styled(format!("✗ {} deny", cache.denies), t.bad()),
            Span::raw(" · "),
            Span::styled(format!("† {} dead", cache.dead), t.dead()),
        ]),
    };
    f.render_widget(
        Paragraph::new(summary),
        Rect {
            y: inner.y + 1,
            height: 1,
            ..inner
        },
    );
    let rows_area = Rect {
        y: inner.y + 2,
        height: inner.height.saturating_sub(2),
        ..inner
    };
    let h = rows_area.height as usize;
    let max_off = cache.rows.len().saturating_sub(h);
    view.probe_offset = view.probe_offset.min(max_off);
    let w = rows_area.width as usize;
    let lines: Vec<Line> = cache.rows[view.probe_offset..]
        .iter()
        .take(h)
        .map(|(id, c)| {
            let tok = &app.tokens[*id];
            let holder = &app.agents[tok.holder].name;
            let name = match &tok.label {
                Some(l) if l != holder => format!("{l} ({holder})"),
                _ => holder.clone(),
            };
            let (mark, word, why, style) = match c {
                Compact::Permits(i) => {
                    ("✓", "permits", format!("by {}", tok.scope()[*i]), t.good())
                }
                Compact::Denies(v) => {
                    let why = match v.resolve(tok.scope()) {
                        scope::Verdict::Denied(d) => d.to_string(),
                        scope::Verdict::Covered { by } => format!("by {by}"),
                    };
                    ("✗", "denies", why, t.bad())
                }
                Compact::Dead => {
                    let s = tok.status_at(now);
                    (
                        status_symbol(&s),
                        "dead",
                        format!("{} — permits nothing", s.word()),
                        t.dead(),
                    )
                }
            };
            let nw = (w / 3).clamp(8, 18);
            let text = format!("{word:<7} {:<nw$} {why}", fit(&name, nw));
            Line::from(vec![
                Span::styled(format!("{mark} "), style),
                Span::raw(fit(&text, w.saturating_sub(2))),
            ])
        })
        .collect();
    f.render_widget(Paragraph::new(lines), rows_area);
}
