//! The served JSON Schema agrees with the validator.

use std::collections::BTreeSet;

use chrono::Utc;
use event::{event_schema, split_body, BodyFormat, Event, TOP_LEVEL_FIELDS};
use serde_json::{json, Value};

fn object_keys(v: &Value) -> BTreeSet<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn required(v: &Value) -> BTreeSet<&str> {
    v["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect()
}

/// A small checker for the keywords this schema uses (type, required, properties,
/// additionalProperties, items, enum, minLength, maxLength). No JSON Schema crate is a
/// dependency, and checking these few keywords is enough to catch the schema and the
/// validator drifting apart. `pattern` and `format` are left to the validator's own tests.
fn schema_errors(schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "number" => v.is_number(),
            other => panic!("keyword type {other} not supported by this checker"),
        };
        if !ok {
            errors.push(format!("{path}: not a {t}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(v) {
            errors.push(format!("{path}: not in enum"));
        }
    }
    if let Some(s) = v.as_str() {
        let chars = s.chars().count() as u64;
        if schema
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| chars < m)
        {
            errors.push(format!("{path}: too short"));
        }
        if schema
            .get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| chars > m)
        {
            errors.push(format!("{path}: too long"));
        }
    }
    if let Some(map) = v.as_object() {
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !map.contains_key(r.as_str().unwrap()) {
                errors.push(format!("{path}.{r}: required"));
            }
        }
        for (key, item) in map {
            let item_path = format!("{path}.{key}");
            match (
                schema.get("properties").and_then(|p| p.get(key)),
                schema.get("additionalProperties"),
            ) {
                (Some(sub), _) => schema_errors(sub, item, &item_path, errors),
                (None, Some(Value::Bool(false))) => {
                    errors.push(format!("{item_path}: not allowed"))
                }
                (None, Some(sub @ Value::Object(_))) => {
                    schema_errors(sub, item, &item_path, errors)
                }
                (None, _) => {}
            }
        }
    }
    if let (Some(items), Some(sub)) = (v.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            schema_errors(sub, item, &format!("{path}[{i}]"), errors);
        }
    }
}

fn check(v: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    schema_errors(&event_schema(), v, "", &mut errors);
    errors
}

#[test]
fn schema_is_draft_2020_12() {
    assert_eq!(
        event_schema()["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}

#[test]
fn schema_lists_the_top_level_fields_the_validator_accepts() {
    let schema = event_schema();
    let listed = object_keys(&schema["properties"]);
    let accepted: BTreeSet<&str> = TOP_LEVEL_FIELDS.into_iter().collect();
    assert_eq!(listed, accepted);
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(required(&schema), BTreeSet::from(["action", "actor"]));
    assert_eq!(
        required(&schema["properties"]["actor"]),
        BTreeSet::from(["id"])
    );
    assert_eq!(
        required(&schema["properties"]["related"]["items"]),
        BTreeSet::from(["id", "type"])
    );
}

/// An event with `object` as its actor, resource, or only related item.
fn event_with(name: &str, object: Value) -> Value {
    match name {
        "actor" => json!({"action": "a.b", "actor": object}),
        "related" => json!({"action": "a.b", "actor": {"id": "a"}, "related": [object]}),
        _ => json!({"action": "a.b", "actor": {"id": "a"}, name: object}),
    }
}

/// Every property the schema lists for actor, resource and related items is accepted by
/// the validator with a value of the schema's type, and an unlisted one is refused by both.
#[test]
fn schema_nested_properties_match_the_validator() {
    let schema = event_schema();
    let objects = [
        ("actor", &schema["properties"]["actor"]),
        ("resource", &schema["properties"]["resource"]),
        ("related", &schema["properties"]["related"]["items"]),
    ];
    for (name, object_schema) in objects {
        for (key, prop) in object_schema["properties"].as_object().unwrap() {
            let mut object = json!({"id": "i", "type": "t"});
            object[key] = match prop["type"].as_str().unwrap() {
                "string" => json!("x"),
                "array" => json!(["x"]),
                other => panic!("no sample for {other}"),
            };
            let event = event_with(name, object);
            assert_eq!(check(&event), Vec::<String>::new(), "{event}");
            Event::parse(event, Utc::now(), false)
                .unwrap_or_else(|e| panic!("{name}.{key}: {e:?}"));
        }
        let event = event_with(name, json!({"id": "i", "type": "t", "unlisted": "x"}));
        assert!(!check(&event).is_empty(), "{event}");
        assert!(Event::parse(event, Utc::now(), false).is_err());
    }
}

#[test]
fn context_keys_have_the_types_the_validator_checks() {
    let schema = event_schema();
    let context = &schema["properties"]["context"]["properties"];
    let types: Vec<(&str, &str)> = context
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v["type"].as_str().unwrap()))
        .collect();
    for (key, ty) in types {
        let wrong = if ty == "string" { json!(1) } else { json!("1") };
        let event = json!({"action": "a.b", "actor": {"id": "a"}, "context": {key: wrong}});
        assert!(
            Event::parse(event, Utc::now(), false).is_err(),
            "context.{key}"
        );
    }
}

#[test]
fn invalid_events_fail_the_schema_too() {
    for bad in [
        json!({"actor": {"id": "a"}}),
        json!({"action": "a.b", "actor": {}}),
        json!({"action": "a.b", "actor": {"id": 1}}),
        json!({"action": "a.b", "actor": {"id": "a"}, "outcome": "ok"}),
        json!({"action": "a.b", "actor": {"id": "a"}, "metrics": {"x": "y"}}),
        json!({"action": "a.b", "actor": {"id": "a"}, "resource": {"tags": "pii"}}),
        json!({"action": "a.b", "actor": {"id": "a"}, "related": [{"type": "dataset"}]}),
        json!({"action": "a.b", "actor": {"id": "a"}, "id": "x".repeat(129)}),
        json!({"action": "a.b", "actor": {"id": "a"}, "actr": 1}),
    ] {
        assert!(!check(&bad).is_empty(), "schema accepted {bad}");
        assert!(
            Event::parse(bad.clone(), Utc::now(), false).is_err(),
            "validator accepted {bad}"
        );
    }
}

#[test]
fn generated_events_match_the_schema() {
    let text = sample::ndjson(200, &sample::Options::default());
    let values = split_body(text.as_bytes(), BodyFormat::Ndjson, 1000).unwrap();
    assert_eq!(values.len(), 200);
    for v in &values {
        assert_eq!(check(v), Vec::<String>::new(), "{v}");
    }
}
