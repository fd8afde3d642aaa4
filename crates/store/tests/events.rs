//! The HRIS event queue through its public API, on real stores: every case runs on SQLite (a
//! file in a temp dir) and, when `SKILLSYNC_TEST_DATABASE_URL` is set, on PostgreSQL (a schema
//! of its own; see `support`). Claim expiry is shown with claims of zero length, which run out
//! at once, never by waiting.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use skillsync_store::{
    EventLane, EventOutcome, EventQueue, EventQueueStats, EventRecord, EventState, NewEvent,
    NewRun, RunId, StoreError,
};
use support::{Backend, backends};

const MINUTE: Duration = Duration::from_secs(60);

fn t(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_750_000_000 + seconds).unwrap()
}

/// An event whose body is JSON as an HRIS might send it: spacing, key order and escapes that a
/// re-serialization would change.
fn event(id: &str, lane: EventLane, occurred: i64, received: i64) -> NewEvent {
    NewEvent {
        id: id.into(),
        lane,
        employee_id: format!("emp-{id}"),
        occurred_at: t(occurred),
        received_at: t(received),
        body: format!(
            "{{ \"id\":\"{id}\",  \"zeta\": 1, \"alpha\" : [\"Fran\\u00e7ais\", \"é\"], \"n\": 1.50 }}"
        ),
    }
}

fn skill(id: &str, occurred: i64) -> NewEvent {
    event(id, EventLane::Skills, occurred, occurred + 1)
}

