//! `App::apply`: the worker's answers folded into the state (issued,
//! refused, validated, revoked).

use super::*;

impl App {
    pub(super) fn issued(&mut self, id: TokenId, raw: String, expires_in: i64) {
        let decoded = jwt::decode(&raw);
        let t = &mut self.tokens[id];
        match decoded {
            Ok(d) => {
                t.verification = self.broker_key.as_ref().map(|k| d.verify(k));
                t.claims = Some(d.claims);
                t.status = TokenStatus::Valid;
            }
            Err(e) => {
                t.status = TokenStatus::Failed(format!(
                    "the broker issued a token chainview cannot decode: {e}"
                ))
            }
        }
        t.raw = Some(raw);
        t.expires_in = Some(expires_in);
        // Revocation entries apply to future tokens too (spec §7.1).
        if let Some(c) = self.tokens[id].claims.clone()
            && let Some((level, target)) = self.revocation_matching(&c)
        {
            self.tokens[id].status = TokenStatus::Revoked { level, target };
        }
    }

    pub(super) fn fail(&mut self, id: TokenId, e: &ClientError) {
        self.tokens[id].status = match e {
            ClientError::Broker(b) => TokenStatus::Refused(b.clone()),
            other => TokenStatus::Failed(other.to_string()),
        };
    }

    /// The first revocation entry of this session that matches these claims (spec §7.1).
    pub fn revocation_matching(&self, c: &Claims) -> Option<(RevokeLevel, String)> {
        self.revocations
            .iter()
            .find(|(level, target)| revokes(*level, target, c))
            .cloned()
    }

    /// Folds a worker event into the state, as of `now` (Unix seconds):
    /// pure, the clock is the caller's.
    pub fn apply(&mut self, ev: &Event, now: i64) {
        self.generation += 1;
        let about = match &ev.outcome {
            Outcome::AgentCreated { token, .. }
            | Outcome::Delegated { token, .. }
            | Outcome::Validated { token, .. }
            | Outcome::Released { token, .. }
            | Outcome::Renewed { new: token, .. } => {
                self.tokens.get(*token).map(|_| self.token_name(*token))
            }
            Outcome::Revoked { level, target, .. } => Some(format!("revoke {level} {target}")),
            _ => None,
        };
        for call in &ev.calls {
            self.log.push(LogEntry {
                at: now,
                call: call.clone(),
                about: about.clone(),
            });
        }
        if let Some(e) = ev.outcome.unreachable() {
            self.connection_error = Some(e.to_string());
        } else if !ev.calls.is_empty()
            || matches!(&ev.outcome, Outcome::Revalidated(r) if !r.is_empty())
        {
            self.connection_error = None;
            self.connected = true;
        }
        match &ev.outcome {
            Outcome::Health(_) => {}
            Outcome::AppReady(r) => {
                if let Ok(info) = r {
                    self.app = Some(info.clone());
                }
            }
            Outcome::AgentCreated {
                agent,
                token,
                result,
            } => match result {
                Ok(a) => {
                    self.agents[*agent].agent_id = Some(a.agent_id.clone());
                    self.issued(*token, a.access_token.clone(), a.expires_in);
                }
                Err(e) => self.fail(*token, e),
            },
            Outcome::Delegated { token, result } => match result {
                Ok(d) => self.issued(*token, d.access_token.clone(), d.expires_in),
                Err(e) => self.fail(*token, e),
            },
            Outcome::Validated { token, result } => self.validated(*token, result, now),
            Outcome::Renewed { old, new, result } => match result {
                Ok(r) => {
                    self.tokens[*old].status = TokenStatus::RenewedAway;
                    self.issued(*new, r.access_token.clone(), r.expires_in);
                }
                Err(e) => {
                    self.fail(*new, e);
                    self.renewal_refused(*old, *new);
                }
            },
            Outcome::Released { token, result } => {
                if result.is_ok() {
                    self.tokens[*token].status = TokenStatus::Released;
                }
            }
            Outcome::Audit(r) => {
                self.audit = Some(match r {
                    Ok(read) => Ok(AuditTrail::new(read.clone(), now)),
                    Err(e) => Err(e.to_string()),
                });
            }
            Outcome::Revalidated(answers) => self.revalidated(answers, now),
            // observe folds these into its own reconstruction.
            Outcome::AuditSince { .. } => {}
            Outcome::Revoked {
                level,
                target,
                result,
            } => {
                if result.is_ok() {
                    self.revoked(*level, target, now);
                }
            }
        }
    }

    /// A `validate` answer for one token.
    pub(super) fn validated(
        &mut self,
        token: TokenId,
        result: &Result<crate::broker::types::ValidateResponse, ClientError>,
        now: i64,
    ) {
        // An imported token the broker would not even look at (e.g.
        // 413: too large) is not left "pending" forever.
        if let Err(e) = result
            && self.tokens[token].status == TokenStatus::Pending
        {
            self.fail(token, e);
        }
        if let Ok(v) = result {
            let t = &mut self.tokens[token];
            t.validated = Some(Validation {
                at: now,
                valid: v.valid,
            });
            match (v.valid, &t.status) {
                (true, _) => t.status = TokenStatus::Valid,
                (false, TokenStatus::Valid | TokenStatus::Pending) => {
                    t.status = if t.exp().is_some_and(|e| now > e) {
                        TokenStatus::Expired
                    } else {
                        TokenStatus::Invalid
                    }
                }
                (false, _) => {}
            }
        }
    }

    /// The live check's answers: tokens that died elsewhere are marked, and
    /// said in the log once.
    pub(super) fn revalidated(
        &mut self,
        answers: &[(
            TokenId,
            Call,
            Result<crate::broker::types::ValidateResponse, ClientError>,
        )],
        now: i64,
    ) {
        self.revalidated_at = Some(now);
        self.live_pending = false;
        for (id, call, r) in answers {
            let Some(t) = self.tokens.get_mut(*id) else {
                continue;
            };
            let before = t.status.clone();
            let mut call = call.clone();
            match r {
                Ok(v) => {
                    t.validated = Some(Validation {
                        at: now,
                        valid: v.valid,
                    });
                    if v.valid || before != TokenStatus::Valid {
                        continue;
                    }
                    let expired = t.exp().is_some_and(|e| now > e);
                    t.status = if expired {
                        TokenStatus::Expired
                    } else {
                        TokenStatus::Invalid
                    };
                    if expired {
                        continue;
                    }
                    let name = self.token_name(*id);
                    call.error = Some(format!(
                        "live check: {name} died elsewhere — the broker now says it is invalid"
                    ));
                }
                // Only the first failure of a quiet check is worth a line.
                Err(_) if self.connection_error.is_some() => continue,
                Err(_) => {}
            }
            let about = Some(self.token_name(*id));
            self.log.push(LogEntry {
                at: now,
                call,
                about,
            });
        }
    }

    /// A revocation the broker accepted: every live token it matches dies
    /// (the first cause wins: a token already dead keeps its cause).
    pub(super) fn revoked(&mut self, level: RevokeLevel, target: &str, now: i64) {
        self.revocations.push((level, target.to_string()));
        for i in 0..self.tokens.len() {
            let t = &self.tokens[i];
            // Another client's token (merged view): its status is the
            // trail's; the revocation is predicted until the trail shows it.
            if t.foreign || t.status_at(now) != TokenStatus::Valid {
                continue;
            }
            if let Some(c) = &t.claims
                && let Some((l, tg)) = self.revocation_matching(c)
            {
                self.tokens[i].status = TokenStatus::Revoked {
                    level: l,
                    target: tg,
                };
            }
        }
    }
}
