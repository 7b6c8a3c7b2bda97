//! Runs a [`Script`] step by step: each step becomes worker commands, their
//! events are folded into the shared [`App`] state, and `expect` lines are
//! checked against that state. The headless `--script` mode and the
//! interactive step-through both drive this runner.

use std::time::{Duration, Instant};

use super::steps;
use super::{AuditFilter, Keyword, Script, Step, StepKind};
use crate::app::{App, Hop, ProbeRow, TokenId};
use crate::broker::BrokerError;
use crate::worker::{Call, Command, Event, Outcome, WorkerHandle};

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
            warning: None,
            calls: Vec::new(),
        }
    }
}

/// Where commands go: the worker, or a test's recorder. Returns the request
/// id the answer will carry.
pub trait Outbox {
    fn send(&mut self, cmd: Command) -> u64;
}

impl Outbox for WorkerHandle {
    fn send(&mut self, cmd: Command) -> u64 {
        WorkerHandle::send(self, cmd)
    }
}

/// What a step does next: a small state machine, one transition per answer.
pub enum Next {
    /// Send these commands; when every answer is in, go on with them.
    Send(Vec<Command>, Then),
    /// Wait this long (a `wait` step); checked on tick, never slept on.
    Sleep(Duration),
    /// The step is over.
    Done(StepResult),
}

/// The rest of a step, given the answers it waited for (in arrival order).
pub type Then = Box<dyn FnOnce(&mut Ctx<'_>, Vec<Event>) -> Next + Send>;

/// What a step may touch while it runs.
pub struct Ctx<'a> {
    pub app: &'a mut App,
    pub r: &'a mut StepReport,
    pub(crate) app_ready: &'a mut bool,
    /// The ceiling for an app set up on demand: every scope the script's agents ask for.
    pub(crate) default_ceiling: &'a [String],
}

/// How starting a step went.
#[derive(Debug)]
pub enum Started {
    /// The step needed no broker answer: here is its report.
    Done(Box<StepReport>),
    /// Commands are in flight (or a wait runs): the report comes from
    /// [`Runner::on_event`], [`Runner::on_tick`] or [`Runner::cancel`].
    Running,
    /// Every step of the script has run.
    Finished,
    /// Another step is still in flight.
    Busy,
}

/// The step in flight.
struct Active {
    report: StepReport,
    step: Step,
    scripted: bool,
    waiting: Vec<u64>,
    events: Vec<Event>,
    then: Option<Then>,
    deadline: Option<Instant>,
}

/// Drives a script one step at a time, never blocking: a step starts, sends
/// commands through an [`Outbox`], and finishes when the answers it waits
/// for arrive ([`Runner::on_event`]) or its deadline passes
/// ([`Runner::on_tick`]). The caller owns the event loop, folds every event
/// into the [`App`] first, and keeps drawing meanwhile.
pub struct Runner {
    script: Script,
    default_ceiling: Vec<String>,
    pos: usize,
    app_ready: bool,
    halted: Option<String>,
    /// Every step run so far, scripted or not, in order: what export writes.
    journal: Vec<Step>,
    active: Option<Active>,
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

impl Runner {
    pub fn new(script: Script) -> Self {
        Runner {
            default_ceiling: script.agent_scopes(),
            script,
            pos: 0,
            app_ready: false,
            halted: None,
            journal: Vec::new(),
            active: None,
        }
    }

    /// Every step run so far (scripted and ad hoc), in order.
    pub fn journal(&self) -> &[Step] {
        &self.journal
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

    /// A step is in flight.
    pub fn busy(&self) -> bool {
        self.active.is_some()
    }

    /// The step in flight, as written.
    pub fn running(&self) -> Option<&str> {
        self.active.as_ref().map(|a| a.report.source.as_str())
    }

    /// When the `wait` in flight ends.
    pub fn deadline(&self) -> Option<Instant> {
        self.active.as_ref().and_then(|a| a.deadline)
    }

    /// Starts the next step of the script.
    pub fn start_next(&mut self, app: &mut App, out: &mut dyn Outbox) -> Started {
        if self.active.is_some() {
            return Started::Busy;
        }
        let Some(step) = self.script.steps.get(self.pos).cloned() else {
            return Started::Finished;
        };
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
            return Started::Done(Box::new(r));
        }
        self.begin(app, out, step, r, true)
    }

