//! What a data directory holds, read at start: the trail's head checked, apps, revocations, the admin secret's hash.

use super::*;

/// The trail's head, checked at start: it starts at genesis and its last
/// event verifies against the one before (the whole trail is not re-read,
/// to keep start-up fast). Returns (last seq, last hash).
pub(super) fn check_trail(conn: &Connection, db_path: &Path) -> Result<(u64, String), StoreError> {
    let damaged = |detail: String| StoreError::Damaged {
        path: db_path.to_path_buf(),
        detail,
    };
    let sql = |e| sql_err(db_path, e);
    let Some(first) = event_at(conn, "ORDER BY seq LIMIT 1").map_err(sql)? else {
        return Ok((0, GENESIS.to_string()));
    };
    if first.0 != 1 || first.1.id != "evt-000001" || first.1.prev_hash != GENESIS {
        return Err(damaged(format!(
            "the audit trail does not start at genesis (its first event is {}, seq {})",
            first.1.id, first.0
        )));
    }
    let Some((seq, last)) = event_at(conn, "ORDER BY seq DESC LIMIT 1").map_err(sql)? else {
        return Ok((0, GENESIS.to_string()));
    };
    if !last.as_ref().hash_matches() {
        return Err(damaged(format!(
            "the last audit event ({}) does not match its hash",
            last.id
        )));
    }
    if seq > 1 {
        let prev = event_at(conn, &format!("WHERE seq = {} LIMIT 1", seq - 1)).map_err(sql)?;
        if prev.is_none_or(|(_, p)| p.hash != last.prev_hash) {
            return Err(damaged(format!(
                "the last audit event ({}) does not follow the one before it in the hash chain",
                last.id
            )));
        }
    }
    Ok((seq, last.hash))
}

/// The previous hash of the first event.
pub(super) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub(super) const EVENT_COLUMNS: &str = "id, timestamp, event_type, agent_id, task_id, orch_id, detail, \
     resource, outcome, deleg_depth, deleg_chain_hash, bytes_transferred, hash, prev_hash";

pub(super) fn row_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEvent> {
    Ok(AuditEvent {
        id: r.get(0)?,
        timestamp: r.get(1)?,
        event_type: r.get(2)?,
        agent_id: r.get(3)?,
        task_id: r.get(4)?,
        orch_id: r.get(5)?,
        detail: r.get(6)?,
        resource: r.get(7)?,
        outcome: r.get(8)?,
        deleg_depth: r.get(9)?,
        deleg_chain_hash: r.get(10)?,
        bytes_transferred: r.get(11)?,
        hash: r.get(12)?,
        prev_hash: r.get(13)?,
    })
}

pub(super) fn event_at(
    conn: &Connection,
    tail: &str,
) -> rusqlite::Result<Option<(u64, AuditEvent)>> {
    conn.query_row(
        &format!("SELECT {EVENT_COLUMNS}, seq FROM audit {tail}"),
        [],
        |r| Ok((r.get::<_, i64>(14)? as u64, row_event(r)?)),
    )
    .optional()
}

pub(super) fn load_admin_secret(
    conn: &Connection,
) -> rusqlite::Result<Option<([u8; 16], [u8; 32])>> {
    let v: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'admin_secret'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.filter(|v| v.len() == 48).map(|v| {
        let mut salt = [0u8; 16];
        let mut hash = [0u8; 32];
        salt.copy_from_slice(&v[..16]);
        hash.copy_from_slice(&v[16..]);
        (salt, hash)
    }))
}

pub(super) fn load_apps(conn: &Connection) -> rusqlite::Result<Vec<StoredApp>> {
    let mut stmt = conn.prepare(
        "SELECT app_id, name, client_id, secret_hash, scopes, token_ttl, active, created_at, \
         updated_at, seq FROM apps ORDER BY seq",
    )?;
    let rows = stmt.query_map([], |r| {
        let hash: Vec<u8> = r.get(3)?;
        let scopes: String = r.get(4)?;
        Ok(StoredApp {
            app_id: r.get(0)?,
            name: r.get(1)?,
            client_id: r.get(2)?,
            secret_hash: hash.try_into().unwrap_or([0; 32]),
            scopes: serde_json::from_str(&scopes).unwrap_or_default(),
            token_ttl: r.get(5)?,
            active: r.get(6)?,
            created_at: r.get(7)?,
            updated_at: r.get(8)?,
            seq: r.get::<_, i64>(9)? as u64,
        })
    })?;
    rows.collect()
}

pub(in crate::broker::embedded) type Revocation = (RevokeLevel, String, Option<i64>);

pub(super) fn load_revocations(conn: &Connection) -> rusqlite::Result<Vec<Revocation>> {
    // Rows of tokens that have expired since are of no use: drop them.
    conn.execute(
        "DELETE FROM revocations WHERE exp IS NOT NULL AND exp < ?1",
        params![Utc::now().timestamp() - 60],
    )?;
    let mut stmt = conn.prepare("SELECT level, target, exp FROM revocations")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<i64>>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (level, target, exp) = row?;
        if let Some(l) = RevokeLevel::parse(&level) {
            out.push((l, target, exp));
        }
    }
    Ok(out)
}
