//! The interactive session: terminal set-up and restore (also on panic), and
//! the event loop joining crossterm's event stream, worker events, the
//! deadline of a `wait` in flight and a 1 s tick. It redraws only after one
//! of those; there is no busy loop, and no step ever blocks it.

use std::io;
use std::time::{Duration, Instant};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event as TermEvent, EventStream,
};
use futures::StreamExt;
use ratatui::DefaultTerminal;

use crate::app::unix_now;
use crate::scenario::driver::Driver;
use crate::scenario::report::{StepReport, StepResult};
use crate::scenario::runner::Started;
use crate::scenario::{Keyword, Script};
use crate::session::{self, SessionError, Settings, Target};
use crate::ui::{self, ProbeCache};
use crate::view::form::Submit;
use crate::view::{Action, View};
use crate::worker::{Command, Outcome, Secret};

/// The bundled deploy scenario, shown when no file is given.
pub const DEPLOY_SCENARIO: &str = include_str!("../assets/scenarios/deploy.chainview");

#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("chainview needs an interactive terminal ({0}); for a headless run use --script FILE")]
    NoTerminal(io::Error),
    #[error("terminal error: {0}")]
    Io(#[from] io::Error),
}

/// How the session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The user quit (q, Ctrl-C as a key).
    Quit,
    /// A signal from outside; the exit code to use (128 + its number).
    Signal(u8),
}

/// Everything the interactive session owns.
pub struct Session {
    settings: Settings,
    script: Script,
    pub target: Target,
    /// The app state, the worker and the step engine.
    pub driver: Driver,
    pub view: View,
    pub probe: ProbeCache,
    next_health: Instant,
    backoff: Duration,
    /// How often the live check asks about every live token (`None`: off).
    pub live: Option<Duration>,
    next_live: Instant,
    /// `b`/`r`: replaying up to this step, one step after another as each
    /// ends, with the screen live meanwhile; and what to say when done.
    replay_to: Option<usize>,
    replay_note: String,
    /// `b`/`r` asked once while the user's own actions would be dropped;
    /// the same key again goes ahead.
    confirm: Option<Action>,
    /// The merged view: the broker's audit trail, rebuilt, and which of its
    /// tokens were added beside the explorer's own.
    others: Option<Others>,
    /// A revocation sent whose predicted victims among other clients'
    /// tokens the audit trail is to confirm.
    confirming: Option<Confirming>,
    /// Whether steps that change the broker may be sent (asked once per
    /// session on an external broker), and what waits for the answer.
    changes: gate::Changes,
    pending: Option<gate::Pending>,
    /// While connected, a health check now and then (when the live check
    /// has nothing to ask), so a broker gone down turns the status bar to
    /// "unreachable"; its answer stays out of the event log.
    next_quiet_health: Instant,
    quiet_health: Option<u64>,
}

/// A revocation the trail is to confirm: the entry, the other clients'
/// tokens §7.1 predicted it kills (known once the step ends), and the event
/// that shows it (once read).
struct Confirming {
    level: crate::broker::types::RevokeLevel,
    target: String,
    tokens: Option<Vec<crate::app::TokenId>>,
    seen: Option<String>,
}

/// Other clients' chains, read from the audit trail (admin).
#[derive(Default)]
struct Others {
    o: crate::observe::Observed,
    merged: crate::observe::merge::Merged,
    offset: usize,
    polling: bool,
    /// The same checks as observe's follower: ids that continue, the hash
    /// chain, the broker's total, the read cap — it stops, saying why.
    paging: crate::worker::Paging,
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often a connected session checks the broker is still there.
const QUIET_HEALTH: Duration = Duration::from_secs(5);
/// `O` before the trail is read.
const READING: &str = "showing other clients' chains: reading the audit trail… — O hides them";

impl Session {
    /// Connects (starting the embedded broker if nothing is configured) and
    /// runs the scenario's leading `title`/`app` steps, so the first screen
    /// shows the app and the first real step.
    pub async fn start(
        settings: Settings,
        script: Option<Script>,
        no_color: bool,
        live: Option<Duration>,
    ) -> Result<Session, TuiError> {
        Self::start_with(settings, script, no_color, live, false).await
    }