    /// Starts a step that is not part of the script (an explorer action). It
    /// joins the journal, so an export replays it; the script position stays.
    pub fn start_adhoc(&mut self, app: &mut App, out: &mut dyn Outbox, kind: StepKind) -> Started {
        if self.active.is_some() {
            return Started::Busy;
        }
        // No scenario to take the app's ceiling from (attached to a broker
        // with only the admin secret): the first agent's scopes.
        if let StepKind::Agent { scope, .. } = &kind
            && !self.app_ready
            && self.default_ceiling.is_empty()
        {
            self.default_ceiling = scope.clone();
        }
        let step = Step {
            line: 0,
            source: super::write::step_source(&kind),
            kind,
        };
        let r = StepReport::new(0, &step);
        self.begin(app, out, step, r, false)
    }

    fn begin(
        &mut self,
        app: &mut App,
        out: &mut dyn Outbox,
        step: Step,
        report: StepReport,
        scripted: bool,
    ) -> Started {
        self.active = Some(Active {
            report,
            step,
            scripted,
            waiting: Vec::new(),
            events: Vec::new(),
            then: None,
            deadline: None,
        });
        let Some(a) = self.active.as_mut() else {
            return Started::Busy;
        };
        let (kind, line) = (a.step.kind.clone(), a.step.line);
        let mut ctx = Ctx {
            app: &mut *app,
            r: &mut a.report,
            app_ready: &mut self.app_ready,
            default_ceiling: &self.default_ceiling,
        };
        let next = steps::begin(&mut ctx, &kind, line);
        match self.advance(app, out, next) {
            Some(r) => Started::Done(Box::new(r)),
            None => Started::Running,
        }
    }

    /// Carries a step on until it waits for answers (or time), or ends.
    fn advance(
        &mut self,
        app: &mut App,
        out: &mut dyn Outbox,
        mut next: Next,
    ) -> Option<StepReport> {
        loop {
            let a = self.active.as_mut()?;
            match next {
                Next::Done(result) => return self.finish(result),
                Next::Sleep(d) => {
                    a.deadline = Some(Instant::now() + d);
                    return None;
                }
                Next::Send(cmds, then) if cmds.is_empty() => {
                    let mut ctx = Ctx {
                        app: &mut *app,
                        r: &mut a.report,
                        app_ready: &mut self.app_ready,
                        default_ceiling: &self.default_ceiling,
                    };
                    next = then(&mut ctx, Vec::new());
                }
                Next::Send(cmds, then) => {
                    a.waiting = cmds.into_iter().map(|c| out.send(c)).collect();
                    a.events.clear();
                    a.then = Some(then);
                    return None;
                }
            }
        }
    }

    /// An event from the worker, already folded into `app` by the caller.
    /// Returns the report when it finishes the step in flight.
    pub fn on_event(
        &mut self,
        app: &mut App,
        ev: Event,
        out: &mut dyn Outbox,
    ) -> Option<StepReport> {
        let a = self.active.as_mut()?;
        let i = a.waiting.iter().position(|id| *id == ev.request)?;
        a.waiting.swap_remove(i);
        a.report.calls.extend(ev.calls.iter().cloned());
        a.events.push(ev);
        if !a.waiting.is_empty() {
            return None;
        }
        let then = a.then.take()?;
        let events = std::mem::take(&mut a.events);
        let mut ctx = Ctx {
            app: &mut *app,
            r: &mut a.report,
            app_ready: &mut self.app_ready,
            default_ceiling: &self.default_ceiling,
        };
        let next = then(&mut ctx, events);
        self.advance(app, out, next)
    }

    /// The clock moved: ends a `wait` whose time is up.
    pub fn on_tick(&mut self, now: Instant) -> Option<StepReport> {
        let due = self.active.as_ref()?.deadline.is_some_and(|d| now >= d);
        if due {
            self.finish(StepResult::Ok)
        } else {
            None
        }
    }

    /// Ends the step in flight at the user's request (Esc). Answers still
    /// on their way are folded into the state when they come, as any event.
    pub fn cancel(&mut self) -> Option<StepReport> {
        self.finish(StepResult::Error(
            "cancelled (Esc) before it finished".into(),
        ))
    }

    /// The worker is gone: the step in flight cannot finish.
    pub fn on_worker_gone(&mut self) -> Option<StepReport> {
        self.finish(StepResult::Unreachable("the broker worker stopped".into()))
    }

