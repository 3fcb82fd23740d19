//! Fault injection for `GET /threats`: each queued fault replaces or alters one response.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::stream;
use serde_json::{json, Value};

use crate::envelope::{error_response, with_headers};

/// One injected fault; `Tenant::push_faults` queues them, each `/threats` request takes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 with the errors envelope (code 4290010) and, if given, a `Retry-After` header.
    RateLimited {
        /// Seconds for `Retry-After`; `None` sends no header (the real tenant's 429 is
        /// undocumented, see SENTINELONE.md §1.4).
        retry_after_secs: Option<u64>,
    },
    /// 500, code 5000010 "Internal server error".
    ServerError,
    /// Waits this long, then answers normally.
    Slow(Duration),
    /// The real body, sent in small chunks with delays over about two seconds.
    Trickle,
    /// 200 whose JSON body stops half-way (a complete HTTP response, invalid JSON).
    Truncated,
    /// 200 with a non-JSON body (an HTML error page from a proxy, then binary noise).
    Garbage,
    /// The real page padded with a huge string field to at least `bytes` bytes, streamed
    /// chunked without `Content-Length`.
    Oversized {
        /// Minimum body size.
        bytes: usize,
    },
    /// 401 "Authentication Failed", whatever the token.
    Unauthorized,
    /// 403 "Insufficient permissions", whatever the token.
    Forbidden,
    /// 200 with no threats and no `nextCursor`: a walk's last page that is empty, as real
    /// tenants send (SENTINELONE.md §6), here wherever the walk is.
    EmptyLastPage,
    /// The real page with every threat drifted: missing keys, unknown keys, wrong types,
    /// nulls for objects. `id` and the `threatInfo` timestamps stay valid strings.
    SchemaDrift,
}

/// What the handler must do before and after computing the real answer.
pub(crate) enum Plan {
    /// Answer with this response without looking at the request.
    Replace(Response),
    /// Compute the real answer, then pass it through `Fault::alter`.
    Alter(Fault),
    /// No fault: answer normally.
    Normal,
}

impl Fault {
    pub(crate) fn plan(fault: Option<Fault>) -> Plan {
        let Some(fault) = fault else {
            return Plan::Normal;
        };
        match fault {
            Fault::RateLimited { retry_after_secs } => {
                let mut response = error_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    4_290_010,
                    "Too Many Requests",
                    None,
                );
                if let Some(secs) = retry_after_secs {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                Plan::Replace(response)
            }
            Fault::ServerError => Plan::Replace(error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                5_000_010,
                "Internal server error",
                Some("Server could not process the request."),
            )),
            Fault::Unauthorized => Plan::Replace(crate::envelope::unauthorized()),
            Fault::Forbidden => Plan::Replace(crate::envelope::forbidden()),
            Fault::Garbage => Plan::Replace(garbage()),
            Fault::EmptyLastPage => Plan::Replace(with_headers(
                StatusCode::OK,
                Body::from(r#"{"data":[],"pagination":{"nextCursor":null,"totalItems":0}}"#),
            )),
            other => Plan::Alter(other),
        }
    }

    /// Turns the real answer (`status`, JSON `body`) into the faulty one.
    pub(crate) fn alter(self, status: StatusCode, body: Vec<u8>) -> Response {
        match self {
            Fault::Trickle => trickle(status, &body),
            Fault::Truncated => {
                let cut = (body.len() / 2).max(1).min(body.len());
                let mut body = body;
                body.truncate(cut);
                with_headers(status, Body::from(body))
            }
            Fault::Oversized { bytes } => oversized(status, body, bytes),
            Fault::SchemaDrift => with_headers(status, Body::from(drift(&body))),
            // `Slow` was served by waiting; the rest never reach here.
            _ => with_headers(status, Body::from(body)),
        }
    }
}

fn garbage() -> Response {
    let mut body = concat!(
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n",
        "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n",
        "</body>\r\n</html>\r\n",
    )
    .as_bytes()
    .to_vec();
    body.extend((0u8..=255).map(|b| b.wrapping_mul(151) ^ 0x5a));
    with_headers(StatusCode::OK, Body::from(body))
}

fn trickle(status: StatusCode, body: &[u8]) -> Response {
    const CHUNKS: usize = 40;
    let size = body.len().div_ceil(CHUNKS).max(16);
    let chunks: Vec<Bytes> = body.chunks(size).map(Bytes::copy_from_slice).collect();
    let stream = stream::unfold(chunks.into_iter(), |mut rest| async move {
        let chunk = rest.next()?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        Some((Ok::<_, Infallible>(chunk), rest))
    });
    with_headers(status, Body::from_stream(stream))
}

