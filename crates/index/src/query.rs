//! `Index::query`: filtered, keyset-paginated reads of the index, with the events read back
//! from the ledger.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension};
use serde_json::value::RawValue;
use serde_json::Value;
use tlog::Hash;

use super::{Index, OUTCOME_SUCCESS};
use event::{parse_entry_raw, Category};

/// Results per page when the filter does not say.
pub const LIMIT_DEFAULT: usize = 100;
/// Most results per page; larger limits are capped to it. Every result is read back from
/// the ledger, so this bounds the work (and the response size) of one query.
pub const LIMIT_MAX: usize = 1000;

/// Result order, by `seq` (the order the log recorded events in).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first.
    #[default]
    Desc,
}

/// What to look for. Every condition set must hold (AND); unset ones match everything.
/// String conditions are exact matches, except `action`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Event `time` at or after this (milliseconds since the Unix epoch).
    pub from: Option<i64>,
    /// Event `time` strictly before this (milliseconds since the Unix epoch).
    pub to: Option<i64>,
    /// `recorded_at` at or after this (milliseconds since the Unix epoch).
    pub recorded_from: Option<i64>,
    /// `recorded_at` strictly before this (milliseconds since the Unix epoch).
    pub recorded_to: Option<i64>,
    /// An action, or a glob over actions where `*` matches any run of characters
    /// (`dataset.*`). Only `[a-z0-9_.*]` are allowed.
    pub action: Option<String>,
    /// A category name (`data_access`, …).
    pub category: Option<String>,
    /// `actor.id`.
    pub actor: Option<String>,
    /// The event's own `id` (looked up by [`crate::extract::id_hash`], then checked).
    pub event_id: Option<String>,
    /// A second form `actor` may be stored under, matched as well: the cleartext id of an
    /// actor whose type exempts it from pseudonymization (a service), when `actor` is the
    /// pseudonym of the same id.
    pub actor_alt: Option<String>,
    /// `resource.type`.
    pub resource_type: Option<String>,
    /// `resource.id`.
    pub resource_id: Option<String>,
    /// `resource.version`.
    pub resource_version: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: Option<String>,
    /// `context.project`.
    pub project: Option<String>,
    /// `context.environment`.
    pub environment: Option<String>,
    /// One of `resource.tags`.
    pub tag: Option<String>,
    /// `(type, id)` of one of the event's `related` links; see [`Filter::parse_related`].
    pub related: Option<(String, String)>,
    /// With `related`: the link's `version`.
    pub related_version: Option<String>,
    /// With `related`: the link's `relation` (e.g. `training_data`).
    pub related_relation: Option<String>,
    /// An SQLite FTS5 query over reason, parameters and resource name.
    pub q: Option<String>,
    /// The project scope of the caller: only events whose `context.project` is one of
    /// these (events without a project are outside every scope). `None`: no restriction.
    /// Unlike `project`, this is not a filter the caller chose but a limit on what it may
    /// see (a project-scoped token); an empty list matches nothing.
    pub projects_allowed: Option<Vec<String>>,
    /// Page size: [`LIMIT_DEFAULT`] when unset; more than [`LIMIT_MAX`] is refused.
    pub limit: Option<usize>,
    /// Result order.
    pub order: Order,
    /// Where the previous page ended ([`Page::next_cursor`]); must come from a query with the
    /// same order.
    pub cursor: Option<String>,
}

impl Filter {
    /// Parses `type:id` (the id may itself contain `:`).
    pub fn parse_related(s: &str) -> Result<(String, String), QueryError> {
        match s.split_once(':') {
            Some((t, id)) if !t.is_empty() && !id.is_empty() => Ok((t.into(), id.into())),
            _ => Err(QueryError::Invalid(format!(
                "related must be TYPE:ID, e.g. dataset:customers; got {s:?}"
            ))),
        }
    }
}

/// A position in a result list: the last seq returned, and the order it was returned in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Last seq of the previous page.
    pub seq: u64,
    /// Order of the listing.
    pub order: Order,
}

const CURSOR_VERSION: u8 = 1;

impl Cursor {
    /// The opaque form handed to clients: base64url of version, order and seq.
    pub fn encode(&self) -> String {
        let mut b = Vec::with_capacity(10);
        b.push(CURSOR_VERSION);
        b.push(match self.order {
            Order::Asc => 0,
            Order::Desc => 1,
        });
        b.extend_from_slice(&self.seq.to_be_bytes());
        URL_SAFE_NO_PAD.encode(b)
    }