fn ids(records: &[EventRecord]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

fn outcome(id: &str, state: EventState, reason: Option<&str>, run: Option<RunId>) -> EventOutcome {
    EventOutcome {
        id: id.into(),
        state,
        reason: reason.map(str::to_owned),
        run,
    }
}

/// A journal run on the backend, for settled events to name.
async fn run(backend: &Backend) -> RunId {
    backend
        .open()
        .await
        .start_run(&NewRun {
            command: "serve".into(),
            config_hash: "cfg".into(),
            started_at: t(0),
            dialect: "routing".into(),
        })
        .await
        .unwrap()
}

async fn state(queue: &dyn EventQueue, id: &str) -> EventState {
    queue.event(id).await.unwrap().expect(id).state
}

#[tokio::test]
async fn enqueue_is_idempotent_and_keeps_the_body_verbatim() {
    for backend in backends("events-idempotent").await {
        eprintln!("on {}", backend.name());
        let queue = backend.open_events().await;
        assert!(queue.enqueue_events(&[]).await.unwrap().is_empty());

        let first = skill("e1", 10);
        let mut again = skill("e1", 99);
        again.body = "{\"other\": true}".into();
        again.lane = EventLane::Proficiencies;
        let flags = queue
            .enqueue_events(&[first.clone(), again.clone(), skill("e2", 5)])
            .await
            .unwrap();
        assert_eq!(flags, [true, false, true]);
        assert_eq!(queue.enqueue_events(&[again]).await.unwrap(), [false]);
        assert_eq!(
            queue
                .enqueue_events(std::slice::from_ref(&first))
                .await
                .unwrap(),
            [false]
        );

        let stored = queue.event("e1").await.unwrap().expect("stored");
        assert_eq!(
            stored,
            EventRecord {
                id: "e1".into(),
                lane: EventLane::Skills,
                employee_id: "emp-e1".into(),
                occurred_at: t(10),
                received_at: t(11),
                body: first.body.clone(),
                state: EventState::Queued,
                reason: None,
                run: None,
                settled_at: None,
                attempts: 0,
            },
            "the first of the duplicates, its body to the byte"
        );
        assert_eq!(queue.event("nope").await.unwrap(), None);
        assert_eq!(queue.event_stats().await.unwrap().queued, 2);

        // Settled, then posted again (a retry after a lost response): it stays settled.
        let run = run(&backend).await;
        let claimed = queue
            .claim_events(EventLane::Skills, 10, "w1", MINUTE)
            .await
            .unwrap();
        assert_eq!(ids(&claimed), ["e2", "e1"]);
        let settled = queue
            .settle_events("w1", &[outcome("e1", EventState::Applied, None, Some(run))])
            .await
            .unwrap();
        assert_eq!(settled, ["e1"]);
        assert_eq!(queue.enqueue_events(&[first]).await.unwrap(), [false]);
        let kept = queue.event("e1").await.unwrap().unwrap();
        assert_eq!(
            (kept.state, kept.run, kept.attempts),
            (EventState::Applied, Some(run), 1)
        );
    }
}

#[tokio::test]
async fn stored_events_survive_reopening_and_can_be_claimed() {
    for backend in backends("events-reopen").await {
        eprintln!("on {}", backend.name());
        let queue = backend.open_events().await;
        assert_eq!(
            queue.enqueue_events(&[skill("e1", 1)]).await.unwrap(),
            [true]
        );
        drop(queue);

        let queue = backend.open_events().await;
        assert_eq!(state(&*queue, "e1").await, EventState::Queued);
        let claimed = queue
            .claim_events(EventLane::Skills, 10, "w1", MINUTE)
            .await
            .unwrap();
        assert_eq!(ids(&claimed), ["e1"]);
        assert_eq!(claimed[0].body, skill("e1", 1).body);
        // The journal and the queue share the store.
        assert!(backend.open().await.runs(10).await.unwrap().is_empty());
    }
    let memory = skillsync_store::open_events("sqlite::memory:")
        .await
        .unwrap();
    assert_eq!(
        memory.enqueue_events(&[skill("e1", 1)]).await.unwrap(),
        [true]
    );
}

#[tokio::test]
async fn claims_follow_occurrence_order_and_lanes_and_expire() {
    for backend in backends("events-claims").await {
        eprintln!("on {}", backend.name());
        let queue = backend.open_events().await;
        queue
            .enqueue_events(&[
                skill("s-late", 30),
                // Same occurrence: the earlier arrival first, then the lower id.
                event("s-b", EventLane::Skills, 20, 22),
                event("s-a", EventLane::Skills, 20, 22),
                event("s-first-in", EventLane::Skills, 20, 21),
                skill("s-early", 10),
                event("p-2", EventLane::Proficiencies, 15, 40),
                event("p-1", EventLane::Proficiencies, 5, 41),
            ])
            .await
            .unwrap();

        assert!(
            queue
                .claim_events(EventLane::Skills, 0, "w1", MINUTE)
                .await
                .unwrap()
                .is_empty()
        );
        let first = queue
            .claim_events(EventLane::Skills, 3, "w1", MINUTE)
            .await
            .unwrap();
        assert_eq!(ids(&first), ["s-early", "s-first-in", "s-a"]);
        assert!(
            first
                .iter()
                .all(|e| e.attempts == 1 && e.state == EventState::Queued)
        );
        let rest = queue
            .claim_events(EventLane::Skills, 10, "w2", MINUTE)
            .await
            .unwrap();
        assert_eq!(ids(&rest), ["s-b", "s-late"], "held events are not claimed");
        assert!(
            queue
                .claim_events(EventLane::Skills, 10, "w3", MINUTE)
                .await
                .unwrap()
                .is_empty()
        );
        let proficiencies = queue
            .claim_events(EventLane::Proficiencies, 10, "w3", MINUTE)
            .await
            .unwrap();
        assert_eq!(ids(&proficiencies), ["p-1", "p-2"]);

        // A claim of zero runs out at once: the next claimer takes the event, a second attempt.
        queue.enqueue_events(&[skill("x", 1)]).await.unwrap();
        let lost = queue
            .claim_events(EventLane::Skills, 10, "w1", Duration::ZERO)
            .await
            .unwrap();
        assert_eq!((ids(&lost), lost[0].attempts), (vec!["x"], 1));
        let taken = queue
            .claim_events(EventLane::Skills, 10, "w2", MINUTE)
            .await
            .unwrap();
        assert_eq!((ids(&taken), taken[0].attempts), (vec!["x"], 2));
        assert!(
            queue
                .claim_events(EventLane::Skills, 10, "w3", Duration::ZERO)
                .await
                .unwrap()
                .is_empty(),
            "w2 holds it for a minute"
        );
        assert_eq!(queue.event("x").await.unwrap().unwrap().attempts, 2);
    }
}

/// Two processes (two pools, or two connections to the file) claim from one queue at once:
/// between them every event is claimed, and none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_claimers_racing_claim_every_event_exactly_once() {
    const EVENTS: usize = 500;
    for backend in backends("events-race").await {
        eprintln!("on {}", backend.name());
        let setup = backend.open_events().await;
        let all: Vec<NewEvent> = (0..EVENTS)
            .map(|i| skill(&format!("e{i:03}"), (i % 37) as i64))
            .collect();
        assert!(
            setup
                .enqueue_events(&all)
                .await
                .unwrap()
                .into_iter()
                .all(|new| new)
        );
        let start = Arc::new(tokio::sync::Barrier::new(2));
        let mut claimers = tokio::task::JoinSet::new();
        for name in ["a", "b"] {
            let queue: Arc<dyn EventQueue> = backend.open_events().await.into();
            let start = start.clone();
            claimers.spawn(async move {
                start.wait().await;
                let mut mine = Vec::new();
                loop {
                    let batch = queue
                        .claim_events(EventLane::Skills, 7, name, MINUTE)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|e| e.id));
                }
            });
        }
        let mut claimed = Vec::new();
        while let Some(mine) = claimers.join_next().await {
            let mine = mine.unwrap();
            eprintln!("one claimer took {}", mine.len());
            claimed.extend(mine);
        }
        let distinct: HashSet<&String> = claimed.iter().collect();
        assert_eq!(claimed.len(), EVENTS, "no event claimed twice, none left");
        assert_eq!(distinct.len(), EVENTS);
        let recent = setup.recent_events(EVENTS, None).await.unwrap();
        assert!(recent.iter().all(|e| e.attempts == 1));
    }
}

