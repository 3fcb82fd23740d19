//! Write endpoints: `POST /threats/analyst-verdict`, `/threats/incident`,
//! `/threats/mitigate/{action}`, `/threats/add-to-blacklist` and
//! `/agents/actions/{disconnect,connect}`, body `{"filter":{"ids":[…]},"data":{…}}` →
//! `{"data":{"affected":N}}`. Accepted bodies are recorded for tests (`Tenant::writes`), and
//! each write takes the next of the faults queued for writes (`Tenant::push_write_faults`).

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
use crate::faults::{Fault, Plan};
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

/// Runs a write under the next queued write fault: a fault that replaces the answer is sent
/// without the write; `Slow` waits first; the rest alter the real answer.
async fn faulty(
    tenant: &Tenant,
    headers: &HeaderMap,
    write: impl FnOnce() -> Result<Value, Response>,
) -> Response {
    let fault = match Fault::plan(tenant.pop_write_fault()) {
        Plan::Replace(response) => return response,
        Plan::Alter(fault) => Some(fault),
        Plan::Normal => None,
    };
    if let Some(Fault::Slow(delay)) = &fault {
        tokio::time::sleep(*delay).await;
    }
    let answer = match write() {
        Ok(answer) => answer,
        Err(response) => return response,
    };
    match fault {
        Some(fault) if !matches!(fault, Fault::Slow(_)) => {
            fault.alter(StatusCode::OK, answer.to_string().into_bytes())
        }
        _ => json_value(StatusCode::OK, &answer, wants_gzip(tenant, headers)),
    }
}

fn affected(n: usize) -> Value {
    json!({"data": {"affected": n}})
}

fn set_status_field(
    tenant: &Tenant,
    headers: &HeaderMap,
    body: &Bytes,
    field: &'static str,
    allowed: &[&str],
) -> Result<Value, Response> {
    let (caller, body, ids) = write_request(tenant, headers, body)?;
    let Some(value) = body["data"][field].as_str().map(str::to_owned) else {
        return Err(envelope::validation(&format!(
            "data.{field}: Missing data for required field."
        )));
    };
    if !allowed.contains(&value.as_str()) {
        return Err(envelope::validation(&format!(
            "data.{field}: Must be one of: {}.",
            allowed.join(", ")
        )));
    }
    tenant.record_write(body);
    let n = tenant.edit_threats(&ids, caller.sites.as_ref(), Utc::now(), |threat, _| {
        if let Some(info) = threat.get_mut("threatInfo").and_then(Value::as_object_mut) {
            info.insert(field.to_owned(), json!(value));
            info.insert(format!("{field}Description"), json!(describe(&value)));
        }
    });
    Ok(affected(n))
}

pub(crate) async fn analyst_verdict(
    State(tenant): State<Tenant>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let allowed = ["undefined", "true_positive", "false_positive", "suspicious"];
    faulty(&tenant, &headers, || {
        set_status_field(&tenant, &headers, &body, "analystVerdict", &allowed)
    })
    .await
}

