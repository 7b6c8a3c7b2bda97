//! What a step reports: its result, the tokens and chain it shows, probe
//! and audit tables, fates of a revocation, and the checks of an `expect`.
//! Plain data built from the [`App`]; the runner, the step machines, the
//! transcript and the views read it.

use super::AuditFilter;
use super::{Keyword, Step, StepKind};
use crate::app::{App, Hop, ProbeRow, TokenId};
use crate::broker::BrokerError;
use crate::worker::{Call, Event, Outcome};

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepResult {
    /// Done (for `expect`, the expectation is judged separately).
    Ok,
    /// The broker refused; the run continues.
    Refused(BrokerError),
    /// The step could not be carried out (e.g. the source token was refused).
    Error(String),
    /// The broker could not be reached; the run stops here.
    Unreachable(String),
    /// Not run because an earlier step could not reach the broker.
    NotRun,
}

impl StepResult {
    pub fn word(&self) -> &'static str {
        match self {
            StepResult::Ok => "ok",
            StepResult::Refused(_) => "refused",
            StepResult::Error(_) => "error",
            StepResult::Unreachable(_) => "unreachable",
            StepResult::NotRun => "not_run",
        }
    }
}

/// A token as a transcript shows it (the raw token redacted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenView {
    /// The token's entry in the app state.
    pub id: TokenId,
    pub label: String,
    pub holder: String,
    pub agent_id: Option<String>,
    pub token: Option<String>,
    pub expires_in: Option<i64>,
    pub scope: Vec<String>,
    pub depth: usize,
    pub status: String,
}

/// A requested scope the delegator did not hold, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotHeld {
    pub scope: String,
    pub reason: String,
}

/// A token's fate across a revocation, as the broker answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fate {
    pub token: TokenId,
    pub label: String,
    pub holder: String,
    /// The broker's `validate` answer after the revocation.
    pub valid_after: Option<bool>,
    /// What spec §7.1 predicts.
    pub predicted_dead: bool,
    /// Its status was one the trail cannot settle (observe's "may be"): a
    /// prediction that it dies is a prediction that it dies *if* it lived.
    pub unsure: bool,
    /// Another client's token (the merged view): no raw token to ask the
    /// broker about, the audit trail is to confirm.
    pub trail: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub scope: String,
    pub rows: Vec<ProbeLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeLine {
    pub token: String,
    pub holder: String,
    /// `permits`, `denies` or `dead`.
    pub verdict: &'static str,
    /// For permits: the granted scope that covers it.
    pub by: Option<String>,
    /// For denies: why (from `scope::explain`); for dead: the status.
    pub reason: Option<String>,
}

/// The broker's audit trail as an `audit` step shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Events the broker holds (its `total`).
    pub total: usize,
    /// Events read (fewer than `total` when the trail was longer than a
    /// read takes: then the newest were read).
    pub read: usize,
    /// Events of the trail before the first one read.
    pub first: usize,
    /// "the newest N of M events (…)" when the events read are not the
    /// whole trail.
    pub cut: Option<String>,
    /// The matching events: (id, event type, agent, outcome, detail).
    pub events: Vec<AuditLine>,
    /// What the hash chain check says (consistent over …), or where it
    /// first breaks.
    pub chain: String,
    pub chain_ok: bool,
}

