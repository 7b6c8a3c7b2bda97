//! The explorer never changes someone's broker unasked: before the first
//! step that would change a broker that is not the embedded one (register
//! an app or an agent, delegate, renew, release, revoke), it asks once per
//! session, naming the broker; `--read-only` refuses them all. The gate is
//! the controller's, before a step is started: the worker, which owns the
//! broker I/O, never sees a step that was not allowed.

use super::Session;
use crate::app::App;
use crate::scenario::StepKind;
use crate::scenario::runner::Started;
use crate::view::Ask;
use crate::view::form::FormStatus;

/// Whether steps that change the broker may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changes {
    /// The embedded broker (started for this session), or said yes to.
    Allowed,
    /// An external broker, not asked yet (or the last question said no).
    Ask,
    /// `--read-only`: never.
    ReadOnly,
}

/// What waits for the answer to the question.
#[derive(Debug, Clone)]
pub(super) enum Pending {
    /// The next scripted step (`n`, or a replay going on).
    Next,
    /// An explorer action from a form.
    Adhoc(StepKind),
}

/// What a step would change on the broker, in words; `None`: it only
/// reads (validate, import, audit) or is the explorer's own (say, probe,
/// wait, expect). `app_creates`: the `app` step registers an app (no app
/// credentials were given), rather than only authenticating.
pub fn what_changes(kind: &StepKind, app_creates: bool) -> Option<String> {
    Some(match kind {
        StepKind::App { ceiling } if app_creates => {
            format!("register an app (ceiling {})", ceiling.join(","))
        }
        StepKind::Agent {
            name, orch, task, ..
        } => format!("register agent {name} (orch {orch}, task {task})"),
        StepKind::Delegate {
            from, to, label, ..
        } => format!("delegate from {from} to {to} ({label})"),
        StepKind::Renew { label, .. } => format!("renew {label}"),
        StepKind::Release(labels) => format!("release {}", labels.join(", ")),
        StepKind::Revoke { level, target } => format!("revoke {level} {target}"),
        _ => return None,
    })
}

/// The question, naming the broker and the first change.
fn question(url: &str, what: &str) -> Ask {
    Ask {
        title: " Change this broker? ".into(),
        lines: vec![
            format!("{url} is not chainview's embedded broker: what the explorer does there stays there, for every client of it."),
            format!("Next: {what}."),
            "Allow changes to this broker (register, delegate, renew, release, revoke) for the rest of this session?".into(),
        ],
        again: None,
        yes: "y: yes, for this session".into(),
        no: "n/Esc: no, send nothing".into(),
    }
}

/// What this session made on an external broker and leaves there when
/// `b`/`r` replays (the replay does not undo it).
pub fn left_there(app: &App) -> String {
    let own = |id: usize| app.tokens.get(id).is_some_and(|t| !t.foreign);
    let agents = app
        .agents
        .iter()
        .filter(|a| a.agent_id.is_some() && a.token.is_some_and(own))
        .count();
    let live = app.live_tokens().iter().filter(|(id, _)| own(*id)).count();
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    format!(
        "on the same broker · still there: {}, {}",
        plural(agents, "agent"),
        plural(live, "live token"),
    )
}

impl Session {
    /// Whether the `app` step would register an app (no app credentials).
    fn app_creates(&self) -> bool {
        self.target.worker.app_credentials.is_none()
    }

    /// Whether `kind` would change the broker and is not allowed yet
    /// (asked or refused): the preamble stops before it.
    pub(super) fn held_back(&self, kind: &StepKind) -> bool {
        self.changes != Changes::Allowed && what_changes(kind, self.app_creates()).is_some()
    }

    /// Whether `kind` may be sent now. If not: under `--read-only` says
    /// why; otherwise asks, and `then` waits for the answer.
    pub(super) fn gate(&mut self, kind: &StepKind, then: Pending) -> bool {
        let Some(what) = what_changes(kind, self.app_creates()) else {
            return true;
        };
        let url = self.target.url.clone();
        match self.changes {
            Changes::Allowed => true,
            Changes::ReadOnly => {
                let why = format!("read-only (--read-only): not sent to {url}: {what}");
                if let Some(f) = self.view.form.as_mut() {
                    f.status = FormStatus::Failed(why.clone());
                }
                self.replay_to = None;
                self.view.message = Some(why);
                false
            }
            Changes::Ask => {
                self.pending = Some(then);
                self.view.ask(question(&url, &what));
                false
            }
        }
    }

    /// The question answered yes: changes allowed for the session, and
    /// what waited goes ahead.
    pub(super) fn allowed(&mut self) {
        let Some(p) = self.pending.take() else {
            return;
        };
        self.changes = Changes::Allowed;
        match p {
            Pending::Next => self.start_next(),
            Pending::Adhoc(kind) => self.start_adhoc(kind),
        }
    }

    /// The question answered no: nothing is sent (asked again next time).
    pub(super) fn denied(&mut self) {
        let Some(p) = self.pending.take() else {
            return;
        };
        let why = format!(
            "nothing sent to {} — the next change asks again",
            self.target.url
        );
        self.replay_to = None;
        if let (Pending::Adhoc(_), Some(f)) = (p, self.view.form.as_mut()) {
            f.status = FormStatus::Failed(format!("not sent: {why}"));
        }
        self.view.message = Some(why);
    }

    /// Starts an explorer action that passed the gate.
    pub(super) fn start_adhoc(&mut self, kind: StepKind) {
        let kind = self.revoking(kind);
        match self.driver.start_adhoc(kind) {
            Started::Done(r) => self.finished(*r),
            Started::Running => self.view.message = None,
            Started::Busy | Started::Finished => self.busy_message(),
        }
    }

    /// Allows changes for the rest of the session, as y does (for a
    /// session driven without a terminal, in tests).
    pub fn allow_changes(&mut self) {
        if self.changes == Changes::Ask {
            self.changes = Changes::Allowed;
        }
    }

    /// Whether changes to the broker are allowed, asked or refused.
    pub fn changes(&self) -> Changes {
        self.changes
    }
}
