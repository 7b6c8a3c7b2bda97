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
mod infer;
pub mod integrity;
pub mod load;
pub mod merge;
pub mod print;
pub mod project;
pub mod select;
mod status;
pub mod trail;
pub mod when;

pub use infer::reread;

use rustc_hash::FxHashMap as HashMap;

use crate::broker::types::{AuditRef, RevokeLevel};
use crate::scope;
use trail::{Denied, Fact};

pub use crate::rules::limits::{DEFAULT_DELEGATION_TTL, MAX_TTL};
/// A revocation, release or renewal the trail does not attribute may have
/// hit any of several tokens; above this many candidates none is marked.
const MAX_DOUBTS: usize = 64;
/// How many doubts one token keeps (more are counted, not kept).
const DOUBTS_KEPT: usize = 64;
/// How many of an agent's newest tokens a search for the one it used looks at.
const HELD_SCAN: usize = 4096;
/// Of those, how many that pass the cheap checks (depth, task, orch, usable)
/// have their scope compared (a scope comparison costs K² in the scope's size).
const SCOPE_CHECKS: usize = 64;
/// Uses as Bearer kept per token (the first ones and the latest).
const USES_KEPT: usize = 16;
/// A scope list longer than this is not re-read (see [`reread`]).
const REREAD_MAX: usize = 32;

pub type NodeId = usize;
pub type AgentIx = usize;

/// One event as the timeline needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// Inline up to 24 bytes (`evt-000001`, a millisecond RFC 3339 time):
    /// a million events, no allocation each.
    pub id: compact_str::CompactString,
    pub timestamp: compact_str::CompactString,
    /// Milliseconds since the epoch (0 when the timestamp is unreadable).
    pub ms: i64,
}

impl Stamp {
    /// `15:18:37 CET` (local, or UTC with `--utc`: see [`when`]), the
    /// time of day the status bar shows.
    pub fn clock(&self) -> String {
        when::clock(self.ms)
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
    /// Inline up to 24 bytes (no allocation for most task and orch ids).
    pub task: compact_str::CompactString,
    pub orch: compact_str::CompactString,
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
    /// Revocations, releases and renewals the trail does not attribute that
    /// may have ended it (indexes into [`Observed::doubts`]).
    pub doubts: Vec<usize>,
    /// Doubts beyond [`DOUBTS_KEPT`], counted.
    pub doubts_dropped: usize,
    /// For a renewal whose predecessor the trail cannot tell: the doubt that
    /// lists the candidates (the one left when the others were used later is it).
    pub renews_doubt: Option<usize>,
    /// Events at which it was the Bearer of a request the broker accepted
    /// (so it was alive then): the first [`USES_KEPT`] − 1 and the latest.
    pub uses: Vec<usize>,
    /// Why no v2.0.0 broker could have issued it as the trail shows it
    /// (depth over the limit, a scope its parent does not cover).
    pub impossible: Option<String>,
    pub children: Vec<NodeId>,
    /// Refused attempts made with it (indexes into `denials`).
    pub denials: Vec<usize>,
}

/// What an unattributed event may have done to each of its candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoubtKind {
    /// A token-level revocation of a jti the trail never carried.
    RevokedJti(String),
    /// Released (the event names a jti the trail never carried).
    Released,
    /// Renewed away by this renewal (the event names only the new jti).
    Renewed { by: NodeId },
}

/// An event that ended one of several tokens, the trail cannot tell which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doubt {
    pub event: usize,
    pub kind: DoubtKind,
    /// The candidates (at most [`MAX_DOUBTS`]).
    pub members: Vec<NodeId>,
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
    /// The words users see, the same as the explorer's (`valid` is what the
    /// broker's validate says of a live token).
    pub fn word(self) -> &'static str {
        match self {
            Status::Live => "valid",
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
    /// The trail cannot settle it: a guess (or `unknown`), never a fact.
    pub inferred: bool,
    pub why: String,
    /// Whether it can still be used: a guess never counts as dead or as live,
    /// but a token dead whichever way the guess goes is dead.
    pub liveness: Liveness,
}

pub use crate::rules::Liveness;

impl Judged {
    fn new(status: Status, inferred: bool, why: String) -> Judged {
        Judged {
            status,
            inferred,
            why,
            liveness: Liveness::of(status == Status::Live, status == Status::Unknown, inferred),
        }
    }
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
    /// Tokens whose jti is unknown, in order of issue (pruned by age).
    open_unknown: std::collections::VecDeque<NodeId>,
    /// Events that ended one of several tokens (see [`Node::doubts`]).
    pub doubts: Vec<Doubt>,
    /// Set while following a live trail: at its head, statuses are judged
    /// at this time (the wall clock), not at the last event's.
    pub now_ms: Option<i64>,
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
    /// What a `--filter` keeps ([`select`]); `None`: everything.
    pub selection: Option<select::Shown>,
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
            task: e.task_id.into(),
            orch: e.orch_id.into(),
            root: None,
            event: k,
            ms: self.ms(k),
            ttl: None,
            jti: None,
            chain_hash: None,
            inferred: Vec::new(),
            end: None,
            doubts: Vec::new(),
            doubts_dropped: 0,
            renews_doubt: None,
            uses: Vec::new(),
            impossible: None,
            children: Vec::new(),
            denials: Vec::new(),
        }
    }

    /// Adds a node to every index, ending it at once if an earlier
    /// revocation entry covers it (entries apply to future tokens, §7.1).
    fn add(&mut self, mut node: Node) -> NodeId {
        let id = self.nodes.len();
        let k = node.event;
        if let Some(p) = node.parent {
            // A guess propagates: under an inferred link, depth, scope
            // provenance and status are inferred too.
            let guessed = self.nodes[p].impossible.is_some() || !self.nodes[p].inferred.is_empty();
            if guessed && node.inferred.is_empty() {
                node.inferred.push(format!(
                    "under n{p}, whose place in the chain is itself inferred"
                ));
            }
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
                    self.by_task.insert(node.task.to_string(), vec![id]);
                }
            }
        }
        match &node.jti {
            Some(j) => {
                self.by_jti.insert(j.clone(), id);
            }
            None => self.open_unknown.push_back(id),
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

#[cfg(test)]
mod tests;
