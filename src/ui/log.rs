//! Event log: each broker call with method, path, status, latency and the
//! token it was about; a refusal's detail on the line below it. Enter opens
//! the selected entry whole.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{Theme, fit, hint, open_pane};
use crate::app::{App, LogEntry};
use crate::view::{Focus, View};

fn time(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|d| d.format("%H:%M:%S").to_string())
        .unwrap_or_default()
}

fn status(e: &LogEntry, t: Theme) -> Span<'static> {
    match e.call.status {
        Some(s) if s < 400 => Span::styled(format!("{s:<3}"), t.good()),
        Some(s) => Span::styled(format!("{s:<3}"), t.bad()),
        None => Span::styled("---", t.bad()),
    }
}

/// An entry's lines: the call (with its token), and a refusal's detail.
fn entry_lines(e: &LogEntry, w: usize, t: Theme) -> Vec<Line<'static>> {
    let c = &e.call;
    let about = e
        .about
        .as_deref()
        .map(|a| format!(" · {a}"))
        .unwrap_or_default();
    // A narrow pane drops the latency (Enter shows it) to keep the path
    // and the token.
    let latency = if w >= 60 {
        format!(" {:>6.1}ms ", c.latency.as_secs_f64() * 1000.0)
    } else {
        " ".to_string()
    };
    let used = 12 + latency.len();
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{} ", time(e.at)), t.dim()),
        status(e, t),
        Span::styled(latency, t.dim()),
        Span::raw(fit(
            &format!("{:<4} {}{about}", c.method, c.path),
            w.saturating_sub(used),
        )),
    ])];
    if let Some(err) = &c.error {
        lines.push(Line::from(Span::styled(
            fit(&format!("  ✗ {err}"), w),
            t.bad(),
        )));
    }
    lines
}

/// The selected entry whole (Enter), wrapped.
fn opened(e: &LogEntry, t: Theme) -> Vec<Line<'static>> {
    let c = &e.call;
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{} ", time(e.at)), t.dim()),
            status(e, t),
            Span::raw(format!(" {} {}", c.method, c.path)),
        ]),
        Line::from(Span::styled(
            format!(
                "{:.1} ms{}",
                c.latency.as_secs_f64() * 1000.0,
                e.about
                    .as_deref()
                    .map(|a| format!(" · about {a}"))
                    .unwrap_or_default()
            ),
            t.dim(),
        )),
    ];
    if let Some(err) = &c.error {
        lines.push(Line::from(Span::styled(format!("✗ {err}"), t.bad())));
    }
    lines.push(Line::from(Span::styled("Enter or Esc closes", t.dim())));
    lines
}

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
    let w = inner.width as usize;
    let last = view
        .log_offset
        .unwrap_or(app.log.len() - 1)
        .min(app.log.len() - 1);
    if view.log_open {
        f.render_widget(
            Paragraph::new(opened(&app.log[last], t)).wrap(Wrap { trim: false }),
            inner,
        );
        return;
    }
    // From the selected (or newest) entry up, as many as fit.
    let mut lines: Vec<Line> = Vec::new();
    for e in app.log[..=last].iter().rev() {
        let mut el = entry_lines(e, w, t);
        if lines.len() + el.len() > h {
            break;
        }
        el.append(&mut lines);
        lines = el;
    }
    f.render_widget(Paragraph::new(lines), inner);
}
