//! The interactive session: terminal set-up and restore (also on panic), and
//! the event loop joining crossterm's event stream, worker events and a 1 s
//! tick. It redraws only after one of those; there is no busy loop.

use std::io;
use std::time::{Duration, Instant};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event as TermEvent, EventStream, KeyCode, KeyEventKind, KeyModifiers,
};
use futures::StreamExt;
use ratatui::DefaultTerminal;

use crate::app::form::Submit;
use crate::app::view::{Action, View};
use crate::app::{App, unix_now};
use crate::scenario::Script;
use crate::scenario::runner::{Runner, StepResult};
use crate::session::{self, SessionError, Settings, Target};
use crate::ui::{self, ProbeCache};
use crate::worker::{self, Command, Secret, WorkerHandle};

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

/// SIGTERM, SIGHUP and SIGINT from outside (Ctrl-C as a key arrives as a
/// key in raw mode): each ends the session like `q`, terminal restored.
struct Signals {
    #[cfg(unix)]
    sigs: Option<[(tokio::signal::unix::Signal, u8); 3]>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let sigs = (|| {
                Some([
                    (signal(SignalKind::terminate()).ok()?, 143),
                    (signal(SignalKind::hangup()).ok()?, 129),
                    (signal(SignalKind::interrupt()).ok()?, 130),
                ])
            })();
            Signals { sigs }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The exit code of the next signal; pending forever without handlers.
    async fn recv(&mut self) -> u8 {
        #[cfg(unix)]
        if let Some([(a, ca), (b, cb), (c, cc)]) = self.sigs.as_mut() {
            return tokio::select! {
                _ = a.recv() => *ca,
                _ = b.recv() => *cb,
                _ = c.recv() => *cc,
            };
        }
        std::future::pending().await
    }
}

/// Everything the interactive session owns.
pub struct Session {
    settings: Settings,
    script: Option<Script>,
    pub target: Target,
    pub app: App,
    pub worker: WorkerHandle,
    pub runner: Option<Runner>,
    pub view: View,
    pub probe: ProbeCache,
    next_health: Instant,
    backoff: Duration,
    /// How often the live check asks about every live token (`None`: off).
    pub live: Option<Duration>,
    next_live: Instant,
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);

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
        let target = session::connect(&settings).await?;
        let mut app = App::new(&target.url, target.embedded.is_some(), target.key);
        app.admin = target.has_admin();
        let worker = worker::spawn(target.worker.clone());
        let mut s = Session {
            view: View::new(script.as_ref(), no_color),
            runner: script.clone().map(Runner::new),
            settings,
            script,
            target,
            app,
            worker,
            probe: ProbeCache::default(),
            next_health: Instant::now(),
            backoff: Duration::from_secs(1),
            live,
            next_live: Instant::now() + live.unwrap_or_default(),
        };
        s.worker.send(Command::Health);
        s.run_preamble().await;
        Ok(s)
    }

    async fn run_preamble(&mut self) {
        let Some(runner) = self.runner.as_mut() else {
            return;
        };
        while let Some(step) = runner.script().steps.get(runner.position()) {
            if !matches!(step.kind.keyword(), "title" | "app") {
                break;
            }
            match runner.step(&mut self.app, &mut self.worker).await {
                Some(r) => self.view.on_report(&self.app, &r),
                None => break,
            }
            if runner.halted().is_some() {
                break;
            }
        }
    }

    /// Starts over on a fresh broker state and replays `steps` steps.
    pub async fn rebuild(&mut self, steps: usize) -> Result<(), TuiError> {
        let fresh = session::connect(&self.settings).await?;
        let old = std::mem::replace(&mut self.target, fresh);
        old.shutdown().await;
        self.app = App::new(
            &self.target.url,
            self.target.embedded.is_some(),
            self.target.key,
        );
        self.app.admin = self.target.has_admin();
        self.view.form = None;
        self.view.audit = None;
        self.worker = worker::spawn(self.target.worker.clone());
        self.worker.send(Command::Health);
        self.runner = self.script.clone().map(Runner::new);
        self.view.reset_steps();
        self.probe = ProbeCache::default();
        self.run_preamble().await;
        if let Some(runner) = self.runner.as_mut() {
            while runner.position() < steps {
                match runner.step(&mut self.app, &mut self.worker).await {
                    Some(r) => self.view.on_report(&self.app, &r),
                    None => break,
                }
            }
        }
        Ok(())
    }

    /// The live check: asks the broker about every token it believes alive.
    pub fn revalidate(&mut self) {
        // One at a time: a new check waits until the last one is answered.
        if self.app.live_pending {
            return;
        }
        let live = self.app.live_tokens();
        if !live.is_empty() {
            self.worker.send(Command::Revalidate(live));
            self.app.live_pending = true;
        }
    }

    /// Retries the broker with exponential backoff while it is unreachable,
    /// and runs the live check when it is due.
    fn tick(&mut self) {
        if let Some(every) = self.live
            && Instant::now() >= self.next_live
        {
            self.next_live = Instant::now() + every;
            if self.app.connection_error.is_none() {
                self.revalidate();
            }
        }
        if self.app.connection_error.is_none() {
            self.backoff = Duration::from_secs(1);
            if self.app.connected && self.runner.as_ref().is_some_and(|r| r.halted().is_some()) {
                self.view.message =
                    Some("the broker answers again — press r to restart the scenario".into());
            }
            return;
        }
        if Instant::now() >= self.next_health {
            self.worker.send(Command::Health);
            self.next_health = Instant::now() + self.backoff;
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        }
    }

    pub async fn shutdown(self) {
        drop(self.worker);
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

fn init_terminal() -> Result<DefaultTerminal, TuiError> {
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
) -> Result<Ended, TuiError> {
    use std::io::IsTerminal;
    // Check before touching the terminal, so nothing is written to a pipe.
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        return Err(TuiError::NoTerminal(io::Error::other(
            "standard input and output must be a terminal",
        )));
    }
    let mut signals = Signals::new();
    let mut session = Session::start(settings, script, no_color, live).await?;
    let mut terminal = init_terminal()?;
    let result = event_loop(&mut terminal, &mut session, &mut signals).await;
    restore();
    session.shutdown().await;
    result
}

