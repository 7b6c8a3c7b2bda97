//! Event log: each broker call with method, path, status, latency; refusals
//! with the broker's detail.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Theme, hint, open_pane};
use crate::app::App;
use crate::view::{Focus, View};

pub fn draw(f: &mut Frame, area: Rect, app: &App, view: &View, t: Theme) {
    let inner = open_pane(
        f,
        area,
        view,
        Focus::Log,
        format!(" Event log ({}) ", app.log.len()),
    );
    if app.log.is_empty() {
        f.render_widget(hint("Broker calls appear here.", t), inner);
        return;
    }
    let h = inner.height as usize;
    let last = view
        .log_offset
        .unwrap_or(app.log.len() - 1)
        .min(app.log.len() - 1);
    let first = (last + 1).saturating_sub(h);
    let lines: Vec<Line> = app.log[first..=last]
        .iter()
        .map(|e| {
            let c = &e.call;
            let time = chrono::DateTime::from_timestamp(e.at, 0)
                .map(|d| d.format("%H:%M:%S").to_string())
                .unwrap_or_default();
            let (status, style) = match c.status {
                Some(s) if s < 400 => (s.to_string(), t.good()),
                Some(s) => (s.to_string(), t.bad()),
                None => ("---".to_string(), t.bad()),
            };
            let mut spans = vec![
                Span::styled(format!("{time} "), t.dim()),
                Span::styled(format!("{status:<3}"), style),
                Span::styled(
                    format!(" {:>6.1}ms ", c.latency.as_secs_f64() * 1000.0),
                    t.dim(),
                ),
                Span::raw(format!("{:<4} {}", c.method, c.path)),
            ];
            if let Some(err) = &c.error {
                spans.push(Span::styled(format!("  {err}"), t.bad()));
            }
            Line::from(spans)
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}
