//! `Index::lineage`: the graph of `related` links around one resource, from the `related`
//! and `events` tables (never from the ledger).
//!
//! A link is one `related` item of an event that also has a `resource`: an edge from the
//! event's resource to the related resource, with the item's `relation`, as the producer
//! wrote it (`model.train` of model M with `related` dataset D gives `model:M
//! -training_data-> dataset:D`; `deployment.deploy` of deployment X with `related` model M
//! gives `deployment:X -serves-> model:M`). The graph follows links in both directions:
//! from a dataset to the models trained on it, to the deployments serving them, and back.
//!
//! When a cap cuts the graph, what is kept is what an auditor follows first: at each hop the
//! new nodes are taken by type ([`LINEAGE_TYPE_PRIORITY`]: deployments, then models, then
//! the rest), so a dataset's models and their deployments are not crowded out by the other
//! datasets those models were trained on (issue 11.5: 486 datasets filled the 500-node cap
//! and the deployment was lost). The answer says how many nodes and edges were left out, by
//! type and relation ([`Omitted`]), and [`LineageFilter`] limits the walk to some node types
//! and relations.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};

use rusqlite::types::Value as Sql;
use rusqlite::Connection;

use super::{id_of, rfc3339, scope_sql, value_of, Index, QueryError};

/// Hops from the root when the caller does not say.
pub const LINEAGE_DEPTH_DEFAULT: u32 = 2;
/// Most hops from the root. Each hop can multiply the graph; past a few hops an audit
/// question is better asked from a node nearer to its answer.
pub const LINEAGE_DEPTH_MAX: u32 = 5;
/// Most nodes in one answer (the root included); past it the answer is `truncated`.
pub const LINEAGE_NODES_MAX: usize = 500;
/// Most edges in one answer; past it the answer is `truncated`.
pub const LINEAGE_EDGES_MAX: usize = 2000;
/// Most seqs listed per edge ([`LineageEdge::events`] still counts them all).
pub const EDGE_SEQS_MAX: usize = 20;
/// Most versions listed per node.
pub const NODE_VERSIONS_MAX: usize = 50;

/// Node types taken first, in this order, when a cap leaves room for only some of the new
/// nodes of a hop; every other type comes after them, all alike. Within a rank, nodes
/// linked by more events come first, then by type and id.
pub const LINEAGE_TYPE_PRIORITY: &[&str] = &["deployment", "model"];

/// The rank of a node type in [`LINEAGE_TYPE_PRIORITY`] (lower is taken first).
fn type_rank(t: &str) -> usize {
    LINEAGE_TYPE_PRIORITY
        .iter()
        .position(|p| *p == t)
        .unwrap_or(LINEAGE_TYPE_PRIORITY.len())
}

/// Which links a lineage walk follows. Unset fields follow everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineageFilter {
    /// Only links whose other end is of one of these types (the root is always in).
    pub types: Option<Vec<String>>,
    /// Only links with one of these relations (a link without a relation matches none).
    pub relations: Option<Vec<String>>,
}

impl LineageFilter {
    fn follows(&self, other: &NodeRef, relation: Option<&str>) -> bool {
        let type_ok = self
            .types
            .as_ref()
            .is_none_or(|ts| ts.contains(&other.r#type));
        let relation_ok = self
            .relations
            .as_ref()
            .is_none_or(|rs| relation.is_some_and(|r| rs.iter().any(|x| x == r)));
        type_ok && relation_ok
    }
}

/// What a cap left out of a [`Lineage`]: the nodes and edges seen at the hops walked and
/// not listed. Nodes beyond the hop where the walk stopped were not looked at, so they are
/// not counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Omitted {
    /// Nodes left out.
    pub nodes: u64,
    /// Edges left out (each edge once, whatever its number of events).
    pub edges: u64,
    /// Nodes left out, by type.
    pub node_types: BTreeMap<String, u64>,
    /// Edges left out, by relation (`""` for links without one).
    pub relations: BTreeMap<String, u64>,
}

/// A resource: `(type, id)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeRef {
    /// `type` (`dataset`, `model`, …).
    pub r#type: String,
    /// `id`.
    pub id: String,
}

