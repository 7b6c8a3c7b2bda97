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
                    self.by_task.insert(node.task.clone(), vec![id]);
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
        let asked = usize::try_from(depth).unwrap_or(0).max(1);
        let ms = self.ms(k);
        let mut impossible = None;
        // No v2.0.0 broker issues a chain longer than MAX_DEPTH: such a node
        // is shown flagged, as a root, so no walk over chains goes deeper.
        let depth = if asked > crate::rules::limits::MAX_DEPTH {
            impossible = Some(format!(
                "depth {asked} is over the broker's limit of {}: no AgentWrit broker issues it",
                crate::rules::limits::MAX_DEPTH
            ));
            asked
        } else {
            asked
        };
        let (parent, mut inferred) = if impossible.is_some() {
            (None, Vec::new())
        } else {
            let (p, why) =
                self.delegator_token(f, depth - 1, e, ms, |n| reread(scope, &n.scope).is_some());
            let p = match p {
                Some(p) => p,
                None => self.unseen(f, depth - 1, k, e),
            };
            (Some(p), why)
        };
        // The scope as the broker held it: a list that its parent covers
        // only when some items are read together (a scope whose identifier
        // holds spaces, printed by Go's %v as several) is read that way; one
        // no reading makes covered is flagged, and not shown as held.
        let (held, reread_note) = match parent {
            Some(p) => match reread(scope, &self.nodes[p].scope) {
                Some(r) if r.len() == scope.len() => (r, None),
                Some(r) => {
                    let note = format!(
                        "scope re-read as {} item(s): the trail's list [{}] is covered by its parent only so (Go's %v prints a scope with spaces as several)",
                        r.len(),
                        scope.join(" ")
                    );
                    (r, Some(note))
                }
                None => {
                    let parent_scope = self.nodes[p].scope.clone();
                    let (ok, not): (Vec<&str>, Vec<&str>) = scope
                        .iter()
                        .partition(|s| scope::is_subset(&[**s], &parent_scope));
                    impossible.get_or_insert(format!(
                        "its parent does not cover [{}]: the broker only issues covered scopes; not shown as held",
                        not.join(" ")
                    ));
                    (ok.iter().map(|s| s.to_string()).collect(), None)
                }
            },
            None => (scope.iter().map(|s| s.to_string()).collect(), None),
        };
        if let Some(p) = parent
            && inferred.is_empty()
        {
            self.used(p, k);
            self.narrow_renewal(p, k, |c| reread(scope, &c.scope).is_some());
        }
        inferred.extend(reread_note);
        let root = match parent {
            _ if depth == 1 => Some(f),
            Some(p) => self.nodes[p].root,
            None => None,
        };
        if root.is_none() {
            inferred.push("chain root unknown".into());
        }
        let node = self.blank(NodeKind::Delegation, t, k, e);
        self.add(Node {
            from: Some(f),
            parent,
            scope: held,
            depth,
            root,
            chain_hash: (!e.deleg_chain_hash.is_empty()).then(|| e.deleg_chain_hash.to_string()),
            inferred,
            impossible,
            ..node
        });
    }

    /// Token `id` — a renewal whose predecessor the trail does not name — was
    /// the Bearer of event `k`, which tells about its scope (`fits`): only
    /// candidates that fit can be what it renewed. One left: settled (it is
    /// the predecessor, renewed away then); several: the renewal takes the
    /// newest of them.
    fn narrow_renewal(&mut self, id: NodeId, k: usize, fits: impl Fn(&Node) -> bool) {
        let Some(d) = self.nodes[id].renews_doubt else {
            return;
        };
        let before = self.doubts[d].members.clone();
        let left: Vec<NodeId> = before
            .iter()
            .copied()
            .filter(|&c| fits(&self.nodes[c]))
            .collect();
        if left.is_empty() || left.len() == before.len() {
            return;
        }
        for &gone in before.iter().filter(|c| !left.contains(c)) {
            self.nodes[gone].doubts.retain(|&x| x != d);
        }
        self.doubts[d].members = left.clone();
        let renewal_event = self.doubts[d].event;
        let o = self.nodes[left[0]].clone();
        let n = &mut self.nodes[id];
        (n.from, n.scope, n.depth, n.root, n.ttl, n.chain_hash) =
            (o.from, o.scope, o.depth, o.root, o.ttl, o.chain_hash);
        if n.parent != o.parent {
            // The tree follows: the renewal hangs where its predecessor does.
            if let Some(old) = n.parent {
                self.nodes[old].children.retain(|&c| c != id);
            }
            if let Some(new) = o.parent {
                self.nodes[new].children.push(id);
            }
            self.nodes[id].parent = o.parent;
        }
        let n = &mut self.nodes[id];
        n.inferred
            .retain(|w| !w.starts_with("which token was renewed"));
        if let [one] = left.as_slice() {
            let one = *one;
            n.renews = Some(one);
            n.renews_doubt = None;
            self.nodes[one].doubts.retain(|&x| x != d);
            if self.from_genesis {
                self.end(one, renewal_event, EndHow::Renewed { by: id }, false);
            } else {
                self.end(one, renewal_event, EndHow::Renewed { by: id }, true);
            }
            let _ = k;
        } else {
            let names: Vec<String> = left.iter().map(|c| format!("n{c}")).collect();
            n.inferred.push(format!(
                "which token was renewed is not in the trail: one of {} (narrowed by what it was used for at {})",
                names.join(", "),
                self.events[k].id
            ));
        }
    }

    /// Records that token `id` was the Bearer of event `k` (so it was alive).
    fn used(&mut self, id: NodeId, k: usize) {
        let uses = &mut self.nodes[id].uses;
        if uses.last() == Some(&k) {
            return;
        }
        if uses.len() == USES_KEPT {
            uses.pop();
        }
        uses.push(k);
    }

    /// The token the delegator used: held by it at `depth`, carrying the
    /// event's task and orch (a delegated token inherits the delegator's),
    /// usable then, and passing `fits` (its scope covers what was passed on,
    /// or equals what the broker says it allowed). The only such token is
    /// taken; among several the newest is picked and marked inferred. The
    /// cheap checks run first; `fits` (K² in the scope's size) on at most
    /// [`SCOPE_CHECKS`] tokens, so per-event work stays bounded.
    fn delegator_token(
        &self,
        agent: AgentIx,
        depth: usize,
        e: &AuditRef<'_>,
        ms: i64,
        fits: impl Fn(&Node) -> bool,
    ) -> (Option<NodeId>, Vec<String>) {
        let (live, stale, capped) = self.find_held(
            agent,
            ms,
            |n| n.depth == depth && n.task == e.task_id && n.orch == e.orch_id,
            fits,
        );
        let partial = if self.from_genesis {
            None
        } else {
            Some("the trail does not start at the broker's first event: a token from before it may be the one used".to_string())
        };
        match (live.as_slice(), stale) {
            ([one], _) if !capped => (Some(*one), partial.into_iter().collect()),
            ([], None) => {
                let any = self.held(agent, |n| n.depth == depth && n.impossible.is_none());
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
            ([], Some(n)) => (
                Some(n),
                vec![
                    "parent inferred: none of the fitting tokens was usable by the trail's account; took the newest"
                        .to_string(),
                ],
            ),
            (many, _) => (
                Some(many[0]),
                vec![format!(
                    "parent inferred: {}{} tokens of the delegator fit; took the newest",
                    if capped { "at least " } else { "" },
                    many.len()
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

    /// The agent's tokens (newest first, among its newest [`HELD_SCAN`])
    /// that pass `cheap` and then `fits` — `fits` on at most
    /// [`SCOPE_CHECKS`] of them: the usable ones, the newest unusable one,
    /// and whether the search stopped at the cap.
    fn find_held(
        &self,
        agent: AgentIx,
        ms: i64,
        cheap: impl Fn(&Node) -> bool,
        fits: impl Fn(&Node) -> bool,
    ) -> (Vec<NodeId>, Option<NodeId>, bool) {
        let mut live = Vec::new();
        let mut checked = 0;
        let mut stale = None;
        let mut capped = false;
        for &n in self.agents[agent].nodes.iter().rev().take(HELD_SCAN) {
            let node = &self.nodes[n];
            if !cheap(node) || node.impossible.is_some() {
                continue;
            }
            if checked == SCOPE_CHECKS {
                capped = true;
                break;
            }
            checked += 1;
            if !fits(node) {
                continue;
            }
            if self.usable(n, ms) {
                live.push(n);
            } else {
                stale.get_or_insert(n);
            }
        }
        (live, stale, capped)
    }

    /// Opens a doubt over `members` (at most [`MAX_DOUBTS`]; over that none
    /// is marked and `None` comes back).
    fn doubt(&mut self, k: usize, kind: DoubtKind, members: Vec<NodeId>) -> Option<usize> {
        if members.is_empty() || members.len() > MAX_DOUBTS {
            return None;
        }
        let d = self.doubts.len();
        for &m in &members {
            let n = &mut self.nodes[m];
            if n.doubts.len() < DOUBTS_KEPT {
                n.doubts.push(d);
            } else {
                n.doubts_dropped += 1;
            }
        }
        self.doubts.push(Doubt {
            event: k,
            kind,
            members,
        });
        Some(d)
    }

    fn renewed(&mut self, k: usize, e: &AuditRef<'_>, agent: &str, new_jti: Option<&str>) {
        let a = self.agent(agent);
        let ms = self.ms(k);
        let cands = self.held(a, |n| {
            n.task == e.task_id && n.orch == e.orch_id && n.impossible.is_none()
        });
        let cands: Vec<NodeId> = cands.into_iter().filter(|&n| self.usable(n, ms)).collect();
        let mut inferred = Vec::new();
        let partial = !self.from_genesis;
        let base = self.blank(NodeKind::Renewal, a, k, e);
        // What every candidate agrees on is a fact whichever was renewed.
        let agreed = cands.first().map(|&f| {
            let f = &self.nodes[f];
            cands.iter().all(|&c| {
                let c = &self.nodes[c];
                (
                    c.from,
                    c.parent,
                    &c.scope,
                    c.depth,
                    c.root,
                    c.ttl,
                    &c.chain_hash,
                ) == (
                    f.from,
                    f.parent,
                    &f.scope,
                    f.depth,
                    f.root,
                    f.ttl,
                    &f.chain_hash,
                )
            })
        });
        let node = match cands.first().map(|&o| &self.nodes[o]) {
            Some(o) => Node {
                from: o.from,
                parent: o.parent,
                renews: (cands.len() == 1).then_some(cands[0]),
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
        match cands.len() {
            0 => inferred.push("renewed token not in the trail".into()),
            1 if partial => inferred.push(
                "the trail does not start at the broker's first event: a token from before it may be the one renewed".into(),
            ),
            1 => {}
            _ if agreed == Some(true) => {}
            n => inferred.push(format!(
                "which token was renewed is not in the trail (it names only the new jti): one of {n}; scope, depth and chain as of the newest, n{}",
                cands[0]
            )),
        }
        let id = self.add(Node {
            jti: new_jti.map(str::to_string),
            inferred,
            ..node
        });
        match cands.as_slice() {
            [one] if !partial => {
                self.used(*one, k);
                self.end(*one, k, EndHow::Renewed { by: id }, false);
            }
            [] => {}
            _ => {
                let d = self.doubt(k, DoubtKind::Renewed { by: id }, cands.clone());
                self.nodes[id].renews_doubt = d;
                if d.is_none() {
                    self.nodes[id].inferred.push(format!(
                        "renews one of {} tokens (too many to mark)",
                        cands.len()
                    ));
                }
            }
        }
    }

    fn released(&mut self, k: usize, e: &AuditRef<'_>, agent: &str, jti: Option<&str>) {
        if let Some(&id) = jti.and_then(|j| self.by_jti.get(j)) {
            self.used(id, k);
            self.end(id, k, EndHow::Released, false);
            return;
        }
        let a = self.agent(agent);
        let ms = self.ms(k);
        let cands = self.held(a, |n| n.jti.is_none() && n.task == e.task_id);
        let cands: Vec<NodeId> = cands.into_iter().filter(|&n| self.usable(n, ms)).collect();
        match cands.as_slice() {
            // From the broker's first event every token is in the trail: the
            // only one it can be is it. Otherwise a guess.
            [one] => {
                let one = *one;
                let guess = !self.from_genesis;
                if !guess {
                    self.used(one, k);
                }
                self.end(one, k, EndHow::Released, guess);
                self.learn_jti(one, jti);
            }
            [] => self
                .notes
                .push((k, "released a token the trail never showed".to_string())),
            many => {
                let n = many.len();
                if self.doubt(k, DoubtKind::Released, many.to_vec()).is_none() {
                    self.notes.push((
                        k,
                        format!("released one of {n} tokens of the agent (too many to mark)"),
                    ));
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

    /// A token-level revocation of a jti the trail never named: perhaps one
    /// of the tokens whose jti is unknown (or a token before the trail, or
    /// none at all: the broker accepts any target). Each candidate is marked
    /// as perhaps revoked; a later use as Bearer clears it.
    fn unknown_jti_revoked(&mut self, k: usize, target: &str) {
        let ms = self.ms(k);
        // Oldest first: those past AA_MAX_TTL are dead whatever happened.
        while let Some(&n) = self.open_unknown.front() {
            if ms - self.nodes[n].ms > MAX_TTL * 1000 {
                self.open_unknown.pop_front();
            } else {
                break;
            }
        }
        let n = self.open_unknown.len();
        let cands: Vec<NodeId> = if n <= MAX_DOUBTS {
            self.open_unknown
                .iter()
                .copied()
                .filter(|&c| self.nodes[c].end.is_none())
                .collect()
        } else {
            Vec::new()
        };
        match cands.len() {
            0 if n == 0 => self.notes.push((
                k,
                format!("revoked jti {target}, a token the trail never showed"),
            )),
            0 => self.notes.push((k, format!("revoked jti {target}, one of up to {n} tokens whose jti the trail does not carry (none marked)"))),
            c => {
                self.notes.push((
                    k,
                    format!(
                        "revoked jti {target}: perhaps one of {c} tokens whose jti the trail does not carry"
                    ),
                ));
                self.doubt(k, DoubtKind::RevokedJti(target.to_string()), cands);
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
                    self.delegator_token(a, depth, e, ms, |n| same_words(&n.scope, &d.allowed));
                (n, !why.is_empty())
            }
            ("scope_violation", Some(a)) => {
                // The Bearer's scope is `actual=`: depth is not in the event.
                let (live, stale, capped) = self.find_held(
                    a,
                    ms,
                    |n| n.task == e.task_id && n.orch == e.orch_id,
                    |n| same_words(&n.scope, &d.allowed),
                );
                match (live.as_slice(), stale) {
                    ([one], _) => (Some(*one), capped || !self.from_genesis),
                    ([first, ..], _) => (Some(*first), true),
                    ([], Some(n)) => (Some(n), true),
                    _ => (None, false),
                }
            }
            _ => (None, false),
        };
        if let Some(n) = node
            && !inferred
        {
            // The broker checked its Bearer before refusing: alive then, and
            // holding exactly `allowed`.
            self.used(n, k);
            self.narrow_renewal(n, k, |c| same_words(&c.scope, &d.allowed));
        }
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

    /// When statuses are judged as of event `at`: at that event's time, or —
    /// at the head of a live trail — now (see [`Observed::now_ms`]).
    pub fn judged_ms(&self, at: usize) -> i64 {
        let ms = self.events.get(at).map(|s| s.ms).unwrap_or(0);
        match self.now_ms {
            Some(now) if Some(at) == self.head() => now.max(ms),
            _ => ms,
        }
    }

    /// Whether statuses as of `at` are judged at the wall clock.
    pub fn judged_now(&self, at: usize) -> bool {
        self.now_ms.is_some() && Some(at) == self.head()
    }

    /// Whether token `id` was the Bearer of an accepted request after event
    /// `after`, up to event `at` (so whatever `after` did, it did not end it).
    fn used_between(&self, id: NodeId, after: usize, at: usize) -> bool {
        self.nodes[id].uses.iter().any(|&u| u > after && u <= at)
    }

    /// The doubts still open on token `id` as of `at` (not cleared by a
    /// later use): what may have ended it, with the other candidates.
    pub fn open_doubts(&self, id: NodeId, at: usize) -> impl Iterator<Item = usize> + '_ {
        self.nodes[id].doubts.iter().copied().filter(move |&d| {
            let g = &self.doubts[d];
            g.event <= at && !self.used_between(id, g.event, at)
        })
    }

    /// The tokens an entry `(level, target)` covers (spec §7.1), from the
    /// indexes — never a scan of every token. Agrees with `rules::covers`
    /// (tested).
    pub fn covered(&self, level: RevokeLevel, target: &str) -> Vec<NodeId> {
        let agent = || self.agent_named(target).map(|a| &self.agents[a]);
        let mut v: Vec<NodeId> = match level {
            RevokeLevel::Token => self.by_jti.get(target).copied().into_iter().collect(),
            RevokeLevel::Agent => agent().map(|a| a.nodes.clone()).unwrap_or_default(),
            RevokeLevel::Task => self.by_task.get(target).cloned().unwrap_or_default(),
            RevokeLevel::Chain => agent().map(|a| a.rooted.clone()).unwrap_or_default(),
        };
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every revocation entry the trail shows: (its latest event, level,
    /// target), in order of event.
    pub fn revocations(&self) -> impl Iterator<Item = (usize, RevokeLevel, &str)> + '_ {
        let mut v: Vec<(usize, RevokeLevel, &str)> = RevokeLevel::ALL
            .into_iter()
            .flat_map(|l| {
                self.entries[l as usize]
                    .iter()
                    .map(move |(t, &k)| (k, l, t.as_str()))
            })
            .collect();
        v.sort_unstable();
        v.into_iter()
    }

    /// The renewals that replaced token `id` (or may have: an unattributed
    /// renewal it is a candidate of).
    pub fn renewals_of(&self, id: NodeId) -> Vec<NodeId> {
        let n = &self.nodes[id];
        let named = match n.end.as_ref().map(|e| &e.how) {
            Some(EndHow::Renewed { by }) => Some(*by),
            _ => None,
        };
        let doubted = n.doubts.iter().filter_map(|&d| match self.doubts[d].kind {
            DoubtKind::Renewed { by } => Some(by),
            _ => None,
        });
        named.into_iter().chain(doubted).collect()
    }

    /// The doubt's candidates not cleared by a later use, as of `at`.
    pub fn doubt_left(&self, d: usize, at: usize) -> Vec<NodeId> {
        let g = &self.doubts[d];
        g.members
            .iter()
            .copied()
            .filter(|&m| !self.used_between(m, g.event, at))
            .collect()
    }

    /// The token a renewal replaced, as of `at`: the one the trail names, or
    /// the only candidate left when the others were used later.
    pub fn renews_at(&self, id: NodeId, at: usize) -> Option<NodeId> {
        let n = &self.nodes[id];
        n.renews.or_else(|| {
            let d = n.renews_doubt?;
            match self.doubt_left(d, at).as_slice() {
                [one] => Some(*one),
                _ => None,
            }
        })
    }

    /// The ending the trail gives a node as of `at`: its own, or — when all
    /// other candidates of a doubt were used later — that doubt's, by
    /// elimination (the earlier of the two).
    fn ending(&self, id: NodeId, at: usize) -> Option<(usize, EndHow, bool, bool)> {
        let n = &self.nodes[id];
        let own = n
            .end
            .as_ref()
            .filter(|e| e.event <= at)
            .map(|e| (e.event, e.how.clone(), e.inferred, false));
        let settled = n.doubts.iter().copied().find_map(|d| {
            let g = &self.doubts[d];
            if g.event > at || self.used_between(id, g.event, at) {
                return None;
            }
            let left = self.doubt_left(d, at);
            if left != [id] || matches!(g.kind, DoubtKind::RevokedJti(_)) {
                return None;
            }
            let how = match g.kind {
                DoubtKind::Renewed { by } => EndHow::Renewed { by },
                _ => EndHow::Released,
            };
            Some((g.event, how, false, true))
        });
        match (own, settled) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// A node's status as of event `at`, judged at that event's time (or
    /// now, at the head of a live trail). A status the trail cannot settle
    /// is `inferred` (or `unknown`), never stated as fact.
    pub fn status(&self, id: NodeId, at: usize) -> Judged {
        let n = &self.nodes[id];
        let ms = self.judged_ms(at);
        // Doubts still open as of `at` (not cleared by a later use).
        let open: Vec<&Doubt> = self.open_doubts(id, at).map(|d| &self.doubts[d]).collect();
        let guessed = !n.inferred.is_empty() || n.impossible.is_some();
        if let Some((event, how, end_inferred, by_elimination)) = self.ending(id, at) {
            let by = &self.events[event].id;
            let (status, mut why) = match &how {
                EndHow::Revoked { level, target } => {
                    let when = if event == n.event {
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
            if by_elimination {
                why.push_str(": the other candidates were used as Bearer later");
            }
            // An earlier doubt of another kind (renewed away before it was
            // revoked, say) leaves the kind of ending a guess — dead either way.
            let same_kind = |k: &DoubtKind| {
                matches!(
                    (k, &how),
                    (DoubtKind::RevokedJti(_), EndHow::Revoked { .. })
                        | (DoubtKind::Released, EndHow::Released)
                        | (DoubtKind::Renewed { .. }, EndHow::Renewed { .. })
                )
            };
            let earlier: Vec<&str> = open
                .iter()
                .filter(|g| g.event < event && !same_kind(&g.kind))
                .map(|g| &*self.events[g.event].id)
                .collect();
            let chain_guess = guessed
                && matches!(
                    how,
                    EndHow::Revoked {
                        level: RevokeLevel::Chain,
                        ..
                    }
                );
            if !earlier.is_empty() {
                why.push_str(&format!(
                    "; unless it had already ended at {} (the trail cannot tell)",
                    earlier.join(", ")
                ));
            }
            if end_inferred {
                why.push_str("; inferred: the event does not name this token");
            }
            if chain_guess {
                why.push_str("; inferred: its chain root is itself a guess");
            }
            let unsure = end_inferred || chain_guess;
            return Judged {
                status,
                inferred: unsure || !earlier.is_empty(),
                why,
                liveness: if unsure {
                    Liveness::Maybe
                } else {
                    Liveness::Dead
                },
            };
        }
        if !open.is_empty() {
            // At most three in words; the rest counted.
            const SAID: usize = 3;
            let more = open.len().saturating_sub(SAID) + n.doubts_dropped;
            let parts: Vec<String> = open
                .iter()
                .take(SAID)
                .map(|g| {
                    let id_ = &self.events[g.event].id;
                    let of = g.members.len();
                    match &g.kind {
                        DoubtKind::RevokedJti(j) => format!(
                            "perhaps revoked by {id_} (jti {j}, one of {of} tokens the trail carries no jti for)"
                        ),
                        DoubtKind::Released => {
                            format!("perhaps released at {id_} (one of {of} tokens of the agent)")
                        }
                        DoubtKind::Renewed { .. } => format!(
                            "perhaps renewed away at {id_} (the trail names only the new jti; one of {of} tokens of the agent)"
                        ),
                    }
                })
                .collect();
            let more = if more > 0 {
                format!("; and {more} more such events")
            } else {
                String::new()
            };
            return Judged::new(
                Status::Unknown,
                true,
                format!("unknown: {}{more}", parts.join("; ")),
            );
        }
        let age = ms - n.ms;
        let last_use = n
            .uses
            .iter()
            .rev()
            .find(|&&u| u <= at)
            .map(|&u| (u, self.events[u].ms));
        let guess_note = if guessed {
            "; inferred: its place in the chain is itself a guess"
        } else {
            ""
        };
        match n.ttl {
            Some(t) if age > t * 1000 => Judged::new(
                Status::Expired,
                false,
                format!("expired: issued with ttl {t}s"),
            ),
            Some(t) => Judged::new(
                Status::Live,
                guessed,
                format!("valid: ttl {t}s, {}s left{guess_note}", t - age / 1000),
            ),
            // Older than any token lives with the default AA_MAX_TTL: dead,
            // though the ttl itself is not in the trail.
            None if age > MAX_TTL * 1000 => Judged {
                status: Status::Expired,
                inferred: true,
                why: format!(
                    "expired: older than AA_MAX_TTL's default {MAX_TTL}s (its ttl is not in the trail)"
                ),
                liveness: Liveness::Dead,
            },
            None => match last_use {
                Some((u, u_ms)) if ms <= u_ms => Judged::new(
                    Status::Live,
                    guessed,
                    format!(
                        "valid: the Bearer of {} at this time{guess_note}",
                        self.events[u].id
                    ),
                ),
                _ if age <= DEFAULT_DELEGATION_TTL * 1000 => Judged::new(
                    Status::Live,
                    true,
                    format!(
                        "likely valid: younger than the default ttl {DEFAULT_DELEGATION_TTL}s, and the trail does not carry a delegation's ttl"
                    ),
                ),
                Some((u, _)) => Judged::new(
                    Status::Unknown,
                    true,
                    format!(
                        "unknown: its ttl is not in the trail; it was last used as Bearer at {} and is {}s old now",
                        self.events[u].id,
                        age / 1000
                    ),
                ),
                None => Judged::new(
                    Status::Unknown,
                    true,
                    format!(
                        "unknown: its ttl is not in the trail and it is older than the default {DEFAULT_DELEGATION_TTL}s ({}s old)",
                        age / 1000
                    ),
                ),
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

/// Whether two scope lists hold the same words (Go's `%v` prints a scope
/// with spaces as several, so lists are compared word by word).
fn same_words<A: AsRef<str>, B: AsRef<str>>(a: &[A], b: &[B]) -> bool {
    let mut x: Vec<&str> = a
        .iter()
        .flat_map(|s| s.as_ref().split_whitespace())
        .collect();
    let mut y: Vec<&str> = b
        .iter()
        .flat_map(|s| s.as_ref().split_whitespace())
        .collect();
    if x.len() != y.len() {
        return false;
    }
    x.sort_unstable();
    y.sort_unstable();
    x == y
}

/// The one reading of a Go `%v` list (`items`, split at spaces) that
/// `parent` covers: the items as they are, or — when a scope's identifier
/// held spaces — consecutive items joined back with a space. `None` when no
/// reading is covered (or the list is too long to re-read).
pub fn reread(items: &[&str], parent: &[String]) -> Option<Vec<String>> {
    if scope::is_subset(items, parent) {
        return Some(items.iter().map(|s| s.to_string()).collect());
    }
    let n = items.len();
    if n > REREAD_MAX {
        return None;
    }
    // ok[i] = a covered reading of items[i..], the fewest joins first.
    let mut ok: Vec<Option<Vec<String>>> = vec![None; n + 1];
    ok[n] = Some(Vec::new());
    for i in (0..n).rev() {
        for j in (i + 1)..=n {
            let Some(rest) = &ok[j] else { continue };
            let joined = items[i..j].join(" ");
            if scope::is_subset(&[joined.as_str()], parent) {
                let mut v = vec![joined];
                v.extend(rest.iter().cloned());
                ok[i] = Some(v);
                break;
            }
        }
    }
    ok[0].take()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::types::AuditEvent;

    /// A trail built event by event, with a valid hash chain.
    #[derive(Default)]
    struct Trail {
        events: Vec<AuditEvent>,
        /// Seconds after 2026-12-01T00:00:00Z of the next event.
        t: i64,
    }

    impl Trail {
        fn push(&mut self, ty: &str, agent: &str, task: &str, detail: &str, depth: i64) {
            let n = self.events.len() + 1;
            let ts = chrono::DateTime::from_timestamp(1_764_547_200 + self.t, 0)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let mut e = AuditEvent {
                id: format!("evt-{n:06}"),
                timestamp: ts,
                event_type: ty.into(),
                agent_id: agent.into(),
                task_id: task.into(),
                orch_id: if task.is_empty() {
                    String::new()
                } else {
                    "o".into()
                },
                detail: detail.into(),
                outcome: "success".into(),
                deleg_depth: depth,
                prev_hash: self
                    .events
                    .last()
                    .map(|p| p.hash.clone())
                    .unwrap_or_else(|| "0".repeat(64)),
                ..AuditEvent::default()
            };
            if ty == "delegation_created" {
                e.deleg_chain_hash = format!("{n:064x}");
            }
            e.hash = e.compute_hash();
            self.events.push(e);
        }
        fn register(&mut self, agent: &str, task: &str, scope: &str, jti: &str) {
            self.push(
                "agent_registered",
                agent,
                task,
                &format!("Agent registered with scope [{scope}]"),
                0,
            );
            self.push(
                "token_issued",
                agent,
                task,
                &format!("Token issued, jti={jti}, ttl=300"),
                0,
            );
        }
        fn delegate(&mut self, from: &str, to: &str, task: &str, scope: &str, depth: i64) {
            self.push(
                "delegation_created",
                to,
                task,
                &format!("delegation from {from} to {to} scope=[{scope}] depth={depth}"),
                depth,
            );
        }
        fn observed(&self) -> Observed {
            let mut o = Observed::new();
            for e in &self.events {
                o.fold(&e.as_ref(), None);
            }
            o
        }
    }

    fn spiffe(task: &str, inst: &str) -> String {
        format!("spiffe://agentwrit.local/agent/o/{task}/{inst}")
    }

    #[test]
    fn a_chain_deeper_than_the_broker_allows_is_flagged_and_printed_without_recursion() {
        let mut t = Trail::default();
        let names: Vec<String> = (0..20_001)
            .map(|i| spiffe("t", &format!("{i:016x}")))
            .collect();
        t.register(&names[0], "t", "read:x:*", "j0");
        for d in 1..=20_000 {
            t.delegate(&names[d - 1], &names[d], "t", "read:x:*", d as i64);
        }
        let o = t.observed();
        let head = o.head().unwrap();
        let impossible = o.nodes.iter().filter(|n| n.impossible.is_some()).count();
        assert_eq!(impossible, 20_000 - 5, "every hop past depth 5 is flagged");
        // No chain is longer than the broker's limit.
        assert!(
            o.nodes
                .iter()
                .enumerate()
                .all(|(i, _)| o.chain(i).len() <= 6)
        );
        let mut out = Vec::new();
        crate::observe::print::text::write(&o, head, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("IMPOSSIBLE: depth 6 is over the broker's limit of 5"));
    }

    #[test]
    fn a_scope_with_spaces_is_never_shown_as_privileges_its_parent_does_not_hold() {
        let mut t = Trail::default();
        let (a, b) = (spiffe("t", "aaaaaaaa"), spiffe("t", "bbbbbbbb"));
        t.register(&a, "t", "read:x:*", "ja");
        t.register(&b, "t", "read:y:*", "jb");
        // One scope to the broker (its identifier holds spaces), three in Go's %v.
        t.delegate(&a, &b, "t", "read:x:a write:x:* admin:revoke:*", 1);
        // And one no reading of which its parent (read:x:b) covers.
        let c = spiffe("t", "cccccccc");
        t.register(&c, "t", "read:x:b", "jc");
        t.delegate(&c, &b, "t", "read:x:b admin:revoke:*", 1);
        let o = t.observed();
        let d1 = &o.nodes[2];
        assert_eq!(d1.scope, ["read:x:a write:x:* admin:revoke:*"]);
        assert!(d1.impossible.is_none());
        assert!(
            d1.inferred.iter().any(|w| w.contains("re-read")),
            "{:?}",
            d1.inferred
        );
        let d2 = &o.nodes[4];
        assert_eq!(d2.scope, ["read:x:b"], "the uncovered scope is not held");
        assert!(d2.impossible.as_deref().unwrap().contains("admin:revoke:*"));
        for n in [d1, d2] {
            assert!(!scope::is_subset(&["admin:revoke:*"], &n.scope));
        }
    }

    #[test]
    fn unknown_is_never_dead_and_a_use_as_bearer_settles_it() {
        let mut t = Trail::default();
        let (a, b, c) = (spiffe("t", "a"), spiffe("t", "b"), spiffe("t", "c"));
        t.register(&a, "t", "read:x:*", "ja");
        t.register(&b, "t", "read:x:*", "jb");
        t.register(&c, "t", "read:x:*", "jc");
        t.delegate(&a, &b, "t", "read:x:*", 1);
        t.t += 61;
        t.push("admin_auth", "", "", "admin authenticated as admin", 0);
        let o = t.observed();
        let ab = 3;
        let j = o.status(ab, o.head().unwrap());
        assert_eq!(
            (j.status, j.liveness),
            (Status::Unknown, Liveness::Maybe),
            "{j:?}"
        );
        // It is the Bearer of a delegation 61 s on: valid then, stated.
        t.delegate(&b, &c, "t", "read:x:y", 2);
        let o = t.observed();
        let j = o.status(ab, o.head().unwrap());
        assert_eq!(
            (j.status, j.inferred, j.liveness),
            (Status::Live, false, Liveness::Live),
            "{j:?}"
        );
    }

    #[test]
    fn at_the_head_of_a_live_trail_statuses_are_judged_now() {
        let mut t = Trail::default();
        let a = spiffe("t", "a");
        t.register(&a, "t", "read:x:*", "ja");
        let mut o = t.observed();
        let head = o.head().unwrap();
        assert_eq!(o.status(0, head).status, Status::Live);
        // Ten minutes after the last event (ttl 300): expired, though no event came.
        o.now_ms = Some(o.events[head].ms + 600_000);
        assert!(o.judged_now(head));
        assert_eq!(o.status(0, head).status, Status::Expired);
        // Stepped back: as of the event shown.
        t.push("admin_auth", "", "", "admin authenticated as admin", 0);
        let mut o = t.observed();
        o.now_ms = Some(o.events[0].ms + 600_000);
        let head = o.head().unwrap();
        assert_eq!(o.status(0, head).status, Status::Expired, "the head, now");
        assert_eq!(
            o.status(0, 1).status,
            Status::Live,
            "stepped back: as of evt-2"
        );
    }

    #[test]
    fn an_agent_with_thousands_of_tokens_costs_bounded_work_per_event() {
        let mut t = Trail::default();
        let scopes: Vec<String> = (0..50).map(|i| format!("read:r{i}:*")).collect();
        let all = scopes.join(" ");
        let a = spiffe("t", "a");
        t.push(
            "agent_registered",
            &a,
            "t",
            &format!("Agent registered with scope [{all}]"),
            0,
        );
        for i in 0..4096 {
            t.push(
                "token_issued",
                &a,
                "t",
                &format!("Token issued, jti=j{i}, ttl=300"),
                0,
            );
        }
        for i in 0..100 {
            let to = spiffe("u", &format!("{i:08}"));
            t.delegate(&a, &to, "t", &all, 1);
        }
        let o = t.observed();
        // Each delegation hangs under one of a's tokens, marked as a pick.
        let d = o.nodes.last().unwrap();
        assert!(d.parent.is_some());
        assert!(
            d.inferred.iter().any(|w| w.contains("at least")),
            "{:?}",
            d.inferred
        );
    }

    /// §7.1 in one place: what observe's indexed lookups end is exactly
    /// what `rules::covers` says, whatever the order of entries and tokens.
    #[test]
    fn observes_indexed_revocations_agree_with_covers() {
        use crate::rules::covers;
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for _ in 0..40 {
            let mut t = Trail::default();
            let agents: Vec<String> = (0..4)
                .map(|i| spiffe(&format!("t{i}"), &format!("{i}")))
                .collect();
            for (i, a) in agents.iter().enumerate() {
                t.register(a, &format!("t{i}"), "read:x:*", &format!("j{i}"));
            }
            let mut entries = Vec::new();
            for _ in 0..12 {
                match next(3) {
                    0 => {
                        let (f, to) = (next(4) as usize, next(4) as usize);
                        let task = format!("t{f}");
                        t.delegate(&agents[f], &agents[to], &task, "read:x:*", 1);
                    }
                    _ => {
                        let level = RevokeLevel::ALL[next(4) as usize];
                        let target = match level {
                            RevokeLevel::Token => format!("j{}", next(4)),
                            RevokeLevel::Task => format!("t{}", next(4)),
                            _ => agents[next(4) as usize].clone(),
                        };
                        t.push(
                            "token_revoked",
                            &target,
                            "",
                            &format!("revoked at level={level} target={target}"),
                            0,
                        );
                        entries.push((level, target));
                    }
                }
            }
            let o = t.observed();
            let head = o.head().unwrap();
            for (i, n) in o.nodes.iter().enumerate() {
                let s = o.subject(n);
                let want = entries.iter().any(|(l, tg)| covers(*l, tg, &s));
                for (l, tg) in &entries {
                    assert_eq!(
                        o.covered(*l, tg).contains(&i),
                        covers(*l, tg, &s),
                        "covered({l}, {tg}) for n{i}"
                    );
                }
                let got = matches!(
                    n.end,
                    Some(End {
                        how: EndHow::Revoked { .. },
                        ..
                    })
                );
                assert_eq!(got, want, "n{i} {s:?} entries {entries:?}");
                if want {
                    assert_eq!(o.status(i, head).status, Status::Revoked);
                }
            }
        }
    }
}
