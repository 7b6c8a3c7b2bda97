//! The explorer's judgment: the findings, who-can and what-if panes over
//! the broker's audit trail, read as the merged view reads it (admin; the
//! embedded broker always is), whether or not other clients' chains are
//! shown. Judged as of the trail's last event read.

use super::Session;

impl Session {
    /// Whether the audit trail is read for judgment (the admin secret is known).
    pub(super) fn judging(&self) -> bool {
        self.driver.app.admin
    }

    /// Brings the findings, who-can and what-if panes up to date (before
    /// each frame; cheap when nothing changed).
    pub fn judge(&mut self) {
        use crate::view::judgment::{refresh, unavailable};
        if !self.judging() {
            unavailable(
                &mut self.view,
                "judgment reads the audit trail: set AGENTWRIT_ADMIN_SECRET",
            );
            return;
        }
        match self.others.as_ref() {
            Some(others) if others.offset > 0 => {
                let at = others.o.head().unwrap_or(0);
                refresh(&mut self.view, &self.driver.app, &others.o, at);
            }
            _ => unavailable(&mut self.view, "reading the audit trail…"),
        }
    }
}

/// Other clients' tokens merged into the App, only while they are shown
/// (the trail is also read for judgment with them hidden); whether it merged.
pub(super) fn merge_shown(app: &mut crate::app::App, others: &mut super::Others) -> bool {
    app.show_others && crate::observe::merge::merge(app, &others.o, &mut others.merged)
}
