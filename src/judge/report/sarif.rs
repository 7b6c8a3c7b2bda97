//! SARIF 2.1.0, for code-scanning UIs: the rules with their ids,
//! descriptions and help, and one result per finding with a logical
//! location naming its agent, node and event — and, for a `--script`
//! source, a physical location: the scenario file's line that made it.
//! Checked against the OASIS schema (tests/fixtures/sarif-schema-2.1.0.json).

use serde_json::{Value, json};

use crate::judge::check::{Finding, RULES};

/// Where a `--script` run's findings point: the scenario file, and the
/// line that made each finding's event (in the order of the findings).
#[derive(Debug, Clone)]
pub struct Script {
    pub uri: String,
    pub lines: Vec<Option<usize>>,
}

/// A path as a SARIF `uri` (a URI reference): relative paths stay
/// relative (to the directory the command ran in), absolute ones become
/// `file://` URIs; anything outside the unreserved and path characters is
/// percent-encoded.
pub fn uri(path: &std::path::Path) -> String {
    let text = path.to_string_lossy();
    let mut out = String::with_capacity(text.len() + 8);
    if path.is_absolute() {
        out.push_str("file://");
    }
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(char::from(b))
            }
            b'\\' => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub fn render(findings: &[Finding], source: &str, script: Option<&Script>) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": { "text": r.description },
                "fullDescription": { "text": r.description },
                "help": { "text": r.help },
                "defaultConfiguration": { "level": r.severity.word() },
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut logical = Vec::new();
            for (name, kind) in [
                (f.agent.as_deref(), "agent"),
                (f.node.as_deref(), "node"),
                (f.event.as_deref(), "event"),
            ] {
                if let Some(name) = name {
                    logical.push(json!({ "name": name, "kind": kind }));
                }
            }
            let mut location = json!({ "logicalLocations": logical });
            if let Some(s) = script {
                let mut physical = json!({ "artifactLocation": { "uri": s.uri, "index": 0 } });
                if let Some(line) = s.lines.get(i).copied().flatten() {
                    physical["region"] = json!({ "startLine": line });
                }
                location["physicalLocation"] = physical;
            }
            json!({
                "ruleId": f.rule,
                "ruleIndex": RULES.iter().position(|r| r.id == f.rule).unwrap_or(0),
                "level": f.severity.word(),
                "message": { "text": f.message },
                "locations": [location],
                "partialFingerprints": { "chainview/v1": f.fingerprint },
            })
        })
        .collect();
    let mut run = json!({
        "tool": { "driver": {
            "name": "chainview",
            "version": env!("CARGO_PKG_VERSION"),
            "rules": rules,
        }},
        "properties": { "source": source },
        "results": results,
    });
    if let Some(s) = script {
        run["artifacts"] = json!([{
            "location": { "uri": s.uri },
            "roles": ["analysisTarget"],
            "mimeType": "text/plain",
        }]);
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [run],
    })
}
