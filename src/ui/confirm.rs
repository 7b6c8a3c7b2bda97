//! The question on screen (a change to an external broker, `b`/`r`
//! dropping your actions): a popup of its own, its words wrapped to fit,
//! so what to press is never cut, at 80x24 or larger.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};
use unicode_width::UnicodeWidthStr;

use super::{Theme, wrap_words};
use crate::view::Ask;

pub fn draw(f: &mut Frame, area: Rect, ask: &Ask, t: Theme) {
    let w = area.width.saturating_sub(4).min(72);
    // Inside the border, a column of margin each side.
    let room = w.saturating_sub(4) as usize;
    let mut lines: Vec<Line> = Vec::new();
    for (i, l) in ask.lines.iter().enumerate() {
        if i > 0 {
            lines.push(Line::raw(""));
        }
        lines.extend(wrap_words(l, room).into_iter().map(Line::raw));
    }
    lines.push(Line::raw(""));
    let yes = Span::styled(ask.yes.clone(), t.good().add_modifier(Modifier::BOLD));
    let no = Span::styled(ask.no.clone(), t.strong());
    if ask.yes.width() + 3 + ask.no.width() <= room {
        lines.push(Line::from(vec![yes, Span::raw("   "), no]));
    } else {
        lines.push(Line::from(yes));
        lines.push(Line::from(no));
    }
    // The answer keys are the last lines: if the screen is short, the
    // words above give way, never them.
    let max = area.height.saturating_sub(4) as usize;
    if lines.len() > max {
        let cut = lines.len() - max;
        lines.drain(..cut);
    }
    let h = lines.len() as u16 + 2;
    let rect = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + area.height.saturating_sub(h) / 2,
        w,
        h,
    );
    f.render_widget(Clear, rect);
    let block = Block::bordered()
        .border_type(BorderType::Double)
        .border_style(t.warn())
        .title(Span::styled(ask.title.clone(), t.strong()));
    let inner = block.inner(rect);
    f.render_widget(block, rect);
    let padded = Rect {
        x: inner.x + 1,
        width: inner.width.saturating_sub(2),
        ..inner
    };
    f.render_widget(Paragraph::new(lines), padded);
}
