//! The top line: which broker (or trail), which app, connection state,
//! scenario position, the notice of the moment. When it does not fit, the
//! least important part is shortened first, always ending with "…", then
//! dropped: the app, then the broker, then the context, the step, and last
//! the connection, the step in flight and the notice.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use super::{Theme, fit};
use crate::app::App;
use crate::view::View;

/// One part of the bar: its text, style, how important (higher stays
/// longer) and how short it may get before it is dropped.
struct Part {
    text: String,
    style: Style,
    keep: u8,
    min: usize,
    /// Follows the part before it after a space, not a separator (the
    /// context before the broker it names).
    glue: bool,
}

const SEP: &str = " │ ";

/// The parts, in the order shown.
fn parts(app: &App, view: &View, t: Theme) -> Vec<Part> {
    let part = |text: String, style: Style, keep: u8, min: usize| Part {
        text,
        style,
        keep,
        min,
        glue: false,
    };
    let trail = app.broker_url.strip_prefix("file:");
    let mut p = Vec::new();
    // A file has no connection to speak of; a broker does.
    match (&app.connection_error, app.connected, trail) {
        (_, _, Some(_)) => {}
        (Some(e), _, None) => p.push(part(format!("✗ unreachable: {e}"), t.bad(), 9, 14)),
        (None, true, None) => p.push(part("● connected".into(), t.good(), 9, 11)),
        (None, false, None) => p.push(part("… connecting".into(), t.warn(), 9, 12)),
    }
    if let Some(alarm) = &view.alarm {
        p.push(part(format!("✗ hash chain {alarm}"), t.bad(), 10, 16));
    }
    if let Some(at) = &view.as_of {
        p.push(part(at.clone(), t.strong(), 8, 20));
    }
    if !view.steps.is_empty() {
        p.push(part(
            format!("step {}/{}", view.step_pos, view.steps.len()),
            Style::new(),
            6,
            9,
        ));
    }
    if let Some(step) = &view.running {
        p.push(part(
            format!("⧗ {} (Esc cancels)", fit(step, 40)),
            t.warn(),
            8,
            16,
        ));
    }
    if let Some(m) = &view.message {
        // What a key just said stays the longest (after the hash-chain alarm).
        p.push(part(m.clone(), t.warn(), 9, 24));
    }
    if let Some(c) = &view.context {
        // A production context in a colour of its own (and a mark, for
        // NO_COLOR), before the broker it names.
        if c.production {
            p.push(part(
                format!("▲ {} (production)", fit(&c.name, 24)),
                t.bad().add_modifier(Modifier::REVERSED),
                7,
                14,
            ));
        } else {
            p.push(part(
                format!("context {}", fit(&c.name, 24)),
                t.accent(),
                5,
                12,
            ));
        }
    }
    let broker = if app.embedded {
        format!("embedded broker {}", app.broker_url)
    } else {
        match trail {
            Some(file) => format!("trail {file}"),
            None => format!("broker {}", app.broker_url),
        }
    };
    p.push(Part {
        glue: view.context.is_some(),
        ..part(
            broker,
            Style::new(),
            if trail.is_some() { 6 } else { 3 },
            12,
        )
    });
    // Observe reads as the admin, not as an app.
    if !view.observing {
        let app_part = match &app.app {
            Some(a) => a.app_id.clone().unwrap_or_else(|| a.client_id.clone()),
            None => "no app yet".into(),
        };
        p.push(part(format!("app {app_part}"), Style::new(), 1, 8));
    }
    p
}

/// Shortens, then drops, the least important parts until they fit `room`.
fn fit_parts(mut parts: Vec<Part>, room: usize) -> Vec<Part> {
    let total = |p: &[Part]| -> usize {
        p.iter()
            .filter(|x| !x.text.is_empty())
            .map(|x| x.text.width() + if x.glue { 1 } else { SEP.width() })
            .sum::<usize>()
    };
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| parts[i].keep);
    for &i in &order {
        let over = total(&parts).saturating_sub(room);
        if over == 0 {
            break;
        }
        let w = parts[i].text.width();
        let to = w.saturating_sub(over).max(parts[i].min);
        if to < w {
            parts[i].text = fit(&parts[i].text, to);
        }
        if total(&parts) > room {
            // Shortest it may be and still too long: it goes, before any
            // more important part is touched.
            parts[i].text.clear();
        }
    }
    parts.retain(|p| !p.text.is_empty());
    parts
}

pub fn draw(f: &mut Frame, area: Rect, app: &App, view: &View, t: Theme) {
    const BADGE: &str = " chainview ";
    let room = (area.width as usize).saturating_sub(BADGE.width());
    let mut spans = vec![Span::styled(
        BADGE,
        t.strong().add_modifier(Modifier::REVERSED),
    )];
    for (i, p) in fit_parts(parts(app, view, t), room).into_iter().enumerate() {
        let sep = if i == 0 || p.glue { " " } else { SEP };
        spans.push(Span::styled(sep, t.dim()));
        spans.push(Span::styled(p.text, p.style));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str, keep: u8, min: usize) -> Part {
        Part {
            text: text.into(),
            style: Style::new(),
            keep,
            min,
            glue: false,
        }
    }

    #[test]
    fn the_least_important_part_gives_way_first_and_ends_with_an_ellipsis() {
        let parts = vec![
            p("● connected", 9, 11),
            p("a notice that matters", 7, 10),
            p("broker http://127.0.0.1:40000", 3, 12),
            p("app app-chainview-1234", 1, 8),
        ];
        // The app goes first (shortened, it would still not fit).
        let out = fit_parts(parts, 70);
        let texts: Vec<&str> = out.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "● connected",
                "a notice that matters",
                "broker http://127.0.0.1:40000"
            ]
        );
        let parts = vec![
            p("● connected", 9, 11),
            p("a notice that matters", 7, 10),
            p("broker http://127.0.0.1:40000", 3, 12),
            p("app app-chainview-1234", 1, 8),
        ];
        let out = fit_parts(parts, 60);
        let texts: Vec<&str> = out.iter().map(|p| p.text.as_str()).collect();
        // Then the broker, shortened with "…".
        assert_eq!(
            texts,
            [
                "● connected",
                "a notice that matters",
                "broker http://127.…"
            ]
        );
    }
}
