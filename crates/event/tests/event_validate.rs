//! Validation and normalization of events: `Event::parse` and `parse_events`.

use chrono::{DateTime, Utc};
use event::{
    parse_events, split_body_items, BodyFormat, Category, Event, FieldError, DEPTH_MAX,
    FIELD_ERRORS_MAX, ID_CHARS_MAX, TOP_LEVEL_FIELDS,
};
use serde_json::{json, Value};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00.25Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn parse(value: Value) -> Result<Event, Vec<FieldError>> {
    Event::parse(value, now(), false)
}

fn minimal() -> Value {
    json!({"action": "model.update", "actor": {"id": "alice@example.com"}})
}

/// `minimal()` with `patch` merged in at the top level.
fn with(patch: Value) -> Value {
    let mut event = minimal();
    let (Value::Object(event_map), Value::Object(patch)) = (&mut event, patch) else {
        unreachable!()
    };
    event_map.extend(patch);
    event
}

/// Parses an event that must fail, with exactly one error, on `field`; returns its message.
fn single_error(value: Value, field: &str) -> String {
    let errors = parse(value).expect_err("event should be refused");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].field, field, "{errors:#?}");
    assert_eq!(errors[0].index, 0);
    errors[0].message.clone()
}

fn action_error(action: &str) -> String {
    single_error(with(json!({"action": action})), "action")
}

// --- happy paths -------------------------------------------------------------------------

#[test]
fn defaults_are_filled_in() {
    let event = parse(minimal()).unwrap();
    assert_eq!(event.as_value()["outcome"], "success");
    assert_eq!(event.time(), "2026-03-01T12:00:00.250Z");
    assert_eq!(event.action(), "model.update");
    assert_eq!(event.id(), None);
    assert_eq!(event.category(), Category::ModelDevelopment);
}

#[test]
fn time_with_offset_is_normalized_to_utc() {
    let event = parse(with(json!({"time": "2026-03-01T14:30:00.123+02:00"}))).unwrap();
    assert_eq!(event.time(), "2026-03-01T12:30:00.123Z");
}

#[test]
fn time_without_fraction_gets_milliseconds() {
    let event = parse(with(json!({"time": "2025-12-31T19:00:00-05:00"}))).unwrap();
    assert_eq!(event.time(), "2026-01-01T00:00:00.000Z");
}

#[test]
fn time_keeps_sub_millisecond_digits() {
    let event = parse(with(json!({"time": "2026-03-01T12:00:00.123456Z"}))).unwrap();
    assert_eq!(event.time(), "2026-03-01T12:00:00.123456Z");
}

#[test]
fn design_example_validates_unchanged() {
    let example = json!({
        "id": "req-7f3a",
        "time": "2026-03-01T12:00:00.123Z",
        "action": "model.update",
        "outcome": "success",
        "actor": {"id": "alice@example.com", "type": "user", "ip": "10.1.2.3",
                  "user_agent": "mlflow-client/2.14", "roles": ["data-scientist"], "session": "s-1"},
        "resource": {"type": "model", "id": "churn", "version": "7", "name": "Churn classifier",
                     "tags": ["pii", "tier-1"]},
        "related": [{"type": "dataset", "id": "customers", "version": "v3", "relation": "training_data"}],
        "parameters": {"changed": ["hyperparameters"], "hyperparameters": {"learning_rate": 0.01}},
        "metrics": {"accuracy": 0.93, "fairness.demographic_parity_diff": 0.04},
        "context": {"project": "churn", "environment": "prod", "request_id": "r-1", "job_id": "j-1",
                    "source": "mlflow", "sequence": 1234},
        "reason": "retrained on fresh data"
    });
    let event = parse(example.clone()).unwrap();
    assert_eq!(
        event.as_value(),
        &example,
        "already normalized, so nothing changes"
    );
    assert_eq!(event.id(), Some("req-7f3a"));
    assert_eq!(event.into_value(), example);
}

#[test]
fn id_of_128_multibyte_characters_is_accepted() {
    parse(with(json!({"id": "é".repeat(ID_CHARS_MAX)}))).unwrap();
}

#[test]
fn categories_follow_the_namespace() {
    for (action, category) in [
        ("dataset.read", "data_access"),
        ("deployment.rollback", "deployment"),
        ("evaluation.record", "evaluation"),
        ("permission.grant", "user_action"),
        ("feature_store.materialize", "custom"),
    ] {
        let event = parse(with(json!({"action": action}))).unwrap();
        assert_eq!(event.category().as_str(), category);
    }
}

