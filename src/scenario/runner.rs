//! Runs a [`Script`] step by step: each step becomes worker commands, their
//! events are folded into the shared [`App`] state, and `expect` lines are
//! checked against that state. The headless `--script` mode and the
//! interactive step-through both drive this runner.

use std::time::{Duration, Instant};

use super::report::{ExpectResult, StepReport, StepResult};
use super::steps::{self, Ctx, Next, Then};
use super::{Script, Step, StepKind};
use crate::app::App;
use crate::worker::{Command, Event, WorkerHandle};

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

#[cfg(test)]
mod tests {
    //! The engine driven with synthetic events: no broker, no worker.
    use super::*;
    use crate::broker::{BrokerError, ClientError};
    use crate::worker::{AppInfo, Call, Outcome};

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
