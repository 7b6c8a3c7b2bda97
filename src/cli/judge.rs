//! The judgment commands' arguments: the source they read (as observe),
//! their formats.

use crate::*;

/// Where a judgment reads the trail from (as `observe`).
#[derive(Debug, Args)]
pub(crate) struct Source {
    /// Read a saved trail instead of a broker.
    #[arg(long, value_name = "FILE")]
    pub(crate) from: Option<PathBuf>,
    /// Judge as of this event (evt-000123 or 123) or time (15:20:49 on the
    /// trail's day, 2026-11-26 15:20:49 local, or RFC 3339); default the
    /// last event (docs/observe.md#times).
    #[arg(long, value_name = "EVT|TIME")]
    pub(crate) at: Option<String>,
    /// Broker to read (or AGENTWRIT_BROKER_URL); needs AGENTWRIT_ADMIN_SECRET.
    #[arg(long, value_name = "URL", conflicts_with = "from")]
    pub(crate) broker: Option<String>,
    /// Replay this scenario on a fresh embedded broker and judge its trail
    /// (a delegation design checked in CI before it ships).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["from", "broker"])]
    pub(crate) script: Option<PathBuf>,
}

/// `--filter`, for the judgments that can be narrowed (who-can, check, diff).
#[derive(Debug, Args)]
pub(crate) struct FilterArg {
    /// Judge only these chains: task=…, orch=…, agent=… or app=…
    /// (repeatable; the same key again is an OR, different keys an AND; a
    /// value ending in * is a prefix). A token is kept when it matches,
    /// with every token above it (docs/observe.md).
    #[arg(long, value_name = "KEY=VALUE")]
    pub(crate) filter: Vec<chainview::observe::select::Term>,
}

impl FilterArg {
    fn args(&self, source: &Source) -> chainview::watch::ObserveArgs {
        chainview::watch::ObserveArgs {
            filter: chainview::observe::select::Select::new(self.filter.clone()),
            ..source.args()
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum JudgeFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct WhoCanCli {
    /// action:resource:identifier, each part a word or *.
    pub(crate) pattern: String,
    /// List dead holders too.
    #[arg(long)]
    pub(crate) all: bool,
    /// Exit 1 when any live or maybe holder exists (a CI guard).
    #[arg(long)]
    pub(crate) expect_none: bool,
    /// text, or json (JSON lines).
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    pub(crate) format: JudgeFormat,
    #[command(flatten)]
    pub(crate) source: Source,
    #[command(flatten)]
    pub(crate) filter: FilterArg,
}

#[derive(Debug, Args)]
pub(crate) struct CheckCli {
    /// text, json (JSON lines: findings, then a summary), sarif (SARIF 2.1.0) or markdown.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    pub(crate) format: CheckFormatArg,
    /// Exit 1 when a finding is at least this severe: error, warning, note or never.
    #[arg(long, default_value = "warning", value_name = "LEVEL", value_parser = ["error", "warning", "note", "never"])]
    pub(crate) fail_on: String,
    /// Findings whose fingerprint is in this file (as --write-baseline writes it) are not counted.
    #[arg(long, value_name = "FILE")]
    pub(crate) baseline: Option<PathBuf>,
    /// Write every finding's fingerprint here (never overwrites), to accept them.
    #[arg(long, value_name = "FILE")]
    pub(crate) write_baseline: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) source: Source,
    #[command(flatten)]
    pub(crate) filter: FilterArg,
}

#[derive(Debug, Args)]
pub(crate) struct DiffCli {
    /// The later point, in the forms --at takes; default the last event.
    #[arg(long, value_name = "EVT|TIME")]
    pub(crate) to: Option<String>,
    /// Compare with another saved trail (its last event, or --to there).
    #[arg(long, value_name = "FILE")]
    pub(crate) against: Option<PathBuf>,
    /// Exit 1 when any agent gained reach (a "no new access" gate).
    #[arg(long)]
    pub(crate) fail_on_new_access: bool,
    /// text, or json (JSON lines).
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    pub(crate) format: JudgeFormat,
    #[command(flatten)]
    pub(crate) source: Source,
    #[command(flatten)]
    pub(crate) filter: FilterArg,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum CheckFormatArg {
    Text,
    Json,
    Sarif,
    Markdown,
}

#[derive(Debug, Subcommand)]
pub(crate) enum WhatIfCommand {
    /// What dies, what may die and what survives an entry (LEVEL token, agent,
    /// task or chain; TARGET as the broker takes it, or a node id such as n12
    /// from observe), and the entries that would kill the whole subtree.
    Revoke {
        level: String,
        target: String,
        /// text, or json (JSON lines: effects, then the plan).
        #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
        format: JudgeFormat,
        #[command(flatten)]
        source: Source,
    },
}

impl Source {
    pub(crate) fn args(&self) -> chainview::watch::ObserveArgs {
        chainview::watch::ObserveArgs {
            from: self.from.clone(),
            print: None,
            at: self.at.clone(),
            interval: Duration::from_secs(2),
            no_color: true,
            checkpoint: None,
            script: self.script.clone(),
            filter: Default::default(),
        }
    }
}

impl JudgeFormat {
    pub(crate) fn format(self) -> chainview::judging::Format {
        match self {
            JudgeFormat::Text => chainview::judging::Format::Text,
            JudgeFormat::Json => chainview::judging::Format::Json,
        }
    }
}

/// A judgment's exit code, its error said first.
fn code(r: Result<u8, chainview::watch::WatchError>) -> u8 {
    r.unwrap_or_else(|e| {
        report!("chainview: {e}");
        e.exit_code()
    })
}

/// Runs a judgment command (main sends only those here).
pub(crate) async fn run(cmd: Command, settings: &Settings) -> u8 {
    match cmd {
        Command::WhoCan(c) => {
            let (src, format) = (c.filter.args(&c.source), c.format.format());
            let r = chainview::judging::run_who_can(
                settings,
                &src,
                &c.pattern,
                format,
                c.all,
                c.expect_none,
            );
            code(r.await)
        }
        Command::Explain {
            node,
            scope,
            format,
            source,
        } => {
            let src = source.args();
            let r = chainview::judging::run_explain(settings, &src, &node, &scope, format.format());
            code(r.await)
        }
        Command::Diff(c) => {
            let src = c.filter.args(&c.source);
            let r = chainview::judging::run_diff(
                settings,
                &src,
                c.to.as_deref(),
                c.against.as_deref(),
                c.format.format(),
                c.fail_on_new_access,
            );
            code(r.await)
        }
        Command::Check(c) => {
            use chainview::judging::{CheckFormat, CheckOptions};
            let src = c.filter.args(&c.source);
            let opts = CheckOptions {
                format: match c.format {
                    CheckFormatArg::Text => CheckFormat::Text,
                    CheckFormatArg::Json => CheckFormat::Json,
                    CheckFormatArg::Sarif => CheckFormat::Sarif,
                    CheckFormatArg::Markdown => CheckFormat::Markdown,
                },
                fail_on: chainview::judge::check::Severity::parse(&c.fail_on),
                baseline: c.baseline,
                write_baseline: c.write_baseline,
            };
            let r = chainview::judging::run_check(settings, &src, &opts);
            code(r.await)
        }
        Command::WhatIf {
            what:
                WhatIfCommand::Revoke {
                    level,
                    target,
                    format,
                    source,
                },
        } => {
            let (src, format) = (source.args(), format.format());
            let r = chainview::judging::run_what_if(settings, &src, &level, &target, format);
            code(r.await)
        }
        // Not a judgment: main never sends one.
        _ => 2,
    }
}
