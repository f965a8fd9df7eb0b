//! A seeded generator of realistic ML-platform audit events, in wire format v1.
//!
//! The mix follows what an ML platform emits: most events are dataset reads by training jobs
//! and people, then model development, evaluations, deployments, account and permission
//! changes, and a trickle of failures and denied accesses. The same count, seed and options
//! always give the same bytes (a ChaCha8 stream), so benchmark figures and test answers can
//! be compared across runs and machines. It is what `mlaudit demo events`, the tests and the
//! benchmarks use; it replaces the Python generator the design notes came with.
//!
//! Deliberately absent: no I/O beyond the writer it is given, no knowledge of validation,
//! storage or HTTP. Tests that need reference answers compute them from the events.
#![warn(missing_docs)]

use std::io::{self, Write};

use chrono::{DateTime, Duration, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

/// The seed used when none is given.
pub const SEED_DEFAULT: u64 = 405;

const ROLES: [&str; 5] = [
    "data-scientist",
    "ml-engineer",
    "analyst",
    "admin",
    "auditor",
];
const ENVS: [&str; 3] = ["dev", "staging", "prod"];
/// The projects (`context.project`) events belong to.
pub const PROJECTS: [&str; 8] = [
    "fraud",
    "churn",
    "search-ranking",
    "credit-risk",
    "recsys",
    "forecast",
    "vision-qc",
    "support-bot",
];
const ALGOS: [&str; 7] = [
    "xgboost",
    "lightgbm",
    "logreg",
    "resnet50",
    "bert-base",
    "gru",
    "random-forest",
];
const FORMATS: [&str; 5] = ["parquet", "csv", "tfrecord", "delta", "jsonl"];
/// Actions and their relative frequency.
const MIX: [(&str, f64); 26] = [
    ("dataset.read", 52.0),
    ("dataset.use", 10.0),
    ("dataset.create", 2.0),
    ("dataset.update", 3.0),
    ("dataset.delete", 0.5),
    ("dataset.export", 0.5),
    ("dataset.share", 0.3),
    ("model.train", 5.0),
    ("model.update", 3.0),
    ("model.register", 1.0),
    ("model.delete", 0.2),
    ("evaluation.record", 5.0),
    ("evaluation.approve", 0.5),
    ("deployment.deploy", 1.0),
    ("deployment.test", 1.0),
    ("deployment.rollback", 0.2),
    ("deployment.update", 0.5),
    ("deployment.predict", 8.0),
    ("user.login", 2.0),
    ("user.create", 0.1),
    ("user.delete", 0.05),
    ("permission.grant", 0.3),
    ("permission.revoke", 0.2),
    ("job.start", 2.0),
    ("job.finish", 1.8),
    ("job.fail", 0.2),
];

/// The deployment actions that change what a deployment serves (those of
/// `index::DEPLOYMENT_ACTIONS` the mix has); the others (predict, test) name what it serves.
const SETS_SERVED: [&str; 3] = [
    "deployment.deploy",
    "deployment.update",
    "deployment.rollback",
];

/// What to generate besides the count.
#[derive(Debug, Clone)]
pub struct Options {
    /// The seed of the stream.
    pub seed: u64,
    /// The time of the first event.
    pub start: DateTime<Utc>,
    /// The span the events are spread over, evenly (plus up to 900 ms of jitter each).
    pub days: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: SEED_DEFAULT,
            start: "2026-01-01T00:00:00Z".parse().expect("a valid time"),
            days: 30.0,
        }
    }
}

/// The population events draw from: people, services, datasets, models, deployments.
struct World {
    users: Vec<String>,
    services: Vec<String>,
    /// (id, holds personal data)
    datasets: Vec<(String, bool)>,
    models: Vec<String>,
    deployments: Vec<String>,
    cumulative: Vec<f64>,
}