#[tokio::test]
async fn only_the_current_claimer_settles() {
    for backend in backends("events-settle").await {
        eprintln!("on {}", backend.name());
        let queue = backend.open_events().await;
        let run = run(&backend).await;
        queue
            .enqueue_events(&[skill("e1", 1), skill("e2", 2), skill("e3", 3)])
            .await
            .unwrap();
        queue
            .claim_events(EventLane::Skills, 10, "a", MINUTE)
            .await
            .unwrap();

        let applied = outcome("e1", EventState::Applied, None, Some(run));
        assert!(
            queue
                .settle_events("b", std::slice::from_ref(&applied))
                .await
                .unwrap()
                .is_empty(),
            "b holds none of them"
        );
        assert_eq!(state(&*queue, "e1").await, EventState::Queued);

        // A run that was never started: an error, and nothing settled.
        let err = queue
            .settle_events(
                "a",
                &[
                    applied.clone(),
                    outcome("e2", EventState::Applied, None, Some(RunId(run.0 + 50))),
                ],
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownRun { .. }), "{err}");
        assert_eq!(state(&*queue, "e1").await, EventState::Queued);

        let settled = queue
            .settle_events(
                "a",
                &[
                    outcome("e2", EventState::Rejected, Some("unknown employee"), None),
                    applied.clone(),
                    // Given twice: the first counts.
                    outcome("e2", EventState::Superseded, Some("later"), None),
                    // Given back: claimable again, not settled.
                    // Given back after failing on its own account: the claim counts.
                    outcome(
                        "e3",
                        EventState::Queued,
                        Some("the tenant answered 503"),
                        None,
                    ),
                ],
            )
            .await
            .unwrap();
        assert_eq!(settled, ["e2", "e1"]);
        let e1 = queue.event("e1").await.unwrap().unwrap();
        assert_eq!(
            (e1.state, e1.run, e1.reason.as_deref()),
            (EventState::Applied, Some(run), None)
        );
        assert!(e1.settled_at.is_some());
        let e2 = queue.event("e2").await.unwrap().unwrap();
        assert_eq!(
            (e2.state, e2.reason.as_deref(), e2.run),
            (EventState::Rejected, Some("unknown employee"), None)
        );
        let e3 = queue.event("e3").await.unwrap().unwrap();
        assert_eq!((e3.state, e3.settled_at), (EventState::Queued, None));
        assert!(
            queue
                .settle_events("a", &[applied])
                .await
                .unwrap()
                .is_empty(),
            "settled once"
        );
        let again = queue
            .claim_events(EventLane::Skills, 10, "c", MINUTE)
            .await
            .unwrap();
        assert_eq!((ids(&again), again[0].attempts), (vec!["e3"], 2));
        // Given back for no fault of its own (the lease held elsewhere, a shutdown): it does not.
        queue
            .settle_events("c", &[outcome("e3", EventState::Queued, None, None)])
            .await
            .unwrap();
        let again = queue
            .claim_events(EventLane::Skills, 10, "d", MINUTE)
            .await
            .unwrap();
        assert_eq!((ids(&again), again[0].attempts), (vec!["e3"], 2));

        // a's claim runs out and b takes the event over: a can no longer settle it, b can.
        queue.enqueue_events(&[skill("e4", 4)]).await.unwrap();
        queue
            .claim_events(EventLane::Skills, 10, "a", Duration::ZERO)
            .await
            .unwrap();
        let taken = queue
            .claim_events(EventLane::Skills, 10, "b", MINUTE)
            .await
            .unwrap();
        assert_eq!(ids(&taken), ["e4"]);
        let stale = outcome("e4", EventState::Applied, None, Some(run));
        assert!(queue.settle_events("a", &[stale]).await.unwrap().is_empty());
        assert_eq!(
            queue
                .extend_claims(&["e4".into()], "a", MINUTE)
                .await
                .unwrap(),
            0
        );
        queue.release_claims("a").await.unwrap();
        let superseded = outcome("e4", EventState::Superseded, Some("by file"), None);
        assert_eq!(
            queue.settle_events("b", &[superseded]).await.unwrap(),
            ["e4"]
        );
        let e4 = queue.event("e4").await.unwrap().unwrap();
        assert_eq!(
            (e4.state, e4.reason.as_deref(), e4.attempts),
            (EventState::Superseded, Some("by file"), 2)
        );
    }
}