pub(crate) async fn incident(
    State(tenant): State<Tenant>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let allowed = ["unresolved", "in_progress", "resolved"];
    faulty(&tenant, &headers, || {
        set_status_field(&tenant, &headers, &body, "incidentStatus", &allowed)
    })
    .await
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
    faulty(&tenant, &headers, || {
        let (caller, body, ids) = write_request(&tenant, &headers, &body)?;
        tenant.record_write(body);
        let n = tenant.edit_threats(&ids, caller.sites.as_ref(), Utc::now(), |threat, at| {
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
        Ok(affected(n))
    })
    .await
}

/// Whether the threat is in the caller's site scope.
fn in_scope(caller: &Caller, threat: &Value) -> bool {
    let site = threat["agentRealtimeInfo"]["siteId"]
        .as_str()
        .unwrap_or_default();
    caller.sites.as_ref().is_none_or(|s| s.contains(site))
}

/// `POST /threats/notes` `{"filter":{"ids":[…]},"data":{"text":"…"}}`: adds the note to each
/// threat the caller sees (SENTINELONE.md §3).
pub(crate) async fn add_notes(
    State(tenant): State<Tenant>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    faulty(&tenant, &headers, || {
        let (caller, body, ids) = write_request(&tenant, &headers, &body)?;
        let Some(text) = body["data"]["text"]
            .as_str()
            .filter(|t| !t.trim().is_empty())
        else {
            return Err(envelope::validation(
                "data.text: Missing data for required field.",
            ));
        };
        let text = text.to_owned();
        tenant.record_write(body);
        let n = ids
            .iter()
            .filter(|id| {
                tenant.threat(id).is_some_and(|t| {
                    in_scope(&caller, &t) && tenant.add_note(id, "API user", &text)
                })
            })
            .count();
        Ok(affected(n))
    })
    .await
}

/// `POST /threats/add-to-blacklist`: adds each threat's SHA1 to the blocklist at
/// `data.targetScope` (`account`, `site`, `group`, `tenant`; the threat's site when absent).
pub(crate) async fn add_to_blacklist(
    State(tenant): State<Tenant>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    faulty(&tenant, &headers, || {
        let (caller, body, ids) = write_request(&tenant, &headers, &body)?;
        let scope = match &body["data"]["targetScope"] {
            Value::Null => "site".to_owned(),
            Value::String(s) if ["account", "site", "group", "tenant"].contains(&s.as_str()) => {
                s.clone()
            }
            _ => {
                return Err(envelope::validation(
                    "data.targetScope: Must be one of: account, site, group, tenant.",
                ))
            }
        };
        tenant.record_write(body);
        let mut n = 0;
        for id in &ids {
            let Some(threat) = tenant.threat(id) else {
                continue;
            };
            let agent = &threat["agentRealtimeInfo"];
            let site = agent["siteId"].as_str().unwrap_or_default().to_owned();
            if !in_scope(&caller, &threat) {
                continue;
            }
            let Some(sha1) = threat["threatInfo"]["sha1"].as_str() else {
                continue;
            };
            let scope_ids = match scope.as_str() {
                "account" => json!({"accountIds": [agent["accountId"]]}),
                "group" => json!({"groupIds": [agent["groupId"]]}),
                "tenant" => json!({"tenant": true}),
                _ => json!({"siteIds": [site]}),
            };
            tenant.block_hash(json!({
                "type": "black_hash",
                "value": sha1.to_ascii_lowercase(),
                "osType": agent["agentOsType"],
                "source": "user",
                "description": format!("Added from threat {id}"),
                "scopeName": scope,
                "scope": scope_ids,
            }));
            n += 1;
        }
        Ok(affected(n))
    })
    .await
}

/// `POST /agents/actions/{disconnect,connect}`: the agents' threats read
/// `agentRealtimeInfo.agentNetworkStatus` `disconnected` (or `connected`) from then on, as a
/// real tenant's threats say it.
pub(crate) async fn agents_action(
    State(tenant): State<Tenant>,
    Path(action): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let status = match action.as_str() {
        "disconnect" => "disconnected",
        "connect" => "connected",
        _ => return envelope::not_found("The requested resource does not exist"),
    };
    faulty(&tenant, &headers, || {
        let caller = authenticate(&tenant, &headers)?;
        let body = parse_body(&body)?;
        let filter = &body["filter"];
        let list = |key: &str| -> Vec<String> {
            match &filter[key] {
                Value::Array(l) => l
                    .iter()
                    .filter_map(|v| match v {
                        Value::String(s) => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .collect(),
                Value::String(s) => s.split(',').map(|s| s.trim().to_owned()).collect(),
                _ => Vec::new(),
            }
        };
        let mut agents = list("ids");
        agents.extend(list("uuids"));
        if agents.is_empty() {
            return Err(envelope::validation(
                "filter: Missing data for required field (ids or uuids).",
            ));
        }
        tenant.record_write(body);
        let threats = tenant.threats_of_agents(&agents, caller.sites.as_ref());
        tenant.edit_threats(&threats, caller.sites.as_ref(), Utc::now(), |threat, _| {
            if let Some(info) = threat
                .get_mut("agentRealtimeInfo")
                .and_then(Value::as_object_mut)
            {
                info.insert("agentNetworkStatus".into(), json!(status));
            }
        });
        let mut seen = std::collections::HashSet::new();
        for id in &threats {
            if let Some(t) = tenant.threat(id) {
                if let Some(a) = t["agentRealtimeInfo"]["agentId"].as_str() {
                    seen.insert(a.to_owned());
                }
            }
        }
        Ok(affected(seen.len()))
    })
    .await
}
