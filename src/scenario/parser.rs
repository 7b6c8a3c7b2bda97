//! Parser for `*.chainview` scenarios. Errors carry `file:line:col`, say what
//! was expected, and suggest the nearest known name for a misspelling.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use super::{
    AuditFilter, ClaimCheck, Cmp, Expectation, ImportSource, Script, Status, Step, StepKind,
};
use crate::broker::types::RevokeLevel;

mod tokens;
use tokens::{Tok, tokenize};

/// One problem in a script, at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

/// Every problem found in a script (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseErrors(pub Vec<ParseError>);

impl fmt::Display for ParseErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseErrors {}

const KEYWORDS: [&str; 14] = [
    "title", "say", "app", "agent", "delegate", "validate", "renew", "release", "revoke", "probe",
    "wait", "expect", "import", "audit",
];
const STATUS_WORDS: [&str; 8] = [
    "valid", "invalid", "released", "revoked", "expired", "denied", "permits", "denies",
];

/// The nearest candidate to `word`, if it is close enough to be a likely typo.
pub fn suggest<'a, I: IntoIterator<Item = &'a str>>(word: &str, candidates: I) -> Option<&'a str> {
    let len = word.chars().count();
    let limit = (len / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::osa_distance(word, c), c))
        .filter(|(d, _)| *d <= limit && *d < len)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn did_you_mean(s: Option<&str>) -> String {
    s.map(|c| format!(" — did you mean '{c}'?"))
        .unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LabelKind {
    Agent,
    Token,
}

struct Parser {
    file: String,
    errors: Vec<ParseError>,
    /// label → (kind, line defined)
    labels: HashMap<String, (LabelKind, usize)>,
    line: usize,
}

type R<T> = Result<T, ParseError>;

/// An `expect audit` count: comparison, number, column.
type Count = (Cmp, usize, usize);

impl Parser {
    fn err(&self, col: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            file: self.file.clone(),
            line: self.line,
            col,
            message: message.into(),
        }
    }

    fn names(&self, kind: Option<LabelKind>) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .labels
            .iter()
            .filter(|(_, (k, _))| kind.is_none_or(|want| *k == want))
            .map(|(n, _)| n.as_str())
            .collect();
        v.sort_unstable();
        v
    }

    /// A label (agent name or `as=` label) that must already be defined.
    fn token_ref(&self, t: &Tok) -> R<String> {
        self.known(t, None, "token")
    }

    fn agent_ref(&self, t: &Tok) -> R<String> {
        if let Some((LabelKind::Token, _)) = self.labels.get(&t.text) {
            return Err(self.err(
                t.col,
                format!(
                    "'{}' is a delegated token, not an agent: name an agent defined with `agent`",
                    t.text
                ),
            ));
        }
        self.known(t, Some(LabelKind::Agent), "agent")
    }

    fn known(&self, t: &Tok, kind: Option<LabelKind>, what: &str) -> R<String> {
        if self.labels.contains_key(&t.text) {
            return Ok(t.text.clone());
        }
        let names = self.names(kind);
        let hint = did_you_mean(suggest(&t.text, names.iter().copied()));
        let hint = if hint.is_empty() && names.is_empty() {
            format!(" — no {what} is defined before line {}", self.line)
        } else if hint.is_empty() {
            format!(" (known: {})", names.join(", "))
        } else {
            hint
        };
        Err(self.err(t.col, format!("unknown {what} '{}'{hint}", t.text)))
    }

    fn define(&mut self, t: &Tok, kind: LabelKind) -> R<String> {
        super::rules::name(&t.text).map_err(|e| self.err(t.col, e))?;
        if let Some((_, line)) = self.labels.get(&t.text) {
            return Err(self.err(
                t.col,
                format!(
                    "duplicate label '{}' (first defined on line {line})",
                    t.text
                ),
            ));
        }
        self.labels.insert(t.text.clone(), (kind, self.line));
        Ok(t.text.clone())
    }

    fn scopes(&self, t: &Tok, value: &str, value_col: usize) -> R<Vec<String>> {
        let _ = t;
        if value.is_empty() {
            return Err(self.err(value_col, super::rules::NO_SCOPES));
        }
        let mut out = Vec::new();
        let mut col = value_col;
        for part in value.split(',') {
            if let Err(e) = super::rules::scope_entry(part) {
                return Err(self.err(col, e));
            }
            out.push(part.to_string());
            col += part.chars().count() + 1;
        }
        Ok(out)
    }

    fn scope_arg(&self, t: &Tok) -> R<String> {
        super::rules::scope_entry(&t.text).map_err(|e| self.err(t.col, e))?;
        Ok(t.text.clone())
    }

    fn ttl(&self, value: &str, col: usize) -> R<i64> {
        super::rules::ttl(value).map_err(|e| self.err(col, e))
    }

    /// Splits `key=value` options, rejecting unknown keys with a suggestion.
    fn options<'t>(
        &self,
        toks: &'t [Tok],
        allowed: &[&'static str],
    ) -> R<Vec<(&'static str, &'t str, usize, &'t Tok)>> {
        let mut out: Vec<(&'static str, &'t str, usize, &'t Tok)> = Vec::new();
        for t in toks {
            let Some((k, v)) = t.text.split_once('=') else {
                return Err(self.err(
                    t.col,
                    format!(
                        "unexpected '{}': expected one of {}",
                        t.text,
                        allowed
                            .iter()
                            .map(|a| format!("{a}="))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            };
            let Some(key) = allowed.iter().find(|a| **a == k) else {
                let hint = suggest(k, allowed.iter().copied())
                    .map(|c| format!(" — did you mean '{c}='?"))
                    .unwrap_or_default();
                return Err(self.err(t.col, format!("unknown option '{k}='{hint}")));
            };
            if out.iter().any(|(seen, ..)| seen == key) {
                return Err(self.err(t.col, format!("option '{k}=' given twice")));
            }
            out.push((*key, v, t.col + k.chars().count() + 1, t));
        }
        Ok(out)
    }

    fn quoted(&self, kw: &Tok, rest: &[Tok]) -> R<String> {
        match rest {
            [t] if t.quoted => Ok(t.text.clone()),
            [] => Err(self.err(
                kw.col + kw.text.len() + 1,
                format!("expected a quoted text after '{}'", kw.text),
            )),
            [t, ..] if !t.quoted => Err(self.err(
                t.col,
                format!(
                    "expected a quoted text after '{}', like {} \"…\"",
                    kw.text, kw.text
                ),
            )),
            [_, extra, ..] => Err(self.err(extra.col, "unexpected text after the quoted text")),
            [t] => Err(self.err(t.col, "expected a quoted text")),
        }
    }

    fn need<'t>(&self, rest: &'t [Tok], i: usize, after: &Tok, what: &str) -> R<&'t Tok> {
        rest.get(i).ok_or_else(|| {
            let col = rest
                .last()
                .map(|t| t.col + t.text.chars().count() + 1)
                .unwrap_or(after.col + after.text.chars().count() + 1);
            self.err(col, format!("expected {what}"))
        })
    }

    fn list_refs(&self, t: &Tok) -> R<Vec<String>> {
        let mut out = Vec::new();
        let mut col = t.col;
        for part in t.text.split(',') {
            let pt = Tok {
                text: part.to_string(),
                col,
                quoted: false,
            };
            out.push(self.token_ref(&pt)?);
            col += part.chars().count() + 1;
        }
        Ok(out)
    }

    fn step(&mut self, toks: &[Tok]) -> R<StepKind> {
        let kw = &toks[0];
        let rest = &toks[1..];
        let k = kw.text.as_str();
        Ok(match k {
            "title" => StepKind::Title(self.quoted(kw, rest)?),
            "say" => StepKind::Say(self.quoted(kw, rest)?),
            "app" => self.step_app(kw, rest)?,
            "agent" => self.step_agent(kw, rest)?,
            "delegate" => self.step_delegate(kw, rest)?,
            "validate" | "release" => self.step_validate(kw, rest)?,
            "renew" => self.step_renew(kw, rest)?,
            "revoke" => self.step_revoke(kw, rest)?,
            "probe" => self.step_probe(kw, rest)?,
            "wait" => self.step_wait(kw, rest)?,
            "expect" => StepKind::Expect(self.expectation(kw, rest)?),
            "import" => self.step_import(kw, rest)?,
            "audit" => StepKind::Audit(self.audit_filter(rest)?.0),
            other => {
                let hint = did_you_mean(suggest(other, KEYWORDS));
                return Err(self.err(kw.col, format!("unknown step '{other}'{hint}")));
            }
        })
    }

    fn step_app(&mut self, kw: &Tok, rest: &[Tok]) -> R<StepKind> {
        Ok({
            let opts = self.options(rest, &["ceiling"])?;
            let Some((_, v, col, t)) = opts.first() else {
                return Err(self.err(kw.col + 4, "expected ceiling=SCOPE,SCOPE"));
            };
            StepKind::App {
                ceiling: self.scopes(t, v, *col)?,
            }
        })
    }

    fn step_agent(&mut self, kw: &Tok, rest: &[Tok]) -> R<StepKind> {
        Ok({
            let name_tok = self.need(rest, 0, kw, "an agent name")?;
            let opts = self.options(&rest[1..], &["orch", "task", "scope", "ttl"])?;
            let mut orch = "chainview".to_string();
            let mut task = name_tok.text.clone();
            let mut scope = None;
            let mut ttl = None;
            for (key, v, col, t) in opts {
                match key {
                    "orch" | "task" => {
                        super::rules::segment(key, v).map_err(|e| self.err(col, e))?;
                        if key == "orch" {
                            orch = v.to_string();
                        } else {
                            task = v.to_string();
                        }
                    }
                    "scope" => scope = Some(self.scopes(t, v, col)?),
                    _ => ttl = Some(self.ttl(v, col)?),
                }
            }
            let Some(scope) = scope else {
                return Err(self.err(
                    kw.col,
                    "agent needs scope=SCOPE,SCOPE (the scope it registers with)",
                ));
            };
            let name = self.define(name_tok, LabelKind::Agent)?;
            StepKind::Agent {
                name,
                orch,
                task,
                scope,
                ttl,
            }
        })
    }

    fn step_delegate(&mut self, kw: &Tok, rest: &[Tok]) -> R<StepKind> {
        Ok({
            let from_tok = self.need(rest, 0, kw, "the delegating token (an agent or a label)")?;
            let from = self.token_ref(from_tok)?;
            let arrow = self.need(rest, 1, from_tok, "'->'")?;
            if arrow.text != "->" {
                return Err(self.err(arrow.col, format!("expected '->', found '{}'", arrow.text)));
            }
            let to_tok = self.need(rest, 2, arrow, "the agent to delegate to")?;
            let to = if to_tok.text.starts_with("spiffe://") {
                to_tok.text.clone()
            } else {
                self.agent_ref(to_tok)?
            };
            let opts = self.options(&rest[3..], &["scope", "ttl", "as"])?;
            let mut scope = None;
            let mut ttl = None;
            let mut label_tok = None;
            for (key, v, col, t) in opts {
                match key {
                    "scope" => scope = Some(self.scopes(t, v, col)?),
                    "ttl" => ttl = Some(self.ttl(v, col)?),
                    _ => {
                        label_tok = Some(Tok {
                            text: v.to_string(),
                            col,
                            quoted: false,
                        })
                    }
                }
            }
            let Some(scope) = scope else {
                return Err(self.err(kw.col, "delegate needs scope=SCOPE,SCOPE"));
            };
            let Some(label_tok) = label_tok else {
                return Err(self.err(
                    kw.col,
                    "delegate needs as=LABEL to name the delegated token",
                ));
            };
            let label = self.define(&label_tok, LabelKind::Token)?;
            StepKind::Delegate {
                from,
                to,
                scope,
                ttl,
                label,
            }
        })
    }

    fn step_validate(&mut self, kw: &Tok, rest: &[Tok]) -> R<StepKind> {
        let k = kw.text.as_str();
        Ok({
            let t = self.need(rest, 0, kw, "one or more tokens, comma-separated")?;
            if let Some(extra) = rest.get(1) {
                return Err(self.err(
                    extra.col,
                    "unexpected text: list tokens comma-separated without spaces",
                ));
            }
            let list = self.list_refs(t)?;
            if k == "validate" {
                StepKind::Validate(list)
            } else {
                StepKind::Release(list)
            }
        })
    }

    fn step_renew(&mut self, kw: &Tok, rest: &[Tok]) -> R<StepKind> {
        Ok({
            let t = self.need(rest, 0, kw, "the token to renew")?;
            let label = self.token_ref(t)?;
            let opts = self.options(&rest[1..], &["as"])?;
            let new_label = match opts.first() {
                Some((_, v, col, _)) => Some(self.define(
                    &Tok {
                        text: v.to_string(),
                        col: *col,
                        quoted: false,
                    },
                    LabelKind::Token,
                )?),
                None => None,
            };
            StepKind::Renew { label, new_label }
        })
    }

    fn step_revoke(&mut self, kw: &Tok, rest: &[Tok]) -> R<StepKind> {
        Ok({
            let lt = self.need(rest, 0, kw, "a level: token, agent, task or chain")?;
            let Some(level) = RevokeLevel::parse(&lt.text) else {
                let hint = did_you_mean(suggest(&lt.text, ["token", "agent", "task", "chain"]));
                return Err(self.err(
                    lt.col,
                    format!(
                        "unknown revocation level '{}' (expected token, agent, task or chain){hint}",
                        lt.text
                    ),
                ));
            };
            let t = self.need(rest, 1, lt, "the revocation target")?;
            if let Some(extra) = rest.get(2) {
                return Err(self.err(extra.col, "unexpected text after the target"));
            }
            let target = match level {
                RevokeLevel::Token => self.token_ref(t)?,
                RevokeLevel::Agent | RevokeLevel::Chain if t.text.starts_with("spiffe://") => {
                    t.text.clone()
                }
                RevokeLevel::Agent | RevokeLevel::Chain => self.agent_ref(t)?,
                RevokeLevel::Task => t.text.clone(),
            };
            StepKind::Revoke { level, target }
        })
    }

    fn step_probe(&mut self, kw: &Tok, rest: &[Tok]) -> R<StepKind> {
        Ok({
            let t = self.need(rest, 0, kw, "a scope to probe, like read:config:production")?;
            if let Some(extra) = rest.get(1) {
                return Err(self.err(extra.col, "probe takes one scope"));
            }
            StepKind::Probe(self.scope_arg(t)?)
        })
    }

    fn step_wait(&mut self, kw: &Tok, rest: &[Tok]) -> R<StepKind> {
        Ok({
            let t = self.need(rest, 0, kw, "a duration like 2s or 500ms")?;
            StepKind::Wait(self.duration(t)?)
        })
    }

    fn step_import(&mut self, kw: &Tok, rest: &[Tok]) -> R<StepKind> {
        Ok({
            let t = self.need(rest, 0, kw, "a label for the imported token")?;
            let opts = self.options(&rest[1..], &["token", "env", "file"])?;
            let source = match opts.as_slice() {
                [(key, v, col, _)] => {
                    if v.is_empty() {
                        return Err(self.err(*col, format!("{key}= needs a value")));
                    }
                    match *key {
                        "token" => ImportSource::Token(v.to_string()),
                        "env" => ImportSource::Env(v.to_string()),
                        _ => ImportSource::File(v.to_string()),
                    }
                }
                [] => {
                    return Err(self.err(
                        t.col + t.text.chars().count() + 1,
                        "import needs one of token=JWT, env=VARIABLE or file=PATH",
                    ));
                }
                [_, (_, _, _, second), ..] => {
                    return Err(self.err(
                        second.col,
                        "import takes exactly one of token=, env= or file=",
                    ));
                }
            };
            let label = self.define(t, LabelKind::Token)?;
            StepKind::Import { label, source }
        })
    }

    fn duration(&self, t: &Tok) -> R<Duration> {
        let s = t.text.as_str();
        let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, "s"),
        };
        let mult = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            _ => {
                return Err(self.err(
                    t.col,
                    format!("bad duration '{s}': expected a number with ms, s or m, like 2s"),
                ));
            }
        };
        match num.parse::<f64>() {
            Ok(n) if n.is_finite() && n >= 0.0 && n * mult <= 3600.0 => {
                Ok(Duration::from_secs_f64(n * mult))
            }
            _ => Err(self.err(
                t.col,
                format!("bad duration '{s}': expected a number with ms, s or m (at most 1 hour)"),
            )),
        }
    }

    /// `[type=EVENT] [agent=A] [task=T]`, plus `count…` when `count` is true.
    fn audit_filter(&self, rest: &[Tok]) -> R<(AuditFilter, Option<Count>)> {
        let mut f = AuditFilter::default();
        let mut count = None;
        let mut opts = Vec::new();
        for t in rest {
            if let Some(v) = t.text.strip_prefix("count") {
                let (cmp, n) = if let Some(n) = v.strip_prefix(">=") {
                    (Cmp::Ge, n)
                } else if let Some(n) = v.strip_prefix("<=") {
                    (Cmp::Le, n)
                } else if let Some(n) = v.strip_prefix('=') {
                    (Cmp::Eq, n)
                } else {
                    return Err(self.err(
                        t.col,
                        format!(
                            "bad count '{}': write count>=N, count=N or count<=N",
                            t.text
                        ),
                    ));
                };
                let n = n.parse::<usize>().map_err(|_| {
                    self.err(
                        t.col,
                        format!("bad count '{}': N must be a whole number", t.text),
                    )
                })?;
                count = Some((cmp, n, t.col));
            } else {
                opts.push(t.clone());
            }
        }
        for (key, v, col, _) in self.options(&opts, &["type", "agent", "task"])? {
            if v.is_empty() {
                return Err(self.err(col, format!("{key}= needs a value")));
            }
            match key {
                "type" => f.event_type = Some(v.to_string()),
                "task" => f.task = Some(v.to_string()),
                _ => {
                    f.agent = Some(if v.starts_with("spiffe://") {
                        v.to_string()
                    } else {
                        self.agent_ref(&Tok {
                            text: v.to_string(),
                            col,
                            quoted: false,
                        })?
                    })
                }
            }
        }
        Ok((f, count))
    }

    fn expectation(&self, kw: &Tok, rest: &[Tok]) -> R<Expectation> {
        let first = self.need(
            rest,
            0,
            kw,
            "what to expect, like 'hop1 valid' or 'permits hop1 SCOPE'",
        )?;
        if first.text == "audit" {
            return self.expect_audit(first, rest);
        }
        if first.text == "permits" || first.text == "denies" {
            return self.expect_scope(first, rest);
        }
        if !self.labels.contains_key(&first.text) {
            // A misspelt expectation word, or an unknown token?
            if let Some(w) = suggest(&first.text, ["permits", "denies", "audit"]) {
                return Err(self.err(
                    first.col,
                    format!("unknown expectation '{}' — did you mean '{w}'?", first.text),
                ));
            }
        }
        let label = self.token_ref(first)?;
        let mut status = None;
        let mut rest = &rest[1..];
        if let Some(t) = rest.first()
            && !t.text.contains('=')
        {
            if t.text == "denied" {
                return self.expect_denied(label, &rest[1..]);
            }
            status = Some(self.status_word(t)?);
            rest = &rest[1..];
        }
        let checks = self.claim_checks(rest)?;
        if status.is_none() && checks.is_empty() {
            return Err(self.err(
                first.col + first.text.chars().count() + 1,
                "expected a status (valid, invalid, released, revoked, expired, denied) or a check (scope=, depth=, chain=, ttl=)",
            ));
        }
        Ok(Expectation::Token {
            label,
            status,
            checks,
        })
    }

    /// `expect audit TYPE [filters] count…`
    fn expect_audit(&self, first: &Tok, rest: &[Tok]) -> R<Expectation> {
        let et = self.need(
            rest,
            1,
            first,
            "an audit event type (or *), like delegation_attenuation_violation",
        )?;
        if et.text.contains('=') || et.text.starts_with("count") {
            return Err(self.err(
                et.col,
                "expected an audit event type (or * for any) before the options",
            ));
        }
        let (mut filter, count) = self.audit_filter(&rest[2..])?;
        if filter.event_type.is_some() {
            return Err(self.err(et.col, "give the event type once, right after 'audit'"));
        }
        if et.text != "*" {
            filter.event_type = Some(et.text.clone());
        }
        let Some((cmp, count, _)) = count else {
            return Err(self.err(
                et.col + et.text.chars().count() + 1,
                "expect audit needs a count, like count>=1",
            ));
        };
        Ok(Expectation::Audit { filter, cmp, count })
    }

    /// `expect permits|denies T SCOPE`
    fn expect_scope(&self, first: &Tok, rest: &[Tok]) -> R<Expectation> {
        let t = self.need(rest, 1, first, "a token")?;
        let label = self.token_ref(t)?;
        let st = self.need(rest, 2, t, "a scope")?;
        let scope = self.scope_arg(st)?;
        if let Some(extra) = rest.get(3) {
            return Err(self.err(extra.col, "unexpected text after the scope"));
        }
        Ok(if first.text == "permits" {
            Expectation::Permits { label, scope }
        } else {
            Expectation::Denies { label, scope }
        })
    }

    /// `expect T denied [STATUS] [ERROR_CODE] ["DETAIL"]` (after `denied`).
    fn expect_denied(&self, label: String, rest: &[Tok]) -> R<Expectation> {
        let mut st = None;
        let mut code = None;
        let mut detail = None;
        for extra in rest {
            if extra.quoted && detail.is_none() {
                detail = Some(extra.text.clone());
            } else if let Ok(n) = extra.text.parse::<u16>()
                && st.is_none()
                && code.is_none()
                && (100..=599).contains(&n)
            {
                st = Some(n);
            } else if code.is_none()
                && !extra.text.is_empty()
                && extra
                    .text
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            {
                code = Some(extra.text.clone());
            } else {
                return Err(self.err(
                    extra.col,
                    format!(
                        "unexpected '{}': expect T denied [STATUS] [ERROR_CODE] [\"DETAIL\"], like 'denied 403 scope_violation'",
                        extra.text
                    ),
                ));
            }
        }
        Ok(Expectation::Denied {
            label,
            status: st,
            code,
            detail,
        })
    }

    fn status_word(&self, t: &Tok) -> R<Status> {
        Ok(match t.text.as_str() {
            "valid" => Status::Valid,
            "invalid" => Status::Invalid,
            "released" => Status::Released,
            "revoked" => Status::Revoked,
            "expired" => Status::Expired,
            other => {
                let hint = did_you_mean(suggest(other, STATUS_WORDS));
                return Err(self.err(
                    t.col,
                    format!(
                        "unknown expectation '{other}' (expected valid, invalid, released, revoked, expired, denied, or scope=/depth=/chain=/ttl=){hint}"
                    ),
                ));
            }
        })
    }

    /// `scope=… depth=… chain=… ttl=…`
    fn claim_checks(&self, rest: &[Tok]) -> R<Vec<ClaimCheck>> {
        let mut checks = Vec::new();
        for (key, v, col, t) in self.options(rest, &["scope", "depth", "chain", "ttl"])? {
            checks.push(match key {
                "scope" => ClaimCheck::Scope(self.scopes(t, v, col)?),
                "ttl" => ClaimCheck::Ttl(self.ttl(v, col)?),
                "depth" => ClaimCheck::Depth(v.parse::<usize>().map_err(|_| {
                    self.err(col, format!("depth must be a whole number, got '{v}'"))
                })?),
                _ => {
                    let mut names = Vec::new();
                    let mut c = col;
                    for part in v.split(',') {
                        names.push(self.agent_ref(&Tok {
                            text: part.to_string(),
                            col: c,
                            quoted: false,
                        })?);
                        c += part.chars().count() + 1;
                    }
                    ClaimCheck::Chain(names)
                }
            });
        }
        Ok(checks)
    }
}

