//! `Index::stats`: counts of events by one field and time bucket, from the rollup tables
//! when they hold every filter asked for, otherwise by aggregating the `events` table.

use std::collections::BTreeMap;

use rusqlite::types::Value as Sql;
use rusqlite::Connection;

use super::query::{check, conditions, fts_error, rollup_conditions, Drive};
use super::{value_of, Filter, Index, QueryError, DAY_MS, HOUR_MS};

/// Most `(bucket, key)` counts in one answer; a larger answer is refused (narrow the time
/// range, use `day`, or filter) rather than cut, since a partial count would mislead.
pub const STATS_BUCKETS_MAX: usize = 100_000;

/// The field events are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsBy {
    /// `action`.
    Action,
    /// The category of `action`.
    Category,
    /// `outcome`.
    Outcome,
    /// `actor.id`.
    Actor,
    /// `context.project`.
    Project,
    /// `resource.type`.
    ResourceType,
}

impl StatsBy {
    /// Every field, in the order of the documentation.
    pub const ALL: [StatsBy; 6] = [
        StatsBy::Action,
        StatsBy::Category,
        StatsBy::Outcome,
        StatsBy::Actor,
        StatsBy::Project,
        StatsBy::ResourceType,
    ];

    /// The name in the API (`by=`), which is also the column's.
    pub fn as_str(self) -> &'static str {
        match self {
            StatsBy::Action => "action",
            StatsBy::Category => "category",
            StatsBy::Outcome => "outcome",
            StatsBy::Actor => "actor",
            StatsBy::Project => "project",
            StatsBy::ResourceType => "resource_type",
        }
    }

    /// Reads a name made by [`StatsBy::as_str`].
    pub fn parse(s: &str) -> Result<StatsBy, QueryError> {
        StatsBy::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = StatsBy::ALL.iter().map(|b| b.as_str()).collect();
                QueryError::Invalid(format!("by={s:?} is not one of {}", names.join(", ")))
            })
    }
}

/// Reads `hour`, `day`, `week` or `month`: the width in milliseconds of the buckets to
/// count in (`week` and `month` count by day), and the calendar buckets to merge days into.
pub fn parse_interval(s: &str) -> Result<(i64, Option<Calendar>), QueryError> {
    match s {
        "hour" => Ok((HOUR_MS, None)),
        "day" => Ok((DAY_MS, None)),
        "week" => Ok((DAY_MS, Some(Calendar::Week))),
        "month" => Ok((DAY_MS, Some(Calendar::Month))),
        _ => Err(QueryError::Invalid(format!(
            "interval={s:?} is not one of hour, day, week, month"
        ))),
    }
}

/// Calendar buckets coarser than a day, made from day buckets (UTC): a week starts on
/// Monday 00:00, a month on its first day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calendar {
    /// ISO weeks.
    Week,
    /// Calendar months.
    Month,
}

impl Calendar {
    /// `week` or `month`.
    pub fn as_str(self) -> &'static str {
        match self {
            Calendar::Week => "week",
            Calendar::Month => "month",
        }
    }

    /// The start of the bucket holding `ms`.
    pub fn floor(self, ms: i64) -> i64 {
        use chrono::{Datelike, NaiveDate};
        let day = ms.div_euclid(DAY_MS);
        let date = chrono::DateTime::from_timestamp(day * 86_400, 0)
            .expect("a day of the index is a valid date")
            .date_naive();
        let start = match self {
            Calendar::Week => {
                date - chrono::Duration::days(i64::from(date.weekday().num_days_from_monday()))
            }
            Calendar::Month => NaiveDate::from_ymd_opt(date.year(), date.month(), 1)
                .expect("the first of a month exists"),
        };
        start
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp_millis()
    }
}

