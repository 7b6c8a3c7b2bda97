//! What changed between two points (two events of one trail, or two
//! trails): agents that gained or lost reach (the grants of their tokens
//! that are live or may be), chains that appeared or ended, new findings.
//! "No new access" is the CI gate: replay yesterday's design against
//! today's and fail on any gain.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::observe::{Liveness, Observed};

/// One change.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Change {
    /// `gained`, `lost`, `new-chain`, `ended-chain` or `new-finding`.
    pub kind: &'static str,
    pub agent: Option<String>,
    /// Grants gained or lost; a chain's scope.
    pub grants: Vec<String>,
    /// The node (at the later point for gained / new, the earlier for lost / ended).
    pub node: Option<String>,
    pub message: String,
}

/// Per agent: the grants of its tokens that are not dead as of `at`, with
/// a node that holds each.
fn reach(o: &Observed, at: usize) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (i, n) in o.nodes.iter().enumerate().filter(|(i, _)| o.exists(*i, at)) {
        if o.status(i, at).liveness == Liveness::Dead {
            continue;
        }
        let grants = out.entry(o.agents[n.agent].spiffe.clone()).or_default();
        for g in &n.scope {
            grants.entry(g.clone()).or_insert(i);
        }
    }
    out
}

/// Delegation chains (depth-1 tokens with what hangs under them), keyed by
/// chain hash where the trail has one, alive as of `at`.
fn chains(o: &Observed, at: usize) -> BTreeMap<String, usize> {
    o.nodes
        .iter()
        .enumerate()
        .filter(|(i, n)| {
            n.depth == 1 && o.exists(*i, at) && o.status(*i, at).liveness != Liveness::Dead
        })
        .map(|(i, n)| (n.chain_hash.clone().unwrap_or_else(|| format!("n{i}")), i))
        .collect()
}

/// The changes from `(a, at_a)` to `(b, at_b)` (the same trail twice, or two).
pub fn diff(a: &Observed, at_a: usize, b: &Observed, at_b: usize) -> Vec<Change> {
    let short = crate::rules::spiffe::with_orch;
    let mut out = Vec::new();
    let (ra, rb) = (reach(a, at_a), reach(b, at_b));
    let agents: BTreeSet<&String> = ra.keys().chain(rb.keys()).collect();
    let empty = BTreeMap::new();
    for agent in agents {
        let (ga, gb) = (
            ra.get(agent).unwrap_or(&empty),
            rb.get(agent).unwrap_or(&empty),
        );
        let gained: Vec<String> = gb
            .keys()
            .filter(|g| !ga.contains_key(*g))
            .cloned()
            .collect();
        let lost: Vec<String> = ga
            .keys()
            .filter(|g| !gb.contains_key(*g))
            .cloned()
            .collect();
        if !gained.is_empty() {
            out.push(Change {
                kind: "gained",
                agent: Some(agent.clone()),
                node: gb.get(&gained[0]).map(|n| format!("n{n}")),
                message: format!("{} can now reach {}", short(agent), gained.join(" ")),
                grants: gained,
            });
        }
        if !lost.is_empty() {
            out.push(Change {
                kind: "lost",
                agent: Some(agent.clone()),
                node: ga.get(&lost[0]).map(|n| format!("n{n}")),
                message: format!("{} can no longer reach {}", short(agent), lost.join(" ")),
                grants: lost,
            });
        }
    }
    let (ca, cb) = (chains(a, at_a), chains(b, at_b));
    for (key, &n) in cb.iter().filter(|(k, _)| !ca.contains_key(*k)) {
        let node = &b.nodes[n];
        out.push(Change {
            kind: "new-chain",
            agent: Some(b.agents[node.agent].spiffe.clone()),
            grants: node.scope.clone(),
            node: Some(format!("n{n}")),
            message: format!(
                "a chain from {} to {} ({key})",
                node.from
                    .map(|f| short(&b.agents[f].spiffe))
                    .unwrap_or_default(),
                short(&b.agents[node.agent].spiffe)
            ),
        });
    }
    for (key, &n) in ca.iter().filter(|(k, _)| !cb.contains_key(*k)) {
        let node = &a.nodes[n];
        out.push(Change {
            kind: "ended-chain",
            agent: Some(a.agents[node.agent].spiffe.clone()),
            grants: node.scope.clone(),
            node: Some(format!("n{n}")),
            message: format!(
                "the chain to {} ended ({key})",
                short(&a.agents[node.agent].spiffe)
            ),
        });
    }
    let before: BTreeSet<String> = super::check::check(a, at_a)
        .into_iter()
        .map(|f| f.fingerprint)
        .collect();
    for f in super::check::check(b, at_b) {
        if !before.contains(&f.fingerprint) {
            out.push(Change {
                kind: "new-finding",
                agent: f.agent,
                grants: Vec::new(),
                node: f.node,
                message: format!("{} {}: {}", f.severity.word(), f.rule, f.message),
            });
        }
    }
    out
}
