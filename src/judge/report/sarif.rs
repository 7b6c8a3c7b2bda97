//! SARIF 2.1.0, for code-scanning UIs: the rules with their ids,
//! descriptions and help, and one result per finding with a logical
//! location naming its agent, node and event.

use serde_json::{Value, json};

use crate::judge::check::{Finding, RULES};

pub fn render(findings: &[Finding], source: &str) -> Value {
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
        .map(|f| {
            let mut locations = Vec::new();
            for (name, kind) in [
                (f.agent.as_deref(), "agent"),
                (f.node.as_deref(), "node"),
                (f.event.as_deref(), "event"),
            ] {
                if let Some(name) = name {
                    locations.push(json!({ "name": name, "kind": kind }));
                }
            }
            json!({
                "ruleId": f.rule,
                "ruleIndex": RULES.iter().position(|r| r.id == f.rule).unwrap_or(0),
                "level": f.severity.word(),
                "message": { "text": f.message },
                "locations": [{ "logicalLocations": locations }],
                "partialFingerprints": { "chainview/v1": f.fingerprint },
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "chainview",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "originalUriBaseIds": {},
            "properties": { "source": source },
            "results": results,
        }]
    })
}