/// One resource of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineageNode {
    /// Which resource.
    pub node: NodeRef,
    /// Hops from the root (0 for the root).
    pub depth: u32,
    /// Number of events that name it, as their `resource` or in `related`.
    pub events: u64,
    /// Earliest `time` of those events (RFC 3339, UTC, milliseconds).
    pub first_seen: String,
    /// Latest `time` of those events.
    pub last_seen: String,
    /// Its versions named by those events (as `resource.version` or `related[].version`),
    /// in the order the log first recorded them, at most [`NODE_VERSIONS_MAX`].
    pub versions: Vec<String>,
}

/// Links with the same ends and relation, and the events that recorded them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineageEdge {
    /// The `resource` of the events.
    pub from: NodeRef,
    /// The `related` resource.
    pub to: NodeRef,
    /// The link's `relation`, if given.
    pub relation: Option<String>,
    /// Number of events that recorded the link.
    pub events: u64,
    /// The first [`EDGE_SEQS_MAX`] of them, in seq order.
    pub seqs: Vec<u64>,
    /// Earliest `time` of those events.
    pub first_seen: String,
    /// Latest `time` of those events.
    pub last_seen: String,
}

/// The graph around a root resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    /// Nodes, by depth, then type and id; the root first.
    pub nodes: Vec<LineageNode>,
    /// Edges, by from, to and relation.
    pub edges: Vec<LineageEdge>,
    /// Whether a cap ([`LINEAGE_NODES_MAX`], [`LINEAGE_EDGES_MAX`]) stopped the walk: what
    /// is listed is right, but more nodes and edges exist within the depth.
    pub truncated: bool,
    /// What the caps left out (all zero unless `truncated`).
    pub omitted: Omitted,
}

type EdgeKey = (NodeRef, NodeRef, Option<String>);

struct EdgeAgg {
    events: u64,
    seqs: Vec<u64>,
    last_seq: u64,
    first: i64,
    last: i64,
}

/// One link touching a node: (seq, time, from, to, relation).
type Link = (u64, i64, NodeRef, NodeRef, Option<String>);

