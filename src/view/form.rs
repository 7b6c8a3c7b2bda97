//! The explorer's action forms (create, delegate, renew, release, revoke,
//! import, export): fields, validation as the user types, and what a submit
//! turns into. Pure: [`Form::check`] reads the [`App`] and says what is wrong
//! or what would be sent; the event loop carries the result out through the
//! same runner as scripts.

use tui_input::Input;

use crate::app::{App, TokenId, unix_now};
use crate::broker::types::RevokeLevel;
use crate::broker::types::valid_segment;
use crate::scenario::{ImportSource, StepKind, rules};
use crate::scope;

/// The delegation depth the broker stops at (spec: chains of at most 5 records).
const MAX_DEPTH: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormKind {
    CreateAgent,
    Delegate { from: TokenId },
    Renew { token: TokenId },
    Release { token: TokenId },
    Revoke { selected: Option<TokenId> },
    Import,
    Export,
}

impl FormKind {
    pub fn title(self) -> &'static str {
        match self {
            FormKind::CreateAgent => "Create an agent",
            FormKind::Delegate { .. } => "Delegate",
            FormKind::Renew { .. } => "Renew",
            FormKind::Release { .. } => "Release",
            FormKind::Revoke { .. } => "Revoke",
            FormKind::Import => "Import a token",
            FormKind::Export => "Export this session",
        }
    }
}

/// One input of a form: free text, or a choice cycled with ←/→.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: &'static str,
    pub input: Input,
    pub choices: Vec<String>,
    pub choice: usize,
    /// Shown when the field is empty.
    pub placeholder: &'static str,
}

impl Field {
    fn text(name: &'static str, value: &str, placeholder: &'static str) -> Field {
        Field {
            name,
            input: Input::new(value.to_string()),
            choices: Vec::new(),
            choice: 0,
            placeholder,
        }
    }

    fn choice(name: &'static str, choices: Vec<String>, choice: usize) -> Field {
        Field {
            name,
            input: Input::default(),
            choices,
            choice,
            placeholder: "",
        }
    }

    pub fn is_choice(&self) -> bool {
        !self.choices.is_empty()
    }

    /// The value: the chosen option, or the typed text trimmed.
    pub fn value(&self) -> &str {
        if self.is_choice() {
            self.choices
                .get(self.choice)
                .map(String::as_str)
                .unwrap_or("")
        } else {
            self.input.value().trim()
        }
    }
}

/// Where a submitted form stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormStatus {
    Editing,
    /// Sent; waiting for the broker.
    Running,
    /// The broker refused: its words, then what was not held and why.
    Refused(Vec<String>),
    /// Could not be carried out (unreachable, not registered, a file error…).
    Failed(String),
}

/// What a valid form asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Submit {
    /// A step run through the runner (and journalled for export).
    Step(StepKind),
    /// Write the session as a scenario file and a JSON file.
    Export(String),
}

/// The result of checking a form against the current state.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// One entry per field: what is wrong with it, if anything.
    pub errors: Vec<Option<String>>,
    /// What the form would do and what the broker will likely say, line by line.
    pub notes: Vec<Note>,
    /// `None` while something is wrong.
    pub submit: Option<Submit>,
}

/// A note under the fields: plain, good news, or a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    Info(String),
    Ok(String),
    Warn(String),
}

#[derive(Debug, Clone)]
pub struct Form {
    pub kind: FormKind,
    pub fields: Vec<Field>,
    pub focus: usize,
    pub status: FormStatus,
}

/// A label not yet used by a token or an agent: `prefix1`, `prefix2`, …
pub fn fresh_label(app: &App, prefix: &str) -> String {
    (1..)
        .map(|n| format!("{prefix}{n}"))
        .find(|l| {
            app.unregistered(l).is_some()
                || (!app.labels.contains_key(l) && app.agent_by_name(l).is_none())
        })
        .unwrap_or_else(|| prefix.to_string())
}

/// A new label or agent name: the parser's rule, and not taken yet.
fn label_error(app: &App, label: &str) -> Option<String> {
    if let Err(e) = rules::name(label) {
        return Some(e);
    }
    // A name whose registration was refused may be tried again.
    if app.unregistered(label).is_some() {
        return None;
    }
    if app.labels.contains_key(label) || app.agent_by_name(label).is_some() {
        return Some(format!("'{label}' is already used"));
    }
    None
}

