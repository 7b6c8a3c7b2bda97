//! "What if I revoke …": the blast radius of a revocation entry by the
//! broker's real rule (spec §7.1, `rules::covers`) — what dies, what may
//! die (a status or a chain root the trail cannot settle), and what an
//! operator would expect to die that survives (the rule never cascades),
//! with why; then the smallest set of entries that kills the whole subtree,
//! and what else each of them kills.

use serde::Serialize;

use crate::observe::{Liveness, NodeId, Observed};
use crate::rules::RevokeLevel;

/// One token's fate under the entry.
#[derive(Debug, Clone, Serialize)]
pub struct Effect {
    pub kind: &'static str,
    /// `dies`, `may die` or `survives`.
    pub effect: &'static str,
    pub node: String,
    pub agent: String,
    pub depth: usize,
    pub why: String,
}

/// One revocation of a plan.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Entry {
    pub level: &'static str,
    pub target: String,
    /// Tokens of the subtree it kills.
    pub kills: Vec<String>,
    /// Live (or may-be) tokens outside the subtree it kills too.
    pub also_kills: Vec<String>,
}

/// The smallest set of entries found that kills the whole subtree: the
/// entry asked for, then those that kill what it leaves.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub kind: &'static str,
    pub level: &'static str,
    pub target: String,
    pub entries: Vec<Entry>,
    /// Survivors no entry can reach (their claims are not in the trail).
    pub uncovered: Vec<String>,
    pub notes: Vec<String>,
}

/// The target as the broker takes it; a node id (`n12`) names that node's
/// claim for the level (its jti, holder, task or chain root).
pub fn resolve_target(o: &Observed, level: RevokeLevel, target: &str) -> Result<String, String> {
    let Some(n) = target
        .strip_prefix('n')
        .and_then(|d| d.parse::<usize>().ok())
    else {
        return Ok(target.to_string());
    };
    let node = o
        .nodes
        .get(n)
        .ok_or_else(|| format!("no node {target} in the trail"))?;
    o.subject(node)
        .key(level)
        .map(str::to_string)
        .ok_or_else(|| match level {
            RevokeLevel::Token => format!("{target}'s jti is not in the trail (a delegated token's jti is not audited): revoke it by agent, task or chain instead"),
            RevokeLevel::Task => format!("{target} carries no task"),
            _ => format!("{target} has no delegation chain: a chain entry for it matches nothing"),
        })
}

/// The tokens an operator would expect the entry to kill, as of `at`: those
/// it names and everything issued under them (and, at agent and chain
/// level, every token the agent holds and what was issued under those —
/// which takes in the chains passing through it), and the chains re-rooted
/// from them: a depth-1 delegation by a holder of one of those tokens,
/// made from its registration token while it held that token and covered
/// by it (the SDK's `delegate()` pattern), with what was issued under it.
/// From the indexes: the work is the size of the subtree, not of the trail.
/// Returns the tokens, and each re-rooted chain's first token with the
/// token it was re-rooted from.
pub(super) fn expected(
    o: &Observed,
    at: usize,
    level: RevokeLevel,
    target: &str,
) -> (Vec<NodeId>, Vec<(NodeId, NodeId)>) {
    let mut seeds: Vec<NodeId> = o.covered(level, target);
    if matches!(level, RevokeLevel::Agent | RevokeLevel::Chain)
        && let Some(a) = o.agent_named(target)
    {
        seeds.extend(o.agents[a].nodes.iter().copied());
    }
    seeds.retain(|&i| o.exists(i, at));
    let mut all: Vec<NodeId> = seeds.clone();
    for s in seeds {
        all.extend(super::descendants(o, s, at));
    }
    all.sort_unstable();
    all.dedup();
    let mut rerooted = Vec::new();
    let mut todo: Vec<NodeId> = all.clone();
    while let Some(d) = todo.pop() {
        for c in rerooted_from(o, d, at) {
            if all.binary_search(&c).is_err() {
                rerooted.push((c, d));
                let mut more = vec![c];
                more.extend(super::descendants(o, c, at));
                for m in more {
                    if let Err(k) = all.binary_search(&m) {
                        all.insert(k, m);
                        todo.push(m);
                    }
                }
            }
        }
    }
    (all, rerooted)
}

