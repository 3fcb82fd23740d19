//! The `OpenAPI` document, made exact enough for a schema-driven fuzzer: what the annotations
//! beside each handler cannot say is added here, from the same lists the handlers read (the
//! domain's statuses, verdicts, severities, event types and sort fields, and the sources this
//! build has), so that a value added there reaches the document without anyone retyping it.

use dossier_domain::event::EventType;
use dossier_domain::story::{Severity, Status, Verdict};
use dossier_source::Sources;
use dossier_store::StorySortField;
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::{OpenApi, ToSchema};

use super::ApiDoc;

/// The body of every error: a kind a program can test and a sentence a person can read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// `bad_request` (400), `unauthenticated` (401), `forbidden` (403), `not_found` (404),
    /// `method_not_allowed` (405), `conflict` (409), `payload_too_large` (413), `internal`
    /// (500), `bad_gateway` (502, a producer's tenant could not be read) or `unavailable` (503).
    pub error: String,
    /// What went wrong, naming the field and the reason where there is one.
    pub message: String,
}

/// The kinds of [`ErrorBody::error`], as `crate::error::ApiError` names them.
pub const ERROR_KINDS: &[&str] = &[
    "bad_request",
    "unauthenticated",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "conflict",
    "payload_too_large",
    "unavailable",
    "internal",
    "bad_gateway",
    "unavailable",
];

/// The statuses a connector has.
const CONNECTOR_STATUSES: &[&str] = &["pending", "connected", "error"];

/// The document served at `/api/openapi.json`, for the sources of this build.
#[must_use]
pub fn document(sources: &Sources) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    exact(&mut doc, sources);
    doc
}

fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<Value> {
    all.iter().map(|v| Value::from(name(*v))).collect()
}

/// A list parameter of the query: repeated (`status=a&status=b`), each one of `values` or
/// empty (an empty value is skipped). The same list may be sent comma-separated in one value
/// (`status=a,b`), which the description says, since a schema of one form cannot say both.
fn list_of(values: &[Value]) -> Value {
    let mut items = vec![Value::from("")];
    items.extend_from_slice(values);
    json!({"type": "array", "items": {"type": "string", "enum": items}})
}

/// A time parameter: RFC 3339, or empty for none.
fn time() -> Value {
    json!({"type": "string", "anyOf": [{"format": "date-time"}, {"maxLength": 0}]})
}

fn nullable_enum(values: Vec<Value>) -> Value {
    let mut with_null = values;
    with_null.push(Value::Null);
    json!({"type": ["string", "null"], "enum": with_null})
}