impl Stats {
    /// Day buckets merged into `calendar` buckets, sorted by start then key.
    pub fn regroup(self, calendar: Calendar) -> Stats {
        let mut merged: std::collections::BTreeMap<(i64, Option<String>), u64> =
            std::collections::BTreeMap::new();
        for b in self.buckets {
            *merged.entry((calendar.floor(b.start), b.key)).or_default() += b.count;
        }
        Stats {
            buckets: merged
                .into_iter()
                .map(|((start, key), count)| StatsBucket { start, key, count })
                .collect(),
            source: self.source,
        }
    }
}

/// The count of one key in one bucket.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StatsBucket {
    /// Start of the bucket (milliseconds since the Unix epoch, UTC; by event `time`).
    pub start: i64,
    /// The field's value; `None` for events without one (no project, no resource).
    pub key: Option<String>,
    /// Number of events.
    pub count: u64,
}

/// Where the counts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsSource {
    /// The rollup tables (plus the `events` rows of the partial buckets at unaligned
    /// `from` / `to` edges).
    Rollup,
    /// An aggregate over the matching rows of `events`: its cost grows with them.
    Events,
}

/// The answer of [`Index::stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Counts by bucket start, then key; buckets without events are absent.
    pub buckets: Vec<StatsBucket>,
    /// Where they came from.
    pub source: StatsSource,
}

/// A rollup table: the bucket widths it has and the columns it is keyed by.
struct Rollup {
    table: &'static str,
    /// Whether it has a `width` column (otherwise it holds only `widths[0]`).
    width_column: bool,
    widths: &'static [i64],
    columns: &'static [&'static str],
}

/// The rollups, tried in order. Actors have a table of their own, by day only: there are
/// many of them, and on the generator's mix an hourly actor rollup would have about as many
/// rows as there are events.
const ROLLUPS: &[Rollup] = &[
    Rollup {
        table: "rollup",
        width_column: true,
        widths: &[HOUR_MS, DAY_MS],
        columns: &["action", "category", "outcome", "project", "resource_type"],
    },
    Rollup {
        table: "rollup_actor",
        width_column: false,
        widths: &[DAY_MS],
        columns: &["actor", "outcome"],
    },
];

/// The columns the filter constrains (`time` for `from`/`to` is handled by buckets).
fn filtered_columns(f: &Filter) -> Vec<&'static str> {
    let mut c = Vec::new();
    for (name, set) in [
        ("action", f.action.is_some()),
        ("category", f.category.is_some()),
        ("actor", f.actor.is_some()),
        // No rollup holds event ids: a lookup by id counts from the events.
        ("event_id", f.event_id.is_some()),
        ("resource_type", f.resource_type.is_some()),
        ("resource_id", f.resource_id.is_some()),
        ("resource_version", f.resource_version.is_some()),
        ("outcome", f.outcome.is_some()),
        (
            "project",
            f.project.is_some() || f.projects_allowed.is_some(),
        ),
        ("environment", f.environment.is_some()),
        ("tag", f.tag.is_some()),
        ("related", f.related.is_some()),
        ("q", f.q.is_some()),
        (
            "recorded_at",
            f.recorded_from.is_some() || f.recorded_to.is_some(),
        ),
    ] {
        if set {
            c.push(name);
        }
    }
    c
}

type Counts = BTreeMap<(i64, Option<String>), u64>;

fn too_many() -> QueryError {
    QueryError::Invalid(format!(
        "more than {STATS_BUCKETS_MAX} counts; narrow from/to, use interval=day or filter"
    ))
}

/// `''` (how rollups store an absent project or resource type) and NULL are both "none".
fn key(k: Option<String>) -> Option<String> {
    k.filter(|k| !k.is_empty())
}

fn run(
    conn: &Connection,
    f: &Filter,
    sql: &str,
    params: &[Sql],
    counts: &mut Counts,
) -> Result<(), QueryError> {
    let read = || -> rusqlite::Result<Vec<(i64, Option<String>, i64)>> {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        rows.collect()
    };
    for (bucket, k, n) in read().map_err(|e| fts_error(f, e))? {
        *counts.entry((bucket, key(k))).or_default() += n as u64;
        if counts.len() > STATS_BUCKETS_MAX {
            return Err(too_many());
        }
    }
    Ok(())
}

