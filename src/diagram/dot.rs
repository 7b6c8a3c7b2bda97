//! Graphviz DOT text.

use std::fmt::Write as _;

use super::{Graph, clean};

/// A DOT string's escapes: a label cannot end its quotes.
fn escaped(s: &str) -> String {
    clean(s).replace('\\', "\\\\").replace('"', "\\\"")
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", escaped(s))
}

pub fn render(g: &Graph) -> String {
    let mut out = String::from(
        "digraph chainview {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n",
    );
    for n in &g.nodes {
        let lines = [n.holder.clone(), n.scope.join(" "), n.status.clone()];
        let text: Vec<String> = lines.iter().map(|l| escaped(l)).collect();
        let mut attrs = vec![format!("label=\"{}\"", text.join("\\n"))];
        if n.refused {
            attrs.push("style=dashed, color=red, fontcolor=red".into());
        } else if n.dead {
            attrs.push("style=filled, fillcolor=\"#eeeeee\", fontcolor=\"#666666\"".into());
        } else if n.maybe {
            attrs.push("style=\"filled,dotted\", fillcolor=\"#fff4d6\"".into());
        }
        let _ = writeln!(out, "  {} [{}];", n.key, attrs.join(", "));
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
