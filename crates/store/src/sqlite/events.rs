//! The event queue on SQLite: one file, one machine, so claims are timed by the machine's
//! clock, read inside each `IMMEDIATE` transaction (after any wait for the lock, so a claim
//! never starts in the past). Processes sharing the file take turns on its write lock, which
//! is what keeps two claimers from taking the same event.

use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, params};

use super::{SqliteStore, TxError, lease_end, transact};
use crate::events::first_of_each;
use crate::row::{
    self, EVENT_BY_ID, EVENT_COLUMNS, EVENT_ORDER, EVENT_STATS, RECENT_IN_STATE_TAIL, RECENT_TAIL,
    RawEvent, event_select, ts,
};
use crate::{
    EventLane, EventOutcome, EventQueue, EventQueueStats, EventRecord, EventState, NewEvent,
    StoreError,
};

impl SqliteStore {
    /// Runs `f` in one `IMMEDIATE` transaction that commits with `synchronous=FULL`, also on a
    /// journal connection (which otherwise commits with `NORMAL`): what it stores survives a
    /// power loss once this returns.
    fn durable_tx<T>(
        &self,
        action: &str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        if self.durable {
            return self.write_tx(action, f);
        }
        let mut conn = self.conn.lock();
        // The setting cannot change inside a transaction, hence around it.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(self.query_err(action))?;
        let result = transact(&mut conn, f);
        // Only costs the journal speed if it fails; the events are stored either way.
        let _ = restore_normal(&conn);
        result.map_err(|e| self.tx_err(action, e))
    }

    fn select_events(
        &self,
        tail: &str,
        params: impl rusqlite::Params,
        action: &str,
    ) -> Result<Vec<EventRecord>, StoreError> {
        self.select(
            &event_select(tail),
            params,
            |row| RawEvent::read(row),
            RawEvent::decode,
            action,
        )
    }
}

