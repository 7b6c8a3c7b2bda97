//! The state model: the app session, agents, tokens (registration, delegated
//! and renewed, with parent links), their statuses, the event log and the
//! scope probe. [`App::apply`] folds worker events into it; it does no I/O.
//!
//! Every status shown is what the broker said or what follows from its rules
//! (spec §7.1): a refused step stays refused, with the broker's own words.

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;

use crate::broker::types::{AuditEvent, ChainBreak, RevokeLevel, verify_audit_chain};
use crate::broker::{BrokerError, ClientError};
use crate::jwt::{self, Claims, Verification};
use crate::protocol::AuditRead;
use crate::scope;
use crate::worker::{AppInfo, Call, Event, Outcome};

pub use crate::protocol::{AgentId, TokenId};

/// The `exp` of a token whose expiry is not known (observe: a delegated
/// token's ttl is not in the audit trail). Far enough that it never passes.
pub const EXP_UNKNOWN: i64 = i64::MAX / 2;

mod fold;
mod import;
mod token;

pub use token::*;

/// Unix seconds now.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentEntry {
    pub name: String,
    /// The SPIFFE id, once registered.
    pub agent_id: Option<String>,
    pub orch: String,
    pub task: String,
    pub scope: Vec<String>,
    /// The registration token; `None` for an agent chainview did not register.
    pub token: Option<TokenId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Registration,
    Delegated {
        parent: TokenId,
    },
    Renewal {
        of: TokenId,
    },
    /// Pasted or loaded from elsewhere. `parent` is the known token its last
    /// chain record points at; `None` makes it the root of an orphan chain.
    Imported {
        parent: Option<TokenId>,
    },
}

/// Why a token could not be imported (nothing is stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("not an AgentWrit token: {0}")]
    Malformed(#[from] jwt::JwtError),
    #[error("not an AgentWrit token: header alg is '{0}', expected EdDSA")]
    Algorithm(String),
    #[error("the token looks truncated: signature must be 64 bytes, found {0}")]
    Truncated(usize),
    #[error("the token looks truncated or damaged: its signature is not valid base64url")]
    Damaged,
    #[error("already known as '{0}'")]
    Duplicate(String),
    #[error("label '{0}' is already used")]
    LabelTaken(String),
    #[error("{0} bytes is larger than any token a broker accepts (1 MiB)")]
    TooLarge(usize),
}

/// The broker's audit trail as last fetched, with the hash chain checked
/// (by [`crate::rules::chain`]) and what of the trail it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditTrail {
    pub at: i64,
    pub events: Vec<AuditEvent>,
    /// The first broken link, if any (checked over the events read, unfiltered).
    pub chain: Result<(), ChainBreak>,
    /// The broker's `total` (`None`: not known, e.g. observe's window).
    pub total: Option<i64>,
    /// Events of the trail before the first one here.
    pub first: usize,
    /// Why the read stopped before the end of the trail, if it did.
    pub stopped: Option<String>,
}

impl AuditTrail {
    pub fn new(read: AuditRead, at: i64) -> AuditTrail {
        let chain = verify_audit_chain(&read.events);
        AuditTrail {
            at,
            events: read.events,
            chain,
            total: Some(read.total),
            first: read.first,
            stopped: read.stopped,
        }
    }

    /// Whether these are the broker's whole trail (from its offset 0 to
    /// its `total`, nothing skipped or cut; whether that starts at the
    /// broker's first event is for [`AuditTrail::chain_words`] to say).
    pub fn whole(&self) -> bool {
        self.first == 0
            && self.stopped.is_none()
            && self.total.is_some_and(|t| self.events.len() as i64 >= t)
    }

    /// "first N of M" / "newest N of M" / "events A…B of M" when the
    /// events are not the whole trail (with why the read stopped).
    pub fn cut_words(&self) -> Option<String> {
        if self.whole() {
            return None;
        }
        let n = self.events.len();
        let of = match self.total {
            Some(t) => format!("{t}"),
            None => "?".into(),
        };
        let part = match self.total {
            Some(t) if self.first > 0 && (self.first + n) as i64 >= t => {
                format!("the newest {n} of {of} events")
            }
            _ if self.first > 0 => format!("events {}…{} of {of}", self.first + 1, self.first + n),
            _ => format!("the first {n} of {of} events"),
        };
        Some(match &self.stopped {
            Some(why) => format!("{part} ({why})"),
            None => part,
        })
    }

