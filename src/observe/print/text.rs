//! The forest as an indented tree, with the denials by count.

use std::io::{self, Write};

use crate::observe::{Liveness, NodeId, Observed};
use crate::scope;

/// `spiffe://…/agent/orch/task/0123456789abcdef` → `orch/task/0123`.
pub fn short(spiffe: &str) -> String {
    crate::rules::spiffe::with_orch(spiffe)
}

/// One node's line (without the tree drawing in front): `?` after the
/// status when it is a guess, `(may permit)` when the trail cannot settle
/// whether it can still be used.
pub fn line(o: &Observed, i: NodeId, at: usize) -> String {
    let n = &o.nodes[i];
    let j = o.status(i, at);
    let mark = if j.inferred || !n.inferred.is_empty() {
        "?"
    } else {
        ""
    };
    let maybe = if j.liveness == Liveness::Maybe {
        " (may permit)"
    } else {
        ""
    };
    let hop = match (n.parent, o.renews_at(i, at), n.renews_doubt) {
        (_, Some(r), _) => format!(" renews n{r}"),
        (_, None, Some(d)) => {
            let left: Vec<String> = o
                .doubt_left(d, at)
                .iter()
                .map(|c| format!("n{c}"))
                .collect();
            format!(" renews one of {}?", left.join("|"))
        }
        (Some(p), None, None) => {
            let w = scope::hop_words(&o.nodes[p].scope, &n.scope);
            if w.is_empty() {
                String::new()
            } else {
                format!(" {w}")
            }
        }
        _ => String::new(),
    };
    let impossible = match &n.impossible {
        Some(why) => format!(" IMPOSSIBLE: {why}"),
        None => String::new(),
    };
    let after_break = match &o.first_broken {
        Some(b) if !o.consistent_at(n.event) => {
            format!(" ⚠ unverified: at or after the break at {}", b.id)
        }
        _ => String::new(),
    };
    format!(
        "n{i} {} [{}] {}{mark}{maybe} · {} {}{hop}{impossible}{after_break}",
        short(&o.agents[n.agent].spiffe),
        n.scope.join(" "),
        j.status.word(),
        n.kind.word(),
        o.events[n.event].id,
    )
}

pub fn write(o: &Observed, at: usize, w: &mut dyn Write) -> io::Result<()> {
    let s = &o.events[at];
    writeln!(
        w,
        "as of {} · {} · hash chain {}",
        s.id,
        crate::observe::when::stamp(s.ms),
        o.chain_words()
    )?;
    for f in o.failures() {
        writeln!(w, "INTEGRITY: {f}")?;
    }
    if let Some(Ok(c)) = &o.checkpoint {
        writeln!(w, "the trail {c}")?;
    }
    for n in o.integrity_notes() {
        writeln!(w, "note: {n}")?;
    }
    for root in o.roots(at) {
        walk(o, root, at, w)?;
    }
    let counts = o.denial_counts(at);
    if !counts.is_empty() {
        writeln!(w, "\ndenials (most first):")?;
        for (class, who, n) in counts {
            writeln!(w, "  {n:>4}  {class:<24} {}", short(&who))?;
        }
    }
    for (k, note) in o.notes.iter().filter(|(k, _)| *k <= at) {
        writeln!(w, "note ({}): {note}", o.events[*k].id)?;
    }
    Ok(())
}

/// The tree under `root`, depth first, with an explicit stack (no
/// recursion, whatever the trail's shape).
fn walk(o: &Observed, root: NodeId, at: usize, w: &mut dyn Write) -> io::Result<()> {
    // (node, prefix of its children's lines, its own branch drawing)
    let mut stack: Vec<(NodeId, String, &'static str)> = vec![(root, String::new(), "")];
    while let Some((i, prefix, branch)) = stack.pop() {
        writeln!(w, "{prefix}{branch}{}", line(o, i, at))?;
        let more = match branch {
            "" => "",
            "└─ " => "   ",
            _ => "│  ",
        };
        let inner = format!("{prefix}{more}");
        let n = &o.nodes[i];
        let kids: Vec<NodeId> = n
            .children
            .iter()
            .copied()
            .filter(|&c| o.exists(c, at))
            .collect();
        let denials: Vec<usize> = n
            .denials
            .iter()
            .copied()
            .filter(|&d| o.denials[d].event <= at && o.denial_shown(d))
            .collect();
        for (x, &d) in denials.iter().enumerate() {
            let d = &o.denials[d];
            let end = x + 1 == denials.len() && kids.is_empty();
            let to = d.target.as_deref().map(short).unwrap_or_default();
            writeln!(
                w,
                "{inner}{}✗ {} → {to} [{}] {}",
                if end { "└╌ " } else { "├╌ " },
                d.event_type,
                d.requested.join(" "),
                o.events[d.event].id
            )?;
        }
        for (x, &c) in kids.iter().enumerate().rev() {
            let branch = if x + 1 == kids.len() {
                "└─ "
            } else {
                "├─ "
            };
            stack.push((c, inner.clone(), branch));
        }
    }
    Ok(())
}