    /// Reads a cursor made by [`Cursor::encode`].
    pub fn decode(s: &str) -> Result<Cursor, QueryError> {
        let bad = || QueryError::Invalid(format!("cursor {s:?} is not one this server returned"));
        let b = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        if b.len() != 10 || b[0] != CURSOR_VERSION {
            return Err(bad());
        }
        let order = match b[1] {
            0 => Order::Asc,
            1 => Order::Desc,
            _ => return Err(bad()),
        };
        let seq = u64::from_be_bytes(b[2..].try_into().expect("8 bytes"));
        // SQLite integers are signed: a larger seq would compare as negative, and an
        // ascending page would restart from the first entry (found by the `cursor` fuzz
        // target). No seq gets there (the ledger stops at 2^53).
        if i64::try_from(seq).is_err() {
            return Err(bad());
        }
        Ok(Cursor { seq, order })
    }
}

/// One result.
#[derive(Debug, Clone)]
pub struct Hit {
    /// Position in the log.
    pub seq: u64,
    /// When mlaudit recorded it.
    pub recorded_at: String,
    /// Its RFC 6962 leaf hash (the handle for an inclusion proof).
    pub leaf_hash: Hash,
    /// The event as stored in the ledger, as raw JSON (answers pass it through;
    /// [`Hit::event_value`] parses it).
    pub event: Box<RawValue>,
    /// The entry's sealed originals (for cleartext views), as raw JSON, if any.
    pub sealed: Option<Box<RawValue>>,
}

impl Hit {
    /// The event, parsed.
    pub fn event_value(&self) -> Value {
        serde_json::from_str(self.event.get()).expect("stored events are JSON objects")
    }

    /// The sealed originals, parsed.
    pub fn sealed_map(&self) -> Option<serde_json::Map<String, Value>> {
        self.sealed
            .as_ref()
            .map(|s| serde_json::from_str(s.get()).expect("sealed is a JSON object"))
    }
}

/// One page of results.
#[derive(Debug, Clone)]
pub struct Page {
    /// The results, in the requested order.
    pub hits: Vec<Hit>,
    /// Where to continue: after the last hit, or the request's cursor when the page is
    /// empty. `None` only for an empty first page. Following it never skips or repeats an
    /// event, also while events are being ingested (ascending listings then reach the new
    /// events; descending ones never see them, as they sort before the first page).
    pub next_cursor: Option<String>,
    /// Whether more results existed when the page was read.
    pub more: bool,
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A bad filter value (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// The index or the ledger could not be read.
    #[error("reading the index: {0}")]
    Storage(String),
    /// Every read connection stayed busy ([`crate::READERS_MAX`]); retry (HTTP 503).
    #[error("{0}")]
    Busy(String),
    /// The query ran past the query time limit and was interrupted (HTTP 503).
    #[error("{0}")]
    TimedOut(String),
}

impl From<rusqlite::Error> for QueryError {
    fn from(e: rusqlite::Error) -> Self {
        QueryError::Storage(e.to_string())
    }
}

/// The smallest string greater than every string starting with `prefix` (prefix is ASCII
/// and non-empty, and its last byte is below 0x7f).
fn prefix_end(prefix: &str) -> String {
    let mut b = prefix.as_bytes().to_vec();
    let last = b.pop().expect("non-empty prefix");
    b.push(last + 1);
    String::from_utf8(b).expect("ASCII")
}

/// The id of `value` in `strings`, or `None` when no indexed event has that string.
pub(super) fn lookup(conn: &Connection, value: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM strings WHERE value = ?1")?
        .query_row([value], |r| r.get(0))
        .optional()
}

/// Checks the values of a filter that do not need the index.
pub(super) fn check(f: &Filter) -> Result<(), QueryError> {
    if let Some(a) = &f.action {
        if a.is_empty()
            || !a
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_.*".contains(&c))
        {
            return Err(QueryError::Invalid(format!(
                "action {a:?} must be an action or a glob like dataset.* (only a-z, 0-9, _, . and *)"
            )));
        }
    }
    if let Some(c) = &f.category {
        if !Category::ALL.iter().any(|k| k.as_str() == c) {
            let names: Vec<_> = Category::ALL.iter().map(|k| k.as_str()).collect();
            return Err(QueryError::Invalid(format!(
                "unknown category {c:?}; expected one of {}",
                names.join(", ")
            )));
        }
    }
    if let Some(o) = &f.outcome {
        if !["success", "failure", "denied"].contains(&o.as_str()) {
            return Err(QueryError::Invalid(format!(
                "unknown outcome {o:?}; expected success, failure or denied"
            )));
        }
    }
    Ok(())
}

/// The page size and the decoded cursor of a listing, checked: a limit of 0 or over
/// [`LIMIT_MAX`] is refused (not capped), and so is a cursor made for the other order.
pub(super) fn check_paging(
    limit: Option<usize>,
    cursor: Option<&str>,
    order: Order,
) -> Result<(usize, Option<Cursor>), QueryError> {
    let limit = match limit {
        Some(0) => return Err(QueryError::Invalid("limit must be at least 1".into())),
        Some(n) if n > LIMIT_MAX => {
            return Err(QueryError::Invalid(format!(
                "limit {n} is over the maximum of {LIMIT_MAX} per page; page with the \
                 cursor in `next` (mlaudit query --all)"
            )))
        }
        Some(n) => n,
        None => LIMIT_DEFAULT,
    };
    let cursor = cursor.map(Cursor::decode).transpose()?;
    if let Some(c) = cursor {
        if c.order != order {
            return Err(QueryError::Invalid(
                "cursor was made for the other order; keep the order while paging".into(),
            ));
        }
    }
    Ok((limit, cursor))
}

/// Which table a listing walks in seq order (the others are conditions on each row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Drive {
    /// `events` itself (`events.seq`).
    Events,
    /// `tags d`, joined with `events` (`d.seq`): the rows of one tag, in seq order from the
    /// cursor on, so a page reads about its own rows and not every row of the tag.
    Tags,
    /// `related d` likewise, for one `related` target.
    Related,
}

