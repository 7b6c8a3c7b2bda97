//! The scenario's `say` narration, shown prominently above the chain tree.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use unicode_width::UnicodeWidthStr;

use super::Theme;
use crate::view::View;

fn text(view: &View) -> String {
    match (&view.narration, view.steps.get(view.step_pos)) {
        (Some(n), _) => format!("» {n}"),
        (None, Some(_)) => format!(
            "» {} — press n or Space to run the next step, ? for help.",
            view.title.as_deref().unwrap_or("chainview")
        ),
        (None, None) if view.steps.is_empty() && !view.observing => {
            "» No scenario: a creates an agent, i imports a token, O shows other clients' chains, A the audit trail, / probes a scope, ? help.".into()
        }
        (None, None) => "» Press / to probe a scope, ? for help.".into(),
    }
}

/// Rows `text` takes when wrapped at word boundaries to `width` columns,
/// as the paragraph wraps it (a word longer than the line is broken).
fn wrapped_rows(text: &str, width: usize) -> usize {
    let width = width.max(1);
    let mut rows = 1;
    let mut used = 0;
    for word in text.split_whitespace() {
        let w = word.width();
        let need = if used == 0 { w } else { used + 1 + w };
        if need <= width {
            used = need;
        } else if used == 0 {
            rows += (w - 1) / width;
            used = w % width;
        } else {
            rows += 1 + w.saturating_sub(1) / width;
            used = if w > width { w % width } else { w };
        }
    }
    rows
}

/// Rows needed to show the whole narration at this width (capped so the
/// tree keeps room: 4 rows, 8 on a tall screen).
pub fn height(view: &View, width: u16, screen_height: u16) -> u16 {
    let rows = wrapped_rows(&text(view), width as usize) as u16;
    let max = if screen_height >= 36 { 8 } else { 4 };
    rows.clamp(1, max)
}

pub fn draw(f: &mut Frame, area: Rect, view: &View, t: Theme) {
    let mut shown = text(view);
    // Too long even for the room it got: end with … rather than mid-word.
    if wrapped_rows(&shown, area.width as usize) > area.height as usize {
        let mut words: Vec<&str> = shown.split_whitespace().collect();
        while !words.is_empty()
            && wrapped_rows(&format!("{} …", words.join(" ")), area.width as usize)
                > area.height as usize
        {
            words.pop();
        }
        shown = format!("{} …", words.join(" "));
    }
    let p =
        Paragraph::new(Line::from(Span::styled(shown, t.narration()))).wrap(Wrap { trim: true });
    f.render_widget(p, area);
}

#[cfg(test)]
mod tests {
    use super::wrapped_rows;

    #[test]
    fn rows_follow_word_wrapping() {
        assert_eq!(wrapped_rows("aaa bbb", 7), 1);
        assert_eq!(wrapped_rows("aaa bbb", 6), 2);
        // Words that do not fit whole move down, as the paragraph moves them.
        assert_eq!(wrapped_rows("aaaa bbbb cccc", 9), 2);
        assert_eq!(wrapped_rows("aaaa bbbb cccc", 8), 3);
    }
}
