//! `Index::history`: the timeline of one resource, every event that names it, as its
//! `resource` (the event's subject) or in its `related` links, each marked by how it names
//! it. A dataset is rarely the subject of the events an auditor asks about (a training run
//! is a `model.train` of the model, with the dataset in `related`); a timeline of subject
//! events only answered 404 for it (issue 11.4).

use rusqlite::types::Value as Sql;

use super::query::{check_paging, read_hits};
use super::{scope_sql, value_of, Cursor, Hit, Index, Order, QueryError};

/// How an event names the resource of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appearance {
    /// Whether the resource is the event's `resource`.
    pub subject: bool,
    /// The `relation` of each of the event's `related` links to the resource, in the
    /// event's order (`None` for a link without one); empty when it is only the subject.
    pub relations: Vec<Option<String>>,
}

/// One event of a history.
#[derive(Debug, Clone)]
pub struct HistoryHit {
    /// The event, read back from the ledger.
    pub hit: Hit,
    /// How it names the resource.
    pub appears: Appearance,
}

/// One page of a history, paged like [`Index::query`](super::Index::query).
#[derive(Debug, Clone)]
pub struct HistoryPage {
    /// The events, in the requested order.
    pub hits: Vec<HistoryHit>,
    /// Where to continue (see [`Page::next_cursor`](super::Page::next_cursor)).
    pub next_cursor: Option<String>,
    /// Whether more events existed when the page was read.
    pub more: bool,
}

/// What [`Index::history`] lists.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// `resource.type` / `related[].type`.
    pub rtype: String,
    /// `resource.id` / `related[].id`.
    pub id: String,
    /// Page size ([`LIMIT_DEFAULT`](super::LIMIT_DEFAULT) when unset, at most
    /// [`LIMIT_MAX`](super::LIMIT_MAX)).
    pub limit: Option<usize>,
    /// Order by seq.
    pub order: Order,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// The caller's project scope (`None`: every event).
    pub projects: Option<Vec<String>>,
}

impl Index {
    /// The events naming `(q.rtype, q.id)` as their `resource` or in `related`, within the
    /// project scope, one page in seq order, each with its [`Appearance`].
    ///
    /// Both sides are index ranges in seq order (`events_resource`, `related_target`), and
    /// SQLite merges them (`UNION`), so a page reads the rows from the cursor on.
    pub fn history(
        &self,
        store: &ledger::Store,
        q: &HistoryQuery,
    ) -> Result<HistoryPage, QueryError> {
        let (limit, cursor) = check_paging(q.limit, q.cursor.as_deref(), q.order)?;
        let (scope, scope_params) = scope_sql(q.projects.as_deref(), "e.project", 4);
        let (rows, appearances) = self.with_reader(|conn| {
            let tx = conn.unchecked_transaction()?;
            let (Some(t), Some(i)) = (
                super::query::lookup(&tx, &q.rtype)?,
                super::query::lookup(&tx, &q.id)?,
            ) else {
                return Ok((Vec::new(), Vec::new()));
            };
            let (op, dir) = match q.order {
                Order::Asc => (">", "ASC"),
                Order::Desc => ("<", "DESC"),
            };
            // Without a cursor the bound is one past every seq in the chosen direction.
            let bound = match cursor {
                Some(c) => c.seq as i64,
                None if q.order == Order::Asc => -1,
                None => i64::MAX,
            };
            let mut params = vec![Sql::Integer(t), Sql::Integer(i), Sql::Integer(bound)];
            params.extend(scope_params.iter().cloned());
            let sql = format!(
                "SELECT h.seq FROM (
                     SELECT seq FROM events WHERE resource_type = ?1 AND resource_id = ?2
                       AND seq {op} ?3
                     UNION
                     SELECT seq FROM related WHERE type = ?1 AND id = ?2 AND seq {op} ?3
                 ) h JOIN events e ON e.seq = h.seq
                 WHERE 1{scope}
                 ORDER BY h.seq {dir} LIMIT {}",
                limit + 1
            );
            let seqs: Vec<u64> = tx
                .prepare_cached(&sql)?
                .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                    r.get::<_, i64>(0)
                })?
                .map(|r| r.map(|s| s as u64))
                .collect::<Result<_, _>>()?;
            let shown = &seqs[..seqs.len().min(limit)];
            let appearances = appearances(&tx, t, i, shown)?;
            tx.finish()?;
            Ok((seqs, appearances))
        })?;
        let more = rows.len() > limit;
        let seqs = &rows[..rows.len().min(limit)];
        let hits = read_hits(store, seqs)?
            .into_iter()
            .zip(appearances)
            .map(|(hit, appears)| HistoryHit { hit, appears })
            .collect();
        let next_cursor = seqs
            .last()
            .map(|&seq| {
                Cursor {
                    seq,
                    order: q.order,
                }
                .encode()
            })
            .or_else(|| q.cursor.clone());
        Ok(HistoryPage {
            hits,
            next_cursor,
            more,
        })
    }
}

/// How each event of `seqs` names the resource with string ids `(t, i)`: two index ranges
/// over the page's seqs (`events_resource` and `related_target`), in `seqs`' order.
fn appearances(
    conn: &rusqlite::Connection,
    t: i64,
    i: i64,
    seqs: &[u64],
) -> Result<Vec<Appearance>, QueryError> {
    let (Some(&lo), Some(&hi)) = (seqs.iter().min(), seqs.iter().max()) else {
        return Ok(Vec::new());
    };
    let params = [
        Sql::Integer(t),
        Sql::Integer(i),
        Sql::Integer(lo as i64),
        Sql::Integer(hi as i64),
    ];
    let mut out: Vec<Appearance> = seqs
        .iter()
        .map(|_| Appearance {
            subject: false,
            relations: Vec::new(),
        })
        .collect();
    let position: std::collections::HashMap<i64, usize> = seqs
        .iter()
        .enumerate()
        .map(|(k, &s)| (s as i64, k))
        .collect();
    let at = |seq: i64| position.get(&seq).copied();
    let mut stmt = conn.prepare_cached(
        "SELECT seq FROM events WHERE resource_type = ?1 AND resource_id = ?2
           AND seq BETWEEN ?3 AND ?4",
    )?;
    for seq in stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| {
        r.get::<_, i64>(0)
    })? {
        if let Some(k) = at(seq?) {
            out[k].subject = true;
        }
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT seq, {} FROM related WHERE type = ?1 AND id = ?2 AND seq BETWEEN ?3 AND ?4
         ORDER BY seq, rowid",
        value_of("relation")
    ))?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
    })?;
    for row in rows {
        let (seq, relation) = row?;
        if let Some(k) = at(seq) {
            out[k].relations.push(relation);
        }
    }
    Ok(out)
}