impl Drive {
    /// The table to walk for `f`: the tag's rows, else the related target's, else `events`.
    fn of(f: &Filter) -> Drive {
        if f.tag.is_some() {
            Drive::Tags
        } else if f.related.is_some() {
            Drive::Related
        } else {
            Drive::Events
        }
    }

    /// The FROM clause and the seq column to order, page and return.
    fn from(self) -> (&'static str, &'static str) {
        match self {
            Drive::Events => ("events", "events.seq"),
            Drive::Tags => ("tags d JOIN events ON events.seq = d.seq", "d.seq"),
            Drive::Related => ("related d JOIN events ON events.seq = d.seq", "d.seq"),
        }
    }
}

/// The WHERE clause of a checked filter (without the cursor) and its parameters, with the
/// strings replaced by their ids; `None` when a string no indexed event has is required
/// (nothing matches).
pub(super) fn conditions(
    conn: &Connection,
    f: &Filter,
    drive: Drive,
) -> rusqlite::Result<Option<(Vec<String>, Vec<Sql>)>> {
    let mut w: Vec<String> = Vec::new();
    let mut p: Vec<Sql> = Vec::new();
    // Appends `sql` with each `?` numbered after the parameters so far.
    let cond = |w: &mut Vec<String>, p: &mut Vec<Sql>, sql: &str, vals: Vec<Sql>| {
        let mut out = String::new();
        let mut parts = sql.split('?');
        out.push_str(parts.next().unwrap_or(""));
        for (part, v) in parts.zip(vals) {
            p.push(v);
            out.push_str(&format!("?{}", p.len()));
            out.push_str(part);
        }
        w.push(out);
    };
    // The id of a required string, or return "nothing matches".
    macro_rules! id {
        ($v:expr) => {
            match lookup(conn, $v)? {
                Some(id) => Sql::Integer(id),
                None => return Ok(None),
            }
        };
    }
    if let Some(v) = f.from {
        cond(&mut w, &mut p, "time >= ?", vec![Sql::Integer(v)]);
    }
    if let Some(v) = f.to {
        cond(&mut w, &mut p, "time < ?", vec![Sql::Integer(v)]);
    }
    if let Some(v) = f.recorded_from {
        cond(&mut w, &mut p, "recorded_at >= ?", vec![Sql::Integer(v)]);
    }
    if let Some(v) = f.recorded_to {
        cond(&mut w, &mut p, "recorded_at < ?", vec![Sql::Integer(v)]);
    }
    if let Some(a) = &f.action {
        // A glob is a subquery over `strings` (a string has one id whatever column it
        // appears in, so `action IN (…)` keeps exactly the events whose action matches),
        // with the pattern bound as a parameter: the statement stays small and one cached
        // statement serves every glob (a literal list of ids grew with the strings a broad
        // glob matched, and each such statement was cached). A trailing `*` is a range of
        // `strings.value` (its unique index).
        match a.find('*') {
            None => match lookup(conn, a)? {
                Some(id) => cond(&mut w, &mut p, "action = ?", vec![Sql::Integer(id)]),
                None => return Ok(None),
            },
            Some(i) if i == a.len() - 1 => {
                let prefix = &a[..i];
                if !prefix.is_empty() {
                    cond(
                        &mut w,
                        &mut p,
                        "action IN (SELECT id FROM strings WHERE value >= ? AND value < ?)",
                        vec![Sql::Text(prefix.to_string()), Sql::Text(prefix_end(prefix))],
                    );
                }
            }
            // No `?` or `[` can reach GLOB: `check` refuses them.
            Some(_) => cond(
                &mut w,
                &mut p,
                "action IN (SELECT id FROM strings WHERE value GLOB ?)",
                vec![Sql::Text(a.clone())],
            ),
        }
    }
    if let Some(c) = &f.category {
        cond(&mut w, &mut p, "category = ?", vec![id!(c)]);
    }
    if let Some(o) = &f.outcome {
        if o == OUTCOME_SUCCESS {
            w.push("outcome IS NULL".into());
        } else {
            cond(&mut w, &mut p, "outcome = ?", vec![id!(o)]);
        }
    }
    if let Some(id) = &f.event_id {
        let h = crate::extract::id_hash(id);
        cond(&mut w, &mut p, "id_hash = ?", vec![Sql::Integer(h)]);
    }
    if let Some(a) = &f.actor {
        // The stored forms of this actor that the index has seen; none: nothing matches.
        let mut ids = Vec::new();
        for v in [Some(a), f.actor_alt.as_ref()].into_iter().flatten() {
            if let Some(id) = lookup(conn, v)? {
                ids.push(Sql::Integer(id));
            }
        }
        match ids.len() {
            0 => return Ok(None),
            1 => cond(&mut w, &mut p, "actor = ?", ids),
            _ => cond(&mut w, &mut p, "actor IN (?, ?)", ids),
        }
    }
    for (col, v) in [
        ("resource_type", &f.resource_type),
        ("resource_id", &f.resource_id),
        ("resource_version", &f.resource_version),
        ("project", &f.project),
        ("environment", &f.environment),
    ] {
        if let Some(v) = v {
            cond(&mut w, &mut p, &format!("{col} = ?"), vec![id!(v)]);
        }
    }
    if let Some(t) = &f.tag {
        let sql = match drive {
            Drive::Tags => "d.tag = ?",
            _ => "events.seq IN (SELECT seq FROM tags WHERE tag = ?)",
        };
        cond(&mut w, &mut p, sql, vec![id!(t)]);
    }
    if let Some((t, id)) = &f.related {
        // The link's version and relation narrow it when given.
        let mut sql = String::from("type = ? AND id = ?");
        let mut vals = vec![id!(t), id!(id)];
        for (col, v) in [
            ("version", &f.related_version),
            ("relation", &f.related_relation),
        ] {
            if let Some(v) = v {
                sql.push_str(&format!(" AND {col} = ?"));
                vals.push(id!(v));
            }
        }
        let sql = match drive {
            Drive::Related => sql
                .split(" AND ")
                .map(|c| format!("d.{c}"))
                .collect::<Vec<_>>()
                .join(" AND "),
            _ => format!("events.seq IN (SELECT seq FROM related WHERE {sql})"),
        };
        cond(&mut w, &mut p, &sql, vals);
    }
    if let Some(projects) = &f.projects_allowed {
        let marks = vec!["?"; projects.len()].join(", ");
        cond(
            &mut w,
            &mut p,
            &format!("project IN (SELECT id FROM strings WHERE value IN ({marks}))"),
            projects.iter().map(|s| Sql::Text(s.clone())).collect(),
        );
    }
    if let Some(q) = &f.q {
        cond(
            &mut w,
            &mut p,
            "events.seq IN (SELECT rowid FROM fts WHERE fts MATCH ?)",
            vec![Sql::Text(q.clone())],
        );
    }
    Ok(Some((w, p)))
}

