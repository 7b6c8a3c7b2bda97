//! Drawing: a pure function of [`App`] and [`View`] (it records where panes
//! were drawn, for mouse hit-testing). One module per view.

mod agents;
mod audit;
mod chain_tree;
mod confirm;
mod detail;
mod findings;
mod form;
mod help;
mod key_bar;
mod log;
mod narration;
mod probe;
mod status_bar;
mod steps;
mod what_if;
mod who_can;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Wrap};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::app::{App, TokenStatus};
use crate::view::{Areas, Focus, View};

pub use probe::ProbeCache;

/// The smallest terminal chainview draws in.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

/// Styles, with or without color (`NO_COLOR`): every state also has a symbol
/// or a modifier, so nothing depends on color alone.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }
    pub fn good(self) -> Style {
        self.fg(Color::Green)
    }
    pub fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn dead(self) -> Style {
        self.fg(Color::DarkGray)
    }
    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }
    pub fn accent(self) -> Style {
        self.fg(Color::Cyan)
    }
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }
    pub fn strong(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }
    pub fn narration(self) -> Style {
        let s = Style::new().add_modifier(Modifier::BOLD);
        if self.color { s.fg(Color::Yellow) } else { s }
    }
    pub fn status(self, s: &TokenStatus) -> Style {
        match s {
            TokenStatus::Valid => self.good(),
            TokenStatus::Refused(_) | TokenStatus::Failed(_) => self.bad(),
            TokenStatus::Pending | TokenStatus::LikelyValid(_) | TokenStatus::Unknown(_) => {
                self.warn()
            }
            _ => self.dead(),
        }
    }
}

/// The symbol that carries a token status without color.
pub fn status_symbol(s: &TokenStatus) -> &'static str {
    match s {
        TokenStatus::Pending => "…",
        TokenStatus::Valid => "✓",
        TokenStatus::Expired => "⌛",
        TokenStatus::Revoked { .. } => "†",
        TokenStatus::Released => "↩",
        TokenStatus::RenewedAway => "⟳",
        TokenStatus::Refused(_) => "✗",
        TokenStatus::Failed(_) => "!",
        TokenStatus::Invalid => "?",
        TokenStatus::LikelyValid(_) => "≈",
        TokenStatus::Unknown(_) => "◌",
    }
}

/// The one legend of status symbols, as help shows it (built from
/// `status_symbol`, so the two cannot disagree).
pub fn legend() -> String {
    use crate::broker::types::RevokeLevel;
    let all = [
        TokenStatus::Valid,
        TokenStatus::Refused(crate::broker::BrokerError {
            status: 0,
            error_code: String::new(),
            detail: String::new(),
            request_id: String::new(),
        }),
        TokenStatus::Revoked {
            level: RevokeLevel::Token,
            target: String::new(),
        },
        TokenStatus::Released,
        TokenStatus::RenewedAway,
        TokenStatus::Expired,
        TokenStatus::Invalid,
        TokenStatus::LikelyValid(String::new()),
        TokenStatus::Unknown(String::new()),
        TokenStatus::Failed(String::new()),
        TokenStatus::Pending,
    ];
    let parts: Vec<String> = all
        .iter()
        .map(|s| format!("{} {}", status_symbol(s), s.word()))
        .collect();
    format!(
        "Symbols: {}; −s = s dropped, ~s→x = s narrowed to x. {}",
        parts.join(" "),
        findings::LEGEND
    )
}

/// Seconds as `m:ss`.
pub fn ttl_text(secs: i64) -> String {
    if secs <= 0 {
        return "0:00".into();
    }
    if secs >= 3600 {
        return format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60);
    }
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// A SPIFFE id shortened to `task/inst…` (the trust domain and orch are implied).
pub fn short_spiffe(id: &str) -> String {
    crate::rules::spiffe::short(id, true)
}

