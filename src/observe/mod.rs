//! Observe: the delegation chains *other* clients made, rebuilt from a
//! broker's audit trail (spec §10), event by event.
//!
//! [`Observed::fold`] takes one event at a time (a saved trail, or pages
//! polled from a live broker) and keeps every fact with the event that
//! established it, so the state *as of* any event — the timeline — is a
//! filter, not a replay. Where the trail does not say something (a v2.0.0
//! trail carries no jti for delegated tokens, no old jti for a renewal, no
//! ttl for a delegation), the rules of the broker narrow the candidates: the
//! only candidate is taken as derived; a pick among several, or a status the
//! trail cannot settle, is marked inferred, with why.

pub mod checkpoint;
pub mod integrity;
pub mod load;
pub mod merge;
pub mod print;
pub mod project;
pub mod trail;

use rustc_hash::FxHashMap as HashMap;

use crate::broker::types::{AuditRef, RevokeLevel};
use crate::scope;
use trail::{Denied, Fact};

pub use crate::rules::limits::{DEFAULT_DELEGATION_TTL, MAX_TTL};
/// A token-level revocation of a jti the trail never named may have hit any
/// token whose jti is unknown; above this many candidates none is marked.
const MAX_DOUBTS: usize = 64;
/// How many of an agent's newest tokens a search for the one it used looks at.
const HELD_SCAN: usize = 4096;

pub type NodeId = usize;
pub type AgentIx = usize;

/// One event as the timeline needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub id: Box<str>,
    pub timestamp: Box<str>,
    /// Milliseconds since the epoch (0 when the timestamp is unreadable).
    pub ms: i64,
}

impl Stamp {
    /// `15:18:37` (UTC), the time of day the status bar shows.
    pub fn clock(&self) -> &str {
        self.timestamp.get(11..19).unwrap_or(&self.timestamp)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agent {
    pub spiffe: String,
    pub task: String,
    pub orch: String,
    pub scope: Vec<String>,
    pub app: Option<String>,
    /// The `agent_registered` event; `None` for an agent only named by others.
    pub registered: Option<usize>,
    /// Tokens it holds (in order of issue).
    pub nodes: Vec<NodeId>,
    /// Delegated tokens whose chain starts at it (chain-level revocation).
    pub rooted: Vec<NodeId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Registration,
    Delegation,
    Renewal,
}

impl NodeKind {
    pub fn word(self) -> &'static str {
        match self {
            NodeKind::Registration => "registration",
            NodeKind::Delegation => "delegation",
            NodeKind::Renewal => "renewal",
        }
    }
}

/// How a token stopped being usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndHow {
    Revoked { level: RevokeLevel, target: String },
    Released,
    Renewed { by: NodeId },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub event: usize,
    pub how: EndHow,
    /// Whether the trail names this token, or only the rules point at it.
    pub inferred: bool,
}

/// A token the trail shows being issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    pub agent: AgentIx,
    /// The delegator, for a delegation (and a renewal of one).
    pub from: Option<AgentIx>,
    /// The token it was delegated from (for a renewal: that of the token it renewed).
    pub parent: Option<NodeId>,
    /// The token a renewal replaced.
    pub renews: Option<NodeId>,
    pub scope: Vec<String>,
    pub depth: usize,
    pub task: String,
    pub orch: String,
    /// `delegation_chain[0].agent`: the chain's root agent (none for an undelegated token).
    pub root: Option<AgentIx>,
    /// The event that issued it.
    pub event: usize,
    pub ms: i64,
    /// Lifetime in seconds, when the trail tells it.
    pub ttl: Option<i64>,
    pub jti: Option<String>,
    pub chain_hash: Option<String>,
    /// What about this node the trail does not say (empty: all of it is in the trail).
    pub inferred: Vec<String>,
    /// The first thing that ended it.
    pub end: Option<End>,
    /// Token-level revocations of a jti the trail never named that may have hit it.
    pub doubts: Vec<usize>,
    pub children: Vec<NodeId>,
    /// Refused attempts made with it (indexes into `denials`).
    pub denials: Vec<usize>,
}