/// Builds the WHERE clause and its parameters over the text columns of the rollup tables,
/// for the filters those tables hold (the statistics choose a rollup only when every filter
/// set is one of its columns; `from`/`to` become bucket bounds). `events` has string ids
/// instead: [`conditions`].
pub(super) fn rollup_conditions(f: &Filter) -> Result<(Vec<String>, Vec<Sql>), QueryError> {
    check(f)?;
    debug_assert!(
        f.from.is_none()
            && f.to.is_none()
            && f.recorded_from.is_none()
            && f.recorded_to.is_none()
            && f.resource_id.is_none()
            && f.resource_version.is_none()
            && f.environment.is_none()
            && f.tag.is_none()
            && f.related.is_none()
            && f.q.is_none(),
        "bad math in choosing a rollup: a filter no rollup holds"
    );
    let mut w: Vec<String> = Vec::new();
    let mut p: Vec<Sql> = Vec::new();
    // Appends `sql` with each `?` numbered after the parameters so far.
    let cond = |w: &mut Vec<String>, p: &mut Vec<Sql>, sql: &str, vals: Vec<String>| {
        let mut out = String::new();
        let mut parts = sql.split('?');
        out.push_str(parts.next().unwrap_or(""));
        for (part, v) in parts.zip(vals) {
            p.push(Sql::Text(v));
            out.push_str(&format!("?{}", p.len()));
            out.push_str(part);
        }
        w.push(out);
    };
    if let Some(a) = &f.action {
        match a.find('*') {
            None => cond(&mut w, &mut p, "action = ?", vec![a.clone()]),
            Some(i) if i == a.len() - 1 => {
                let prefix = &a[..i];
                if !prefix.is_empty() {
                    let range = vec![prefix.to_string(), prefix_end(prefix)];
                    cond(&mut w, &mut p, "action >= ? AND action < ?", range);
                }
            }
            // No `?` or `[` can reach GLOB: `check` refuses them.
            Some(_) => cond(&mut w, &mut p, "action GLOB ?", vec![a.clone()]),
        }
    }
    if let Some(a) = &f.actor {
        match &f.actor_alt {
            None => cond(&mut w, &mut p, "actor = ?", vec![a.clone()]),
            Some(b) => cond(
                &mut w,
                &mut p,
                "actor IN (?, ?)",
                vec![a.clone(), b.clone()],
            ),
        }
    }
    for (col, v) in [
        ("category", &f.category),
        ("outcome", &f.outcome),
        ("resource_type", &f.resource_type),
        ("project", &f.project),
    ] {
        if let Some(v) = v {
            cond(&mut w, &mut p, &format!("{col} = ?"), vec![v.clone()]);
        }
    }
    if let Some(projects) = &f.projects_allowed {
        let marks = vec!["?"; projects.len()].join(", ");
        cond(
            &mut w,
            &mut p,
            &format!("project IN ({marks})"),
            projects.clone(),
        );
    }
    Ok((w, p))
}