/// An agent's name for display: an agent known only by its SPIFFE id (an
/// imported token's holder from outside) in the same short form as a known
/// agent's id.
pub fn agent_display(name: &str) -> String {
    if name.starts_with("spiffe://") {
        short_spiffe(name)
    } else {
        name.to_string()
    }
}

/// Truncates to `width` characters with `…`.
pub fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let cut: String = s.chars().take(width.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// A line cut to `width` columns, ending with … when something was cut.
fn fit_line(line: Line<'static>, width: usize) -> Line<'static> {
    if line.width() <= width {
        return line;
    }
    let style = line.style;
    let mut left = width.saturating_sub(1);
    let mut spans = Vec::new();
    for span in line.spans {
        let w = span.content.width();
        if w <= left {
            left -= w;
            spans.push(span);
            continue;
        }
        let mut cut = String::new();
        for c in span.content.chars() {
            let cw = c.width().unwrap_or(0);
            if cw > left {
                break;
            }
            left -= cw;
            cut.push(c);
        }
        spans.push(Span::styled(cut, span.style));
        spans.push(Span::styled("…", span.style));
        break;
    }
    Line::from(spans).style(style)
}

/// `text` cut into lines of at most `room` columns, at spaces (a word
/// longer than that is cut where it must be).
pub(crate) fn wrap_words(text: &str, room: usize) -> Vec<String> {
    let room = room.max(8);
    let mut out = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.width() + 1 + word.width() > room {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        while line.width() > room {
            let head: String = line.chars().take(room).collect();
            line = line.chars().skip(room).collect();
            out.push(head);
        }
    }
    out.push(line);
    out
}

/// Text that wrapping never splits (its spaces made non-breaking): a key
/// and what it does, a badge.
fn unbroken(s: &str) -> String {
    s.replace(' ', "\u{a0}")
}

/// Draws a pane's border and title; returns the area inside.
fn open_pane<'a>(
    f: &mut Frame,
    area: ratatui::layout::Rect,
    view: &View,
    focus: Focus,
    title: impl Into<Line<'a>>,
) -> ratatui::layout::Rect {
    let block = pane(view, focus, title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    inner
}

fn pane<'a>(view: &View, focus: Focus, title: impl Into<Line<'a>>) -> Block<'a> {
    let t = Theme {
        color: !view.no_color,
    };
    let focused = view.focus == focus;
    let block = Block::bordered().title(title);
    if focused {
        block
            .border_type(BorderType::Thick)
            .border_style(t.accent().add_modifier(Modifier::BOLD))
    } else {
        block.border_style(t.dim())
    }
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame, app: &App, view: &mut View, probe: &mut ProbeCache, now: i64) {
    let area = f.area();
    view.areas = Areas::default();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "terminal too small (need {MIN_WIDTH}x{MIN_HEIGHT}, have {}x{}) — enlarge it, or press q to quit",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    let theme = Theme {
        color: !view.no_color,
    };
    let [status, body, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    status_bar::draw(f, status, app, view, theme);
    key_bar::draw(f, keys, view, theme);
    // Three columns only when the tree keeps at least the width it has at
    // 100 columns (70); the side columns grow with the screen.
    let large = area.width >= 140 && area.height >= 36;
    let left_w = (area.width * 16 / 100).clamp(30, 40);
    let right_w = if large {
        (area.width * 22 / 100).clamp(42, 56)
    } else {
        0
    };
    let [left, mid, right] = Layout::horizontal([
        Constraint::Length(left_w),
        Constraint::Fill(1),
        Constraint::Length(right_w),
    ])
    .areas(body);
    let [agents_a, steps_a] =
        Layout::vertical([Constraint::Percentage(42), Constraint::Fill(1)]).areas(left);
    let narr_h = narration::height(view, mid.width, area.height);
    let [narr_a, tree_a, lower_a] = Layout::vertical([
        Constraint::Length(narr_h),
        Constraint::Fill(1),
        Constraint::Percentage(if large { 44 } else { 48 }),
    ])
    .areas(mid);
    narration::draw(f, narr_a, view, theme);
    agents::draw(f, agents_a, app, view, theme, now);
    steps::draw(f, steps_a, view, theme);
    chain_tree::draw(f, tree_a, app, view, theme, now);
    view.areas.agents = agents_a;
    view.areas.steps = steps_a;
    view.areas.tree = tree_a;
    if large {
        let [probe_a, log_a] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Fill(1)]).areas(right);
        detail::draw(f, lower_a, app, view, theme, now);
        probe::draw(f, probe_a, app, view, probe, theme, now);
        // The findings take the log's place while they are chosen.
        if view.lower == Focus::Findings {
            findings::draw(f, log_a, app, view, theme);
        } else {
            log::draw(f, log_a, app, view, theme);
            view.areas.log = log_a;
        }
        view.areas.detail = lower_a;
        view.areas.probe = probe_a;
    } else {
        match view.lower {
            Focus::Probe => {
                probe::draw(f, lower_a, app, view, probe, theme, now);
                view.areas.probe = lower_a;
            }
            Focus::Log => {
                log::draw(f, lower_a, app, view, theme);
                view.areas.log = lower_a;
            }
            Focus::Findings => findings::draw(f, lower_a, app, view, theme),
            _ => {
                detail::draw(f, lower_a, app, view, theme, now);
                view.areas.detail = lower_a;
            }
        }
    }
    if let Some(a) = view.audit.as_mut() {
        audit::draw(f, area, app, a, theme);
    }
    if let Some(form) = &view.form {
        let w = 96.min(area.width.saturating_sub(4)).saturating_sub(2) as usize;
        // The popup's rows left under its fields (and, in the explorer, notes).
        let notes = if view.observing {
            0
        } else {
            form.check(app).notes.len()
        };
        let room = (area.height as usize).saturating_sub(4 + form.fields.len() + 1 + notes + 1);
        let lines = what_if::lines(view, app, w, room, theme);
        form::draw(f, area, app, form, theme, lines, view.observing);
    }
    if view.help {
        help::draw(f, area, theme, view.observing);
    }
    if let Some(ask) = &view.ask {
        confirm::draw(f, area, ask, theme);
    }
}

