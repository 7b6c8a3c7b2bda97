//! The audit view's state (`A`): the filters typed and the selection.

use super::*;

/// The audit view (`A`): filters typed by the user, and a scroll position.
#[derive(Debug, Default)]
pub struct AuditView {
    /// Event type, agent, task — each matched as a substring.
    pub filters: [Input; 3],
    pub focus: usize,
    /// The selected event among those shown (its whole detail is shown below).
    pub offset: usize,
}

impl AuditView {
    pub const FILTER_NAMES: [&'static str; 3] = ["type", "agent", "task"];

    pub fn filter(&self) -> AuditFilter {
        let v = |i: usize| {
            let s = self.filters[i].value().trim();
            (!s.is_empty()).then(|| s.to_string())
        };
        AuditFilter {
            event_type: v(0),
            agent: v(1),
            task: v(2),
        }
    }
}
