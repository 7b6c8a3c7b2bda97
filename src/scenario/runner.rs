//! Runs a [`Script`] step by step: each step becomes worker commands, their
//! events are folded into the shared [`App`] state, and `expect` lines are
//! checked against that state. The headless `--script` mode and the
//! interactive step-through both drive this runner.

use std::time::Duration;

use super::{AuditFilter, ClaimCheck, Expectation, ImportSource, Script, Status, Step, StepKind};
use crate::app::{App, Hop, ProbeRow, TokenId, TokenStatus, unix_now};
use crate::broker::BrokerError;
use crate::broker::types::RevokeLevel;
use crate::scope;
use crate::worker::{Call, Command, Event, Outcome, Secret, WorkerHandle};

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
    pub label: String,
    pub holder: String,
    /// The broker's `validate` answer after the revocation.
    pub valid_after: Option<bool>,
    /// What spec §7.1 predicts.
    pub predicted_dead: bool,
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
    /// Events the broker holds.
    pub total: usize,
    /// The matching events: (id, event type, agent, outcome, detail).
    pub events: Vec<AuditLine>,
    /// `verified` or where the hash chain first breaks.
    pub chain: String,
    pub chain_ok: bool,
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
    pub kind: &'static str,
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
    pub calls: Vec<Call>,
}

impl StepReport {
    fn new(index: usize, step: &super::Step) -> Self {
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
            calls: Vec::new(),
        }
    }
}

/// Drives a script through the worker, one step at a time. The worker is
/// passed to each step, so the caller (the TUI event loop) keeps it between
/// steps for its own commands.
pub struct Runner {
    script: Script,
    pos: usize,
    app_ready: bool,
    halted: Option<String>,
    /// Every step run so far, scripted or not, in order: what export writes.
    journal: Vec<Step>,
}

