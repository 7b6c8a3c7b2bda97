//! What the view says of a step: its mark and line in the steps pane, why
//! it did not go as written, and the message after an action (a
//! revocation's prediction and who confirms it).

use super::*;

/// How a step ended, for the step panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepMark {
    Done,
    Refused,
    Error,
    Held,
    Failed,
    NotRun,
}

impl StepMark {
    pub fn of(r: &StepReport) -> StepMark {
        match (&r.result, &r.expectation) {
            (StepResult::NotRun, _) => StepMark::NotRun,
            (StepResult::Unreachable(_) | StepResult::Error(_), _) => StepMark::Error,
            (StepResult::Refused(_), _) => StepMark::Refused,
            (_, Some(e)) if e.ok => StepMark::Held,
            (_, Some(_)) => StepMark::Failed,
            _ => StepMark::Done,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            StepMark::Done => "·",
            StepMark::Refused => "✗",
            StepMark::Error => "!",
            StepMark::Held => "✓",
            StepMark::Failed => "✗",
            StepMark::NotRun => "–",
        }
    }
}

/// A scenario line in the step panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepLine {
    pub line: usize,
    pub source: String,
    pub kind: Keyword,
    pub say: Option<String>,
    pub mark: Option<StepMark>,
    /// Why it did not go as written (a refusal, an error, a failed
    /// expectation): shown under it when selected in the Steps pane.
    pub why: Option<String>,
}

/// Why a step did not go as written, in words (`None` when it did).
pub(super) fn step_why(r: &StepReport) -> Option<String> {
    match &r.result {
        StepResult::Refused(b) => Some(format!(
            "refused by the broker: {} {} — \"{}\"",
            b.status, b.error_code, b.detail
        )),
        StepResult::Error(e) => Some(format!("could not run: {e}")),
        StepResult::Unreachable(e) => Some(format!("broker unreachable: {e}")),
        StepResult::NotRun => Some(
            "not run: an earlier step could not reach the broker (r restarts once it answers)"
                .into(),
        ),
        StepResult::Ok => r
            .expectation
            .as_ref()
            .filter(|x| !x.ok)
            .map(|x| format!("failed: {}", x.reason)),
    }
}

/// At most four names, then how many more.
pub(super) fn names(list: &[&str]) -> String {
    match list.len() {
        0..=4 => list.join(", "),
        n => format!("{}, +{} more", list[..3].join(", "), n - 3),
    }
}

/// After a revocation: what spec §7.1 predicted, what the broker says of
/// the explorer's own tokens (asked at once), and that the audit trail is
/// to confirm the rest (other clients' tokens, the merged view's).
pub fn revoke_message(fates: &[crate::scenario::report::Fate]) -> String {
    let predicted: Vec<&str> = fates
        .iter()
        .filter(|f| f.predicted_dead)
        .map(|f| f.label.as_str())
        .collect();
    let mut out = if predicted.is_empty() {
        "✓ revoked: predicted 0 (no live token chainview shows is covered)".to_string()
    } else {
        format!(
            "✓ revoked: predicted {} ({})",
            predicted.len(),
            names(&predicted)
        )
    };
    // Three buckets: those whose status the trail cannot settle may have
    // been dead already.
    let unsure: Vec<&str> = fates
        .iter()
        .filter(|f| f.predicted_dead && f.unsure)
        .map(|f| f.label.as_str())
        .collect();
    if !unsure.is_empty() {
        out.push_str(&format!(
            ", of which {} may already have been dead (the trail cannot settle {})",
            unsure.len(),
            names(&unsure)
        ));
    }
    let waiting: Vec<&str> = fates
        .iter()
        .filter(|f| f.trail && f.predicted_dead)
        .map(|f| f.label.as_str())
        .collect();
    if !waiting.is_empty() {
        out.push_str("; the trail will confirm");
        if waiting.len() < predicted.len() {
            out.push_str(&format!(" {}", names(&waiting)));
        }
    }
    let asked: Vec<_> = fates.iter().filter(|f| !f.trail).collect();
    if !asked.is_empty() {
        let died: Vec<&str> = asked
            .iter()
            .filter(|f| f.valid_after == Some(false))
            .map(|f| f.label.as_str())
            .collect();
        let lived = asked.iter().filter(|f| f.valid_after == Some(true)).count();
        let unasked = asked.len() - died.len() - lived;
        let agrees = asked
            .iter()
            .all(|f| f.valid_after.is_none() || (f.valid_after == Some(false)) == f.predicted_dead);
        out.push_str(&match (agrees, died.is_empty()) {
            (true, true) => format!("; the broker confirms your {lived} live on"),
            (true, false) => format!(
                "; the broker confirms: {} died ({}), {lived} live on",
                died.len(),
                names(&died)
            ),
            (false, _) => format!(
                "; the broker says {} died ({}), {lived} live on — differs from the rule chainview knows!",
                died.len(),
                names(&died)
            ),
        });
        if unasked > 0 {
            out.push_str(&format!(" ({unasked} not answered)"));
        }
    }
    out
}

/// The status-bar line after a successful action.
pub(super) fn action_message(r: &StepReport) -> String {
    let t = r.tokens.last();
    let name = t.map(|t| t.label.clone()).unwrap_or_default();
    match r.kind {
        Keyword::Agent => format!(
            "✓ {name} registered as {}",
            t.and_then(|t| t.agent_id.clone()).unwrap_or_default()
        ),
        Keyword::Delegate => format!(
            "✓ {name} issued to {} (depth {})",
            t.map(|t| t.holder.as_str()).unwrap_or(""),
            t.map(|t| t.depth).unwrap_or(0)
        ),
        Keyword::Renew => format!("✓ {name} renewed; the old token is revoked"),
        Keyword::Release => format!("✓ {name} released"),
        Keyword::Import => format!(
            "✓ {name} imported — the broker says {}",
            t.map(|t| t.status.as_str()).unwrap_or("?")
        ),
        Keyword::Revoke => revoke_message(&r.fates),
        _ => format!("✓ {}", r.source),
    }
}
