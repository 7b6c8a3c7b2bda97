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

/// A token's state as chainview knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenStatus {
    /// Asked for, no answer yet.
    Pending,
    /// Issued and, as far as chainview knows, usable.
    Valid,
    Expired,
    /// Killed by a revocation entry (level and target).
    Revoked {
        level: RevokeLevel,
        target: String,
    },
    Released,
    /// Replaced by a renewal; the broker revoked it.
    RenewedAway,
    /// The broker refused to issue it.
    Refused(BrokerError),
    /// The broker could not be asked (transport failure) or answered nonsense.
    Failed(String),
    /// The broker says it is invalid and chainview knows no reason.
    Invalid,
    /// Observe: the trail suggests it is valid but cannot settle it (why):
    /// it may permit, never counted as live or as dead.
    LikelyValid(String),
    /// Observe: the audit trail cannot settle it (why): it may permit.
    Unknown(String),
}

pub use crate::rules::Liveness;

impl TokenStatus {
    /// The status in words, with the broker's words for a refusal.
    pub fn reason(&self) -> String {
        match self {
            TokenStatus::Refused(b) => {
                format!("refused ({} {}: {})", b.status, b.error_code, b.detail)
            }
            TokenStatus::Revoked { level, .. } => format!("revoked at level {level}"),
            TokenStatus::Failed(why) => format!("failed ({why})"),
            TokenStatus::Invalid => "invalid (the broker says so)".into(),
            TokenStatus::Unknown(why) => format!("unknown ({why})"),
            TokenStatus::LikelyValid(why) => format!("likely valid ({why})"),
            other => other.word().to_string(),
        }
    }

    pub fn word(&self) -> &'static str {
        match self {
            TokenStatus::Pending => "pending",
            TokenStatus::Valid => "valid",
            TokenStatus::Expired => "expired",
            TokenStatus::Revoked { .. } => "revoked",
            TokenStatus::Released => "released",
            TokenStatus::RenewedAway => "renewed",
            TokenStatus::Refused(_) => "refused",
            TokenStatus::Failed(_) => "failed",
            TokenStatus::Invalid => "invalid",
            TokenStatus::Unknown(_) => "unknown",
            TokenStatus::LikelyValid(_) => "likely valid",
        }
    }

    /// Live, may be live (a status the trail cannot settle), or dead.
    pub fn liveness(&self) -> Liveness {
        match self {
            TokenStatus::Valid => Liveness::Live,
            TokenStatus::LikelyValid(_) | TokenStatus::Unknown(_) => Liveness::Maybe,
            _ => Liveness::Dead,
        }
    }

    /// A dead token permits nothing. A status the trail cannot settle is
    /// not dead.
    pub fn is_dead(&self) -> bool {
        self.liveness() == Liveness::Dead
    }
}

/// The broker's last answer to `validate` for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    pub at: i64,
    pub valid: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEntry {
    pub id: TokenId,
    pub label: Option<String>,
    pub holder: AgentId,
    pub kind: TokenKind,
    /// The scope asked for (for a refused delegation, what was attempted).
    pub requested_scope: Vec<String>,
    /// The compact token. A secret: show it through [`jwt::redact`].
    pub raw: Option<String>,
    pub claims: Option<Claims>,
    pub verification: Option<Verification>,
    pub expires_in: Option<i64>,
    status: TokenStatus,
    pub validated: Option<Validation>,
    /// The scenario line that created it, if any.
    pub line: Option<usize>,
    /// Observe: where it comes from in the audit trail and what of it is
    /// inferred rather than stated (shown in the detail pane).
    pub notes: Vec<String>,
    /// Made by another client of the broker (the explorer's merged view).
    pub foreign: bool,
}

impl TokenEntry {
    /// Whether the probe lists this token: one that was issued (it has a
    /// raw token, alive or not), or one whose issue was refused or failed
    /// (listed dead, with why). Not one still on its way. The probe panel
    /// and the `probe` step both ask this.
    pub fn probe_candidate(&self) -> bool {
        self.raw.is_some()
            || self.claims.is_some()
            || matches!(
                self.status_at(i64::MIN),
                TokenStatus::Refused(_) | TokenStatus::Failed(_)
            )
    }