/// A token's status as of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Live,
    Revoked,
    Released,
    Renewed,
    Expired,
    Unknown,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Live => "live",
            Status::Revoked => "revoked",
            Status::Released => "released",
            Status::Renewed => "renewed",
            Status::Expired => "expired",
            Status::Unknown => "unknown",
        }
    }
}

/// A status with whether the trail states it, and why (in words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    pub status: Status,
    pub inferred: bool,
    pub why: String,
}

/// A refused attempt, where it was attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub event: usize,
    pub event_type: String,
    /// Who tried (SPIFFE id, `app:…`, `admin`), when the event says.
    pub by: Option<String>,
    /// Whom a delegation was for.
    pub target: Option<String>,
    pub requested: Vec<String>,
    pub allowed: Vec<String>,
    pub path: Option<String>,
    pub reason: Option<String>,
    pub detail: String,
    pub task: String,
    pub orch: String,
    /// The token it was attempted with, when the rules point at one.
    pub node: Option<NodeId>,
    pub node_inferred: bool,
}

impl Denial {
    /// The anomaly class the denials pane groups by.
    pub fn class(&self) -> &'static str {
        match self.event_type.as_str() {
            "delegation_attenuation_violation" => "refused escalation",
            "scope_violation" => "scope violation",
            "token_auth_failed" | "token_revoked_access"
                if self
                    .reason
                    .as_deref()
                    .is_some_and(|r| r.contains("revoked")) =>
            {
                "revoked token presented"
            }
            "token_auth_failed" | "token_revoked_access" => "auth failure",
            "registration_policy_violation" => "registration refused",
            "scope_ceiling_exceeded" => "over app ceiling",
            "launch_token_denied" => "launch token refused",
            "admin_auth_failed" | "app_auth_failed" => "login failure",
            _ => "other denial",
        }
    }
}

/// The first place the hash chain breaks, by the rules of
/// [`crate::rules::chain`] (the explorer's audit view uses the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub event: usize,
    pub id: String,
    /// `hash` (the event's contents were changed), `link` (its prev_hash
    /// is not the previous event's hash), `genesis` (the broker's first
    /// event without 64 zeros before it) or `order` (its id repeats, goes
    /// back or skips).
    pub what: &'static str,
    pub fault: crate::rules::chain::Fault,
}

impl Broken {
    pub fn words(&self) -> String {
        self.to_break().words()
    }

    /// As the rules name it.
    pub fn to_break(&self) -> crate::rules::chain::Break {
        crate::rules::chain::Break {
            index: self.event,
            id: self.id.clone(),
            fault: self.fault.clone(),
        }
    }
}

/// The reconstruction: every agent, token and refusal the trail shows.
#[derive(Debug, Default)]
pub struct Observed {
    pub events: Vec<Stamp>,
    pub agents: Vec<Agent>,
    agent_ix: HashMap<String, AgentIx>,
    pub nodes: Vec<Node>,
    pub denials: Vec<Denial>,
    /// Trail-level notes (e.g. a revocation whose token cannot be told).
    pub notes: Vec<(usize, String)>,
    /// App id → name.
    pub apps: HashMap<String, String>,
    by_jti: HashMap<String, NodeId>,
    by_task: HashMap<String, Vec<NodeId>>,
    /// Revocation entries so far, per level (they also apply to tokens issued later).
    entries: [HashMap<String, usize>; 4],
    /// Delegated tokens whose jti is unknown and that have not ended.
    open_unknown: Vec<NodeId>,
    /// The chain check over the events folded ([`crate::rules::chain`]).
    pub chain: crate::rules::chain::Chain,
    pub first_broken: Option<Broken>,
    /// Whether the first event was the broker's first (`evt-000001`).
    pub from_genesis: bool,
    /// What the source says the trail holds (a page's or a dump's `total`)
    /// and how far the events read reach (see [`integrity`]).
    pub total: Option<integrity::Total>,
    /// Why reading stopped before the end of the trail (a broker whose
    /// pages do not add up, the read cap), if it did.
    pub stopped: Option<String>,
    /// A checkpoint's event id, and the hash seen there once folded.
    pub watch: Option<(String, Option<String>)>,
    /// The checkpoint's verdict ("matches checkpoint …", or why not).
    pub checkpoint: Option<Result<String, String>>,
    /// The latest events whole (for the audit view), at most `keep` of them.
    pub recent: std::collections::VecDeque<crate::broker::types::AuditEvent>,
    keep: usize,
}

