//! Export (`e` in the explorer): the session as a scenario file that replays
//! what was done (with `--script`), and as JSON (the tree and the event log).
//! Tokens are secrets: an imported token is written as `import L env=VAR`,
//! never whole, and the JSON carries tokens redacted.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::app::{App, TokenKind, unix_now};
use crate::scenario::runner::status_reason;
use crate::scenario::write::step_source;
use crate::scenario::{ImportSource, Step, StepKind};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The JSON file written beside a scenario file: same stem, `.json`.
pub fn json_path(scenario: &str) -> PathBuf {
    Path::new(scenario).with_extension("json")
}

/// The environment variable an exported `import` step reads its token from.
pub fn import_env(label: &str) -> String {
    let up: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("CHAINVIEW_TOKEN_{up}")
}

/// The journal as a scenario file.
pub fn scenario_text(app: &App, journal: &[Step]) -> String {
    let mut out = format!(
        "# Exported by chainview {} at {} from {}.\n# Replay: chainview --script FILE\n",
        env!("CARGO_PKG_VERSION"),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        app.broker_url
    );
    for step in journal {
        let line = match &step.kind {
            StepKind::Import {
                label,
                source: ImportSource::Token(_),
            } => {
                let var = import_env(label);
                out.push_str(&format!(
                    "# The token imported as '{label}' is a secret and is not written here:\n# set {var} to it before replaying.\n"
                ));
                step_source(&StepKind::Import {
                    label: label.clone(),
                    source: ImportSource::Env(var),
                })
            }
            other => step_source(other),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The tree and the event log as JSON (tokens redacted).
pub fn session_json(app: &App) -> Value {
    let now = unix_now();
    let tokens: Vec<Value> = app
        .tokens
        .iter()
        .map(|t| {
            let (kind, parent) = match t.kind {
                TokenKind::Registration => ("registration", None),
                TokenKind::Delegated { parent } => ("delegated", Some(parent)),
                TokenKind::Renewal { of } => ("renewal", Some(of)),
                TokenKind::Imported { parent } => ("imported", parent),
            };
            json!({
                "label": app.token_name(t.id),
                "kind": kind,
                "parent": parent.map(|p| app.token_name(p)),
                "holder": app.agents[t.holder].name,
                "agent_id": app.agents[t.holder].agent_id,
                "status": t.status_at(now).word(),
                "status_reason": status_reason(&t.status_at(now)),
                "scope": t.scope(),
                "depth": app.depth(t.id),
                "exp": t.exp(),
                "token": t.redacted(),
                "chain": app.chain(t.id).iter().map(|h| json!({
                    "agent": h.who, "agent_id": h.agent_id, "scope": h.scope,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "chainview": env!("CARGO_PKG_VERSION"),
        "exported_at": now,
        "broker": app.broker_url,
        "agents": app.agents.iter().map(|a| json!({
            "name": a.name, "agent_id": a.agent_id, "orch_id": a.orch, "task_id": a.task, "scope": a.scope,
        })).collect::<Vec<_>>(),
        "tokens": tokens,
        "log": app.log.iter().map(|l| json!({
            "at": l.at, "method": l.call.method, "path": l.call.path, "status": l.call.status,
            "ms": (l.call.latency.as_secs_f64() * 1e6).round() / 1e3, "error": l.call.error,
        })).collect::<Vec<_>>(),
    })
}

/// Writes both files; returns their paths.
pub fn write(app: &App, journal: &[Step], path: &str) -> Result<(PathBuf, PathBuf), ExportError> {
    let scen = PathBuf::from(path);
    let json_file = json_path(path);
    let put = |p: &Path, text: String| {
        std::fs::write(p, text).map_err(|source| ExportError::Write {
            path: p.to_path_buf(),
            source,
        })
    };
    put(&scen, scenario_text(app, journal))?;
    let mut body = serde_json::to_string_pretty(&session_json(app)).unwrap_or_default();
    body.push('\n');
    put(&json_file, body)?;
    Ok((scen, json_file))
}