/// An optional TTL field: empty is none.
fn ttl_value(text: &str) -> Result<Option<i64>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    rules::ttl(text).map(Some)
}

/// The revocation target a level defaults to for the selected token.
pub fn revoke_default(app: &App, level: RevokeLevel, selected: Option<TokenId>) -> String {
    let Some(t) = selected.and_then(|id| app.tokens.get(id)) else {
        return String::new();
    };
    let holder = &app.agents[t.holder];
    match level {
        // Another client's token has no label a step can use: its jti.
        RevokeLevel::Token if app.labels.get(&app.token_name(t.id)) != Some(&t.id) => t
            .claims
            .as_ref()
            .map(|c| c.jti.clone())
            .filter(|j| !j.is_empty())
            .unwrap_or_else(|| app.token_name(t.id)),
        RevokeLevel::Token => app.token_name(t.id),
        RevokeLevel::Agent => holder.name.clone(),
        RevokeLevel::Task => t
            .claims
            .as_ref()
            .map(|c| c.task_id.clone())
            .unwrap_or_else(|| holder.task.clone()),
        RevokeLevel::Chain => match t.claims.as_ref().and_then(|c| c.delegation_chain.first()) {
            Some(root) => app
                .agent_name(&root.agent)
                .map(str::to_string)
                .unwrap_or_else(|| root.agent.clone()),
            None => holder.name.clone(),
        },
    }
}

const LEVELS: [RevokeLevel; 4] = [
    RevokeLevel::Token,
    RevokeLevel::Agent,
    RevokeLevel::Task,
    RevokeLevel::Chain,
];

impl Form {
    /// Opens a form; `Err` says why it cannot open (e.g. nothing selected).
    pub fn open(app: &App, kind: FormKind) -> Result<Form, String> {
        let live_label = |id: TokenId, verb: &str| -> Result<String, String> {
            let t = app.tokens.get(id).ok_or("select a token first")?;
            let name = app.token_name(id);
            if t.raw.is_none() {
                return Err(format!("{name} holds no token to {verb}"));
            }
            if app.labels.get(&name) != Some(&id) {
                return Err(format!("{name} was replaced; select the current token"));
            }
            Ok(name)
        };
        let fields = match kind {
            FormKind::CreateAgent => vec![
                Field::text("name", &fresh_label(app, "agent"), "a new agent name"),
                Field::text("orch_id", "chainview", "orchestration id"),
                Field::text("task_id", "", "task id (default: the name)"),
                Field::text(
                    "scope",
                    "",
                    "type scopes — e.g. read:data:* (comma-separated)",
                ),
                Field::text("max_ttl", "", "seconds (default: the broker's)"),
            ],
            FormKind::Delegate { from } => {
                live_label(from, "delegate from")?;
                let agents: Vec<String> = app
                    .agents
                    .iter()
                    .filter(|a| a.agent_id.is_some())
                    .map(|a| a.name.clone())
                    .collect();
                if agents.is_empty() {
                    return Err("no registered agent to delegate to: create one with a".into());
                }
                let holder = app.tokens[from].holder;
                // Default to the first agent that is not the holder.
                let first = app
                    .agents
                    .iter()
                    .filter(|a| a.agent_id.is_some())
                    .position(|a| a.name != app.agents[holder].name)
                    .unwrap_or(0);
                vec![
                    Field::choice("to", agents, first),
                    Field::text("scope", &app.tokens[from].scope().join(","), "scopes"),
                    Field::text("ttl", "", "seconds (default: the broker's)"),
                    Field::text("as", &fresh_label(app, "d"), "a label for the new token"),
                ]
            }
            FormKind::Renew { token } => {
                live_label(token, "renew")?;
                vec![Field::text(
                    "as",
                    "",
                    "new label (empty: the label moves to the new token)",
                )]
            }
            FormKind::Release { token } => {
                live_label(token, "release")?;
                Vec::new()
            }
            FormKind::Revoke { selected } => {
                let levels = LEVELS.iter().map(|l| l.to_string()).collect();
                let mut target = Field::text("target", "", "label, agent, task id or spiffe://");
                target.input = Input::new(revoke_default(app, RevokeLevel::Token, selected));
                vec![Field::choice("level", levels, 0), target]
            }
            FormKind::Import => vec![
                Field::text("as", &fresh_label(app, "imported"), "a label"),
                Field::text("token", "", "paste a compact JWT (eyJ…)"),
            ],
            FormKind::Export => vec![Field::text(
                "file",
                &format!(
                    "chainview-session-{}.chainview",
                    chrono::Utc::now().format("%Y%m%d-%H%M%S")
                ),
                "path of the scenario file",
            )],
        };
        let focus = match kind {
            FormKind::Delegate { .. } => 1,
            FormKind::Import => 1,
            FormKind::CreateAgent => 3,
            _ => 0,
        };
        Ok(Form {
            kind,
            fields,
            focus,
            status: FormStatus::Editing,
        })
    }

