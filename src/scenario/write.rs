//! Writes steps back as scenario lines: the inverse of the parser, used by
//! the explorer's export (`e`) so an exploration can be re-run with
//! `--script`. `parse(write(step))` gives the step back (property-tested).

use std::fmt::Write as _;

use super::{AuditFilter, ClaimCheck, Expectation, ImportSource, StepKind};

/// A quoted text as the tokenizer reads it back.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn filter(f: &AuditFilter, with_type: bool) -> String {
    let mut s = String::new();
    if with_type && let Some(t) = &f.event_type {
        let _ = write!(s, " type={t}");
    }
    if let Some(a) = &f.agent {
        let _ = write!(s, " agent={a}");
    }
    if let Some(t) = &f.task {
        let _ = write!(s, " task={t}");
    }
    s
}

/// One step as a scenario line (without a trailing newline).
pub fn step_source(kind: &StepKind) -> String {
    let ttl = |t: &Option<i64>| t.map(|t| format!(" ttl={t}")).unwrap_or_default();
    match kind {
        StepKind::Title(t) => format!("title {}", quote(t)),
        StepKind::Say(t) => format!("say {}", quote(t)),
        StepKind::App { ceiling } => format!("app ceiling={}", ceiling.join(",")),
        StepKind::Agent {
            name,
            orch,
            task,
            scope,
            ttl: t,
        } => format!(
            "agent {name} orch={orch} task={task} scope={}{}",
            scope.join(","),
            ttl(t)
        ),
        StepKind::Delegate {
            from,
            to,
            scope,
            ttl: t,
            label,
        } => format!(
            "delegate {from} -> {to} scope={}{} as={label}",
            scope.join(","),
            ttl(t)
        ),
        StepKind::Validate(l) => format!("validate {}", l.join(",")),
        StepKind::Renew { label, new_label } => match new_label {
            Some(n) => format!("renew {label} as={n}"),
            None => format!("renew {label}"),
        },
        StepKind::Release(l) => format!("release {}", l.join(",")),
        StepKind::Revoke { level, target } => format!("revoke {level} {target}"),
        StepKind::Probe(s) => format!("probe {s}"),
        StepKind::Wait(d) => format!("wait {}ms", d.as_millis()),
        StepKind::Import { label, source } => match source {
            ImportSource::Token(t) => format!("import {label} token={t}"),
            ImportSource::Env(v) => format!("import {label} env={v}"),
            ImportSource::File(p) => format!("import {label} file={p}"),
        },
        StepKind::Audit(f) => format!("audit{}", filter(f, true)).trim_end().to_string(),
        StepKind::Expect(e) => format!("expect {}", expectation(e)),
    }
}

/// An expectation as written after `expect`.
pub fn expectation_text(e: &Expectation) -> String {
    expectation(e)
}

fn expectation(e: &Expectation) -> String {
    match e {
        Expectation::Permits { label, scope } => format!("permits {label} {scope}"),
        Expectation::Denies { label, scope } => format!("denies {label} {scope}"),
        Expectation::Denied {
            label,
            status,
            code,
            detail,
        } => {
            let mut s = format!("{label} denied");
            if let Some(st) = status {
                let _ = write!(s, " {st}");
            }
            if let Some(c) = code {
                let _ = write!(s, " {c}");
            }
            if let Some(d) = detail {
                let _ = write!(s, " {}", quote(d));
            }
            s
        }
        Expectation::Token {
            label,
            status,
            checks,
        } => {
            let mut s = label.clone();
            if let Some(st) = status {
                let _ = write!(s, " {}", st.as_str());
            }
            for c in checks {
                let _ = match c {
                    ClaimCheck::Scope(v) => write!(s, " scope={}", v.join(",")),
                    ClaimCheck::Depth(d) => write!(s, " depth={d}"),
                    ClaimCheck::Chain(v) => write!(s, " chain={}", v.join(",")),
                    ClaimCheck::Ttl(t) => write!(s, " ttl={t}"),
                };
            }
            s
        }
        Expectation::Audit {
            filter: f,
            cmp,
            count,
        } => format!(
            "audit {}{} count{}{count}",
            f.event_type.as_deref().unwrap_or("*"),
            filter(f, false),
            cmp.as_str()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;

    /// Every bundled scenario survives write → parse unchanged.
    #[test]
    fn bundled_scenarios_round_trip() {
        for (name, text) in [
            (
                "deploy",
                include_str!("../../assets/scenarios/deploy.chainview"),
            ),
            (
                "depth",
                include_str!("../../assets/scenarios/depth-limit.chainview"),
            ),
            (
                "esc",
                include_str!("../../assets/scenarios/escalation.chainview"),
            ),
            (
                "rev",
                include_str!("../../assets/scenarios/revocation.chainview"),
            ),
            (
                "life",
                include_str!("../../assets/scenarios/lifecycle.chainview"),
            ),
            (
                "audit",
                include_str!("../../assets/scenarios/audit.chainview"),
            ),
        ] {
            let script = parse(name, text).unwrap();
            let written: String = script
                .steps
                .iter()
                .map(|s| step_source(&s.kind) + "\n")
                .collect();
            let again = parse(name, &written).unwrap_or_else(|e| panic!("{name}: {e}\n{written}"));
            let kinds = |s: &crate::scenario::Script| {
                s.steps.iter().map(|s| s.kind.clone()).collect::<Vec<_>>()
            };
            assert_eq!(kinds(&script), kinds(&again), "{name}");
        }
    }

    #[test]
    fn new_steps_round_trip() {
        let text = "agent a scope=read:x:*\n\
            import t env=CHAINVIEW_TOKEN_T\n\
            import u token=a.b.c\n\
            import v file=/tmp/x.jwt\n\
            audit type=token_revoked agent=a task=t1\n\
            audit\n\
            say \"he said \\\"hi\\\" \\\\ bye\"\n\
            revoke chain spiffe://agentwrit.local/agent/o/t/x\n\
            expect audit delegation_attenuation_violation agent=a count>=1\n\
            expect audit * count=0\n\
            expect t denied 403 scope_violation \"no\"\n";
        let script = parse("t", text).unwrap();
        let written: String = script
            .steps
            .iter()
            .map(|s| step_source(&s.kind) + "\n")
            .collect();
        let again = parse("t", &written).unwrap();
        for (a, b) in script.steps.iter().zip(&again.steps) {
            assert_eq!(a.kind, b.kind);
        }
        assert_eq!(script.steps.len(), again.steps.len());
    }
}