    fn finish(&mut self, result: StepResult) -> Option<StepReport> {
        let a = self.active.take()?;
        let mut r = a.report;
        if a.scripted {
            tracing::info!(
                step = r.index,
                line = r.line,
                kind = r.kind.as_str(),
                result = result.word(),
                "step"
            );
            if let StepResult::Unreachable(why) = &result {
                self.halted = Some(why.clone());
            }
        } else {
            tracing::info!(
                kind = r.kind.as_str(),
                result = result.word(),
                "explorer action"
            );
        }
        r.result = result;
        self.journal.push(a.step);
        Some(r)
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

#[cfg(test)]
mod tests {
    //! The engine driven with synthetic events: no broker, no worker.
    use super::*;
    use crate::broker::{BrokerError, ClientError};
    use crate::worker::AppInfo;

    /// Records what the engine sends.
    #[derive(Default)]
    struct Recorder {
        next: u64,
        sent: Vec<(u64, Command)>,
    }

    impl Outbox for Recorder {
        fn send(&mut self, cmd: Command) -> u64 {
            self.next += 1;
            self.sent.push((self.next, cmd));
            self.next
        }
    }

    fn script(text: &str) -> Script {
        crate::scenario::parse("t.chainview", text).expect("script parses")
    }

    fn app() -> App {
        App::new("http://127.0.0.1:1", false, None)
    }

    fn event(request: u64, outcome: Outcome) -> Event {
        Event {
            request,
            calls: vec![Call {
                method: "POST".into(),
                path: "/v1/x".into(),
                status: Some(200),
                latency: Duration::from_millis(1),
                error: None,
            }],
            outcome,
        }
    }

    fn refused(status: u16, code: &str) -> ClientError {
        ClientError::Broker(BrokerError {
            status,
            error_code: code.into(),
            detail: "no".into(),
            request_id: "r".into(),
        })
    }

    fn unreachable() -> ClientError {
        ClientError::Connect {
            url: "http://127.0.0.1:1".into(),
            reason: "refused".into(),
        }
    }

    /// Folds as the driver does: state first, then the engine.
    fn fold(r: &mut Runner, app: &mut App, out: &mut Recorder, ev: Event) -> Option<StepReport> {
        app.apply(&ev, crate::app::unix_now());
        r.on_event(app, ev, out)
    }

    #[test]
    fn a_wait_is_a_deadline_not_a_sleep() {
        let mut r = Runner::new(script("wait 30s\nsay \"after\"\n"));
        let (mut app, mut out) = (app(), Recorder::default());
        assert!(matches!(r.start_next(&mut app, &mut out), Started::Running));
        assert!(r.busy());
        assert!(out.sent.is_empty(), "a wait sends nothing");
        let deadline = r.deadline().expect("a wait has a deadline");
        assert!(deadline > Instant::now() + Duration::from_secs(29));
        // A tick before the deadline changes nothing; another step cannot start.
        assert!(r.on_tick(Instant::now()).is_none());
        assert!(matches!(r.start_next(&mut app, &mut out), Started::Busy));
        let rep = r.on_tick(deadline).expect("the wait ends at its deadline");
        assert_eq!(rep.result, StepResult::Ok);
        assert_eq!(rep.index, 1);
        assert!(!r.busy());
        assert!(matches!(r.start_next(&mut app, &mut out), Started::Done(_)));
        assert!(matches!(
            r.start_next(&mut app, &mut out),
            Started::Finished
        ));
    }

    #[test]
    fn cancel_ends_the_step_in_flight_and_late_answers_are_ignored() {
        let mut r = Runner::new(script("say \"x\"\n"));
        let (mut app, mut out) = (app(), Recorder::default());
        // An unknown label ends at once: nothing to cancel.
        let kind = StepKind::Validate(vec!["nobody".into()]);
        assert!(matches!(
            r.start_adhoc(&mut app, &mut out, kind),
            Started::Done(_)
        ));
        assert!(r.cancel().is_none());

        let mut r = Runner::new(script("agent a orch=o task=t scope=read:data:*\n"));
        assert!(matches!(r.start_next(&mut app, &mut out), Started::Running));
        let rep = r.cancel().expect("a step was in flight");
        assert!(matches!(&rep.result, StepResult::Error(e) if e.contains("cancelled")));
        assert!(!r.busy());
        // The app-setup answer arriving afterwards belongs to no step.
        let (id, _) = out.sent.last().cloned().expect("setup sent");
        let late = event(id, Outcome::AppReady(Err(refused(401, "unauthorized"))));
        assert!(fold(&mut r, &mut app, &mut out, late).is_none());
        assert_eq!(
            r.journal().len(),
            1,
            "the cancelled step stays in the journal"
        );
    }

    #[test]
    fn an_agent_step_sets_up_the_app_then_creates_the_agent() {
        let mut r = Runner::new(script("agent a orch=o task=t scope=read:data:*\n"));
        let (mut app, mut out) = (app(), Recorder::default());
        assert!(matches!(r.start_next(&mut app, &mut out), Started::Running));
        let (setup, cmd) = out.sent[0].clone();
        assert!(
            matches!(&cmd, Command::SetupApp { ceiling, .. } if ceiling == &vec!["read:data:*".to_string()]),
            "{cmd:?}"
        );
        // Someone else's answer (the live check, say) is not this step's.
        assert!(
            fold(
                &mut r,
                &mut app,
                &mut out,
                event(99, Outcome::Audit(Ok(Default::default())))
            )
            .is_none()
        );
        assert!(r.busy());
        let ready = Outcome::AppReady(Ok(AppInfo {
            app_id: Some("app-1".into()),
            client_id: "c".into(),
            ceiling: None,
        }));
        assert!(fold(&mut r, &mut app, &mut out, event(setup, ready)).is_none());
        let (create, cmd) = out.sent[1].clone();
        let Command::CreateAgent { agent, token, .. } = cmd else {
            panic!("expected CreateAgent, got {cmd:?}");
        };
        let answer = Outcome::AgentCreated {
            agent,
            token,
            result: Err(refused(403, "forbidden")),
        };
        let rep = fold(&mut r, &mut app, &mut out, event(create, answer)).expect("done");
        assert!(matches!(&rep.result, StepResult::Refused(b) if b.status == 403));
        assert_eq!(rep.calls.len(), 2, "both calls reported");
        assert_eq!(rep.tokens.len(), 1);
        assert_eq!(rep.tokens[0].status, "refused");
    }

    #[test]
    fn answers_may_arrive_in_any_order_and_unreachable_halts_the_run() {
        let mut r = Runner::new(script(
            "agent a orch=o task=t scope=read:data:*\nexpect a valid\nsay \"x\"\n",
        ));
        let (mut app, mut out) = (app(), Recorder::default());
        assert!(matches!(r.start_next(&mut app, &mut out), Started::Running));
        let (setup, _) = out.sent[0].clone();
        let rep = fold(
            &mut r,
            &mut app,
            &mut out,
            event(setup, Outcome::AppReady(Err(unreachable()))),
        )
        .expect("an unreachable broker ends the step");
        assert!(matches!(rep.result, StepResult::Unreachable(_)));
        assert!(r.halted().is_some());
        // Later steps are reported as not run, at once.
        let Started::Done(rep) = r.start_next(&mut app, &mut out) else {
            panic!("a halted run reports at once");
        };
        assert_eq!(rep.result, StepResult::NotRun);
        assert!(rep.expectation.is_some_and(|x| !x.ok));
    }

    #[test]
    fn a_step_with_several_commands_waits_for_all_of_them() {
        let mut r = Runner::new(script("say \"x\"\n"));
        let (mut app, mut out) = (app(), Recorder::default());
        // Two imported (unsigned, unverified) tokens to validate together.
        let token = |sub: &str| {
            let claims = crate::jwt::Claims {
                sub: format!("spiffe://agentwrit.local/agent/o/t/{sub}"),
                jti: format!("jti-{sub}"),
                exp: crate::app::unix_now() + 300,
                scope: vec!["read:data:*".into()],
                ..Default::default()
            };
            let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
            crate::jwt::sign(&claims, &key, "k")
        };
        let t1 = app.import("one", &token("a"), None).unwrap();
        let t2 = app.import("two", &token("b"), None).unwrap();
        let kind = StepKind::Validate(vec!["one".into(), "two".into()]);
        assert!(matches!(
            r.start_adhoc(&mut app, &mut out, kind),
            Started::Running
        ));
        assert_eq!(out.sent.len(), 2);
        let (second, _) = out.sent[1].clone();
        let (first, _) = out.sent[0].clone();
        let bad = |token| Outcome::Validated {
            token,
            result: Err(refused(400, "bad_request")),
        };
        assert!(fold(&mut r, &mut app, &mut out, event(second, bad(t2))).is_none());
        let rep = fold(&mut r, &mut app, &mut out, event(first, bad(t1))).expect("both in");
        assert_eq!(rep.index, 0, "an explorer action");
        assert_eq!(rep.tokens.len(), 2);
        assert!(matches!(rep.result, StepResult::Refused(_)));
        assert_eq!(r.position(), 0, "the script position stays");
    }
}