    /// Scope held: the claims' scope once issued, else what was asked for.
    pub fn scope(&self) -> &[String] {
        self.claims
            .as_ref()
            .map(|c| c.scope.as_slice())
            .unwrap_or(&self.requested_scope)
    }

    pub fn exp(&self) -> Option<i64> {
        self.claims.as_ref().map(|c| c.exp)
    }

    /// The status at `now`: a valid token past `exp` is expired; one whose
    /// ttl is not known (observe) is likely valid up to the default
    /// delegation ttl, unknown after, and expired past `AA_MAX_TTL`.
    pub fn status_at(&self, now: i64) -> TokenStatus {
        use crate::rules::limits::{DEFAULT_DELEGATION_TTL, MAX_TTL};
        let iat = self.claims.as_ref().map(|c| c.iat);
        match (&self.status, self.exp(), iat) {
            (
                TokenStatus::Valid | TokenStatus::LikelyValid(_) | TokenStatus::Unknown(_),
                Some(exp),
                _,
            ) if exp != EXP_UNKNOWN && now > exp => TokenStatus::Expired,
            (
                TokenStatus::LikelyValid(_) | TokenStatus::Unknown(_),
                Some(EXP_UNKNOWN),
                Some(iat),
            ) if now > iat + MAX_TTL => TokenStatus::Expired,
            (TokenStatus::LikelyValid(_), Some(EXP_UNKNOWN), Some(iat))
                if now > iat + DEFAULT_DELEGATION_TTL =>
            {
                TokenStatus::Unknown(format!(
                    "unknown: its ttl is not in the trail and it is older than the default {DEFAULT_DELEGATION_TTL}s ({}s old)",
                    now - iat
                ))
            }
            (s, _, _) => s.clone(),
        }
    }

    /// [`TokenEntry::status_at`]'s liveness, without building the status.
    pub fn liveness_at(&self, now: i64) -> Liveness {
        use crate::rules::limits::MAX_TTL;
        let iat = self.claims.as_ref().map(|c| c.iat);
        match (self.status.liveness(), self.exp(), iat) {
            (Liveness::Live | Liveness::Maybe, Some(exp), _) if exp != EXP_UNKNOWN && now > exp => {
                Liveness::Dead
            }
            (Liveness::Maybe, Some(EXP_UNKNOWN), Some(iat)) if now > iat + MAX_TTL => {
                Liveness::Dead
            }
            (l, _, _) => l,
        }
    }

    pub fn depth(&self) -> usize {
        self.claims.as_ref().map(Claims::depth).unwrap_or(0)
    }

    pub fn parent(&self) -> Option<TokenId> {
        match self.kind {
            TokenKind::Delegated { parent } => Some(parent),
            TokenKind::Imported { parent } => parent,
            _ => None,
        }
    }

    /// Where the token hangs in the tree: a delegated token under its parent,
    /// a renewal beside the token it replaced.
    pub fn tree_parent(&self, tokens: &[TokenEntry]) -> Option<TokenId> {
        match self.kind {
            TokenKind::Registration => None,
            TokenKind::Delegated { parent } => Some(parent),
            TokenKind::Imported { parent } => parent,
            TokenKind::Renewal { of } => tokens.get(of).and_then(|o| o.tree_parent(tokens)),
        }
    }

    pub fn redacted(&self) -> Option<String> {
        self.raw.as_deref().map(jwt::redact)
    }
}

/// A token known from elsewhere, for [`App::add_known`].
#[derive(Debug, Clone)]
pub struct Known {
    pub holder: AgentId,
    pub kind: TokenKind,
    pub label: String,
    pub claims: Option<Claims>,
    pub requested: Vec<String>,
    pub status: TokenStatus,
    pub notes: Vec<String>,
    /// Made by another client (shown only while `App::show_others` is on).
    pub foreign: bool,
}

/// One line of the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub at: i64,
    pub call: Call,
    /// The token the call was about, when there was one.
    pub about: Option<String>,
}

/// A probe verdict for one token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeVerdict {
    Permits {
        by: String,
    },
    /// A token whose status the trail cannot settle holds a grant that
    /// covers the scope: it may permit (why it is unsure).
    MayPermit {
        by: String,
        why: TokenStatus,
    },
    Denies(scope::Denial),
    Dead(TokenStatus),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRow {
    pub token: TokenId,
    pub verdict: ProbeVerdict,
}