/// The depth-1 delegations its holder made from a registration token while
/// it held `d` (a delegated token) and that `d` covers.
pub fn rerooted_from(o: &Observed, d: NodeId, at: usize) -> Vec<NodeId> {
    let held = &o.nodes[d];
    if held.depth == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for &r in &o.agents[held.agent].nodes {
        if o.nodes[r].depth != 0 {
            continue;
        }
        for &c in &o.nodes[r].children {
            let n = &o.nodes[c];
            if n.depth == 1
                && o.exists(c, at)
                && n.event > held.event
                && crate::scope::is_subset(&n.scope, &held.scope)
                && o.status(d, n.event).liveness != Liveness::Dead
            {
                out.push(c);
            }
        }
    }
    out
}

/// Why a token the operator expected to die survives the entry.
fn survives_why(o: &Observed, i: NodeId, level: RevokeLevel, target: &str) -> String {
    let n = &o.nodes[i];
    let s = o.subject(n);
    let a = o.agent_named(target);
    match level {
        RevokeLevel::Agent => format!(
            "held by {}, not {target}: an agent entry matches only the holder (sub); revocation does not cascade to what it delegated",
            s.sub
        ),
        RevokeLevel::Chain if Some(n.agent) == a && n.depth == 0 => {
            "the root's own token: its delegation_chain is empty, so a chain entry never matches it".into()
        }
        RevokeLevel::Chain => match s.chain_root {
            Some(r) => format!(
                "its chain starts at {r}, not {target}: a chain entry matches only delegation_chain[0]"
            ),
            None => "an undelegated token: a chain entry never matches it".into(),
        },
        RevokeLevel::Task => format!("its task is '{}', not {target}", s.task),
        RevokeLevel::Token => match n.jti.as_deref() {
            Some(j) => format!("its jti is {j}: a token entry matches only that token, not what was issued under it"),
            None => "issued under the revoked token: a token entry matches only that token (this one's jti is not in the trail)".into(),
        },
    }
}

/// The effects of `(level, target)` as of `at`, and the plan.
pub fn what_if(o: &Observed, at: usize, level: RevokeLevel, target: &str) -> (Vec<Effect>, Plan) {
    let e = effects(o, at, level, target);
    let plan = plan(o, at, level, target, &e.expected, &e.survivors, e.notes);
    (e.effects, plan)
}

/// What an entry does, before the plan: the effects, the tokens an
/// operator would expect it to kill, those of them that survive, notes.
pub(super) struct Effects {
    pub effects: Vec<Effect>,
    pub expected: Vec<NodeId>,
    pub survivors: Vec<NodeId>,
    pub notes: Vec<String>,
}

pub(super) fn effects(o: &Observed, at: usize, level: RevokeLevel, target: &str) -> Effects {
    let (expected, rerooted) = expected(o, at, level, target);
    let mut effects = Vec::new();
    let mut survivors = Vec::new();
    let mut notes = Vec::new();
    let effect = |i: NodeId, e: &'static str, why: String| Effect {
        kind: "effect",
        effect: e,
        node: format!("n{i}"),
        agent: o.agents[o.nodes[i].agent].spiffe.clone(),
        depth: o.nodes[i].depth,
        why,
    };
    let covered = o.covered(level, target);
    let known_jti = level != RevokeLevel::Token || !covered.is_empty();
    let mut consider: Vec<NodeId> = expected.iter().chain(&covered).copied().collect();
    if !known_jti {
        // Any token whose jti the trail does not carry may be it.
        consider.extend(
            o.nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.jti.is_none())
                .map(|(i, _)| i),
        );
    }
    consider.sort_unstable();
    consider.dedup();
    for i in consider.into_iter().filter(|&i| o.exists(i, at)) {
        let j = o.status(i, at);
        if j.liveness == Liveness::Dead {
            continue;
        }
        let n = &o.nodes[i];
        // A jti the trail never carried may be any token whose jti it
        // does not carry (a delegated token's is never audited).
        if level == RevokeLevel::Token && n.jti.is_none() && !known_jti {
            effects.push(effect(
                i,
                "may die",
                "its jti is not in the trail: it may be the token with this jti".into(),
            ));
            continue;
        }
        let hit = covered.binary_search(&i).is_ok();
        let root_guess = level == RevokeLevel::Chain && !n.inferred.is_empty();
        if hit {
            let sure = j.liveness == Liveness::Live && !root_guess;
            let why = format!(
                "{} matches the entry ({level} {target}){}",
                match level {
                    RevokeLevel::Token => "its jti",
                    RevokeLevel::Agent => "its holder (sub)",
                    RevokeLevel::Task => "its task",
                    RevokeLevel::Chain => "its chain root",
                },
                if sure {
                    String::new()
                } else {
                    format!("; unsure: {}", j.why)
                }
            );
            effects.push(effect(i, if sure { "dies" } else { "may die" }, why));
        } else if expected.binary_search(&i).is_ok() {
            let why = match rerooted.iter().find(|(c, _)| *c == i) {
                Some((_, d)) => format!(
                    "re-rooted: {} delegated it from its registration token while holding n{d}, which covers it; its chain starts at {0}, so no entry reaching n{d} reaches it",
                    o.agents[o.nodes[*d].agent].spiffe
                ),
                None => survives_why(o, i, level, target),
            };
            effects.push(effect(i, "survives", why));
            survivors.push(i);
        }
    }
    if level == RevokeLevel::Token && !known_jti {
        notes.push(format!(
            "no token in the trail carries jti {target}: a delegated token's jti is not audited, so it may be one of those; the broker accepts any target (and always answers count 1)"
        ));
    }
    if level == RevokeLevel::Chain
        && let Some(a) = o.agent_named(target)
        && o.agents[a]
            .nodes
            .iter()
            .any(|&i| o.exists(i, at) && o.nodes[i].depth > 0)
    {
        notes.push(format!(
            "{target} also holds delegated tokens: chains it started with them (the SDK's delegate() signs with the registration token, re-rooting) are rooted at it, those it received are not"
        ));
    }
    Effects {
        effects,
        expected,
        survivors,
        notes,
    }
}

