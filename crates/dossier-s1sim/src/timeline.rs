//! `GET /threats/{id}/timeline` (activities derived from a threat's current state, in the
//! shape of the Swimlane capture `swimlane_get_threat_timeline.json`) and
//! `GET /threats/{id}/notes` (what `POST /threats/notes` added). Both honour `limit` and
//! `sortOrder`. Unknown or out-of-scope threats are a 404, which
//! Elastic treats as "no timeline".

#![allow(
    clippy::result_large_err,
    reason = "handlers return responses; rejections are the cold path"
)]

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use crate::envelope::{self, json_value};
use crate::ids::snowflake;
use crate::lifecycle::describe;
use crate::routes::{authenticate, wants_gzip};
use crate::tenant::Tenant;
use crate::time::parse_micros;

const ANALYST: &str = "SOC Analyst";

/// Returns the threat's activities, oldest first: its detection, then the analyst's verdict
/// and incident-status changes when they differ from a fresh detection.
pub(crate) fn activities(threat: &Value) -> Vec<Value> {
    let info = &threat["threatInfo"];
    let agent = &threat["agentRealtimeInfo"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    // A fileless threat may have no name; the console still says what it is about.
    let name = match text(&info["threatName"]) {
        n if n.is_empty() => "(unnamed)".to_owned(),
        n => n,
    };
    let created = text(&info["createdAt"]);
    let updated = text(&info["updatedAt"]);
    let base = |activity_type: u32, at: &str, primary: String, secondary: Value, data: Value| {
        let id = snowflake(parse_micros(at).unwrap_or(0), activity_type).to_string();
        json!({
            "accountId": agent["accountId"], "activityType": activity_type,
            "agentId": agent["agentId"], "agentUpdatedVersion": null, "createdAt": at,
            "data": data, "groupId": agent["groupId"], "hash": null, "id": id, "osFamily": null,
            "primaryDescription": primary, "secondaryDescription": secondary,
            "siteId": agent["siteId"], "threatId": threat["id"], "updatedAt": at, "userId": null,
        })
    };
    let scope = json!({
        "accountName": agent["accountName"], "computerName": agent["agentComputerName"],
        "fileDisplayName": name, "filePath": info["filePath"], "groupName": agent["groupName"],
        "siteName": agent["siteName"], "threatClassification": info["classification"],
        "threatClassificationSource": info["classificationSource"],
    });
    let mut detected = scope.clone();
    detected["confidenceLevel"] = info["confidenceLevel"].clone();
    detected["fileContentHash"] = info["sha1"].clone();
    let confidence = text(&info["confidenceLevel"]);
    let mut out = vec![base(
        4003,
        &created,
        format!("Threat with confidence level {confidence} detected: {name}."),
        info["sha1"].clone(),
        detected,
    )];
    let verdict = text(&info["analystVerdict"]);
    if !verdict.is_empty() && verdict != "undefined" {
        let mut data = scope.clone();
        data["newAnalystVerdict"] = json!(verdict);
        data["newAnalystVerdictTitle"] = json!(describe(&verdict));
        data["oldAnalystVerdict"] = json!("undefined");
        data["oldAnalystVerdictTitle"] = json!("Undefined");
        data["username"] = json!(ANALYST);
        let primary = format!(
            "The management user {ANALYST} changed the analyst verdict for {name} \
             from Undefined to {}.",
            describe(&verdict)
        );
        out.push(base(2030, &updated, primary, Value::Null, data));
    }
    let incident = text(&info["incidentStatus"]);
    if !incident.is_empty() && incident != "unresolved" {
        let mut data = scope.clone();
        data["newIncidentStatus"] = json!(incident);
        data["newIncidentStatusTitle"] = json!(describe(&incident));
        data["oldIncidentStatus"] = json!("unresolved");
        data["oldIncidentStatusTitle"] = json!("Unresolved");
        data["username"] = json!(ANALYST);
        let primary = format!(
            "The management user {ANALYST} changed the incident status for {name} \
             from Unresolved to {}",
            describe(&incident)
        );
        out.push(base(2028, &updated, primary, Value::Null, data));
    }
    // Each mitigation the console was told to carry out (`mitigationStatus[]`, newest first);
    // the capture shows 2014 for a quarantine command, which stands for them all here.
    let computer = text(&agent["agentComputerName"]);
    if let Some(list) = threat["mitigationStatus"].as_array() {
        for m in list.iter().rev() {
            let action = text(&m["action"]);
            // Not before the detection it answers, whatever the generated times say.
            let at = text(&m["mitigationStartedAt"]).max(created.clone());
            if action.is_empty() {
                continue;
            }
            let mut data = scope.clone();
            data["username"] = json!(ANALYST);
            let primary = format!(
                "The management user {ANALYST} issued a {action} command to threat {name} on agent {computer}."
            );
            out.push(base(2014, &at, primary, info["filePath"].clone(), data));
        }
    }
    // Oldest first; the detection stays first among entries of the same time (a stable sort).
    out.sort_by(|a, b| text(&a["createdAt"]).cmp(&text(&b["createdAt"])));
    out
}

/// The list parameters the two endpoints honour: `limit` (default 10, at most 1000) and
/// `sortOrder` (`asc`, the default, or `desc`, by `createdAt`).
fn page(mut entries: Vec<Value>, query: &HashMap<String, String>) -> Result<Value, Response> {
    let limit = match query.get("limit") {
        None => 10,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => return Err(envelope::validation("limit: Must be between 1 and 1000.")),
        },
    };
    match query.get("sortOrder").map(String::as_str) {
        None | Some("asc") => {}
        Some("desc") => entries.reverse(),
        Some(_) => {
            return Err(envelope::validation(
                "sortOrder: Must be one of: asc, desc.",
            ))
        }
    }
    let total = entries.len();
    entries.truncate(limit);
    Ok(json!({"data": entries, "pagination": {"nextCursor": null, "totalItems": total}}))
}