    /// After a refused or failed attempt, the name it used is taken (the
    /// attempt stays in the tree, refused): offer the next free one.
    pub fn renew_label(&mut self, app: &App) {
        let (field, prefix) = match self.kind {
            FormKind::Delegate { .. } => ("as", "d"),
            FormKind::CreateAgent => ("name", "agent"),
            FormKind::Import => ("as", "imported"),
            _ => return,
        };
        let i = self.index(field);
        let current = self.fields[i].value().to_string();
        if app.labels.contains_key(&current) || app.agent_by_name(&current).is_some() {
            // `d1` → `d2`; `myhop` → `myhop1`.
            let base = current.trim_end_matches(|c: char| c.is_ascii_digit());
            let fresh = fresh_label(app, if base.is_empty() { prefix } else { base });
            self.fields[i].input = Input::new(fresh);
        }
    }

    pub fn value(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(Field::value)
            .unwrap_or("")
    }

    fn index(&self, name: &str) -> usize {
        self.fields.iter().position(|f| f.name == name).unwrap_or(0)
    }

    /// Cycles a choice field; for revoke, the target follows the level.
    pub fn cycle(&mut self, app: &App, forward: bool) {
        let Some(f) = self.fields.get_mut(self.focus) else {
            return;
        };
        if !f.is_choice() {
            return;
        }
        let n = f.choices.len();
        f.choice = if forward {
            (f.choice + 1) % n
        } else {
            (f.choice + n - 1) % n
        };
        if let FormKind::Revoke { selected } = self.kind {
            let level = LEVELS[self.fields[0].choice % LEVELS.len()];
            let t = self.index("target");
            self.fields[t].input = Input::new(revoke_default(app, level, selected));
        }
    }

    /// Validates every field against the state; says what a submit would do.
    pub fn check(&self, app: &App) -> Check {
        let mut c = Checking {
            form: self,
            errors: vec![None; self.fields.len()],
            notes: Vec::new(),
        };
        let submit = match self.kind {
            FormKind::CreateAgent => c.create_agent(app).map(Submit::Step),
            FormKind::Delegate { from } => c.delegate(app, from).map(Submit::Step),
            FormKind::Renew { token } | FormKind::Release { token }
                if app.tokens[token].status_at(unix_now()).is_dead() =>
            {
                c.dead_token(app, token).map(Submit::Step)
            }
            FormKind::Renew { token } => c.renew(app, token).map(Submit::Step),
            FormKind::Release { token } => c.release(app, token).map(Submit::Step),
            FormKind::Revoke { .. } => c.revoke(app).map(Submit::Step),
            FormKind::Import => c.import(app).map(Submit::Step),
            FormKind::Export => c.export(),
        };
        let ok = c.errors.iter().all(Option::is_none);
        Check {
            errors: c.errors,
            notes: c.notes,
            submit: submit.filter(|_| ok),
        }
    }
}

/// What checking a form gathers: an error per field, and notes.
struct Checking<'f> {
    form: &'f Form,
    errors: Vec<Option<String>>,
    notes: Vec<Note>,
}