fn token_view(app: &App, id: TokenId, now: i64) -> TokenView {
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
                crate::app::ProbeVerdict::Denies(d) => ("denies", None, Some(d.to_string())),
                crate::app::ProbeVerdict::Dead(s) => ("dead", None, Some(status_reason(&s))),
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

/// A status in words, with the broker's words for a refusal.
pub fn status_reason(s: &TokenStatus) -> String {
    match s {
        TokenStatus::Refused(b) => format!("refused ({} {}: {})", b.status, b.error_code, b.detail),
        TokenStatus::Revoked { level, .. } => format!("revoked at level {level}"),
        TokenStatus::Failed(why) => format!("failed ({why})"),
        TokenStatus::Invalid => "invalid (the broker says so)".into(),
        other => other.word().to_string(),
    }
}

impl Runner {
    pub fn new(script: Script) -> Self {
        Runner {
            script,
            pos: 0,
            app_ready: false,
            halted: None,
            journal: Vec::new(),
        }
    }

    /// Every step run so far (scripted and ad hoc), in order.
    pub fn journal(&self) -> &[Step] {
        &self.journal
    }

    /// Runs a step that is not part of the script (an explorer action). It
    /// joins the journal, so an export replays it; the script position stays.
    pub async fn run_adhoc(
        &mut self,
        app: &mut App,
        w: &mut WorkerHandle,
        kind: StepKind,
    ) -> StepReport {
        let step = Step {
            line: 0,
            source: super::write::step_source(&kind),
            kind,
        };
        let mut r = StepReport::new(0, &step);
        let mut calls = Vec::new();
        let result = self
            .run_step(app, w, &step.kind, 0, &mut r, &mut calls)
            .await;
        tracing::info!(kind = r.kind, result = result.word(), "explorer action");
        r.calls = calls;
        r.result = result;
        self.journal.push(step);
        r
    }

    pub fn script(&self) -> &Script {
        &self.script
    }

    /// Index of the next step to run.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn done(&self) -> bool {
        self.pos >= self.script.steps.len()
    }

    /// Why the run stopped early, if it did.
    pub fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    /// Sends a command and waits for its event, folding every event that
    /// arrives meanwhile into `app`.
    async fn exec(
        w: &mut WorkerHandle,
        app: &mut App,
        cmd: Command,
        calls: &mut Vec<Call>,
    ) -> Option<Event> {
        let id = w.send(cmd);
        while let Some(ev) = w.events.recv().await {
            app.apply(&ev);
            if ev.request == id {
                calls.extend(ev.calls.iter().cloned());
                return Some(ev);
            }
        }
        None
    }

    /// Sends several commands at once and waits for all their events.
    async fn exec_all(
        w: &mut WorkerHandle,
        app: &mut App,
        cmds: Vec<Command>,
        calls: &mut Vec<Call>,
    ) -> Vec<Event> {
        let mut ids: Vec<u64> = cmds.into_iter().map(|c| w.send(c)).collect();
        let mut out = Vec::new();
        while !ids.is_empty() {
            let Some(ev) = w.events.recv().await else {
                break;
            };
            app.apply(&ev);
            if let Some(i) = ids.iter().position(|id| *id == ev.request) {
                ids.swap_remove(i);
                calls.extend(ev.calls.iter().cloned());
                out.push(ev);
            }
        }
        out
    }

    /// Runs the next step; `None` when the script is finished.
    pub async fn step(&mut self, app: &mut App, w: &mut WorkerHandle) -> Option<StepReport> {
        let step = self.script.steps.get(self.pos)?.clone();
        self.pos += 1;
        let mut r = StepReport::new(self.pos, &step);
        if self.halted.is_some() {
            r.result = StepResult::NotRun;
            if let StepKind::Expect(_) = step.kind {
                r.expectation = Some(ExpectResult {
                    ok: false,
                    reason: "not checked: the broker could not be reached".into(),
                });
            }
            return Some(r);
        }
        let mut calls = Vec::new();
        let result = self
            .run_step(app, w, &step.kind, step.line, &mut r, &mut calls)
            .await;
        self.journal.push(step);
        r.calls = calls;
        tracing::info!(
            step = r.index,
            line = r.line,
            kind = r.kind,
            result = result.word(),
            "step"
        );
        r.result = result;
        if let StepResult::Unreachable(why) = &r.result {
            self.halted = Some(why.clone());
        }
        Some(r)
    }

    async fn ensure_app(
        &mut self,
        app: &mut App,
        w: &mut WorkerHandle,
        calls: &mut Vec<Call>,
        ceiling: Option<Vec<String>>,
    ) -> Result<(), StepResult> {
        if self.app_ready && ceiling.is_none() {
            return Ok(());
        }
        let ceiling = ceiling.unwrap_or_else(|| self.script.agent_scopes());
        let name = format!("chainview-{}", crate::broker::embedded::short_id());
        let ev = Self::exec(w, app, Command::SetupApp { name, ceiling }, calls)
            .await
            .ok_or_else(|| StepResult::Unreachable("the broker worker stopped".into()))?;
        match ev.outcome {
            Outcome::AppReady(Ok(_)) => {
                self.app_ready = true;
                Ok(())
            }
            Outcome::AppReady(Err(e)) if e.is_unreachable() => Err(StepResult::Unreachable(
                format!("setting up the app failed: {e}"),
            )),
            // Reached, but refused (a wrong admin secret, say): each step
            // that needs the app says why, rather than being skipped.
            Outcome::AppReady(Err(e)) => {
                Err(StepResult::Error(format!("setting up the app failed: {e}")))
            }
            _ => Err(StepResult::Error("unexpected worker answer".into())),
        }
    }

    fn live_raw(&self, app: &App, label: &str) -> Result<(TokenId, Secret), StepResult> {
        let id = *app
            .labels
            .get(label)
            .ok_or_else(|| StepResult::Error(format!("unknown token '{label}'")))?;
        let t = &app.tokens[id];
        match (&t.raw, t.status_at(unix_now())) {
            (Some(raw), _) => Ok((id, Secret(raw.clone()))),
            (None, s) => Err(StepResult::Error(format!(
                "'{label}' holds no token: {}",
                status_reason(&s)
            ))),
        }
    }

    fn outcome_result(ev: Option<Event>) -> (StepResult, Option<Event>) {
        match ev {
            None => (
                StepResult::Unreachable("the broker worker stopped".into()),
                None,
            ),
            Some(ev) => {
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
                    Some(crate::broker::ClientError::Broker(b)) => {
                        (StepResult::Refused(b), Some(ev))
                    }
                    Some(other) => (StepResult::Error(other.to_string()), Some(ev)),
                    None => (StepResult::Ok, Some(ev)),
                }
            }
        }
    }

    async fn run_step(
        &mut self,
        app: &mut App,
        w: &mut WorkerHandle,
        kind: &StepKind,
        line: usize,
        r: &mut StepReport,
        calls: &mut Vec<Call>,
    ) -> StepResult {
        let now = unix_now;
        match kind {
            StepKind::Title(t) => {
                r.title = Some(t.clone());
                StepResult::Ok
            }
            StepKind::Say(t) => {
                r.say = Some(t.clone());
                StepResult::Ok
            }
            StepKind::App { ceiling } => {
                match self.ensure_app(app, w, calls, Some(ceiling.clone())).await {
                    Ok(()) => StepResult::Ok,
                    Err(e) => e,
                }
            }
            StepKind::Agent {
                name,
                orch,
                task,
                scope,
                ttl,
            } => {
                if let Err(e) = self.ensure_app(app, w, calls, None).await {
                    return e;
                }
                let (agent, token) = app.begin_agent(name, orch, task, scope, Some(line));
                let cmd = Command::CreateAgent {
                    agent,
                    token,
                    orch: orch.clone(),
                    task: task.clone(),
                    scope: scope.clone(),
                    ttl: *ttl,
                };
                let ev = Self::exec(w, app, cmd, calls).await;
                r.tokens.push(token_view(app, token, now()));
                Self::outcome_result(ev).0
            }
            StepKind::Delegate {
                from,
                to,
                scope: want,
                ttl,
                label,
            } => {
                let (parent, bearer) = match self.live_raw(app, from) {
                    Ok(x) => x,
                    Err(e) => return e,
                };
                let (to_id, to_agent) = if to.starts_with("spiffe://") {
                    let id = app.outside_agent(to);
                    (id, &app.agents[id])
                } else {
                    match app.agent_by_name(to) {
                        Some(x) => x,
                        None => return StepResult::Error(format!("unknown agent '{to}'")),
                    }
                };
                let Some(spiffe) = to_agent.agent_id.clone() else {
                    return StepResult::Error(format!(
                        "agent '{to}' is not registered (its registration failed)"
                    ));
                };
                let token = app.begin_delegation(parent, to_id, want, label, Some(line));
                let cmd = Command::Delegate {
                    token,
                    bearer,
                    to: spiffe,
                    scope: want.clone(),
                    ttl: *ttl,
                };
                let (res, _) = Self::outcome_result(Self::exec(w, app, cmd, calls).await);
                r.tokens.push(token_view(app, token, now()));
                r.chain = app.chain(token);
                if let StepResult::Refused(b) = &res
                    && b.error_code == "scope_violation"
                    && b.detail.contains("scope")
                {
                    let held = app.tokens[parent].scope().to_vec();
                    r.not_held = scope::explain(want, &held)
                        .into_iter()
                        .filter_map(|e| match e.verdict {
                            scope::Verdict::Denied(d) => Some(NotHeld {
                                scope: e.requested,
                                reason: d.to_string(),
                            }),
                            scope::Verdict::Covered { .. } => None,
                        })
                        .collect();
                }
                res
            }
            StepKind::Validate(labels) => {
                self.each(app, w, labels, r, calls, |token, raw| Command::Validate {
                    token,
                    raw,
                })
                .await
            }
            StepKind::Renew { label, new_label } => {
                let (old, raw) = match self.live_raw(app, label) {
                    Ok(x) => x,
                    Err(e) => return e,
                };
                let new = app.begin_renewal(old, new_label.as_deref(), Some(line));
                let (res, _) = Self::outcome_result(
                    Self::exec(w, app, Command::Renew { old, new, raw }, calls).await,
                );
                r.tokens.push(token_view(app, old, now()));
                r.tokens.push(token_view(app, new, now()));
                res
            }
            StepKind::Release(labels) => {
                self.each(app, w, labels, r, calls, |token, raw| Command::Release {
                    token,
                    raw,
                })
                .await
            }
            StepKind::Revoke { level, target } => {
                self.revoke(app, w, *level, target, r, calls).await
            }
            StepKind::Probe(s) => {
                r.probe = Some(probe_table(app, s, now()));
                StepResult::Ok
            }
            StepKind::Wait(d) => {
                tokio::time::sleep(*d).await;
                StepResult::Ok
            }
            StepKind::Import { label, source } => {
                let raw = match source {
                    ImportSource::Token(t) => t.clone(),
                    ImportSource::Env(v) => match std::env::var(v) {
                        Ok(t) => t,
                        Err(_) => {
                            return StepResult::Error(format!(
                                "environment variable {v} is not set (it should hold the token to import as '{label}')"
                            ));
                        }
                    },
                    ImportSource::File(p) => match read_token_file(p) {
                        Ok(t) => t,
                        Err(e) => return StepResult::Error(format!("cannot read {p}: {e}")),
                    },
                };
                let id = match app.import(label, &raw, Some(line)) {
                    Ok(id) => id,
                    Err(e) => return StepResult::Error(format!("import rejected: {e}")),
                };
                let cmd = Command::Validate {
                    token: id,
                    raw: Secret(raw.trim().to_string()),
                };
                let (res, _) = Self::outcome_result(Self::exec(w, app, cmd, calls).await);
                r.tokens.push(token_view(app, id, now()));
                r.chain = app.chain(id);
                res
            }
            StepKind::Audit(f) => match self.fetch_audit(app, w, calls).await {
                Err(e) => e,
                Ok(()) => {
                    r.audit = audit_report(app, f);
                    StepResult::Ok
                }
            },
            StepKind::Expect(e) => {
                let res = self.expect(app, w, e, calls).await;
                match res {
                    Err(unreachable) => unreachable,
                    Ok(mut x) => {
                        if !x.ok {
                            // Beside what was found, what was asked for.
                            x.reason = format!(
                                "{}; expected {}",
                                x.reason,
                                super::write::expectation_text(e)
                            );
                        }
                        r.expectation = Some(x);
                        StepResult::Ok
                    }
                }
            }
        }
    }

    /// Sends one command per labelled token at once (validate, release) and
    /// reports each token afterwards.
    async fn each(
        &self,
        app: &mut App,
        w: &mut WorkerHandle,
        labels: &[String],
        r: &mut StepReport,
        calls: &mut Vec<Call>,
        make: impl Fn(TokenId, Secret) -> Command,
    ) -> StepResult {
        let mut ids = Vec::new();
        let mut cmds = Vec::new();
        for l in labels {
            match self.live_raw(app, l) {
                Ok((token, raw)) => {
                    ids.push(token);
                    cmds.push(make(token, raw));
                }
                Err(e) => return e,
            }
        }
        let evs = Self::exec_all(w, app, cmds, calls).await;
        for id in ids {
            r.tokens.push(token_view(app, id, unix_now()));
        }
        self.worst(evs)
    }

    fn worst(&self, evs: Vec<Event>) -> StepResult {
        let mut worst = StepResult::Ok;
        for ev in evs {
            let (res, _) = Self::outcome_result(Some(ev));
            match (&worst, &res) {
                (_, StepResult::Unreachable(_)) => worst = res,
                (StepResult::Ok, StepResult::Refused(_) | StepResult::Error(_)) => worst = res,
                _ => {}
            }
        }
        worst
    }

    async fn revoke(
        &mut self,
        app: &mut App,
        w: &mut WorkerHandle,
        level: RevokeLevel,
        target: &str,
        r: &mut StepReport,
        calls: &mut Vec<Call>,
    ) -> StepResult {
        let wire_target = match app.revoke_target(level, target) {
            Ok(t) => t,
            Err(e) => return StepResult::Error(e),
        };
        let before = app.live_tokens();
        let (res, _) = Self::outcome_result(
            Self::exec(
                w,
                app,
                Command::Revoke {
                    level,
                    target: wire_target,
                },
                calls,
            )
            .await,
        );
        if res != StepResult::Ok {
            return res;
        }
        // Ask the broker about every token that was alive: which die, which live on.
        let ids: Vec<TokenId> = before.iter().map(|(id, _)| *id).collect();
        let cmds: Vec<Command> = before
            .into_iter()
            .map(|(token, raw)| Command::Validate { token, raw })
            .collect();
        let evs = Self::exec_all(w, app, cmds, calls).await;
        let worst = self.worst(evs);
        for id in ids {
            let t = &app.tokens[id];
            r.fates.push(Fate {
                label: app.token_name(id),
                holder: app.agents[t.holder].name.clone(),
                valid_after: t.validated.as_ref().map(|v| v.valid),
                predicted_dead: matches!(t.status_at(unix_now()), TokenStatus::Revoked { .. }),
            });
        }
        worst
    }

    /// Fetches the whole audit trail into `app.audit`.
    async fn fetch_audit(
        &self,
        app: &mut App,
        w: &mut WorkerHandle,
        calls: &mut Vec<Call>,
    ) -> Result<(), StepResult> {
        let (res, _) = Self::outcome_result(Self::exec(w, app, Command::Audit, calls).await);
        match res {
            StepResult::Ok => Ok(()),
            other => Err(other),
        }
    }

    /// Judges an expectation. Status expectations ask the broker first.
    async fn expect(
        &mut self,
        app: &mut App,
        w: &mut WorkerHandle,
        e: &Expectation,
        calls: &mut Vec<Call>,
    ) -> Result<ExpectResult, StepResult> {
        let held = |ok: bool, reason: String| Ok(ExpectResult { ok, reason });
        match e {
            Expectation::Audit { filter, cmp, count } => {
                match self.fetch_audit(app, w, calls).await {
                    Err(StepResult::Unreachable(u)) => Err(StepResult::Unreachable(u)),
                    Err(other) => held(
                        false,
                        format!(
                            "the audit trail could not be read: {}",
                            match other {
                                StepResult::Refused(b) =>
                                    format!("{} {}: {}", b.status, b.error_code, b.detail),
                                StepResult::Error(e) => e,
                                o => o.word().to_string(),
                            }
                        ),
                    ),
                    Ok(()) => {
                        let Some(rep) = audit_report(app, filter) else {
                            return held(false, "no audit trail".into());
                        };
                        let n = rep.events.len();
                        let what = filter.event_type.as_deref().unwrap_or("audit");
                        held(
                            cmp.holds(n, *count) && rep.chain_ok,
                            format!(
                                "{n} matching {what} event{} of {} (want count{}{count}); hash chain {}",
                                if n == 1 { "" } else { "s" },
                                rep.total,
                                cmp.as_str(),
                                rep.chain
                            ),
                        )
                    }
                }
            }
            Expectation::Permits { label, scope: s } | Expectation::Denies { label, scope: s } => {
                let want_permit = matches!(e, Expectation::Permits { .. });
                let Some(t) = app.token(label) else {
                    return held(false, format!("unknown token '{label}'"));
                };
                let status = t.status_at(unix_now());
                let (permits, why) = if status.is_dead() {
                    (
                        false,
                        format!(
                            "{label} is {}: a dead token permits nothing",
                            status_reason(&status)
                        ),
                    )
                } else {
                    match scope::explain_one(s, t.scope()) {
                        scope::Verdict::Covered { by } => {
                            (true, format!("{label} permits {s} (granted by {by})"))
                        }
                        scope::Verdict::Denied(d) => (false, format!("{label} denies {s}: {d}")),
                    }
                };
                held(permits == want_permit, why)
            }
            Expectation::Denied {
                label,
                status,
                code,
                detail,
            } => {
                let Some(t) = app.token(label) else {
                    return held(false, format!("unknown token '{label}'"));
                };
                match t.status_at(unix_now()) {
                    TokenStatus::Refused(b) => {
                        let ok = status.is_none_or(|s| s == b.status)
                            && code.as_deref().is_none_or(|c| c == b.error_code)
                            && detail.as_deref().is_none_or(|d| d == b.detail);
                        held(
                            ok,
                            format!(
                                "{label} was refused: {} {} \"{}\"",
                                b.status, b.error_code, b.detail
                            ),
                        )
                    }
                    other => held(
                        false,
                        format!("{label} was not refused: it is {}", status_reason(&other)),
                    ),
                }
            }
            Expectation::Token {
                label,
                status,
                checks,
            } => {
                let Some(id) = app.labels.get(label).copied() else {
                    return held(false, format!("unknown token '{label}'"));
                };
                let mut reasons = Vec::new();
                let mut ok = true;
                if let Some(want) = status {
                    // Ask the broker now: the expectation is about what it says.
                    let broker_says = match app.tokens[id].raw.clone() {
                        Some(raw) => {
                            let ev = Self::exec(
                                w,
                                app,
                                Command::Validate {
                                    token: id,
                                    raw: Secret(raw),
                                },
                                calls,
                            )
                            .await;
                            let (res, ev) = Self::outcome_result(ev);
                            if let StepResult::Unreachable(_) = res {
                                return Err(res);
                            }
                            match ev.map(|e| e.outcome) {
                                Some(Outcome::Validated { result: Ok(v), .. }) => Some(v.valid),
                                _ => None,
                            }
                        }
                        None => None,
                    };
                    let st = app.status(id, unix_now());
                    let (good, why) = judge_status(*want, broker_says, &st);
                    ok &= good;
                    reasons.push(why);
                }
                let t = &app.tokens[id];
                for check in checks {
                    let Some(c) = &t.claims else {
                        ok = false;
                        reasons.push(format!(
                            "{label} has no claims ({})",
                            status_reason(&t.status_at(unix_now()))
                        ));
                        break;
                    };
                    match check {
                        ClaimCheck::Scope(want) => {
                            let good = &c.scope == want;
                            ok &= good;
                            reasons.push(format!("scope {}", c.scope.join(",")));
                        }
                        ClaimCheck::Ttl(want) => {
                            ok &= c.exp - c.iat == *want;
                            reasons.push(format!("ttl {} s", c.exp - c.iat));
                        }
                        ClaimCheck::Depth(want) => {
                            ok &= c.depth() == *want;
                            reasons.push(format!("depth {}", c.depth()));
                        }
                        ClaimCheck::Chain(want) => {
                            let names: Vec<String> = c
                                .delegation_chain
                                .iter()
                                .map(|rec| {
                                    app.agent_name(&rec.agent)
                                        .map(str::to_string)
                                        .unwrap_or_else(|| rec.agent.clone())
                                })
                                .collect();
                            ok &= &names == want;
                            let shown: Vec<String> = c
                                .delegation_chain
                                .iter()
                                .zip(&names)
                                .map(|(rec, n)| format!("{n} (held {})", rec.scope.join(",")))
                                .collect();
                            reasons.push(format!(
                                "chain {}",
                                if shown.is_empty() {
                                    "empty".into()
                                } else {
                                    shown.join(" → ")
                                }
                            ));
                        }
                    }
                }
                held(ok, format!("{label}: {}", reasons.join("; ")))
            }
        }
    }

    /// How long a `wait` step in the script sleeps in total (for planning).
    pub fn total_wait(&self) -> Duration {
        self.script
            .steps
            .iter()
            .map(|s| match s.kind {
                StepKind::Wait(d) => d,
                _ => Duration::ZERO,
            })
            .sum()
    }
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
    let (chain_ok, chain) = chain_words(trail);
    Some(AuditReport {
        total: trail.events.len(),
        events,
        chain,
        chain_ok,
    })
}