    /// As [`Session::start`]; `read_only` (`--read-only`): nothing that
    /// would change the broker is ever sent.
    pub async fn start_with(
        settings: Settings,
        script: Option<Script>,
        no_color: bool,
        live: Option<Duration>,
        read_only: bool,
    ) -> Result<Session, TuiError> {
        let script = script.unwrap_or_else(Script::empty);
        let (target, driver) = Driver::connect(&settings, script.clone()).await?;
        let mut view = View::new(Some(&script), no_color);
        view.context = settings.context.clone();
        let changes = if read_only {
            view.read_only = Some(target.url.clone());
            gate::Changes::ReadOnly
        } else if target.embedded.is_some() {
            gate::Changes::Allowed
        } else {
            gate::Changes::Ask
        };
        let mut s = Session {
            view,
            settings,
            script,
            target,
            driver,
            probe: ProbeCache::default(),
            next_health: Instant::now(),
            backoff: Duration::from_secs(1),
            live,
            next_live: Instant::now() + live.unwrap_or_default(),
            replay_to: None,
            replay_note: String::new(),
            confirm: None,
            others: None,
            confirming: None,
            changes,
            pending: None,
            next_quiet_health: Instant::now() + QUIET_HEALTH,
            quiet_health: None,
        };
        s.driver.worker.send(Command::Health);
        // Before the first frame: the title and app steps are quick, and the
        // first screen should show them. Not one that would change an
        // external broker: that waits for the first key, which asks.
        let n = s.preamble();
        while s.driver.runner.position() < n && s.driver.runner.halted().is_none() {
            let pos = s.driver.runner.position();
            if s.script
                .steps
                .get(pos)
                .is_some_and(|st| s.held_back(&st.kind))
            {
                break;
            }
            let Some(r) = s.driver.step().await else {
                break;
            };
            s.finished(r);
        }
        Ok(s)
    }

    /// How many leading steps are `title`/`app` (run before the first screen).
    fn preamble(&self) -> usize {
        self.script
            .steps
            .iter()
            .take_while(|st| matches!(st.kind.keyword(), Keyword::Title | Keyword::App))
            .count()
    }

    /// A step ended (scripted or an explorer action): the view takes its
    /// report, and a replay in progress goes on.
    fn finished(&mut self, r: StepReport) {
        let (app, view) = (&self.driver.app, &mut self.view);
        // Other clients' tokens a revocation is predicted to kill: the
        // trail is to confirm (also for a scripted step: said here, as the
        // steps pane does not).
        let waiting: Vec<_> = r
            .fates
            .iter()
            .filter(|f| f.trail && f.predicted_dead)
            .map(|f| f.token)
            .collect();
        if r.index == 0 {
            view.on_action(app, &r);
        } else {
            view.message = None;
            view.on_report(app, &r);
            if r.result == StepResult::NotRun
                && let Some(why) = self.driver.runner.halted()
            {
                view.message = Some(format!("not run: {why} — press r once the broker answers"));
            }
            if r.kind == Keyword::Revoke && r.result == StepResult::Ok && !waiting.is_empty() {
                view.message = Some(crate::view::revoke_message(&r.fates));
            }
        }
        if r.kind == Keyword::Revoke
            && let Some(c) = self.confirming.as_mut()
        {
            if r.result == StepResult::Ok && !waiting.is_empty() {
                c.tokens = Some(waiting);
            } else {
                self.confirming = None;
            }
        }
        if let Some(to) = self.replay_to {
            if self.driver.runner.halted().is_some() || self.driver.runner.position() >= to {
                self.replay_to = None;
                if self.view.message.is_none() {
                    self.view.message = Some(std::mem::take(&mut self.replay_note));
                }
            } else {
                self.start_next();
            }
        }
    }

