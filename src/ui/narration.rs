//! The scenario's `say` narration, shown prominently above the chain tree.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::Theme;
use crate::view::View;

fn text(view: &View) -> String {
    match (&view.narration, view.steps.get(view.step_pos)) {
        (Some(n), _) => format!("» {n}"),
        (None, Some(_)) => format!(
            "» {} — press n or Space to run the next step, ? for help.",
            view.title.as_deref().unwrap_or("chainview")
        ),
        (None, None) => "» Press / to probe a scope, ? for help.".into(),
    }
}

/// Rows needed at this width (at most 3; 5 on a tall screen).
pub fn height(view: &View, width: u16, screen_height: u16) -> u16 {
    let chars = text(view).chars().count() as u16;
    let w = width.saturating_sub(4).max(1);
    let max = if screen_height >= 36 { 5 } else { 3 };
    chars.div_ceil(w).clamp(1, max)
}

pub fn draw(f: &mut Frame, area: Rect, view: &View, t: Theme) {
    let p = Paragraph::new(Line::from(Span::styled(text(view), t.narration())))
        .wrap(Wrap { trim: true });
    f.render_widget(p, area);
}
