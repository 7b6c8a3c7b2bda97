//! Findings for a terminal: one line each, most severe first, then the fix.

use crate::judge::check::Finding;
use crate::rules::spiffe::with_orch;

pub fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let at = match (&f.node, &f.event) {
            (Some(n), Some(e)) => format!(" ({n} at {e})"),
            (None, Some(e)) => format!(" (at {e})"),
            _ => String::new(),
        };
        let who = f
            .agent
            .as_deref()
            .map(|a| format!(" {}:", with_orch(a)))
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<7} {}{who} {}{at}\n        fix: {}\n",
            f.severity.word(),
            f.rule,
            f.message,
            f.help
        ));
    }
    if findings.is_empty() {
        out.push_str("no findings\n");
    }
    out
}
