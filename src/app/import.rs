//! Importing a token from outside: checked, placed under the token it came
//! from, or resolving a node the merged view already shows.

use super::*;

impl App {
    /// Imports a token from elsewhere: decoded at once (malformed or truncated
    /// input is rejected with the reason and nothing is stored), placed under
    /// the known token its last chain record names, or as an orphan root. It
    /// stays `Pending` until the broker's `validate` answers.
    pub fn import(
        &mut self,
        label: &str,
        raw: &str,
        line: Option<usize>,
    ) -> Result<TokenId, ImportError> {
        let raw = raw.trim();
        let d = self.check_import(raw)?;
        if self.labels.contains_key(label) || self.agent_by_name(label).is_some() {
            return Err(ImportError::LabelTaken(label.to_string()));
        }
        if let Some(id) = self.observed_twin(&d.claims) {
            return Ok(self.resolve_observed(id, label, raw, d, line));
        }
        let holder = match self
            .agents
            .iter()
            .position(|a| a.agent_id.as_deref() == Some(d.claims.sub.as_str()))
        {
            Some(i) => i,
            None => self.outside_agent(&d.claims.sub),
        };
        let parent = d
            .claims
            .delegation_chain
            .split_last()
            .and_then(|(last, before)| self.find_parent(&last.agent, &last.scope, before.len()));
        let mut t = self.new_token(
            holder,
            TokenKind::Imported { parent },
            Some(label.to_string()),
            d.claims.scope.clone(),
            line,
        );
        t.verification = self.broker_key.as_ref().map(|k| d.verify(k));
        t.expires_in = Some(d.claims.exp - unix_now());
        t.claims = Some(d.claims);
        t.raw = Some(raw.to_string());
        Ok(self.push_token(t))
    }

    /// The other client's token shown from the audit trail (the merged
    /// view) that these claims are: by jti, else — a delegated token, whose
    /// jti the trail does not carry — by chain hash and holder (the one
    /// issued closest to `iat` when a renewal left several).
    pub fn observed_twin(&self, c: &Claims) -> Option<TokenId> {
        let observed = || {
            self.tokens
                .iter()
                .filter(|t| t.foreign)
                .filter_map(|t| t.claims.as_ref().map(|k| (t.id, k)))
        };
        if !c.jti.is_empty()
            && let Some((id, _)) = observed().find(|(_, k)| k.jti == c.jti)
        {
            return Some(id);
        }
        if c.chain_hash.is_empty() {
            return None;
        }
        observed()
            .filter(|(_, k)| k.jti.is_empty() && k.chain_hash == c.chain_hash && k.sub == c.sub)
            .min_by_key(|(_, k)| (k.iat - c.iat).abs())
            .map(|(id, _)| id)
    }

    /// Another client's token, imported: the shown node becomes the
    /// explorer's own, with the token's claims; the broker's `validate`
    /// settles its status (a death the trail states stays until the broker
    /// says it is valid).
    pub(super) fn resolve_observed(
        &mut self,
        id: TokenId,
        label: &str,
        raw: &str,
        d: jwt::Decoded,
        line: Option<usize>,
    ) -> TokenId {
        self.generation += 1;
        let verification = self.broker_key.as_ref().map(|k| d.verify(k));
        let shown = self.token_name(id);
        let t = &mut self.tokens[id];
        t.foreign = false;
        t.label = Some(label.to_string());
        t.line = line;
        t.verification = verification;
        t.expires_in = Some(d.claims.exp - unix_now());
        t.claims = Some(d.claims);
        t.raw = Some(raw.to_string());
        t.validated = None;
        if !matches!(
            t.status,
            TokenStatus::Revoked { .. } | TokenStatus::Released | TokenStatus::RenewedAway
        ) {
            t.status = TokenStatus::Pending;
        }
        t.notes.push(format!(
            "imported as {label} (was {shown}, from the audit trail): the broker's answers settle its status"
        ));
        self.labels.insert(label.to_string(), id);
        id
    }

    /// Decodes a token to import and checks it is new (another client's
    /// token shown from the trail is not a duplicate: the import resolves
    /// it); stores nothing.
    pub fn check_import(&self, raw: &str) -> Result<jwt::Decoded, ImportError> {
        let raw = raw.trim();
        if raw.len() > jwt::MAX_TOKEN {
            return Err(ImportError::TooLarge(raw.len()));
        }
        let d = jwt::decode(raw).map_err(|e| match e {
            jwt::JwtError::Base64 { part: 3, .. } => ImportError::Damaged,
            other => ImportError::Malformed(other),
        })?;
        if d.header.alg != "EdDSA" {
            return Err(ImportError::Algorithm(d.header.alg));
        }
        if d.signature.len() != 64 {
            return Err(ImportError::Truncated(d.signature.len()));
        }
        if let Some(known) = self
            .tokens
            .iter()
            .find(|t| !t.foreign && t.claims.as_ref().is_some_and(|c| c.jti == d.claims.jti))
        {
            return Err(ImportError::Duplicate(self.token_name(known.id)));
        }
        Ok(d)
    }

    /// The known token held by `agent` with exactly `scope` at chain depth
    /// `depth`: where an imported token's last hop came from. Live first.
    pub(super) fn find_parent(
        &self,
        agent: &str,
        scope: &[String],
        depth: usize,
    ) -> Option<TokenId> {
        let now = unix_now();
        let mut found: Option<TokenId> = None;
        for t in &self.tokens {
            let held_by = self.agents[t.holder].agent_id.as_deref() == Some(agent);
            let fits = t
                .claims
                .as_ref()
                .is_some_and(|c| c.scope == scope && c.depth() == depth);
            if held_by && fits {
                if !t.status_at(now).is_dead() {
                    return Some(t.id);
                }
                found.get_or_insert(t.id);
            }
        }
        found
    }
}