#[test]
fn audit_action_is_accepted_with_allow_reserved() {
    let event = Event::parse(with(json!({"action": "audit.query"})), now(), true).unwrap();
    assert_eq!(event.category(), Category::System);
}

#[test]
fn integers_up_to_2_pow_53_are_accepted() {
    parse(with(json!({"parameters": {"rows": 9_007_199_254_740_992_u64, "neg": -9_007_199_254_740_992_i64}})))
        .unwrap();
}

#[test]
fn nesting_up_to_the_limit_is_accepted() {
    parse(with(json!({"parameters": nested(DEPTH_MAX - 1)}))).unwrap();
}

// --- bad input: one test per case ------------------------------------------------------------

#[test]
fn event_that_is_not_an_object() {
    let message = single_error(json!(["model.update"]), "");
    assert!(
        message.contains("must be a JSON object, got an array"),
        "{message}"
    );
}

#[test]
fn missing_action() {
    let mut event = minimal();
    event.as_object_mut().unwrap().remove("action");
    assert_eq!(single_error(event, "action"), "is required");
}

#[test]
fn missing_actor_id() {
    assert_eq!(
        single_error(with(json!({"actor": {"type": "user"}})), "actor.id"),
        "is required"
    );
}

#[test]
fn missing_actor() {
    let mut event = minimal();
    event.as_object_mut().unwrap().remove("actor");
    assert_eq!(single_error(event, "actor.id"), "is required");
}

#[test]
fn empty_actor_id() {
    assert_eq!(
        single_error(with(json!({"actor": {"id": ""}})), "actor.id"),
        "must not be empty"
    );
}

#[test]
fn actor_id_number_is_a_wrong_type() {
    assert_eq!(
        single_error(with(json!({"actor": {"id": 42}})), "actor.id"),
        "must be a string, got a number"
    );
}

#[test]
fn actor_that_is_a_string_is_a_wrong_type() {
    assert_eq!(
        single_error(with(json!({"actor": "alice"})), "actor"),
        "must be an object, got a string"
    );
}

#[test]
fn roles_with_a_non_string() {
    let message = single_error(
        with(json!({"actor": {"id": "a", "roles": ["admin", 7]}})),
        "actor.roles[1]",
    );
    assert_eq!(message, "must be a string, got a number");
}

#[test]
fn unknown_actor_field() {
    let message = single_error(
        with(json!({"actor": {"id": "a", "email": "a@example.com"}})),
        "actor.email",
    );
    assert!(
        message.contains("id, ip, roles, session, type, user_agent"),
        "{message}"
    );
}

#[test]
fn metrics_that_is_a_string() {
    assert_eq!(
        single_error(with(json!({"metrics": "accuracy=0.9"})), "metrics"),
        "must be an object of numbers, got a string"
    );
}

#[test]
fn non_numeric_metric() {
    assert_eq!(
        single_error(
            with(json!({"metrics": {"accuracy": "0.93"}})),
            "metrics.accuracy"
        ),
        "must be a number, got a string"
    );
}

#[test]
fn non_numeric_metric_with_a_dotted_name() {
    single_error(
        with(json!({"metrics": {"fairness.dp_diff": null}})),
        r#"metrics["fairness.dp_diff"]"#,
    );
}

#[test]
fn tags_that_are_not_an_array() {
    assert_eq!(
        single_error(
            with(json!({"resource": {"type": "dataset", "id": "d", "tags": "pii"}})),
            "resource.tags"
        ),
        "must be an array of strings, got a string"
    );
}

#[test]
fn resource_version_number_is_a_wrong_type() {
    single_error(
        with(json!({"resource": {"type": "model", "id": "m", "version": 7}})),
        "resource.version",
    );
}

#[test]
fn related_item_without_id() {
    let related = json!([
        {"type": "dataset", "id": "a"},
        {"type": "dataset", "id": "b"},
        {"type": "dataset", "relation": "training_data"}
    ]);
    assert_eq!(
        single_error(with(json!({"related": related})), "related[2].id"),
        "is required"
    );
}

#[test]
fn related_that_is_an_object() {
    single_error(
        with(json!({"related": {"type": "dataset", "id": "a"}})),
        "related",
    );
}

#[test]
fn related_item_that_is_a_string() {
    single_error(with(json!({"related": ["dataset:a"]})), "related[0]");
}

#[test]
fn parameters_that_is_an_array() {
    single_error(with(json!({"parameters": [1, 2]})), "parameters");
}

#[test]
fn context_sequence_that_is_a_string() {
    single_error(
        with(json!({"context": {"sequence": "12"}})),
        "context.sequence",
    );
}

