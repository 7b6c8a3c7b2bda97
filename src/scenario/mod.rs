//! The scenario language (`*.chainview`): one step per line, `#` comments,
//! comma-separated lists without spaces. See docs/scenarios.md ("The scenario language").
//!
//! [`parse`] turns text into a [`Script`] and checks every reference before
//! anything runs; [`runner::Runner`] executes it against a broker through the
//! worker, updating the shared [`crate::app::App`] state.

pub mod driver;

/// The scenario language in brief, as `chainview language` prints it.
pub const REFERENCE: &str = include_str!("reference.txt");
mod parser;
pub mod replay;
pub mod report;
pub mod rules;
pub mod runner;
mod steps;
pub mod transcript;
pub mod write;

use std::time::Duration;

pub use parser::{MAX_LINE, MAX_SCRIPT, ParseError, ParseErrors, parse};

use crate::broker::types::RevokeLevel;

/// A parsed, reference-checked scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// The file name used in messages (`-` for standard input).
    pub file: String,
    pub steps: Vec<Step>,
}

impl Script {
    /// A script with no steps (the explorer's runner when no file is loaded).
    pub fn empty() -> Script {
        Script {
            file: String::new(),
            steps: Vec::new(),
        }
    }

    pub fn title(&self) -> Option<&str> {
        self.steps.iter().find_map(|s| match &s.kind {
            StepKind::Title(t) => Some(t.as_str()),
            _ => None,
        })
    }

    /// Whether any step needs the broker's admin secret.
    pub fn needs_admin(&self) -> bool {
        self.steps.iter().any(|s| {
            matches!(
                s.kind,
                StepKind::Revoke { .. }
                    | StepKind::Audit(_)
                    | StepKind::Expect(Expectation::Audit { .. })
            )
        })
    }

    /// The union of the scopes of every `agent` step, in first-seen order.
    pub fn agent_scopes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.steps {
            if let StepKind::Agent { scope, .. } = &s.kind {
                for sc in scope {
                    if !out.contains(sc) {
                        out.push(sc.clone());
                    }
                }
            }
        }
        out
    }
}

/// One line of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// 1-based line number in the file.
    pub line: usize,
    /// The line as written (without its comment).
    pub source: String,
    pub kind: StepKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    Title(String),
    Say(String),
    App {
        ceiling: Vec<String>,
    },
    Agent {
        name: String,
        orch: String,
        task: String,
        scope: Vec<String>,
        ttl: Option<i64>,
    },
    Delegate {
        from: String,
        /// An agent name, or a literal `spiffe://` id (e.g. an unregistered one).
        to: String,
        scope: Vec<String>,
        ttl: Option<i64>,
        label: String,
    },
    Validate(Vec<String>),
    Renew {
        label: String,
        new_label: Option<String>,
    },
    Release(Vec<String>),
    Revoke {
        level: RevokeLevel,
        target: String,
    },
    Probe(String),
    Wait(Duration),
    Expect(Expectation),
    /// `import LABEL token=JWT|env=VAR|file=PATH`: a token from elsewhere.
    Import {
        label: String,
        source: ImportSource,
    },
    /// `audit [type=EVENT] [agent=A] [task=T]`: the broker's audit events.
    Audit(AuditFilter),
}

/// Where an `import` step takes its token from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportSource {
    /// The compact JWT written in the script (or pasted in the explorer).
    Token(String),
    /// An environment variable holding it (what `e` export writes: tokens
    /// are secrets and never land in a file).
    Env(String),
    /// A file holding it (surrounding whitespace ignored).
    File(String),
}

/// Filters on audit events; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub event_type: Option<String>,
    /// An agent name of the script, or a `spiffe://` id.
    pub agent: Option<String>,
    pub task: Option<String>,
}

impl AuditFilter {
    /// Whether an event matches. Scripts match exactly; the explorer's audit
    /// view (`substring`) keeps events whose fields contain what was typed.
    /// An agent given by name matches that agent's SPIFFE id.
    pub fn matches(
        &self,
        app: &crate::app::App,
        e: &crate::broker::types::AuditEvent,
        substring: bool,
    ) -> bool {
        let field = |want: &Option<String>, got: &str| match want.as_deref() {
            None | Some("") => true,
            Some(w) if substring => got.contains(w),
            Some(w) => got == w,
        };
        let agent = self.agent.as_deref().filter(|a| !a.is_empty()).map(|a| {
            app.agent_by_name(a)
                .and_then(|(_, ag)| ag.agent_id.clone())
                .unwrap_or_else(|| a.to_string())
        });
        field(&self.event_type, &e.event_type)
            && field(&self.task, &e.task_id)
            && field(&agent, &e.agent_id)
    }
}

