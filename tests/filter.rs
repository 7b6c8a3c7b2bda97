//! `--filter KEY=VALUE` over the headless outputs (`observe --print` in
//! every format, `check`, `who-can`, `diff`), and the diagrams a person can
//! read: DOT clusters per orch and task, rendered by Graphviz when it is
//! installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/clean.rs"]
mod clean;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

fn fixture(dir: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir)
        .join("audit.json")
        .to_string_lossy()
        .into_owned()
}

fn real() -> String {
    fixture("real-broker-audit")
}

/// chainview with `args` and none of the environment's settings.
fn run(args: &[&str]) -> (i32, String, String) {
    clean::run(args, &[])
}

/// The `id`s of the JSON lines of `kind` that `observe --print json` prints
/// with these filters.
fn ids(kind: &str, filters: &[&str]) -> BTreeSet<String> {
    let f = real();
    let mut args = vec!["observe", "--from", &f, "--print", "json"];
    for x in filters {
        args.extend(["--filter", x]);
    }
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["kind"] == kind)
        .map(|v| {
            v.get("id")
                .or_else(|| v.get("event"))
                .and_then(Value::as_str)
                .unwrap()
                .to_string()
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_filter_keeps_the_matching_tokens_with_the_whole_path_above_them() {
    // t5's own registration (n10) and the delegation it holds (n16), with
    // the chain above n16 back to its root n6: nothing below n16 (n17, t6's).
    assert_eq!(
        ids("node", &["task=t5"]),
        set(&["n10", "n13", "n14", "n15", "n16", "n6"])
    );
    // A renewal keeps what it renewed.
    assert_eq!(
        ids("node", &["agent=lifecycle/a/bf07"]),
        set(&["n33", "n36"])
    );
    // The agents listed are the holders of what is kept.
    assert_eq!(ids("agent", &["task=t5"]).len(), 5);
}

#[test]
fn the_same_key_twice_is_an_or_and_different_keys_an_and() {
    let t5 = ids("node", &["task=t5"]);
    let t6 = ids("node", &["task=t6"]);
    let either: BTreeSet<String> = t5.union(&t6).cloned().collect();
    assert_eq!(ids("node", &["task=t5", "task=t6"]), either);
    assert!(ids("node", &["task=t5", "orch=escalation"]).is_empty());
    assert_eq!(ids("node", &["task=t5", "orch=depth"]), t5);
    // A trailing * is a prefix.
    assert_eq!(ids("node", &["task=t*", "orch=depth"]).len(), 12);
}

#[test]
fn a_refusal_is_kept_by_whom_it_was_for_and_its_token_path_with_it() {
    // The refused delegation to push-v2.4.1 (evt-000014) was made with n3.
    assert!(ids("denied", &["task=push-v2.4.1"]).contains("evt-000014"));
    assert!(ids("node", &["task=push-v2.4.1"]).is_superset(&set(&["n0", "n3"])));
    // Refusals of other orchs are gone; the summary counts what is kept.
    let f = real();
    let (_, out, _) = run(&[
        "observe",
        "--from",
        &f,
        "--print",
        "json",
        "--filter",
        "orch=escalation",
    ]);
    let summary: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["denied"], 5, "{summary}");
    assert_eq!(summary["nodes"], 5, "{summary}");
}

#[test]
fn every_print_format_is_narrowed_the_same_way() {
    let f = real();
    for format in ["text", "json", "mermaid", "dot"] {
        let (code, out, err) = run(&[
            "observe",
            "--from",
            &f,
            "--print",
            format,
            "--filter",
            "orch=escalation",
        ]);
        assert_eq!(code, 0, "{format}: {err}");
        assert!(out.contains("helper"), "{format}: {out}");
        for gone in ["depth/t", "deploy-pipeline", "lifecycle", "task-a"] {
            assert!(!out.contains(gone), "{format} still shows {gone}: {out}");
        }
    }
}

#[test]
fn an_unknown_key_or_an_empty_value_is_a_usage_error() {
    let f = real();
    for (args, words) in [
        (
            vec![
                "observe",
                "--from",
                &f,
                "--print",
                "text",
                "--filter",
                "color=red",
            ],
            "unknown key 'color': expected task, orch, agent or app",
        ),
        (
            vec![
                "observe", "--from", &f, "--print", "dot", "--filter", "task=",
            ],
            "task= needs a value",
        ),
        (
            vec!["check", "--from", &f, "--filter", "orch"],
            "'orch' is not KEY=VALUE",
        ),
        (
            vec![
                "who-can",
                "read:data:*",
                "--from",
                &f,
                "--filter",
                "agent= ",
            ],
            "agent= needs a value",
        ),
        (
            vec!["diff", "--from", &f, "--filter", "scope=x"],
            "unknown key 'scope'",
        ),
    ] {
        let (code, out, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("--filter"), "{args:?}: {err}");
        assert!(err.contains(words), "{args:?}: {err}");
        assert!(out.is_empty());
    }
}

#[test]
fn judgments_see_only_the_kept_chains() {
    let f = real();
    let (code, out, err) = run(&[
        "who-can",
        "read:data:*",
        "--from",
        &f,
        "--filter",
        "orch=depth",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("depth/t1/4c3e"), "{out}");
    assert!(
        !out.contains("escalation/") && !out.contains("revocation/"),
        "{out}"
    );

    let (_, out, _) = run(&["check", "--from", &f, "--format", "json"]);
    assert!(out.contains("escalation-probing"));
    let (_, out, _) = run(&[
        "check",
        "--from",
        &f,
        "--format",
        "json",
        "--filter",
        "orch=depth",
    ]);
    assert!(out.contains("chain-at-depth-limit"), "{out}");
    assert!(!out.contains("escalation-probing"), "{out}");
    assert!(!out.contains("revocation/task"), "{out}");

    let (_, out, _) = run(&["diff", "--from", &f, "--filter", "task=t3"]);
    assert!(out.contains("depth/t3/6abc can now reach"), "{out}");
    assert!(!out.contains("depth/t5"), "{out}");
    assert!(!out.contains("escalation"), "{out}");
}

#[test]
fn dot_clusters_each_task_inside_its_orch_left_to_right() {
    let (code, dot, _) = run(&["observe", "--from", &real(), "--print", "dot"]);
    assert_eq!(code, 0);
    assert!(dot.contains("rankdir=LR;"), "{dot}");
    // Every node statement sits inside a task cluster inside an orch cluster.
    let mut depth = 0usize;
    let mut clusters = 0;
    for line in dot.lines() {
        let l = line.trim();
        if l.starts_with("subgraph cluster_") {
            depth += 1;
            clusters += 1;
        } else if l == "}" && depth > 0 {
            depth -= 1;
        } else if l.contains("[label=") && !l.contains("->") {
            assert_eq!(depth, 2, "a node outside its task cluster: {l}");
        }
    }
    // 6 orchs, and their tasks (deploy-pipeline: release, review, push; …).
    assert_eq!(dot.matches("label=\"orch ").count(), 6, "{dot}");
    assert!(clusters > 20, "{clusters}");
}

/// Width and height of a PNG (its IHDR).
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
    (w, h)
}

/// Graphviz's `dot`, if installed (the test says it skips where it is not).
fn graphviz() -> Option<&'static str> {
    let ok = std::process::Command::new("dot")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: Graphviz `dot` is not installed (apt-get install graphviz)");
    }
    ok.then_some("dot")
}