fn restore_normal(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "synchronous", "NORMAL")
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[async_trait::async_trait]
impl EventQueue for SqliteStore {
    async fn enqueue_events(&self, events: &[NewEvent]) -> Result<Vec<bool>, StoreError> {
        let mut stored = vec![false; events.len()];
        if events.is_empty() {
            return Ok(stored);
        }
        let action = format!("store {} event(s)", events.len());
        self.durable_tx(&action, |tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events
                     (id, lane, employee_id, occurred_at, received_at, body, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued')
                 ON CONFLICT (id) DO NOTHING",
            )?;
            for index in first_of_each(events.iter().map(|e| e.id.as_str())) {
                let e = &events[index];
                let inserted = insert.execute(params![
                    e.id,
                    e.lane.as_str(),
                    e.employee_id,
                    ts(e.occurred_at),
                    ts(e.received_at),
                    e.body,
                ])?;
                stored[index] = inserted == 1;
            }
            Ok(())
        })?;
        Ok(stored)
    }

    async fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        let mut found = self.select_events(EVENT_BY_ID, [id], &format!("read event {id}"))?;
        Ok(found.pop())
    }

    async fn claim_events(
        &self,
        lane: EventLane,
        limit: usize,
        claimer: &str,
        claim_for: Duration,
    ) -> Result<Vec<EventRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let action = format!("claim {lane} events");
        let sql = format!(
            "UPDATE events SET claimed_by = ?1, claimed_until = ?2, attempts = attempts + 1
             WHERE id IN (SELECT id FROM events
                          WHERE state = 'queued' AND lane = ?3
                            AND (claimed_until IS NULL OR claimed_until <= ?4)
                          ORDER BY {EVENT_ORDER} LIMIT ?5)
             RETURNING {EVENT_COLUMNS}"
        );
        let raws = self.write_tx(&action, |tx| {
            let now = Timestamp::now();
            let until = lease_end(now, claim_for);
            let mut claim = tx.prepare_cached(&sql)?;
            let rows = claim.query_map(
                params![claimer, ts(until), lane.as_str(), ts(now), sql_limit(limit)],
                |row| RawEvent::read(row),
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        let mut claimed = raws
            .into_iter()
            .map(|raw| raw.decode(&self.path))
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING follows no ORDER BY.
        claimed.sort_by(|a, b| {
            (a.occurred_at, a.received_at, &a.id).cmp(&(b.occurred_at, b.received_at, &b.id))
        });
        Ok(claimed)
    }

    async fn extend_claims(
        &self,
        ids: &[String],
        claimer: &str,
        claim_for: Duration,
    ) -> Result<usize, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let action = format!("extend the claims on {} event(s)", ids.len());
        self.write_tx(&action, |tx| {
            let until = ts(lease_end(Timestamp::now(), claim_for));
            let mut extend = tx.prepare_cached(
                "UPDATE events SET claimed_until = ?1
                 WHERE id = ?2 AND claimed_by = ?3 AND state = 'queued'",
            )?;
            let mut held = 0;
            for index in first_of_each(ids.iter().map(String::as_str)) {
                held += extend.execute(params![until, ids[index], claimer])?;
            }
            Ok(held)
        })
    }

    async fn settle_events(
        &self,
        claimer: &str,
        outcomes: &[EventOutcome],
    ) -> Result<Vec<String>, StoreError> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        let action = format!("settle {} event(s)", outcomes.len());
        let kept = first_of_each(outcomes.iter().map(|o| o.id.as_str()));
        self.durable_tx(&action, |tx| {
            {
                let mut exists = tx.prepare_cached("SELECT 1 FROM runs WHERE id = ?1")?;
                for run in kept.iter().filter_map(|&index| outcomes[index].run) {
                    if !exists.exists([run.0])? {
                        return Err(self.unknown_run(run.0));
                    }
                }
            }
            let settled_at = ts(Timestamp::now());
            let mut settle = tx.prepare_cached(
                "UPDATE events SET state = ?1, reason = ?2, run_id = ?3, settled_at = ?4,
                                   claimed_by = NULL, claimed_until = NULL
                 WHERE id = ?5 AND claimed_by = ?6 AND state = 'queued'",
            )?;
            let mut give_back = tx.prepare_cached(
                "UPDATE events SET claimed_by = NULL, claimed_until = NULL,
                                   attempts = MAX(attempts - ?3, 0)
                 WHERE id = ?1 AND claimed_by = ?2 AND state = 'queued'",
            )?;
            let mut settled = Vec::new();
            for &index in &kept {
                let o = &outcomes[index];
                if o.state == EventState::Queued {
                    give_back.execute(params![o.id, claimer, i64::from(o.reason.is_none())])?;
                    continue;
                }
                let changed = settle.execute(params![
                    o.state.as_str(),
                    o.reason,
                    o.run.map(|run| run.0),
                    settled_at,
                    o.id,
                    claimer,
                ])?;
                if changed == 1 {
                    settled.push(o.id.clone());
                }
            }
            Ok(settled)
        })
    }

    async fn release_claims(&self, claimer: &str) -> Result<(), StoreError> {
        self.write_tx(&format!("release the claims of {claimer}"), |tx| {
            tx.execute(
                "UPDATE events SET claimed_by = NULL, claimed_until = NULL,
                                   attempts = MAX(attempts - 1, 0)
                 WHERE state = 'queued' AND claimed_by = ?1",
                [claimer],
            )?;
            Ok(())
        })
    }

    async fn applied_events_since(&self, since: Timestamp) -> Result<Vec<EventRecord>, StoreError> {
        self.select_events(
            &row::applied_since_tail(),
            [ts(since)],
            &format!("read the events applied since {since}"),
        )
    }

    async fn event_stats(&self) -> Result<EventQueueStats, StoreError> {
        let rows = self.select(
            EVENT_STATS,
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            |rows, _| Ok(rows),
            "count the events",
        )?;
        row::event_stats(&self.path, rows)
    }

    async fn recent_events(
        &self,
        limit: usize,
        state: Option<EventState>,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let action = "read the recent events";
        match state {
            None => self.select_events(RECENT_TAIL, [sql_limit(limit)], action),
            Some(state) => self.select_events(
                RECENT_IN_STATE_TAIL,
                params![state.as_str(), sql_limit(limit)],
                action,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synchronous(store: &SqliteStore) -> i64 {
        store
            .conn
            .lock()
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap()
    }

    const NORMAL: i64 = 1;
    const FULL: i64 = 2;

    /// The queue's own connection always commits with FULL; a journal connection used as a
    /// queue commits its events with FULL and keeps NORMAL for the journal.
    #[tokio::test]
    async fn events_are_committed_with_synchronous_full() {
        let dir =
            std::env::temp_dir().join(format!("skillsync-sqlite-sync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal.db");
        let event = |id: &str| NewEvent {
            id: id.into(),
            lane: EventLane::Skills,
            employee_id: "emp".into(),
            occurred_at: Timestamp::UNIX_EPOCH,
            received_at: Timestamp::UNIX_EPOCH,
            body: "{}".into(),
        };

        let queue = SqliteStore::open_durable(&path).unwrap();
        assert_eq!(synchronous(&queue), FULL);
        assert_eq!(queue.enqueue_events(&[event("a")]).await.unwrap(), [true]);
        assert_eq!(synchronous(&queue), FULL);

        let journal = SqliteStore::open(&path).unwrap();
        assert_eq!(synchronous(&journal), NORMAL);
        assert_eq!(
            journal
                .enqueue_events(&[event("a"), event("b")])
                .await
                .unwrap(),
            [false, true]
        );
        assert_eq!(synchronous(&journal), NORMAL);
        drop((queue, journal));
        std::fs::remove_dir_all(&dir).ok();
    }
}
