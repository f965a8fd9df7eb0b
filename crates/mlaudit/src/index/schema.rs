//! The index schema. Every table is derived from the ledger; `docs/index.md` explains each
//! column and SQLite index.

/// Creates every table and index that does not exist yet.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    action TEXT NOT NULL,
    category TEXT NOT NULL,
    actor TEXT NOT NULL,
    resource_type TEXT,
    resource_id TEXT,
    resource_version TEXT,
    outcome TEXT NOT NULL,
    project TEXT,
    environment TEXT
);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
CREATE INDEX IF NOT EXISTS events_actor_time ON events (actor, time);
CREATE INDEX IF NOT EXISTS events_resource ON events (resource_type, resource_id);
CREATE INDEX IF NOT EXISTS events_action ON events (action);
CREATE INDEX IF NOT EXISTS events_outcome_time ON events (outcome, time);
CREATE INDEX IF NOT EXISTS events_project ON events (project);
CREATE TABLE IF NOT EXISTS tags (
    tag TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (tag, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS related (
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version TEXT,
    relation TEXT
);
CREATE INDEX IF NOT EXISTS related_target ON related (type, id, seq);
CREATE INDEX IF NOT EXISTS related_seq ON related (seq);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5 (reason, parameters, name, content='');
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

/// Drops everything [`SCHEMA`] creates.
pub(super) const DROP: &str = "
DROP TABLE IF EXISTS events;
DROP TABLE IF EXISTS tags;
DROP TABLE IF EXISTS related;
DROP TABLE IF EXISTS fts;
DROP TABLE IF EXISTS rollup;
DROP TABLE IF EXISTS rollup_actor;
DROP TABLE IF EXISTS meta;
";