/// Waits until the user asks to quit (q or Ctrl-C) while a step runs.
async fn quit_requested(events: &mut EventStream) {
    while let Some(ev) = events.next().await {
        if let Ok(TermEvent::Key(k)) = ev
            && k.kind != KeyEventKind::Release
            && (k.code == KeyCode::Char('q')
                || (k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL)))
        {
            return;
        }
    }
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    s: &mut Session,
    signals: &mut Signals,
) -> Result<Ended, TuiError> {
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        // One draw per wake-up: a key, a mouse event, a resize, a worker event or the tick.
        {
            let Session {
                app, view, probe, ..
            } = s;
            terminal.draw(|f| ui::draw(f, app, view, probe, unix_now()))?;
        }
        let action = tokio::select! {
            ev = events.next() => {
                match ev {
                    Some(Ok(TermEvent::Key(k))) => s.view.handle_key(&s.app, k),
                    Some(Ok(TermEvent::Mouse(m))) => s.view.handle_mouse(&s.app, m),
                    Some(Ok(TermEvent::Paste(text))) => {
                        s.view.handle_paste(&text);
                        Action::None
                    }
                    Some(Ok(_)) => Action::None,
                    Some(Err(e)) => return Err(TuiError::Io(e)),
                    None => Action::Quit,
                }
            }
            Some(ev) = s.worker.events.recv() => {
                s.app.apply(&ev);
                Action::None
            }
            _ = tick.tick() => {
                s.tick();
                Action::None
            }
            code = signals.recv() => return Ok(Ended::Signal(code)),
        };
        match action {
            Action::None => {}
            Action::Quit => return Ok(Ended::Quit),
            Action::Validate(id) => {
                if let Some(raw) = s.app.tokens.get(id).and_then(|t| t.raw.clone()) {
                    s.worker.send(Command::Validate {
                        token: id,
                        raw: Secret(raw),
                    });
                }
            }
            Action::FetchAudit => {
                s.worker.send(Command::Audit);
            }
            Action::Submit => match s.view.take_submit(&s.app) {
                None => {}
                Some(Submit::Export(path)) => {
                    let journal = s.runner.as_ref().map(Runner::journal).unwrap_or_default();
                    let r = crate::export::write(&s.app, journal, &path).map_err(|e| e.to_string());
                    s.view.on_export(r);
                }
                Some(Submit::Step(kind)) => {
                    {
                        let Session {
                            app, view, probe, ..
                        } = s;
                        terminal.draw(|f| ui::draw(f, app, view, probe, unix_now()))?;
                    }
                    let runner = s.runner.get_or_insert_with(|| Runner::new(Script::empty()));
                    let report = tokio::select! {
                        r = runner.run_adhoc(&mut s.app, &mut s.worker, kind) => r,
                        _ = quit_requested(&mut events) => return Ok(Ended::Quit),
                        code = signals.recv() => return Ok(Ended::Signal(code)),
                    };
                    s.view.on_action(&s.app, &report);
                }
            },
            Action::NextStep => {
                let Some(runner) = s.runner.as_mut() else {
                    s.view.message = Some("no scenario loaded".into());
                    continue;
                };
                if runner.done() {
                    s.view.message = Some("end of the scenario — r restarts, b steps back".into());
                    continue;
                }
                s.view.message = Some("running the step…".into());
                {
                    let Session {
                        app, view, probe, ..
                    } = s;
                    terminal.draw(|f| ui::draw(f, app, view, probe, unix_now()))?;
                }
                let report = tokio::select! {
                    r = runner.step(&mut s.app, &mut s.worker) => r,
                    _ = quit_requested(&mut events) => return Ok(Ended::Quit),
                    code = signals.recv() => return Ok(Ended::Signal(code)),
                };
                s.view.message = None;
                if let Some(r) = report {
                    s.view.on_report(&s.app, &r);
                    if r.result == StepResult::NotRun
                        && let Some(why) = s.runner.as_ref().and_then(|r| r.halted())
                    {
                        s.view.message =
                            Some(format!("not run: {why} — press r once the broker answers"));
                    }
                }
            }
            Action::BackStep | Action::Restart => {
                let to = if action == Action::Restart {
                    0
                } else {
                    s.view.step_pos.saturating_sub(1)
                };
                // The embedded broker is started afresh; an external one is
                // the same broker, and what earlier runs left on it stays.
                let fresh = if s.target.embedded.is_some() {
                    "on a fresh embedded broker"
                } else {
                    "against the same broker (what earlier runs left there stays)"
                };
                s.view.message = Some(format!("replaying {fresh}…"));
                {
                    let Session {
                        app, view, probe, ..
                    } = s;
                    terminal.draw(|f| ui::draw(f, app, view, probe, unix_now()))?;
                }
                tokio::select! {
                    r = s.rebuild(to) => r?,
                    code = signals.recv() => return Ok(Ended::Signal(code)),
                }
                s.view.message = Some(if to == 0 {
                    format!("restarted {fresh}")
                } else {
                    format!("replayed to step {to} {fresh}")
                });
            }
        }
    }
}
