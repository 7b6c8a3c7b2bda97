//! `check`: least-privilege findings over a reconstruction as of an event,
//! each with a rule id, a severity, the node and event it is about, a
//! fingerprint stable across runs of the same trail, and a sentence on how
//! to fix it. Rules read observe's three-valued statuses: a token that may
//! be alive counts as alive where that is the safe reading.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::observe::{Liveness, NodeId, NodeKind, Observed};
use crate::rules::{RevokeLevel, limits::MAX_DEPTH};

/// How bad a finding is (SARIF's levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn word(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        [Severity::Note, Severity::Warning, Severity::Error]
            .into_iter()
            .find(|v| v.word() == s)
    }
}

/// A rule: id, severity, what it finds, how to fix it.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    pub description: &'static str,
    pub help: &'static str,
}

/// Every rule `check` applies, in the order findings are listed.
pub const RULES: &[Rule] = &[
    Rule {
        id: "self-delegation",
        severity: Severity::Warning,
        description: "A hop to its own holder, or a cycle through an agent already in the chain.",
        help: "Delegate to the agent that does the work; a hop back into the chain adds nothing but another token to revoke.",
    },
    Rule {
        id: "delegator-not-agent",
        severity: Severity::Warning,
        description: "An admin or app token delegated: the chain's root is no agent.",
        help: "Register an agent for the work and delegate from its token; admin and app tokens should not hand out authority.",
    },
    Rule {
        id: "wildcard-handed-down",
        severity: Severity::Warning,
        description: "An identifier wildcard (action:resource:*) passed on two hops or more.",
        help: "Narrow the scope at the first hop to the identifiers the delegate needs (e.g. write:deploy:web-service).",
    },
    Rule {
        id: "chain-at-depth-limit",
        severity: Severity::Warning,
        description: "A chain at the broker's depth limit (5): its holder cannot delegate further.",
        help: "Shorten the chain: delegate from a token nearer the root.",
    },
    Rule {
        id: "rerooted-chain",
        severity: Severity::Warning,
        description: "A depth-1 delegation by an agent that then held a delegated token covering what it passed on: the new chain no longer records where the authority came from.",
        help: "Delegate with the delegated token as Bearer (the SDK's agent.delegate() always uses the registration token), so revoking the original chain's root reaches it.",
    },
    Rule {
        id: "outlives-delegator",
        severity: Severity::Warning,
        description: "A delegated token that is, or may be, alive after the token it came from ended.",
        help: "Give delegations a ttl no longer than the delegator's remaining lifetime, and revoke the delegate (agent or chain level) when the delegator ends.",
    },
    Rule {
        id: "revocation-gap",
        severity: Severity::Warning,
        description: "A revocation left tokens alive that an operator would expect it to kill (it never cascades).",
        help: "Revoke the survivors too: `chainview what-if revoke LEVEL TARGET` lists them and the entries that reach them.",
    },
    Rule {
        id: "escalation-probing",
        severity: Severity::Warning,
        description: "An agent was refused widenings three times or more.",
        help: "Find out why the agent asks for more than it holds; revoke it (agent level) if it should not.",
    },
    Rule {
        id: "revoked-token-presented",
        severity: Severity::Warning,
        description: "A revoked or released token was used again.",
        help: "The client keeps a dead token: find it by the path and time, and make it drop tokens it released or that were revoked.",
    },
    Rule {
        id: "hop-narrowed-nothing",
        severity: Severity::Note,
        description: "A hop passed on its whole scope.",
        help: "Pass on only what the delegate needs; an equal-scope hop is fan-out, not least privilege.",
    },
    Rule {
        id: "unaudited-refusals",
        severity: Severity::Note,
        description: "A v2.0.0 trail does not audit depth-limit and unknown-delegate refusals: they cannot be checked.",
        help: "Watch the clients' own logs (or the broker's 403/404 answers) for refused delegations the trail does not show.",
    },
];

/// Refusals of widening at or above this many per agent are probing.
pub const PROBING: usize = 3;

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: &'static str,
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
    pub node: Option<String>,
    pub agent: Option<String>,
    pub event: Option<String>,
    pub fingerprint: String,
    pub help: &'static str,
}

fn rule(id: &str) -> &'static Rule {
    RULES.iter().find(|r| r.id == id).unwrap_or(&RULES[0])
}

/// Stable across runs of the same trail: the rule, the event and the
/// agent (not node numbers, which a longer trail may shift).
fn fingerprint(rule: &str, event: Option<&str>, agent: Option<&str>, extra: &str) -> String {
    let mut h = Sha256::new();
    for part in [rule, event.unwrap_or(""), agent.unwrap_or(""), extra] {
        h.update(part.as_bytes());
        h.update(b"|");
    }
    hex::encode(&h.finalize()[..8])
}

pub(super) struct Out<'o> {
    pub(super) o: &'o Observed,
    pub(super) findings: Vec<Finding>,
}