    /// [`AuditTrail::chain_words`], short enough for one line of a view.
    pub fn chain_short(&self) -> (bool, String) {
        match &self.chain {
            Ok(()) => (
                true,
                crate::rules::chain::consistent_short(
                    self.events.len(),
                    self.events.first().map(|e| e.id.as_str()),
                ),
            ),
            Err(b) => (false, b.words()),
        }
    }

    /// The hash-chain check in words: what a chain that checks out proves
    /// (consistency, not authenticity), or where it first breaks.
    pub fn chain_words(&self) -> (bool, String) {
        match &self.chain {
            Ok(()) => (
                true,
                crate::rules::chain::consistent_words(
                    self.events.len(),
                    self.events.first().map(|e| e.id.as_str()),
                ),
            ),
            Err(b) => (false, b.words()),
        }
    }
}

/// The whole explorer state.
#[derive(Debug, Default)]
pub struct App {
    pub broker_url: String,
    pub embedded: bool,
    /// Known when the broker is the embedded one: signatures can be verified.
    pub broker_key: Option<VerifyingKey>,
    pub app: Option<AppInfo>,
    pub agents: Vec<AgentEntry>,
    pub tokens: Vec<TokenEntry>,
    pub labels: HashMap<String, TokenId>,
    /// Revocation entries this session made; they also kill future tokens.
    pub revocations: Vec<(RevokeLevel, String)>,
    pub log: Vec<LogEntry>,
    /// Set when the broker could not be reached.
    pub connection_error: Option<String>,
    /// Whether the broker has answered at all yet.
    pub connected: bool,
    /// Bumped on every change, so views can cache what they derive.
    pub generation: u64,
    /// Whether the admin secret is known (revoke, audit).
    pub admin: bool,
    /// The audit trail, once fetched.
    pub audit: Option<Result<AuditTrail, String>>,
    /// When the live check last asked the broker about every live token.
    pub revalidated_at: Option<i64>,
    /// A live check was sent and its answer has not arrived yet.
    pub live_pending: bool,
    /// Renewals of each token, in order (so `latest` need not scan every token).
    renewals: HashMap<TokenId, Vec<TokenId>>,
    /// The merged view: other clients' chains (from the audit trail) shown
    /// beside the explorer's own.
    pub show_others: bool,
}

impl App {
    pub fn new(broker_url: &str, embedded: bool, broker_key: Option<VerifyingKey>) -> Self {
        App {
            broker_url: broker_url.to_string(),
            embedded,
            broker_key,
            ..App::default()
        }
    }

    pub fn token(&self, label: &str) -> Option<&TokenEntry> {
        self.labels.get(label).map(|id| &self.tokens[*id])
    }

    pub fn agent_by_name(&self, name: &str) -> Option<(AgentId, &AgentEntry)> {
        self.agents.iter().enumerate().find(|(_, a)| a.name == name)
    }

    /// The agent name for a SPIFFE id, if chainview created that agent.
    pub fn agent_name(&self, spiffe: &str) -> Option<&str> {
        self.agents
            .iter()
            .find(|a| a.agent_id.as_deref() == Some(spiffe))
            .map(|a| a.name.as_str())
    }

    pub fn status(&self, id: TokenId, now: i64) -> TokenStatus {
        self.tokens[id].status_at(now)
    }

    fn push_token(&mut self, t: TokenEntry) -> TokenId {
        self.generation += 1;
        let id = self.tokens.len();
        if let Some(l) = &t.label {
            self.labels.insert(l.clone(), id);
        }
        if let TokenKind::Renewal { of } = t.kind {
            self.renewals.entry(of).or_default().push(id);
        }
        self.tokens.push(TokenEntry { id, ..t });
        id
    }

    fn new_token(
        &self,
        holder: AgentId,
        kind: TokenKind,
        label: Option<String>,
        scope: Vec<String>,
        line: Option<usize>,
    ) -> TokenEntry {
        TokenEntry {
            id: 0,
            label,
            holder,
            kind,
            requested_scope: scope,
            raw: None,
            claims: None,
            verification: None,
            expires_in: None,
            status: TokenStatus::Pending,
            validated: None,
            line,
            notes: Vec::new(),
            foreign: false,
        }
    }