/// Parses and reference-checks a scenario. `file` names it in messages.
/// The longest line a script may have: room for an inline token at the
/// broker's 1 MiB body limit, and not much more.
pub const MAX_LINE: usize = (1 << 20) + 1024;
/// The largest script chainview reads.
pub const MAX_SCRIPT: usize = 4 << 20;

pub fn parse(file: &str, text: &str) -> Result<Script, ParseErrors> {
    let mut p = Parser {
        file: file.to_string(),
        errors: Vec::new(),
        labels: HashMap::new(),
        line: 0,
    };
    let mut steps = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        p.line = i + 1;
        if raw.len() > MAX_LINE {
            let e = p.err(
                1,
                format!(
                    "line is {} bytes long; a script line may be at most {MAX_LINE}",
                    raw.len()
                ),
            );
            p.errors.push(e);
            continue;
        }
        let (toks, source) = match tokenize(raw) {
            Ok(x) => x,
            Err((col, msg)) => {
                let e = p.err(col, msg);
                p.errors.push(e);
                continue;
            }
        };
        if toks.is_empty() {
            continue;
        }
        match p.step(&toks) {
            Ok(kind) => steps.push(Step {
                line: p.line,
                source,
                kind,
            }),
            Err(e) => p.errors.push(e),
        }
    }
    if steps.is_empty() && p.errors.is_empty() {
        p.errors.push(ParseError {
            file: file.to_string(),
            line: 1,
            col: 1,
            message: "the script has no steps".into(),
        });
    }
    if p.errors.is_empty() {
        Ok(Script {
            file: file.to_string(),
            steps,
        })
    } else {
        Err(ParseErrors(p.errors))
    }
}

#[cfg(test)]
mod tests;
