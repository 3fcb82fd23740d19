//! Ingest where it meets SQLite's own schema.

use dossier_store::conformance::{in_outbreak, incident, sha1, t0};
use dossier_store::Store;

use crate::{fixture, Fixture};

/// Closes the fixture's database, runs `sql` on it as an older release would have left it, and
/// opens it again with this release, which migrates it.
fn reopened_after(f: Fixture, sql: &str) -> Fixture {
    let Fixture {
        store,
        account,
        connector,
        generation,
        source,
        guard: dir,
    } = f;
    drop(store);
    let path = dir.path().join("t.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
    let store =
        dossier_store_sqlite::SqliteStore::open(path.to_str().unwrap(), crate::s1()).unwrap();
    Fixture {
        store,
        account,
        connector,
        generation,
        source,
        guard: dir,
    }
}

/// Undoes the migrations after version 9, back to how version 9 left a database.
const UNDO_AFTER_9: &str = "ALTER TABLE connectors DROP COLUMN response;
     DROP INDEX stories_updated;
     CREATE INDEX stories_updated ON stories(account_id, updated_at, id, criticality,
         incident_count, status, verdict, severity, device_name, indication);
     ALTER TABLE api_keys DROP COLUMN name;
     DROP TABLE user_settings;
     DROP INDEX incidents_story;
     ALTER TABLE incidents DROP COLUMN unmitigated;
     CREATE INDEX incidents_story ON incidents(story_id, created_at, connector_id, external_id,
         confidence_rank, false_positive);";

/// The schema version this release migrates a database to.
const LATEST: i64 = 14;

/// The schema version of the fixture's database.
fn schema_version(f: &Fixture) -> i64 {
    rusqlite::Connection::open(f.guard.path().join("t.db"))
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// A database the release before left (schema version 3, `stories_hash` without the outbreak
/// tier) migrates when opened, keeps its stories, and its outbreaks still rise.
#[tokio::test]
async fn a_database_of_the_release_before_migrates_and_keeps_its_stories() {
    let f = fixture().await;
    let h = sha1(5);
    f.store
        .commit_page(f.page(vec![incident("1", 0, "ag1", Some(&h))], t0()))
        .await
        .unwrap();
    let before = f.stories_by_members().await;
    let f = reopened_after(
        f,
        &format!(
            "{UNDO_AFTER_9}
         DROP INDEX stories_assignee;
         ALTER TABLE stories DROP COLUMN assignee;
         ALTER TABLE stories DROP COLUMN close_reason;
         DROP TABLE file_aliases;
         ALTER TABLE incidents DROP COLUMN producer;
         ALTER TABLE connectors DROP COLUMN config;
         DROP TABLE account_epochs;
         DROP INDEX stories_hash;
         CREATE INDEX stories_hash ON stories(account_id, file_hash, agent_uuid);
         PRAGMA user_version = 3;"
        ),
    );
    assert_eq!(f.stories_by_members().await, before);
    assert_eq!(schema_version(&f), LATEST);

    f.store
        .commit_page(f.page(vec![incident("2", 1, "ag2", Some(&h))], t0()))
        .await
        .unwrap();
    let a = f.assignment().await;
    let first = f.story(&a["1"].0).await;
    assert!(
        in_outbreak(&first),
        "{:?}",
        first.criticality_detail.reasons
    );
}

/// A database of the release before file identities (schema version 7) filed each story under
/// its key's hash, so a file seen by its SHA-1 and SHA-256 on one device and by its SHA-256
/// alone on another counted one device each. Opened by this release, it learns the link from
/// the incidents it holds, and both stories are in the outbreak.
#[tokio::test]
async fn a_database_without_file_identities_learns_them_from_its_incidents() {
    let f = fixture().await;
    let sha256 = format!("{:064x}", 5);
    let mut both = incident("1", 0, "ag1", Some(&sha1(5)));
    both.file.sha256 = Some(sha256.clone());
    let mut alone = incident("2", 1, "ag2", None);
    alone.file.sha256 = Some(sha256.clone());
    f.store
        .commit_page(f.page(vec![both, alone], t0()))
        .await
        .unwrap();
    let before = f.stories_by_members().await;
    // As version 7 left it: no aliases, the SHA-256-only story filed under its SHA-256, and no
    // story in an outbreak.
    let f = reopened_after(
        f,
        &format!(
            "{UNDO_AFTER_9}
             DROP INDEX stories_assignee;
             ALTER TABLE stories DROP COLUMN assignee;
             ALTER TABLE stories DROP COLUMN close_reason;
             DROP TABLE file_aliases;
             UPDATE stories SET file_hash = '{sha256}' WHERE agent_uuid = 'ag2';
             UPDATE stories SET outbreak_tier = 0, criticality = 1,
                 criticality_detail = '{{\"score\":1,\"reasons\":[]}}';
             PRAGMA user_version = 7;"
        ),
    );
    assert_eq!(f.stories_by_members().await, before);
    let a = f.assignment().await;
    for id in ["1", "2"] {
        let d = f.story(&a[id].0).await;
        assert!(
            in_outbreak(&d),
            "story of {id}: {:?}",
            d.criticality_detail.reasons
        );
        assert!(d.story.criticality > 1);
    }
}

/// A key of the release before (schema version 9, no key names) keeps working once migrated,
/// without a name; a key given one keeps it.
#[tokio::test]
async fn an_api_key_of_the_release_before_migrates_without_a_name() {
    use dossier_domain::access::Role;
    let f = fixture().await;
    let account = f.account.clone();
    let key = |id: &str, name: Option<&str>| dossier_store::ApiKeyRecord {
        id: id.into(),
        account_id: Some(account.clone()),
        key_hash: format!("hash-{id}"),
        roles: vec![Role::StoriesEditor],
        created_at: t0(),
        name: name.map(str::to_owned),
    };
    let old = key("old", None);
    f.store.insert_api_key(&old).await.unwrap();
    let f = reopened_after(f, &format!("{UNDO_AFTER_9} PRAGMA user_version = 9;"));
    assert_eq!(schema_version(&f), LATEST);
    assert_eq!(f.store.find_api_key("hash-old").await.unwrap(), old);
    let named = key("new", Some("SOAR playbook"));
    f.store.insert_api_key(&named).await.unwrap();
    assert_eq!(f.store.find_api_key("hash-new").await.unwrap(), named);
    let listed = f.store.list_api_keys(Some(&f.account)).await.unwrap();
    assert_eq!(listed.len(), 2);
}

/// A database of the release before incidents kept their mitigation (schema version 12) scored
/// a story by its latest incident alone. Opened by this release, it reads each stored threat's
/// mitigation, and a story whose earlier incident is not mitigated is scored for it.
#[tokio::test]
async fn a_database_without_incident_mitigation_scores_its_unmitigated_incidents() {
    let f = fixture().await;
    let h = sha1(7);
    let early = incident("1", 0, "ag1", Some(&h));
    let mut later = incident("2", 1, "ag1", Some(&h));
    later.mitigation_status = Some("mitigated".into());
    later.mitigation = dossier_domain::vocabulary::Mitigation::Mitigated;
    let later = f.mapped(later);
    f.store
        .commit_page(f.page(vec![early, later], t0()))
        .await
        .unwrap();
    let a = f.assignment().await;
    let scored = f.story(&a["1"].0).await;
    let reason = "+1: 1 of 2 incidents not mitigated";
    assert!(
        scored
            .criticality_detail
            .reasons
            .iter()
            .any(|r| r == reason),
        "{:?}",
        scored.criticality_detail.reasons
    );
    // As version 12 left it: no per-incident mitigation, the story scored by its latest.
    let f = reopened_after(
        f,
        "ALTER TABLE connectors DROP COLUMN response;
         DROP INDEX incidents_story;
         ALTER TABLE incidents DROP COLUMN unmitigated;
         CREATE INDEX incidents_story ON incidents(story_id, created_at, connector_id,
             external_id, confidence_rank, false_positive);
         UPDATE stories SET criticality = 1, criticality_detail = '{\"score\":1,\"reasons\":[]}';
         PRAGMA user_version = 12;",
    );
    assert_eq!(schema_version(&f), LATEST);
    let d = f.story(&a["1"].0).await;
    assert_eq!(d.criticality_detail, scored.criticality_detail);
    assert_eq!(d.story.criticality, scored.story.criticality);
}
