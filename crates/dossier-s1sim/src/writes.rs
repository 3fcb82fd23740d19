//! Threat write endpoints: `POST /threats/analyst-verdict`, `/threats/incident` and
//! `/threats/mitigate/{action}`, body `{"filter":{"ids":[…]},"data":{…}}` →
//! `{"data":{"affected":N}}`. Accepted bodies are recorded for tests (`Tenant::writes`).

#![allow(
    clippy::result_large_err,
    reason = "handlers return responses; rejections are the cold path"
)]

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::envelope::{self, json_value};
use crate::lifecycle::{describe, Action};
use crate::routes::{authenticate, parse_body, wants_gzip};
use crate::tenant::Tenant;

/// Authenticates a threat write and reads `filter.ids`.
fn write_request(
    tenant: &Tenant,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Caller, Value, Vec<String>), Response> {
    let caller = authenticate(tenant, headers)?;
    if !caller.can_view_threats {
        return Err(envelope::forbidden());
    }
    let body = parse_body(body)?;
    let mut ids: Vec<String> = match &body["filter"]["ids"] {
        Value::Array(list) => list
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        Value::String(s) => s.split(',').map(|s| s.trim().to_owned()).collect(),
        _ => {
            return Err(envelope::validation(
                "filter.ids: Missing data for required field.",
            ))
        }
    };
    ids.sort();
    ids.dedup();
    Ok((caller, body, ids))
}

fn set_status_field(
    tenant: &Tenant,
    headers: &HeaderMap,
    body: &Bytes,
    field: &'static str,
    allowed: &[&str],
) -> Response {
    let (caller, body, ids) = match write_request(tenant, headers, body) {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let Some(value) = body["data"][field].as_str().map(str::to_owned) else {
        return envelope::validation(&format!("data.{field}: Missing data for required field."));
    };
    if !allowed.contains(&value.as_str()) {
        return envelope::validation(&format!(
            "data.{field}: Must be one of: {}.",
            allowed.join(", ")
        ));
    }
    tenant.record_write(body);
    let affected = tenant.edit_threats(&ids, caller.sites.as_ref(), Utc::now(), |threat, _| {
        if let Some(info) = threat.get_mut("threatInfo").and_then(Value::as_object_mut) {
            info.insert(field.to_owned(), json!(value));
            info.insert(format!("{field}Description"), json!(describe(&value)));
        }
    });
    json_value(
        StatusCode::OK,
        &json!({"data": {"affected": affected}}),
        wants_gzip(tenant, headers),
    )
}

pub(crate) async fn analyst_verdict(
    State(tenant): State<Tenant>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let allowed = ["undefined", "true_positive", "false_positive", "suspicious"];
    set_status_field(&tenant, &headers, &body, "analystVerdict", &allowed)
}

pub(crate) async fn incident(
    State(tenant): State<Tenant>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let allowed = ["unresolved", "in_progress", "resolved"];
    set_status_field(&tenant, &headers, &body, "incidentStatus", &allowed)
}

pub(crate) async fn mitigate(
    State(tenant): State<Tenant>,
    Path(action): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const ACTIONS: &[(&str, &str)] = &[
        ("kill", "kill"),
        ("quarantine", "quarantine"),
        ("remediate", "remediate"),
        ("rollback-remediation", "rollback"),
        ("un-quarantine", "unquarantine"),
        ("network-quarantine", "network_quarantine"),
    ];
    let Some(&(_, recorded)) = ACTIONS.iter().find(|(path, _)| *path == action) else {
        return envelope::not_found(&format!("Unknown mitigation action '{action}'"));
    };
    let (caller, body, ids) = match write_request(&tenant, &headers, &body) {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    tenant.record_write(body);
    let affected = tenant.edit_threats(&ids, caller.sites.as_ref(), Utc::now(), |threat, at| {
        let entry = Action {
            action: recorded,
            at,
            report_id: crate::ids::snowflake(at, 3),
        }
        .to_json();
        if !threat["mitigationStatus"].is_array() {
            threat["mitigationStatus"] = json!([]);
        }
        if let Some(list) = threat["mitigationStatus"].as_array_mut() {
            list.insert(0, entry);
        }
        if recorded != "unquarantine" && recorded != "network_quarantine" {
            threat["threatInfo"]["mitigationStatus"] = json!("mitigated");
            threat["threatInfo"]["mitigationStatusDescription"] = json!("Mitigated");
        }
    });
    json_value(
        StatusCode::OK,
        &json!({"data": {"affected": affected}}),
        wants_gzip(&tenant, &headers),
    )
}
