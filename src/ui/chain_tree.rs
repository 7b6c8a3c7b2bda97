//! The live delegation-chain tree: registration tokens as roots, delegated
//! tokens as children. Each node shows holder, scope held at that hop, what
//! the hop dropped from its parent (a `−` list, visible without color), TTL
//! left, status and depth. A refused delegation sits where it was attempted.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::Paragraph;

use super::{Theme, hint, open_pane, status_symbol, ttl_text};
use crate::app::{App, TokenId, TokenKind, TokenStatus};
use crate::scope::{self, Fate};
use crate::view::tree_nav::Row;
use crate::view::{Focus, View};

/// A scope list in lines of at most `width` columns, broken after commas
/// (a single scope longer than a line stays whole; the line is cut later).
fn scope_lines(scopes: &[String], width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for (i, s) in scopes.iter().enumerate() {
        let piece = if i + 1 < scopes.len() {
            format!("{s},")
        } else {
            s.clone()
        };
        if !cur.is_empty() && cur.chars().count() + piece.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        cur.push_str(&piece);
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// One node: a head line (status, holder, label, TTL, depth, what this hop
/// dropped and narrowed) and the scope held at this hop, wrapped onto as many
/// lines as `width` needs.
pub fn node_text(app: &App, id: TokenId, t: Theme, now: i64, width: usize) -> Text<'static> {
    let tok = &app.tokens[id];
    let status = tok.status_at(now);
    let full = &app.agents[tok.holder].name;
    let outside = full.starts_with("spiffe://");
    let holder = super::agent_display(full);
    let name = match &tok.label {
        // Held by an agent known only by its SPIFFE id: the label first.
        Some(l) if outside => format!("{l} · {holder}"),
        Some(l) if *l != holder => format!("{holder} ({l})"),
        _ => holder,
    };
    let mut head = vec![
        Span::styled(format!("{} ", status_symbol(&status)), t.status(&status)),
        Span::styled(name, t.strong()),
    ];
    match &status {
        TokenStatus::Refused(b) => {
            head.push(Span::styled(
                format!(" REFUSED {} {}", b.status, b.error_code),
                t.bad(),
            ));
            let body = Line::from(vec![
                Span::styled(format!("  {}", b.detail), t.bad()),
                Span::styled(
                    format!(" · asked {}", tok.requested_scope.join(",")),
                    t.dim(),
                ),
            ]);
            return Text::from(vec![Line::from(head), body]);
        }
        TokenStatus::Valid => match tok.exp() {
            Some(crate::app::EXP_UNKNOWN) => head.push(Span::styled(" ⏱?", t.warn())),
            Some(exp) => head.push(Span::styled(
                format!(" ⏱{}", ttl_text(exp - now)),
                t.accent(),
            )),
            None => {}
        },
        other => head.push(Span::styled(
            format!(" {}", other.word().to_uppercase()),
            t.status(other),
        )),
    }
    head.push(Span::styled(format!(" d{}", app.depth(id)), t.dim()));
    if let TokenKind::Imported { parent } = tok.kind {
        head.push(Span::styled(" imported", t.accent()));
        if parent.is_none() && tok.depth() > 0 {
            // An orphan: its recorded hops, root first, since no known token is its parent.
            let hops: Vec<String> = app
                .chain(id)
                .into_iter()
                .map(|h| super::short_spiffe(&h.who))
                .collect();
            head.push(Span::styled(
                format!(" · orphan chain {}", hops.join(" → ")),
                t.warn(),
            ));
        }
    }
    if let Some(p) = tok.parent() {
        let fates = scope::attenuation(app.tokens[p].scope(), tok.scope());
        let dropped: Vec<String> = fates
            .iter()
            .filter(|(_, f)| *f == Fate::Dropped)
            .map(|(s, _)| format!("−{s}"))
            .collect();
        if !dropped.is_empty() {
            head.push(Span::styled(format!(" {}", dropped.join(" ")), t.warn()));
        }
        let narrowed: Vec<String> = fates
            .iter()
            .filter_map(|(s, f)| match f {
                Fate::Narrowed(under) => Some(scope::narrowing(s, under)),
                _ => None,
            })
            .collect();
        if !narrowed.is_empty() {
            head.push(Span::styled(format!(" {}", narrowed.join(" ")), t.accent()));
        }
    }
    let mut lines = vec![Line::from(head)];
    for l in scope_lines(tok.scope(), width.saturating_sub(2).max(8)) {
        lines.push(Line::from(Span::styled(format!("  {l}"), t.dim())));
    }
    Text::from(lines)
}

/// "Delegation chains (N tokens)", and — when the trail cannot settle some
/// statuses (observe) — how many are live, may be live, dead.
fn chains_title(app: &App, now: i64) -> String {
    use crate::app::Liveness;
    let mut n = [0usize; 3];
    for tok in app.tokens.iter().filter(|t| app.shown(t)) {
        n[tok.liveness_at(now) as usize] += 1;
    }
    let all: usize = n.iter().sum();
    let (live, maybe, dead) = (
        n[Liveness::Live as usize],
        n[Liveness::Maybe as usize],
        n[Liveness::Dead as usize],
    );
    if maybe == 0 {
        format!(" Delegation chains ({all} tokens) ")
    } else {
        // Short, so it fits the pane at 80x24.
        format!(" Delegation chains ({all}: {live} live · {maybe} may · {dead} dead) ")
    }
}

pub fn draw(f: &mut Frame, area: Rect, app: &App, view: &mut View, t: Theme, now: i64) {
    let inner = open_pane(f, area, view, Focus::Tree, chains_title(app, now));
    if app.tokens.is_empty() {
        let next = view
            .steps
            .get(view.step_pos)
            .map(|s| {
                format!(
                    "No tokens yet. Press n or Space to run step {}: {}",
                    view.step_pos + 1,
                    s.source
                )
            })
            .unwrap_or_else(|| "No tokens yet.".into());
        f.render_widget(hint(&next, t), inner);
        return;
    }
    // Only the rows on screen are formatted, each once; a node takes its
    // head line and its scope list, wrapped, so the selected one is
    // scrolled into view by the lines it really takes.
    let h = inner.height as usize;
    let w = inner.width as usize;
    let text = |row: &Row| {
        let room = w.saturating_sub(2 * row.depth as usize + 2);
        (*row, node_text(app, row.id, t, now, room))
    };
    let sel_index = view.selected.and_then(|id| view.tree.index_of(app, id));
    if let Some(i) = sel_index {
        view.tree.scroll_to(i, (h / 2).max(1));
    }
    // The rows that can be on screen (a node takes at least two lines).
    let (offset, window, above) = {
        let want = view.tree.offset;
        let rows = view.tree.rows(app);
        // Never scrolled past the rows that fill the pane (a node takes at
        // least two lines): a filter or fold that left fewer rows shows them.
        let off = want.min(rows.len().saturating_sub((h / 2).max(1)));
        (
            off,
            rows[off..(off + h).min(rows.len())].to_vec(),
            rows[off.saturating_sub(h)..off].to_vec(),
        )
    };
    let k = sel_index
        .and_then(|i| i.checked_sub(offset))
        .filter(|k| *k < window.len());
    // Formatted from the offset until the screen is full (and at least up
    // to the selected node).
    let mut shown: Vec<(Row, Text<'static>)> = Vec::new();
    let mut used = 0;
    for (j, row) in window.iter().enumerate() {
        if used >= h && k.is_none_or(|k| j > k) {
            break;
        }
        let node = text(row);
        used += node.1.lines.len();
        shown.push(node);
    }
    let mut from = offset;
    if let Some(k) = k {
        // Move down until the selected node fits whole.
        let mut need: usize = shown[..=k].iter().map(|(_, x)| x.lines.len()).sum();
        let mut start = 0;
        while start < k && need > h {
            need -= shown[start].1.lines.len();
            start += 1;
        }
        if start > 0 {
            shown.drain(..start);
            from += start;
            // Fill what the rows moved past left free below.
            let mut lines: usize = shown.iter().map(|(_, x)| x.lines.len()).sum();
            for row in &window[start + shown.len()..] {
                if lines >= h {
                    break;
                }
                let node = text(row);
                lines += node.1.lines.len();
                shown.push(node);
            }
        } else {
            // Room to spare below the last row (a bigger screen, a folded
            // branch): bring back rows above, pushing none below out.
            for row in above.iter().rev() {
                let node = text(row);
                if used + node.1.lines.len() > h {
                    break;
                }
                used += node.1.lines.len();
                shown.insert(0, node);
                from -= 1;
            }
        }
    }
    view.tree.offset = from;
    draw_rows(f, inner, view, t, &shown, from);
}

/// Draws the formatted rows (the first is row `from`), noting where each
/// went for mouse hits.
fn draw_rows(
    f: &mut Frame,
    inner: Rect,
    view: &mut View,
    t: Theme,
    shown: &[(Row, Text<'static>)],
    from: usize,
) {
    let h = inner.height as usize;
    let selected = view.selected;
    let mut lines: Vec<Line> = Vec::with_capacity(h);
    view.tree.drawn.clear();
    for (k, (row, text)) in shown.iter().enumerate() {
        if lines.len() >= h {
            break;
        }
        let indent = "  ".repeat(row.depth as usize);
        let fold = match (row.has_children, view.tree.is_open(row.id)) {
            (false, _) => "  ",
            (true, true) => "▾ ",
            (true, false) => "▸ ",
        };
        view.tree
            .drawn
            .push((lines.len() as u16, text.lines.len() as u16, from + k));
        let is_sel = Some(row.id) == selected;
        let (mark, on_path) = super::findings::tree_marks(view, row.id, t);
        for (n, line) in text.lines.iter().enumerate() {
            let mut line = line.clone();
            if n == 0 {
                super::findings::mark_line(&mut line, mark.clone(), on_path, t);
            }
            let lead = if n == 0 {
                format!("{indent}{fold}")
            } else {
                format!("{indent}  ")
            };
            line.spans.insert(0, Span::raw(lead));
            if is_sel {
                line = line.style(t.selected());
            }
            // What does not fit ends with …, never silently.
            lines.push(super::fit_line(line, inner.width as usize));
        }
    }
    lines.truncate(h);
    f.render_widget(Paragraph::new(lines), inner);
}
