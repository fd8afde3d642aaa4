//! The event queue on PostgreSQL, shared by every `serve` process pointed at the database.
//!
//! - **Claiming** is one statement: the oldest unheld queued events are picked and locked with
//!   `FOR UPDATE SKIP LOCKED`, then marked as claimed. A process never waits for the rows
//!   another is claiming, it takes the next ones; a row another process claimed and committed
//!   since the statement began is re-checked by PostgreSQL once locked, and dropped because it
//!   is held now. So two processes never get the same event.
//! - **Settling** updates only rows still queued and claimed by the caller, in one statement:
//!   a row another process is claiming is waited for and then re-checked, so an expired claim
//!   taken over by someone else is never settled by its old holder.
//! - **Time** is the server's (`clock_timestamp()`), as for leases: claims expire at the same
//!   moment for every host.
//! - **Durability**: storing and settling commit with `synchronous_commit = on` whatever the
//!   server or role defaults to: an acknowledged event, or an applied one, is never lost to a
//!   server crash (which would mean a lost event, or one applied twice).

use std::collections::HashSet;
use std::time::Duration;

use jiff::Timestamp;
use tokio_postgres::types::ToSql;

use super::{PostgresStore, stored, ttl_micros};
use crate::events::first_of_each;
use crate::row::{
    self, EVENT_BY_ID, EVENT_COLUMNS, EVENT_ORDER, EVENT_STATS, RECENT_IN_STATE_TAIL, RECENT_TAIL,
    RawEvent, event_select, ts,
};
use crate::{
    EventLane, EventOutcome, EventQueue, EventQueueStats, EventRecord, EventState, NewEvent,
    StoreError,
};

/// Makes the transaction's commit wait for the disk, whatever the session's setting.
const SYNCHRONOUS: &str = "SET LOCAL synchronous_commit = on";

impl PostgresStore {
    async fn select_events(
        &self,
        tail: &str,
        params: &[&(dyn ToSql + Sync)],
        action: &str,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let raws = self
            .select(&event_select(tail), params, RawEvent::read, action)
            .await?;
        raws.into_iter().map(|raw| raw.decode(&self.url)).collect()
    }
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[async_trait::async_trait]
impl EventQueue for PostgresStore {
    async fn enqueue_events(&self, events: &[NewEvent]) -> Result<Vec<bool>, StoreError> {
        let mut stored = vec![false; events.len()];
        if events.is_empty() {
            return Ok(stored);
        }
        let action = format!("store {} event(s)", events.len());
        let kept = first_of_each(events.iter().map(|e| e.id.as_str()));
        let mut unique: Vec<&NewEvent> = kept.iter().map(|&index| &events[index]).collect();
        // In one order for every caller: two batches sharing ids, stored at once, wait for
        // each other's rows in the same order instead of deadlocking.
        unique.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let ids: Vec<&str> = unique.iter().map(|e| e.id.as_str()).collect();
        let lanes: Vec<&str> = unique.iter().map(|e| e.lane.as_str()).collect();
        let employees: Vec<&str> = unique.iter().map(|e| e.employee_id.as_str()).collect();
        let occurred: Vec<String> = unique.iter().map(|e| ts(e.occurred_at)).collect();
        let received: Vec<String> = unique.iter().map(|e| ts(e.received_at)).collect();
        let bodies: Vec<&str> = unique.iter().map(|e| e.body.as_str()).collect();
        let mut client = self.client(&action).await?;
        let result = async {
            let tx = client.transaction().await?;
            tx.batch_execute(SYNCHRONOUS).await?;
            // An id already there (stored earlier, or being stored by another process, which
            // this waits for) is skipped; RETURNING names the rows this call inserted.
            let rows = tx
                .query(
                    "INSERT INTO events
                         (id, lane, employee_id, occurred_at, received_at, body, state)
                     SELECT id, lane, employee_id, occurred_at, received_at, body, 'queued'
                     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                 $6::text[])
                          WITH ORDINALITY
                          AS e (id, lane, employee_id, occurred_at, received_at, body, n)
                     ORDER BY n
                     ON CONFLICT (id) DO NOTHING
                     RETURNING id",
                    &[&ids, &lanes, &employees, &occurred, &received, &bodies],
                )
                .await?;
            tx.commit().await?;
            Ok(rows
                .iter()
                .map(|row| row.try_get::<_, String>(0))
                .collect::<Result<HashSet<_>, _>>()?)
        }
        .await;
        let inserted = self.settle(&action, result)?;
        for index in kept {
            stored[index] = inserted.contains(&events[index].id);
        }
        Ok(stored)
    }

