//! The findings pane (`F`): `check`'s findings over the audit trail as of
//! the event shown — severity, rule, agent, node — and the selected one's
//! message and fix. Enter goes to its node in the tree.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{Theme, fit, hint, open_pane};
use crate::judge::check::Severity;
use crate::view::{Focus, View};

/// The mark of a severity, in the pane and (for the worst on a token) in
/// the tree; the legend says them.
pub fn mark(s: Severity) -> &'static str {
    match s {
        Severity::Error => "⚑",
        Severity::Warning => "⚑",
        Severity::Note => "⚐",
    }
}

fn style(s: Severity, t: Theme) -> ratatui::style::Style {
    match s {
        Severity::Error => t.bad(),
        Severity::Warning => t.warn(),
        Severity::Note => t.dim(),
    }
}

fn title(view: &View, width: u16) -> String {
    let j = &view.judgment;
    let count = |s: Severity| {
        j.findings
            .iter()
            .filter(|r| r.finding.severity == s)
            .count()
    };
    let (e, w, n) = (
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Note),
    );
    let mut parts = Vec::new();
    if e > 0 {
        parts.push(format!("{e} err"));
    }
    parts.push(format!("{w} warn"));
    parts.push(format!("{n} note"));
    // As of which event, when the pane is wide enough to say it.
    let at = j
        .as_of
        .as_deref()
        .filter(|_| width >= 60)
        .map(|a| format!(" · as of {a}"))
        .unwrap_or_default();
    format!(" Findings (F) · {}{at} ", parts.join(" · "))
}

pub fn draw(f: &mut Frame, area: Rect, app: &crate::app::App, view: &mut View, t: Theme) {
    let inner = open_pane(f, area, view, Focus::Findings, title(view, area.width));
    let j = &view.judgment;
    if let Some(why) = &j.unavailable {
        f.render_widget(hint(&format!("No findings: {why}"), t), inner);
        return;
    }
    if j.findings.is_empty() {
        let text = if j.as_of.is_some() {
            "No findings."
        } else {
            "Reading the audit trail…"
        };
        f.render_widget(hint(text, t), inner);
        return;
    }
    let w = inner.width as usize;
    // The selected finding's message and fix below the list, when there is
    // room for both.
    let foot_h = match inner.height {
        0..=5 => 0,
        6..=9 => 2,
        _ => 4,
    };
    let list_h = inner.height.saturating_sub(foot_h) as usize;
    let sel = j.sel.min(j.findings.len() - 1);
    let mut offset = j.offset.min(sel);
    if list_h > 0 && sel >= offset + list_h {
        offset = sel + 1 - list_h;
    }
    // The rule whole when it fits beside severity, node and a short agent.
    let rule_w = w.saturating_sub(2 + 6 + 6 + 9).clamp(8, 23);
    let lines: Vec<Line> = j.findings[offset..]
        .iter()
        .take(list_h)
        .enumerate()
        .map(|(k, r)| {
            let fd = &r.finding;
            let who = fd
                .agent
                .as_deref()
                .map(|a| crate::rules::spiffe::short(a, true))
                .unwrap_or_default();
            // The explorer names its tokens (observe's tree shows node ids).
            let name = r
                .token
                .filter(|&t| !view.observing && t < app.tokens.len())
                .map(|t| app.token_name(t));
            let at = name
                .as_deref()
                .or(fd.node.as_deref())
                .or(fd.event.as_deref())
                .unwrap_or("");
            let sev = match fd.severity {
                Severity::Error => "error",
                Severity::Warning => "warn",
                Severity::Note => "note",
            };
            let text = format!("{sev:<5} {:<rule_w$} {at:<5} {who}", fit(fd.rule, rule_w));
            let line = Line::from(vec![
                Span::styled(format!("{} ", mark(fd.severity)), style(fd.severity, t)),
                Span::raw(fit(&text, w.saturating_sub(2))),
            ]);
            if offset + k == sel && view.focus == Focus::Findings {
                line.style(t.selected())
            } else if offset + k == sel {
                line.style(t.strong())
            } else {
                line
            }
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines),
        Rect {
            height: list_h as u16,
            ..inner
        },
    );
    if foot_h > 0 {
        let fd = &j.findings[sel].finding;
        let foot = vec![
            Line::from(Span::raw(fd.message.clone())),
            Line::from(Span::styled(format!("fix: {}", fd.help), t.dim())),
        ];
        f.render_widget(
            Paragraph::new(foot).wrap(Wrap { trim: true }),
            Rect {
                y: inner.y + list_h as u16,
                height: foot_h,
                ..inner
            },
        );
    }
    view.judgment.offset = offset;
}

/// The tree's marks, in the one legend.
pub const LEGEND: &str = "⚑⚐ finding/note ◆ path.";

/// A node's finding mark (its worst severity) and whether it is on the
/// highlighted who-can path.
pub fn tree_marks(view: &View, id: crate::app::TokenId, t: Theme) -> (Option<Span<'static>>, bool) {
    let j = &view.judgment;
    let mark = j
        .marks
        .get(&id)
        .map(|s| Span::styled(format!(" {}", mark(*s)), style(*s, t)));
    (mark, j.path.contains(&id))
}

/// A node's head line with its marks: `◆ ` before the status symbol when on
/// the path, the finding mark after the holder's name.
pub fn mark_line(line: &mut Line<'static>, mark: Option<Span<'static>>, on_path: bool, t: Theme) {
    let at = 2.min(line.spans.len());
    if let Some(m) = mark {
        line.spans.insert(at, m);
    }
    if on_path {
        line.spans.insert(
            0,
            Span::styled(
                "◆ ",
                t.accent().add_modifier(ratatui::style::Modifier::BOLD),
            ),
        );
    }
}
