-- The newest write per (subject, target), for `drift` and `why`, in a table of its own filled
-- once per run instead of an index on every write, as the SQLite journal's version 7 keeps it:
-- user ids are random, so the index dirtied one page per journaled write at every commit, the
-- largest cost of journaling a 100,000-agent apply (docs/BENCHMARKS.md). A run is folded when
-- it finishes; until then (in progress, killed) readers scan its writes. Finished runs of an
-- existing journal are folded here; unfinished ones are left to be scanned, since an older
-- skillsync may still be writing them. From this version on, a user's lists before a write may
-- be stored against the lists written ({"type":"userDelta",…}, see row.rs), which an older
-- skillsync would misread: the version number keeps it out.
DROP INDEX writes_by_subject;

CREATE TABLE last_writes (
    subject  text COLLATE "C" NOT NULL,
    target   text NOT NULL,
    at       text COLLATE "C" NOT NULL,
    write_id bigint NOT NULL,
    PRIMARY KEY (subject, target)
);

ALTER TABLE runs ADD COLUMN folded boolean NOT NULL DEFAULT false;

INSERT INTO last_writes (subject, target, at, write_id)
    SELECT subject, target, at, id FROM (
        SELECT subject, target, at, id,
               ROW_NUMBER() OVER (PARTITION BY subject, target ORDER BY at DESC, id DESC) AS n
        FROM writes WHERE run_id IN (SELECT id FROM runs WHERE ended_at IS NOT NULL)
    ) AS newest
    WHERE n = 1;

UPDATE runs SET folded = true WHERE ended_at IS NOT NULL;
