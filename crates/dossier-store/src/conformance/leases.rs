//! A connector's worker holds it for one generation: once the connector is saved again (its
//! worker is replaced) or deleted, what the old worker still sends is refused whole.

use chrono::Duration;

use super::{incident, sha1, t0, Backend, Fixture};
use crate::{ConnectorUpdate, HealthUpdate, Store, StoreError};

/// What a refused write must leave as it was: the connector's position, counts and status,
/// every incident and story, every event.
async fn state<B: Backend>(f: &Fixture<B>) -> (Option<String>, u64, u64, String, usize, usize) {
    let c = f.store.get_connector(None, &f.connector).await.unwrap();
    (
        c.checkpoint,
        c.threats,
        c.polls,
        c.status,
        f.assignment().await.len(),
        f.events().await.len(),
    )
}

/// Saves the connector as an editor would with a new tenant URL: a new generation, back to
/// `pending`, its position forgotten.
async fn save_with_new_url<B: Backend>(f: &Fixture<B>) -> i64 {
    let saved = f
        .store
        .update_connector(
            Some(&f.account),
            &f.connector,
            &ConnectorUpdate {
                tenant_url: Some("https://other.sentinelone.net".into()),
                token_enc: Some(vec![4, 5, 6]),
                status: Some(("pending".into(), None)),
                reset_checkpoint: true,
                ..ConnectorUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(saved.generation, f.generation + 1);
    saved.generation
}

pub async fn a_page_of_a_replaced_worker_writes_nothing<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let h = sha1(1);
    f.store
        .commit_page(f.page(vec![incident("1", 0, "ag1", Some(&h))], t0()))
        .await
        .unwrap();
    let generation = save_with_new_url(&f).await;
    let before = state(&f).await;
    assert_eq!(
        (before.0.as_deref(), before.3.as_str()),
        (None, "pending"),
        "the save reset the connector"
    );

    // The old worker's page, on its way when the connector was saved.
    let mut stale = f.page(
        vec![
            incident("1", 1, "ag1", Some(&h)),
            incident("2", 2, "ag2", Some(&h)),
        ],
        t0() + Duration::hours(1),
    );
    stale.checkpoint = r#"{"old":"tenant"}"#.into();
    assert!(matches!(
        f.store.commit_page(stale.clone()).await,
        Err(StoreError::LeaseLost)
    ));
    assert_eq!(state(&f).await, before, "a refused page leaves everything");

    // The worker of the new generation writes the same page.
    stale.generation = generation;
    let out = f.store.commit_page(stale).await.unwrap();
    assert_eq!((out.incidents_new, out.incidents_updated), (1, 1));
    let after = state(&f).await;
    assert_eq!(
        (after.0.as_deref(), after.3.as_str(), after.4),
        (Some(r#"{"old":"tenant"}"#), "connected", 2)
    );
}

pub async fn health_from_a_replaced_worker_is_refused<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let error = HealthUpdate {
        status: Some("error".into()),
        status_detail: Some(Some("the tenant refused the API token".into())),
        errors_inc: 1,
        checkpoint: Some(r#"{"old":"tenant"}"#.into()),
        generation: Some(f.generation),
        ..HealthUpdate::default()
    };
    let generation = save_with_new_url(&f).await;
    let before = state(&f).await;
    assert!(matches!(
        f.store.set_connector_health(&f.connector, &error).await,
        Err(StoreError::LeaseLost)
    ));
    let c = f.store.get_connector(None, &f.connector).await.unwrap();
    assert_eq!(
        (c.status.as_str(), c.status_detail, c.errors),
        ("pending", None, 0)
    );
    assert_eq!(state(&f).await, before);

    let current = HealthUpdate {
        generation: Some(generation),
        ..error
    };
    f.store
        .set_connector_health(&f.connector, &current)
        .await
        .unwrap();
    let c = f.store.get_connector(None, &f.connector).await.unwrap();
    assert_eq!((c.status.as_str(), c.errors), ("error", 1));
}

pub async fn a_page_for_a_deleted_connector_writes_nothing<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let page = f.page(vec![incident("1", 0, "ag1", Some(&sha1(1)))], t0());
    f.store
        .delete_connector(Some(&f.account), &f.connector)
        .await
        .unwrap();
    assert!(matches!(
        f.store.commit_page(page).await,
        Err(StoreError::LeaseLost)
    ));
    assert!(f.assignment().await.is_empty(), "no incident was stored");
    assert!(f.events().await.is_empty(), "no event was recorded");
}

/// A connector's own settings are kept as saved, and a change replaces them whole (and, like
/// any save, makes a new generation); a change without them keeps them.
pub async fn a_connectors_settings_are_kept_and_replaced<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let saved = f.store.get_connector(None, &f.connector).await.unwrap();
    assert_eq!(saved.config, "{}");
    let settings = r#"{"client_id":"00000000-0000-0000-0000-000000000001","tenant_id":"t"}"#;
    let changed = f
        .store
        .update_connector(
            Some(&f.account),
            &f.connector,
            &ConnectorUpdate {
                config: Some(settings.into()),
                ..ConnectorUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.config, settings);
    assert_eq!(changed.generation, f.generation + 1);
    let renamed = f
        .store
        .update_connector(
            Some(&f.account),
            &f.connector,
            &ConnectorUpdate {
                name: Some("renamed".into()),
                ..ConnectorUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.config, settings);
    let listed = f.store.list_connectors(Some(&f.account)).await.unwrap();
    assert_eq!(listed[0].config, settings);
}

/// A record the worker could not read is reported with the page whose checkpoint remembers it
/// (issue 27): both are written, or, for a replaced worker, neither.
pub async fn a_pages_events_and_status_reason_are_written_with_it<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let unreadable = crate::NewEvent {
        account_id: f.account.clone(),
        event_type: dossier_domain::event::EventType::IncidentUnreadable,
        at: t0(),
        connector_id: Some(f.connector.clone()),
        story_id: None,
        incident_id: Some(" 7".into()),
        message: "threat \" 7\" could not be read".into(),
        data: serde_json::json!({ "reason": "padded" }),
    };
    let mut page = f.page(vec![incident("1", 0, "ag1", Some(&sha1(1)))], t0());
    page.events = vec![unreadable.clone()];
    page.status_detail = Some("1 threat could not be read; see events".into());
    let mut stale = page.clone();
    f.store.commit_page(page).await.unwrap();
    let c = f.store.get_connector(None, &f.connector).await.unwrap();
    assert_eq!(
        (c.status.as_str(), c.status_detail.as_deref()),
        ("connected", Some("1 threat could not be read; see events"))
    );
    let reported: Vec<_> = f
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == dossier_domain::event::EventType::IncidentUnreadable)
        .collect();
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].incident_id.as_deref(), Some(" 7"));

    // A page without a reason clears it.
    f.store
        .commit_page(f.page(Vec::new(), t0() + Duration::minutes(1)))
        .await
        .unwrap();
    let c = f.store.get_connector(None, &f.connector).await.unwrap();
    assert_eq!(c.status_detail, None);

    save_with_new_url(&f).await;
    let before = state(&f).await;
    stale.now = t0() + Duration::minutes(2);
    assert!(matches!(
        f.store.commit_page(stale).await,
        Err(StoreError::LeaseLost)
    ));
    assert_eq!(state(&f).await, before, "a refused page reports nothing");
}