#[tokio::test]
async fn extended_and_released_claims() {
    for backend in backends("events-extend").await {
        eprintln!("on {}", backend.name());
        let queue = backend.open_events().await;
        queue
            .enqueue_events(&[skill("e1", 1), skill("e2", 2), skill("e3", 3)])
            .await
            .unwrap();
        // Claimed for no time at all, then extended: no longer claimable by others.
        queue
            .claim_events(EventLane::Skills, 2, "a", Duration::ZERO)
            .await
            .unwrap();
        let held = queue
            .extend_claims(
                &["e1".into(), "e1".into(), "e3".into(), "nope".into()],
                "a",
                MINUTE,
            )
            .await
            .unwrap();
        assert_eq!(held, 1, "e1 only: e3 is not a's, nope does not exist");
        assert_eq!(queue.extend_claims(&[], "a", MINUTE).await.unwrap(), 0);
        let others = queue
            .claim_events(EventLane::Skills, 10, "b", MINUTE)
            .await
            .unwrap();
        assert_eq!(
            ids(&others),
            ["e2", "e3"],
            "e2's claim ran out; e1's did not"
        );

        // Releasing gives up a's claims only.
        queue.release_claims("a").await.unwrap();
        assert!(
            queue
                .claim_events(EventLane::Skills, 10, "a", MINUTE)
                .await
                .map(|claimed| ids(&claimed) == ["e1"])
                .unwrap()
        );
        queue.release_claims("a").await.unwrap();
        queue.release_claims("b").await.unwrap();
        let all = queue
            .claim_events(EventLane::Skills, 10, "c", MINUTE)
            .await
            .unwrap();
        assert_eq!(ids(&all), ["e1", "e2", "e3"]);
        // A claim that ran out counts (e2's first); one released (a shutdown) does not.
        let attempts: Vec<u32> = all.iter().map(|e| e.attempts).collect();
        assert_eq!(attempts, [1, 2, 1]);
    }
}

