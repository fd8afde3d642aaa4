-- The journal on PostgreSQL: the same tables and columns as the SQLite journal at its schema
-- version 4 (runs with their lease and the interrupted outcome, writes, mappings, retirements,
-- leases), so that one decoder reads both.
--
-- Timestamps are text in one fixed form (RFC 3339, UTC, nine fractional digits), as SQLite
-- keeps them: they read back exactly as written, and text order is time order. The "C"
-- collation makes that order the bytes' order, whatever the database's locale, as it is on
-- SQLite; the codes and locales that listings sort by use it too, for the same order on both.
-- Snapshots and counts are their serde JSON text, kept to the byte (jsonb would reorder keys
-- and drop duplicates), because rows written by older versions are read leniently from it.
--
-- Tables are created unqualified: they go to the first schema of the connection's
-- search_path (set with the URL's `options=-c search_path=…`), as refinery's history does.

CREATE TABLE runs (
    id          bigserial PRIMARY KEY,
    command     text NOT NULL,
    config_hash text NOT NULL,
    dialect     text NOT NULL,
    started_at  text COLLATE "C" NOT NULL,
    ended_at    text COLLATE "C",
    outcome     text CHECK (outcome IN ('succeeded', 'failed', 'refused', 'interrupted')),
    counts_json text,
    lease_key   text,
    fence       bigint,
    CHECK ((ended_at IS NULL) = (outcome IS NULL))
);

CREATE TABLE writes (
    id          bigserial PRIMARY KEY,
    run_id      bigint NOT NULL REFERENCES runs (id),
    target      text NOT NULL
                CHECK (target IN ('user_skills', 'user_proficiencies', 'definition', 'profile')),
    subject     text COLLATE "C" NOT NULL,
    before_json text NOT NULL,
    after_json  text NOT NULL,
    status      text NOT NULL CHECK (status IN ('applied', 'conflict', 'failed', 'unknown')),
    detail      text,
    at          text COLLATE "C" NOT NULL,
    settles_at  text COLLATE "C"
);
CREATE INDEX writes_by_subject ON writes (subject, target, at);
CREATE INDEX writes_by_run ON writes (run_id, status, settles_at);

CREATE TABLE mappings (
    code          text COLLATE "C" NOT NULL,
    locale        text COLLATE "C" NOT NULL,
    kind          text NOT NULL,
    definition_id text NOT NULL,
    seen_at       text COLLATE "C" NOT NULL,
    PRIMARY KEY (code, locale)
);

CREATE TABLE retirements (
    code                text COLLATE "C" NOT NULL,
    locale              text COLLATE "C" NOT NULL,
    kind                text NOT NULL,
    name                text NOT NULL,
    mode                text NOT NULL CHECK (mode IN ('soft', 'hard')),
    definition_ids_json text NOT NULL,
    run_id              bigint NOT NULL REFERENCES runs (id),
    retired_at          text COLLATE "C" NOT NULL,
    PRIMARY KEY (code, locale)
);

-- One row per key, never deleted: a released lease only expires, so its fencing number keeps
-- rising across holders.
CREATE TABLE leases (
    key         text PRIMARY KEY,
    fence       bigint NOT NULL,
    host        text NOT NULL,
    pid         bigint NOT NULL,
    command     text NOT NULL,
    acquired_at text COLLATE "C" NOT NULL,
    expires_at  text COLLATE "C" NOT NULL
);
