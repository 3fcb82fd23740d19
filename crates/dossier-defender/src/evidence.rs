//! What a Defender alert says that only Defender gives, for the story page: how it was
//! detected, its category and determination, its incident, and every evidence entity it names
//! (devices, files, processes, users, addresses, registry keys) with Defender's verdict and
//! remediation of each.

use dossier_source::Evidence;
use serde_json::Value;

/// Reads the evidence of an alert's raw JSON; nothing for a text that is not an alert.
pub fn evidence(raw: &str) -> Vec<Evidence> {
    let Ok(alert) = serde_json::from_str::<Value>(raw) else {
        return Vec::new();
    };
    let text = |key: &str| alert.get(key).and_then(Value::as_str);
    let mut out: Vec<Evidence> = [
        Evidence::of("Detection source", text("detectionSource")),
        Evidence::of("Category", text("category")),
        Evidence::of("Determination", text("determination")),
        Evidence::of("Incident", text("incidentWebUrl").or(text("incidentId"))),
    ]
    .into_iter()
    .flatten()
    .collect();
    for item in alert
        .get("evidence")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        out.extend(entity(item));
    }
    out
}

/// One evidence entity, as `Process: powershell.exe -enc … (malicious, remediated)`.
fn entity(item: &Value) -> Option<Evidence> {
    let text = |pointer: &str| item.pointer(pointer).and_then(Value::as_str);
    let kind = text("/@odata.type")?
        .rsplit('.')
        .next()?
        .trim_end_matches("Evidence");
    let what: String = match kind {
        "device" => text("/deviceDnsName").or(text("/mdeDeviceId"))?.to_owned(),
        "file" => {
            let name = text("/fileDetails/fileName")?;
            match text("/fileDetails/filePath") {
                Some(path) => format!("{}\\{name}", path.trim_end_matches('\\')),
                None => name.to_owned(),
            }
        }
        "process" => text("/processCommandLine")
            .or(text("/imageFile/fileName"))?
            .to_owned(),
        "user" => text("/userAccount/userPrincipalName")
            .or(text("/userAccount/accountName"))?
            .to_owned(),
        "ip" => text("/ipAddress")?.to_owned(),
        "url" => text("/url")?.to_owned(),
        "registryKey" => text("/registryKey")?.to_owned(),
        "registryValue" => text("/registryValueName")?.to_owned(),
        _ => return None,
    };
    let judged: Vec<&str> = [text("/verdict"), text("/remediationStatus")]
        .into_iter()
        .flatten()
        .filter(|v| !v.eq_ignore_ascii_case("unknown") && !v.eq_ignore_ascii_case("none"))
        .collect();
    let mut label = kind.to_owned();
    if let Some(first) = label.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    let value = if judged.is_empty() {
        what
    } else {
        format!("{what} ({})", judged.join(", "))
    };
    Evidence::of(&label, Some(&value))
}

#[cfg(test)]
mod tests {
    use super::evidence;

    #[test]
    fn every_entity_the_alert_names_is_listed_with_its_verdict() {
        let raw = r##"{"detectionSource":"antivirus","category":"Malware",
            "incidentWebUrl":"https://security.microsoft.com/incidents/7?tid=t",
            "evidence":[
              {"@odata.type":"#microsoft.graph.security.deviceEvidence","deviceDnsName":"host-1","verdict":"unknown","remediationStatus":"none"},
              {"@odata.type":"#microsoft.graph.security.fileEvidence","verdict":"malicious","remediationStatus":"remediated",
               "fileDetails":{"fileName":"x.exe","filePath":"C:\\Temp\\"}},
              {"@odata.type":"#microsoft.graph.security.processEvidence","processCommandLine":"powershell -enc AAA","verdict":"suspicious"},
              {"@odata.type":"#microsoft.graph.security.mailboxEvidence","displayName":"unknown kind"}
            ]}"##;
        let e: Vec<(String, String)> = evidence(raw)
            .into_iter()
            .map(|e| (e.label, e.value))
            .collect();
        let pairs: Vec<(&str, &str)> = e.iter().map(|(l, v)| (l.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("Detection source", "antivirus"),
                ("Category", "Malware"),
                (
                    "Incident",
                    "https://security.microsoft.com/incidents/7?tid=t"
                ),
                ("Device", "host-1"),
                ("File", "C:\\Temp\\x.exe (malicious, remediated)"),
                ("Process", "powershell -enc AAA (suspicious)"),
            ]
        );
        assert!(evidence("[1,2]").is_empty());
    }
}