/// Counts of the `events` rows matching `f` with `from <= time < to`.
fn from_events(
    conn: &Connection,
    f: &Filter,
    by: StatsBy,
    width: i64,
    from: Option<i64>,
    to: Option<i64>,
    counts: &mut Counts,
) -> Result<(), QueryError> {
    let f = Filter {
        from,
        to,
        ..f.clone()
    };
    check(&f)?;
    let Some((w, p)) = conditions(conn, &f, Drive::Events).map_err(|e| fts_error(&f, e))? else {
        // A string the filter requires is in no event: nothing to count.
        return Ok(());
    };
    // `events` holds string ids (docs/index.md): group by the id, show the string; a NULL
    // outcome is success.
    let col = by.as_str();
    let shown = match by.as_str() {
        "outcome" => format!("COALESCE({}, 'success')", value_of("events.outcome")),
        _ => value_of(&format!("events.{col}")),
    };
    let sql = format!(
        "SELECT time - ((time % {width}) + {width}) % {width} AS b, {shown}, COUNT(*) FROM events{}{}
         GROUP BY b, events.{col} LIMIT {}",
        if w.is_empty() { "" } else { " WHERE " },
        w.join(" AND "),
        STATS_BUCKETS_MAX + 1,
    );
    run(conn, &f, &sql, &p, counts)
}

/// Counts from a rollup table over whole buckets `lo <= bucket < hi`.
#[allow(clippy::too_many_arguments)]
fn from_rollup(
    conn: &Connection,
    r: &Rollup,
    f: &Filter,
    by: StatsBy,
    width: i64,
    lo: Option<i64>,
    hi: Option<i64>,
    counts: &mut Counts,
) -> Result<(), QueryError> {
    let f = Filter {
        from: None,
        to: None,
        ..f.clone()
    };
    let (mut w, mut p) = rollup_conditions(&f)?;
    if r.width_column {
        p.push(Sql::Integer(width));
        w.push(format!("width = ?{}", p.len()));
    }
    if let Some(lo) = lo {
        p.push(Sql::Integer(lo));
        w.push(format!("bucket >= ?{}", p.len()));
    }
    if let Some(hi) = hi {
        p.push(Sql::Integer(hi));
        w.push(format!("bucket < ?{}", p.len()));
    }
    let sql = format!(
        "SELECT bucket, {col}, SUM(count) FROM {table}{}{} GROUP BY bucket, {col} LIMIT {}",
        if w.is_empty() { "" } else { " WHERE " },
        w.join(" AND "),
        STATS_BUCKETS_MAX + 1,
        col = by.as_str(),
        table = r.table,
    );
    run(conn, &f, &sql, &p, counts)
}