/// One hop of a chain as shown: who held what at that hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// Agent name when known, else the SPIFFE id.
    pub who: String,
    pub agent_id: String,
    pub scope: Vec<String>,
    /// What this hop did to the previous hop's scope (empty for the root).
    pub attenuation: Vec<(String, scope::Fate)>,
    /// The label of the token held at this hop, when it is the token itself.
    pub label: Option<String>,
}

/// Whether a revocation entry covers a token with these claims (spec §7.1).
pub fn revokes(level: RevokeLevel, target: &str, c: &Claims) -> bool {
    crate::rules::covers(level, target, &c.subject())
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

    /// Imports a token from elsewhere: decoded at once (malformed or truncated
    /// input is rejected with the reason and nothing is stored), placed under
    /// the known token its last chain record names, or as an orphan root. It
    /// stays `Pending` until the broker's `validate` answers.
    pub fn import(
        &mut self,
        label: &str,
        raw: &str,
        line: Option<usize>,
    ) -> Result<TokenId, ImportError> {
        let raw = raw.trim();
        let d = self.check_import(raw)?;
        if self.labels.contains_key(label) || self.agent_by_name(label).is_some() {
            return Err(ImportError::LabelTaken(label.to_string()));
        }
        if let Some(id) = self.observed_twin(&d.claims) {
            return Ok(self.resolve_observed(id, label, raw, d, line));
        }
        let holder = match self
            .agents
            .iter()
            .position(|a| a.agent_id.as_deref() == Some(d.claims.sub.as_str()))
        {
            Some(i) => i,
            None => self.outside_agent(&d.claims.sub),
        };
        let parent = d
            .claims
            .delegation_chain
            .split_last()
            .and_then(|(last, before)| self.find_parent(&last.agent, &last.scope, before.len()));
        let mut t = self.new_token(
            holder,
            TokenKind::Imported { parent },
            Some(label.to_string()),
            d.claims.scope.clone(),
            line,
        );
        t.verification = self.broker_key.as_ref().map(|k| d.verify(k));
        t.expires_in = Some(d.claims.exp - unix_now());
        t.claims = Some(d.claims);
        t.raw = Some(raw.to_string());
        Ok(self.push_token(t))
    }

    /// The other client's token shown from the audit trail (the merged
    /// view) that these claims are: by jti, else — a delegated token, whose
    /// jti the trail does not carry — by chain hash and holder (the one
    /// issued closest to `iat` when a renewal left several).
    pub fn observed_twin(&self, c: &Claims) -> Option<TokenId> {
        let observed = || {
            self.tokens
                .iter()
                .filter(|t| t.foreign)
                .filter_map(|t| t.claims.as_ref().map(|k| (t.id, k)))
        };
        if !c.jti.is_empty()
            && let Some((id, _)) = observed().find(|(_, k)| k.jti == c.jti)
        {
            return Some(id);
        }
        if c.chain_hash.is_empty() {
            return None;
        }
        observed()
            .filter(|(_, k)| k.jti.is_empty() && k.chain_hash == c.chain_hash && k.sub == c.sub)
            .min_by_key(|(_, k)| (k.iat - c.iat).abs())
            .map(|(id, _)| id)
    }

    /// Another client's token, imported: the shown node becomes the
    /// explorer's own, with the token's claims; the broker's `validate`
    /// settles its status (a death the trail states stays until the broker
    /// says it is valid).
    fn resolve_observed(
        &mut self,
        id: TokenId,
        label: &str,
        raw: &str,
        d: jwt::Decoded,
        line: Option<usize>,
    ) -> TokenId {
        self.generation += 1;
        let verification = self.broker_key.as_ref().map(|k| d.verify(k));
        let shown = self.token_name(id);
        let t = &mut self.tokens[id];
        t.foreign = false;
        t.label = Some(label.to_string());
        t.line = line;
        t.verification = verification;
        t.expires_in = Some(d.claims.exp - unix_now());
        t.claims = Some(d.claims);
        t.raw = Some(raw.to_string());
        t.validated = None;
        if !matches!(
            t.status,
            TokenStatus::Revoked { .. } | TokenStatus::Released | TokenStatus::RenewedAway
        ) {
            t.status = TokenStatus::Pending;
        }
        t.notes.push(format!(
            "imported as {label} (was {shown}, from the audit trail): the broker's answers settle its status"
        ));
        self.labels.insert(label.to_string(), id);
        id
    }

    /// Decodes a token to import and checks it is new (another client's
    /// token shown from the trail is not a duplicate: the import resolves
    /// it); stores nothing.
    pub fn check_import(&self, raw: &str) -> Result<jwt::Decoded, ImportError> {
        let raw = raw.trim();
        if raw.len() > jwt::MAX_TOKEN {
            return Err(ImportError::TooLarge(raw.len()));
        }
        let d = jwt::decode(raw).map_err(|e| match e {
            jwt::JwtError::Base64 { part: 3, .. } => ImportError::Damaged,
            other => ImportError::Malformed(other),
        })?;
        if d.header.alg != "EdDSA" {
            return Err(ImportError::Algorithm(d.header.alg));
        }
        if d.signature.len() != 64 {
            return Err(ImportError::Truncated(d.signature.len()));
        }
        if let Some(known) = self
            .tokens
            .iter()
            .find(|t| !t.foreign && t.claims.as_ref().is_some_and(|c| c.jti == d.claims.jti))
        {
            return Err(ImportError::Duplicate(self.token_name(known.id)));
        }
        Ok(d)
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

    /// The known token held by `agent` with exactly `scope` at chain depth
    /// `depth`: where an imported token's last hop came from. Live first.
    fn find_parent(&self, agent: &str, scope: &[String], depth: usize) -> Option<TokenId> {
        let now = unix_now();
        let mut found: Option<TokenId> = None;
        for t in &self.tokens {
            let held_by = self.agents[t.holder].agent_id.as_deref() == Some(agent);
            let fits = t
                .claims
                .as_ref()
                .is_some_and(|c| c.scope == scope && c.depth() == depth);
            if held_by && fits {
                if !t.status_at(now).is_dead() {
                    return Some(t.id);
                }
                found.get_or_insert(t.id);
            }
        }
        found
    }

    fn issued(&mut self, id: TokenId, raw: String, expires_in: i64) {
        let decoded = jwt::decode(&raw);
        let t = &mut self.tokens[id];
        match decoded {
            Ok(d) => {
                t.verification = self.broker_key.as_ref().map(|k| d.verify(k));
                t.claims = Some(d.claims);
                t.status = TokenStatus::Valid;
            }
            Err(e) => {
                t.status = TokenStatus::Failed(format!(
                    "the broker issued a token chainview cannot decode: {e}"
                ))
            }
        }
        t.raw = Some(raw);
        t.expires_in = Some(expires_in);
        // Revocation entries apply to future tokens too (spec §7.1).
        if let Some(c) = self.tokens[id].claims.clone()
            && let Some((level, target)) = self.revocation_matching(&c)
        {
            self.tokens[id].status = TokenStatus::Revoked { level, target };
        }
    }

    fn fail(&mut self, id: TokenId, e: &ClientError) {
        self.tokens[id].status = match e {
            ClientError::Broker(b) => TokenStatus::Refused(b.clone()),
            other => TokenStatus::Failed(other.to_string()),
        };
    }

    /// The first revocation entry of this session that matches these claims (spec §7.1).
    pub fn revocation_matching(&self, c: &Claims) -> Option<(RevokeLevel, String)> {
        self.revocations
            .iter()
            .find(|(level, target)| revokes(*level, target, c))
            .cloned()
    }

    /// Folds a worker event into the state, as of `now` (Unix seconds):
    /// pure, the clock is the caller's.
    pub fn apply(&mut self, ev: &Event, now: i64) {
        self.generation += 1;
        let about = match &ev.outcome {
            Outcome::AgentCreated { token, .. }
            | Outcome::Delegated { token, .. }
            | Outcome::Validated { token, .. }
            | Outcome::Released { token, .. }
            | Outcome::Renewed { new: token, .. } => {
                self.tokens.get(*token).map(|_| self.token_name(*token))
            }
            Outcome::Revoked { level, target, .. } => Some(format!("revoke {level} {target}")),
            _ => None,
        };
        for call in &ev.calls {
            self.log.push(LogEntry {
                at: now,
                call: call.clone(),
                about: about.clone(),
            });
        }
        if let Some(e) = ev.outcome.unreachable() {
            self.connection_error = Some(e.to_string());
        } else if !ev.calls.is_empty()
            || matches!(&ev.outcome, Outcome::Revalidated(r) if !r.is_empty())
        {
            self.connection_error = None;
            self.connected = true;
        }
        match &ev.outcome {
            Outcome::Health(_) => {}
            Outcome::AppReady(r) => {
                if let Ok(info) = r {
                    self.app = Some(info.clone());
                }
            }
            Outcome::AgentCreated {
                agent,
                token,
                result,
            } => match result {
                Ok(a) => {
                    self.agents[*agent].agent_id = Some(a.agent_id.clone());
                    self.issued(*token, a.access_token.clone(), a.expires_in);
                }
                Err(e) => self.fail(*token, e),
            },
            Outcome::Delegated { token, result } => match result {
                Ok(d) => self.issued(*token, d.access_token.clone(), d.expires_in),
                Err(e) => self.fail(*token, e),
            },
            Outcome::Validated { token, result } => self.validated(*token, result, now),
            Outcome::Renewed { old, new, result } => match result {
                Ok(r) => {
                    self.tokens[*old].status = TokenStatus::RenewedAway;
                    self.issued(*new, r.access_token.clone(), r.expires_in);
                }
                Err(e) => {
                    self.fail(*new, e);
                    self.renewal_refused(*old, *new);
                }
            },
            Outcome::Released { token, result } => {
                if result.is_ok() {
                    self.tokens[*token].status = TokenStatus::Released;
                }
            }
            Outcome::Audit(r) => {
                self.audit = Some(match r {
                    Ok(read) => Ok(AuditTrail::new(read.clone(), now)),
                    Err(e) => Err(e.to_string()),
                });
            }
            Outcome::Revalidated(answers) => self.revalidated(answers, now),
            // observe folds these into its own reconstruction.
            Outcome::AuditSince { .. } => {}
            Outcome::Revoked {
                level,
                target,
                result,
            } => {
                if result.is_ok() {
                    self.revoked(*level, target, now);
                }
            }
        }
    }

    /// A `validate` answer for one token.
    fn validated(
        &mut self,
        token: TokenId,
        result: &Result<crate::broker::types::ValidateResponse, ClientError>,
        now: i64,
    ) {
        // An imported token the broker would not even look at (e.g.
        // 413: too large) is not left "pending" forever.
        if let Err(e) = result
            && self.tokens[token].status == TokenStatus::Pending
        {
            self.fail(token, e);
        }
        if let Ok(v) = result {
            let t = &mut self.tokens[token];
            t.validated = Some(Validation {
                at: now,
                valid: v.valid,
            });
            match (v.valid, &t.status) {
                (true, _) => t.status = TokenStatus::Valid,
                (false, TokenStatus::Valid | TokenStatus::Pending) => {
                    t.status = if t.exp().is_some_and(|e| now > e) {
                        TokenStatus::Expired
                    } else {
                        TokenStatus::Invalid
                    }
                }
                (false, _) => {}
            }
        }
    }

    /// The live check's answers: tokens that died elsewhere are marked, and
    /// said in the log once.
    fn revalidated(
        &mut self,
        answers: &[(
            TokenId,
            Call,
            Result<crate::broker::types::ValidateResponse, ClientError>,
        )],
        now: i64,
    ) {
        self.revalidated_at = Some(now);
        self.live_pending = false;
        for (id, call, r) in answers {
            let Some(t) = self.tokens.get_mut(*id) else {
                continue;
            };
            let before = t.status.clone();
            let mut call = call.clone();
            match r {
                Ok(v) => {
                    t.validated = Some(Validation {
                        at: now,
                        valid: v.valid,
                    });
                    if v.valid || before != TokenStatus::Valid {
                        continue;
                    }
                    let expired = t.exp().is_some_and(|e| now > e);
                    t.status = if expired {
                        TokenStatus::Expired
                    } else {
                        TokenStatus::Invalid
                    };
                    if expired {
                        continue;
                    }
                    let name = self.token_name(*id);
                    call.error = Some(format!(
                        "live check: {name} died elsewhere — the broker now says it is invalid"
                    ));
                }
                // Only the first failure of a quiet check is worth a line.
                Err(_) if self.connection_error.is_some() => continue,
                Err(_) => {}
            }
            let about = Some(self.token_name(*id));
            self.log.push(LogEntry {
                at: now,
                call,
                about,
            });
        }
    }

    /// A revocation the broker accepted: every live token it matches dies
    /// (the first cause wins: a token already dead keeps its cause).
    fn revoked(&mut self, level: RevokeLevel, target: &str, now: i64) {
        self.revocations.push((level, target.to_string()));
        for i in 0..self.tokens.len() {
            let t = &self.tokens[i];
            // Another client's token (merged view): its status is the
            // trail's; the revocation is predicted until the trail shows it.
            if t.foreign || t.status_at(now) != TokenStatus::Valid {
                continue;
            }
            if let Some(c) = &t.claims
                && let Some((l, tg)) = self.revocation_matching(c)
            {
                self.tokens[i].status = TokenStatus::Revoked {
                    level: l,
                    target: tg,
                };
            }
        }
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
mod tests {
    use super::*;
    use crate::broker::types::{DelegateResponse, RevokeResponse, ValidateResponse};
    use crate::worker::Outcome;
    use ed25519_dalek::SigningKey;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn token(sub: &str, scope: &[&str], chain: Vec<jwt::DelegRecord>, exp: i64) -> String {
        let k = key();
        let claims = Claims {
            sub: sub.into(),
            exp,
            iat: exp - 60,
            nbf: exp - 60,
            jti: format!("jti-{sub}-{}", chain.len()),
            scope: scope.iter().map(|s| s.to_string()).collect(),
            task_id: "task".into(),
            orch_id: "orch".into(),
            chain_hash: if chain.is_empty() {
                String::new()
            } else {
                jwt::chain_hash(&chain)
            },
            delegation_chain: chain,
            ..Claims::default()
        };
        jwt::sign(&claims, &k, &jwt::kid(&k.verifying_key()))
    }

    fn ev(outcome: Outcome) -> Event {
        Event {
            request: 1,
            calls: vec![],
            outcome,
        }
    }

    fn agent(app: &mut App, name: &str, scope: &[&str]) -> TokenId {
        let scope: Vec<String> = scope.iter().map(|s| s.to_string()).collect();
        let (a, t) = app.begin_agent(name, "orch", "task", &scope, None);
        let sub = format!("spiffe://agentwrit.local/agent/orch/task/{name}");
        let raw = token(
            &sub,
            &scope.iter().map(String::as_str).collect::<Vec<_>>(),
            vec![],
            unix_now() + 300,
        );
        app.apply(
            &ev(Outcome::AgentCreated {
                agent: a,
                token: t,
                result: Ok(crate::broker::client::Agent {
                    agent_id: sub,
                    access_token: raw,
                    expires_in: 300,
                    scope,
                    task_id: "task".into(),
                    orch_id: "orch".into(),
                    key: key(),
                }),
            }),
            unix_now(),
        );
        t
    }

    #[test]
    fn registration_then_delegation_builds_a_chain() {
        let mut app = App::new("http://x", true, Some(key().verifying_key()));
        let orch = agent(
            &mut app,
            "orchestrator",
            &["read:config:*", "write:deploy:*"],
        );
        agent(&mut app, "analyst", &["read:config:*"]);
        let hop1 =
            app.begin_delegation(orch, 1, &["read:config:production".into()], "hop1", Some(3));
        assert_eq!(app.status(hop1, unix_now()), TokenStatus::Pending);
        let rec = jwt::DelegRecord {
            agent: "spiffe://agentwrit.local/agent/orch/task/orchestrator".into(),
            scope: vec!["read:config:*".into(), "write:deploy:*".into()],
            delegated_at: "2026-01-01T00:00:00Z".into(),
            signature: String::new(),
        };
        let raw = token(
            "spiffe://agentwrit.local/agent/orch/task/analyst",
            &["read:config:production"],
            vec![rec.clone()],
            unix_now() + 60,
        );
        app.apply(
            &ev(Outcome::Delegated {
                token: hop1,
                result: Ok(DelegateResponse {
                    access_token: raw,
                    expires_in: 60,
                    delegation_chain: vec![rec],
                }),
            }),
            unix_now(),
        );
        let t = app.token("hop1").unwrap();
        assert_eq!(t.status_at(unix_now()), TokenStatus::Valid);
        assert_eq!(t.depth(), 1);
        assert!(t.verification.as_ref().unwrap().signature);
        let chain = app.chain(hop1);
        assert_eq!(
            chain.iter().map(|h| h.who.as_str()).collect::<Vec<_>>(),
            ["orchestrator", "analyst"]
        );
        assert_eq!(
            chain[1].attenuation,
            vec![
                (
                    "read:config:*".into(),
                    scope::Fate::Narrowed(vec!["read:config:production".into()])
                ),
                ("write:deploy:*".into(), scope::Fate::Dropped)
            ]
        );
    }

    #[test]
    fn refused_delegation_is_kept_with_the_brokers_words_and_permits_nothing() {
        let mut app = App::new("http://x", true, None);
        let orch = agent(&mut app, "orchestrator", &["read:config:*"]);
        agent(&mut app, "deployer", &["write:deploy:*"]);
        let hop = app.begin_delegation(orch, 1, &["write:deploy:x".into()], "hop2", None);
        let refusal = BrokerError {
            status: 403,
            error_code: "scope_violation".into(),
            detail: "delegated scope exceeds delegator scope".into(),
            request_id: "r".into(),
        };
        app.apply(
            &ev(Outcome::Delegated {
                token: hop,
                result: Err(ClientError::Broker(refusal.clone())),
            }),
            unix_now(),
        );
        assert_eq!(app.status(hop, unix_now()), TokenStatus::Refused(refusal));
        let rows = app.probe("write:deploy:x", unix_now());
        let row = rows.iter().find(|r| r.token == hop).unwrap();
        assert!(matches!(
            row.verdict,
            ProbeVerdict::Dead(TokenStatus::Refused(_))
        ));
        let orch_row = rows.iter().find(|r| r.token == orch).unwrap();
        assert!(matches!(
            orch_row.verdict,
            ProbeVerdict::Denies(scope::Denial::ActionDiffers { .. })
        ));
        // The chain it would have had.
        assert_eq!(app.chain(hop).len(), 2);
    }

    #[test]
    fn revocation_follows_the_brokers_rule_and_applies_to_future_tokens() {
        let mut app = App::new("http://x", true, None);
        let a = agent(&mut app, "a", &["read:data:*"]);
        let b = agent(&mut app, "b", &["read:data:*"]);
        let sub_a = app.agents[0].agent_id.clone().unwrap();
        app.apply(
            &ev(Outcome::Revoked {
                level: RevokeLevel::Agent,
                target: sub_a.clone(),
                result: Ok(RevokeResponse {
                    revoked: true,
                    level: "agent".into(),
                    target: sub_a.clone(),
                    count: 1,
                }),
            }),
            unix_now(),
        );
        assert!(matches!(
            app.status(a, unix_now()),
            TokenStatus::Revoked {
                level: RevokeLevel::Agent,
                ..
            }
        ));
        assert_eq!(app.status(b, unix_now()), TokenStatus::Valid);
        // A token issued to A later is born revoked.
        let later = app.begin_delegation(b, 0, &["read:data:x".into()], "to-a", None);
        let raw = token(&sub_a, &["read:data:x"], vec![], unix_now() + 60);
        app.apply(
            &ev(Outcome::Delegated {
                token: later,
                result: Ok(DelegateResponse {
                    access_token: raw,
                    expires_in: 60,
                    delegation_chain: vec![],
                }),
            }),
            unix_now(),
        );
        assert!(matches!(
            app.status(later, unix_now()),
            TokenStatus::Revoked { .. }
        ));
    }

    #[test]
    fn validation_and_expiry() {
        let mut app = App::new("http://x", true, None);
        let a = agent(&mut app, "a", &["read:data:*"]);
        assert_eq!(
            app.tokens[a].status_at(unix_now() + 10_000),
            TokenStatus::Expired
        );
        app.apply(
            &ev(Outcome::Validated {
                token: a,
                result: Ok(ValidateResponse {
                    valid: false,
                    claims: None,
                    error: Some("token is invalid or expired".into()),
                }),
            }),
            unix_now(),
        );
        assert_eq!(app.status(a, unix_now()), TokenStatus::Invalid);
        assert_eq!(
            app.tokens[a].validated.as_ref().map(|v| v.valid),
            Some(false)
        );
    }

    #[test]
    fn renewal_moves_the_label() {
        let mut app = App::new("http://x", true, None);
        let a = agent(&mut app, "a", &["read:data:*"]);
        let new = app.begin_renewal(a, None, None);
        assert_eq!(app.labels["a"], new);
        let raw = token("spiffe://x/a", &["read:data:*"], vec![], unix_now() + 300);
        app.apply(
            &ev(Outcome::Renewed {
                old: a,
                new,
                result: Ok(crate::broker::types::RenewResponse {
                    access_token: raw,
                    expires_in: 300,
                }),
            }),
            unix_now(),
        );
        assert_eq!(app.status(a, unix_now()), TokenStatus::RenewedAway);
        assert_eq!(app.status(new, unix_now()), TokenStatus::Valid);
        assert_eq!(app.tokens[a].label.as_deref(), Some("a (before renewal)"));
    }

    fn read(ids: std::ops::RangeInclusive<usize>, total: i64, stopped: Option<&str>) -> AuditRead {
        let events: Vec<AuditEvent> = crate::broker::types::test_trail(*ids.end())
            .into_iter()
            .skip(*ids.start() - 1)
            .collect();
        AuditRead {
            events,
            total,
            first: *ids.start() - 1,
            stopped: stopped.map(str::to_string),
        }
    }

    #[test]
    fn an_audit_trail_says_which_part_of_the_broker_s_it_is() {
        let whole = AuditTrail::new(read(1..=5, 5, None), 0);
        assert!(whole.whole());
        assert_eq!(whole.cut_words(), None);
        let (ok, w) = whole.chain_words();
        assert!(
            ok && w.starts_with("consistent over 5 events from the broker's first"),
            "{w}"
        );
        let newest = AuditTrail::new(read(96..=100, 100, None), 0);
        assert_eq!(
            newest.cut_words().as_deref(),
            Some("the newest 5 of 100 events")
        );
        let (ok, w) = newest.chain_words();
        assert!(
            ok && w.contains("from evt-000096 — the trail does not start"),
            "{w}"
        );
        let first = AuditTrail::new(read(1..=5, 100, Some("stopped at the cap")), 0);
        assert_eq!(
            first.cut_words().as_deref(),
            Some("the first 5 of 100 events (stopped at the cap)")
        );
        let mut genesis = read(1..=2, 2, None);
        genesis.events[0].prev_hash.clear();
        genesis.events[0].hash = genesis.events[0].compute_hash();
        let (ok, w) = AuditTrail::new(genesis, 0).chain_words();
        assert!(!ok && w.contains("64 zeros"), "{w}");
    }
}

#[cfg(test)]
mod liveness_tests {
    use super::*;

    /// The cheap liveness the chain pane counts agrees with the status
    /// the views show, at every moment of a token whose ttl is known or not.
    #[test]
    fn liveness_at_agrees_with_status_at() {
        let mut app = App::new("http://127.0.0.1:1", false, None);
        let holder = app.outside_agent("spiffe://agentwrit.local/agent/o/t/x");
        let statuses = [
            TokenStatus::Valid,
            TokenStatus::LikelyValid("young".into()),
            TokenStatus::Unknown("cannot tell".into()),
            TokenStatus::Released,
        ];
        for status in statuses {
            for exp in [1_300, EXP_UNKNOWN] {
                let id = app.add_known(Known {
                    holder,
                    kind: TokenKind::Registration,
                    label: "t".into(),
                    claims: Some(Claims {
                        iat: 1_000,
                        exp,
                        ..Claims::default()
                    }),
                    requested: Vec::new(),
                    status: status.clone(),
                    notes: Vec::new(),
                    foreign: false,
                });
                let t = &app.tokens[id];
                for now in [1_000, 1_059, 1_061, 1_301, 1_000 + 86_401] {
                    assert_eq!(
                        t.liveness_at(now),
                        t.status_at(now).liveness(),
                        "{status:?} exp {exp} at {now}"
                    );
                }
            }
        }
        // Unknown is never dead within AA_MAX_TTL; likely valid turns unknown after 60 s.
        let unknown = app.tokens.iter().find(|t| {
            matches!(t.status, TokenStatus::LikelyValid(_)) && t.exp() == Some(EXP_UNKNOWN)
        });
        let t = unknown.unwrap();
        assert!(matches!(t.status_at(1_061), TokenStatus::Unknown(_)));
        assert_eq!(t.liveness_at(1_000 + 86_000), Liveness::Maybe);
    }
}
