//! The audit writer (group commit: a request is answered once its events are committed) and the checkpointer.

use super::*;

pub(super) fn write_batch(
    conn: &mut Connection,
    batch: &[Arc<AuditEvent>],
    seqs: &[(u64, i64)],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO audit (seq, id, timestamp, ts_ns, event_type, agent_id, task_id, \
             orch_id, detail, resource, outcome, deleg_depth, deleg_chain_hash, \
             bytes_transferred, hash, prev_hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?;
        for (e, (seq, ts)) in batch.iter().zip(seqs) {
            stmt.execute(params![
                *seq as i64,
                e.id,
                e.timestamp,
                ts,
                e.event_type,
                e.agent_id,
                e.task_id,
                e.orch_id,
                e.detail,
                e.resource,
                e.outcome,
                e.deleg_depth,
                e.deleg_chain_hash,
                e.bytes_transferred,
                e.hash,
                e.prev_hash
            ])?;
        }
    }
    tx.commit()
}

/// The words for a failed batch (shown to clients too: no path): a full
/// disk said as such.
pub(super) fn failure_cause(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => "the broker's disk is full".into(),
        _ => format!("the database refused the write ({e})"),
    }
}

/// The requests the last commit (or failure) concerns, taken out of the
/// waiting list under the lock; told after it is dropped ([`tell_waiters`]).
pub(super) fn due_waiters(st: &mut AuditState) -> Vec<Waiter> {
    let keep = if st.failing.is_some() {
        std::collections::BTreeMap::new()
    } else {
        st.waiters.split_off(&(st.committed + 1))
    };
    std::mem::replace(&mut st.waiters, keep)
        .into_values()
        .flatten()
        .collect()
}

pub(super) fn tell_waiters(due: Vec<Waiter>, failing: Option<&str>) {
    for w in due {
        let _ = w.send(match failing {
            None => Ok(()),
            Some(why) => Err(NotWritten(why.to_string())),
        });
    }
}

/// Commits the queue, batch after batch, each as soon as the previous one
/// ends (group commit). On failure: retries in small batches, says so once.
pub(super) fn writer_loop(mut conn: Connection, shared: &Shared) {
    let mut failures = 0u32;
    loop {
        let limit = {
            let mut st = guard(&shared.state);
            while st.queue.is_empty() && !st.stop {
                st = match shared.wake.wait(st) {
                    Ok(g) => g,
                    Err(e) => e.into_inner(),
                };
            }
            if st.queue.is_empty() {
                return;
            }
            if st.failing.is_some() {
                RETRY_BATCH
            } else {
                MAX_BATCH
            }
        };
        let (batch, seqs): (Vec<Arc<AuditEvent>>, Vec<(u64, i64)>) = guard(&shared.state)
            .queue
            .iter()
            .take(limit)
            .map(|q| (q.event.clone(), (q.seq, q.ts_ns)))
            .unzip();
        match write_batch(&mut conn, &batch, &seqs) {
            Ok(()) => {
                failures = 0;
                let mut st = guard(&shared.state);
                st.queue.drain(..batch.len());
                if let Some((last, _)) = seqs.last() {
                    st.committed = *last;
                }
                let resumed = st.failing.take().is_some().then(|| {
                    format!(
                        "audit trail written again to {}; {} events still queued",
                        shared.db_path.display(),
                        st.queue.len()
                    )
                });
                let due = due_waiters(&mut st);
                drop(st);
                shared.done.notify_all();
                tell_waiters(due, None);
                // Said with no lock held: a slow console never stalls requests.
                if let Some(line) = resumed {
                    tell(shared, &line);
                }
            }
            Err(e) => {
                failures += 1;
                let cause = failure_cause(&e);
                tracing::error!(error = %e, "audit batch not written; retrying");
                // A failed transaction may leave a grown WAL behind: give the
                // space back so a retry has room.
                let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
                let mut st = guard(&shared.state);
                let first = st.failing.is_none().then(|| {
                    format!(
                        "{}: audit events cannot be written: {cause}; audited requests are \
                         refused (503) until they can; free space there and the broker \
                         resumes by itself",
                        shared.db_path.display()
                    )
                });
                st.failing = Some(cause.clone());
                let due = due_waiters(&mut st);
                drop(st);
                tell_waiters(due, Some(&cause));
                if let Some(line) = first {
                    tell(shared, &line);
                }
                let st = guard(&shared.state);
                if st.stop && failures >= 3 {
                    // Stopping and the disk refuses: give up rather than hang.
                    return;
                }
                let pause = Duration::from_millis(50 * u64::from(failures.min(20)));
                let _ = shared.wake.wait_timeout_while(st, pause, |st| !st.stop);
            }
        }
    }
}

/// Copies the WAL into the database every 500 ms (a passive checkpoint:
/// it never blocks the writer), and once more at stop.
pub(super) fn checkpoint_loop(conn: Connection, shared: &Shared) {
    let mut st = guard(&shared.state);
    loop {
        st = match shared
            .stopping
            .wait_timeout_while(st, Duration::from_millis(500), |st| !st.stop)
        {
            Ok((g, _)) => g,
            Err(e) => e.into_inner().0,
        };
        let stopping = st.stop;
        drop(st);
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        if stopping {
            return;
        }
        st = guard(&shared.state);
    }
}

pub(super) fn tell(shared: &Shared, what: &str) {
    if let Some(c) = &shared.console {
        (c.0)(&format!("chainview broker: {what}"));
    }
}