impl World {
    fn new(rng: &mut ChaCha8Rng) -> World {
        let models: Vec<String> = PROJECTS
            .iter()
            .flat_map(|p| (0..60).map(move |i| format!("model-{p}-{i:03}")))
            .collect();
        let mut total = 0.0;
        World {
            users: (0..1000)
                .map(|i| format!("user{i:04}@example.com"))
                .collect(),
            services: PROJECTS
                .iter()
                .flat_map(|p| {
                    ["trainer", "pipeline", "server"]
                        .into_iter()
                        .map(move |k| format!("svc-{p}-{k}"))
                })
                .collect(),
            datasets: (0..5000)
                .map(|i| (format!("ds-{i:05}"), rng.gen_bool(0.12)))
                .collect(),
            deployments: models
                .iter()
                .step_by(3)
                .map(|m| format!("dep-{m}"))
                .collect(),
            models,
            cumulative: MIX
                .iter()
                .map(|(_, w)| {
                    total += w;
                    total
                })
                .collect(),
        }
    }

    fn action(&self, rng: &mut ChaCha8Rng) -> &'static str {
        let x = rng.gen::<f64>() * self.cumulative[self.cumulative.len() - 1];
        let i = self.cumulative.partition_point(|&c| c <= x);
        MIX[i.min(MIX.len() - 1)].0
    }
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    items.choose(rng).expect("a non-empty list")
}

/// The generator: an iterator over `n` events as JSON values.
pub struct Events {
    rng: ChaCha8Rng,
    world: World,
    opts: Options,
    step_us: f64,
    i: u64,
    n: u64,
    /// The model version each deployment serves: set by a successful deploy, update,
    /// rollback or promote, and named by its predictions and tests, so that the stream
    /// agrees with itself (what `deployment-state` answers at a prediction's time is the
    /// version the prediction names). A deployment not deployed yet in the stream serves
    /// the version its first event names, deployed before the stream started.
    served: std::collections::HashMap<String, String>,
}

/// `n` events generated with `opts`.
pub fn events(n: u64, opts: &Options) -> Events {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let world = World::new(&mut rng);
    Events {
        rng,
        world,
        step_us: opts.days * 86_400e6 / n.max(1) as f64,
        opts: opts.clone(),
        i: 0,
        n,
        served: std::collections::HashMap::new(),
    }
}

/// Writes `n` events as NDJSON (one compact JSON object per line) to `out`.
pub fn write_ndjson(out: &mut impl Write, n: u64, opts: &Options) -> io::Result<()> {
    for ev in events(n, opts) {
        serde_json::to_writer(&mut *out, &ev)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// `n` events as one NDJSON string.
pub fn ndjson(n: u64, opts: &Options) -> String {
    let mut out = Vec::new();
    write_ndjson(&mut out, n, opts).expect("writing to memory");
    String::from_utf8(out).expect("JSON is UTF-8")
}

impl Iterator for Events {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        if self.i >= self.n {
            return None;
        }
        let i = self.i;
        self.i += 1;
        Some(self.event(i))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.n - self.i) as usize;
        (left, Some(left))
    }
}

