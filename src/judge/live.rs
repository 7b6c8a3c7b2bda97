//! `check` kept up to date in live mode: after each poll only what the new
//! events (and the passing time) can have changed is judged again — new
//! tokens, tokens whose ending, doubts or uses changed (and the other
//! candidates of their doubts), tokens whose expiry (or last use) the
//! clock passed, the tokens issued under any of those, the revocation
//! entries whose subtree holds one of their agents, and new denials. The
//! findings equal [`super::check::check`] at the head (tested on random
//! trails); the work of a poll is the size of what it touched.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};

use super::check::{self, Finding, Out, RULES};
use crate::observe::{AgentIx, NodeId, Observed};
use crate::rules::RevokeLevel;
use crate::rules::limits::{DEFAULT_DELEGATION_TTL, MAX_TTL};

type Entry = (RevokeLevel, String);

/// Findings at the head of a growing reconstruction.
#[derive(Default)]
pub struct LiveCheck {
    nodes_seen: usize,
    events_seen: usize,
    denials_seen: usize,
    /// Per node: its ending event, doubts and uses when last judged.
    sig: Vec<(usize, usize, usize)>,
    /// Per node: the nodes whose parent it is (delegations and renewals).
    dependents: Vec<Vec<NodeId>>,
    /// When a node's liveness may change by the clock alone.
    wake: BTreeMap<i64, Vec<NodeId>>,
    /// Per rule (index in [`RULES`]): the node findings, by node.
    by_node: Vec<BTreeMap<NodeId, Finding>>,
    /// Revocation gaps, in `Observed::revocations` order.
    gaps: BTreeMap<(usize, RevokeLevel, String), Finding>,
    /// Each entry's latest event and the agents of what it was expected to kill.
    entries: FxHashMap<Entry, (usize, FxHashSet<AgentIx>)>,
    by_agent: FxHashMap<AgentIx, FxHashSet<Entry>>,
    presented: BTreeMap<usize, Finding>,
    refused: FxHashMap<String, (usize, usize)>,
    probing: BTreeMap<String, Finding>,
    note: Vec<Finding>,
}

fn rule_ix(id: &str) -> usize {
    RULES.iter().position(|r| r.id == id).unwrap_or(0)
}

impl LiveCheck {
    pub fn new() -> LiveCheck {
        LiveCheck {
            by_node: vec![BTreeMap::new(); RULES.len()],
            ..LiveCheck::default()
        }
    }

    /// Judges again what changed since the last update (the first update
    /// judges everything), as of the reconstruction's head.
    pub fn update(&mut self, o: &Observed) {
        let Some(at) = o.head() else {
            return;
        };
        let now = o.judged_ms(at);
        let mut dirty: FxHashSet<NodeId> = FxHashSet::default();
        // New nodes.
        for i in self.nodes_seen..o.nodes.len() {
            let n = &o.nodes[i];
            self.sig.push((usize::MAX, 0, 0));
            self.dependents.push(Vec::new());
            if let Some(p) = n.parent {
                self.dependents[p].push(i);
            }
            let mut times = vec![MAX_TTL * 1000];
            match n.ttl {
                Some(t) => times.push(t * 1000),
                None => times.push(DEFAULT_DELEGATION_TTL * 1000),
            }
            for t in times {
                self.wake.entry(n.ms + t + 1).or_default().push(i);
            }
            dirty.insert(i);
        }
        self.nodes_seen = o.nodes.len();
        // Tokens whose ending, doubts or uses changed, and the other
        // candidates of their doubts.
        let mut touched = Vec::new();
        for (i, n) in o.nodes.iter().enumerate() {
            let sig = (
                n.end.as_ref().map_or(usize::MAX, |e| e.event),
                n.doubts.len(),
                n.uses.len(),
            );
            if self.sig[i] != sig {
                for &u in &n.uses[self.sig[i].2.min(n.uses.len())..] {
                    if let Some(e) = o.events.get(u) {
                        self.wake.entry(e.ms + 1).or_default().push(i);
                    }
                }
                self.sig[i] = sig;
                touched.push(i);
            }
        }
        for i in touched {
            dirty.insert(i);
            for &d in &o.nodes[i].doubts {
                dirty.extend(o.doubts[d].members.iter().copied());
            }
        }
        // The clock.
        while let Some(entry) = self.wake.first_entry() {
            if *entry.key() > now {
                break;
            }
            dirty.extend(entry.remove());
        }
        // Agents registered since: their tokens' scope is known now.
        for a in &o.agents {
            if a.registered.is_some_and(|k| k >= self.events_seen) {
                dirty.extend(a.nodes.iter().copied());
            }
        }
        self.events_seen = o.events.len();
        // What was issued under a changed token reads its status.
        let status_changed: Vec<NodeId> = dirty.iter().copied().collect();
        for i in status_changed {
            dirty.extend(self.dependents[i].iter().copied());
        }
        let mut agents: FxHashSet<AgentIx> = FxHashSet::default();
        for &i in &dirty {
            for m in &mut self.by_node {
                m.remove(&i);
            }
            let mut out = Out {
                o,
                findings: Vec::new(),
            };
            check::node_findings(&mut out, i, at);
            for f in out.findings {
                self.by_node[rule_ix(f.rule)].insert(i, f);
            }
            agents.insert(o.nodes[i].agent);
            agents.extend(o.nodes[i].from);
        }
        self.revocations(o, at, &agents);
        self.denials(o);
        if self.note.is_empty() {
            let mut out = Out {
                o,
                findings: Vec::new(),
            };
            check::check_note(&mut out);
            self.note = out.findings;
        }
    }

