//! What SQLite keeps of a story's incidents: their bodies, and the normalised form an older
//! release stored in them.

use dossier_store::conformance::{incident, sha1, story_of_a_mapped_threat, t0};
use dossier_store::Store;

use crate::fixture;

/// A story's incidents show their normalised form, mapped again from the stored threat: the
/// normalised form is not stored. A row written when it was stored still shows the stored one.
#[tokio::test]
async fn a_story_shows_its_incidents_as_mapped_from_their_stored_threats() {
    let f = fixture().await;
    let (story, inc) = story_of_a_mapped_threat(&f).await;

    // The row holds no normalised form; one written before (here as text) is shown as stored.
    let path = crate::path(&f);
    let c = rusqlite::Connection::open(&path).unwrap();
    let stored: String = c
        .query_row("SELECT normalised FROM incident_bodies", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, "");
    let inc_context = inc.context.clone();
    assert!(!inc_context.users.is_empty());
    let older = dossier_domain::Incident {
        classification: Some("Worm".into()),
        raw: String::new(),
        ..inc
    };
    c.execute(
        "UPDATE incident_bodies SET normalised = ?1",
        [serde_json::to_string(&older).unwrap()],
    )
    .unwrap();
    let d = f.story(&story).await;
    assert_eq!(d.incidents[0].classification.as_deref(), Some("Worm"));

    // A form stored before incidents had a context still shows the context its threat maps
    // to: the story's entities need no migration.
    let mut before_context: serde_json::Value = serde_json::to_value(&older).unwrap();
    before_context.as_object_mut().unwrap().remove("context");
    before_context["device"]
        .as_object_mut()
        .unwrap()
        .remove("network_status");
    c.execute(
        "UPDATE incident_bodies SET normalised = ?1",
        [before_context.to_string()],
    )
    .unwrap();
    let d = f.story(&story).await;
    assert_eq!(d.incidents[0].classification.as_deref(), Some("Worm"));
    let mapped = d.incidents[0].normalised.as_ref().unwrap();
    assert_eq!(mapped.context, inc_context);
    assert_eq!(
        d.entities,
        dossier_domain::entities::of(std::slice::from_ref(mapped))
    );
}

/// A stored threat the mapping can no longer read (a later release reads the producer's JSON
/// differently, say) must not stop its story from being refreshed, which would stall every later
/// page of its connector: what the incident row holds stands in for it.
#[tokio::test]
async fn a_stored_threat_that_no_longer_maps_does_not_stall_its_story() {
    let f = fixture().await;
    let h = sha1(3);
    f.store
        .commit_page(f.page(vec![incident("50", 5, "ag1", Some(&h))], t0()))
        .await
        .unwrap();
    let db = rusqlite::Connection::open(crate::path(&f)).unwrap();
    db.execute("UPDATE incident_bodies SET raw = '{\"id\":\"50\"}'", [])
        .unwrap();
    // An earlier threat of the same story: the story's latest incident is the stored one.
    f.store
        .commit_page(f.page(vec![incident("51", 1, "ag1", Some(&h))], t0()))
        .await
        .unwrap();
    let a = f.assignment().await;
    assert_eq!(a["50"].0, a["51"].0);
    let d = f.story(&a["50"].0).await;
    assert_eq!(d.story.incident_count, 2);
    assert_eq!(d.story.file.sha1.as_deref(), Some(h.as_str()));
    let unreadable = d.incidents.iter().find(|i| i.id == "50").unwrap();
    assert!(unreadable.normalised.is_none());
}
