//! Agent list: name, SPIFFE id shortened, registration scope, token status.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Theme, fit, hint, open_pane, short_spiffe, status_symbol};
use crate::app::App;
use crate::view::{Focus, View};

pub fn draw(f: &mut Frame, area: Rect, app: &App, view: &View, t: Theme, now: i64) {
    // When not every agent fits, the title says which are shown.
    let n = app.agents.len();
    let rows = area.height.saturating_sub(2);
    let visible = (rows as usize / crate::view::AGENT_LINES).max(1);
    let first = view.first_agent(rows);
    let title = if n > visible {
        format!(
            " Agents ({n}) · {}–{} ↕ ",
            first + 1,
            (first + visible).min(n)
        )
    } else {
        format!(" Agents ({n}) ")
    };
    let inner = open_pane(f, area, view, Focus::Agents, title);
    if app.agents.is_empty() {
        f.render_widget(
            hint(
                if view.observing {
                    "No agents in the trail yet: they appear as the broker registers them."
                } else if view.steps.is_empty() {
                    "No agents yet: a creates one."
                } else {
                    "No agents yet: the scenario's agent steps register them."
                },
                t,
            ),
            inner,
        );
        return;
    }
    let w = inner.width as usize;
    let mut lines = Vec::new();
    for (i, a) in app.agents.iter().enumerate().skip(first).take(visible) {
        // What the agent holds now: its registration, or the renewal of it.
        let status = a.token.map(|t| app.status(app.latest(t), now));
        let (sym, style) = match &status {
            Some(s) => (status_symbol(s), t.status(s)),
            None => ("·", t.dim()),
        };
        let id = a
            .agent_id
            .as_deref()
            .map(short_spiffe)
            .unwrap_or_else(|| "not registered".into());
        let word = status.as_ref().map(|s| s.word()).unwrap_or("outside");
        let mut first_line = Line::from(vec![
            Span::styled(format!("{sym} "), style),
            Span::styled(
                fit(&super::agent_display(&a.name), w.saturating_sub(14).max(6)),
                t.strong(),
            ),
            Span::raw(" "),
            Span::styled(word.to_string(), style),
        ]);
        let second = Line::from(Span::styled(
            fit(&format!("  {id} {}", a.scope.join(",")), w),
            t.dim(),
        ));
        if view.focus == Focus::Agents && i == view.agent_sel {
            first_line = first_line.style(t.selected());
        }
        lines.push(first_line);
        lines.push(second);
    }
    f.render_widget(Paragraph::new(lines), inner);
}
