//! The mapper never panics, whatever JSON it is given: it maps or says why not.

use dossier_defender::{map_alert, remap_stored};
use proptest::prelude::*;
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        Just(json!("2021-05-02T14:19:01.3266667Z")),
        Just(json!("#microsoft.graph.security.deviceEvidence")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Mostly the alert's own keys, so that mangled values reach the mapper's every branch.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "id",
            "incidentId",
            "createdDateTime",
            "lastUpdateDateTime",
            "severity",
            "status",
            "classification",
            "category",
            "evidence",
            "@odata.type",
            "mdeDeviceId",
            "fileDetails",
            "imageFile",
            "sha256",
            "sha1",
            "md5",
            "fileSize",
            "ipInterfaces",
            "osPlatform",
            "remediationStatus",
            "mitreTechniques",
            "alertWebUrl",
            "machineId",
            "entityType",
            "title",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z@.]{0,10}",
    ]
}

/// A real alert with one field replaced by anything.
fn mangled_alert() -> impl Strategy<Value = Value> {
    (key(), any_json()).prop_map(|(k, v)| {
        let mut alert: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/samples/elastic_m365_alert_sample_event_original.json"
            ))
            .unwrap(),
        )
        .unwrap();
        alert[k.as_str()] = v.clone();
        if let Some(first) = alert["evidence"].get_mut(0) {
            if first.is_object() {
                first[k.as_str()] = v;
            }
        }
        alert
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_maps_or_errs(value in any_json()) {
        let text = value.to_string();
        let raw = RawValue::from_string(text.clone()).unwrap();
        match map_alert(raw) {
            Ok(i) => prop_assert_eq!(i.raw, text),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn mangled_alerts_map_or_err(alert in mangled_alert()) {
        let text = alert.to_string();
        let mapped = remap_stored(&text);
        if let Some(i) = mapped {
            prop_assert!(i.file.sha256.as_deref().is_none_or(|h| h.len() == 64));
            prop_assert!(i.device.agent_uuid.as_deref().is_none_or(|d| d == d.to_lowercase()));
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,64}") {
        let _ = remap_stored(&text);
    }
}