    /// Starts the next scripted step; its report comes when it ends.
    fn start_next(&mut self) {
        if let Some(st) = self.script.steps.get(self.driver.runner.position()) {
            let kind = st.kind.clone();
            if !self.gate(&kind, gate::Pending::Next) {
                return;
            }
            self.revoking(kind);
        }
        match self.driver.start_next() {
            Started::Done(r) => self.finished(*r),
            Started::Running => self.view.message = None,
            Started::Busy => self.busy_message(),
            Started::Finished => {
                self.replay_to = None;
                self.view.message = Some("end of the scenario — r restarts, b steps back".into());
            }
        }
    }

    fn busy_message(&mut self) {
        let what = self.driver.runner.running().unwrap_or_default().to_string();
        self.view.message = Some(format!("a step is running: {what} — Esc cancels it"));
    }

    /// Starts over on a fresh broker state and replays `steps` steps, one
    /// after another as the loop goes on (the screen stays live).
    pub async fn rebuild(&mut self, steps: usize, note: String) -> Result<(), TuiError> {
        self.driver.cancel();
        let fresh = session::connect(&self.settings).await?;
        let old = std::mem::replace(&mut self.target, fresh);
        old.shutdown().await;
        let show_others = self.driver.app.show_others;
        self.driver = Driver::for_target(&self.target, self.script.clone());
        self.driver.worker.send(Command::Health);
        // The merged view outlives the App it was merged into: its map from
        // trail nodes to that App's tokens goes with it, and a read in flight
        // went with the old worker. The same broker keeps its trail (read
        // on from where it was); a fresh embedded one starts its own.
        self.driver.app.show_others = show_others;
        self.confirming = None;
        if let Some(others) = self.others.as_mut() {
            if self.target.embedded.is_some() {
                *others = Others::default();
            } else {
                others.merged = Default::default();
                others.polling = false;
                judgment::merge_shown(&mut self.driver.app, others);
            }
        }
        self.poll_others();
        self.view.form = None;
        self.view.audit = None;
        self.view.reset_steps();
        self.probe = ProbeCache::default();
        self.replay_note = note;
        self.view.message = Some(self.replay_note.clone());
        let to = steps.max(self.preamble());
        if to > 0 {
            self.replay_to = Some(to);
            self.view.message = None;
            self.start_next();
        }
        Ok(())
    }

    /// The live check: asks the broker about every token it believes alive.
    pub fn revalidate(&mut self) {
        let app = &mut self.driver.app;
        // One at a time: a new check waits until the last one is answered.
        if app.live_pending {
            return;
        }
        let live = app.live_tokens();
        if !live.is_empty() {
            self.driver.worker.send(Command::Revalidate(live));
            self.driver.app.live_pending = true;
        }
    }

    /// The merged view: asks for the audit events not read yet.
    fn poll_others(&mut self) {
        if !self.driver.app.show_others && !self.judging() {
            return;
        }
        let others = self.others.get_or_insert_with(Others::default);
        if !others.polling && others.paging.stopped().is_none() {
            others.polling = true;
            self.driver.worker.send(Command::AuditSince {
                offset: others.offset,
                pages: 5,
            });
        }
    }