/// Returns the threat if the caller may see it, or the error response.
fn visible_threat(tenant: &Tenant, headers: &HeaderMap, id: &str) -> Result<Value, Response> {
    let caller = authenticate(tenant, headers)?;
    if !caller.can_view_threats {
        return Err(envelope::forbidden());
    }
    let threat = tenant
        .threat(id)
        .ok_or_else(|| envelope::not_found(&format!("Threat {id} not found")))?;
    let site = threat["agentRealtimeInfo"]["siteId"]
        .as_str()
        .unwrap_or_default();
    if caller
        .sites
        .as_ref()
        .is_some_and(|s: &HashSet<String>| !s.contains(site))
    {
        return Err(envelope::not_found(&format!("Threat {id} not found")));
    }
    Ok(threat)
}

pub(crate) async fn timeline(
    State(tenant): State<Tenant>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let threat = match visible_threat(&tenant, &headers, &id) {
        Ok(t) => t,
        Err(response) => return response,
    };
    match page(activities(&threat), &query) {
        Ok(reply) => json_value(StatusCode::OK, &reply, wants_gzip(&tenant, &headers)),
        Err(response) => response,
    }
}

pub(crate) async fn notes(
    State(tenant): State<Tenant>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = visible_threat(&tenant, &headers, &id) {
        return response;
    }
    match page(tenant.notes(&id), &query) {
        Ok(reply) => json_value(StatusCode::OK, &reply, wants_gzip(&tenant, &headers)),
        Err(response) => response,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn lists_detection_then_analyst_changes() {
        let threat = json!({"id": "7", "threatInfo": {"threatName": "x.exe",
            "createdAt": "2022-01-01T00:00:00.000000Z",
            "updatedAt": "2022-01-02T00:00:00.000000Z", "analystVerdict": "true_positive",
            "incidentStatus": "resolved", "confidenceLevel": "malicious", "sha1": "ab"},
            "agentRealtimeInfo": {"agentId": "1"}});
        let list = activities(&threat);
        let types: Vec<u64> = list
            .iter()
            .map(|a| a["activityType"].as_u64().unwrap())
            .collect();
        assert_eq!(types, [4003, 2030, 2028]);
        assert_eq!(list[0]["threatId"], "7");
        assert_eq!(list[0]["secondaryDescription"], "ab");
    }

    #[test]
    fn mitigations_join_the_timeline_and_pages_honour_limit_and_order() {
        let threat = json!({"id": "7", "threatInfo": {"threatName": "x.exe",
            "createdAt": "2022-01-01T00:00:00.000000Z",
            "updatedAt": "2022-01-01T00:00:00.000000Z", "confidenceLevel": "malicious"},
            "agentRealtimeInfo": {"agentId": "1", "agentComputerName": "host-1"},
            "mitigationStatus": [
                {"action": "kill", "mitigationStartedAt": "2022-01-03T00:00:00.000000Z"},
                {"action": "quarantine", "mitigationStartedAt": "2022-01-02T00:00:00.000000Z"}]});
        let list = activities(&threat);
        let texts: Vec<&str> = list
            .iter()
            .map(|a| a["primaryDescription"].as_str().unwrap())
            .collect();
        assert_eq!(texts.len(), 3);
        assert!(texts[1].contains("issued a quarantine command to threat x.exe on agent host-1"));
        assert!(texts[2].contains("issued a kill command"));

        let query = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let newest = page(
            list.clone(),
            &query(&[("limit", "1"), ("sortOrder", "desc")]),
        )
        .unwrap();
        assert_eq!(newest["data"].as_array().unwrap().len(), 1);
        assert!(newest["data"][0]["primaryDescription"]
            .as_str()
            .unwrap()
            .contains("kill"));
        assert_eq!(newest["pagination"]["totalItems"], 3);
        assert!(page(list.clone(), &query(&[("limit", "0")])).is_err());
        assert!(page(list, &query(&[("sortOrder", "up")])).is_err());
    }
}