/// Every link touching `n` within the scope, in seq order. A link from `n` to itself is
/// listed once.
fn links(
    conn: &Connection,
    n: &NodeRef,
    projects: Option<&[String]>,
) -> Result<Vec<Link>, QueryError> {
    let (scope, scope_params) = scope_sql(projects, "e.project", 3);
    // String columns hold ids (docs/index.md): parameters go through `id_of`, results
    // through `value_of`.
    let cols = format!(
        "r.seq, e.time, {}, {}, {}, {}, {}",
        value_of("e.resource_type"),
        value_of("e.resource_id"),
        value_of("r.type"),
        value_of("r.id"),
        value_of("r.relation")
    );
    let (t, i) = (id_of("?1"), id_of("?2"));
    let sql = format!(
        "SELECT {cols}
         FROM events e JOIN related r ON r.seq = e.seq
         WHERE e.resource_type = {t} AND e.resource_id = {i}{scope}
         UNION ALL
         SELECT {cols}
         FROM related r JOIN events e ON e.seq = r.seq
         WHERE r.type = {t} AND r.id = {i}
           AND e.resource_type IS NOT NULL AND e.resource_id IS NOT NULL
           AND NOT (e.resource_type = {t} AND e.resource_id = {i}){scope}
         ORDER BY 1"
    );
    let mut params = vec![Sql::Text(n.r#type.clone()), Sql::Text(n.id.clone())];
    params.extend(scope_params);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| {
        Ok((
            r.get::<_, i64>(0)? as u64,
            r.get::<_, i64>(1)?,
            NodeRef {
                r#type: r.get(2)?,
                id: r.get(3)?,
            },
            NodeRef {
                r#type: r.get(4)?,
                id: r.get(5)?,
            },
            r.get::<_, Option<String>>(6)?,
        ))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// What the index says of one node: events, first and last time, versions.
type NodeFacts = (u64, i64, i64, Vec<String>);

/// [`NodeFacts`] of one node within the scope; `None` when no event names it.
fn node_facts(
    conn: &Connection,
    n: &NodeRef,
    projects: Option<&[String]>,
) -> Result<Option<NodeFacts>, QueryError> {
    let (scope, scope_params) = scope_sql(projects, "e.project", 3);
    let mut params = vec![Sql::Text(n.r#type.clone()), Sql::Text(n.id.clone())];
    params.extend(scope_params);
    let (t, i) = (id_of("?1"), id_of("?2"));
    let (events, first, last): (i64, Option<i64>, Option<i64>) = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*), MIN(e.time), MAX(e.time) FROM events e
             WHERE e.seq IN (SELECT seq FROM events WHERE resource_type = {t} AND resource_id = {i}
                             UNION SELECT seq FROM related WHERE type = {t} AND id = {i}){scope}"
        ))?
        .query_row(rusqlite::params_from_iter(params.iter()), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} AS version FROM (
             SELECT e.resource_version AS v, e.seq AS seq FROM events e
             WHERE e.resource_type = {t} AND e.resource_id = {i}
               AND e.resource_version IS NOT NULL{scope}
             UNION ALL
             SELECT r.version AS v, r.seq AS seq FROM related r JOIN events e ON e.seq = r.seq
             WHERE r.type = {t} AND r.id = {i} AND r.version IS NOT NULL{scope})
         GROUP BY v ORDER BY MIN(seq), version LIMIT {NODE_VERSIONS_MAX}",
        value_of("v")
    ))?;
    let versions = stmt
        .query_map(rusqlite::params_from_iter(params.iter()), |r| {
            r.get::<_, String>(0)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((events as u64, first, last, versions)))
}

/// Edge aggregates of one hop, before the caps choose among them.
type LevelEdges = HashMap<EdgeKey, EdgeAgg>;

impl Omitted {
    fn edge(&mut self, relation: &Option<String>) {
        self.edges += 1;
        *self
            .relations
            .entry(relation.clone().unwrap_or_default())
            .or_default() += 1;
    }
}

impl Index {
    /// The graph of `related` links within `depth` hops of `(rtype, id)`, following links in
    /// both directions, over the events of a project scope (`None`: every event). `None`
    /// when no event in the scope names the root.
    ///
    /// Breadth first, one hop at a time: every node at fewer than `depth` hops is expanded
    /// with every link touching it that `filter` follows, so every edge listed has at least
    /// one end nearer than `depth`, and its counts cover all its events. Then the caps
    /// ([`LINEAGE_NODES_MAX`], [`LINEAGE_EDGES_MAX`]) choose: first the hop's edges between
    /// nodes already listed, then its new nodes in [`LINEAGE_TYPE_PRIORITY`] order, each
    /// with all its edges of the hop, or left out. Reaching a cap sets
    /// [`Lineage::truncated`], counts what was left out in [`Lineage::omitted`], and ends
    /// the walk after that hop.
    pub fn lineage(
        &self,
        rtype: &str,
        id: &str,
        depth: u32,
        projects: Option<&[String]>,
        filter: &LineageFilter,
    ) -> Result<Option<Lineage>, QueryError> {
        if depth > LINEAGE_DEPTH_MAX {
            return Err(QueryError::Invalid(format!(
                "depth {depth} is more than the most, {LINEAGE_DEPTH_MAX}"
            )));
        }
        let root = NodeRef {
            r#type: rtype.into(),
            id: id.into(),
        };
        self.with_reader(|conn| {
            let tx = conn.unchecked_transaction()?;
            if node_facts(&tx, &root, projects)?.is_none() {
                return Ok(None);
            }
            let mut depth_of: HashMap<NodeRef, u32> = HashMap::from([(root.clone(), 0)]);
            let mut expanded: HashSet<NodeRef> = HashSet::new();
            let mut edges: HashMap<EdgeKey, EdgeAgg> = HashMap::new();
            let mut omitted = Omitted::default();
            let mut truncated = false;
            let mut frontier = vec![root.clone()];
            for d in 0..depth {
                if frontier.is_empty() {
                    break;
                }
                let mut level: LevelEdges = HashMap::new();
                for n in &frontier {
                    for (seq, time, from, to, relation) in links(&tx, n, projects)? {
                        let other = if from == *n { &to } else { &from };
                        if !filter.follows(other, relation.as_deref()) {
                            continue;
                        }
                        // Every link of an expanded node was counted when it was expanded.
                        if other != n && expanded.contains(other) {
                            continue;
                        }
                        let key = (from, to, relation);
                        match level.get_mut(&key) {
                            Some(agg) => {
                                if agg.last_seq != seq {
                                    agg.events += 1;
                                    if agg.seqs.len() < EDGE_SEQS_MAX {
                                        agg.seqs.push(seq);
                                    }
                                    agg.last_seq = seq;
                                    agg.first = agg.first.min(time);
                                    agg.last = agg.last.max(time);
                                }
                            }
                            None => {
                                level.insert(
                                    key,
                                    EdgeAgg {
                                        events: 1,
                                        seqs: vec![seq],
                                        last_seq: seq,
                                        first: time,
                                        last: time,
                                    },
                                );
                            }
                        }
                    }
                    expanded.insert(n.clone());
                }
                // Every edge of the hop touches an expanded node, which is listed; its other
                // end is listed already, or new.
                let mut known: Vec<(EdgeKey, EdgeAgg)> = Vec::new();
                let mut new: HashMap<NodeRef, Vec<(EdgeKey, EdgeAgg)>> = HashMap::new();
                for (key, agg) in level {
                    let end = [&key.0, &key.1]
                        .into_iter()
                        .find(|e| !depth_of.contains_key(*e))
                        .cloned();
                    match end {
                        None => known.push((key, agg)),
                        Some(end) => new.entry(end).or_default().push((key, agg)),
                    }
                }
                known.sort_by(|a, b| {
                    let rank = |k: &EdgeKey| type_rank(&k.0.r#type).max(type_rank(&k.1.r#type));
                    (rank(&a.0), Reverse(a.1.events), &a.0).cmp(&(
                        rank(&b.0),
                        Reverse(b.1.events),
                        &b.0,
                    ))
                });
                for (key, agg) in known {
                    if edges.len() < LINEAGE_EDGES_MAX {
                        edges.insert(key, agg);
                    } else {
                        truncated = true;
                        omitted.edge(&key.2);
                    }
                }
                let mut new: Vec<(NodeRef, Vec<(EdgeKey, EdgeAgg)>)> = new.into_iter().collect();
                let weight =
                    |es: &[(EdgeKey, EdgeAgg)]| es.iter().map(|(_, a)| a.events).sum::<u64>();
                new.sort_by(|a, b| {
                    (type_rank(&a.0.r#type), Reverse(weight(&a.1)), &a.0).cmp(&(
                        type_rank(&b.0.r#type),
                        Reverse(weight(&b.1)),
                        &b.0,
                    ))
                });
                let mut next = Vec::new();
                for (node, node_edges) in new {
                    if depth_of.len() < LINEAGE_NODES_MAX
                        && edges.len() + node_edges.len() <= LINEAGE_EDGES_MAX
                    {
                        depth_of.insert(node.clone(), d + 1);
                        next.push(node);
                        edges.extend(node_edges);
                    } else {
                        truncated = true;
                        omitted.nodes += 1;
                        *omitted.node_types.entry(node.r#type.clone()).or_default() += 1;
                        for (key, _) in &node_edges {
                            omitted.edge(&key.2);
                        }
                    }
                }
                if truncated {
                    break;
                }
                // Expanded in the order they were taken: the same answer every time.
                frontier = next;
            }
            let mut nodes = Vec::with_capacity(depth_of.len());
            for (node, depth) in depth_of {
                let (events, first, last, versions) = node_facts(&tx, &node, projects)?
                    .ok_or_else(|| {
                        QueryError::Storage(format!(
                            "node {}:{} has no event",
                            node.r#type, node.id
                        ))
                    })?;
                nodes.push(LineageNode {
                    node,
                    depth,
                    events,
                    first_seen: rfc3339(first),
                    last_seen: rfc3339(last),
                    versions,
                });
            }
            tx.finish()?;
            nodes.sort_by(|a, b| (a.depth, &a.node).cmp(&(b.depth, &b.node)));
            let mut edges: Vec<LineageEdge> = edges
                .into_iter()
                .map(|((from, to, relation), a)| LineageEdge {
                    from,
                    to,
                    relation,
                    events: a.events,
                    seqs: a.seqs,
                    first_seen: rfc3339(a.first),
                    last_seen: rfc3339(a.last),
                })
                .collect();
            edges.sort_by(|a, b| (&a.from, &a.to, &a.relation).cmp(&(&b.from, &b.to, &b.relation)));
            Ok(Some(Lineage {
                nodes,
                edges,
                truncated,
                omitted,
            }))
        })
    }
}