/// The hash-chain check in words.
pub fn chain_words(trail: &crate::app::AuditTrail) -> (bool, String) {
    use crate::broker::types::ChainBreak;
    match &trail.chain {
        Ok(()) => (
            true,
            format!("verified end to end over {} events", trail.events.len()),
        ),
        Err(ChainBreak::BadHash { id, .. }) => (
            false,
            format!("BROKEN at {id}: its hash does not match its contents"),
        ),
        Err(ChainBreak::BadLink { id, .. }) => (
            false,
            format!("BROKEN at {id}: its prev_hash is not the previous event's hash"),
        ),
    }
}

/// Judges a status expectation from the broker's `validate` answer and the known cause.
fn judge_status(want: Status, broker_valid: Option<bool>, st: &TokenStatus) -> (bool, String) {
    let said = match broker_valid {
        Some(true) => "the broker says valid".to_string(),
        Some(false) => format!(
            "the broker says invalid; chainview knows it is {}",
            status_reason(st)
        ),
        None => format!("never issued: {}", status_reason(st)),
    };
    let good = match want {
        Status::Valid => broker_valid == Some(true),
        Status::Invalid => broker_valid != Some(true),
        Status::Released => broker_valid == Some(false) && *st == TokenStatus::Released,
        Status::Revoked => {
            broker_valid == Some(false)
                && matches!(st, TokenStatus::Revoked { .. } | TokenStatus::RenewedAway)
        }
        Status::Expired => broker_valid == Some(false) && *st == TokenStatus::Expired,
    };
    (good, said)
}
/// Reads a token file, at most one byte past the largest token taken in, so
/// that `/dev/zero` or a huge file is refused without being read whole.
fn read_token_file(path: &str) -> std::io::Result<String> {
    // A token, plus one byte for a trailing newline.
    let bytes = super::read_at_most(std::fs::File::open(path)?, crate::jwt::MAX_TOKEN + 1)?
        .ok_or_else(|| std::io::Error::other("larger than any token a broker accepts (1 MiB)"))?;
    String::from_utf8(bytes).map_err(|_| std::io::Error::other("not UTF-8 text"))
}
