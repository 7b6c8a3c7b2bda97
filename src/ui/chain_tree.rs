//! The live delegation-chain tree: registration tokens as roots, delegated
//! tokens as children. Each node shows holder, scope held at that hop, what
//! the hop dropped from its parent (a `−` list, visible without color), TTL
//! left, status and depth. A refused delegation sits where it was attempted.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span, Text};
use tui_tree_widget::{Tree, TreeItem};

use super::{Theme, hint, pane, status_symbol, ttl_text};
use crate::app::view::{Focus, View};
use crate::app::{App, TokenId, TokenStatus};
use crate::scope::{self, Fate};

/// One node: a head line (status, holder, label, TTL, depth, what this hop
/// dropped) and the scope held at this hop.
pub fn node_text(app: &App, id: TokenId, t: Theme, now: i64) -> Text<'static> {
    let tok = &app.tokens[id];
    let status = tok.status_at(now);
    let holder = &app.agents[tok.holder].name;
    let name = match &tok.label {
        Some(l) if l != holder => format!("{holder} ({l})"),
        _ => holder.clone(),
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
        TokenStatus::Valid => {
            if let Some(exp) = tok.exp() {
                head.push(Span::styled(
                    format!(" ⏱{}", ttl_text(exp - now)),
                    t.accent(),
                ));
            }
        }
        other => head.push(Span::styled(
            format!(" {}", other.word().to_uppercase()),
            t.status(other),
        )),
    }
    head.push(Span::styled(format!(" d{}", tok.depth()), t.dim()));
    if let Some(p) = tok.parent() {
        let dropped: Vec<String> = scope::attenuation(app.tokens[p].scope(), tok.scope())
            .into_iter()
            .filter(|(_, f)| *f == Fate::Dropped)
            .map(|(s, _)| format!("−{s}"))
            .collect();
        if !dropped.is_empty() {
            head.push(Span::styled(format!(" {}", dropped.join(" ")), t.warn()));
        }
    }
    let body = Line::from(Span::styled(
        format!("  {}", tok.scope().join(",")),
        t.dim(),
    ));
    Text::from(vec![Line::from(head), body])
}

/// The tree items, roots in creation order.
pub fn items(app: &App, t: Theme, now: i64) -> Vec<TreeItem<'static, TokenId>> {
    let mut children: Vec<Vec<TokenId>> = vec![Vec::new(); app.tokens.len()];
    let mut roots = Vec::new();
    for tok in &app.tokens {
        match tok.tree_parent(&app.tokens) {
            Some(p) if p < app.tokens.len() => children[p].push(tok.id),
            _ => roots.push(tok.id),
        }
    }
    fn build(
        app: &App,
        id: TokenId,
        children: &[Vec<TokenId>],
        t: Theme,
        now: i64,
    ) -> TreeItem<'static, TokenId> {
        let kids: Vec<TreeItem<'static, TokenId>> = children[id]
            .iter()
            .map(|c| build(app, *c, children, t, now))
            .collect();
        let line = node_text(app, id, t, now);
        if kids.is_empty() {
            TreeItem::new_leaf(id, line)
        } else {
            TreeItem::new(id, line.clone(), kids).unwrap_or_else(|_| TreeItem::new_leaf(id, line))
        }
    }
    roots
        .into_iter()
        .map(|r| build(app, r, &children, t, now))
        .collect()
}

pub fn draw(f: &mut Frame, area: Rect, app: &App, view: &mut View, t: Theme, now: i64) {
    let block = pane(view, Focus::Tree, " Delegation chains ");
    if app.tokens.is_empty() {
        let inner = block.inner(area);
        f.render_widget(block, area);
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
    let items = items(app, t, now);
    let Ok(tree) = Tree::new(&items) else {
        f.render_widget(block, area);
        return;
    };
    let tree = tree
        .block(block)
        .highlight_style(t.selected())
        .node_closed_symbol("▸ ")
        .node_open_symbol("▾ ")
        .node_no_children_symbol("  ");
    f.render_stateful_widget(tree, area, &mut view.tree);
}
