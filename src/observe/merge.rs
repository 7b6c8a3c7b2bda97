//! The explorer's merged view: the chains other clients made on the broker,
//! from its audit trail, added beside the explorer's own tokens. The
//! explorer's own tokens are recognised by jti (registrations, renewals) and
//! by chain hash (delegations), so they are never shown twice; a foreign
//! token delegated from one of them hangs under it.

use std::collections::HashMap;

use crate::app::{App, Known, TokenId, TokenKind, TokenStatus};

use super::Observed;
use super::project::{claims, token_status};

/// Which token each reconstructed node became: the explorer's own, or one
/// added for another client.
#[derive(Debug, Default)]
pub struct Merged {
    node_token: Vec<Option<(TokenId, bool)>>,
}

impl Merged {
    /// How many tokens of other clients are in the App.
    pub fn foreign(&self) -> usize {
        self.node_token.iter().flatten().filter(|(_, f)| *f).count()
    }
}

/// Adds the tokens of `o` that are not the explorer's own to `app`, and
/// judges again those added before (as of the trail's last event).
pub fn merge(app: &mut App, o: &Observed, m: &mut Merged) {
    let Some(at) = o.head() else { return };
    // A request of the explorer's own in flight: its token may be in the
    // trail before its answer is in the App. Wait for the next round.
    if app
        .tokens
        .iter()
        .any(|t| !t.foreign && matches!(t.status_at(i64::MIN), TokenStatus::Pending))
    {
        return;
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
    m.node_token.resize(o.nodes.len(), None);
    for i in 0..o.nodes.len() {
        let n = &o.nodes[i];
        match m.node_token[i] {
            Some((tok, true)) => {
                let j = o.status(i, at);
                app.set_known_status(tok, token_status(o, i, &j));
                continue;
            }
            Some((_, false)) => continue,
            None => {}
        }
        let mine = [n.jti.as_deref(), n.chain_hash.as_deref()]
            .into_iter()
            .flatten()
            .find_map(|k| own.get(k).copied());
        if let Some(t) = mine {
            m.node_token[i] = Some((t, false));
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
        let token_of = |x: Option<usize>| x.and_then(|p| m.node_token[p]).map(|(t, _)| t);
        let kind = match (token_of(n.renews), token_of(n.parent)) {
            (Some(of), _) => TokenKind::Renewal { of },
            (None, Some(parent)) => TokenKind::Delegated { parent },
            (None, None) if n.depth > 0 => TokenKind::Imported { parent: None },
            (None, None) => TokenKind::Registration,
        };
        let j = o.status(i, at);
        let mut notes = vec![format!(
            "another client's {} (audit trail {}, {})",
            n.kind.word(),
            o.events[n.event].id,
            o.events[n.event].timestamp
        )];
        notes.push(format!("status: {}", j.why));
        notes.extend(n.inferred.iter().map(|w| format!("inferred: {w}")));
        let id = app.add_known(Known {
            holder,
            kind,
            label: format!("other n{i}"),
            claims: Some(claims(o, i)),
            requested: n.scope.clone(),
            status: token_status(o, i, &j),
            notes,
            foreign: true,
        });
        m.node_token[i] = Some((id, true));
    }
}