    /// New audit events for the merged view: rebuilt, and the other clients'
    /// tokens added to the App.
    fn on_others(
        &mut self,
        offset: usize,
        result: Result<(Vec<crate::broker::types::AuditEvent>, i64), crate::broker::ClientError>,
    ) {
        let Some(others) = self.others.as_mut() else {
            return;
        };
        if offset != others.offset {
            return;
        }
        others.polling = false;
        match result {
            Ok((events, total)) => {
                let events = others.paging.take(events, total);
                others.offset += events.len();
                for (e, hash_ok) in &events {
                    let e = e.as_ref();
                    if let Some(c) = self.confirming.as_mut()
                        && c.seen.is_none()
                        && let crate::observe::trail::Fact::Revoked { level, target } =
                            crate::observe::trail::read(&e)
                        && (level, target) == (c.level, c.target.as_str())
                    {
                        c.seen = Some(e.id.to_string());
                    }
                    others.o.fold(&e, Some(*hash_ok));
                }
                let merged = judgment::merge_shown(&mut self.driver.app, others);
                let more = others.paging.more() && !events.is_empty();
                if let Some(why) = others.paging.stopped() {
                    self.view.message = Some(format!(
                        "other clients' chains: {} — no more of the trail is read",
                        crate::text::visible(why)
                    ));
                }
                if merged {
                    if self.view.message.as_deref() == Some(READING) {
                        self.view.message = Some(format!(
                            "showing other clients' chains from the audit trail ({} of their tokens) — O hides them",
                            self.others.as_ref().map_or(0, |o| o.merged.foreign())
                        ));
                    }
                    self.confirm();
                }
                if more {
                    self.poll_others();
                }
            }
            // Unreachable: the connection part of the status bar says so
            // (a notice here would cover it on every poll).
            Err(e) if e.is_unreachable() => {}
            Err(e) => {
                self.view.message = Some(format!(
                    "other clients' chains: the audit trail could not be read ({e})"
                ));
            }
        }
    }

    /// The trail has shown a revocation whose predicted victims among
    /// other clients' tokens were waiting for it: says how many it
    /// confirms (the merged view has judged them again from the trail).
    fn confirm(&mut self) {
        let Some(Confirming {
            tokens: Some(tokens),
            seen: Some(at),
            ..
        }) = self.confirming.as_ref()
        else {
            return;
        };
        let app = &self.driver.app;
        let now = unix_now();
        let (dead, alive): (Vec<_>, Vec<_>) = tokens
            .iter()
            .filter(|&&id| id < app.tokens.len())
            .partition(|&&id| {
                matches!(app.status(id, now), crate::app::TokenStatus::Revoked { .. })
            });
        let list = |ids: &[&crate::app::TokenId]| {
            ids.iter()
                .take(4)
                .map(|&&id| app.token_name(id))
                .collect::<Vec<_>>()
                .join(", ")
                + if ids.len() > 4 { ", …" } else { "" }
        };
        let n = dead.len() + alive.len();
        self.view.message = Some(if alive.is_empty() {
            format!(
                "✓ the trail confirms: {} of {n} predicted revoked ({}) at {at}",
                dead.len(),
                list(&dead)
            )
        } else {
            let still: Vec<String> = alive
                .iter()
                .take(4)
                .map(|&&id| format!("{} {}", app.token_name(id), app.status(id, now).word()))
                .collect();
            format!(
                "⚠ the trail shows the revocation at {at}: {} of {n} predicted revoked ({}); not {} — the prediction and the trail differ",
                dead.len(),
                list(&dead),
                still.join(", ")
            )
        });
        self.confirming = None;
    }

    /// A revocation about to be sent: the trail is watched for it from now
    /// on (a read may bring it before the step has ended).
    fn revoking(&mut self, kind: crate::scenario::StepKind) -> crate::scenario::StepKind {
        if self.driver.runner.busy() {
            return kind;
        }
        if let crate::scenario::StepKind::Revoke { level, target } = &kind {
            self.confirming = self
                .driver
                .app
                .revoke_target(*level, target)
                .ok()
                .map(|target| Confirming {
                    level: *level,
                    target,
                    tokens: None,
                    seen: None,
                });
        }
        kind
    }