/// A greedy cover of the survivors with entries (token by jti, chain by
/// root, agent by holder, task): the entry killing most survivors first,
/// fewer other tokens on a tie.
fn plan(
    o: &Observed,
    at: usize,
    level: RevokeLevel,
    target: &str,
    expected: &[NodeId],
    survivors: &[NodeId],
    notes: Vec<String>,
) -> Plan {
    let alive = |i: &NodeId| o.exists(*i, at) && o.status(*i, at).liveness != Liveness::Dead;
    // What an entry kills, split into the subtree and the rest.
    let kills = |l: RevokeLevel, t: &str| -> (Vec<NodeId>, Vec<NodeId>) {
        o.covered(l, t)
            .into_iter()
            .filter(alive)
            .partition(|i| expected.binary_search(i).is_ok())
    };
    let names = |v: &[NodeId]| v.iter().map(|i| format!("n{i}")).collect::<Vec<_>>();
    let (inside, outside) = kills(level, target);
    let mut entries = vec![Entry {
        level: level.as_str(),
        target: target.to_string(),
        kills: names(&inside),
        also_kills: names(&outside),
    }];
    let mut left: Vec<NodeId> = survivors.to_vec();
    while !left.is_empty() && entries.len() < 33 {
        let mut cands: Vec<(RevokeLevel, String)> = Vec::new();
        for &i in &left {
            let s = o.subject(&o.nodes[i]);
            for l in RevokeLevel::ALL {
                if l == RevokeLevel::Chain && !o.nodes[i].inferred.is_empty() {
                    continue;
                }
                if let Some(k) = s.key(l) {
                    cands.push((l, k.to_string()));
                }
            }
        }
        cands.sort();
        cands.dedup();
        // Most survivors killed first; on a tie, fewest others.
        let Some((l, t, inside, outside)) = cands
            .into_iter()
            .map(|(l, t)| {
                let (inside, outside) = kills(l, &t);
                (l, t, inside, outside)
            })
            .max_by_key(|(_, _, inside, outside)| {
                let hits = inside.iter().filter(|i| left.contains(i)).count();
                (hits, std::cmp::Reverse(outside.len()))
            })
        else {
            break;
        };
        let hit: Vec<NodeId> = left
            .iter()
            .copied()
            .filter(|i| inside.contains(i))
            .collect();
        if hit.is_empty() {
            break;
        }
        left.retain(|i| !hit.contains(i));
        entries.push(Entry {
            level: l.as_str(),
            target: t,
            kills: names(&hit),
            also_kills: names(&outside),
        });
    }
    Plan {
        kind: "plan",
        level: level.as_str(),
        target: target.to_string(),
        entries,
        uncovered: names(&left),
        notes,
    }
}
