//! The interactive part of the state model: focus, selection, the probe
//! input, the step panel, scroll positions. [`View::handle_key`] and
//! [`View::handle_mouse`] are pure: they change this state and return an
//! [`Action`] for the event loop to carry out (a step, a validation, quit).

use crossterm::event::{KeyEvent, KeyEventKind, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};
use tui_input::Input;

pub mod form;
pub mod input;
pub mod judgment;
pub mod keymap;
pub mod tree_nav;

mod audit;
mod report;
pub use audit::AuditView;
pub use input::Ask;
pub use report::{StepLine, StepMark, revoke_message};
use report::{action_message, step_why};

use crate::app::{App, TokenId};
use crate::scenario::AuditFilter;
use crate::scenario::report::{StepReport, StepResult};
use crate::scenario::{Keyword, Script};
use form::{Form, FormKind, FormStatus, Submit};
use keymap::{Mode, Verb};
use tree_nav::TreeNav;

/// The panes that can take focus, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Tree,
    Detail,
    Probe,
    Log,
    Agents,
    Steps,
    Findings,
}

impl Focus {
    const ORDER: [Focus; 6] = [
        Focus::Tree,
        Focus::Detail,
        Focus::Probe,
        Focus::Log,
        Focus::Agents,
        Focus::Steps,
    ];

    fn index(self) -> usize {
        // The findings (F) share the log's place, and its place in Tab order.
        let f = if self == Focus::Findings {
            Focus::Log
        } else {
            self
        };
        Self::ORDER.iter().position(|o| *o == f).unwrap_or(0)
    }

    pub fn next(self) -> Focus {
        Self::ORDER[(self.index() + 1) % Self::ORDER.len()]
    }

    pub fn prev(self) -> Focus {
        Self::ORDER[(self.index() + Self::ORDER.len() - 1) % Self::ORDER.len()]
    }

    pub fn title(self) -> &'static str {
        match self {
            Focus::Tree => "Chains",
            Focus::Detail => "Detail",
            Focus::Probe => "Scope probe",
            Focus::Log => "Event log",
            Focus::Agents => "Agents",
            Focus::Steps => "Steps",
            Focus::Findings => "Findings",
        }
    }

    /// Whether this pane lives in the lower-right slot of the compact layout.
    pub fn is_lower(self) -> bool {
        matches!(
            self,
            Focus::Detail | Focus::Probe | Focus::Log | Focus::Findings
        )
    }
}

/// Rows an agent takes in the agents pane.
pub const AGENT_LINES: usize = 2;

/// What the event loop should do after a key or click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    NextStep,
    BackStep,
    Restart,
    Validate(TokenId),
    /// Put this token on the clipboard (OSC 52).
    Copy(TokenId),
    /// Write this token to a file.
    SaveToken(TokenId),
    /// Check the open form and carry it out.
    Submit,
    /// (Re)fetch the broker's audit trail for the audit view.
    FetchAudit,
    /// Cancel the step in flight (Esc), if any.
    Cancel,
    /// Observe: one event forward / back, the first event, the head.
    NextEvent,
    PrevEvent,
    FirstEvent,
    FollowHead,
    /// Observe: go to the event or time typed in `View::jump`.
    Jump,
    /// Show or hide other clients' chains (the merged view).
    ToggleOthers,
    /// The question on screen answered: yes (y, or its own key again) / no.
    Allow,
    Deny,
}

/// Where each pane was drawn last, for mouse hit-testing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Areas {
    pub tree: Rect,
    pub agents: Rect,
    pub steps: Rect,
    pub detail: Rect,
    pub probe: Rect,
    pub log: Rect,
}

impl Areas {
    fn at(&self, col: u16, row: u16) -> Option<Focus> {
        let p = Position::new(col, row);
        [
            (self.tree, Focus::Tree),
            (self.agents, Focus::Agents),
            (self.steps, Focus::Steps),
            (self.detail, Focus::Detail),
            (self.probe, Focus::Probe),
            (self.log, Focus::Log),
        ]
        .into_iter()
        .find(|(r, _)| r.contains(p))
        .map(|(_, f)| f)
    }
}

