//! `--context`: choosing a named broker, `chainview context list|show`.

use crate::*;

/// Why a command-line problem with contexts stops chainview, and its exit code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ContextError {
    #[error(transparent)]
    Config(#[from] chainview::config::ConfigError),
    #[error(
        "context '{0}' is read_only: only the commands that read its audit trail run against it \
         (observe, audit dump, check, diff, explain, who-can, what-if), and the explorer with --read-only; \
         without it the explorer, demo and --script register agents, delegate and revoke"
    )]
    ReadOnly(String),
}

impl ContextError {
    /// 3 when a secret could not be had (the broker cannot be set up), 2
    /// for a config file or command line to fix.
    pub(crate) fn exit_code(&self) -> u8 {
        use chainview::config::ConfigError as C;
        match self {
            ContextError::Config(C::EnvUnset { .. } | C::Command { .. }) => 3,
            _ => 2,
        }
    }
}

pub(crate) fn config_path(cli: &Cli) -> Result<PathBuf, chainview::config::ConfigError> {
    match &cli.contexts.config {
        Some(p) => Ok(p.clone()),
        None => chainview::config::default_path(),
    }
}

/// Whether the command only reads the broker (its audit trail, as admin):
/// what a read_only context allows, and what needs no app credentials.
pub(crate) fn reads_only(command: &Option<Command>) -> bool {
    matches!(
        command,
        Some(
            Command::Observe(_)
                | Command::Audit { .. }
                | Command::Check(_)
                | Command::Diff(_)
                | Command::Explain { .. }
                | Command::WhoCan(_)
                | Command::WhatIf { .. }
        )
    )
}

/// The context --context (or CHAINVIEW_CONTEXT) picks, if any, checked
/// against what the command does. The config file is read only then.
pub(crate) fn chosen_context(
    cli: &Cli,
) -> Result<Option<chainview::config::Context>, ContextError> {
    let Some(name) = cli.contexts.context.as_deref().filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    // The embedded broker and the offline commands have no use for one.
    if matches!(
        cli.command,
        Some(Command::Broker(_) | Command::Language | Command::Completions { .. })
    ) {
        return Ok(None);
    }
    let file = chainview::config::load(&config_path(cli)?)?;
    let ctx = file.context(name)?.clone();
    // The explorer with --read-only changes nothing either.
    let explorer_read_only = cli.read_only
        && matches!(cli.command, None | Some(Command::Demo { .. }))
        && cli.script.is_none();
    let reads_only = reads_only(&cli.command) || explorer_read_only;
    if ctx.read_only && !reads_only {
        return Err(ContextError::ReadOnly(ctx.name));
    }
    Ok(Some(ctx))
}

/// `chainview context list|show`.
pub(crate) fn run_context(cli: &Cli, what: &ContextCommand) -> u8 {
    let file = match config_path(cli).and_then(|p| chainview::config::load(&p)) {
        Ok(f) => f,
        Err(e) => {
            report!("chainview: {e}");
            return 2;
        }
    };
    let chosen = cli.contexts.context.as_deref().filter(|n| !n.is_empty());
    let out = match what {
        ContextCommand::List => {
            let mut out = String::new();
            for c in file.contexts.values() {
                let mut marks = Vec::new();
                if c.read_only {
                    marks.push("read-only");
                }
                if c.production {
                    marks.push("production");
                }
                out.push_str(&format!(
                    "{} {:<16} {}{}\n",
                    if chosen == Some(c.name.as_str()) {
                        "*"
                    } else {
                        " "
                    },
                    c.name,
                    c.url,
                    if marks.is_empty() {
                        String::new()
                    } else {
                        format!("  ({})", marks.join(", "))
                    }
                ));
            }
            if out.is_empty() {
                out = format!(
                    "# no contexts in {}: add a [context.NAME] table\n",
                    file.path.display()
                );
            }
            visible(&out).into_owned()
        }
        ContextCommand::Show { name } => {
            let Some(name) = name.as_deref().or(chosen) else {
                report!("chainview: name the context to show: chainview context show NAME");
                return 2;
            };
            match file.context(name) {
                Ok(c) => c.show(),
                Err(e) => {
                    report!("chainview: {e}");
                    return 2;
                }
            }
        }
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    0
}