#[test]
fn graphviz_renders_a_135_node_trail_as_a_picture_not_a_strip() {
    let Some(dot) = graphviz() else { return };
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for (name, file) in [
        ("real", real()),
        ("many-runs", fixture("many-runs")),
        ("many-runs-filtered", fixture("many-runs")),
    ] {
        let mut args = vec!["observe", "--from", &file, "--print", "dot"];
        if name.ends_with("filtered") {
            args.extend(["--filter", "orch=escalation"]);
        }
        let (code, text, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        if name == "many-runs" {
            let drawn = text.lines().filter(|l| l.contains("[label=\"n")).count()
                + text.lines().filter(|l| l.contains("[label=\"d")).count();
            assert!(drawn >= 130, "{drawn} nodes");
        }
        let png = out_dir.join(format!("filter-{name}.png"));
        let mut child = std::process::Command::new(dot)
            .args(["-Tpng", "-o"])
            .arg(&png)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "dot failed on {name}");
        let (w, h) = png_size(&std::fs::read(&png).unwrap());
        eprintln!("{name}: {w}x{h} px at {}", png.display());
        // Before clusters and rankdir=LR the real 139-node trail drew as one
        // rank 27,399 px wide and 359 high: no side is more than 4 times the other now.
        let (long, short) = (w.max(h), w.min(h));
        assert!(long <= 4 * short, "{name}: {w}x{h} is a strip");
        assert!(w <= 8000 && h <= 12000, "{name}: {w}x{h}");
    }
}