    async fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        let action = format!("read event {id}");
        let mut found = self.select_events(EVENT_BY_ID, &[&id], &action).await?;
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
            "WITH clock AS (SELECT clock_timestamp() AS now)
             UPDATE events SET claimed_by = $1, claimed_until = {until}, attempts = attempts + 1
             FROM clock
             WHERE id IN (SELECT id FROM events
                          WHERE state = 'queued' AND lane = $3
                            AND (claimed_until IS NULL
                                 OR claimed_until <= (SELECT {now} FROM clock))
                          ORDER BY {EVENT_ORDER} LIMIT $4
                          FOR UPDATE SKIP LOCKED)
             RETURNING {EVENT_COLUMNS}",
            until = stored("clock.now + $2::float8 * interval '1 microsecond'"),
            now = stored("now"),
        );
        let params: [&(dyn ToSql + Sync); 4] = [
            &claimer,
            &ttl_micros(claim_for),
            &lane.as_str(),
            &sql_limit(limit),
        ];
        let raws = self.select(&sql, &params, RawEvent::read, &action).await?;
        let mut claimed = raws
            .into_iter()
            .map(|raw| raw.decode(&self.url))
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
        let sql = format!(
            "WITH clock AS (SELECT clock_timestamp() AS now)
             UPDATE events SET claimed_until = {until} FROM clock
             WHERE id = ANY($1) AND claimed_by = $2 AND state = 'queued'",
            until = stored("clock.now + $3::float8 * interval '1 microsecond'"),
        );
        let client = self.client(&action).await?;
        let held = client
            .execute(&sql, &[&ids, &claimer, &ttl_micros(claim_for)])
            .await
            .map_err(self.pg_err(&action))?;
        Ok(usize::try_from(held).unwrap_or(usize::MAX))
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
        let kept: Vec<&EventOutcome> = first_of_each(outcomes.iter().map(|o| o.id.as_str()))
            .into_iter()
            .map(|index| &outcomes[index])
            .collect();
        let (given_back, mut settling): (Vec<&EventOutcome>, Vec<&EventOutcome>) =
            kept.iter().partition(|o| o.state == EventState::Queued);
        // Rows locked in id order, as storing does.
        settling.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let runs: Vec<i64> = kept.iter().filter_map(|o| o.run.map(|run| run.0)).collect();
        let ids: Vec<&str> = settling.iter().map(|o| o.id.as_str()).collect();
        let states: Vec<&str> = settling.iter().map(|o| o.state.as_str()).collect();
        let reasons: Vec<Option<&str>> = settling.iter().map(|o| o.reason.as_deref()).collect();
        let run_ids: Vec<Option<i64>> = settling.iter().map(|o| o.run.map(|r| r.0)).collect();
        let back: Vec<&str> = given_back.iter().map(|o| o.id.as_str()).collect();
        let uncounted: Vec<i64> = given_back
            .iter()
            .map(|o| i64::from(o.reason.is_none()))
            .collect();
        let settle = format!(
            "WITH clock AS (SELECT clock_timestamp() AS now)
             UPDATE events AS e SET state = o.state, reason = o.reason, run_id = o.run_id,
                                    settled_at = {now}, claimed_by = NULL,
                                    claimed_until = NULL
             FROM clock, UNNEST($2::text[], $3::text[], $4::text[], $5::int8[])
                         AS o (id, state, reason, run_id)
             WHERE e.id = o.id AND e.claimed_by = $1 AND e.state = 'queued'
             RETURNING e.id",
            now = stored("clock.now"),
        );
        let mut client = self.client(&action).await?;
        let result = async {
            let tx = client.transaction().await?;
            tx.batch_execute(SYNCHRONOUS).await?;
            self.check_runs(&tx, runs).await?;
            let rows = tx
                .query(&settle, &[&claimer, &ids, &states, &reasons, &run_ids])
                .await?;
            if !back.is_empty() {
                tx.execute(
                    "UPDATE events AS e SET claimed_by = NULL, claimed_until = NULL,
                                            attempts = GREATEST(e.attempts - o.uncounted, 0)
                     FROM UNNEST($2::text[], $3::int8[]) AS o (id, uncounted)
                     WHERE e.id = o.id AND e.claimed_by = $1 AND e.state = 'queued'",
                    &[&claimer, &back, &uncounted],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(rows
                .iter()
                .map(|row| row.try_get::<_, String>(0))
                .collect::<Result<HashSet<_>, _>>()?)
        }
        .await;
        let settled = self.settle(&action, result)?;
        Ok(kept
            .into_iter()
            .filter(|o| settled.contains(&o.id))
            .map(|o| o.id.clone())
            .collect())
    }

    async fn release_claims(&self, claimer: &str) -> Result<(), StoreError> {
        let action = format!("release the claims of {claimer}");
        let client = self.client(&action).await?;
        client
            .execute(
                "UPDATE events SET claimed_by = NULL, claimed_until = NULL,
                                   attempts = GREATEST(attempts - 1, 0)
                 WHERE state = 'queued' AND claimed_by = $1",
                &[&claimer],
            )
            .await
            .map_err(self.pg_err(&action))?;
        Ok(())
    }

    async fn applied_events_since(&self, since: Timestamp) -> Result<Vec<EventRecord>, StoreError> {
        let action = format!("read the events applied since {since}");
        self.select_events(&row::applied_since_tail(), &[&ts(since)], &action)
            .await
    }

    async fn event_stats(&self) -> Result<EventQueueStats, StoreError> {
        let rows = self
            .select(
                EVENT_STATS,
                &[],
                |row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)),
                "count the events",
            )
            .await?;
        row::event_stats(&self.url, rows)
    }

    async fn recent_events(
        &self,
        limit: usize,
        state: Option<EventState>,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let action = "read the recent events";
        let limit = sql_limit(limit);
        match state {
            None => self.select_events(RECENT_TAIL, &[&limit], action).await,
            Some(state) => {
                self.select_events(RECENT_IN_STATE_TAIL, &[&state.as_str(), &limit], action)
                    .await
            }
        }
    }
}
