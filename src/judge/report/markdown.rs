//! Findings as a report a person reads: a summary table, then the findings
//! by severity.

use crate::judge::check::{Finding, RULES, Severity};

pub fn render(findings: &[Finding], source: &str) -> String {
    let mut out = format!("# chainview check — {source}\n\n| severity | findings |\n|---|---|\n");
    for s in [Severity::Error, Severity::Warning, Severity::Note] {
        let n = findings.iter().filter(|f| f.severity == s).count();
        out.push_str(&format!("| {} | {n} |\n", s.word()));
    }
    for s in [Severity::Error, Severity::Warning, Severity::Note] {
        let these: Vec<&Finding> = findings.iter().filter(|f| f.severity == s).collect();
        if these.is_empty() {
            continue;
        }
        out.push_str(&format!("\n## {}\n\n", s.word()));
        for f in these {
            let rule = RULES.iter().find(|r| r.id == f.rule);
            out.push_str(&format!(
                "- **{}** — {}{}{}\n  - fix: {}\n",
                f.rule,
                cell(&f.message),
                f.node
                    .as_deref()
                    .map(|n| format!(" · `{n}`"))
                    .unwrap_or_default(),
                f.event
                    .as_deref()
                    .map(|e| format!(" · `{e}`"))
                    .unwrap_or_default(),
                rule.map(|r| r.help).unwrap_or(f.help),
            ));
        }
    }
    out
}

/// Text from outside (agent ids, scopes) kept from breaking the Markdown.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