    /// `O`: the merged view on or off.
    fn toggle_others(&mut self) {
        if !self.driver.app.admin {
            self.view.message = Some(
                "other clients' chains come from the audit trail: set AGENTWRIT_ADMIN_SECRET"
                    .into(),
            );
            return;
        }
        let app = &mut self.driver.app;
        app.show_others = !app.show_others;
        app.generation += 1;
        if app.show_others {
            self.view.message = Some(match self.others.as_ref() {
                Some(o) if o.offset > 0 => format!(
                    "showing other clients' chains from the audit trail ({} of their tokens so far) — O hides them",
                    o.merged.foreign()
                ),
                _ => READING.into(),
            });
            self.poll_others();
        } else {
            self.view.message = Some("other clients' chains hidden — O shows them".into());
        }
    }

    /// The 1 s tick: polls the merged view, retries the broker with
    /// exponential backoff while it is unreachable, and runs the live check
    /// when it is due.
    pub fn tick(&mut self) {
        self.poll_others();
        if let Some(r) = self.driver.tick(Instant::now()) {
            self.finished(r);
        }
        if let Some(every) = self.live
            && Instant::now() >= self.next_live
        {
            self.next_live = Instant::now() + every;
            if self.driver.app.connection_error.is_none() {
                self.revalidate();
            }
        }
        if self.driver.app.connection_error.is_none()
            && self.quiet_health.is_none()
            && Instant::now() >= self.next_quiet_health
        {
            self.next_quiet_health = Instant::now() + QUIET_HEALTH;
            let live_check = self.live.is_some() && !self.driver.app.live_tokens().is_empty();
            if !live_check && !self.driver.runner.busy() {
                self.quiet_health = Some(self.driver.worker.send(Command::Health));
            }
        }
        if self.driver.app.connection_error.is_none() {
            self.backoff = Duration::from_secs(1);
            if self.driver.app.connected && self.driver.runner.halted().is_some() {
                self.view.message =
                    Some("the broker answers again — press r to restart the scenario".into());
            }
            return;
        }
        if Instant::now() >= self.next_health {
            self.driver.worker.send(Command::Health);
            self.next_health = Instant::now() + self.backoff;
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One event from the worker, as the event loop takes it.
    pub fn on_worker(&mut self, ev: crate::worker::Event) {
        let quiet = self.quiet_health.is_some_and(|id| id == ev.request);
        if quiet {
            self.quiet_health = None;
            // Answered: nothing to log. Unreachable: folded as any call.
            if matches!(ev.outcome, Outcome::Health(Ok(_))) {
                return;
            }
        }
        if let Outcome::AuditSince { offset, result } = ev.outcome {
            self.on_others(offset, result);
        } else if let Some(r) = self.driver.fold(ev) {
            self.finished(r);
        }
    }

    /// A key, carried out as the event loop does, without a terminal (the
    /// session driven from a test); `Some` ends the session.
    pub async fn press(
        &mut self,
        k: crossterm::event::KeyEvent,
    ) -> Result<Option<Ended>, TuiError> {
        let action = self.view.handle_key(&self.driver.app, k);
        act(None, self, &mut Signals::none(), action).await
    }

    /// The merged view as far as read: audit events folded, and whether a
    /// read is in flight (`None`: never turned on).
    pub fn others_read(&self) -> Option<(usize, bool)> {
        self.others.as_ref().map(|o| (o.offset, o.polling))
    }

    pub async fn shutdown(self) {
        drop(self.driver);
        self.target.shutdown().await;
    }
}

/// Restores the terminal: raw mode off, alternate screen left, mouse released, cursor shown.
pub fn restore() {
    let _ = crossterm::execute!(
        io::stdout(),
        DisableBracketedPaste,
        DisableMouseCapture,
        crossterm::cursor::Show
    );
    ratatui::restore();
}

pub(crate) fn init_terminal() -> Result<DefaultTerminal, TuiError> {
    let terminal = ratatui::try_init().map_err(|e| {
        ratatui::restore();
        TuiError::NoTerminal(e)
    })?;
    // On panic: release the mouse and show the cursor, then ratatui's hook
    // leaves the alternate screen and color-eyre prints its report.
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::execute!(
            io::stdout(),
            DisableBracketedPaste,
            DisableMouseCapture,
            crossterm::cursor::Show
        );
        prev(info);
    }));
    crossterm::execute!(io::stdout(), EnableMouseCapture, EnableBracketedPaste)?;
    Ok(terminal)
}