impl Index {
    /// Counts of the events matching `f` (every filter of [`Index::query`], the project
    /// scope included; paging fields are ignored) by `by` and by bucket of event `time`,
    /// `width` ms wide ([`HOUR_MS`] or [`DAY_MS`], UTC). `f.from` / `f.to` need not be on
    /// bucket boundaries: a bucket they cut is counted over its part in range only.
    ///
    /// When a rollup table has `by`, `width` and a column for every filter set, whole
    /// buckets come from it (cost: the rollup rows of the range) and only the cut buckets at
    /// the edges from `events`; otherwise everything is an aggregate over the matching
    /// `events` rows (cost: proportional to them, using the filter's index).
    pub fn stats(&self, f: &Filter, by: StatsBy, width: i64) -> Result<Stats, QueryError> {
        if width != HOUR_MS && width != DAY_MS {
            return Err(QueryError::Invalid(format!(
                "bucket width {width} ms is neither an hour nor a day"
            )));
        }
        let filtered = filtered_columns(f);
        let rollup = ROLLUPS.iter().find(|r| {
            r.widths.contains(&width)
                && r.columns.contains(&by.as_str())
                && filtered.iter().all(|c| r.columns.contains(c))
        });
        let mut counts = Counts::new();
        let empty = matches!((f.from, f.to), (Some(a), Some(b)) if a >= b);
        let source = match rollup {
            None => StatsSource::Events,
            Some(_) => StatsSource::Rollup,
        };
        if !empty {
            self.with_reader(|conn| {
                let tx = conn.unchecked_transaction()?;
                match rollup {
                    None => from_events(&tx, f, by, width, f.from, f.to, &mut counts)?,
                    Some(r) => {
                        let floor = |t: i64| t.div_euclid(width) * width;
                        // Whole buckets: from `from` rounded up to `to` rounded down.
                        let lo = f.from.map(|t| floor(t + width - 1));
                        let hi = f.to.map(floor);
                        match (lo, hi) {
                            (Some(lo), Some(hi)) if lo > hi => {
                                // `from` and `to` cut the same bucket.
                                from_events(&tx, f, by, width, f.from, f.to, &mut counts)?
                            }
                            _ => {
                                from_rollup(&tx, r, f, by, width, lo, hi, &mut counts)?;
                                if let (Some(from), Some(lo)) = (f.from, lo) {
                                    if from < lo {
                                        from_events(
                                            &tx,
                                            f,
                                            by,
                                            width,
                                            f.from,
                                            Some(lo),
                                            &mut counts,
                                        )?;
                                    }
                                }
                                if let (Some(to), Some(hi)) = (f.to, hi) {
                                    if hi < to {
                                        from_events(
                                            &tx,
                                            f,
                                            by,
                                            width,
                                            Some(hi),
                                            f.to,
                                            &mut counts,
                                        )?;
                                    }
                                }
                            }
                        }
                    }
                }
                tx.finish()?;
                Ok(())
            })?;
        }
        Ok(Stats {
            buckets: counts
                .into_iter()
                .map(|((start, key), count)| StatsBucket { start, key, count })
                .collect(),
            source,
        })
    }
}

#[cfg(test)]
mod calendar_tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    }

    /// Issue 11.10: `stats` had hour and day buckets only.
    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        // 2026-01-07 is a Wednesday.
        let wed = ms("2026-01-07T00:00:00Z");
        assert_eq!(Calendar::Week.floor(wed), ms("2026-01-05T00:00:00Z"));
        let monday = ms("2026-01-05T00:00:00Z");
        assert_eq!(Calendar::Week.floor(monday), monday);
        assert_eq!(Calendar::Month.floor(wed), ms("2026-01-01T00:00:00Z"));
        let new_year = ms("2026-01-01T00:00:00Z");
        assert_eq!(Calendar::Week.floor(new_year), ms("2025-12-29T00:00:00Z"));
        let day = |d: &str, k: &str, n: u64| StatsBucket {
            start: ms(d),
            key: Some(k.into()),
            count: n,
        };
        let s = Stats {
            buckets: vec![
                day("2026-01-30T00:00:00Z", "a", 1),
                day("2026-01-31T00:00:00Z", "a", 2),
                day("2026-02-01T00:00:00Z", "a", 4),
                day("2026-02-01T00:00:00Z", "b", 8),
            ],
            source: StatsSource::Rollup,
        };
        let m = s.clone().regroup(Calendar::Month);
        assert_eq!(
            m.buckets,
            vec![
                day("2026-01-01T00:00:00Z", "a", 3),
                day("2026-02-01T00:00:00Z", "a", 4),
                day("2026-02-01T00:00:00Z", "b", 8),
            ]
        );
        // 2026-01-30 (Fri) to 2026-02-01 (Sun): one week, from Monday 2026-01-26.
        let w = s.regroup(Calendar::Week);
        assert_eq!(
            w.buckets,
            vec![
                day("2026-01-26T00:00:00Z", "a", 7),
                day("2026-01-26T00:00:00Z", "b", 8),
            ]
        );
    }
}