/// Adds what the annotations cannot say to `doc`.
fn exact(doc: &mut Value, sources: &Sources) {
    let statuses = names(Status::ALL, Status::as_str);
    let verdicts = names(Verdict::ALL, Verdict::as_str);
    let severities = names(Severity::ALL, Severity::as_str);
    let event_types = names(EventType::ALL, EventType::as_str);
    // An empty sort is the default one.
    let mut sorts: Vec<Value> = vec![Value::from("")];
    for (name, _) in StorySortField::ALL {
        sorts.push(Value::from(*name));
        sorts.push(Value::from(format!("-{name}")));
    }
    let producers: Vec<Value> = sources
        .iter()
        .map(|s| Value::from(s.producer().as_str()))
        .collect();

    // The story list's query.
    for (name, schema) in [
        ("status", list_of(&statuses)),
        ("verdict", list_of(&verdicts)),
        ("severity", list_of(&severities)),
        ("sort", json!({"type": "string", "enum": sorts})),
        ("from", time()),
        ("to", time()),
        // A NUL is refused: no text holds one.
        ("q", json!({"type": "string", "pattern": "^[^\\x00]*$"})),
    ] {
        set_param(doc, "/api/v1/stories", "get", name, &schema);
    }
    // The event list's query.
    for (name, schema) in [
        ("type", list_of(&event_types)),
        ("from", time()),
        ("to", time()),
    ] {
        set_param(doc, "/api/v1/events", "get", name, &schema);
    }

    let schemas = &mut doc["components"]["schemas"];
    // What the API answers with.
    let story = &mut schemas["Story"]["properties"];
    story["status"] = json!({"type": "string", "enum": statuses.clone()});
    story["verdict"] = nullable_enum(verdicts.clone());
    story["severity"] = nullable_enum(severities.clone());
    story["producer"] = json!({"type": "string", "enum": producers});
    story["criticality"] = json!({"type": "integer", "minimum": 1, "maximum": 10});
    schemas["Event"]["properties"]["type"] =
        json!({"type": "string", "enum": names(EventType::ALL, EventType::as_str)});
    let connector = &mut schemas["ConnectorView"]["properties"];
    connector["status"] = json!({"type": "string", "enum": CONNECTOR_STATUSES});
    connector["kind"] = json!({"type": "string", "enum": kinds(sources)});
    schemas["ErrorBody"]["properties"]["error"] = json!({"type": "string", "enum": ERROR_KINDS});
    schemas["ErrorBody"]["additionalProperties"] = Value::Bool(false);

    // What the API is sent.
    // `null` keeps the status; it clears a verdict, a severity or an owner.
    let patch = &mut schemas["PatchStory"]["properties"];
    patch["status"] = nullable_enum(statuses);
    patch["verdict"] = nullable_enum(verdicts);
    patch["severity"] = nullable_enum(severities);
    schemas["PatchStory"]["minProperties"] = 1.into();
    // A bulk change names its stories by `ids` or by `filter`, exactly one of the two.
    schemas["BulkRequest"]["oneOf"] = json!([
        {"required": ["ids"], "properties": {"ids": {"type": "array"}}},
        {"required": ["filter"], "properties": {"filter": {"type": "object"}}},
    ]);
    schemas["CreateConnector"] = create_connector(sources);
    schemas["PatchConnector"] = patch_connector(sources);
    unavailable(doc);
}

/// What every operation of the API may answer when the database cannot take it now.
const UNAVAILABLE: &str = "the database cannot take this now: it could not be written (a full \
    disk, a read-only file) or read; the message says why, and the same request may succeed \
    once that is mended";

/// Declares the 503 every operation of the API (and `/metrics`) answers while the database
/// cannot be written (or read): each one reads the store, if only for its key. An operation
/// that answers 503 for a reason of its own keeps that reason beside this one.
fn unavailable(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        if !(path.starts_with("/api/v1/") || path == "/metrics") {
            continue;
        }
        let Some(operations) = item.as_object_mut() else {
            continue;
        };
        for operation in operations.values_mut() {
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            let description = match responses.get("503").and_then(|r| r["description"].as_str()) {
                Some(own) => format!("{own}; or {UNAVAILABLE}"),
                None => UNAVAILABLE.to_owned(),
            };
            responses.insert(
                "503".into(),
                json!({
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                }),
            );
        }
    }
}

/// Replaces the schema of one query parameter; a list parameter is sent repeated.
fn set_param(doc: &mut Value, path: &str, method: &str, name: &str, schema: &Value) {
    let Some(params) = doc["paths"][path][method]["parameters"].as_array_mut() else {
        return;
    };
    for p in params.iter_mut().filter(|p| p["name"] == name) {
        if schema["type"] == "array" {
            p["style"] = "form".into();
            p["explode"] = true.into();
        }
        p["schema"] = schema.clone();
    }
}

fn kinds(sources: &Sources) -> Vec<Value> {
    sources.iter().map(|s| Value::from(s.kind())).collect()
}