    /// A token known from elsewhere (observe's reconstruction of an audit
    /// trail): its claims as far as known, its status as judged, and notes.
    /// Whether the views show this token (another client's only in the merged view).
    pub fn shown(&self, t: &TokenEntry) -> bool {
        !t.foreign || self.show_others
    }

    /// Another client's token's status as judged again from the trail (the
    /// merged view). The explorer's own tokens are never touched: their
    /// statuses are the broker's answers.
    pub fn set_known_status(&mut self, id: TokenId, status: TokenStatus) {
        if let Some(t) = self.tokens.get_mut(id)
            && t.foreign
            && t.status != status
        {
            t.status = status;
            self.generation += 1;
        }
    }

    pub fn add_known(&mut self, k: Known) -> TokenId {
        let t = TokenEntry {
            claims: k.claims,
            status: k.status,
            notes: k.notes,
            foreign: k.foreign,
            ..self.new_token(k.holder, k.kind, None, k.requested, None)
        };
        // Shown by its label, but not a name a scenario step can use: not
        // in `labels` (which also keeps a big reconstruction quick to build).
        let id = self.push_token(t);
        self.tokens[id].label = Some(k.label);
        id
    }

    /// Records an agent about to be registered; returns its id and the pending token's id.
    pub fn begin_agent(
        &mut self,
        name: &str,
        orch: &str,
        task: &str,
        scope: &[String],
        line: Option<usize>,
    ) -> (AgentId, TokenId) {
        // A name whose registration was refused (or failed) is taken again:
        // the agent's row follows the new attempt; the refused attempt keeps
        // its place in the tree, unlabelled.
        let reuse = self.unregistered(name);
        if let Some(old) = reuse.and_then(|a| self.agents[a].token) {
            self.tokens[old].label = None;
        }
        let agent = reuse.unwrap_or(self.agents.len());
        let tok = self.new_token(
            agent,
            TokenKind::Registration,
            Some(name.to_string()),
            scope.to_vec(),
            line,
        );
        let token = self.push_token(tok);
        let entry = AgentEntry {
            name: name.to_string(),
            agent_id: None,
            orch: orch.to_string(),
            task: task.to_string(),
            scope: scope.to_vec(),
            token: Some(token),
        };
        match reuse {
            Some(a) => self.agents[a] = entry,
            None => self.agents.push(entry),
        }
        (agent, token)
    }

    /// The agent of this name whose registration was refused or failed (it
    /// never got a SPIFFE id): its name may be taken again.
    pub fn unregistered(&self, name: &str) -> Option<AgentId> {
        let (i, a) = self.agent_by_name(name)?;
        let tok = a.token.map(|t| self.tokens[t].status_at(i64::MIN));
        (a.agent_id.is_none()
            && matches!(tok, Some(TokenStatus::Refused(_) | TokenStatus::Failed(_))))
        .then_some(i)
    }

    /// An agent chainview did not register (e.g. an unregistered SPIFFE id a
    /// scenario delegates to), found or added by its SPIFFE id.
    pub fn outside_agent(&mut self, spiffe: &str) -> AgentId {
        if let Some(i) = self
            .agents
            .iter()
            .position(|a| a.agent_id.as_deref() == Some(spiffe))
        {
            return i;
        }
        let id = self.agents.len();
        self.agents.push(AgentEntry {
            name: spiffe.to_string(),
            agent_id: Some(spiffe.to_string()),
            orch: String::new(),
            task: String::new(),
            scope: Vec::new(),
            token: None,
        });
        id
    }

    /// Records a delegation about to be asked for.
    pub fn begin_delegation(
        &mut self,
        parent: TokenId,
        to: AgentId,
        scope: &[String],
        label: &str,
        line: Option<usize>,
    ) -> TokenId {
        let tok = self.new_token(
            to,
            TokenKind::Delegated { parent },
            Some(label.to_string()),
            scope.to_vec(),
            line,
        );
        self.push_token(tok)
    }