/// Runs the interactive session until the user quits.
pub async fn run(
    settings: Settings,
    script: Option<Script>,
    no_color: bool,
    live: Option<Duration>,
    read_only: bool,
) -> Result<Ended, TuiError> {
    use std::io::IsTerminal;
    // Check before touching the terminal, so nothing is written to a pipe.
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        return Err(TuiError::NoTerminal(io::Error::other(
            "standard input and output must be a terminal",
        )));
    }
    let mut signals = Signals::new();
    let mut session = Session::start_with(settings, script, no_color, live, read_only).await?;
    let mut terminal = init_terminal()?;
    let result = event_loop(&mut terminal, &mut session, &mut signals).await;
    restore();
    session.shutdown().await;
    result
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

fn draw(terminal: &mut DefaultTerminal, s: &mut Session) -> io::Result<()> {
    s.judge();
    let Session {
        driver,
        view,
        probe,
        ..
    } = s;
    view.running = driver.runner.running().map(str::to_string);
    terminal.draw(|f| ui::draw(f, &driver.app, view, probe, unix_now()))?;
    Ok(())
}

/// The event loop: one draw per wake-up (a key, a mouse event, a resize, a
/// worker event, a deadline or the tick). Steps run inside it, never in
/// front of it: while one is in flight, keys, scrolling, the probe and help
/// all work, and Esc cancels it.
async fn event_loop(
    terminal: &mut DefaultTerminal,
    s: &mut Session,
    signals: &mut Signals,
) -> Result<Ended, TuiError> {
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        draw(terminal, s)?;
        let deadline = s.driver.runner.deadline();
        let action = tokio::select! {
            ev = events.next() => {
                let app = &s.driver.app;
                match ev {
                    Some(Ok(TermEvent::Key(k))) => s.view.handle_key(app, k),
                    Some(Ok(TermEvent::Mouse(m))) => s.view.handle_mouse(app, m),
                    Some(Ok(TermEvent::Paste(text))) => {
                        s.view.handle_paste(&text);
                        Action::None
                    }
                    Some(Ok(_)) => Action::None,
                    Some(Err(e)) => return Err(TuiError::Io(e)),
                    None => Action::Quit,
                }
            }
            Some(ev) = s.driver.worker.events.recv() => {
                s.on_worker(ev);
                Action::None
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                if let Some(r) = s.driver.tick(Instant::now()) {
                    s.finished(r);
                }
                Action::None
            }
            _ = tick.tick() => {
                s.tick();
                Action::None
            }
            code = signals.recv() => return Ok(Ended::Signal(code)),
        };
        if let Some(end) = act(Some(terminal), s, signals, action).await? {
            return Ok(end);
        }
    }
}

/// `b` and `r` replay the scenario on a fresh state: the user's own actions
/// (explorer forms) would be lost. Says so, once, when there are any.
fn drop_warning(journal: &[crate::scenario::Step], action: Action) -> Option<String> {
    let own = journal.iter().filter(|st| st.line == 0).count();
    if own == 0 {
        return None;
    }
    let key = if action == Action::Restart { "r" } else { "b" };
    Some(format!(
        "{key} drops your {own} action{} (e saves first) — {key} again to go ahead",
        if own == 1 { "" } else { "s" }
    ))
}

