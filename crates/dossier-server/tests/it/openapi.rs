//! `/api/openapi.json` is exact enough for a schema-driven fuzzer: every path parameter of
//! every operation is declared, every error an operation answers with is declared with the
//! error body, and the values the API takes and gives are enumerated from the same lists the
//! handlers read.

use dossier_domain::access::{Licence, Role};
use dossier_domain::event::EventType;
use dossier_domain::story::Status;
use serde_json::{json, Value};

use crate::spawn_app;

/// The non-empty strings of an enumeration (an empty value is allowed where it means none).
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_declares_every_parameter_and_error() {
    let app = spawn_app(0).await;
    let (status, doc) = app.call("GET", "/api/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let error_body = json!({"$ref": "#/components/schemas/ErrorBody"});
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let in_path: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let what = format!("{method} {path}");
            let declared: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path" && p["required"] == true)
                        .map(|p| p["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(declared, in_path, "{what}: path parameters");
            let responses = op["responses"].as_object().unwrap();
            let secured = op.get("security") != Some(&json!([]));
            if secured && path.starts_with("/api/") {
                for code in ["401", "403"] {
                    assert!(responses.contains_key(code), "{what}: no {code}");
                }
            }
            // Every operation of the API reads the store, which may not take it now (a full
            // disk): a 503 with the error body.
            if path.starts_with("/api/v1/") {
                assert!(responses.contains_key("503"), "{what}: no 503");
            }
            for (code, r) in responses {
                if code.starts_with('4') || (code.starts_with('5') && path.starts_with("/api/")) {
                    assert_eq!(
                        r["content"]["application/json"]["schema"], error_body,
                        "{what}: {code} has no error body"
                    );
                    assert!(
                        r["description"].as_str().is_some_and(|d| !d.is_empty()),
                        "{what}: {code} says nothing"
                    );
                }
            }
            if op.get("requestBody").is_some() {
                assert!(responses.contains_key("400"), "{what}: no 400");
                assert!(responses.contains_key("413"), "{what}: no 413");
            }
        }
    }
    assert!(operations >= 15, "{operations}");

    // Enumerations come from the domain's lists.
    let param = |path: &str, name: &str| -> Value {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    let statuses: Vec<String> = Status::ALL.iter().map(|s| s.as_str().to_owned()).collect();
    let status = param("/api/v1/stories", "status");
    assert_eq!(strings(&status["schema"]["items"]["enum"]), statuses);
    assert_eq!(status["explode"], true);
    let sort = strings(&param("/api/v1/stories", "sort")["schema"]["enum"]);
    assert!(sort.contains(&"criticality".into()) && sort.contains(&"-updated_at".into()));
    let types: Vec<String> = EventType::ALL
        .iter()
        .map(|t| t.as_str().to_owned())
        .collect();
    assert_eq!(
        strings(&param("/api/v1/events", "type")["schema"]["items"]["enum"]),
        types
    );
    let limit = param("/api/v1/stories", "limit");
    assert_eq!(
        (&limit["schema"]["minimum"], &limit["schema"]["maximum"]),
        (&json!(1), &json!(1000))
    );
    let schemas = &doc["components"]["schemas"];
    let kinds: Vec<&str> = schemas["CreateConnector"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["properties"]["kind"]["const"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["sentinelone", "defender", "crowdstrike"]);
    assert_eq!(
        schemas["BulkRequest"]["properties"]["ids"]["maxItems"],
        json!(10_000)
    );
    assert_eq!(schemas["BulkRequest"]["oneOf"].as_array().unwrap().len(), 2);
    // A change may send `null` for a connector's name, which keeps it (the fuzzer found the
    // server taking what the document refused).
    for variant in schemas["PatchConnector"]["anyOf"].as_array().unwrap() {
        assert_eq!(
            variant["properties"]["name"]["type"],
            json!(["string", "null"])
        );
    }
    assert_eq!(
        schemas["NewComment"]["properties"]["text"]["maxLength"],
        json!(500)
    );
    assert_eq!(
        schemas["Story"]["properties"]["created_at"]["format"],
        "date-time"
    );
    // The story detail declares its next steps, each with a nullable action.
    // (The detail flattens the story, so its own properties are one part of an `allOf`.)
    let detail = schemas["StoryDetail"].to_string();
    assert!(
        detail.contains(r#""next_steps":{"#)
            && detail.contains(r##""$ref":"#/components/schemas/NextStepView""##),
        "{detail}"
    );
    assert!(
        detail.contains(r##""$ref":"#/components/schemas/EntitiesView""##),
        "{detail}"
    );
    for kind in ["users", "files", "processes", "storylines", "indicators"] {
        assert!(
            schemas["EntitiesView"]["properties"][kind]["items"].is_object(),
            "{kind}: {}",
            schemas["EntitiesView"]
        );
    }
    let process = schemas["ProcessEntityView"].to_string();
    // The sources are flattened in: a part of the `allOf`.
    assert!(
        process.contains("command_line") && process.contains("schemas/EntitySources"),
        "{process}"
    );
    assert!(
        schemas["EntitySources"]["properties"]["incident_ids"].is_object(),
        "{}",
        schemas["EntitySources"]
    );
    let step = &schemas["NextStepView"]["properties"];
    assert!(
        step["text"].is_object() && step["reason"].is_object(),
        "{step}"
    );
    assert!(step["action"].to_string().contains("null"), "{step}");
    app.running.stop().await;
}

/// A bulk change whose close reason or comment is over 500 characters is refused as a whole
/// with a 400 naming the field, as a single story's change is, even when it names no story
/// that exists (it was answered 200 with each story failed, the fuzzer found).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_change_over_the_text_bounds_is_refused_whole() {
    let app = spawn_app(0).await;
    let account = app.account(Licence::Xops).await;
    let key = app.key(Some(&account), &[Role::Admin]).await;
    let long = "x".repeat(501);
    for (body, field) in [
        (
            json!({"ids": ["nope"], "set": {"status": "closed", "verdict": "benign", "close_reason": long}}),
            "close_reason",
        ),
        (json!({"ids": ["nope"], "comment": long}), "comment"),
    ] {
        let (status, e) = app
            .call("POST", "/api/v1/stories/bulk", Some(&key), Some(body))
            .await;
        assert_eq!(status, 400, "{e}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{field}: at most 500")),
            "{e}"
        );
    }
    app.running.stop().await;
}
