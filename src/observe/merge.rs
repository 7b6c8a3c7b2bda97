//! The explorer's merged view: the chains other clients made on the broker,
//! from its audit trail, added beside the explorer's own tokens. The
//! explorer's own tokens are recognised by jti (registrations, renewals) and
//! by chain hash (delegations), so they are never shown twice; a foreign
//! token delegated from one of them hangs under it.
//!
//! The merged view never judges the explorer's own tokens: their statuses
//! are the broker's answers. A [`Merged`] belongs to one App (its map holds
//! that App's token ids): when the App is replaced (`b`/`r`), so is it.

use std::collections::HashMap;

use crate::app::{App, TokenId, TokenStatus};

use super::Observed;
use super::project::{known, token_status};

/// Which token each reconstructed node became: the explorer's own, or one
/// added for another client.
#[derive(Debug, Default)]
pub struct Merged {
    token_of: Vec<Option<TokenId>>,
    /// Whether that token was added for another client (else it is the explorer's own).
    added: Vec<bool>,
}

impl Merged {
    /// How many tokens of other clients are in the App.
    pub fn foreign(&self) -> usize {
        self.added.iter().filter(|f| **f).count()
    }
}

/// Adds the tokens of `o` that are not the explorer's own to `app`, and
/// judges again those added before (as of the trail's last event); a token
/// added for another client and since made the explorer's own (imported)
/// is left to the broker's answers. Returns whether it merged (`false`: a
/// request of the explorer's own is in flight, the next round merges).
pub fn merge(app: &mut App, o: &Observed, m: &mut Merged) -> bool {
    let Some(at) = o.head() else { return true };
    // A request of the explorer's own in flight: its token may be in the
    // trail before its answer is in the App. Wait for the next round.
    if app
        .tokens
        .iter()
        .any(|t| !t.foreign && matches!(t.status_at(i64::MIN), TokenStatus::Pending))
    {
        return false;
    }
    let mut own: HashMap<String, TokenId> = HashMap::new();
    for t in app.tokens.iter().filter(|t| !t.foreign) {
        if let Some(c) = &t.claims {
            if !c.jti.is_empty() {
                own.insert(c.jti.clone(), t.id);
            }
            if !c.chain_hash.is_empty() {
                own.insert(c.chain_hash.clone(), t.id);
            }
        }
    }
    m.token_of.resize(o.nodes.len(), None);
    m.added.resize(o.nodes.len(), false);
    for i in 0..o.nodes.len() {
        let n = &o.nodes[i];
        match (m.token_of[i], m.added[i]) {
            (Some(tok), true) if app.tokens.get(tok).is_some_and(|t| t.foreign) => {
                let j = o.status(i, at);
                app.set_known_status(tok, token_status(o, i, &j));
                continue;
            }
            (Some(_), true) => {
                // Imported since: the explorer's own now.
                m.added[i] = false;
                continue;
            }
            (Some(_), false) => continue,
            (None, _) => {}
        }
        // By jti when the trail names it (a renewal keeps its chain hash:
        // another client's renewal of a token the explorer holds is not the
        // explorer's); by chain hash when it does not (a delegation).
        let mine = match (n.jti.as_deref(), n.chain_hash.as_deref()) {
            (Some(j), _) => own.get(j).copied(),
            (None, Some(h)) => own.get(h).copied(),
            (None, None) => None,
        };
        if let Some(t) = mine {
            m.token_of[i] = Some(t);
            continue;
        }
        let spiffe = &o.agents[n.agent].spiffe;
        let holder = match app
            .agents
            .iter()
            .position(|a| a.agent_id.as_deref() == Some(spiffe.as_str()))
        {
            Some(a) => a,
            None => app.outside_agent(spiffe),
        };
        let id = app.add_known(known(
            o,
            i,
            at,
            holder,
            &m.token_of,
            format!("other n{i}"),
            true,
        ));
        m.token_of[i] = Some(id);
        m.added[i] = true;
    }
    true
}