/// Unix milliseconds of an RFC 3339 timestamp.
fn millis(ts: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(ts)
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

impl Observed {
    pub fn new() -> Observed {
        Observed::default()
    }

    /// Keeps the latest `n` events whole as well (the interactive audit view).
    pub fn keeping(n: usize) -> Observed {
        Observed {
            keep: n,
            ..Observed::default()
        }
    }

    /// The index of the last event, if any.
    pub fn head(&self) -> Option<usize> {
        self.events.len().checked_sub(1)
    }

    /// The event index with this id (`evt-000123`), or the last event at or
    /// before an RFC 3339 time.
    pub fn find(&self, at: &str) -> Option<usize> {
        if at.starts_with("evt-") {
            return self.events.iter().position(|s| &*s.id == at);
        }
        let ms = chrono::DateTime::parse_from_rfc3339(at)
            .ok()?
            .timestamp_millis();
        self.events.iter().rposition(|s| s.ms <= ms)
    }

    /// Folds one event, checking its hash (`hash_ok`: computed elsewhere, e.g.
    /// in parallel; `None` computes it here) and its link to the previous one.
    pub fn fold(&mut self, e: &AuditRef<'_>, hash_ok: Option<bool>) {
        let k = self.events.len();
        self.check_chain(k, e, hash_ok);
        if self.keep > 0 {
            if self.recent.len() == self.keep {
                self.recent.pop_front();
            }
            self.recent.push_back(owned(e));
        }
        self.events.push(Stamp {
            id: e.id.into(),
            timestamp: e.timestamp.into(),
            ms: millis(e.timestamp),
        });
        self.apply(k, e);
    }

    fn check_chain(&mut self, k: usize, e: &AuditRef<'_>, hash_ok: Option<bool>) {
        if let Some((id, seen @ None)) = &mut self.watch
            && id.as_str() == e.id
        {
            *seen = Some(e.hash.to_string());
        }
        // After the first break nothing more is claimed: no need to hash.
        let hash_ok = self.first_broken.is_some() || hash_ok.unwrap_or_else(|| e.hash_matches());
        if let Some(b) = self.chain.push(e.id, e.hash, e.prev_hash, hash_ok) {
            self.first_broken = Some(Broken {
                event: k,
                id: b.id.clone(),
                what: b.what(),
                fault: b.fault.clone(),
            });
        }
        self.from_genesis = self.chain.from_genesis();
    }

    fn apply(&mut self, k: usize, e: &AuditRef<'_>) {
        match trail::read(e) {
            Fact::AgentRegistered { agent, scope, app } => {
                let a = self.agent(agent);
                let entry = &mut self.agents[a];
                entry.task = e.task_id.to_string();
                entry.orch = e.orch_id.to_string();
                entry.scope = scope.iter().map(|s| s.to_string()).collect();
                entry.app = app.map(str::to_string);
                entry.registered = Some(k);
            }
            Fact::TokenIssued { agent, jti, ttl } => {
                let a = self.agent(agent);
                let ttl = ttl.map(|t| if t <= 0 { 300 } else { t.min(MAX_TTL) });
                let node = self.blank(NodeKind::Registration, a, k, e);
                let id = self.add(Node {
                    scope: self.agents[a].scope.clone(),
                    ttl,
                    jti: jti.map(str::to_string),
                    ..node
                });
                if self.agents[a].registered.is_none() {
                    self.nodes[id].inferred.push(
                        "scope not known: the agent's registration is not in the trail".into(),
                    );
                }
            }
            Fact::Delegated {
                from,
                to,
                scope,
                depth,
            } => self.delegated(k, e, from, to, &scope, depth),
            Fact::Renewed { agent, new_jti } => self.renewed(k, e, agent, new_jti),
            Fact::Released { agent, jti } => self.released(k, e, agent, jti),
            Fact::Revoked { level, target } => self.revoked(k, level, target),
            Fact::AppRegistered { .. } | Fact::Other => {}
            Fact::AppAuthenticated { app_id } => {
                if let Some(name) = app_name(app_id) {
                    self.apps.entry(app_id.to_string()).or_insert(name);
                }
            }
            Fact::Denied(d) => self.denied(k, e, d),
        }
    }

    /// The agent with this SPIFFE id (added when first named).
    fn agent(&mut self, spiffe: &str) -> AgentIx {
        if let Some(&a) = self.agent_ix.get(spiffe) {
            return a;
        }
        let a = self.agents.len();
        self.agents.push(Agent {
            spiffe: spiffe.to_string(),
            ..Agent::default()
        });
        self.agent_ix.insert(spiffe.to_string(), a);
        a
    }

    pub fn agent_named(&self, spiffe: &str) -> Option<AgentIx> {
        self.agent_ix.get(spiffe).copied()
    }

    /// The time of event `k` (already read when it was folded).
    fn ms(&self, k: usize) -> i64 {
        self.events.get(k).map(|s| s.ms).unwrap_or(0)
    }

    fn blank(&self, kind: NodeKind, agent: AgentIx, k: usize, e: &AuditRef<'_>) -> Node {
        Node {
            kind,
            agent,
            from: None,
            parent: None,
            renews: None,
            scope: Vec::new(),
            depth: 0,
            task: e.task_id.to_string(),
            orch: e.orch_id.to_string(),
            root: None,
            event: k,
            ms: self.ms(k),
            ttl: None,
            jti: None,
            chain_hash: None,
            inferred: Vec::new(),
            end: None,
            doubts: Vec::new(),
            children: Vec::new(),
            denials: Vec::new(),
        }
    }

    /// Adds a node to every index, ending it at once if an earlier
    /// revocation entry covers it (entries apply to future tokens, §7.1).
    fn add(&mut self, node: Node) -> NodeId {
        let id = self.nodes.len();
        let k = node.event;
        if let Some(p) = node.parent {
            self.nodes[p].children.push(id);
        }
        self.agents[node.agent].nodes.push(id);
        if let Some(r) = node.root {
            self.agents[r].rooted.push(id);
        }
        if !node.task.is_empty() {
            match self.by_task.get_mut(node.task.as_str()) {
                Some(v) => v.push(id),
                None => {
                    self.by_task.insert(node.task.clone(), vec![id]);
                }
            }
        }
        match &node.jti {
            Some(j) => {
                self.by_jti.insert(j.clone(), id);
            }
            None => self.open_unknown.push(id),
        }
        let covering = if self.entries.iter().all(|e| e.is_empty()) {
            None
        } else {
            let subject = self.subject(&node);
            RevokeLevel::ALL.into_iter().find_map(|level| {
                let key = subject.key(level)?;
                self.entries[level as usize]
                    .contains_key(key)
                    .then(|| (level, key.to_string()))
            })
        };
        self.nodes.push(node);
        if let Some((level, target)) = covering {
            self.end(id, k, EndHow::Revoked { level, target }, false);
        }
        id
    }

    /// The claims of a node that a revocation entry can match (spec §7.1).
    pub fn subject<'a>(&'a self, n: &'a Node) -> crate::rules::Subject<'a> {
        crate::rules::Subject {
            jti: n.jti.as_deref().unwrap_or(""),
            sub: &self.agents[n.agent].spiffe,
            task: &n.task,
            chain_root: n.root.map(|r| self.agents[r].spiffe.as_str()),
        }
    }

    fn end(&mut self, id: NodeId, k: usize, how: EndHow, inferred: bool) {
        let n = &mut self.nodes[id];
        if n.end.is_none() {
            n.end = Some(End {
                event: k,
                how,
                inferred,
            });
        }
    }

    /// Whether a token could still have been used at `ms`: not ended, and
    /// not past a known expiry.
    fn usable(&self, id: NodeId, ms: i64) -> bool {
        let n = &self.nodes[id];
        n.end.is_none() && n.ttl.is_none_or(|t| ms <= n.ms + t * 1000)
    }

    /// The agent's tokens that pass `keep`, newest first. An agent holding
    /// very many tokens is searched among its newest `HELD_SCAN` (so one
    /// busy agent cannot make every event slower than the last).
    fn held(&self, agent: AgentIx, keep: impl Fn(&Node) -> bool) -> Vec<NodeId> {
        self.agents[agent]
            .nodes
            .iter()
            .rev()
            .take(HELD_SCAN)
            .copied()
            .filter(|&n| keep(&self.nodes[n]))
            .collect()
    }

    fn delegated(
        &mut self,
        k: usize,
        e: &AuditRef<'_>,
        from: &str,
        to: &str,
        scope: &[&str],
        depth: i64,
    ) {
        let f = self.agent(from);
        let t = self.agent(to);
        let depth = usize::try_from(depth).unwrap_or(0).max(1);
        let ms = self.ms(k);
        let (parent, mut inferred) =
            self.delegator_token(f, depth - 1, e, ms, |n| scope::is_subset(scope, &n.scope));
        let parent = match parent {
            Some(p) => p,
            None => self.unseen(f, depth - 1, k, e),
        };
        let p = &self.nodes[parent];
        let root = if depth == 1 { Some(f) } else { p.root };
        if root.is_none() {
            inferred.push("chain root unknown".into());
        }
        let node = self.blank(NodeKind::Delegation, t, k, e);
        self.add(Node {
            from: Some(f),
            parent: Some(parent),
            scope: scope.iter().map(|s| s.to_string()).collect(),
            depth,
            root,
            chain_hash: (!e.deleg_chain_hash.is_empty()).then(|| e.deleg_chain_hash.to_string()),
            inferred,
            ..node
        });
    }

    /// The token the delegator used: held by it at `depth`, carrying the
    /// event's task and orch (a delegated token inherits the delegator's),
    /// usable then, and passing `fits` (its scope covers what was passed on,
    /// or equals what the broker says it allowed). The only such token is
    /// taken; among several the newest is picked and marked inferred.
    fn delegator_token(
        &self,
        agent: AgentIx,
        depth: usize,
        e: &AuditRef<'_>,
        ms: i64,
        fits: impl Fn(&Node) -> bool,
    ) -> (Option<NodeId>, Vec<String>) {
        let strict = self.held(agent, |n| {
            n.depth == depth && n.task == e.task_id && n.orch == e.orch_id && fits(n)
        });
        let live: Vec<NodeId> = strict
            .iter()
            .copied()
            .filter(|&n| self.usable(n, ms))
            .collect();
        match (live.len(), strict.len()) {
            (1, _) => (Some(live[0]), Vec::new()),
            (0, 0) => {
                let any = self.held(agent, |n| n.depth == depth);
                match any.first() {
                    Some(&n) => (
                        Some(n),
                        vec![format!(
                            "parent inferred: no token of the delegator at depth {depth} fits the event; took the newest of {}",
                            any.len()
                        )],
                    ),
                    None => (None, Vec::new()),
                }
            }
            (0, n) => (
                Some(strict[0]),
                vec![format!(
                    "parent inferred: none of the {n} fitting tokens was usable by the trail's account; took the newest"
                )],
            ),
            (n, _) => (
                Some(live[0]),
                vec![format!(
                    "parent inferred: {n} tokens of the delegator fit; took the newest"
                )],
            ),
        }
    }

    /// A token the trail never showed being issued (the trail starts later,
    /// or a page is missing): a placeholder so the chain still hangs together.
    fn unseen(&mut self, agent: AgentIx, depth: usize, k: usize, e: &AuditRef<'_>) -> NodeId {
        let kind = if depth == 0 {
            NodeKind::Registration
        } else {
            NodeKind::Delegation
        };
        let node = self.blank(kind, agent, k, e);
        self.add(Node {
            depth,
            scope: self.agents[agent].scope.clone(),
            inferred: vec!["not in the trail: a token the delegator must have held".into()],
            ..node
        })
    }

    fn renewed(&mut self, k: usize, e: &AuditRef<'_>, agent: &str, new_jti: Option<&str>) {
        let a = self.agent(agent);
        let ms = self.ms(k);
        let cands = self.held(a, |n| n.task == e.task_id && n.orch == e.orch_id);
        let cands: Vec<NodeId> = cands.into_iter().filter(|&n| self.usable(n, ms)).collect();
        let mut inferred = Vec::new();
        let old = match cands.len() {
            0 => {
                inferred.push("renewed token not in the trail".into());
                None
            }
            1 => Some(cands[0]),
            n => {
                inferred.push(format!(
                    "renewal of an inferred token: the trail names only the new jti and {n} tokens of the agent were usable; took the newest"
                ));
                Some(cands[0])
            }
        };
        let base = self.blank(NodeKind::Renewal, a, k, e);
        let node = match old.map(|o| &self.nodes[o]) {
            Some(o) => Node {
                from: o.from,
                parent: o.parent,
                renews: old,
                scope: o.scope.clone(),
                depth: o.depth,
                root: o.root,
                ttl: o.ttl,
                chain_hash: o.chain_hash.clone(),
                ..base
            },
            None => Node {
                scope: self.agents[a].scope.clone(),
                ..base
            },
        };
        let was_inferred = !inferred.is_empty();
        let id = self.add(Node {
            jti: new_jti.map(str::to_string),
            inferred,
            ..node
        });
        if let Some(o) = old {
            self.end(o, k, EndHow::Renewed { by: id }, was_inferred);
        }
    }

    fn released(&mut self, k: usize, e: &AuditRef<'_>, agent: &str, jti: Option<&str>) {
        if let Some(&id) = jti.and_then(|j| self.by_jti.get(j)) {
            self.end(id, k, EndHow::Released, false);
            return;
        }
        let a = self.agent(agent);
        let ms = self.ms(k);
        let cands = self.held(a, |n| n.jti.is_none() && n.task == e.task_id);
        let cands: Vec<NodeId> = cands.into_iter().filter(|&n| self.usable(n, ms)).collect();
        match cands.as_slice() {
            [one] => {
                let one = *one;
                self.end(one, k, EndHow::Released, true);
                self.learn_jti(one, jti);
            }
            [] => self
                .notes
                .push((k, "released a token the trail never showed".to_string())),
            many => {
                for &n in many.iter().take(MAX_DOUBTS) {
                    self.nodes[n].doubts.push(k);
                }
            }
        }
    }

    fn learn_jti(&mut self, id: NodeId, jti: Option<&str>) {
        if let Some(j) = jti {
            self.nodes[id].jti = Some(j.to_string());
            self.nodes[id]
                .inferred
                .push("jti learnt from a later event that named only the jti".into());
            self.by_jti.insert(j.to_string(), id);
        }
    }

    fn revoked(&mut self, k: usize, level: RevokeLevel, target: &str) {
        self.entries[level as usize].insert(target.to_string(), k);
        let how = EndHow::Revoked {
            level,
            target: target.to_string(),
        };
        let hit: Vec<NodeId> = match level {
            RevokeLevel::Token => {
                if let Some(&id) = self.by_jti.get(target) {
                    vec![id]
                } else {
                    self.unknown_jti_revoked(k, target);
                    return;
                }
            }
            RevokeLevel::Agent => self
                .agent_named(target)
                .map(|a| self.agents[a].nodes.clone())
                .unwrap_or_default(),
            RevokeLevel::Task => self.by_task.get(target).cloned().unwrap_or_default(),
            RevokeLevel::Chain => self
                .agent_named(target)
                .map(|a| self.agents[a].rooted.clone())
                .unwrap_or_default(),
        };
        for id in hit {
            self.end(id, k, how.clone(), false);
        }
    }

    /// A token-level revocation of a jti the trail never named: one of the
    /// tokens whose jti is unknown. The only usable one is taken (inferred);
    /// among several each is marked as perhaps revoked.
    fn unknown_jti_revoked(&mut self, k: usize, target: &str) {
        let ms = self.events.get(k).map(|s| s.ms).unwrap_or(0);
        self.open_unknown
            .retain(|&n| self.nodes[n].end.is_none() && ms - self.nodes[n].ms <= MAX_TTL * 1000);
        let cands: Vec<NodeId> = self.open_unknown.clone();
        match cands.as_slice() {
            [one] => {
                let one = *one;
                let how = EndHow::Revoked {
                    level: RevokeLevel::Token,
                    target: target.to_string(),
                };
                self.end(one, k, how, true);
                self.learn_jti(one, Some(target));
            }
            [] => self.notes.push((
                k,
                format!("revoked jti {target}, a token the trail never showed"),
            )),
            many if many.len() <= MAX_DOUBTS => {
                let n = many.len();
                self.notes.push((
                    k,
                    format!(
                        "revoked jti {target}, one of {n} tokens whose jti the trail does not carry"
                    ),
                ));
                for &c in many {
                    self.nodes[c].doubts.push(k);
                }
            }
            many => {
                let n = many.len();
                self.notes.push((k, format!("revoked jti {target}, one of {n} tokens whose jti the trail does not carry (none marked)")));
            }
        }
    }

    fn denied(&mut self, k: usize, e: &AuditRef<'_>, d: Denied<'_>) {
        let ms = self.ms(k);
        let by = d.by.and_then(|b| self.agent_named(b));
        let (node, inferred) = match (e.event_type, by) {
            ("delegation_attenuation_violation", Some(a)) => {
                let depth = usize::try_from(e.deleg_depth).unwrap_or(0);
                let (n, why) =
                    self.delegator_token(a, depth, e, ms, |n| same_set(&n.scope, &d.allowed));
                (n, !why.is_empty())
            }
            ("scope_violation", Some(a)) => {
                let cands = self.held(a, |n| same_set(&n.scope, &d.allowed) && n.task == e.task_id);
                let live: Vec<NodeId> = cands
                    .iter()
                    .copied()
                    .filter(|&n| self.usable(n, ms))
                    .collect();
                match (live.first(), cands.first()) {
                    (Some(&n), _) => (Some(n), live.len() > 1),
                    (None, Some(&n)) => (Some(n), true),
                    _ => (None, false),
                }
            }
            _ => (None, false),
        };
        let i = self.denials.len();
        if let Some(n) = node {
            self.nodes[n].denials.push(i);
        }
        let own = |s: Option<&str>| s.map(str::to_string);
        self.denials.push(Denial {
            event: k,
            event_type: e.event_type.to_string(),
            by: own(d.by),
            target: own(d.target),
            requested: d.requested.iter().map(|s| s.to_string()).collect(),
            allowed: d.allowed.iter().map(|s| s.to_string()).collect(),
            path: own(d.path),
            reason: own(d.reason),
            detail: e.detail.to_string(),
            task: e.task_id.to_string(),
            orch: e.orch_id.to_string(),
            node,
            node_inferred: inferred,
        });
    }

    /// Whether the node had been issued by event `at`.
    pub fn exists(&self, id: NodeId, at: usize) -> bool {
        self.nodes[id].event <= at
    }

    /// A node's status as of event `at`, judged at that event's time.
    pub fn status(&self, id: NodeId, at: usize) -> Judged {
        let n = &self.nodes[id];
        let ms = self.events.get(at).map(|s| s.ms).unwrap_or(n.ms);
        if let Some(end) = n.end.as_ref().filter(|e| e.event <= at) {
            let by = &self.events[end.event].id;
            let (status, why) = match &end.how {
                EndHow::Revoked { level, target } => {
                    let born = end.event == n.event;
                    let when = if born {
                        "born revoked: entry"
                    } else {
                        "revoked"
                    };
                    (
                        Status::Revoked,
                        format!("{when} at level {level} (target {target}) by {by}"),
                    )
                }
                EndHow::Released => (Status::Released, format!("released at {by}")),
                EndHow::Renewed { by: new } => (
                    Status::Renewed,
                    format!(
                        "renewed at {by} (successor issued at {})",
                        self.events[self.nodes[*new].event].id
                    ),
                ),
            };
            let why = if end.inferred {
                format!("{why}; inferred: the event does not name this token")
            } else {
                why
            };
            return Judged {
                status,
                inferred: end.inferred,
                why,
            };
        }
        let doubts: Vec<&str> = n
            .doubts
            .iter()
            .filter(|&&d| d <= at)
            .map(|&d| &*self.events[d].id)
            .collect();
        if !doubts.is_empty() {
            return Judged {
                status: Status::Unknown,
                inferred: true,
                why: format!(
                    "perhaps revoked by {}: a token-level revocation of a jti the trail does not link to a token",
                    doubts.join(", ")
                ),
            };
        }
        let age = ms - n.ms;
        match n.ttl {
            Some(t) if age > t * 1000 => Judged {
                status: Status::Expired,
                inferred: false,
                why: format!("expired: issued with ttl {t}s"),
            },
            Some(t) => Judged {
                status: Status::Live,
                inferred: false,
                why: format!("live: ttl {t}s, {}s left", t - age / 1000),
            },
            None if age > MAX_TTL * 1000 => Judged {
                status: Status::Expired,
                inferred: true,
                why: format!("expired: older than AA_MAX_TTL's default {MAX_TTL}s (its ttl is not in the trail)"),
            },
            None if age > DEFAULT_DELEGATION_TTL * 1000 => Judged {
                status: Status::Unknown,
                inferred: true,
                why: format!(
                    "unknown: its ttl is not in the trail and it is older than the default {DEFAULT_DELEGATION_TTL}s"
                ),
            },
            None => Judged {
                status: Status::Live,
                inferred: true,
                why: "live unless a ttl under its age was asked for (the trail does not carry a delegation's ttl)".into(),
            },
        }
    }

    /// The chain from the root token down to `id` (each token's parent).
    pub fn chain(&self, id: NodeId) -> Vec<NodeId> {
        let mut out = vec![id];
        let mut cur = id;
        while let Some(p) = self.nodes[cur].parent {
            if out.len() > self.nodes.len() {
                break;
            }
            out.push(p);
            cur = p;
        }
        out.reverse();
        out
    }

    /// Denials up to `at`, grouped by (class, agent), most frequent first.
    pub fn denial_counts(&self, at: usize) -> Vec<(&'static str, String, usize)> {
        let mut counts: HashMap<(&'static str, String), usize> = HashMap::default();
        for d in self.denials.iter().filter(|d| d.event <= at) {
            let who =
                d.by.clone()
                    .unwrap_or_else(|| d.path.clone().unwrap_or_else(|| "-".into()));
            *counts.entry((d.class(), who)).or_default() += 1;
        }
        let mut v: Vec<_> = counts.into_iter().map(|((c, w), n)| (c, w, n)).collect();
        v.sort_by(|a, b| {
            b.2.cmp(&a.2)
                .then_with(|| a.0.cmp(b.0))
                .then_with(|| a.1.cmp(&b.1))
        });
        v
    }

    /// Roots of the forest as of `at`: tokens with no parent.
    pub fn roots(&self, at: usize) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(move |(_, n)| n.parent.is_none() && n.event <= at)
            .map(|(i, _)| i)
    }
}

fn owned(e: &AuditRef<'_>) -> crate::broker::types::AuditEvent {
    crate::broker::types::AuditEvent {
        id: e.id.into(),
        timestamp: e.timestamp.into(),
        event_type: e.event_type.into(),
        agent_id: e.agent_id.into(),
        task_id: e.task_id.into(),
        orch_id: e.orch_id.into(),
        detail: e.detail.into(),
        resource: e.resource.into(),
        outcome: e.outcome.into(),
        deleg_depth: e.deleg_depth,
        deleg_chain_hash: e.deleg_chain_hash.into(),
        bytes_transferred: e.bytes_transferred,
        hash: e.hash.into(),
        prev_hash: e.prev_hash.into(),
    }
}

/// `app-<name>-<6 hex>` → name (spec §8).
fn app_name(app_id: &str) -> Option<String> {
    let rest = app_id.strip_prefix("app-")?;
    let (name, _) = rest.rsplit_once('-')?;
    Some(name.to_string())
}

fn same_set<A: AsRef<str>, B: AsRef<str>>(a: &[A], b: &[B]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.iter().any(|y| y.as_ref() == x.as_ref()))
}