impl Out<'_> {
    fn add(
        &mut self,
        id: &'static str,
        node: Option<NodeId>,
        event: Option<usize>,
        message: String,
    ) {
        let r = rule(id);
        let o = self.o;
        let agent = node.map(|n| o.agents[o.nodes[n].agent].spiffe.clone());
        let event = event
            .or(node.map(|n| o.nodes[n].event))
            .map(|k| o.events[k].id.to_string());
        let fingerprint = fingerprint(id, event.as_deref(), agent.as_deref(), &message);
        self.findings.push(Finding {
            kind: "finding",
            rule: id,
            severity: r.severity,
            message,
            node: node.map(|n| format!("n{n}")),
            agent,
            event,
            fingerprint,
            help: r.help,
        });
    }
}

/// Every finding as of event `at`.
pub fn check(o: &Observed, at: usize) -> Vec<Finding> {
    let mut out = Out {
        o,
        findings: Vec::new(),
    };
    for i in (0..o.nodes.len()).filter(|&i| o.exists(i, at)) {
        node_findings(&mut out, i, at);
    }
    revocation_gaps(&mut out, at);
    denials(&mut out, at);
    check_note(&mut out);
    let order = |f: &Finding| RULES.iter().position(|r| r.id == f.rule).unwrap_or(0);
    out.findings
        .sort_by_key(|f| (std::cmp::Reverse(f.severity), order(f)));
    out.findings
}

/// The note once per source: what a v2.0.0 trail cannot show.
pub(super) fn check_note(out: &mut Out<'_>) {
    out.add(
        "unaudited-refusals",
        None,
        None,
        "depth-limit and unknown-delegate refusals are not in a v2.0.0 trail".into(),
    );
}

/// The findings about node `i` itself (at most one per rule), as of `at`:
/// they read its chain, its parent's scope and both statuses.
pub(super) fn node_findings(out: &mut Out<'_>, i: NodeId, at: usize) {
    let o = out.o;
    let n = &o.nodes[i];
    let short = crate::rules::spiffe::with_orch;
    // A renewal of a delegated token keeps its chain: it too may
    // outlive the token that chain came from.
    if n.kind == NodeKind::Renewal
        && let Some(p) = n.parent
    {
        outlives(out, i, p, at);
    }
    if n.kind != NodeKind::Delegation {
        return;
    }
    let holder = &o.agents[n.agent].spiffe;
    let from = n.from.map(|f| o.agents[f].spiffe.as_str()).unwrap_or("");
    let chain = o.chain(i);
    let earlier = chain[..chain.len() - 1]
        .iter()
        .any(|&h| o.nodes[h].agent == n.agent);
    if from == holder || earlier {
        out.add(
            "self-delegation",
            Some(i),
            None,
            format!(
                "{} delegated to an agent already in its chain ({})",
                short(from),
                short(holder)
            ),
        );
    }
    if from == "admin" || from.starts_with("app:") {
        out.add(
            "delegator-not-agent",
            Some(i),
            None,
            format!(
                "{from} delegated [{}] to {}",
                n.scope.join(" "),
                short(holder)
            ),
        );
    }
    if n.depth >= 2 && n.impossible.is_none() {
        let wild: Vec<&str> = n
            .scope
            .iter()
            .filter(|g| g.ends_with(":*"))
            .map(String::as_str)
            .collect();
        // Handed down two hops: the parent held it too, below its root.
        let parent_wild = n
            .parent
            .is_some_and(|p| wild.iter().any(|w| o.nodes[p].scope.iter().any(|g| g == w)));
        if !wild.is_empty() && parent_wild {
            out.add(
                "wildcard-handed-down",
                Some(i),
                None,
                format!(
                    "{} holds {} at depth {}",
                    short(holder),
                    wild.join(" "),
                    n.depth
                ),
            );
        }
    }
    if n.depth == MAX_DEPTH {
        out.add(
            "chain-at-depth-limit",
            Some(i),
            None,
            format!(
                "{} holds a token at depth {MAX_DEPTH}: it cannot delegate further",
                short(holder)
            ),
        );
    }
    if let Some(p) = n.parent {
        let mut a: Vec<&String> = n.scope.iter().collect();
        let mut b: Vec<&String> = o.nodes[p].scope.iter().collect();
        a.sort();
        b.sort();
        // A delegator whose scope the trail does not give (an admin or
        // app token, an agent registered before the trail starts) held
        // at least what it passed on: nothing says it held no more.
        let known = o.nodes[p].depth > 0 || o.agents[o.nodes[p].agent].registered.is_some();
        if a == b && known {
            out.add(
                "hop-narrowed-nothing",
                Some(i),
                None,
                format!(
                    "{} passed its whole scope [{}] to {}",
                    short(from),
                    n.scope.join(" "),
                    short(holder)
                ),
            );
        }
        if n.depth == 1
            && let Some(f) = n.from
        {
            rerooted(out, i, f);
        }
        outlives(out, i, p, at);
    }
}

