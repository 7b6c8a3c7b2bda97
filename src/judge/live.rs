//! `check` kept up to date in live mode: after each poll only what the new
//! events (and the passing time) can have changed is judged again — new
//! tokens, tokens whose ending, doubts or uses changed (and the other
//! candidates of their doubts), tokens whose expiry (or last use) the
//! clock passed, the tokens issued under any of those, the revocation
//! entries whose subtree holds one of them (or gains a token), and new denials. The
//! findings equal [`super::check::check`] at the head (tested on random
//! trails); the work of a poll is the size of what it touched.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};

use super::check::{self, Finding, Out, RULES};
use crate::observe::{AgentIx, DoubtKind, NodeId, Observed};
use crate::rules::RevokeLevel;
use crate::rules::limits::{DEFAULT_DELEGATION_TTL, MAX_TTL};

type Entry = (RevokeLevel, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Node(NodeId),
    Target(AgentIx),
    Holder(AgentIx),
}

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
    /// Each entry's latest event and the keys it is indexed under.
    entries: FxHashMap<Entry, (usize, Vec<Key>)>,
    /// What an entry's gap reads: the tokens it was expected to kill, the
    /// agent it names (its new tokens join), and the holders of its
    /// delegated tokens (a depth-1 hop by one may re-root from them).
    index: FxHashMap<Key, FxHashSet<Entry>>,
    presented: BTreeMap<usize, Finding>,
    refused: FxHashMap<String, (usize, usize)>,
    probing: BTreeMap<String, Finding>,
    note: Vec<Finding>,
    /// What the last update judged again: nodes, revocation entries.
    pub judged: (usize, usize),
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
        let first_new = self.nodes_seen;
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
        // A candidate's use (or new doubt) can settle the others of a
        // release or renewal by elimination or by counting; a revocation by
        // an unknown jti settles nothing for the others (each doubt once).
        let mut groups: FxHashSet<usize> = FxHashSet::default();
        for i in touched {
            dirty.insert(i);
            groups.extend(
                o.nodes[i]
                    .doubts
                    .iter()
                    .copied()
                    .filter(|&d| !matches!(o.doubts[d].kind, DoubtKind::RevokedJti(_))),
            );
        }
        for d in groups {
            dirty.extend(o.doubts[d].members.iter().copied());
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
        self.judged.0 = dirty.len();
        let mut keys: FxHashSet<Key> = FxHashSet::default();
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
            let n = &o.nodes[i];
            keys.insert(Key::Node(i));
            if i >= first_new {
                keys.extend(n.parent.map(Key::Node));
                keys.extend(n.renews.map(Key::Node));
                keys.insert(Key::Target(n.agent));
                if n.depth == 1 {
                    keys.extend(n.from.map(Key::Holder));
                }
            }
        }
        self.revocations(o, at, &keys);
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

    fn revocations(&mut self, o: &Observed, at: usize, keys: &FxHashSet<Key>) {
        let mut redo: FxHashSet<Entry> = FxHashSet::default();
        for k in keys {
            if let Some(e) = self.index.get(k) {
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
                let keys = self
                    .entries
                    .remove(&entry)
                    .map(|(_, a)| a)
                    .unwrap_or_default();
                self.entries.insert(entry.clone(), (k, keys));
                redo.insert(entry);
            }
        }
        self.judged.1 = redo.len();
        for entry in redo {
            let Some((k, old_keys)) = self.entries.get(&entry).cloned() else {
                continue;
            };
            let (level, target) = (entry.0, entry.1.as_str());
            for key in &old_keys {
                if let Some(set) = self.index.get_mut(key) {
                    set.remove(&entry);
                }
            }
            let key = (k, level, entry.1.clone());
            self.gaps.remove(&key);
            let mut out = Out {
                o,
                findings: Vec::new(),
            };
            let expected = check::revocation_gap(&mut out, k, level, target, at);
            if let Some(f) = out.findings.pop() {
                self.gaps.insert(key, f);
            }
            let mut now: Vec<Key> = expected.iter().map(|&i| Key::Node(i)).collect();
            now.extend(o.agent_named(target).map(Key::Target));
            now.extend(
                expected
                    .iter()
                    .filter(|&&i| o.nodes[i].depth > 0)
                    .map(|&i| Key::Holder(o.nodes[i].agent)),
            );
            now.sort_unstable();
            now.dedup();
            for key in &now {
                self.index.entry(*key).or_default().insert(entry.clone());
            }
            self.entries.insert(entry.clone(), (k, now));
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