impl Index {
    /// Runs a query: the seqs come from the index, the events from `store`.
    pub fn query(&self, store: &ledger::Store, f: &Filter) -> Result<Page, QueryError> {
        let (limit, cursor) = check_paging(f.limit, f.cursor.as_deref(), f.order)?;
        check(f)?;
        let mut seqs: Vec<u64> = self.with_reader(|conn| {
            let read = || -> rusqlite::Result<Vec<u64>> {
                // One snapshot for the string lookups and the query.
                let tx = conn.unchecked_transaction()?;
                let drive = Drive::of(f);
                let Some((mut w, mut p)) = conditions(&tx, f, drive)? else {
                    return Ok(Vec::new());
                };
                let (from, key) = drive.from();
                if let Some(c) = cursor {
                    p.push(Sql::Integer(c.seq as i64));
                    let op = if f.order == Order::Asc { ">" } else { "<" };
                    w.push(format!("{key} {op} ?{}", p.len()));
                }
                // An event can list the same related target twice: DISTINCT keeps one row.
                let sql = format!(
                    "SELECT {}{key} FROM {from}{}{} ORDER BY {key} {} LIMIT {}",
                    if drive == Drive::Related {
                        "DISTINCT "
                    } else {
                        ""
                    },
                    if w.is_empty() { "" } else { " WHERE " },
                    w.join(" AND "),
                    if f.order == Order::Asc { "ASC" } else { "DESC" },
                    limit + 1
                );
                let mut stmt = tx.prepare_cached(&sql)?;
                let rows =
                    stmt.query_map(rusqlite::params_from_iter(p.iter()), |r| r.get::<_, i64>(0))?;
                let mut out = Vec::new();
                for r in rows {
                    out.push(r? as u64);
                }
                drop(stmt);
                tx.finish()?;
                Ok(out)
            };
            read().map_err(|e| fts_error(f, e))
        })?;
        let more = seqs.len() > limit;
        seqs.truncate(limit);
        let mut hits = read_hits(store, &seqs)?;
        if let Some(id) = &f.event_id {
            // The index matched a hash of the id: keep only the events that have it.
            hits.retain(|h| h.event_value()["id"].as_str() == Some(id.as_str()));
        }
        let next_cursor = seqs
            .last()
            .map(|&seq| {
                Cursor {
                    seq,
                    order: f.order,
                }
                .encode()
            })
            .or_else(|| f.cursor.clone());
        Ok(Page {
            hits,
            next_cursor,
            more,
        })
    }
}

