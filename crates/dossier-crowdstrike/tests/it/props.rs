//! The mapper never panics, whatever the JSON: it maps, or says why not.

use dossier_crowdstrike::remap_stored;
use proptest::prelude::*;
use serde_json::Value;

use crate::samples::read;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        Just(Value::from("epp")),
        Just(Value::from("2024-01-01T00:00:00.123456789Z")),
        Just(Value::from("0000000000000000000000000000000000000000")),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("composite_id".to_owned()),
                    Just("product".to_owned()),
                    Just("device".to_owned()),
                    Just("severity".to_owned()),
                    Just("severity_name".to_owned()),
                    Just("sha256".to_owned()),
                    Just("tags".to_owned()),
                    Just("pattern_disposition_details".to_owned()),
                    Just("technique_id".to_owned()),
                    Just("created_timestamp".to_owned()),
                    Just("updated_timestamp".to_owned()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replaces the value at one key of the sample (found by its position among the keys) with an
/// arbitrary one.
fn mangle(base: &Value, index: usize, with: Value) -> Value {
    let mut out = base.clone();
    if let Some(map) = out.as_object_mut() {
        let keys: Vec<String> = map.keys().cloned().collect();
        let key = &keys[index % keys.len()];
        map.insert(key.clone(), with);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_never_panics_the_mapper(v in arb_json()) {
        // Any outcome but a panic; an error always says why.
        if let Err(e) = dossier_crowdstrike::map_alert(
            &serde_json::value::RawValue::from_string(v.to_string()).unwrap(),
        ) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn a_mangled_sample_never_panics_the_mapper(index in 0usize..200, with in arb_json()) {
        let base: Value = serde_json::from_str(&read("elastic_alert_epp_ldt_line1.json")).unwrap();
        let mangled = mangle(&base, index, with);
        let _ = remap_stored(&mangled.to_string());
    }

    #[test]
    fn arbitrary_text_never_panics_the_mapper(text in ".{0,200}") {
        let _ = remap_stored(&text);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(remap_stored(&deep).is_none());
    let text = format!(
        r#"{{"composite_id":"a","product":"epp","device":{}{}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    assert!(remap_stored(&text).is_none());
}