/// `i` (a delegation, or a renewal of one) alive or perhaps alive while
/// `p`, the token its chain came from, is dead.
fn outlives(out: &mut Out<'_>, i: NodeId, p: NodeId, at: usize) {
    let o = out.o;
    let short = crate::rules::spiffe::with_orch;
    // The parent first: most are not dead, and then the child's status
    // is not needed.
    let parent = o.status(p, at);
    if parent.liveness != Liveness::Dead {
        return;
    }
    let child = o.status(i, at);
    if child.liveness != Liveness::Dead {
        let n = &o.nodes[i];
        let renewal = match n.renews {
            Some(r) if n.kind == NodeKind::Renewal => format!(", a renewal of n{r},"),
            _ => String::new(),
        };
        out.add(
            "outlives-delegator",
            Some(i),
            None,
            format!(
                "{} ({}){renewal} outlives the token it came from, n{p} ({})",
                short(&o.agents[n.agent].spiffe),
                if child.liveness == Liveness::Live {
                    "alive"
                } else {
                    "may be alive"
                },
                parent.status.word()
            ),
        );
    }
}

/// A depth-1 delegation by `from` that, when it was made, held a usable
/// delegated token covering what it passed on.
fn rerooted(out: &mut Out<'_>, i: NodeId, from: usize) {
    let o = out.o;
    let n = &o.nodes[i];
    let held = o.agents[from]
        .nodes
        .iter()
        .rev()
        .take(256)
        .copied()
        .find(|&h| {
            let t = &o.nodes[h];
            t.depth > 0
                && t.event < n.event
                && crate::scope::is_subset(&n.scope, &t.scope)
                && o.status(h, n.event).liveness != Liveness::Dead
        });
    if let Some(h) = held {
        out.add(
            "rerooted-chain",
            Some(i),
            None,
            format!(
                "{} delegated [{}] from its registration token while it held n{h} (depth {}) covering it: this chain starts at it, not at n{h}'s root",
                crate::rules::spiffe::with_orch(&o.agents[from].spiffe),
                n.scope.join(" "),
                o.nodes[h].depth
            ),
        );
    }
}

/// Agent- and chain-level revocations that left tokens alive an operator
/// would expect dead (judged as of `at`).
fn revocation_gaps(out: &mut Out<'_>, at: usize) {
    let o = out.o;
    let revocations: Vec<(usize, RevokeLevel, String)> = o
        .revocations()
        .filter(|(k, l, _)| *k <= at && matches!(l, RevokeLevel::Agent | RevokeLevel::Chain))
        .map(|(k, l, t)| (k, l, t.to_string()))
        .collect();
    for (k, level, target) in revocations {
        revocation_gap(out, k, level, &target, at);
    }
}

/// The survivors of one agent- or chain-level entry (made at event `k`),
/// as of `at`, as one finding (none when nothing survives).
/// Returns the tokens the entry was expected to kill.
pub(super) fn revocation_gap(
    out: &mut Out<'_>,
    k: usize,
    level: RevokeLevel,
    target: &str,
    at: usize,
) -> Vec<NodeId> {
    let e = super::what_if::effects(out.o, at, level, target);
    let survivors: Vec<&str> = e
        .effects
        .iter()
        .filter(|e| e.effect == "survives")
        .map(|e| e.node.as_str())
        .collect();
    if !survivors.is_empty() {
        out.add(
            "revocation-gap",
            None,
            Some(k),
            format!(
                "revoke {level} {} left {} alive: {}",
                crate::rules::spiffe::with_orch(target),
                survivors.len(),
                survivors.join(" ")
            ),
        );
    }
    e.expected
}

fn denials(out: &mut Out<'_>, at: usize) {
    let o = out.o;
    let mut probing: rustc_hash::FxHashMap<&str, (usize, usize)> = Default::default();
    for (i, d) in o.denials_at(at) {
        if let Some(who) = denial(out, i) {
            let e = probing.entry(who).or_insert((0, d.event));
            e.0 += 1;
            e.1 = d.event;
        }
    }
    let mut probing: Vec<_> = probing.into_iter().collect();
    probing.sort();
    for (who, (n, last)) in probing {
        probing_finding(out, who, n, last);
    }
}

/// Denial `i`: a `revoked-token-presented` finding, or the agent a refused
/// escalation counts against (`-` when the trail does not name it).
pub(super) fn denial<'o>(out: &mut Out<'o>, i: usize) -> Option<&'o str> {
    let o = out.o;
    let d = &o.denials[i];
    match d.class() {
        "refused escalation" => Some(d.by.as_deref().unwrap_or("-")),
        "revoked token presented" => {
            out.add(
                "revoked-token-presented",
                d.node,
                Some(d.event),
                format!(
                    "a revoked or released token was presented{}",
                    d.path
                        .as_deref()
                        .map(|p| format!(" to {p}"))
                        .unwrap_or_default()
                ),
            );
            None
        }
        _ => None,
    }
}

/// `escalation-probing` for `who`, refused `n` widenings, the last at
/// event `last` (nothing below [`PROBING`]).
pub(super) fn probing_finding(out: &mut Out<'_>, who: &str, n: usize, last: usize) {
    if n < PROBING {
        return;
    }
    out.add(
        "escalation-probing",
        None,
        Some(last),
        format!(
            "{} was refused {n} widenings",
            crate::rules::spiffe::with_orch(who)
        ),
    );
    if let Some(f) = out.findings.last_mut() {
        f.agent = Some(who.to_string());
    }
}