impl AuditReport {
    /// Whether the events read are the broker's whole trail.
    pub fn whole(&self) -> bool {
        self.cut.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLine {
    pub id: String,
    pub event_type: String,
    /// Agent name when known, else the SPIFFE id (empty when none).
    pub agent: String,
    pub outcome: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectResult {
    pub ok: bool,
    pub reason: String,
}

/// Everything a transcript needs about one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// 1-based position in the script.
    pub index: usize,
    pub line: usize,
    pub source: String,
    pub kind: Keyword,
    pub result: StepResult,
    pub say: Option<String>,
    pub title: Option<String>,
    /// Tokens issued, refused, validated, renewed or released by this step.
    pub tokens: Vec<TokenView>,
    /// The chain after a delegation (also for a refused one: the attempted hop last).
    pub chain: Vec<Hop>,
    /// For a scope refusal: the requested scopes the delegator did not hold.
    pub not_held: Vec<NotHeld>,
    pub probe: Option<Probe>,
    pub fates: Vec<Fate>,
    pub audit: Option<AuditReport>,
    pub expectation: Option<ExpectResult>,
    /// Something the user should know although the step went through (an
    /// app ceiling that does not cover the scenario's).
    pub warning: Option<String>,
    pub calls: Vec<Call>,
}

impl StepReport {
    /// A report of no step (for a run that could not start one).
    pub fn empty() -> Self {
        Self::new(
            0,
            &Step {
                line: 0,
                source: String::new(),
                kind: StepKind::Say(String::new()),
            },
        )
    }

    pub(crate) fn new(index: usize, step: &super::Step) -> Self {
        StepReport {
            index,
            line: step.line,
            source: super::redact_source(&step.source),
            kind: step.kind.keyword(),
            result: StepResult::Ok,
            say: None,
            title: None,
            tokens: Vec::new(),
            chain: Vec::new(),
            not_held: Vec::new(),
            probe: None,
            fates: Vec::new(),
            audit: None,
            expectation: None,
            warning: None,
            calls: Vec::new(),
        }
    }
}

pub(crate) fn token_view(app: &App, id: TokenId, now: i64) -> TokenView {
    let t = &app.tokens[id];
    let holder = &app.agents[t.holder];
    TokenView {
        id,
        label: app.token_name(id),
        holder: holder.name.clone(),
        agent_id: holder.agent_id.clone(),
        token: t.redacted(),
        expires_in: t.expires_in,
        scope: t.scope().to_vec(),
        depth: app.depth(id),
        status: t.status_at(now).word().to_string(),
    }
}

/// The probe table for `requested`.
pub fn probe_table(app: &App, requested: &str, now: i64) -> Probe {
    let rows = app
        .probe(requested, now)
        .into_iter()
        .map(|ProbeRow { token, verdict }| {
            let t = &app.tokens[token];
            let (verdict, by, reason) = match verdict {
                crate::app::ProbeVerdict::Permits { by } => ("permits", Some(by), None),
                crate::app::ProbeVerdict::MayPermit { by, why } => {
                    ("may permit", Some(by), Some(why.reason()))
                }
                crate::app::ProbeVerdict::Denies(d) => ("denies", None, Some(d.to_string())),
                crate::app::ProbeVerdict::Dead(s) => ("dead", None, Some(s.reason())),
            };
            ProbeLine {
                token: app.token_name(token),
                holder: app.agents[t.holder].name.clone(),
                verdict,
                by,
                reason,
            }
        })
        .collect();
    Probe {
        scope: requested.to_string(),
        rows,
    }
}

/// A worker answer as a step result (the event kept for callers that read it).
pub(crate) fn outcome_result(ev: Option<Event>) -> (StepResult, Option<Event>) {
    let Some(ev) = ev else {
        return (
            StepResult::Unreachable("the broker worker stopped".into()),
            None,
        );
    };
    if let Some(e) = ev.outcome.unreachable() {
        return (StepResult::Unreachable(e.to_string()), Some(ev));
    }
    let err = match &ev.outcome {
        Outcome::AgentCreated { result: Err(e), .. }
        | Outcome::Delegated { result: Err(e), .. }
        | Outcome::Validated { result: Err(e), .. }
        | Outcome::Renewed { result: Err(e), .. }
        | Outcome::Released { result: Err(e), .. }
        | Outcome::Revoked { result: Err(e), .. }
        | Outcome::Audit(Err(e)) => Some(e.clone()),
        _ => None,
    };
    match err {
        Some(crate::broker::ClientError::Broker(b)) => (StepResult::Refused(b), Some(ev)),
        Some(other) => (StepResult::Error(other.to_string()), Some(ev)),
        None => (StepResult::Ok, Some(ev)),
    }
}

/// The worst of several answers: unreachable over refused/error over ok.
pub(crate) fn worst(evs: Vec<Event>) -> StepResult {
    let mut worst = StepResult::Ok;
    for ev in evs {
        let (res, _) = outcome_result(Some(ev));
        match (&worst, &res) {
            (_, StepResult::Unreachable(_)) => worst = res,
            (StepResult::Ok, StepResult::Refused(_) | StepResult::Error(_)) => worst = res,
            _ => {}
        }
    }
    worst
}

/// The fetched audit trail filtered as a script asks (exact matches).
pub fn audit_report(app: &App, f: &AuditFilter) -> Option<AuditReport> {
    let trail = app.audit.as_ref()?.as_ref().ok()?;
    let events = trail
        .events
        .iter()
        .filter(|e| f.matches(app, e, false))
        .map(|e| AuditLine {
            id: e.id.clone(),
            event_type: e.event_type.clone(),
            agent: app
                .agent_name(&e.agent_id)
                .map(str::to_string)
                .unwrap_or_else(|| e.agent_id.clone()),
            outcome: e.outcome.clone(),
            detail: e.detail.clone(),
        })
        .collect();
    let (chain_ok, chain) = trail.chain_words();
    let read = trail.events.len();
    Some(AuditReport {
        total: trail
            .total
            .and_then(|t| usize::try_from(t).ok())
            .unwrap_or(read)
            .max(trail.first + read),
        read,
        first: trail.first,
        cut: trail.cut_words(),
        events,
        chain,
        chain_ok,
    })
}
