//! Typing: the keys an input takes (the probe, `t`/`f` in observe, a
//! form's field, the audit view's filters), the probe's selected text (`/`
//! selects what was typed before, so typing replaces it), pasting, and the
//! question on screen (y/n) before something is sent.

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::View;
use super::form::FormStatus;
use super::keymap::Mode;

/// A question on screen, answered with y (or `again`) or n/Esc. The
/// controller keeps what waits on the answer; the view only draws it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub title: String,
    /// What would happen, in words (wrapped to the popup's width).
    pub lines: Vec<String>,
    /// Besides y, the key that goes ahead (`b` again, `r` again).
    pub again: Option<char>,
    /// What y does and what n does, as the popup's last lines say.
    pub yes: String,
    pub no: String,
}

/// Inserts pasted text at the cursor of an input (line breaks dropped).
pub(super) fn paste_into(input: &mut Input, text: &str) {
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    let value = input.value();
    let at = input.cursor();
    let byte = value
        .char_indices()
        .nth(at)
        .map(|(i, _)| i)
        .unwrap_or(value.len());
    let mut v = String::with_capacity(value.len() + clean.len());
    v.push_str(&value[..byte]);
    v.push_str(&clean);
    v.push_str(&value[byte..]);
    let cursor = at + clean.chars().count();
    *input = Input::new(v).with_cursor(cursor);
}

/// Whether a key typed over selected text replaces it (a character, or a
/// key that deletes); anything else (a move) only drops the selection.
fn replaces_selection(key: &KeyEvent) -> bool {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('u' | 'w' | 'h') if ctrl => true,
        KeyCode::Char(_) => !ctrl && !key.modifiers.contains(KeyModifiers::ALT),
        KeyCode::Backspace | KeyCode::Delete => true,
        _ => false,
    }
}

/// What observe says for a key of the explorer's: it is read-only, and
/// where the thing asked for is.
pub fn read_only_message(key: KeyCode) -> String {
    let c = match key {
        KeyCode::Char(c) => c,
        _ => '?',
    };
    match c {
        'r' => "observe has no restart: g goes to the first event, G to the last".into(),
        'O' => "observe already shows every client's chains (it reads the whole audit trail)"
            .into(),
        'v' => "observe is read-only: v (validate) is in the explorer, chainview --broker URL; here a status is what the trail says".into(),
        'y' | 'Y' => "observe is read-only and the trail holds no tokens to copy: y/Y are in the explorer".into(),
        'e' => "observe is read-only: e (export) is in the explorer; here, chainview observe --print json|dot|mermaid".into(),
        c => {
            let what = match c {
                'd' => "delegate",
                'a' => "create an agent",
                'w' => "renew",
                'x' => "release",
                'R' => "revoke",
                'i' => "import a token",
                _ => "that",
            };
            format!("observe is read-only — {c} ({what}) is the explorer's (chainview --broker URL)")
        }
    }
}

impl View {
    /// A key no binding takes: typed into the input of the mode, if any.
    pub(super) fn type_key(&mut self, key: KeyEvent) {
        let ev = TermEvent::Key(key);
        match self.mode() {
            Mode::Form => {
                if let Some(form) = &mut self.form
                    && let Some(f) = form.fields.get_mut(form.focus)
                    && !f.is_choice()
                {
                    f.input.handle_event(&ev);
                    form.status = FormStatus::Editing;
                }
            }
            Mode::Audit => {
                if let Some(a) = &mut self.audit {
                    a.filters[a.focus].handle_event(&ev);
                    a.offset = 0;
                }
            }
            Mode::Probe => {
                if std::mem::take(&mut self.probe_selected) && replaces_selection(&key) {
                    self.probe = Input::default();
                }
                self.probe.handle_event(&ev);
                self.probe_offset = 0;
            }
            Mode::Jump | Mode::Filter => {
                if let Some(j) = &mut self.jump {
                    j.handle_event(&ev);
                }
            }
            Mode::Normal | Mode::Observe | Mode::Help | Mode::Confirm => {}
        }
    }

    /// Pasted text goes to the input being typed in (a form field, the
    /// audit view's filter, the probe, `t`/`f`); over the probe's selected
    /// text, it replaces it.
    pub fn handle_paste(&mut self, text: &str) {
        match self.mode() {
            Mode::Form => {
                if let Some(form) = &mut self.form
                    && let Some(f) = form.fields.get_mut(form.focus)
                    && !f.is_choice()
                {
                    paste_into(&mut f.input, text);
                    form.status = FormStatus::Editing;
                }
            }
            Mode::Audit => {
                if let Some(a) = &mut self.audit {
                    paste_into(&mut a.filters[a.focus], text);
                }
            }
            Mode::Probe => {
                if std::mem::take(&mut self.probe_selected) {
                    self.probe = Input::default();
                }
                paste_into(&mut self.probe, text);
                self.probe_offset = 0;
            }
            Mode::Jump | Mode::Filter => {
                if let Some(j) = &mut self.jump {
                    paste_into(j, text);
                }
            }
            Mode::Normal | Mode::Observe | Mode::Help | Mode::Confirm => {}
        }
    }

    /// `/`: the probe takes typing, what it held selected (typing replaces it).
    pub(super) fn start_probe(&mut self) {
        self.set_focus(super::Focus::Probe);
        self.typing = true;
        self.probe_selected = !self.probe.value().is_empty();
    }

    /// Puts a question on screen (the controller keeps what waits on it).
    pub fn ask(&mut self, ask: Ask) {
        self.help = false;
        self.ask = Some(ask);
    }
}
