//! The bottom line, from the one keymap: the keys of the focused view by
//! priority, as many as fit, and always `? help` and `q quit` (in an input
//! mode, how to leave it and Ctrl-C) at the end.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use super::Theme;
use crate::view::View;
use crate::view::keymap::{self, Binding, Mode, Verb};

/// The title at the start of the bar.
fn title(view: &View, mode: Mode) -> &'static str {
    match mode {
        Mode::Normal | Mode::Observe => view.focus.title(),
        Mode::Jump => "Jump to",
        Mode::Filter => "Filter",
        Mode::Confirm => "Confirm",
        Mode::Probe => "Probe",
        Mode::Form => "Form",
        Mode::Audit => "Audit",
        Mode::Help => "Help",
    }
}

/// The (key, what) pairs the bar shows for `width` columns: the pinned ones
/// always, the rest by priority while they fit.
pub fn items(view: &View, width: usize) -> Vec<(&'static str, &'static str)> {
    let mode = view.mode();
    let (rest, mut pinned) = keymap::bar(mode, view.focus);
    if !matches!(mode, Mode::Normal | Mode::Observe | Mode::Help) {
        pinned.extend(
            keymap::KEYMAP
                .iter()
                .filter(|b| b.verb == Verb::Quit && b.ctrl),
        );
    }
    let pair = |b: &Binding| (b.label, b.what);
    let mut first: Vec<(&str, &str)> = Vec::new();
    // While a step runs, how to stop it comes first.
    if mode == Mode::Normal && view.running.is_some() {
        first.push(("Esc", "cancel step"));
    }
    let cost = |(k, w): &(&str, &str)| 2 + k.width() + w.width();
    let pinned: Vec<(&str, &str)> = pinned.iter().map(|b| pair(b)).collect();
    let mut budget = width
        .saturating_sub(title(view, mode).width() + 2)
        .saturating_sub(pinned.iter().map(cost).sum());
    let mut shown = Vec::new();
    let candidates = first.into_iter().chain(
        rest.iter()
            .filter(|b| !(view.running.is_some() && b.verb == Verb::Escape))
            // Observe's what-if form sends nothing.
            .filter(|b| !(view.observing && mode == Mode::Form && b.verb == Verb::Submit))
            .map(|b| pair(b)),
    );
    for item in candidates {
        if cost(&item) > budget {
            break;
        }
        budget -= cost(&item);
        shown.push(item);
    }
    shown.extend(pinned);
    shown
}

pub fn draw(f: &mut Frame, area: Rect, view: &View, t: Theme) {
    let mut spans = vec![Span::styled(
        format!(" {} ", title(view, view.mode())),
        t.strong(),
    )];
    for (k, what) in items(view, area.width as usize) {
        spans.push(Span::styled(
            format!(" {k}"),
            t.accent().add_modifier(ratatui::style::Modifier::BOLD),
        ));
        spans.push(Span::raw(format!(" {what}")));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}
