//! Export (`e` in the explorer): the session as a scenario file that replays
//! what was done (with `--script`), as JSON (the tree and the event log), and
//! as diagrams of the tree (`.mmd` Mermaid, `.dot` Graphviz).
//! Tokens are secrets: an imported token is written as `import L env=VAR`,
//! never whole, and the JSON carries tokens redacted.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::app::{App, TokenKind, unix_now};
use crate::scenario::write::step_source;
use crate::scenario::{ImportSource, Step, StepKind};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} exists; export never overwrites — choose another name")]
    Exists { path: PathBuf },
}

/// The scenario file for a name as typed: `.chainview` added when it has no
/// extension.
pub fn scenario_path(name: &str) -> PathBuf {
    let p = PathBuf::from(name);
    if p.extension().is_none() {
        p.with_extension("chainview")
    } else {
        p
    }
}

/// The JSON file written beside a scenario file: same stem, `.json`.
pub fn json_path(scenario: &str) -> PathBuf {
    scenario_path(scenario).with_extension("json")
}

/// The diagrams written beside a scenario file: same stem, `.mmd` and `.dot`.
pub fn diagram_paths(scenario: &str) -> [PathBuf; 2] {
    let p = scenario_path(scenario);
    [p.with_extension("mmd"), p.with_extension("dot")]
}

/// The first of the export files that exists already, if any.
pub fn existing(name: &str) -> Option<PathBuf> {
    let [mmd, dot] = diagram_paths(name);
    [scenario_path(name), json_path(name), mmd, dot]
        .into_iter()
        .find(|p| p.exists())
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
    for (i, step) in journal.iter().enumerate() {
        // A refused `agent` attempt whose name was taken again later is left
        // out: the file must parse (one definition per name).
        if let StepKind::Agent { name, .. } = &step.kind
            && journal[i + 1..]
                .iter()
                .any(|later| matches!(&later.kind, StepKind::Agent { name: n, .. } if n == name))
        {
            continue;
        }
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
                "status_reason": t.status_at(now).reason(),
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
    let scen = scenario_path(path);
    let json_file = json_path(path);
    if let Some(p) = existing(path) {
        return Err(ExportError::Exists { path: p });
    }
    let put = |p: &Path, text: String| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AlreadyExists => ExportError::Exists {
                    path: p.to_path_buf(),
                },
                _ => ExportError::Write {
                    path: p.to_path_buf(),
                    source,
                },
            })?;
        f.write_all(text.as_bytes())
            .map_err(|source| ExportError::Write {
                path: p.to_path_buf(),
                source,
            })
    };
    put(&scen, scenario_text(app, journal))?;
    let mut body = serde_json::to_string_pretty(&session_json(app)).unwrap_or_default();
    body.push('\n');
    put(&json_file, body)?;
    let graph = crate::diagram::from_app(app, unix_now());
    let [mmd, dot] = diagram_paths(path);
    put(&mmd, crate::diagram::mermaid::render(&graph))?;
    put(&dot, crate::diagram::dot::render(&graph))?;
    Ok((scen, json_file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_name_gets_its_extension_and_nothing_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let name = dir.path().join("session1");
        let name = name.to_str().unwrap();
        let app = App::new("http://127.0.0.1:1", true, None);
        let (scen, json) = write(&app, &[], name).unwrap();
        assert_eq!(scen, dir.path().join("session1.chainview"));
        assert_eq!(json, dir.path().join("session1.json"));
        assert!(scen.exists() && json.exists());
        std::fs::write(&scen, "mine").unwrap();
        let err = write(&app, &[], name).unwrap_err();
        assert!(err.to_string().contains("exists"), "{err}");
        assert_eq!(std::fs::read_to_string(&scen).unwrap(), "mine");
        // A name with an extension is kept as typed.
        assert_eq!(scenario_path("x/run.txt"), PathBuf::from("x/run.txt"));
    }
}