impl Checking<'_> {
    fn err(&mut self, name: &str, e: String) {
        let i = self.form.index(name);
        self.errors[i] = Some(e);
    }

    fn create_agent(&mut self, app: &App) -> Option<StepKind> {
        let name = self.form.value("name");
        if let Some(e) = label_error(app, name) {
            self.err("name", e);
        }
        let orch = self.form.value("orch_id");
        if let Err(e) = rules::segment("orch_id", orch) {
            self.err("orch_id", e);
        }
        let task = match self.form.value("task_id") {
            "" => name,
            t => t,
        };
        if let Err(e) = rules::segment("task_id", task) {
            self.err("task_id", e);
        }
        let scope = rules::scope_list(self.form.value("scope"))
            .map_err(|e| self.err("scope", e))
            .ok();
        let ttl = ttl_value(self.form.value("max_ttl"))
            .map_err(|e| self.err("max_ttl", e))
            .ok();
        if let (Some(sc), Some(ceiling)) =
            (&scope, app.app.as_ref().and_then(|a| a.ceiling.as_ref()))
        {
            for s in sc {
                match scope::explain_one(s, ceiling) {
                    scope::Verdict::Covered { by } => self
                        .notes
                        .push(Note::Ok(format!("{s} within the app ceiling ({by})"))),
                    scope::Verdict::Denied(d) => self.notes.push(Note::Warn(format!(
                        "{s} is outside the app ceiling ({d}) — the broker will refuse"
                    ))),
                }
            }
        }
        match (scope, ttl) {
            (Some(scope), Some(ttl)) => Some(StepKind::Agent {
                name: name.to_string(),
                orch: orch.to_string(),
                task: task.to_string(),
                scope,
                ttl,
            }),
            _ => None,
        }
    }

    fn delegate(&mut self, app: &App, from: TokenId) -> Option<StepKind> {
        let src = &app.tokens[from];
        let from_name = app.token_name(from);
        self.notes.push(Note::Info(format!(
            "from {from_name} (held by {}, depth {}): {}",
            app.agents[src.holder].name,
            src.depth(),
            src.scope().join(", ")
        )));
        if src.status_at(unix_now()).is_dead() {
            self.notes.push(Note::Warn(format!(
                "{from_name} is {} — the broker will refuse",
                src.status_at(unix_now()).word()
            )));
        }
        if src.depth() >= MAX_DEPTH {
            self.notes.push(Note::Warn(format!(
                "{from_name} is at depth {} — the broker stops chains at {MAX_DEPTH}",
                src.depth()
            )));
        }
        let label = self.form.value("as");
        if let Some(e) = label_error(app, label) {
            self.err("as", e);
        }
        let scope = rules::scope_list(self.form.value("scope"))
            .map_err(|e| self.err("scope", e))
            .ok();
        let ttl = ttl_value(self.form.value("ttl"))
            .map_err(|e| self.err("ttl", e))
            .ok();
        if let Some(sc) = &scope {
            for e in scope::explain(sc, src.scope()) {
                self.notes.push(match e.verdict {
                    scope::Verdict::Covered { by } => {
                        Note::Ok(format!("{} held (granted by {by})", e.requested))
                    }
                    scope::Verdict::Denied(d) => Note::Warn(format!(
                        "{} not held: {d} — the broker will refuse",
                        e.requested
                    )),
                });
            }
        }
        match (scope, ttl) {
            (Some(scope), Some(ttl)) => Some(StepKind::Delegate {
                from: from_name,
                to: self.form.value("to").to_string(),
                scope,
                ttl,
                label: label.to_string(),
            }),
            _ => None,
        }
    }

    /// Renew or release of a token that is already dead: said, and sent anyway.
    fn dead_token(&mut self, app: &App, token: TokenId) -> Option<StepKind> {
        let name = app.token_name(token);
        self.notes.push(Note::Warn(format!(
            "{name} is {} — the broker will refuse",
            app.tokens[token].status_at(unix_now()).word()
        )));
        if let FormKind::Renew { .. } = self.form.kind {
            Some(StepKind::Renew {
                label: name,
                new_label: None,
            })
        } else {
            Some(StepKind::Release(vec![name]))
        }
    }

    fn renew(&mut self, app: &App, token: TokenId) -> Option<StepKind> {
        let name = app.token_name(token);
        let new_label = self.form.value("as");
        if !new_label.is_empty()
            && let Some(e) = label_error(app, new_label)
        {
            self.err("as", e);
        }
        self.notes.push(Note::Info(format!(
            "{name} gets a fresh token with the same scope; the broker revokes the old one"
        )));
        Some(StepKind::Renew {
            label: name,
            new_label: (!new_label.is_empty()).then(|| new_label.to_string()),
        })
    }

    fn release(&mut self, app: &App, token: TokenId) -> Option<StepKind> {
        let name = app.token_name(token);
        self.notes.push(Note::Info(format!(
            "{name} is given back: the broker revokes it (delegations made from it live on)"
        )));
        Some(StepKind::Release(vec![name]))
    }

    fn revoke(&mut self, app: &App) -> Option<StepKind> {
        let level = LEVELS[self.form.fields[0].choice % LEVELS.len()];
        let target = self.form.value("target");
        if !app.admin {
            self.notes.push(Note::Warn(
                "revoking needs the broker's admin secret: set AGENTWRIT_ADMIN_SECRET".into(),
            ));
        }
        let wire = match level {
            RevokeLevel::Task if !valid_segment(target) => {
                rules::segment("task", target).map(|()| String::new())
            }
            _ => app.revoke_target(level, target),
        };
        match wire {
            Err(e) => {
                self.err("target", e);
                None
            }
            Ok(wire) => {
                let dying = app.would_revoke(level, &wire);
                self.notes.push(if dying.is_empty() {
                    Note::Info("no live token chainview knows would die".into())
                } else {
                    let mut names: Vec<String> =
                        dying.iter().take(6).map(|id| app.token_name(*id)).collect();
                    if dying.len() > 6 {
                        names.push(format!("+{} more", dying.len() - 6));
                    }
                    let others = dying.iter().filter(|id| app.tokens[**id].foreign).count();
                    Note::Warn(format!(
                        "would kill {} live token{}: {}{}",
                        dying.len(),
                        if dying.len() == 1 { "" } else { "s" },
                        names.join(", "),
                        if others > 0 {
                            format!(" ({others} other clients': the audit trail will confirm)")
                        } else {
                            String::new()
                        }
                    ))
                });
                // A step names a token by label or jti: another client's
                // token by the name it is shown with goes as its jti.
                let named = level != RevokeLevel::Token
                    || app.labels.contains_key(target)
                    || wire == target;
                app.admin.then(|| StepKind::Revoke {
                    level,
                    target: if named { target.to_string() } else { wire },
                })
            }
        }
    }

    fn import(&mut self, app: &App) -> Option<StepKind> {
        let label = self.form.value("as");
        if let Some(e) = label_error(app, label) {
            self.err("as", e);
        }
        let raw = self.form.value("token");
        if raw.is_empty() {
            self.err("token", "paste a token".into());
            None
        } else {
            match app.check_import(raw) {
                Err(e) => {
                    self.err("token", e.to_string());
                    None
                }
                Ok(d) => {
                    let c = &d.claims;
                    if let Some(id) = app.observed_twin(c) {
                        self.notes.push(Note::Info(format!(
                            "{} (another client's, from the audit trail) becomes this token",
                            app.token_name(id)
                        )));
                    }
                    self.notes.push(Note::Ok(format!(
                        "{} · depth {} · {}",
                        app.agent_name(&c.sub).unwrap_or(&c.sub),
                        c.depth(),
                        c.scope.join(", ")
                    )));
                    let left = c.exp - unix_now();
                    self.notes.push(if left > 0 {
                        Note::Info(format!("expires in {left} s; the broker is asked at once"))
                    } else {
                        Note::Warn(format!("expired {} s ago", -left))
                    });
                    Some(StepKind::Import {
                        label: label.to_string(),
                        source: ImportSource::Token(raw.to_string()),
                    })
                }
            }
        }
    }

    fn export(&mut self) -> Option<Submit> {
        let path = self.form.value("file");
        if path.is_empty() {
            self.err("file", "give a file name".into());
        }
        if let Some(p) = crate::export::existing(path).filter(|_| !path.is_empty()) {
            self.err(
                "file",
                format!("{} exists; export never overwrites", p.display()),
            );
        }
        self.notes.push(Note::Info(format!(
            "writes {} (replay with --script) and {}",
            crate::export::scenario_path(path).display(),
            crate::export::json_path(path).display()
        )));
        Some(Submit::Export(path.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app_with_agent(admin: bool) -> App {
        let mut app = App::new("http://127.0.0.1:1", false, None);
        app.admin = admin;
        app.begin_agent("analyst", "o", "t", &["read:x:*".into()], None);
        app
    }

    #[test]
    fn revoke_without_the_admin_secret_says_so_and_sends_nothing() {
        let app = app_with_agent(false);
        let mut f = Form::open(&app, FormKind::Revoke { selected: Some(0) }).unwrap();
        f.fields[0].choice = 2; // task
        f.fields[1].input = Input::new("t".into());
        let c = f.check(&app);
        assert_eq!(c.submit, None);
        assert!(c.notes.contains(&Note::Warn(
            "revoking needs the broker's admin secret: set AGENTWRIT_ADMIN_SECRET".into()
        )));
        let app = app_with_agent(true);
        let c = f.check(&app);
        assert_eq!(
            c.submit,
            Some(Submit::Step(StepKind::Revoke {
                level: RevokeLevel::Task,
                target: "t".into()
            }))
        );
    }

    #[test]
    fn create_agent_fields_are_checked_as_typed() {
        let app = app_with_agent(true);
        let mut f = Form::open(&app, FormKind::CreateAgent).unwrap();
        let set = |f: &mut Form, name: &str, v: &str| {
            let i = f.index(name);
            f.fields[i].input = Input::new(v.into());
        };
        set(&mut f, "name", "analyst");
        set(&mut f, "scope", "read:x, bad");
        set(&mut f, "max_ttl", "-3");
        set(&mut f, "orch_id", "a/b");
        let c = f.check(&app);
        assert_eq!(c.submit, None);
        let err = |name: &str| c.errors[f.index(name)].clone().unwrap_or_default();
        assert_eq!(err("name"), "'analyst' is already used");
        assert!(err("scope").contains("read:x"), "{}", err("scope"));
        assert_eq!(
            err("max_ttl"),
            "ttl must be a positive whole number of seconds, got '-3'"
        );
        assert!(
            err("orch_id").starts_with("orch_id 'a/b' is not a SPIFFE path segment"),
            "{}",
            err("orch_id")
        );
        // `..` is no name (the parser refuses it too).
        set(&mut f, "name", "..");
        let c = f.check(&app);
        assert!(
            c.errors[f.index("name")]
                .as_deref()
                .is_some_and(|e| e.contains("invalid name '..'")),
            "{:?}",
            c.errors
        );
        set(&mut f, "name", "scout");
        set(&mut f, "scope", "read:x:a , read:y:*");
        set(&mut f, "max_ttl", "");
        set(&mut f, "orch_id", "o");
        assert_eq!(
            f.check(&app).submit,
            Some(Submit::Step(StepKind::Agent {
                name: "scout".into(),
                orch: "o".into(),
                task: "scout".into(),
                scope: vec!["read:x:a".into(), "read:y:*".into()],
                ttl: None,
            }))
        );
    }

    #[test]
    fn actions_on_nothing_selected_do_not_open() {
        let app = App::new("http://127.0.0.1:1", false, None);
        assert_eq!(
            Form::open(&app, FormKind::Delegate { from: 3 }).err(),
            Some("select a token first".into())
        );
        // A pending registration holds no token yet.
        let app = app_with_agent(true);
        assert_eq!(
            Form::open(&app, FormKind::Release { token: 0 }).err(),
            Some("analyst holds no token to release".into())
        );
    }

    #[test]
    fn import_rejects_garbage_at_once() {
        let app = app_with_agent(true);
        let mut f = Form::open(&app, FormKind::Import).unwrap();
        f.fields[1].input = Input::new("a.b".into());
        let c = f.check(&app);
        assert_eq!(c.submit, None);
        assert_eq!(
            c.errors[1].as_deref(),
            Some("not an AgentWrit token: not a JWT: expected 3 dot-separated parts, found 2")
        );
    }
}
