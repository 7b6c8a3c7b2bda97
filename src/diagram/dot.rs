//! Graphviz DOT text.

use std::fmt::Write as _;

use super::{Graph, clean, clusters};

/// A DOT string's escapes: a label cannot end its quotes.
fn escaped(s: &str) -> String {
    clean(s).replace('\\', "\\\\").replace('"', "\\\"")
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", escaped(s))
}

/// Chains run left to right; each orch is a cluster, each task a cluster
/// inside it, so a forest of many roots stacks into readable rows instead
/// of one rank as wide as the forest.
pub fn render(g: &Graph) -> String {
    let mut out = String::from(concat!(
        "digraph chainview {\n",
        "  rankdir=LR;\n",
        "  newrank=true;\n",
        "  nodesep=0.15;\n",
        "  ranksep=0.35;\n",
        "  fontname=\"monospace\";\n",
        "  node [shape=box, style=rounded, fontname=\"monospace\", fontsize=10];\n",
        "  edge [fontname=\"monospace\", fontsize=9, color=\"#555555\"];\n",
    ));
    for (o, (orch, tasks)) in clusters(g).into_iter().enumerate() {
        let indent = if orch.is_empty() { "  " } else { "    " };
        if !orch.is_empty() {
            let _ = writeln!(
                out,
                "  subgraph cluster_o{o} {{\n    label={};\n    style=rounded;\n    color=\"#8a8f99\";\n    fontsize=12;",
                quoted(&format!("orch {orch}"))
            );
        }
        for (t, (task, members)) in tasks.into_iter().enumerate() {
            if !task.is_empty() {
                let _ = writeln!(
                    out,
                    "{indent}subgraph cluster_o{o}_t{t} {{\n{indent}  label={};\n{indent}  style=\"rounded,filled\";\n{indent}  fillcolor=\"#f3f6fb\";\n{indent}  color=\"#b9c3d3\";\n{indent}  fontsize=10;",
                    quoted(&format!("task {task}"))
                );
            }
            for i in members {
                let _ = writeln!(out, "{indent}  {}", node(&g.nodes[i]));
            }
            if !task.is_empty() {
                let _ = writeln!(out, "{indent}}}");
            }
        }
        if !orch.is_empty() {
            out.push_str("  }\n");
        }
    }
    for e in &g.edges {
        let mut attrs = Vec::new();
        if !e.label.is_empty() {
            attrs.push(format!("label={}", quoted(&e.label)));
        }
        if e.dashed {
            attrs.push("style=dashed".into());
        }
        let _ = writeln!(out, "  {} -> {} [{}];", e.from, e.to, attrs.join(", "));
    }
    out.push_str("}\n");
    out
}

/// One node's statement: its key, holder, scope and status, drawn by kind.
fn node(n: &super::Node) -> String {
    let lines = [
        format!("{} · {}", n.key, n.holder),
        n.scope.join(" "),
        n.status.clone(),
    ];
    let text: Vec<String> = lines.iter().map(|l| escaped(l)).collect();
    let mut attrs = vec![format!("label=\"{}\"", text.join("\\n"))];
    if n.refused {
        attrs.push("style=\"rounded,dashed\", color=red, fontcolor=red".into());
    } else if n.dead {
        attrs.push("style=\"rounded,filled\", fillcolor=\"#e4e4e4\", fontcolor=\"#666666\"".into());
    } else if n.maybe {
        attrs.push("style=\"rounded,filled,dotted\", fillcolor=\"#fff4d6\"".into());
    } else {
        attrs.push("style=\"rounded,filled\", fillcolor=white".into());
    }
    format!("{} [{}];", n.key, attrs.join(", "))
}