/// UI state beside the broker state.
#[derive(Debug)]
pub struct View {
    pub focus: Focus,
    /// Which of Detail/Probe/Log the compact layout shows.
    pub lower: Focus,
    pub probe: Input,
    /// The probe takes typing (only after `/`; Tab onto its pane only focuses it).
    pub typing: bool,
    /// The probe's text is selected (after `/`): typing replaces it.
    pub probe_selected: bool,
    pub tree: TreeNav,
    pub selected: Option<TokenId>,
    pub agent_sel: usize,
    /// `None` follows the newest log entries.
    pub log_offset: Option<usize>,
    pub probe_offset: usize,
    pub detail_offset: u16,
    pub steps_offset: usize,
    pub help: bool,
    /// Show the selected token whole (a secret: only on request).
    pub reveal: bool,
    pub title: Option<String>,
    pub file: String,
    pub steps: Vec<StepLine>,
    /// Index of the next step to run.
    pub step_pos: usize,
    /// The latest narration.
    pub narration: Option<String>,
    /// A transient notice for the status bar.
    pub message: Option<String>,
    /// The selected event-log entry is open (Enter), shown whole.
    pub log_open: bool,
    /// The step in flight, as written (set by the event loop each frame).
    pub running: Option<String>,
    pub no_color: bool,
    pub areas: Areas,
    /// The open action form, if any.
    pub form: Option<Form>,
    /// The audit view, when open.
    pub audit: Option<AuditView>,
    /// `chainview observe`: read-only, with a timeline instead of steps.
    pub observing: bool,
    /// Observe: where to jump (or, with `filtering`, the filter), while it is typed.
    pub jump: Option<Input>,
    pub filtering: bool,
    /// Observe: the denials and anomalies pane's lines (where the steps are in the explorer).
    pub side: Vec<String>,
    /// Observe: "as of evt-000123 · 15:18:37", for the status bar.
    pub as_of: Option<String>,
    /// Observe: what must stay in sight (a broken hash chain), in red.
    pub alarm: Option<String>,
    /// The context (`--context`) the broker came from, for the status bar.
    pub context: Option<crate::config::ContextLabel>,
    /// Findings, who can, what if: judged over the audit trail.
    pub judgment: judgment::Judgment,
    /// A question on screen (y/n), over everything.
    pub ask: Option<Ask>,
    /// `--read-only`: the broker (named) is never changed; the keys that
    /// would change it say so.
    pub read_only: Option<String>,
}

