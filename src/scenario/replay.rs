//! A whole headless replay: connect to the broker (embedded or external),
//! check what the script needs, then run it step by step. `--script` and the
//! replay benchmark both use this.

use super::Script;
use super::driver::Driver;
use super::report::StepReport;
use super::transcript::Summary;
use crate::app::App;
use crate::broker::ClientError;
use crate::session::{SessionError, Settings, Target};

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

/// A replay in progress: the broker target and the driver (state, worker, engine).
pub struct Replay {
    pub target: Target,
    pub driver: Driver,
    summary: Summary,
    reveal: bool,
}

impl Replay {
    /// Connects and checks that the script can run here; nothing runs yet.
    pub async fn start(script: Script, settings: &Settings) -> Result<Replay, ReplayError> {
        let needs_admin = script.needs_admin();
        let file = script.file.clone();
        let (target, mut driver) = Driver::connect(settings, script).await?;
        if needs_admin && !target.has_admin() {
            drop(driver);
            target.shutdown().await;
            return Err(ReplayError::NeedsAdmin { file });
        }
        // Reachability is asked through the worker, like every broker call.
        let health = match driver.command(crate::worker::Command::Health).await {
            Some(ev) => ev.outcome,
            None => crate::worker::Outcome::Health(Err(ClientError::InvalidInput(
                "the broker worker stopped".into(),
            ))),
        };
        if let crate::worker::Outcome::Health(Err(e)) = health {
            drop(driver);
            target.shutdown().await;
            return Err(ReplayError::Unreachable(e));
        }
        Ok(Replay {
            target,
            driver,
            summary: Summary::default(),
            reveal: false,
        })
    }

    /// The state the replay has built so far.
    pub fn app(&self) -> &App {
        &self.driver.app
    }

    pub fn script(&self) -> &Script {
        self.driver.runner.script()
    }

    /// Show whole tokens in reports (`--reveal-secrets`); redacted otherwise.
    pub fn reveal_secrets(&mut self, reveal: bool) {
        self.reveal = reveal;
    }

    /// Runs the next step to its end.
    pub async fn next(&mut self) -> Option<StepReport> {
        let mut r = self.driver.step().await?;
        if self.reveal {
            if let Some(step) = self.driver.runner.journal().last() {
                r.source.clone_from(&step.source);
            }
            for t in &mut r.tokens {
                if let Some(raw) = self.driver.app.tokens.get(t.id).and_then(|e| e.raw.clone()) {
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
        match self.driver.act(kind).await {
            Some(r) => r,
            None => {
                let mut r = StepReport::empty();
                r.result =
                    super::report::StepResult::Unreachable("the broker worker stopped".into());
                r
            }
        }
    }

    /// Every step run so far, scripted and ad hoc (what export writes).
    pub fn journal(&self) -> &[super::Step] {
        self.driver.runner.journal()
    }

    /// Sends one worker command and folds events into the state until its
    /// answer arrives (the live check, the audit view).
    pub async fn command(&mut self, cmd: crate::worker::Command) -> Option<crate::worker::Event> {
        self.driver.command(cmd).await
    }

    /// Stops the embedded broker (if any) and returns the totals.
    pub async fn finish(self) -> Summary {
        let Replay {
            target,
            driver,
            summary,
            ..
        } = self;
        drop(driver);
        target.shutdown().await;
        summary
    }
}