/// A generic SQLite error (`SQLITE_ERROR`) while a full-text query is set is FTS5 refusing
/// `q` (syntax, unknown column filter): a bad value, not a storage failure.
pub(super) fn fts_error(f: &Filter, e: rusqlite::Error) -> QueryError {
    match (&f.q, &e) {
        (Some(q), rusqlite::Error::SqliteFailure(err, msg))
            if err.code == rusqlite::ErrorCode::Unknown =>
        {
            QueryError::Invalid(format!(
                "q {q:?} is not a valid full-text query ({}). Search words match whole \
                 words anywhere in reason, parameters and resource name; write \
                 \"two words\" for a phrase, churn* for a prefix, AND / OR / NOT (in capitals) \
                 to combine, and put a word with punctuation (- : . @ /) in double quotes",
                msg.as_deref().unwrap_or("syntax error")
            ))
        }
        _ => e.into(),
    }
}

/// Reads the entries of `seqs` from the ledger in one pass (each frame that holds
/// some of them is decompressed once), whatever order the results are in.
pub(super) fn read_hits(store: &ledger::Store, seqs: &[u64]) -> Result<Vec<Hit>, QueryError> {
    let mut sorted = seqs.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let slots = store
        .read_seqs(&sorted)
        .map_err(|e| QueryError::Storage(format!("reading entries: {e}")))?;
    let mut hits = Vec::with_capacity(seqs.len());
    for &seq in seqs {
        let i = sorted.binary_search(&seq).expect("every seq was read");
        let raw = match &slots[i] {
            ledger::store::Slot::Entry(bytes) => bytes.as_slice(),
            // Pruned entries leave the index before their payloads leave the ledger.
            ledger::store::Slot::Pruned(_) => {
                return Err(QueryError::Storage(format!(
                    "entry {seq} was pruned by retention but is still indexed"
                )))
            }
        };
        let entry = parse_entry_raw(raw)
            .map_err(|e| QueryError::Storage(format!("reading entry {seq}: {e}")))?;
        hits.push(Hit {
            seq,
            recorded_at: entry.recorded_at,
            leaf_hash: tlog::leaf_hash(raw),
            event: entry.event,
            sealed: entry.sealed,
        });
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 19.5): a broad action glob became a literal `IN (…)` list of every
    /// matching string id, and each such statement was cached (+100 MB after 12 queries).
    #[test]
    fn an_action_glob_is_one_small_statement_whatever_it_matches() {
        let conn = Connection::open_in_memory().unwrap();
        super::super::create_schema_for_tests(&conn);
        let mut insert = conn
            .prepare("INSERT INTO strings (value) VALUES (?1)")
            .unwrap();
        for i in 0..20_000 {
            insert.execute([format!("ds-{i:05}")]).unwrap();
        }
        for glob in ["d*", "*s*", "ds-1*"] {
            let f = Filter {
                action: Some(glob.to_string()),
                ..Filter::default()
            };
            let (w, p) = conditions(&conn, &f, Drive::Events).unwrap().unwrap();
            let sql = w.join(" AND ");
            assert!(sql.len() < 200, "{glob}: {} bytes of SQL", sql.len());
            assert!(p.len() <= 2, "{glob}: {p:?}");
        }
    }
}
