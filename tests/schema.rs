//! The JSON Schemas in docs/schema/ (draft 2020-12) against real output:
//! `chainview observe --print json` over the real broker's trail (whole, as
//! of an earlier event, tampered) and over a live embedded broker that a
//! scenario drove; `who-can` and `what-if revoke` over the same trail.
//! Every line must validate against the schema of its kind, and every kind
//! must be seen. The schemas are open (new fields are
//! additive), and they do refuse what is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/clean.rs"]
mod clean;

use std::path::PathBuf;

use serde_json::{Value, json};

const KINDS: [&str; 4] = ["agent", "node", "denied", "summary"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The schema file of a line kind: observe's four, check's (`check-summary`
/// for its summary), who-can's and what-if's.
fn file_of(kind: &str) -> String {
    match kind {
        "access" => "who-can-access".into(),
        "finding" | "check-summary" => format!("check-{}", kind.trim_start_matches("check-")),
        "gained" | "lost" | "new-chain" | "ended-chain" | "new-finding" => "diff-change".into(),
        "check" | "decision" => format!("explain-{kind}"),
        "effect" | "plan" => format!("what-if-{kind}"),
        _ => format!("observe-{kind}"),
    }
}

fn schema(kind: &str) -> Value {
    let path = root().join(format!("docs/schema/{}.schema.json", file_of(kind)));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn validator(kind: &str) -> jsonschema::Validator {
    let s = schema(kind);
    assert_eq!(
        s["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{kind}"
    );
    jsonschema::meta::validate(&s)
        .unwrap_or_else(|e| panic!("{}.schema.json is not a valid schema: {e}", file_of(kind)));
    jsonschema::draft202012::new(&s).unwrap()
}

use clean::run;

/// Checks every line of one output against the schemas of `kinds`;
/// returns the kinds seen.
fn check_lines(name: &str, out: &str, kinds: &[&str], seen: &mut Vec<String>) -> Vec<Value> {
    let validators: Vec<(&str, jsonschema::Validator)> =
        kinds.iter().map(|k| (*k, validator(k))).collect();
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty(), "{name}: no output");
    for (i, line) in lines.iter().enumerate() {
        let kind = line["kind"].as_str().unwrap_or_default();
        let Some((_, v)) = validators.iter().find(|(k, _)| *k == kind) else {
            panic!("{name} line {}: a kind no schema describes: {line}", i + 1);
        };
        let errors: Vec<String> = v.iter_errors(line).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{name} line {} ({kind}) does not fit docs/schema/{}.schema.json: {errors:?}\n{line}",
            i + 1,
            file_of(kind)
        );
        seen.push(kind.to_string());
    }
    lines
}

/// observe's output: every line fits, the summary comes last, once.
fn check(name: &str, out: &str, seen: &mut Vec<String>) {
    let lines = check_lines(name, out, &KINDS, seen);
    assert_eq!(
        lines.last().unwrap()["kind"],
        "summary",
        "{name}: the summary comes last"
    );
    assert_eq!(
        lines.iter().filter(|l| l["kind"] == "summary").count(),
        1,
        "{name}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_print_json_fits_the_schemas() {
    let fixture = root().join("tests/fixtures/real-broker-audit/audit.json");
    let fixture = fixture.to_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&fixture).unwrap();
    let tampered = dir.path().join("tampered.json");
    std::fs::write(
        &tampered,
        text.replacen(
            "requested=[read:data:payroll]",
            "requested=[read:data:other]",
            1,
        ),
    )
    .unwrap();
    let tampered = tampered.to_str().unwrap().to_string();

    use chainview::broker::embedded::{Config, EmbeddedBroker};
    let secret = "schema-test-admin-secret";
    let broker = EmbeddedBroker::start(Config::with_admin_secret(secret))
        .await
        .unwrap();
    let url = broker.url();
    let outputs = tokio::task::spawn_blocking(move || {
        let mut outputs = Vec::new();
        let from = |extra: &[&str], f: &str| {
            let mut args = vec!["observe", "--from", f, "--print", "json"];
            args.extend(extra);
            run(&args, &[])
        };
        outputs.push(("the real broker's trail", from(&[], &fixture), 0));
        outputs.push((
            "the real broker's trail as of evt-000018",
            from(&["--at", "evt-000018"], &fixture),
            0,
        ));
        outputs.push(("a tampered trail", from(&[], &tampered), 1));
        let env = [
            ("AGENTWRIT_BROKER_URL", url.as_str()),
            ("AGENTWRIT_ADMIN_SECRET", secret),
        ];
        for script in ["deploy", "revocation"] {
            let path = root().join(format!("assets/scenarios/{script}.chainview"));
            let (code, _, err) = run(&["--script", path.to_str().unwrap()], &env);
            assert!(code == 0 || code == 1, "{script}: {err}");
        }
        outputs.push((
            "a live broker",
            run(&["observe", "--print", "json"], &env),
            0,
        ));
        outputs
    })
    .await
    .unwrap();
    let mut seen = Vec::new();
    for (name, (code, out, err), want) in &outputs {
        assert_eq!(code, want, "{name}: {err}");
        check(name, out, &mut seen);
    }
    for kind in KINDS {
        assert!(seen.iter().any(|k| k == kind), "no {kind} line was checked");
    }
    let summary: Value = serde_json::from_str(outputs[0].1.1.lines().last().unwrap()).unwrap();
    assert_eq!(summary["schema_version"], 1);
}

#[test]
fn the_schemas_refuse_what_is_wrong_and_allow_new_fields() {
    let fixture = root().join("tests/fixtures/real-broker-audit/audit.json");
    let (code, out, err) = run(
        &[
            "observe",
            "--from",
            fixture.to_str().unwrap(),
            "--print",
            "json",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first = |kind: &str| lines.iter().find(|l| l["kind"] == kind).unwrap().clone();
    let (node, summary, agent, denied) = (
        first("node"),
        first("summary"),
        first("agent"),
        first("denied"),
    );
    let nv = validator("node");
    let sv = validator("summary");
    assert!(nv.is_valid(&node));
    // A field added later (as additive changes are) still fits.
    let mut more = node.clone();
    more["link_inferred"] = json!(true);
    assert!(nv.is_valid(&more));
    // Wrong: a status no one defined, a missing field, a wrong type, a
    // malformed node reference, an unknown schema version.
    let mut bad = node.clone();
    bad["status"] = json!("bogus");
    assert!(!nv.is_valid(&bad));
    let mut bad = node.clone();
    bad.as_object_mut().unwrap().remove("scope");
    assert!(!nv.is_valid(&bad));
    let mut bad = node.clone();
    bad["depth"] = json!("1");
    assert!(!nv.is_valid(&bad));
    let mut bad = node.clone();
    bad["parent"] = json!("token-7");
    assert!(!nv.is_valid(&bad));
    let mut bad = summary.clone();
    bad.as_object_mut().unwrap().remove("schema_version");
    assert!(!sv.is_valid(&bad));
    bad["schema_version"] = json!(2);
    assert!(!sv.is_valid(&bad));
    // Each kind's schema is its own: a node is not an agent or a denial.
    assert!(!validator("agent").is_valid(&node));
    assert!(!validator("denied").is_valid(&agent));
    assert!(!nv.is_valid(&denied));
}

/// check, who-can, what-if, diff and explain's JSON lines, over the real
/// broker's trail.
#[test]
fn judgment_json_fits_the_schemas() {
    let fixture = root().join("tests/fixtures/real-broker-audit/audit.json");
    let f = fixture.to_str().unwrap();
    let mut seen = Vec::new();
    let finding = validator("finding");
    let summary = validator("check-summary");
    for at in [None, Some("evt-000016"), Some("evt-000090")] {
        let mut args = vec![
            "check",
            "--from",
            f,
            "--format",
            "json",
            "--fail-on",
            "never",
        ];
        if let Some(at) = at {
            args.extend(["--at", at]);
        }
        let (code, out, err) = run(&args, &[]);
        assert_eq!(code, 0, "{args:?}: {err}");
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let (last, findings) = lines.split_last().unwrap();
        assert_eq!(last["kind"], "summary", "{args:?}");
        let errors: Vec<String> = summary.iter_errors(last).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{args:?} summary: {errors:?}\n{last}");
        for l in findings {
            let errors: Vec<String> = finding.iter_errors(l).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{args:?} finding: {errors:?}\n{l}");
            seen.push("finding".to_string());
        }
    }
    assert!(
        seen.len() > 5,
        "check found {} findings in the recorded trail",
        seen.len()
    );
    for pattern in ["write:*:*", "read:config:production", "*:*:*"] {
        for extra in [vec!["--all"], vec!["--at", "evt-000016"]] {
            let mut args = vec!["who-can", pattern, "--from", f, "--format", "json"];
            args.extend(extra.iter().copied());
            let (code, out, err) = run(&args, &[]);
            assert_eq!(code, 0, "{args:?}: {err}");
            check_lines(&format!("{args:?}"), &out, &["access"], &mut seen);
        }
    }
    for level in ["token", "agent", "task", "chain"] {
        for target in ["n0", "n3"] {
            let args = [
                "what-if", "revoke", level, target, "--from", f, "--format", "json",
            ];
            let (code, out, err) = run(&args, &[]);
            if code == 2 {
                // A target the trail cannot name at that level (a delegated
                // token's jti is not audited): said, and nothing printed.
                assert!(out.is_empty() && !err.is_empty(), "{args:?}");
                continue;
            }
            assert_eq!(code, 0, "{args:?}: {err}");
            let lines = check_lines(&format!("{args:?}"), &out, &["effect", "plan"], &mut seen);
            assert_eq!(lines.last().unwrap()["kind"], "plan", "{args:?}");
            assert_eq!(
                lines.iter().filter(|l| l["kind"] == "plan").count(),
                1,
                "{args:?}"
            );
        }
    }
    // diff between points of the trail, and between two trails.
    let diff_kinds = ["gained", "lost", "new-chain", "ended-chain", "new-finding"];
    for (at, to) in [
        ("evt-000001", "evt-000136"),
        ("evt-000016", "evt-000090"),
        ("evt-000090", "evt-000136"),
    ] {
        let args = [
            "diff", "--from", f, "--at", at, "--to", to, "--format", "json",
        ];
        let (code, out, err) = run(&args, &[]);
        assert_eq!(code, 0, "{args:?}: {err}");
        check_lines(&format!("{args:?}"), &out, &diff_kinds, &mut seen);
    }
    // explain: every check, then the decision, for tokens and scopes that
    // come out allowed, denied and unknown.
    let mut decisions = Vec::new();
    for node in ["n3", "n17", "n38", "n43"] {
        for scope in [
            "read:config:production",
            "write:deploy:web-service",
            "read:data:x",
        ] {
            let args = ["explain", node, scope, "--from", f, "--format", "json"];
            let (code, out, err) = run(&args, &[]);
            assert!(code == 0 || code == 1, "{args:?}: {err}");
            let lines = check_lines(
                &format!("{args:?}"),
                &out,
                &["check", "decision"],
                &mut seen,
            );
            let last = lines.last().unwrap();
            assert_eq!(last["kind"], "decision", "{args:?}");
            decisions.push(last["decision"].as_str().unwrap().to_string());
        }
    }
    assert!(decisions.iter().any(|d| d == "allowed"), "{decisions:?}");
    assert!(decisions.iter().any(|d| d != "allowed"), "{decisions:?}");
    for kind in [
        "finding", "access", "effect", "plan", "gained", "check", "decision",
    ] {
        assert!(seen.iter().any(|k| k == kind), "no {kind} line was checked");
    }
    // And they refuse what is wrong.
    let access = validator("access");
    // One vocabulary with observe's `liveness`: `maybe`, never `may`.
    let mut bad = json!({"kind": "access", "agent": "a", "status": "may", "grants": [], "node": "n1", "status_why": "", "path": []});
    assert!(!access.is_valid(&bad));
    bad["status"] = json!("maybe");
    assert!(access.is_valid(&bad));
    let node = schema("node");
    let words = |s: &Value| -> Vec<Value> {
        s["properties"]["liveness"]["enum"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let access_words = schema("access")["properties"]["status"]["enum"]
        .as_array()
        .cloned()
        .unwrap();
    assert_eq!(
        words(&node),
        access_words,
        "who-can's status and observe's liveness"
    );
    let mut bad = json!({"kind": "summary", "schema_version": 1, "findings": 0, "counted": 0, "baselined": 0, "errors": 0, "warnings": 0, "notes": 0, "fail_on": "warning", "as_of": "evt-000001"});
    assert!(validator("check-summary").is_valid(&bad));
    bad.as_object_mut().unwrap().remove("schema_version");
    assert!(!validator("check-summary").is_valid(&bad));
    let plan = validator("plan");
    assert!(!plan.is_valid(&json!({"kind": "plan", "level": "everything", "target": "x", "entries": [], "uncovered": [], "notes": []})));
}
