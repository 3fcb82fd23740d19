use reqwest::StatusCode;

use crate::helpers::{get_threats, spawn};

#[tokio::test]
async fn invalid_parameters_get_a_400_validation_envelope() {
    let (sim, client) = spawn(20).await;
    let cases: &[(&str, &str)] = &[
        ("limit", "0"),
        ("limit", "1001"),
        ("limit", "ten"),
        ("skip", "1001"),
        ("skip", "-1"),
        ("sortBy", "threatName"),
        ("sortOrder", "upwards"),
        ("createdAt__gte", "yesterday"),
        ("updatedAt__lt", "2021-13-01T00:00:00Z"),
        ("countOnly", "maybe"),
        ("ids", "12,abc"),
        ("cursor", "definitely-not-a-cursor"),
    ];
    for (name, value) in cases {
        let (status, body) = get_threats(&client, &sim, &[(name, value)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}={value}");
        let error = &body["errors"][0];
        assert_eq!(error["code"], 4_000_010, "{name}={value}");
        assert_eq!(error["title"], "Validation Error");
        let detail = error["detail"].as_str().unwrap();
        assert!(detail.starts_with(name), "{name}={value}: {detail}");
        assert!(body.get("data").is_none());
    }
    let (_, body) = get_threats(&client, &sim, &[("limit", "1001")]).await;
    assert_eq!(
        body["errors"][0]["detail"],
        "limit: Must be greater than or equal to 1 and less than or equal to 1000."
    );
}

#[tokio::test]
async fn boundaries_and_lenient_dates_are_accepted() {
    let (sim, client) = spawn(20).await;
    let ok: &[&[(&str, &str)]] = &[
        &[("limit", "1")],
        &[("limit", "1000"), ("skip", "1000")],
        &[("sortBy", "createdAt"), ("sortOrder", "desc")],
        &[("createdAt__gte", "2020-08-14 14:09:44.959263")],
        &[("updatedAt__gte", "2020-08-14T14:09:44Z")],
        &[("updatedAt__lte", "2030-01-01T00:00:00.000000+02:00")],
        &[("someFutureParameter", "x")],
    ];
    for query in ok {
        let (status, body) = get_threats(&client, &sim, query).await;
        assert_eq!(status, StatusCode::OK, "{query:?}: {body}");
    }
}