#[tokio::test]
async fn overlay_stats_and_recent_events() {
    for backend in backends("events-reads").await {
        eprintln!("on {}", backend.name());
        let queue = backend.open_events().await;
        assert_eq!(
            queue.event_stats().await.unwrap(),
            EventQueueStats::default()
        );
        let run = run(&backend).await;
        queue
            .enqueue_events(&[
                event("a1", EventLane::Skills, 10, 100),
                event("a2", EventLane::Proficiencies, 20, 101),
                event("a3", EventLane::Skills, 30, 102),
                event("a4", EventLane::Skills, 20, 99),
                event("r1", EventLane::Skills, 25, 103),
                event("s1", EventLane::Skills, 26, 104),
                event("q1", EventLane::Skills, 40, 106),
                event("q2", EventLane::Proficiencies, 50, 105),
                event("q3", EventLane::Skills, 45, 106),
            ])
            .await
            .unwrap();
        let skills = queue
            .claim_events(EventLane::Skills, 6, "w", MINUTE)
            .await
            .unwrap();
        assert_eq!(ids(&skills), ["a1", "a4", "r1", "s1", "a3", "q1"]);
        queue
            .claim_events(EventLane::Proficiencies, 1, "w", MINUTE)
            .await
            .unwrap();
        let applied = |id: &str| outcome(id, EventState::Applied, None, Some(run));
        queue
            .settle_events(
                "w",
                &[
                    applied("a3"),
                    applied("a1"),
                    applied("a2"),
                    applied("a4"),
                    outcome("r1", EventState::Rejected, Some("no such employee"), None),
                    outcome("s1", EventState::Superseded, Some("a3"), None),
                ],
            )
            .await
            .unwrap();

        let overlay = queue.applied_events_since(t(10)).await.unwrap();
        assert_eq!(
            ids(&overlay),
            ["a4", "a2", "a3"],
            "strictly after, by occurrence then arrival"
        );
        assert!(overlay.iter().all(|e| e.run == Some(run)));
        assert_eq!(
            ids(&queue.applied_events_since(t(9)).await.unwrap()),
            ["a1", "a4", "a2", "a3"]
        );
        assert!(queue.applied_events_since(t(30)).await.unwrap().is_empty());

        assert_eq!(
            queue.event_stats().await.unwrap(),
            EventQueueStats {
                queued: 3,
                oldest_queued: Some(t(105)),
                applied: 4,
                rejected: 1,
                superseded: 1,
            }
        );

        let recent = queue.recent_events(4, None).await.unwrap();
        assert_eq!(
            ids(&recent),
            ["q3", "q1", "q2", "s1"],
            "newest received first, then id descending"
        );
        let queued = queue
            .recent_events(10, Some(EventState::Queued))
            .await
            .unwrap();
        assert_eq!(ids(&queued), ["q3", "q1", "q2"]);
        let applied = queue
            .recent_events(2, Some(EventState::Applied))
            .await
            .unwrap();
        assert_eq!(ids(&applied), ["a3", "a2"]);
        assert!(queue.recent_events(0, None).await.unwrap().is_empty());
    }
}