/// How an `expect audit` line compares the number of matching events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ge,
    Le,
}

impl Cmp {
    pub fn as_str(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ge => ">=",
            Cmp::Le => "<=",
        }
    }

    pub fn holds(self, got: usize, want: usize) -> bool {
        match self {
            Cmp::Eq => got == want,
            Cmp::Ge => got >= want,
            Cmp::Le => got <= want,
        }
    }
}

impl StepKind {
    /// The step's keyword, as written in scripts.
    pub fn keyword(&self) -> Keyword {
        match self {
            StepKind::Title(_) => Keyword::Title,
            StepKind::Say(_) => Keyword::Say,
            StepKind::App { .. } => Keyword::App,
            StepKind::Agent { .. } => Keyword::Agent,
            StepKind::Delegate { .. } => Keyword::Delegate,
            StepKind::Validate(_) => Keyword::Validate,
            StepKind::Renew { .. } => Keyword::Renew,
            StepKind::Release(_) => Keyword::Release,
            StepKind::Revoke { .. } => Keyword::Revoke,
            StepKind::Probe(_) => Keyword::Probe,
            StepKind::Wait(_) => Keyword::Wait,
            StepKind::Expect(_) => Keyword::Expect,
            StepKind::Import { .. } => Keyword::Import,
            StepKind::Audit(_) => Keyword::Audit,
        }
    }
}

/// Which kind of step, without its arguments: what reports and views
/// compare (never the text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Keyword {
    Title,
    Say,
    App,
    Agent,
    Delegate,
    Validate,
    Renew,
    Release,
    Revoke,
    Probe,
    Wait,
    Expect,
    Import,
    Audit,
}

impl Keyword {
    /// The word the scenario language uses (and JSON transcripts print).
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Title => "title",
            Keyword::Say => "say",
            Keyword::App => "app",
            Keyword::Agent => "agent",
            Keyword::Delegate => "delegate",
            Keyword::Validate => "validate",
            Keyword::Renew => "renew",
            Keyword::Release => "release",
            Keyword::Revoke => "revoke",
            Keyword::Probe => "probe",
            Keyword::Wait => "wait",
            Keyword::Expect => "expect",
            Keyword::Import => "import",
            Keyword::Audit => "audit",
        }
    }
}

impl std::fmt::Display for Keyword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The token states an `expect` line can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Valid,
    Invalid,
    Released,
    Revoked,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Invalid => "invalid",
            Status::Released => "released",
            Status::Revoked => "revoked",
            Status::Expired => "expired",
        }
    }
}

/// Checks on decoded claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimCheck {
    Scope(Vec<String>),
    Depth(usize),
    /// Agent names of the chain records, root first.
    Chain(Vec<String>),
    /// Lifetime in seconds (`exp - iat`).
    Ttl(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expectation {
    /// `expect T [STATUS] [scope=..] [depth=..] [chain=..]`
    Token {
        label: String,
        status: Option<Status>,
        checks: Vec<ClaimCheck>,
    },
    /// `expect T denied [STATUS] [ERROR_CODE] ["DETAIL"]`
    Denied {
        label: String,
        status: Option<u16>,
        code: Option<String>,
        detail: Option<String>,
    },
    /// `expect permits T SCOPE`
    Permits { label: String, scope: String },
    /// `expect denies T SCOPE`
    Denies { label: String, scope: String },
    /// `expect audit EVENT_TYPE [agent=A] [task=T] count>=N` (also `count=N`,
    /// `count<=N`); also requires the audit hash chain to verify end to end.
    Audit {
        filter: AuditFilter,
        cmp: Cmp,
        count: usize,
    },
}

/// Reads at most `max` bytes; `None` when there is more (an endless input
/// like /dev/zero is not read past `max + 1` bytes).
pub fn read_at_most(r: impl std::io::Read, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    r.take(max as u64 + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() <= max).then_some(bytes))
}

/// A step's line as echoed in transcripts and frame headers: a whole token
/// given inline (`import L token=<JWT>`) is cut to its first 12 characters,
/// as every other token is, unless the user asked to see secrets.
pub fn redact_source(line: &str) -> String {
    if !line.contains("token=") {
        return line.to_string();
    }
    line.split(' ')
        .map(|w| match w.strip_prefix("token=") {
            Some(tok) if !tok.is_empty() => format!("token={}", crate::jwt::redact(tok)),
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}
