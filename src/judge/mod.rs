//! Judgment over a reconstruction as of an event: who can reach a scope and
//! through which path, and what a revocation would really do (spec §7.1:
//! it never cascades). Pure: no I/O; the `judge` command prints what these
//! return. Statuses are three-valued as observe's: live, maybe, dead.

pub mod check;
pub mod diff;
pub mod explain;
pub mod live;
pub mod report;
pub mod what_if;
pub mod who_can;

use crate::observe::{Liveness, NodeId, Observed};

/// The words the judgment lines use for a liveness: observe's
/// (`live`, `maybe`, `dead`), one spelling everywhere.
pub fn liveness_word(l: Liveness) -> &'static str {
    l.key()
}

/// One hop of a path from a chain's root to a token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hop {
    pub node: String,
    pub agent: String,
    pub scope: Vec<String>,
}

/// The hops from the root of `id`'s chain down to `id` (at most the
/// broker's depth limit + 1: observe never builds a longer chain).
pub fn path(o: &Observed, id: NodeId) -> Vec<Hop> {
    o.chain(id)
        .into_iter()
        .map(|n| Hop {
            node: format!("n{n}"),
            agent: o.agents[o.nodes[n].agent].spiffe.clone(),
            scope: o.nodes[n].scope.clone(),
        })
        .collect()
}

/// The tokens as of `at` that were issued under `id` (delegations made
/// with it and below, and renewals of any of them), `id` excluded; walked
/// with an explicit stack.
pub fn descendants(o: &Observed, id: NodeId, at: usize) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut seen = rustc_hash::FxHashSet::default();
    let mut stack = vec![id];
    seen.insert(id);
    while let Some(n) = stack.pop() {
        let node = &o.nodes[n];
        let renewals = o.renewals_of(n);
        for c in node.children.iter().copied().chain(renewals) {
            if o.exists(c, at) && seen.insert(c) {
                out.push(c);
                stack.push(c);
            }
        }
    }
    out.sort_unstable();
    out
}