    fn revocations(&mut self, o: &Observed, at: usize, agents: &FxHashSet<AgentIx>) {
        let mut redo: FxHashSet<Entry> = FxHashSet::default();
        for a in agents {
            if let Some(e) = self.by_agent.get(a) {
                redo.extend(e.iter().cloned());
            }
        }
        for (k, level, target) in o.revocations() {
            if !matches!(level, RevokeLevel::Agent | RevokeLevel::Chain) {
                continue;
            }
            let entry = (level, target.to_string());
            let seen = self.entries.get(&entry).map(|(seen, _)| *seen);
            if seen != Some(k) {
                // New, or made again: its place in the order moves.
                if let Some(old) = seen {
                    self.gaps.remove(&(old, level, entry.1.clone()));
                }
                let agents = self
                    .entries
                    .remove(&entry)
                    .map(|(_, a)| a)
                    .unwrap_or_default();
                self.entries.insert(entry.clone(), (k, agents));
                redo.insert(entry);
            }
        }
        for entry in redo {
            let Some((k, old_agents)) = self.entries.get(&entry).cloned() else {
                continue;
            };
            let (level, target) = (entry.0, entry.1.as_str());
            for a in &old_agents {
                if let Some(set) = self.by_agent.get_mut(a) {
                    set.remove(&entry);
                }
            }
            let (expected, _) = super::what_if::expected(o, at, level, target);
            let mut now: FxHashSet<AgentIx> = expected.iter().map(|&i| o.nodes[i].agent).collect();
            now.extend(o.agent_named(target));
            for &a in &now {
                self.by_agent.entry(a).or_default().insert(entry.clone());
            }
            self.entries.insert(entry.clone(), (k, now));
            let key = (k, level, entry.1.clone());
            self.gaps.remove(&key);
            if k > at {
                continue;
            }
            let mut out = Out {
                o,
                findings: Vec::new(),
            };
            check::revocation_gap(&mut out, k, level, target, at);
            if let Some(f) = out.findings.pop() {
                self.gaps.insert(key, f);
            }
        }
    }

    fn denials(&mut self, o: &Observed) {
        for i in self.denials_seen..o.denials.len() {
            let mut out = Out {
                o,
                findings: Vec::new(),
            };
            if let Some(who) = check::denial(&mut out, i) {
                let e = self
                    .refused
                    .entry(who.to_string())
                    .or_insert((0, o.denials[i].event));
                e.0 += 1;
                e.1 = o.denials[i].event;
                let (n, last) = *e;
                check::probing_finding(&mut out, who, n, last);
                if let Some(f) = out.findings.pop() {
                    self.probing.insert(who.to_string(), f);
                }
            } else if let Some(f) = out.findings.pop() {
                self.presented.insert(i, f);
            }
        }
        self.denials_seen = o.denials.len();
    }

    /// The findings, in `check`'s order (most severe first, then by rule).
    pub fn findings(&self) -> impl Iterator<Item = &Finding> + '_ {
        let mut order: Vec<usize> = (0..RULES.len()).collect();
        order.sort_by_key(|&r| std::cmp::Reverse(RULES[r].severity));
        order
            .into_iter()
            .flat_map(move |r| -> Box<dyn Iterator<Item = &Finding> + '_> {
                match RULES[r].id {
                    "revocation-gap" => Box::new(self.gaps.values()),
                    "revoked-token-presented" => Box::new(self.presented.values()),
                    "escalation-probing" => Box::new(self.probing.values()),
                    "unaudited-refusals" => Box::new(self.note.iter()),
                    _ => Box::new(self.by_node[r].values()),
                }
            })
    }

    /// How many findings there are.
    pub fn len(&self) -> usize {
        self.by_node.iter().map(BTreeMap::len).sum::<usize>()
            + self.gaps.len()
            + self.presented.len()
            + self.probing.len()
            + self.note.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
