//! The one driver: the app state, the broker worker and the step engine
//! together. The interactive session and the headless replay both use it;
//! it is the one place that sends a command and folds the events that come
//! back, and the one place a session is set up.

use std::time::Instant;

use super::report::StepReport;
use super::runner::{Runner, Started};
use super::{Script, StepKind};
use crate::app::App;
use crate::session::{self, SessionError, Settings, Target};
use crate::worker::{self, Command, Event, WorkerHandle};

pub struct Driver {
    pub app: App,
    pub worker: WorkerHandle,
    pub runner: Runner,
}

impl Driver {
    /// Connects (starting the embedded broker when nothing is configured)
    /// and sets up the state, the worker and the engine for `script`.
    /// Nothing is sent yet.
    pub async fn connect(
        settings: &Settings,
        script: Script,
    ) -> Result<(Target, Driver), SessionError> {
        let target = session::connect(settings).await?;
        let driver = Driver::for_target(&target, script);
        Ok((target, driver))
    }

    /// The state, worker and engine for a broker already connected.
    pub fn for_target(target: &Target, script: Script) -> Driver {
        let mut app = App::new(&target.url, target.embedded.is_some(), target.key);
        app.admin = target.has_admin();
        let worker = worker::spawn(target.worker.clone());
        Driver {
            app,
            worker,
            runner: Runner::new(script),
        }
    }

    /// Folds one worker event into the state and hands it to the step in
    /// flight; the step's report when this event finished it.
    pub fn fold(&mut self, ev: Event) -> Option<StepReport> {
        self.app.apply(&ev, crate::app::unix_now());
        self.runner.on_event(&mut self.app, ev, &mut self.worker)
    }

    /// Starts the next scripted step (never waits).
    pub fn start_next(&mut self) -> Started {
        self.runner.start_next(&mut self.app, &mut self.worker)
    }

    /// Starts an explorer action (never waits).
    pub fn start_adhoc(&mut self, kind: StepKind) -> Started {
        self.runner
            .start_adhoc(&mut self.app, &mut self.worker, kind)
    }

    /// The clock moved (ends a `wait` whose time is up).
    pub fn tick(&mut self, now: Instant) -> Option<StepReport> {
        self.runner.on_tick(now)
    }

    /// Cancels the step in flight.
    pub fn cancel(&mut self) -> Option<StepReport> {
        self.runner.cancel()
    }

    /// Waits, folding every event, until the step in flight finishes.
    /// Headless use; the interactive loop folds events itself.
    pub async fn finish_step(&mut self) -> Option<StepReport> {
        while self.runner.busy() {
            let deadline = self.runner.deadline();
            tokio::select! {
                ev = self.worker.events.recv() => match ev {
                    Some(ev) => {
                        if let Some(r) = self.fold(ev) {
                            return Some(r);
                        }
                    }
                    None => return self.runner.on_worker_gone(),
                },
                _ = sleep_until(deadline), if deadline.is_some() => {
                    if let Some(r) = self.tick(Instant::now()) {
                        return Some(r);
                    }
                }
            }
        }
        None
    }

    /// Runs the next scripted step to its end; `None` when the script is done.
    pub async fn step(&mut self) -> Option<StepReport> {
        match self.start_next() {
            Started::Done(r) => Some(*r),
            Started::Running | Started::Busy => self.finish_step().await,
            Started::Finished => None,
        }
    }

    /// Runs an explorer action to its end.
    pub async fn act(&mut self, kind: StepKind) -> Option<StepReport> {
        match self.start_adhoc(kind) {
            Started::Done(r) => Some(*r),
            Started::Running | Started::Busy => self.finish_step().await,
            Started::Finished => None,
        }
    }

    /// Sends one command and folds events until its answer arrives (the
    /// health check, the live check, the audit view).
    pub async fn command(&mut self, cmd: Command) -> Option<Event> {
        let id = self.worker.send(cmd);
        while let Some(ev) = self.worker.events.recv().await {
            if ev.request == id {
                self.app.apply(&ev, crate::app::unix_now());
                return Some(ev);
            }
            self.fold(ev);
        }
        None
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