    /// Records a renewal about to be asked for. The label moves to the new
    /// token unless `new_label` names it.
    pub fn begin_renewal(
        &mut self,
        old: TokenId,
        new_label: Option<&str>,
        line: Option<usize>,
    ) -> TokenId {
        let o = &self.tokens[old];
        let tok = self.new_token(
            o.holder,
            TokenKind::Renewal { of: old },
            None,
            o.scope().to_vec(),
            line,
        );
        let id = self.push_token(tok);
        let label = new_label
            .map(str::to_string)
            .or_else(|| self.tokens[old].label.clone());
        if let Some(l) = label {
            self.labels.insert(l.clone(), id);
            self.tokens[id].label = Some(l);
        }
        if new_label.is_none() {
            self.tokens[old].label = self.tokens[old]
                .label
                .take()
                .map(|l| format!("{l} (before renewal)"));
        }
        id
    }

    /// A refused renewal gives the label back to the token it tried to
    /// replace; the refused attempt stays beside it, named as such.
    fn renewal_refused(&mut self, old: TokenId, new: TokenId) {
        let Some(label) = self.tokens[new].label.clone() else {
            return;
        };
        let moved = self.tokens[old].label.as_deref() == Some(&format!("{label} (before renewal)"));
        if !moved {
            return;
        }
        self.tokens[old].label = Some(label.clone());
        self.labels.insert(label.clone(), old);
        self.tokens[new].label = Some(format!("{label} (renewal refused)"));
    }

    /// A token's depth: from its claims, or — for a delegation the broker
    /// refused — one more than the token it was asked from.
    pub fn depth(&self, id: TokenId) -> usize {
        let mut id = id;
        let mut extra = 0;
        loop {
            let t = &self.tokens[id];
            if let Some(c) = &t.claims {
                return c.depth() + extra;
            }
            match t.kind {
                TokenKind::Delegated { parent } if extra < self.tokens.len() => {
                    extra += 1;
                    id = parent;
                }
                _ => return extra,
            }
        }
    }

    /// Every token believed alive, with its raw form: what the live check asks about.
    pub fn live_tokens(&self) -> Vec<(TokenId, crate::worker::Secret)> {
        let now = unix_now();
        self.tokens
            .iter()
            .filter(|t| t.status_at(now) == TokenStatus::Valid)
            .filter_map(|t| t.raw.clone().map(|r| (t.id, crate::worker::Secret(r))))
            .collect()
    }

    /// What a revocation names on the wire: a token label → its `jti`, an
    /// agent name (or a literal `spiffe://` id) → its SPIFFE id, a task id as is.
    /// A token is also named by its jti (any token chainview knows: an
    /// observed one of another client's has no label a step can use), or
    /// by the name another client's token is shown with.
    pub fn revoke_target(&self, level: RevokeLevel, target: &str) -> Result<String, String> {
        match level {
            RevokeLevel::Token => {
                if let Some(c) = self.token(target).and_then(|t| t.claims.as_ref()) {
                    return Ok(c.jti.clone());
                }
                let by_jti = |t: &&TokenEntry| {
                    !target.is_empty() && t.claims.as_ref().is_some_and(|c| c.jti == target)
                };
                if self.tokens.iter().any(|t| by_jti(&t)) {
                    return Ok(target.to_string());
                }
                let observed = self
                    .tokens
                    .iter()
                    .find(|t| t.foreign && t.label.as_deref() == Some(target));
                match observed.and_then(|t| t.claims.as_ref()) {
                    Some(c) if !c.jti.is_empty() => Ok(c.jti.clone()),
                    Some(_) => Err(format!(
                        "the audit trail does not carry {target}'s jti (v2.0.0 does not audit a delegated token's): revoke its agent, task or chain, or import the token (i)"
                    )),
                    None => Err(format!("'{target}' holds no token to revoke")),
                }
            }
            RevokeLevel::Agent | RevokeLevel::Chain if target.starts_with("spiffe://") => {
                Ok(target.to_string())
            }
            RevokeLevel::Agent | RevokeLevel::Chain => {
                match self.agent_by_name(target).map(|(_, a)| a.agent_id.clone()) {
                    Some(Some(id)) => Ok(id),
                    Some(None) => Err(format!("agent '{target}' is not registered")),
                    None => Err(format!("no agent is named '{target}'")),
                }
            }
            RevokeLevel::Task => Ok(target.to_string()),
        }
    }

    /// The live tokens shown that a revocation entry would kill (spec §7.1).
    pub fn would_revoke(&self, level: RevokeLevel, target: &str) -> Vec<TokenId> {
        let now = unix_now();
        self.tokens
            .iter()
            .filter(|t| self.shown(t) && !t.status_at(now).is_dead())
            .filter(|t| t.claims.as_ref().is_some_and(|c| revokes(level, target, c)))
            .map(|t| t.id)
            .collect()
    }

