//! What the worker and the app state share: the commands the worker is
//! asked to carry out, the events it answers with (each with the HTTP calls
//! it made), and the ids those refer to. Below both, so neither imports the
//! other.

use std::fmt;

use crate::broker::ClientError;
use crate::broker::client::Agent;
use crate::broker::types::*;

/// An agent: its index among the [`App`](crate::app::App)'s agents.
pub type AgentId = usize;
/// A token: its index among the [`App`](crate::app::App)'s tokens.
pub type TokenId = usize;

/// A token or secret that never prints whole in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", crate::jwt::redact(&self.0))
    }
}

/// What the worker is asked to do. Ids refer to entries of the app state.
#[derive(Debug, Clone)]
pub enum Command {
    Health,
    /// Embedded broker: register an app with this ceiling through the admin
    /// API, then log in as it. External broker: log in with the configured
    /// client credentials (the ceiling is the operator's).
    SetupApp {
        name: String,
        ceiling: Vec<String>,
    },
    CreateAgent {
        agent: AgentId,
        token: TokenId,
        orch: String,
        task: String,
        scope: Vec<String>,
        ttl: Option<i64>,
    },
    Delegate {
        token: TokenId,
        bearer: Secret,
        to: String,
        scope: Vec<String>,
        ttl: Option<i64>,
    },
    Validate {
        token: TokenId,
        raw: Secret,
    },
    Renew {
        old: TokenId,
        new: TokenId,
        raw: Secret,
    },
    Release {
        token: TokenId,
        raw: Secret,
    },
    Revoke {
        level: RevokeLevel,
        target: String,
    },
    /// Every audit event the broker holds (admin), page by page, oldest first.
    Audit,
    /// The audit events after the first `offset` (admin), at most `pages`
    /// pages of the broker's maximum: what `observe` polls for.
    AuditSince {
        offset: usize,
        pages: usize,
    },
    /// Asks the broker about each token at once (the explorer's live check).
    Revalidate(Vec<(TokenId, Secret)>),
}

/// How much one reading of an audit trail may take: events, and about
/// this many bytes of them (a broker that does not cap what clients plant
/// in details can send large events). Every paging caller — the explorer's
/// audit view and `audit` step, `observe` (live and `--print`) and `audit
/// dump` — stops there and says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadCap {
    pub events: usize,
    pub bytes: usize,
}

impl ReadCap {
    /// 200,000 events, 64 MiB.
    pub const DEFAULT: ReadCap = ReadCap {
        events: 200_000,
        bytes: 64 << 20,
    };

    /// A cap of `n` events, with bytes in the default's proportion (at least 1 MiB).
    pub fn events(n: usize) -> ReadCap {
        let per = Self::DEFAULT.bytes / Self::DEFAULT.events;
        ReadCap {
            events: n,
            bytes: n.saturating_mul(per).max(1 << 20),
        }
    }

    /// About how many bytes an event takes, as the cap counts them.
    pub fn weight(e: &AuditEvent) -> usize {
        e.detail.len() + e.agent_id.len() + e.resource.len() + e.task_id.len() + 256
    }
}

impl Default for ReadCap {
    fn default() -> ReadCap {
        ReadCap::DEFAULT
    }
}

/// What one reading of the audit trail got: the events, the broker's
/// `total`, where in the trail they start, and why it stopped short of the
/// end (the cap, or a broker whose pages do not add up), if it did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditRead {
    pub events: Vec<AuditEvent>,
    /// The broker's `total` on its last page.
    pub total: i64,
    /// How many events of the trail come before the first one read (the
    /// newest were read when the trail is longer than the cap).
    pub first: usize,
    /// Why the read stopped before the end of the trail.
    pub stopped: Option<String>,
}

impl AuditRead {
    /// Whether the events are the broker's whole trail.
    pub fn whole(&self) -> bool {
        self.first == 0 && self.stopped.is_none() && self.events.len() as i64 >= self.total
    }
}

/// One HTTP call as the event log shows it: the client's own record of the
/// exchange (real method, path, status, latency, refusal).
pub use crate::broker::client::Exchange as Call;

/// What an app session looks like to the rest of chainview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInfo {
    pub app_id: Option<String>,
    pub client_id: String,
    /// The ceiling, when chainview registered the app itself.
    pub ceiling: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Health(Result<Health, ClientError>),
    AppReady(Result<AppInfo, ClientError>),
    AgentCreated {
        agent: AgentId,
        token: TokenId,
        result: Result<Agent, ClientError>,
    },
    Delegated {
        token: TokenId,
        result: Result<DelegateResponse, ClientError>,
    },
    Validated {
        token: TokenId,
        result: Result<ValidateResponse, ClientError>,
    },
    Renewed {
        old: TokenId,
        new: TokenId,
        result: Result<RenewResponse, ClientError>,
    },
    Released {
        token: TokenId,
        result: Result<(), ClientError>,
    },
    Revoked {
        level: RevokeLevel,
        target: String,
        result: Result<RevokeResponse, ClientError>,
    },
    Audit(Result<AuditRead, ClientError>),
    /// New audit events from `offset` on, and the broker's `total`.
    AuditSince {
        offset: usize,
        result: Result<(Vec<AuditEvent>, i64), ClientError>,
    },
    /// One answer per token, each with its call (logged only when it tells
    /// something new, so a quiet live check does not flood the event log).
    Revalidated(Vec<(TokenId, Call, Result<ValidateResponse, ClientError>)>),
}

impl Outcome {
    /// The transport failure behind this outcome, if the broker could not be
    /// reached at all (connect, timeout, TLS, transport).
    pub fn unreachable(&self) -> Option<&ClientError> {
        let e = match self {
            Outcome::Health(Err(e))
            | Outcome::AppReady(Err(e))
            | Outcome::AgentCreated { result: Err(e), .. }
            | Outcome::Delegated { result: Err(e), .. }
            | Outcome::Validated { result: Err(e), .. }
            | Outcome::Renewed { result: Err(e), .. }
            | Outcome::Released { result: Err(e), .. }
            | Outcome::Revoked { result: Err(e), .. }
            | Outcome::Audit(Err(e))
            | Outcome::AuditSince { result: Err(e), .. } => e,
            Outcome::Revalidated(rs) => match rs.iter().find_map(|(_, _, r)| r.as_ref().err()) {
                Some(e) if rs.iter().all(|(_, _, r)| r.is_err()) => e,
                _ => return None,
            },
            _ => return None,
        };
        // A broker that answered, however oddly (a 200 that is not JSON, a
        // 204 or 418 where JSON was due), was reached: that step failed with
        // what it answered, and the rest still runs.
        e.is_unreachable().then_some(e)
    }
}

/// The worker's answer to one request.
#[derive(Debug, Clone)]
pub struct Event {
    /// The id given with the command.
    pub request: u64,
    pub calls: Vec<Call>,
    pub outcome: Outcome,
}