fn oversized(status: StatusCode, body: Vec<u8>, bytes: usize) -> Response {
    const CHUNK: usize = 64 * 1024;
    // `{…real…,"padding":"aaaa…"}`: still valid JSON, the real page first.
    let mut head = body;
    if head.last() == Some(&b'}') {
        head.pop();
        head.extend_from_slice(b",\"padding\":\"");
    } else {
        head = b"{\"padding\":\"".to_vec();
    }
    let padding = bytes.saturating_sub(head.len() + 2);
    let filler = Bytes::from(vec![b'a'; CHUNK]);
    let state = (Some(Bytes::from(head)), padding, false);
    let stream = stream::unfold(state, move |(head, left, done)| {
        let filler = filler.clone();
        async move {
            if let Some(head) = head {
                return Some((Ok::<_, Infallible>(head), (None, left, false)));
            }
            if left > 0 {
                let n = left.min(CHUNK);
                return Some((Ok(filler.slice(..n)), (None, left - n, false)));
            }
            if done {
                return None;
            }
            Some((Ok(Bytes::from_static(b"\"}")), (None, 0, true)))
        }
    });
    with_headers(status, Body::from_stream(stream))
}

/// Drifts every threat of a list page; other bodies are returned unchanged.
fn drift(body: &[u8]) -> Vec<u8> {
    let Ok(mut page) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    if let Some(threats) = page["data"].as_array_mut() {
        for (i, threat) in threats.iter_mut().enumerate() {
            drift_threat(threat, i);
        }
        page["errors"] = json!([]);
    }
    serde_json::to_vec(&page).unwrap_or_else(|_| body.to_vec())
}

fn drift_threat(threat: &mut Value, variant: usize) {
    let Some(top) = threat.as_object_mut() else {
        return;
    };
    match variant % 4 {
        0 => {
            // Keys go missing (whiteningOptions, as in sekoia_threat2.json).
            top.remove("whiteningOptions");
            top.remove("indicators");
            top.remove("containerInfo");
            if let Some(info) = top.get_mut("threatInfo").and_then(Value::as_object_mut) {
                info.remove("storyline");
                info.remove("sha256");
                info.remove("md5");
            }
        }
        1 => {
            // Wrong types.
            if let Some(info) = top.get_mut("threatInfo").and_then(Value::as_object_mut) {
                let size = info
                    .get("fileSize")
                    .map(Value::to_string)
                    .unwrap_or_default();
                info.insert("fileSize".into(), json!(size));
                info.insert("isFileless".into(), json!("false"));
                info.insert("engines".into(), json!("SentinelOne Cloud"));
            }
            if let Some(agent) = top
                .get_mut("agentRealtimeInfo")
                .and_then(Value::as_object_mut)
            {
                agent.insert("activeThreats".into(), json!("2"));
                agent.insert("agentDecommissionedAt".into(), json!(true));
            }
            top.insert("mitigationStatus".into(), Value::Null);
        }
        2 => {
            // Nulls replace objects; new keys from newer schemas.
            top.insert("agentDetectionInfo".into(), Value::Null);
            top.insert(
                "ecsInfo".into(),
                json!({"clusterName": null, "serviceName": null, "taskArn": null}),
            );
            top.insert("EventTime".into(), json!("2025-03-21T14:15:14Z"));
            if let Some(info) = top.get_mut("threatInfo").and_then(Value::as_object_mut) {
                info.insert("macroModules".into(), json!([]));
                info.insert("rootProcessUpn".into(), Value::Null);
                info.insert("confidenceLevel".into(), Value::Null);
            }
        }
        _ => {
            if let Some(agent) = top
                .get_mut("agentRealtimeInfo")
                .and_then(Value::as_object_mut)
            {
                agent.insert("networkInterfaces".into(), Value::Null);
                agent.insert("agentUuid".into(), Value::Null);
            }
            if let Some(info) = top.get_mut("threatInfo").and_then(Value::as_object_mut) {
                info.insert("sha256".into(), json!(""));
                info.insert(
                    "detectionEngines".into(),
                    json!([{"key": "new_engine_2030"}]),
                );
                info.insert(
                    "threatExtras".into(),
                    json!({"nested": {"deep": [1, "two", null]}}),
                );
            }
        }
    }
}

