//! The index schema. Every table is derived from the ledger; `docs/index.md` explains each
//! column and SQLite index.

/// Version of [`SCHEMA`], kept in `PRAGMA user_version`. An index file with another version
/// (an older layout) is dropped and rebuilt from the ledger when it is opened.
pub(super) const SCHEMA_VERSION: i64 = 3;

/// Creates every table and index that does not exist yet.
///
/// String columns of `events`, `tags` and `related` hold ids of `strings` rows: each distinct
/// string is stored once, and the same string has the same id in every column (so
/// `related.id` and `events.resource_id` can be joined as integers).
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS strings (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    action INTEGER NOT NULL,
    category INTEGER NOT NULL,
    actor INTEGER NOT NULL,
    outcome INTEGER,
    resource_type INTEGER,
    resource_id INTEGER,
    resource_version INTEGER,
    project INTEGER,
    environment INTEGER,
    id_hash INTEGER
);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
CREATE INDEX IF NOT EXISTS events_actor_time ON events (actor, time);
CREATE INDEX IF NOT EXISTS events_resource ON events (resource_type, resource_id);
CREATE INDEX IF NOT EXISTS events_action ON events (action);
CREATE INDEX IF NOT EXISTS events_outcome_time ON events (outcome, time) WHERE outcome IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_id_hash ON events (id_hash) WHERE id_hash IS NOT NULL;
CREATE TABLE IF NOT EXISTS tags (
    tag INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (tag, seq)
) WITHOUT ROWID;
-- The tags of one entry (retention planning and pruning look them up per seq); without it
-- each lookup scanned the whole table and a plan over N entries took O(N^2).
CREATE INDEX IF NOT EXISTS tags_seq ON tags (seq);
CREATE TABLE IF NOT EXISTS related (
    seq INTEGER NOT NULL,
    type INTEGER NOT NULL,
    id INTEGER NOT NULL,
    version INTEGER,
    relation INTEGER
);
CREATE INDEX IF NOT EXISTS related_target ON related (type, id, seq);
CREATE INDEX IF NOT EXISTS related_seq ON related (seq);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5 (reason, parameters, name, content='', columnsize=0);
CREATE TABLE IF NOT EXISTS rollup (
    width INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    action TEXT NOT NULL,
    category TEXT NOT NULL,
    outcome TEXT NOT NULL,
    project TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (width, bucket, action, outcome, project, resource_type)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_actor (
    bucket INTEGER NOT NULL,
    actor TEXT NOT NULL,
    outcome TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (bucket, actor, outcome)
) WITHOUT ROWID;
";

/// Drops everything [`SCHEMA`] (or an older version of it) creates.
pub(super) const DROP: &str = "
DROP TABLE IF EXISTS events;
DROP TABLE IF EXISTS tags;
DROP TABLE IF EXISTS related;
DROP TABLE IF EXISTS fts;
DROP TABLE IF EXISTS rollup;
DROP TABLE IF EXISTS rollup_actor;
DROP TABLE IF EXISTS strings;
DROP TABLE IF EXISTS meta;
";