#[test]
fn context_project_that_is_a_number() {
    single_error(with(json!({"context": {"project": 7}})), "context.project");
}

#[test]
fn reason_that_is_an_object() {
    single_error(with(json!({"reason": {"text": "x"}})), "reason");
}

#[test]
fn action_without_a_dot() {
    let message = action_error("update");
    assert!(message.contains("\"update\" has no namespace"), "{message}");
    assert!(message.contains("<namespace>.<verb>"), "{message}");
}

#[test]
fn action_with_uppercase() {
    let message = action_error("Model.update");
    assert!(
        message.contains("does not start with a lowercase letter"),
        "{message}"
    );
    let message = action_error("model.Update");
    assert!(message.contains("\"Update\""), "{message}");
    let message = action_error("model.upDate");
    assert!(
        message.contains("may hold only a-z, 0-9 and _"),
        "{message}"
    );
}

#[test]
fn action_with_a_trailing_dot() {
    assert!(action_error("model.update.").contains("empty segment"));
}

#[test]
fn action_with_an_empty_segment() {
    assert!(action_error("model..update").contains("empty segment"));
    assert!(action_error(".update").contains("empty segment"));
}

#[test]
fn action_segment_starting_with_a_digit() {
    assert!(action_error("model.2update")
        .contains("\"2update\" does not start with a lowercase letter"));
}

#[test]
fn action_with_a_hyphen() {
    assert!(action_error("feature-store.read").contains("may hold only"));
}

#[test]
fn action_that_is_too_long() {
    let action = format!("model.{}", "x".repeat(200));
    assert!(action_error(&action).contains("longer than 128 bytes"));
}

#[test]
fn action_that_is_a_number() {
    assert_eq!(action_error_of(json!(7)), "must be a string, got a number");
}

fn action_error_of(action: Value) -> String {
    single_error(with(json!({"action": action})), "action")
}

#[test]
fn audit_action_is_refused_from_producers() {
    let message = action_error("audit.erase");
    assert!(message.contains("reserved"), "{message}");
}

#[test]
fn unknown_outcome() {
    assert_eq!(
        single_error(with(json!({"outcome": "ok"})), "outcome"),
        "must be one of success, failure, denied, got \"ok\""
    );
}

#[test]
fn time_yesterday() {
    let message = single_error(with(json!({"time": "yesterday"})), "time");
    assert!(
        message.starts_with("\"yesterday\" is not an RFC 3339 date-time"),
        "{message}"
    );
}

#[test]
fn time_with_month_13() {
    let message = single_error(with(json!({"time": "2026-13-01T00:00:00Z"})), "time");
    assert!(message.contains("out of range"), "{message}");
}

#[test]
fn time_without_offset() {
    single_error(with(json!({"time": "2026-03-01T12:00:00"})), "time");
}

#[test]
fn time_as_unix_seconds() {
    single_error(with(json!({"time": 1_772_366_400})), "time");
}

#[test]
fn empty_id() {
    single_error(with(json!({"id": ""})), "id");
}

#[test]
fn id_longer_than_128_characters() {
    let message = single_error(with(json!({"id": "é".repeat(ID_CHARS_MAX + 1)})), "id");
    assert_eq!(message, "is longer than 128 characters");
}

#[test]
fn unknown_top_level_field() {
    let message = single_error(with(json!({"actr": {"id": "x"}})), "actr");
    assert!(message.starts_with("unknown field"), "{message}");
    assert!(message.contains(&TOP_LEVEL_FIELDS.join(", ")), "{message}");
}

#[test]
fn null_is_not_an_absent_field() {
    assert_eq!(
        single_error(with(json!({"reason": null})), "reason"),
        "must be a string, got null"
    );
}

#[test]
fn integer_beyond_2_pow_53_would_change_when_stored() {
    let message = single_error(
        with(json!({"parameters": {"ids": [1, 9_007_199_254_740_993_u64]}})),
        "parameters.ids[1]",
    );
    assert!(message.contains("send it as a string"), "{message}");
}

#[test]
fn nesting_33_levels_in_parameters() {
    let message = single_error(
        with(json!({"parameters": nested(33)})),
        &deep_path(DEPTH_MAX - 1),
    );
    assert!(message.contains("deeper than 32 levels"), "{message}");
}

/// `levels` nested objects: `{"a":{"a":…{}…}}`.
fn nested(levels: usize) -> Value {
    (1..levels).fold(json!({}), |inner, _| json!({ "a": inner }))
}