    /// The token that carries `id` on: its latest successful renewal (or
    /// `id` itself). What an agent holds now.
    pub fn latest(&self, id: TokenId) -> TokenId {
        let mut cur = id;
        // Follow the last renewal that was issued (not refused, failed or
        // still on its way), as many times as it was renewed.
        for _ in 0..self.tokens.len() {
            let next = self.renewals.get(&cur).and_then(|rs| {
                rs.iter().rev().copied().find(|&r| {
                    !matches!(
                        self.tokens[r].status,
                        TokenStatus::Refused(_) | TokenStatus::Failed(_) | TokenStatus::Pending
                    )
                })
            });
            match next {
                Some(n) if n != cur => cur = n,
                _ => break,
            }
        }
        cur
    }

    /// Probe: for every issued or refused token, does it permit `requested`, and why.
    pub fn probe(&self, requested: &str, now: i64) -> Vec<ProbeRow> {
        self.tokens
            .iter()
            .filter(|t| t.probe_candidate() && self.shown(t))
            .map(|t| {
                let status = t.status_at(now);
                let verdict = match status.liveness() {
                    Liveness::Dead => ProbeVerdict::Dead(status),
                    live => match scope::explain_one(requested, t.scope()) {
                        scope::Verdict::Covered { by } if live == Liveness::Maybe => {
                            ProbeVerdict::MayPermit { by, why: status }
                        }
                        scope::Verdict::Covered { by } => ProbeVerdict::Permits { by },
                        scope::Verdict::Denied(d) => ProbeVerdict::Denies(d),
                    },
                };
                ProbeRow {
                    token: t.id,
                    verdict,
                }
            })
            .collect()
    }

    /// The display name of a token: its label, or `holder#id`.
    pub fn token_name(&self, id: TokenId) -> String {
        let t = &self.tokens[id];
        t.label
            .clone()
            .unwrap_or_else(|| format!("{}#{}", self.agents[t.holder].name, id))
    }

    /// The chain of a token as recorded in its claims, root first, ending with
    /// the token's own holder and scope. For a refused delegation, the chain it
    /// would have had (the parent's chain plus the attempted hop).
    pub fn chain(&self, id: TokenId) -> Vec<Hop> {
        let t = &self.tokens[id];
        let (records, own_scope) = match (&t.claims, t.parent()) {
            (Some(c), _) => (c.delegation_chain.clone(), c.scope.clone()),
            (None, Some(p)) => {
                let mut recs = self.tokens[p]
                    .claims
                    .as_ref()
                    .map(|c| c.delegation_chain.clone())
                    .unwrap_or_default();
                let parent = &self.tokens[p];
                recs.push(jwt::DelegRecord {
                    agent: self.agents[parent.holder]
                        .agent_id
                        .clone()
                        .unwrap_or_default(),
                    scope: parent.scope().to_vec(),
                    delegated_at: String::new(),
                    signature: String::new(),
                });
                (recs, t.requested_scope.clone())
            }
            (None, None) => (Vec::new(), t.requested_scope.clone()),
        };
        let mut hops: Vec<Hop> = Vec::new();
        let mut prev: Option<Vec<String>> = None;
        let mut push = |who: String,
                        agent_id: String,
                        scope: Vec<String>,
                        label: Option<String>,
                        hops: &mut Vec<Hop>| {
            let attenuation = prev
                .as_ref()
                .map(|p| scope::attenuation(p, &scope))
                .unwrap_or_default();
            prev = Some(scope.clone());
            hops.push(Hop {
                who,
                agent_id,
                scope,
                attenuation,
                label,
            });
        };
        for r in &records {
            let who = self
                .agent_name(&r.agent)
                .map(str::to_string)
                .unwrap_or_else(|| r.agent.clone());
            push(who, r.agent.clone(), r.scope.clone(), None, &mut hops);
        }
        let holder = &self.agents[t.holder];
        push(
            holder.name.clone(),
            holder.agent_id.clone().unwrap_or_default(),
            own_scope,
            t.label.clone(),
            &mut hops,
        );
        hops
    }
}

#[cfg(test)]
mod tests;