impl View {
    pub fn new(script: Option<&Script>, no_color: bool) -> View {
        let steps = script
            .map(|s| {
                s.steps
                    .iter()
                    .map(|st| StepLine {
                        line: st.line,
                        source: st.source.clone(),
                        kind: st.kind.keyword(),
                        say: match &st.kind {
                            crate::scenario::StepKind::Say(t) => Some(t.clone()),
                            _ => None,
                        },
                        mark: None,
                        why: None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        View {
            focus: Focus::Tree,
            lower: Focus::Detail,
            probe: Input::default(),
            typing: false,
            probe_selected: false,
            tree: TreeNav::default(),
            selected: None,
            agent_sel: 0,
            log_offset: None,
            probe_offset: 0,
            detail_offset: 0,
            steps_offset: 0,
            help: false,
            reveal: false,
            title: script.and_then(|s| s.title().map(str::to_string)),
            file: script.map(|s| s.file.clone()).unwrap_or_default(),
            steps,
            step_pos: 0,
            narration: None,
            message: None,
            log_open: false,
            running: None,
            no_color,
            areas: Areas::default(),
            form: None,
            audit: None,
            observing: false,
            jump: None,
            filtering: false,
            side: Vec::new(),
            as_of: None,
            alarm: None,
            context: None,
            judgment: Default::default(),
            ask: None,
            read_only: None,
        }
    }

    /// Opens an action form, or says why it cannot open.
    pub fn open_form(&mut self, app: &App, kind: FormKind) {
        match Form::open(app, kind) {
            Ok(f) => {
                self.form = Some(f);
                self.message = None;
            }
            Err(e) => self.message = Some(e),
        }
    }

    /// Checks the open form: on a problem, points at the first wrong field
    /// and says what is wrong; otherwise returns what to do (a step is marked
    /// running until [`View::on_action`] takes in its report).
    pub fn take_submit(&mut self, app: &App) -> Option<Submit> {
        let form = self.form.as_mut()?;
        let check = form.check(app);
        match check.submit {
            Some(s) => {
                if let Submit::Step(_) = s {
                    form.status = FormStatus::Running;
                }
                Some(s)
            }
            None => {
                let why = match check.errors.iter().position(Option::is_some) {
                    Some(i) => {
                        form.focus = i;
                        format!("not sent: fix {} first", form.fields[i].name)
                    }
                    None => check
                        .notes
                        .iter()
                        .find_map(|n| match n {
                            form::Note::Warn(w) => Some(format!("not sent: {w}")),
                            _ => None,
                        })
                        .unwrap_or_else(|| "not sent".into()),
                };
                form.status = FormStatus::Failed(why);
                None
            }
        }
    }

    /// Takes in the result of an export.
    pub fn on_export(&mut self, r: Result<(std::path::PathBuf, std::path::PathBuf), String>) {
        match r {
            Ok((a, b)) => {
                self.form = None;
                self.message = Some(format!(
                    "✓ exported to {} and {} (+ .mmd, .dot diagrams)",
                    a.display(),
                    b.display()
                ));
            }
            Err(e) => {
                if let Some(f) = &mut self.form {
                    f.status = FormStatus::Failed(e);
                }
            }
        }
    }

    /// Takes in the result of an explorer action: closes the form on success
    /// (with a message), or shows the refusal in place.
    pub fn on_action(&mut self, app: &App, r: &StepReport) {
        if let Some(tv) = r.tokens.last() {
            self.select_token(app, tv.id);
        }
        let Some(form) = &mut self.form else {
            return;
        };
        match &r.result {
            StepResult::Ok => {
                self.message = Some(action_message(r));
                self.form = None;
                return;
            }
            StepResult::Refused(b) => {
                let mut lines = vec![format!(
                    "refused by the broker: {} {} — \"{}\"",
                    b.status, b.error_code, b.detail
                )];
                for n in &r.not_held {
                    lines.push(format!("not held: {} — {}", n.scope, n.reason));
                }
                form.status = FormStatus::Refused(lines);
            }
            StepResult::Error(e) => form.status = FormStatus::Failed(e.clone()),
            StepResult::Unreachable(e) => {
                form.status = FormStatus::Failed(format!("broker unreachable: {e}"))
            }
            StepResult::NotRun => form.status = FormStatus::Failed("not run".into()),
        }
        form.renew_label(app);
    }

    /// Path of tree identifiers from the root to `id`.
    pub fn path_of(app: &App, id: TokenId) -> Vec<TokenId> {
        let mut path = vec![id];
        let mut cur = id;
        while let Some(p) = app.tokens[cur].tree_parent(&app.tokens) {
            path.push(p);
            cur = p;
            if path.len() > app.tokens.len() {
                break;
            }
        }
        path.reverse();
        path
    }

    /// Selects a token in the tree (unfolding its ancestors).
    pub fn select_token(&mut self, app: &App, id: TokenId) {
        if id >= app.tokens.len() {
            return;
        }
        let path = Self::path_of(app, id);
        for anc in &path[..path.len() - 1] {
            self.tree.set_open(*anc, true);
        }
        self.selected = Some(id);
        self.detail_offset = 0;
        self.reveal = false;
    }

    /// Takes in a finished step: marks it, shows its narration, selects what it touched.
    pub fn on_report(&mut self, app: &App, r: &StepReport) {
        let i = r.index.saturating_sub(1);
        if let Some(line) = self.steps.get_mut(i) {
            line.mark = Some(StepMark::of(r));
            line.why = step_why(r);
        }
        self.step_pos = r.index;
        if let Some(t) = &r.say {
            self.narration = Some(t.clone());
        }
        if let Some(t) = &r.title {
            self.title = Some(t.clone());
        }
        let user_in_lower = self.focus.is_lower();
        if let Some(p) = &r.probe {
            self.probe = Input::new(p.scope.clone());
            self.probe_selected = false;
            self.probe_offset = 0;
            if !user_in_lower {
                self.lower = Focus::Probe;
            }
        } else if !r.tokens.is_empty() && !user_in_lower {
            self.lower = Focus::Detail;
        }
        if let Some(tv) = r.tokens.last()
            && let Some(id) = app.labels.get(&tv.label).copied().or_else(|| {
                app.tokens
                    .iter()
                    .rev()
                    .find(|t| app.token_name(t.id) == tv.label)
                    .map(|t| t.id)
            })
        {
            self.select_token(app, id);
        }
        self.message = match &r.result {
            StepResult::Unreachable(e) => Some(format!("broker unreachable: {e}")),
            StepResult::Error(e) => Some(format!("step could not run: {e}")),
            _ => r.warning.as_ref().map(|w| format!("⚠ {w}")),
        };
    }

    /// Resets the step marks (restart / back).
    pub fn reset_steps(&mut self) {
        for s in &mut self.steps {
            s.mark = None;
        }
        self.step_pos = 0;
        self.narration = None;
        self.selected = None;
        self.tree.reset();
        self.agent_sel = 0;
        self.log_offset = None;
    }

    /// Moves the tree selection to visible row `index`.
    fn select_row(&mut self, app: &App, index: usize) {
        if let Some(row) = self.tree.rows(app).get(index).copied() {
            self.selected = Some(row.id);
            self.detail_offset = 0;
            self.reveal = false;
        }
    }

    fn tree_verb(&mut self, app: &App, verb: Verb) {
        let rows = self.tree.rows(app);
        if rows.is_empty() {
            return;
        }
        let last = rows.len() - 1;
        let cur = self
            .selected
            .and_then(|id| rows.iter().position(|r| r.id == id));
        let Some(i) = cur else {
            self.select_row(app, 0);
            return;
        };
        let row = rows[i];
        match verb {
            Verb::Up => self.select_row(app, i.saturating_sub(1)),
            Verb::Down => self.select_row(app, (i + 1).min(last)),
            Verb::Home => self.select_row(app, 0),
            Verb::End => self.select_row(app, last),
            Verb::Enter if row.has_children => {
                let open = self.tree.is_open(row.id);
                self.tree.set_open(row.id, !open);
            }
            Verb::Left => {
                if row.has_children && self.tree.is_open(row.id) {
                    self.tree.set_open(row.id, false);
                } else if let Some(p) = app.tokens[row.id].tree_parent(&app.tokens) {
                    self.selected = Some(p);
                }
            }
            Verb::Right if row.has_children => {
                if self.tree.is_open(row.id) {
                    self.select_row(app, (i + 1).min(last));
                } else {
                    self.tree.set_open(row.id, true);
                }
            }
            _ => {}
        }
    }

    fn set_focus(&mut self, f: Focus) {
        self.focus = f;
        self.typing = false;
        self.probe_selected = false;
        if f.is_lower() {
            self.lower = f;
        }
    }

    /// What the keyboard is talking to now.
    pub fn mode(&self) -> Mode {
        if self.ask.is_some() {
            Mode::Confirm
        } else if self.help {
            Mode::Help
        } else if self.form.is_some() {
            Mode::Form
        } else if self.audit.is_some() {
            Mode::Audit
        } else if self.focus == Focus::Probe && self.typing {
            Mode::Probe
        } else if self.jump.is_some() {
            if self.filtering {
                Mode::Filter
            } else {
                Mode::Jump
            }
        } else if self.observing {
            Mode::Observe
        } else {
            Mode::Normal
        }
    }

    /// Handles a key press: looked up in the [keymap](keymap::KEYMAP), then
    /// carried out; in an input mode an unbound key is typed.
    pub fn handle_key(&mut self, app: &App, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        let mode = self.mode();
        match keymap::lookup(mode, self.focus, key) {
            Some(verb) => self.apply(app, mode, verb, key),
            // The question's own key again (b, r) goes ahead too.
            None if mode == Mode::Confirm => {
                let again = self.ask.as_ref().and_then(|a| a.again);
                if again.is_some_and(|c| key.code == crossterm::event::KeyCode::Char(c)) {
                    self.ask = None;
                    return Action::Allow;
                }
                Action::None
            }
            None => {
                self.type_key(key);
                Action::None
            }
        }
    }

    /// Carries out a verb of the keymap.
    fn apply(&mut self, app: &App, mode: Mode, verb: Verb, key: KeyEvent) -> Action {
        if let Some(a) = self.judgment_verb(app, mode, verb) {
            return a;
        }
        match mode {
            Mode::Form => return self.form_verb(app, verb, key),
            Mode::Audit if verb == Verb::Edit => {
                self.type_key(key);
                return Action::None;
            }
            Mode::Audit => return self.audit_verb(verb),
            Mode::Confirm => {
                return match verb {
                    Verb::Quit => Action::Quit,
                    Verb::Allow => {
                        self.ask = None;
                        Action::Allow
                    }
                    Verb::Deny => {
                        self.ask = None;
                        Action::Deny
                    }
                    _ => Action::None,
                };
            }
            Mode::Help => {
                self.help = false;
                return if verb == Verb::Quit {
                    Action::Quit
                } else {
                    Action::None
                };
            }
            Mode::Probe => {
                match verb {
                    Verb::Quit => return Action::Quit,
                    Verb::LeaveInput => {
                        self.set_focus(Focus::Tree);
                        self.lower = Focus::Probe;
                    }
                    Verb::Edit => self.type_key(key),
                    Verb::FocusNext => self.set_focus(self.focus.next()),
                    Verb::FocusPrev => self.set_focus(self.focus.prev()),
                    Verb::Up => self.probe_offset = self.probe_offset.saturating_sub(1),
                    Verb::Down => self.probe_offset = self.probe_offset.saturating_add(1),
                    _ => {}
                }
                return Action::None;
            }
            Mode::Jump | Mode::Filter => {
                return match verb {
                    Verb::Quit => Action::Quit,
                    Verb::Submit => Action::Jump,
                    Verb::Edit => {
                        self.type_key(key);
                        Action::None
                    }
                    _ => {
                        self.jump = None;
                        Action::None
                    }
                };
            }
            Mode::Normal | Mode::Observe => {}
        }
        match verb {
            Verb::Others => return Action::ToggleOthers,
            Verb::NextEvent => return Action::NextEvent,
            Verb::PrevEvent => return Action::PrevEvent,
            Verb::FirstEvent => return Action::FirstEvent,
            Verb::FollowHead => return Action::FollowHead,
            Verb::Jump => {
                self.jump = Some(Input::default());
                self.filtering = false;
            }
            Verb::Filter => {
                self.jump = Some(Input::default());
                self.filtering = true;
            }
            Verb::Quit => return Action::Quit,
            Verb::Help => self.help = true,
            Verb::Escape => {
                self.message = None;
                if self.log_open {
                    self.log_open = false;
                    return Action::None;
                }
                return Action::Cancel;
            }
            Verb::FocusNext => self.set_focus(self.focus.next()),
            Verb::FocusPrev => self.set_focus(self.focus.prev()),
            Verb::OpenProbe => self.start_probe(),
            Verb::ReadOnly => self.message = Some(input::read_only_message(key.code)),
            Verb::CreateAgent | Verb::Delegate | Verb::Renew | Verb::Release | Verb::Revoke
                if self.read_only.is_some() =>
            {
                let url = self.read_only.as_deref().unwrap_or_default();
                self.message = Some(format!(
                    "read-only (--read-only): nothing is sent that would change {url}"
                ));
            }
            Verb::NextStep => return Action::NextStep,
            Verb::BackStep => return Action::BackStep,
            Verb::Restart => return Action::Restart,
            Verb::Reveal => self.reveal = !self.reveal,
            Verb::CreateAgent => self.open_form(app, FormKind::CreateAgent),
            Verb::Import => self.open_form(app, FormKind::Import),
            Verb::Export => self.open_form(app, FormKind::Export),
            Verb::Revoke => self.open_form(
                app,
                FormKind::Revoke {
                    selected: self.selected,
                },
            ),
            Verb::Delegate | Verb::Renew | Verb::Release => match self.selected {
                Some(id) => self.open_form(
                    app,
                    match verb {
                        Verb::Delegate => FormKind::Delegate { from: id },
                        Verb::Renew => FormKind::Renew { token: id },
                        _ => FormKind::Release { token: id },
                    },
                ),
                None => self.message = Some("select a token in the chain tree first".into()),
            },
            Verb::Audit => {
                self.audit = Some(AuditView::default());
                return Action::FetchAudit;
            }
            Verb::Copy | Verb::SaveToken => match self.selected {
                Some(id) if app.tokens.get(id).is_some_and(|t| t.raw.is_some()) => {
                    return if verb == Verb::Copy {
                        Action::Copy(id)
                    } else {
                        Action::SaveToken(id)
                    };
                }
                _ => self.message = Some("select an issued token to copy or save it".into()),
            },
            Verb::Validate => {
                if let Some(id) = self.selected
                    && app.tokens.get(id).is_some_and(|t| t.raw.is_some())
                {
                    return Action::Validate(id);
                }
                self.message = Some("select an issued token to validate it".into());
            }
            other => self.navigate(app, other),
        }
        Action::None
    }

    fn form_verb(&mut self, app: &App, verb: Verb, key: KeyEvent) -> Action {
        let Some(form) = &mut self.form else {
            return Action::None;
        };
        let n = form.fields.len();
        let choice = form.fields.get(form.focus).is_some_and(|f| f.is_choice());
        match verb {
            Verb::Quit => return Action::Quit,
            Verb::Close => self.form = None,
            Verb::Submit => return Action::Submit,
            Verb::NextField if n > 0 => form.focus = (form.focus + 1) % n,
            Verb::PrevField if n > 0 => form.focus = (form.focus + n - 1) % n,
            Verb::ChoicePrev if choice => form.cycle(app, false),
            Verb::ChoiceNext if choice => form.cycle(app, true),
            // ←, → and Space edit a text field.
            _ => self.type_key(key),
        }
        Action::None
    }

    fn audit_verb(&mut self, verb: Verb) -> Action {
        let Some(a) = &mut self.audit else {
            return Action::None;
        };
        match verb {
            Verb::Quit => return Action::Quit,
            Verb::Close => self.audit = None,
            Verb::Submit => return Action::FetchAudit,
            Verb::NextField => a.focus = (a.focus + 1) % 3,
            Verb::PrevField => a.focus = (a.focus + 2) % 3,
            Verb::Up => a.offset = a.offset.saturating_sub(1),
            Verb::Down => a.offset = a.offset.saturating_add(1),
            Verb::PageUp => a.offset = a.offset.saturating_sub(10),
            Verb::PageDown => a.offset = a.offset.saturating_add(10),
            _ => {}
        }
        Action::None
    }

    /// Moving within the focused pane.
    fn navigate(&mut self, app: &App, verb: Verb) {
        let (up, down) = (verb == Verb::Up, verb == Verb::Down);
        match self.focus {
            Focus::Tree => self.tree_verb(app, verb),
            Focus::Agents => {
                let n = app.agents.len();
                if n == 0 {
                    return;
                }
                if up {
                    self.agent_sel = self.agent_sel.saturating_sub(1);
                } else if down {
                    self.agent_sel = (self.agent_sel + 1).min(n - 1);
                }
                if (up || down || verb == Verb::Enter)
                    && let Some(tok) = app.agents.get(self.agent_sel).and_then(|a| a.token)
                {
                    self.select_token(app, app.latest(tok));
                }
            }
            Focus::Steps => {
                if up {
                    self.steps_offset = self.steps_offset.saturating_sub(1);
                } else if down {
                    self.steps_offset =
                        (self.steps_offset + 1).min(self.steps.len().saturating_sub(1));
                }
            }
            Focus::Detail => {
                if up {
                    self.detail_offset = self.detail_offset.saturating_sub(1);
                } else if down {
                    self.detail_offset = self.detail_offset.saturating_add(1);
                }
            }
            Focus::Log => {
                let last = app.log.len().saturating_sub(1);
                let cur = self.log_offset.unwrap_or(last);
                if up {
                    self.log_offset = Some(cur.saturating_sub(1));
                } else if down {
                    let n = cur + 1;
                    self.log_offset = if n >= last { None } else { Some(n) };
                } else if verb == Verb::End {
                    self.log_offset = None;
                } else if verb == Verb::Enter && !app.log.is_empty() {
                    self.log_open = !self.log_open;
                }
                if up || down {
                    self.log_open = false;
                }
            }
            Focus::Probe | Focus::Findings => {}
        }
    }

    /// The first agent the agents pane shows in `inner_height` rows (it
    /// scrolls to keep the selected one visible). The pane and the mouse
    /// both ask this.
    pub fn first_agent(&self, inner_height: u16) -> usize {
        let visible = (inner_height as usize / AGENT_LINES).max(1);
        self.agent_sel.saturating_sub(visible - 1)
    }

    /// Handles a mouse event: a click focuses and selects, the wheel scrolls.
    pub fn handle_mouse(&mut self, app: &App, m: MouseEvent) -> Action {
        let Some(pane) = self.areas.at(m.column, m.row) else {
            return Action::None;
        };
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                self.help = false;
                self.set_focus(pane);
                match pane {
                    Focus::Tree => {
                        // Where the last frame drew each node, below the border.
                        let rel = m.row.saturating_sub(self.areas.tree.y + 1);
                        if let Some(index) = self.tree.row_at(rel)
                            && index < self.tree.rows(app).len()
                        {
                            self.select_row(app, index);
                        }
                    }
                    Focus::Agents => {
                        let inner_h = self.areas.agents.height.saturating_sub(2);
                        let row = m.row.saturating_sub(self.areas.agents.y + 1) as usize
                            / AGENT_LINES
                            + self.first_agent(inner_h);
                        if row < app.agents.len() {
                            self.agent_sel = row;
                            if let Some(tok) = app.agents[row].token {
                                self.select_token(app, tok);
                            }
                        }
                    }
                    _ => {}
                }
            }
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let saved = self.focus;
                self.focus = pane;
                let verb = if matches!(m.kind, MouseEventKind::ScrollDown) {
                    Verb::Down
                } else {
                    Verb::Up
                };
                if pane == Focus::Tree {
                    let max = self.tree.rows(app).len().saturating_sub(1);
                    self.tree.offset = if verb == Verb::Down {
                        (self.tree.offset + 1).min(max)
                    } else {
                        self.tree.offset.saturating_sub(1)
                    };
                } else if pane == Focus::Probe {
                    self.probe_offset = if verb == Verb::Down {
                        self.probe_offset.saturating_add(1)
                    } else {
                        self.probe_offset.saturating_sub(1)
                    };
                } else {
                    self.navigate(app, verb);
                }
                self.focus = saved;
            }
            _ => {}
        }
        Action::None
    }
}

#[cfg(test)]
mod tests;
