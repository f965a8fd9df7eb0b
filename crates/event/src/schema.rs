//! The JSON Schema of the event, served at `GET /v1/schema/event`.

use serde_json::{json, Value};

use super::{ACTION_BYTES_MAX, DEPTH_MAX, ENTRY_BYTES_MAX, ID_CHARS_MAX};

/// The JSON Schema (draft 2020-12) of an event, wire format version 1.
///
/// It is documentation for producers and their tooling, written by hand to read well; the
/// validator ([`super::Event::parse`]) is the authority. A few rules a schema cannot express
/// are stated in descriptions: the reserved `audit` namespace, the nesting limit, and
/// integers beyond 2^53. Tests check that both agree on the fields.
pub fn event_schema() -> Value {
    let string = |description: &str| json!({"type": "string", "description": description});
    let id_string =
        |description: &str| json!({"type": "string", "minLength": 1, "description": description});
    let string_array = |description: &str| json!({"type": "array", "items": {"type": "string"}, "description": description});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:mlaudit:schema:event:1",
        "title": "mlaudit event (wire format version 1)",
        "description": format!(
            "One audit event. Objects and arrays may nest at most {DEPTH_MAX} levels, counting \
             the event itself. Numbers must be exact as IEEE 754 doubles (integers up to \
             2^53); send larger identifiers as strings. The stored entry, after \
             normalization, is at most {ENTRY_BYTES_MAX} bytes."
        ),
        "type": "object",
        "required": ["action", "actor"],
        "additionalProperties": false,
        "properties": {
            "id": {
                "type": "string",
                "minLength": 1,
                "maxLength": ID_CHARS_MAX,
                "description": "Idempotency key chosen by the producer, unique per producer: a repeat returns the original receipt."
            },
            "time": {
                "type": "string",
                "format": "date-time",
                "description": "When it happened (RFC 3339). Default: arrival time. Stored in UTC, e.g. 2026-03-01T12:00:00.123Z."
            },
            "action": {
                "type": "string",
                "pattern": "^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)+$",
                "maxLength": ACTION_BYTES_MAX,
                "description": "<namespace>.<verb>, e.g. model.update. The namespace gives the category. The audit namespace is reserved for mlaudit itself.",
                "examples": ["dataset.read", "model.train", "deployment.deploy", "evaluation.record", "permission.grant"]
            },
            "outcome": {
                "type": "string",
                "enum": ["success", "failure", "denied"],
                "default": "success"
            },
            "actor": {
                "type": "object",
                "required": ["id"],
                "additionalProperties": false,
                "description": "Who did it.",
                "properties": {
                    "id": id_string("User, service account or job identity. Pseudonymized in stored entries."),
                    "type": string("e.g. user, service."),
                    "ip": string("Client address. Pseudonymized in stored entries."),
                    "user_agent": string("Client software."),
                    "roles": string_array("Roles the actor held."),
                    "session": string("Session identifier.")
                }
            },
            "resource": {
                "type": "object",
                "additionalProperties": false,
                "description": "What it was done to.",
                "properties": {
                    "type": id_string("e.g. dataset, model, deployment, user, job."),
                    "id": id_string("Identifier of the resource."),
                    "version": string("Version of the resource."),
                    "name": string("Human-readable name."),
                    "tags": string_array("Labels such as pii or tier-1, used by retention and alerts.")
                }
            },
            "related": {
                "type": "array",
                "description": "Lineage: the datasets a model was trained on, the model a deployment serves, the evaluation data.",
                "items": {
                    "type": "object",
                    "required": ["type", "id"],
                    "additionalProperties": false,
                    "properties": {
                        "type": id_string("Type of the related resource."),
                        "id": id_string("Identifier of the related resource."),
                        "version": string("Version of the related resource."),
                        "relation": string("e.g. training_data, serves, evaluation_data.")
                    }
                }
            },
            "parameters": {
                "type": "object",
                "description": "Free JSON: what was done, e.g. changed hyperparameters."
            },
            "metrics": {
                "type": "object",
                "additionalProperties": {"type": "number"},
                "description": "Numeric results, e.g. accuracy or fairness measures."
            },
            "context": {
                "type": "object",
                "description": "Free JSON about the circumstances; these keys have fixed types.",
                "properties": {
                    "project": string("Project; tokens may be limited to projects."),
                    "environment": string("e.g. dev, staging, prod."),
                    "request_id": string("Request identifier for correlation."),
                    "job_id": string("Job identifier."),
                    "source": string("Emitting system, e.g. mlflow."),
                    "sequence": {"type": "number", "description": "Producer-side sequence number."}
                }
            },
            "reason": string("Why, or the error message of a failure.")
        }
    })
}
