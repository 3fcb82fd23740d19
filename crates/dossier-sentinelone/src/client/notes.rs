//! A threat's own notes and timeline in the console (SENTINELONE.md §3):
//! `GET /threats/{id}/notes` and `GET /threats/{id}/timeline?sortBy=createdAt&sortOrder=desc`,
//! both the paginated envelope `{"data":[…],"pagination":{"nextCursor","totalItems"}}`. Only the
//! first page of each is read, the latest [`VENDOR_NOTES_MAX`] entries: the story page shows
//! them beside Dossier's own timeline, and the console holds the rest.

use dossier_domain::time::parse_lenient;
use dossier_source::{VendorActivity, VendorNote, VendorNotes, VENDOR_NOTES_MAX};
use reqwest::Method;
use serde::Deserialize;

use super::{Client, ClientError};
use crate::lenient::{Obj, Seq, Str, U64};

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Envelope<T> {
    data: Seq<Obj<T>>,
    pagination: Obj<Pagination>,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Pagination {
    total_items: U64,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Note {
    text: Str,
    creator: Str,
    created_at: Str,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Activity {
    primary_description: Str,
    secondary_description: Str,
    created_at: Str,
}

impl Client {
    /// Reads a threat's notes and the latest entries of its timeline, oldest first; `Ok(None)`
    /// when the console answers 404 (the threat is gone from the tenant).
    ///
    /// # Errors
    /// Any other [`ClientError`]; a body that is not the paginated envelope is `BadResponse`.
    pub async fn threat_notes(&self, threat_id: &str) -> Result<Option<VendorNotes>, ClientError> {
        let limit = VENDOR_NOTES_MAX.to_string();
        let Some((notes, more_notes)) = self
            .threat_list::<Note>(threat_id, "notes", &[("limit", limit.clone())])
            .await?
        else {
            return Ok(None);
        };
        let query = [
            ("limit", limit),
            ("sortBy", "createdAt".to_owned()),
            ("sortOrder", "desc".to_owned()),
        ];
        let Some((activities, more_activities)) = self
            .threat_list::<Activity>(threat_id, "timeline", &query)
            .await?
        else {
            return Ok(None);
        };
        let mut notes: Vec<VendorNote> = notes
            .into_iter()
            .filter_map(|n| {
                Some(VendorNote {
                    text: n.text.into_inner().filter(|t| !t.trim().is_empty())?,
                    author: n.creator.into_inner(),
                    created_at: n.created_at.as_deref().and_then(parse_lenient),
                })
            })
            .collect();
        let mut timeline: Vec<VendorActivity> = activities
            .into_iter()
            .filter_map(|a| {
                let primary = a.primary_description.into_inner()?;
                let text = match a.secondary_description.into_inner() {
                    Some(second) if !second.trim().is_empty() => format!("{primary} ({second})"),
                    _ => primary,
                };
                Some(VendorActivity {
                    text,
                    created_at: a.created_at.as_deref().and_then(parse_lenient),
                })
            })
            .collect();
        // Oldest first; entries without a time keep their place after the dated ones.
        notes.sort_by_key(|n| (n.created_at.is_none(), n.created_at));
        timeline.sort_by_key(|a| (a.created_at.is_none(), a.created_at));
        Ok(Some(VendorNotes {
            notes,
            timeline,
            truncated: more_notes || more_activities,
        }))
    }

    /// Reads the first page of `GET /threats/{id}/{what}`: its entries, and whether the
    /// console holds more; `None` on a 404.
    async fn threat_list<T: for<'de> Deserialize<'de> + Default>(
        &self,
        threat_id: &str,
        what: &'static str,
        query: &[(&'static str, String)],
    ) -> Result<Option<(Vec<T>, bool)>, ClientError> {
        let mut url = self.url("threats", query)?;
        // The id is one path segment, percent-encoded: a tenant's id cannot reach another path.
        url.path_segments_mut()
            .map_err(|()| ClientError::Config("the tenant URL cannot take a path".to_owned()))?
            .push(threat_id)
            .push(what);
        let endpoint = if what == "notes" {
            "threats/{id}/notes"
        } else {
            "threats/{id}/timeline"
        };
        let body = match self.call(Method::GET, endpoint, url, None, true).await {
            Ok(body) => body,
            Err(ClientError::Rejected { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let env: Envelope<T> = serde_json::from_slice(&body)
            .map_err(|e| ClientError::BadResponse(format!("{endpoint}: {e}")))?;
        let entries: Vec<T> = env.data.0.into_iter().filter_map(|o| o.0).collect();
        let total = env.pagination.0.and_then(|p| p.total_items.0);
        let more = total.is_some_and(|t| t > entries.len() as u64);
        Ok(Some((entries, more)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    /// The real captures of both endpoints (`testdata/sentinelone/swimlane_get_threat_*.json`)
    /// read into notes and activities.
    #[test]
    fn the_captured_notes_and_timeline_read() {
        let notes: serde_json::Value = serde_json::from_str(include_str!(
            "../../../../testdata/sentinelone/swimlane_get_threat_notes.json"
        ))
        .unwrap();
        let body = serde_json::to_vec(&notes[0]["json_body"]).unwrap();
        let env: Envelope<Note> = serde_json::from_slice(&body).unwrap();
        let note = env.data.0[0].0.as_ref().unwrap();
        assert_eq!(note.text.as_deref(), Some("this is a text"));
        assert_eq!(note.creator.as_deref(), Some("Travis Riley"));
        assert_eq!(env.pagination.0.unwrap().total_items.0, Some(1));

        let timeline: serde_json::Value = serde_json::from_str(include_str!(
            "../../../../testdata/sentinelone/swimlane_get_threat_timeline.json"
        ))
        .unwrap();
        let body = serde_json::to_vec(&timeline[0]["json_body"]).unwrap();
        let env: Envelope<Activity> = serde_json::from_slice(&body).unwrap();
        assert_eq!(env.data.0.len(), 6);
        let first = env.data.0[0].0.as_ref().unwrap();
        assert!(first
            .primary_description
            .as_deref()
            .unwrap()
            .starts_with("Threat with confidence level suspicious detected"));
    }
}