impl Events {
    fn event(&mut self, i: u64) -> Value {
        let rng = &mut self.rng;
        let w = &self.world;
        let action = w.action(rng);
        let rtype = action.split('.').next().unwrap_or(action);
        let t = self.opts.start
            + Duration::microseconds((self.step_us * i as f64) as i64)
            + Duration::milliseconds(rng.gen_range(0..=900));
        let human = rng.gen_bool(0.45) || rtype == "user" || rtype == "permission";
        let actor = if human {
            json!({
                "id": pick(rng, &w.users),
                "type": "user",
                "ip": format!("10.{}.{}.{}", rng.gen_range(0..=255), rng.gen_range(0..=255),
                              rng.gen_range(1..=254)),
                "roles": [pick(rng, &ROLES)],
            })
        } else {
            json!({"id": pick(rng, &w.services), "type": "service"})
        };
        let project = *pick(rng, &PROJECTS);
        let mut ev = Map::new();
        ev.insert("id".into(), json!(format!("{:x}-{i:012}", self.opts.seed)));
        ev.insert(
            "time".into(),
            json!(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
        );
        ev.insert("action".into(), json!(action));
        ev.insert("outcome".into(), json!("success"));
        ev.insert("actor".into(), actor);
        let mut params = Value::Null;
        let mut related = Value::Null;
        let mut metrics = Value::Null;
        // (deployment, version) of a deployment event that, if it succeeds, changes what
        // the deployment serves.
        let mut sets_served: Option<(String, String)> = None;
        match rtype {
            "dataset" => {
                let (ds, pii) = pick(rng, &w.datasets).clone();
                let mut tags = if pii { vec!["pii"] } else { vec![] };
                tags.push(*pick(rng, &FORMATS));
                ev.insert(
                    "resource".into(),
                    json!({"type": "dataset", "id": ds,
                           "version": format!("v{}", rng.gen_range(1..=9)), "tags": tags}),
                );
                params = match action {
                    "dataset.read" | "dataset.export" => json!({
                        "rows": rng.gen_range(1..=5_000_000),
                        "columns": rng.gen_range(1..=80),
                        "query": format!("SELECT * FROM {ds} WHERE day >= '2026-0{}-01'",
                                         rng.gen_range(1..=9)),
                    }),
                    "dataset.use" => {
                        related = json!([{"type": "model", "id": pick(rng, &w.models),
                                          "relation": "training_input"}]);
                        json!({"split": pick(rng, &["train", "validation", "test"]),
                               "rows": rng.gen_range(1000..=50_000_000)})
                    }
                    "dataset.update" | "dataset.create" => json!({
                        "format": pick(rng, &FORMATS),
                        "bytes": rng.gen_range(10_000u64..=100_000_000_000),
                        "schema_change": rng.gen_bool(0.1),
                    }),
                    "dataset.share" => json!({"with": pick(rng, &w.users),
                                              "access": pick(rng, &["read", "write"])}),
                    _ => Value::Null,
                };
            }
            "model" => {
                let m = pick(rng, &w.models);
                ev.insert(
                    "resource".into(),
                    json!({"type": "model", "id": m,
                           "version": rng.gen_range(1..=40).to_string()}),
                );
                if action == "model.train" || action == "model.update" {
                    let lr = (rng.gen_range(1e-4..0.3f64) * 1e5).round() / 1e5;
                    params = json!({
                        "algorithm": pick(rng, &ALGOS),
                        "hyperparameters": {
                            "learning_rate": lr,
                            "max_depth": rng.gen_range(2..=12),
                            "n_estimators": rng.gen_range(50..=2000),
                            "batch_size": pick(rng, &[32, 64, 128, 256]),
                        },
                    });
                    if action == "model.update" {
                        let k = rng.gen_range(1..=2);
                        let changed: Vec<&str> = [
                            "architecture",
                            "hyperparameters",
                            "algorithm",
                            "training_data",
                        ]
                        .choose_multiple(rng, k)
                        .copied()
                        .collect();
                        params["changed"] = json!(changed);
                    }
                    related = json!([{"type": "dataset", "id": pick(rng, &w.datasets).0,
                                      "relation": "training_data"}]);
                }
            }
            "evaluation" => {
                let m = pick(rng, &w.models);
                ev.insert(
                    "resource".into(),
                    json!({"type": "model", "id": m,
                           "version": rng.gen_range(1..=40).to_string()}),
                );
                let mut r4 = |lo: f64, hi: f64| (rng.gen_range(lo..hi) * 1e4).round() / 1e4;
                metrics = json!({
                    "accuracy": r4(0.6, 0.99),
                    "auc": r4(0.6, 0.99),
                    "f1": r4(0.5, 0.95),
                    "fairness.demographic_parity_diff": r4(0.0, 0.2),
                });
                related = json!([{"type": "dataset", "id": pick(rng, &w.datasets).0,
                                  "relation": "evaluation_data"}]);
            }
            "deployment" => {
                let d = pick(rng, &w.deployments);
                ev.insert("resource".into(), json!({"type": "deployment", "id": d}));
                // Drawn for every deployment event, so the rest of the stream is the same
                // whatever the deployments serve.
                let drawn = rng.gen_range(1..=40).to_string();
                let version = if SETS_SERVED.contains(&action) {
                    sets_served = Some((d.clone(), drawn.clone()));
                    drawn
                } else {
                    self.served.entry(d.clone()).or_insert(drawn).clone()
                };
                related = json!([{"type": "model", "id": &d[4..],
                                  "version": version,
                                  "relation": "serves"}]);
                params = if action == "deployment.predict" {
                    json!({"requests": rng.gen_range(1..=10_000),
                           "latency_ms_p99": rng.gen_range(5..=400)})
                } else {
                    json!({"environment": pick(rng, &ENVS), "replicas": rng.gen_range(1..=20)})
                };
            }
            "user" | "permission" => {
                let target = pick(rng, &w.users);
                ev.insert("resource".into(), json!({"type": "user", "id": target}));
                if rtype == "permission" {
                    params = json!({"role": pick(rng, &ROLES),
                                    "scope": format!("project:{project}")});
                }
            }
            _ => {
                ev.insert(
                    "resource".into(),
                    json!({"type": "job", "id": format!("job-{}", rng.gen_range(1..=10_000_000))}),
                );
                params = json!({
                    "kind": pick(rng, &["training", "batch-inference", "etl", "evaluation"]),
                    "gpus": pick(rng, &[0, 1, 2, 4, 8]),
                });
            }
        }
        let r: f64 = rng.gen();
        if r < 0.01 {
            ev.insert("outcome".into(), json!("denied"));
            ev.insert("reason".into(), json!("missing permission"));
        } else if r < 0.03 {
            ev.insert("outcome".into(), json!("failure"));
            ev.insert(
                "reason".into(),
                json!(pick(rng, &["timeout", "quota exceeded", "schema mismatch"])),
            );
        }
        if let Some((d, v)) = sets_served {
            if ev["outcome"] == "success" {
                self.served.insert(d, v);
            }
        }
        if !params.is_null() {
            ev.insert("parameters".into(), params);
        }
        if !metrics.is_null() {
            ev.insert("metrics".into(), metrics);
        }
        if !related.is_null() {
            ev.insert("related".into(), related);
        }
        ev.insert(
            "context".into(),
            json!({"project": project, "environment": pick(rng, &ENVS),
                   "request_id": format!("{:016x}", rng.gen::<u64>())}),
        );
        Value::Object(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_another_seed_others() {
        let o = Options::default();
        let a = ndjson(500, &o);
        assert_eq!(a, ndjson(500, &o));
        assert_ne!(
            a,
            ndjson(
                500,
                &Options {
                    seed: 7,
                    ..o.clone()
                }
            )
        );
        assert_eq!(a.lines().count(), 500);
        let first: Value = serde_json::from_str(a.lines().next().unwrap()).unwrap();
        assert_eq!(first["id"], "195-000000000000");
        assert!(first["time"]
            .as_str()
            .unwrap()
            .starts_with("2026-01-01T00:00:00."));
    }

    #[test]
    fn the_mix_looks_like_a_platform() {
        let evs: Vec<Value> = events(20_000, &Options::default()).collect();
        let share =
            |a: &str| evs.iter().filter(|e| e["action"] == a).count() as f64 / evs.len() as f64;
        // dataset.read is 52 of 101.95 weight units: about 51 %.
        assert!(
            (0.48..0.54).contains(&share("dataset.read")),
            "{}",
            share("dataset.read")
        );
        assert!((0.06..0.10).contains(&share("deployment.predict")));
        assert!(share("user.delete") < 0.003);
        let denied = evs.iter().filter(|e| e["outcome"] == "denied").count();
        assert!((100..300).contains(&denied), "{denied}");
        // Training links datasets to models; deployments serve models.
        assert!(evs
            .iter()
            .any(|e| e["related"][0]["relation"] == "training_data"));
        assert!(
            evs.iter()
                .all(|e| e["action"] != "deployment.deploy"
                    || e["related"][0]["relation"] == "serves")
        );
        // Predictions and tests name the version the last successful deploy, update or
        // rollback set (issue 11.5: they named a random one, so lineage's `serves` links
        // and deployment-state disagreed).
        let mut served: HashMap<&str, &str> = HashMap::new();
        let mut checked = 0;
        for e in &evs {
            if e["resource"]["type"] != "deployment" {
                continue;
            }
            let d = e["resource"]["id"].as_str().unwrap();
            let v = e["related"][0]["version"].as_str().unwrap();
            if SETS_SERVED.contains(&e["action"].as_str().unwrap()) {
                if e["outcome"] == "success" {
                    served.insert(d, v);
                }
            } else if let Some(s) = served.get(d) {
                assert_eq!(*s, v, "{e}");
                checked += 1;
            }
        }
        assert!(checked > 100, "{checked}");
        let last = evs.last().unwrap()["time"].as_str().unwrap().to_string();
        assert!(
            last.starts_with("2026-01-30") || last.starts_with("2026-01-31"),
            "{last}"
        );
    }
}
