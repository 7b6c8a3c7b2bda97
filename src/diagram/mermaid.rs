//! Mermaid `flowchart` text.

use std::fmt::Write as _;

use super::{Graph, clean, clusters};

/// Mermaid's own entity escapes, so a label cannot end its quotes.
fn label(s: &str) -> String {
    clean(s)
        .replace('#', "#35;")
        .replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
        .replace('|', "#124;")
}

/// Chains run left to right, in a subgraph per orch and one per task
/// inside it (as the DOT clusters).
pub fn render(g: &Graph) -> String {
    let mut out = String::from("flowchart LR\n");
    for (o, (orch, tasks)) in clusters(g).into_iter().enumerate() {
        let indent = if orch.is_empty() { "  " } else { "    " };
        if !orch.is_empty() {
            let _ = writeln!(out, "  subgraph orch_{o}[\"orch {}\"]", label(orch));
        }
        for (t, (task, members)) in tasks.into_iter().enumerate() {
            if !task.is_empty() {
                let _ = writeln!(
                    out,
                    "{indent}subgraph task_{o}_{t}[\"task {}\"]",
                    label(task)
                );
            }
            for i in members {
                let n = &g.nodes[i];
                let mark = if n.refused { "✗ " } else { "" };
                let text = format!(
                    "{mark}{} · {}<br/>{}<br/>{}",
                    n.key,
                    label(&n.holder),
                    label(&n.scope.join(" ")),
                    label(&n.status)
                );
                let _ = writeln!(out, "{indent}  {}[\"{text}\"]", n.key);
            }
            if !task.is_empty() {
                let _ = writeln!(out, "{indent}end");
            }
        }
        if !orch.is_empty() {
            out.push_str("  end\n");
        }
    }
    for e in &g.edges {
        let arrow = if e.dashed { "-.->" } else { "-->" };
        if e.label.is_empty() {
            let _ = writeln!(out, "  {} {arrow} {}", e.from, e.to);
        } else {
            let _ = writeln!(
                out,
                "  {} {arrow}|\"{}\"| {}",
                e.from,
                label(&e.label),
                e.to
            );
        }
    }
    out.push_str("  classDef dead fill:#eee,stroke:#999,color:#666\n");
    out.push_str("  classDef refused fill:#fee,stroke:#c00,color:#900,stroke-dasharray:4 3\n");
    out.push_str("  classDef maybe fill:#fff4d6,stroke:#c90,stroke-dasharray:2 2\n");
    // One class line per kind of node: greyed dead, amber may-be, red refused.
    type Keep = fn(&super::Node) -> bool;
    let kinds: [(&str, Keep); 3] = [
        ("maybe", |n| n.maybe && !n.refused),
        ("dead", |n| n.dead && !n.refused),
        ("refused", |n| n.refused),
    ];
    for (class, keep) in kinds {
        let keys: Vec<&str> = g
            .nodes
            .iter()
            .filter(|n| keep(n))
            .map(|n| n.key.as_str())
            .collect();
        if !keys.is_empty() {
            let _ = writeln!(out, "  class {} {class}", keys.join(","));
        }
    }
    out
}
