//! A whole headless replay: connect to the broker (embedded or external),
//! check what the script needs, then run it step by step. `--script` and the
//! replay benchmark both use this.

use super::Script;
use super::runner::{Runner, StepReport};
use super::transcript::Summary;
use crate::app::App;
use crate::broker::ClientError;
use crate::session::{self, SessionError, Settings, Target};

/// Why a replay could not start (all exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(
        "{file} revokes tokens, which needs the broker's admin secret: set AGENTWRIT_ADMIN_SECRET. Nothing was run."
    )]
    NeedsAdmin { file: String },
    #[error("cannot reach the broker: {0}")]
    Unreachable(ClientError),
}

/// A replay in progress: the broker target, the shared app state and the runner.
pub struct Replay {
    pub target: Target,
    pub app: App,
    runner: Runner,
    worker: crate::worker::WorkerHandle,
    summary: Summary,
    reveal: bool,
}

impl Replay {
    /// Connects and checks that the script can run here; nothing runs yet.
    pub async fn start(script: Script, settings: &Settings) -> Result<Replay, ReplayError> {
        let target = session::connect(settings).await?;
        if script.needs_admin() && !target.has_admin() {
            let file = script.file.clone();
            target.shutdown().await;
            return Err(ReplayError::NeedsAdmin { file });
        }
        let mut app = App::new(&target.url, target.embedded.is_some(), target.key);
        app.admin = target.has_admin();
        // Reachability is asked through the worker, like every broker call.
        let mut worker = crate::worker::spawn(target.worker.clone());
        let id = worker.send(crate::worker::Command::Health);
        let health = loop {
            match worker.events.recv().await {
                Some(ev) if ev.request == id => {
                    app.apply(&ev);
                    break ev.outcome;
                }
                Some(ev) => app.apply(&ev),
                None => {
                    break crate::worker::Outcome::Health(Err(ClientError::InvalidInput(
                        "the broker worker stopped".into(),
                    )));
                }
            }
        };
        if let crate::worker::Outcome::Health(Err(e)) = health {
            drop(worker);
            target.shutdown().await;
            return Err(ReplayError::Unreachable(e));
        }
        Ok(Replay {
            target,
            app,
            runner: Runner::new(script),
            worker,
            summary: Summary::default(),
            reveal: false,
        })
    }

    pub fn script(&self) -> &Script {
        self.runner.script()
    }

    /// Show whole tokens in reports (`--reveal-secrets`); redacted otherwise.
    pub fn reveal_secrets(&mut self, reveal: bool) {
        self.reveal = reveal;
    }

    /// Runs the next step.
    pub async fn next(&mut self) -> Option<StepReport> {
        let mut r = self.runner.step(&mut self.app, &mut self.worker).await?;
        if self.reveal {
            if let Some(step) = self.runner.journal().last() {
                r.source.clone_from(&step.source);
            }
            for t in &mut r.tokens {
                if let Some(raw) = self.app.tokens.get(t.id).and_then(|e| e.raw.clone()) {
                    t.token = Some(raw);
                }
            }
        }
        self.summary.add(&r);
        Some(r)
    }

    /// Runs an explorer action (a step outside the script), as the
    /// interactive session does when a form is submitted.
    pub async fn act(&mut self, kind: super::StepKind) -> StepReport {
        self.runner
            .run_adhoc(&mut self.app, &mut self.worker, kind)
            .await
    }

    /// Every step run so far, scripted and ad hoc (what export writes).
    pub fn journal(&self) -> &[super::Step] {
        self.runner.journal()
    }

    /// Sends one worker command and folds events into the state until its
    /// answer arrives (the live check, the audit view).
    pub async fn command(&mut self, cmd: crate::worker::Command) -> Option<crate::worker::Event> {
        let id = self.worker.send(cmd);
        while let Some(ev) = self.worker.events.recv().await {
            self.app.apply(&ev);
            if ev.request == id {
                return Some(ev);
            }
        }
        None
    }

    /// Stops the embedded broker (if any) and returns the totals.
    pub async fn finish(self) -> Summary {
        let Replay {
            target,
            worker,
            summary,
            ..
        } = self;
        drop(worker);
        target.shutdown().await;
        summary
    }
}
