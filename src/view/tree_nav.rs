//! Navigation state of the chain tree: which nodes are folded, which row is
//! selected, the scroll offset, and the flattened visible rows.
//!
//! The rows are derived from the app state and cached by its generation, so
//! a frame formats only the rows on screen. This is what lets a frame with
//! 10,000 tokens draw in well under 2 ms (see `benches/render.rs`); a general
//! tree widget rebuilds and flattens every node on every frame.

use std::collections::HashSet;

use crate::app::{App, TokenId};

/// One visible row of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub id: TokenId,
    pub depth: u16,
    pub has_children: bool,
}

#[derive(Debug, Default)]
pub struct TreeNav {
    collapsed: HashSet<TokenId>,
    /// Bumped when folding changes.
    version: u64,
    rows: Vec<Row>,
    key: Option<(u64, u64, usize)>,
    /// First visible row.
    pub offset: usize,
    /// Where the last frame drew each row: (first line inside the pane,
    /// lines, row index) — for mouse hits (a node's scope list may wrap).
    pub drawn: Vec<(u16, u16, usize)>,
}

impl TreeNav {
    /// The visible rows, recomputed when the app state or the folding changed.
    pub fn rows(&mut self, app: &App) -> &[Row] {
        let key = (app.generation, self.version, app.tokens.len());
        if self.key != Some(key) {
            self.key = Some(key);
            self.rebuild(app);
        }
        &self.rows
    }

    fn rebuild(&mut self, app: &App) {
        let n = app.tokens.len();
        let mut children: Vec<Vec<TokenId>> = vec![Vec::new(); n];
        let mut roots = Vec::new();
        for t in app.tokens.iter().filter(|t| app.shown(t)) {
            // Under a token not shown (another client's, the merged view
            // off; e.g. the parent of an imported token): a root.
            match t.tree_parent(&app.tokens) {
                Some(p) if p < n && p != t.id && app.shown(&app.tokens[p]) => {
                    children[p].push(t.id)
                }
                _ => roots.push(t.id),
            }
        }
        self.rows.clear();
        self.rows.reserve(n);
        // Iterative pre-order walk: (id, depth), children pushed in reverse.
        let mut stack: Vec<(TokenId, u16)> = roots.iter().rev().map(|r| (*r, 0)).collect();
        let mut seen = vec![false; n];
        while let Some((id, depth)) = stack.pop() {
            if seen[id] {
                continue;
            }
            seen[id] = true;
            let kids = &children[id];
            self.rows.push(Row {
                id,
                depth,
                has_children: !kids.is_empty(),
            });
            if !self.collapsed.contains(&id) {
                stack.extend(kids.iter().rev().map(|k| (*k, depth + 1)));
            }
        }
    }

    pub fn is_open(&self, id: TokenId) -> bool {
        !self.collapsed.contains(&id)
    }

    pub fn set_open(&mut self, id: TokenId, open: bool) {
        let changed = if open {
            self.collapsed.remove(&id)
        } else {
            self.collapsed.insert(id)
        };
        if changed {
            self.version += 1;
        }
    }

    /// Position of a token among the visible rows.
    pub fn index_of(&mut self, app: &App, id: TokenId) -> Option<usize> {
        self.rows(app).iter().position(|r| r.id == id)
    }

    /// Keeps the row at `index` within a window of `visible` rows.
    pub fn scroll_to(&mut self, index: usize, visible: usize) {
        let visible = visible.max(1);
        if index < self.offset {
            self.offset = index;
        } else if index >= self.offset + visible {
            self.offset = index + 1 - visible;
        }
    }

    /// The row drawn at line `rel` inside the pane, if any.
    pub fn row_at(&self, rel: u16) -> Option<usize> {
        self.drawn
            .iter()
            .find(|(start, h, _)| rel >= *start && rel < start + h)
            .map(|(_, _, i)| *i)
    }

    pub fn reset(&mut self) {
        *self = TreeNav::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scroll_keeps_the_index_in_view() {
        let mut t = TreeNav::default();
        t.scroll_to(10, 4);
        assert_eq!(t.offset, 7);
        t.scroll_to(2, 4);
        assert_eq!(t.offset, 2);
        t.scroll_to(3, 4);
        assert_eq!(t.offset, 2);
    }
}
