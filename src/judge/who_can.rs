//! "Who can …": every agent holding a token with a grant that meets a
//! pattern, with the best liveness among those tokens and the path from the
//! chain's root to the token that grants it.

use serde::Serialize;

use super::{Hop, liveness_word, path};
use crate::observe::{Liveness, Observed};

/// A scope whose parts may each be `*` (any): `write:*:production`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    action: String,
    resource: String,
    identifier: String,
}

impl Pattern {
    /// `action:resource:identifier`, split at the first two colons (as a
    /// scope is); each part non-empty, `*` for any.
    pub fn parse(s: &str) -> Result<Pattern, String> {
        let mut parts = s.splitn(3, ':');
        let (Some(a), Some(r), Some(i)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "'{s}' is not a pattern: expected action:resource:identifier, each part a word or * (e.g. write:*:production)"
            ));
        };
        if [a, r, i].iter().any(|p| p.is_empty()) {
            return Err(format!("'{s}': no part of a pattern may be empty"));
        }
        Ok(Pattern {
            action: a.into(),
            resource: r.into(),
            identifier: i.into(),
        })
    }

    /// Whether a grant meets the pattern: the same action and resource (or
    /// `*` in the pattern), and an identifier that overlaps (`*` in the
    /// pattern or in the grant, or the same). A `*` in a grant's action or
    /// resource is a literal, as the broker reads it (spec §3.2).
    pub fn meets(&self, grant: &str) -> bool {
        let Ok(g) = crate::scope::Scope::parse(grant) else {
            return false;
        };
        let part = |p: &str, x: &str| p == "*" || p == x;
        part(&self.action, g.action)
            && part(&self.resource, g.resource)
            && (self.identifier == "*" || g.identifier == "*" || g.identifier == self.identifier)
    }
}

/// One agent's reach.
#[derive(Debug, Clone, Serialize)]
pub struct Access {
    pub kind: &'static str,
    pub agent: String,
    /// `live`, `maybe` or `dead` (observe's words): the best of its matching tokens.
    pub status: &'static str,
    /// The grants that meet the pattern (of the token named).
    pub grants: Vec<String>,
    /// The token that grants it (the best one).
    pub node: String,
    pub status_why: String,
    /// From the chain's root to `node`.
    pub path: Vec<Hop>,
}

/// Every agent holding, as of `at`, a token with a grant meeting `p`; live
/// first, then may, then dead. `dead` holders only when `all`.
pub fn who_can(o: &Observed, at: usize, p: &Pattern, all: bool) -> Vec<Access> {
    // Per agent: (rank, node, judged) of its best matching token.
    let mut best: rustc_hash::FxHashMap<usize, (u8, usize, crate::observe::Judged)> =
        Default::default();
    for (i, n) in o.nodes.iter().enumerate() {
        if !o.exists(i, at) || !n.scope.iter().any(|g| p.meets(g)) {
            continue;
        }
        let j = o.status(i, at);
        let rank = match j.liveness {
            Liveness::Live => 0,
            Liveness::Maybe => 1,
            Liveness::Dead => 2,
        };
        if rank == 2 && !all {
            continue;
        }
        match best.get(&n.agent) {
            Some((r, _, _)) if *r <= rank => {}
            _ => {
                best.insert(n.agent, (rank, i, j));
            }
        }
    }
    let mut out: Vec<(u8, Access)> = best
        .into_iter()
        .map(|(agent, (rank, i, j))| {
            let n = &o.nodes[i];
            (
                rank,
                Access {
                    kind: "access",
                    agent: o.agents[agent].spiffe.clone(),
                    status: liveness_word(j.liveness),
                    grants: n.scope.iter().filter(|g| p.meets(g)).cloned().collect(),
                    node: format!("n{i}"),
                    status_why: j.why,
                    path: path(o, i),
                },
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.agent.cmp(&b.1.agent)));
    out.into_iter().map(|(_, a)| a).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_meet_grants_as_the_broker_reads_scopes() {
        let p = Pattern::parse("write:*:production").unwrap();
        assert!(p.meets("write:config:production"));
        assert!(
            p.meets("write:deploy:*"),
            "a wildcard grant reaches production"
        );
        assert!(!p.meets("read:config:production"));
        assert!(!p.meets("write:config:staging"));
        let any = Pattern::parse("*:config:*").unwrap();
        assert!(any.meets("read:config:x") && any.meets("write:config:*"));
        // A literal * in a grant's action is no wildcard.
        assert!(!Pattern::parse("read:config:x").unwrap().meets("*:config:x"));
        assert!(Pattern::parse("read:config").is_err());
        assert!(Pattern::parse("read::x").is_err());
    }
}