/// Path of the container at event level `DEPTH_MAX + 1` inside `parameters`.
fn deep_path(a_count: usize) -> String {
    format!("parameters{}", ".a".repeat(a_count))
}

#[test]
fn all_errors_of_an_event_are_reported() {
    let errors = parse(json!({
        "action": "Bad",
        "actor": {"id": 1},
        "outcome": "maybe",
        "time": "noon",
        "metrics": {"x": "y"},
        "extra": true
    }))
    .unwrap_err();
    let mut fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "action",
            "actor.id",
            "extra",
            "metrics.x",
            "outcome",
            "time"
        ]
    );
}

#[test]
fn errors_of_one_event_are_capped() {
    let metrics: serde_json::Map<String, Value> =
        (0..100).map(|i| (format!("m{i:03}"), json!("x"))).collect();
    let errors = parse(with(json!({ "metrics": metrics }))).unwrap_err();
    assert_eq!(errors.len(), FIELD_ERRORS_MAX + 1);
    assert_eq!(errors[FIELD_ERRORS_MAX].field, "");
    assert!(errors[FIELD_ERRORS_MAX].message.contains("not listed"));
}

#[test]
fn field_error_serializes_as_an_api_detail() {
    let error = FieldError {
        index: 3,
        field: "action".into(),
        message: "is required".into(),
    };
    assert_eq!(
        serde_json::to_value(&error).unwrap(),
        json!({"index": 3, "field": "action", "message": "is required"})
    );
}

// --- batches -------------------------------------------------------------------------------

#[test]
fn batch_errors_carry_the_item_index() {
    let body = r#"[{"action":"model.update","actor":{"id":"a"}},
                   {"action":"model","actor":{"id":"a"}},
                   {"action":"model.update"}]"#;
    let items = split_body_items(body.as_bytes(), BodyFormat::Json, 10).unwrap();
    let errors = parse_events(items, now(), false).unwrap_err();
    let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.index, e.field.as_str())).collect();
    assert_eq!(got, [(1, "action"), (2, "actor.id")]);
}

#[test]
fn ndjson_field_errors_name_the_line() {
    let body =
        "{\"action\":\"model.update\",\"actor\":{\"id\":\"a\"}}\n\n{\"action\":\"model.update\"}\n";
    let items = split_body_items(body.as_bytes(), BodyFormat::Ndjson, 10).unwrap();
    let errors = parse_events(items, now(), false).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].index, errors[0].field.as_str()), (1, "actor.id"));
    assert_eq!(errors[0].message, "line 3: is required");
}

#[test]
fn valid_batch_keeps_order() {
    let body = "{\"action\":\"a.one\",\"actor\":{\"id\":\"a\"}}\n{\"action\":\"a.two\",\"actor\":{\"id\":\"a\"}}";
    let items = split_body_items(body.as_bytes(), BodyFormat::Ndjson, 10).unwrap();
    let events = parse_events(items, now(), false).unwrap();
    let actions: Vec<&str> = events.iter().map(Event::action).collect();
    assert_eq!(actions, ["a.one", "a.two"]);
}

// --- transforms ----------------------------------------------------------------------------

#[test]
fn transform_can_replace_values_and_add_sealed() {
    let mut event = parse(minimal()).unwrap();
    event.transform(|map| {
        map["actor"]["id"] = json!("hmac:abc");
        map.insert("sealed".into(), json!({"k1": "ciphertext"}));
    });
    assert_eq!(event.as_value()["actor"]["id"], "hmac:abc");
    assert_eq!(event.action(), "model.update");
}

#[test]
#[should_panic(expected = "a transform broke")]
fn transform_that_removes_the_action_is_a_bug() {
    let mut event = parse(minimal()).unwrap();
    event.transform(|map| map.remove("action"));
}

// --- realistic data ------------------------------------------------------------------------

/// `n` events from the project's seeded generator, as NDJSON.
fn generated_events(n: usize) -> Vec<u8> {
    sample::ndjson(n as u64, &sample::Options::default()).into_bytes()
}

#[test]
fn generated_events_all_validate() {
    let body = generated_events(200);
    let items = split_body_items(&body, BodyFormat::Ndjson, 1000).unwrap();
    assert_eq!(items.len(), 200);
    let originals: Vec<Value> = items.iter().map(|i| i.value.clone()).collect();
    let events = parse_events(items, now(), false).unwrap_or_else(|e| panic!("{e:#?}"));
    for (event, original) in events.iter().zip(&originals) {
        // The generator already sends normalized times and outcomes.
        assert_eq!(event.as_value(), original);
    }
}
