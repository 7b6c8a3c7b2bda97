//! The top line: which broker, which app, connection state, scenario position.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Theme, fit};
use crate::app::App;
use crate::view::View;

pub fn draw(f: &mut Frame, area: Rect, app: &App, view: &View, t: Theme) {
    let broker = if app.embedded {
        format!("embedded broker {}", app.broker_url)
    } else {
        match app.broker_url.strip_prefix("file:") {
            Some(file) => format!("trail {file}"),
            None => format!("broker {}", app.broker_url),
        }
    };
    let conn = match (&app.connection_error, app.connected) {
        (Some(e), _) => Span::styled(format!("✗ unreachable: {e}"), t.bad()),
        (None, true) => Span::styled("● connected", t.good()),
        (None, false) => Span::styled("… connecting", t.warn()),
    };
    let app_part = match &app.app {
        Some(a) => a.app_id.clone().unwrap_or_else(|| a.client_id.clone()),
        None => "no app yet".into(),
    };
    let mut spans = vec![
        Span::styled(
            " chainview ",
            t.strong().add_modifier(ratatui::style::Modifier::REVERSED),
        ),
        Span::raw(" "),
        conn,
    ];
    if let Some(at) = &view.as_of {
        spans.push(Span::styled(" │ ", t.dim()));
        spans.push(Span::styled(at.clone(), t.strong()));
    }
    if let Some(alarm) = &view.alarm {
        spans.push(Span::styled(" │ ", t.dim()));
        spans.push(Span::styled(format!("✗ hash chain {alarm}"), t.bad()));
    }
    if !view.steps.is_empty() {
        spans.push(Span::styled(" │ ", t.dim()));
        spans.push(Span::raw(format!(
            "step {}/{}",
            view.step_pos,
            view.steps.len()
        )));
    }
    // The step in flight, then a notice (an action's result, a hint), come
    // before the broker and app, which are the first to be cut on a narrow
    // terminal.
    if let Some(step) = &view.running {
        spans.push(Span::styled(" │ ", t.dim()));
        spans.push(Span::styled(
            format!("⧗ {} (Esc cancels)", fit(step, 40)),
            t.warn(),
        ));
    }
    if let Some(m) = &view.message {
        spans.push(Span::styled(" │ ", t.dim()));
        let room = (area.width as usize).saturating_sub(40).max(30);
        spans.push(Span::styled(fit(m, room), t.warn()));
    }
    spans.push(Span::styled(" │ ", t.dim()));
    if let Some(c) = &view.context {
        // A production context in a colour of its own (and a mark, for
        // NO_COLOR), before the broker it names.
        if c.production {
            spans.push(Span::styled(
                format!("▲ {} (production)", fit(&c.name, 24)),
                t.bad().add_modifier(ratatui::style::Modifier::REVERSED),
            ));
        } else {
            spans.push(Span::styled(
                format!("context {}", fit(&c.name, 24)),
                t.accent(),
            ));
        }
        spans.push(Span::raw(" "));
    }
    spans.push(Span::raw(broker));
    spans.push(Span::styled(" │ ", t.dim()));
    spans.push(Span::raw(format!("app {app_part}")));
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}
