//! A token as the explorer knows it: its status (live, may be, dead), what
//! the probe answers of it, and the §7.1 rule for its claims.

use super::*;

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
    pub(in crate::app) status: TokenStatus,
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