/// How a list of faults is written, for [`Fault::parse_list`].
pub const FAULT_LIST_SYNTAX: &str = "comma-separated, each optionally repeated as NAME*N: \
     429, 429:SECS (with Retry-After), 500, slow:SECS, trickle, truncated, garbage, \
     oversized:BYTES, 401, 403, drift, empty (an empty last page)";

impl Fault {
    /// Reads a list of faults such as `429:2,500*3,slow:5`, in the order they are served.
    ///
    /// # Errors
    /// What is wrong with the first item that cannot be read, and how a list is written.
    pub fn parse_list(text: &str) -> Result<Vec<Fault>, String> {
        dossier_simkit::faults::parse_list(text, |item| {
            Ok(match (item.name, item.arg) {
                ("429", None) => Fault::RateLimited {
                    retry_after_secs: None,
                },
                ("429", Some(_)) => Fault::RateLimited {
                    retry_after_secs: Some(item.number("seconds")?),
                },
                ("500", None) => Fault::ServerError,
                ("slow", _) => Fault::Slow(Duration::from_secs(item.number("seconds")?)),
                ("trickle", None) => Fault::Trickle,
                ("truncated", None) => Fault::Truncated,
                ("garbage", None) => Fault::Garbage,
                ("oversized", _) => Fault::Oversized {
                    bytes: usize::try_from(item.number("a size in bytes")?).unwrap_or(usize::MAX),
                },
                ("401", None) => Fault::Unauthorized,
                ("403", None) => Fault::Forbidden,
                ("drift", None) => Fault::SchemaDrift,
                ("empty", None) => Fault::EmptyLastPage,
                _ => return Err(format!("{:?}: not a fault; {FAULT_LIST_SYNTAX}", item.text)),
            })
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn fault_lists_are_read_in_order_with_repeats() {
        assert_eq!(
            Fault::parse_list(" 429:2, 500*3 ,slow:1,drift, 401,429").unwrap(),
            [
                Fault::RateLimited {
                    retry_after_secs: Some(2)
                },
                Fault::ServerError,
                Fault::ServerError,
                Fault::ServerError,
                Fault::Slow(Duration::from_secs(1)),
                Fault::SchemaDrift,
                Fault::Unauthorized,
                Fault::RateLimited {
                    retry_after_secs: None
                },
            ]
        );
        assert_eq!(
            Fault::parse_list("oversized:100,Garbage,truncated,trickle,403,empty").unwrap(),
            [
                Fault::Oversized { bytes: 100 },
                Fault::Garbage,
                Fault::Truncated,
                Fault::Trickle,
                Fault::Forbidden,
                Fault::EmptyLastPage,
            ]
        );
        assert!(Fault::parse_list("").unwrap().is_empty());
    }

    #[test]
    fn bad_fault_lists_say_what_is_wrong() {
        for (list, says) in [
            ("500,404", "\"404\": not a fault"),
            ("slow", "slow takes seconds"),
            ("429:soon", "429 takes seconds"),
            ("500*0", "repeat count"),
            ("500*x", "repeat count"),
            ("500*10000,429*10000,500*10000,500*10000,500*10000,500*10000,500*10000,500*10000,500*10000,500*10000,500", "at most 100000 faults"),
            ("500:3", "not a fault"),
        ] {
            let e = Fault::parse_list(list).unwrap_err();
            assert!(e.contains(says), "{list}: {e}");
        }
    }

    #[test]
    fn drift_keeps_ids_and_timestamps() {
        let threat = json!({"id": "1", "whiteningOptions": [],
                            "threatInfo": {"createdAt": "a", "updatedAt": "b", "fileSize": 5},
                            "agentRealtimeInfo": {"activeThreats": 0}});
        let data = [threat.clone(), threat.clone(), threat.clone(), threat];
        let page = json!({"data": data, "pagination": {"nextCursor": null}});
        let drifted: Value = serde_json::from_slice(&drift(page.to_string().as_bytes())).unwrap();
        let data = drifted["data"].as_array().unwrap();
        for t in data {
            assert_eq!(t["id"], "1");
            assert_eq!(t["threatInfo"]["createdAt"], "a");
            assert_eq!(t["threatInfo"]["updatedAt"], "b");
        }
        assert!(data[0].get("whiteningOptions").is_none());
        assert_eq!(data[1]["threatInfo"]["fileSize"], "5");
        assert!(data[2]["agentDetectionInfo"].is_null());
        assert_eq!(drifted["pagination"]["nextCursor"], Value::Null);
    }

    #[test]
    fn drift_leaves_non_json_alone() {
        assert_eq!(drift(b"nope"), b"nope");
    }
}