/// A one-line hint for an empty pane.
fn hint(text: &str, theme: Theme) -> Paragraph<'static> {
    Paragraph::new(Line::from(Span::styled(text.to_string(), theme.dim())))
        .wrap(Wrap { trim: true })
}

/// Renders a frame into plain text lines (no escape codes), trailing spaces trimmed.
pub fn render_text(app: &App, view: &mut View, width: u16, height: u16, now: i64) -> Vec<String> {
    let backend = ratatui::backend::TestBackend::new(width, height);
    let mut term = match ratatui::Terminal::new(backend) {
        Ok(t) => t,
        Err(never) => match never {},
    };
    let mut cache = ProbeCache::default();
    let _ = term.draw(|f| draw(f, app, view, &mut cache, now));
    let buf = term.backend().buffer().clone();
    (0..height)
        .map(|y| {
            let mut line = String::new();
            let mut skip = 0;
            for x in 0..width {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                let sym = buf[(x, y)].symbol();
                line.push_str(sym);
                let w = unicode_width::UnicodeWidthStr::width(sym);
                if w > 1 {
                    skip = w - 1;
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(ttl_text(125), "2:05");
        assert_eq!(ttl_text(-3), "0:00");
        assert_eq!(ttl_text(7260), "2h01m");
        assert_eq!(
            short_spiffe(
                "spiffe://agentwrit.local/agent/deploy-pipeline/release-v2.4.1/0a4ac040259ba6e3"
            ),
            "release-v2.4.1/0a4a…"
        );
        assert_eq!(short_spiffe("admin"), "admin");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
    }
}
