//! The action form popup: fields (the focused one takes the cursor), what is
//! wrong with each as the user types, what the broker will likely say, and
//! the broker's own words after a refusal.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};

use super::Theme;
use crate::app::App;
use crate::view::form::{Form, FormStatus, Note};

/// The popup's width: most of the screen, at most 96 columns.
fn width(area: Rect) -> u16 {
    96.min(area.width.saturating_sub(4))
}

/// Where the popup goes: centered.
fn popup(area: Rect, lines: u16) -> Rect {
    let w = width(area);
    let h = (lines + 2).min(area.height.saturating_sub(2));
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// `what_if`: the revoke form's judgment lines (`ui::what_if`), after the
/// notes; `read_only`: observe's what-if (nothing is sent).
pub fn draw(
    f: &mut Frame,
    area: Rect,
    app: &App,
    form: &Form,
    t: Theme,
    what_if: Vec<Line<'static>>,
    read_only: bool,
) {
    let check = form.check(app);
    let label_w = form
        .fields
        .iter()
        .map(|fl| fl.name.len())
        .max()
        .unwrap_or(0)
        + 2;
    let mut lines: Vec<Line> = Vec::new();
    let inner_w = width(area).saturating_sub(2) as usize;
    let value_w = inner_w.saturating_sub(label_w + 2).max(8);
    let cursor = field_lines(&mut lines, form, &check, label_w, value_w, t);
    if !form.fields.is_empty() {
        lines.push(Line::from(""));
    }
    // Observe's what-if sends nothing: the explorer's notes (judged by the
    // wall clock) would only contradict the trail's answer.
    if !read_only {
        outcome_lines(&mut lines, form, &check, t);
    }
    lines.extend(what_if);
    let keys = if read_only {
        " read-only · ←→ level · Esc close "
    } else if form.fields.iter().any(|f| f.is_choice()) {
        " Enter submit · Esc cancel · Tab next · ←→ choose "
    } else if form.fields.is_empty() {
        " Enter confirm · Esc cancel "
    } else {
        " Enter submit · Esc cancel · Tab next field "
    };
    // Wrapped notes can take more than one row each: leave room.
    let extra: u16 = lines
        .iter()
        .map(|l| (l.width() as u16).saturating_sub(1) / (inner_w.max(1) as u16))
        .sum();
    let rect = popup(area, lines.len() as u16 + extra);
    f.render_widget(Clear, rect);
    let block = Block::bordered()
        .border_type(BorderType::Thick)
        .border_style(t.accent())
        .title(Span::styled(
            if read_only {
                " What if revoked (read-only) ".to_string()
            } else {
                format!(" {} ", form.kind.title())
            },
            t.strong(),
        ))
        .title_bottom(Line::from(Span::styled(keys, t.dim())));
    let inner = block.inner(rect);
    f.render_widget(block, rect);
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
    if let Some((x, y)) = cursor
        && y < inner.height
    {
        f.set_cursor_position(Position::new(inner.x + x, inner.y + y));
    }
}

/// One line per field (and its error, once a submit was tried); where the
/// cursor goes.
fn field_lines(
    lines: &mut Vec<Line<'static>>,
    form: &Form,
    check: &crate::view::form::Check,
    label_w: usize,
    value_w: usize,
    t: Theme,
) -> Option<(u16, u16)> {
    let mut cursor: Option<(u16, u16)> = None;
    for (i, field) in form.fields.iter().enumerate() {
        let focused = i == form.focus;
        let marker = if focused { "▸" } else { " " };
        let name = Span::styled(
            format!("{marker}{:<w$}", field.name, w = label_w - 1),
            if focused { t.accent() } else { t.strong() },
        );
        let value = if field.is_choice() {
            Span::styled(
                format!("◂ {} ▸", field.value()),
                if focused { t.selected() } else { t.strong() },
            )
        } else if field.input.value().is_empty() {
            Span::styled(field.placeholder.to_string(), t.dim())
        } else {
            // Long values (a pasted token) scroll so the cursor stays visible.
            let v = field.input.value();
            let scroll = field.input.visual_scroll(value_w);
            let shown: String = v.chars().skip(scroll).take(value_w).collect();
            if focused {
                let col = field.input.visual_cursor().saturating_sub(scroll);
                cursor = Some(((label_w + col) as u16, lines.len() as u16));
            }
            Span::raw(shown)
        };
        if focused && cursor.is_none() && !field.is_choice() {
            cursor = Some((label_w as u16, lines.len() as u16));
        }
        lines.push(Line::from(vec![name, Span::raw(" "), value]));
        // An empty field is not scolded until a submit was tried.
        let quiet = field.input.value().is_empty()
            && !field.is_choice()
            && form.status == FormStatus::Editing;
        if let Some(Some(e)) = check.errors.get(i)
            && !quiet
        {
            lines.push(Line::from(Span::styled(
                format!("{:w$}✗ {e}", "", w = label_w.saturating_sub(1)),
                t.bad(),
            )));
        }
    }
    cursor
}

/// The notes, then what the broker answered (or that it is being asked).
fn outcome_lines(
    lines: &mut Vec<Line<'static>>,
    form: &Form,
    check: &crate::view::form::Check,
    t: Theme,
) {
    for n in &check.notes {
        lines.push(match n {
            Note::Info(s) => Line::from(Span::raw(s.clone())),
            Note::Ok(s) => Line::from(Span::styled(format!("✓ {s}"), t.good())),
            Note::Warn(s) => Line::from(Span::styled(format!("⚠ {s}"), t.warn())),
        });
    }
    match &form.status {
        FormStatus::Editing => {}
        FormStatus::Running => {
            lines.push(Line::from(Span::styled("… asking the broker", t.warn())))
        }
        FormStatus::Refused(words) => {
            lines.push(Line::from(""));
            for (i, w) in words.iter().enumerate() {
                lines.push(Line::from(Span::styled(
                    format!("{} {w}", if i == 0 { "✗" } else { " " }),
                    t.bad(),
                )));
            }
        }
        FormStatus::Failed(e) => {
            lines.push(Line::from(""));
            lines.push(Line::from(Span::styled(format!("✗ {e}"), t.bad())));
        }
    }
}