/// The fields every connector has, as a create or a change sends them.
fn common_fields(create: bool) -> Map<String, Value> {
    let mut m = Map::new();
    // A change may send `null` for the name, which keeps it.
    let name_type = if create {
        json!("string")
    } else {
        json!(["string", "null"])
    };
    m.insert(
        "name".into(),
        json!({"type": name_type, "minLength": 1, "maxLength": 100, "pattern": "\\S",
               "description": "At most 100 characters once trimmed; not blank."}),
    );
    m.insert(
        "description".into(),
        json!({"type": ["string", "null"], "maxLength": 500,
               "description": "At most 500 characters once trimmed; blank or `null` clears it."}),
    );
    m.insert("track_errors".into(), json!({"type": ["boolean", "null"]}));
    m.insert("write_back".into(), json!({"type": ["boolean", "null"]}));
    m.insert(
        "response".into(),
        json!({"type": ["boolean", "null"],
               "description": "Allows response actions (kill, quarantine, disconnect, …) from a story."}),
    );
    if create {
        m.insert(
            "account_id".into(),
            json!({"type": ["string", "null"],
                   "description": "Operators only: the account to create the connector in."}),
        );
    }
    m
}

/// The schema of one of a kind's own fields.
fn field_schema(f: &dossier_source::Field) -> Value {
    let mut s = if f.choices.is_empty() {
        if f.required {
            // Blank is as if left out.
            json!({"type": "string", "pattern": "\\S"})
        } else {
            json!({"type": ["string", "null"]})
        }
    } else {
        // Blank or `null` is as if left out (the kind's default).
        let mut choices: Vec<Value> = f.choices.iter().map(|c| Value::from(*c)).collect();
        choices.extend([Value::from(""), Value::Null]);
        json!({"type": ["string", "null"], "enum": choices})
    };
    let mut description = f.help.to_owned();
    if f.secret {
        description.push_str(" Write-only: never returned.");
    }
    s["description"] = description.into();
    s
}

/// A new connector: one object per kind, told apart by `kind`.
fn create_connector(sources: &Sources) -> Value {
    let variants: Vec<Value> = sources
        .iter()
        .map(|source| {
            let mut properties = common_fields(true);
            properties.insert(
                "kind".into(),
                json!({"type": "string", "const": source.kind()}),
            );
            let mut required = vec![Value::from("kind"), Value::from("name")];
            for f in source.fields() {
                properties.insert(f.name.into(), field_schema(f));
                if f.required {
                    required.push(f.name.into());
                }
            }
            json!({
                "type": "object",
                "title": source.kind(),
                "properties": properties,
                "required": required,
                "additionalProperties": false,
            })
        })
        .collect();
    json!({
        "oneOf": variants,
        "description": "A new connector: the fields every kind has, and the kind's own. The \
            kind's source checks its own fields beyond their type (an `https://` address with \
            no user name, query or fragment, whose host is not internal unless the server \
            allows private tenants; a GUID; a secret of no control characters), and a 400 \
            names the field and the reason.",
    })
}

/// A change to a connector: the fields every kind has, and the own fields of one kind, which
/// must be the connector's (another kind's is a 400).
fn patch_connector(sources: &Sources) -> Value {
    let variants: Vec<Value> = sources
        .iter()
        .map(|source| {
            let mut properties = common_fields(false);
            for f in source.fields() {
                properties.insert(f.name.into(), field_schema(f));
            }
            json!({
                "type": "object",
                "title": source.kind(),
                "properties": properties,
                "additionalProperties": false,
            })
        })
        .collect();
    json!({
        "anyOf": variants,
        "description": "A change to a connector; a field left out keeps its value. The kind's \
            own fields are those of the connector's kind (another kind's is a 400), checked as \
            when it was created; a new address needs the secret again.",
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every kind the error type answers with is one the document lists, and each kind has
    /// one status.
    #[test]
    fn the_error_kinds_are_the_api_errors() {
        use crate::error::ApiError;
        let kinds: Vec<&str> = [
            ApiError::BadRequest(String::new()),
            ApiError::Unauthenticated,
            ApiError::Forbidden(String::new()),
            ApiError::NotFound("x"),
            ApiError::MethodNotAllowed,
            ApiError::Conflict(String::new()),
            ApiError::PayloadTooLarge(1),
            ApiError::Unavailable(String::new()),
            ApiError::Internal(String::new()),
            ApiError::BadGateway(String::new()),
            ApiError::Unavailable(String::new()),
        ]
        .iter()
        .map(|e| e.kind().0)
        .collect();
        assert_eq!(kinds, ERROR_KINDS);
    }
}
