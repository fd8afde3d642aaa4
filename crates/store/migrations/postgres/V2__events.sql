-- The queue of HRIS events `skillsync serve` receives, as the SQLite journal's version 5 keeps
-- it: the event as received (its body verbatim), what became of it, and who holds it claimed
-- until when. Claims and settle times are the server's clock in the journal's text form, so
-- that "claimed_until <= now" compares times. A settled event has left the queue for good, so
-- it holds no claim; an unsettled one has no settle time.
--
-- Ids, like codes, sort in the "C" collation so that ties are broken in the same order as on
-- SQLite.

CREATE TABLE events (
    id            text COLLATE "C" PRIMARY KEY,
    lane          text NOT NULL CHECK (lane IN ('skills', 'proficiencies')),
    employee_id   text NOT NULL,
    occurred_at   text COLLATE "C" NOT NULL,
    received_at   text COLLATE "C" NOT NULL,
    body          text NOT NULL,
    state         text NOT NULL
                  CHECK (state IN ('queued', 'applied', 'rejected', 'superseded')),
    reason        text,
    run_id        bigint REFERENCES runs (id),
    settled_at    text COLLATE "C",
    attempts      bigint NOT NULL DEFAULT 0,
    claimed_by    text,
    claimed_until text COLLATE "C",
    CHECK ((state = 'queued') = (settled_at IS NULL)),
    CHECK ((claimed_by IS NULL) = (claimed_until IS NULL)),
    CHECK (state = 'queued' OR claimed_by IS NULL)
);
-- Claiming: the queued events of a lane in the order they are applied.
CREATE INDEX events_to_claim ON events (state, lane, occurred_at, received_at, id);
-- The overlay: applied events after a time, in the same order.
CREATE INDEX events_by_occurrence ON events (state, occurred_at, received_at, id);
-- The status page: the newest received.
CREATE INDEX events_by_arrival ON events (received_at, id);