/// Carries out what a key or click asked for; `Some` ends the session.
/// `terminal`: where to draw while a replay starts (none in tests).
async fn act(
    terminal: Option<&mut DefaultTerminal>,
    s: &mut Session,
    signals: &mut Signals,
    action: Action,
) -> Result<Option<Ended>, TuiError> {
    if !matches!(
        action,
        Action::None | Action::BackStep | Action::Restart | Action::Allow | Action::Deny
    ) {
        s.confirm = None;
    }
    // Yes to "b drops your actions": the replay goes ahead.
    let action = match (action, s.confirm) {
        (Action::Allow, Some(replay)) => replay,
        _ => action,
    };
    match action {
        Action::Allow => s.allowed(),
        Action::Deny => {
            if s.confirm.take().is_some() {
                s.view.message = Some("kept: nothing replayed".into());
            }
            s.denied();
        }
        Action::None
        | Action::NextEvent
        | Action::PrevEvent
        | Action::FirstEvent
        | Action::FollowHead
        | Action::Jump => {}
        Action::ToggleOthers => s.toggle_others(),
        Action::Quit => return Ok(Some(Ended::Quit)),
        Action::Cancel => {
            s.replay_to = None;
            if let Some(r) = s.driver.cancel() {
                let what = r.source.clone();
                s.finished(r);
                s.view.message = Some(format!("cancelled: {what}"));
            }
        }
        Action::Validate(id) => {
            if let Some(raw) = s.driver.app.tokens.get(id).and_then(|t| t.raw.clone()) {
                s.driver.worker.send(Command::Validate {
                    token: id,
                    raw: Secret(raw),
                });
            }
        }
        Action::FetchAudit => {
            s.driver.worker.send(Command::Audit);
        }
        Action::Copy(id) => copy_token(s, id),
        Action::SaveToken(id) => save_selected(s, id),
        Action::Submit => {
            if s.driver.runner.busy() {
                s.busy_message();
                return Ok(None);
            }
            match s.view.take_submit(&s.driver.app) {
                Some(Submit::Step(kind)) if s.gate(&kind, gate::Pending::Adhoc(kind.clone())) => {
                    s.start_adhoc(kind);
                }
                None | Some(Submit::Step(_)) => {}
                Some(Submit::Export(path)) => {
                    let journal = s.driver.runner.journal();
                    let r = crate::export::write(&s.driver.app, journal, &path)
                        .map_err(|e| e.to_string());
                    s.view.on_export(r);
                }
            }
        }
        Action::NextStep => {
            if s.driver.runner.busy() {
                s.busy_message();
            } else {
                s.start_next();
            }
        }
        Action::BackStep | Action::Restart => {
            let confirmed = s.confirm.take() == Some(action);
            if !confirmed && let Some(ask) = drop_warning(s.driver.runner.journal(), action) {
                s.confirm = Some(action);
                let key = if action == Action::Restart { 'r' } else { 'b' };
                s.view.ask(crate::view::Ask {
                    title: format!(
                        " {key}: {} ",
                        if key == 'r' { "restart" } else { "back a step" }
                    ),
                    lines: vec![ask],
                    again: Some(key),
                    yes: format!("y or {key} again: go ahead"),
                    no: "n/Esc: keep them".into(),
                });
                return Ok(None);
            }
            let to = if action == Action::Restart {
                0
            } else {
                s.view.step_pos.saturating_sub(1)
            };
            // The embedded broker is started afresh; an external one is
            // the same broker, and what earlier runs left on it stays.
            let fresh = if s.target.embedded.is_some() {
                "on a fresh embedded broker".to_string()
            } else {
                gate::left_there(&s.driver.app)
            };
            s.view.message = Some(format!("replaying {fresh}…"));
            if let Some(terminal) = terminal {
                draw(terminal, s)?;
            }
            let note = if to == 0 {
                format!("restarted {fresh}")
            } else {
                format!("replayed to step {to} {fresh}")
            };
            tokio::select! {
                r = s.rebuild(to, note) => r?,
                code = signals.recv() => return Ok(Some(Ended::Signal(code))),
            }
        }
    }
    Ok(None)
}

mod clipboard;
mod gate;
mod judgment;
mod signals;
use clipboard::{copy_token, save_selected};
#[cfg(test)]
use clipboard::{osc52, save_token};
pub(crate) use signals::Signals;

#[cfg(test)]
mod tests;
