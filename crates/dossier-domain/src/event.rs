//! Events: the append-only record of what happened, produced with or without a licence.

use serde::{Deserialize, Serialize};

/// The kinds of event Dossier records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A threat seen for the first time ("Detection and Response" event).
    IncidentCreated,
    /// A known threat changed (mitigation, verdict, status…).
    IncidentUpdated,
    StoryCreated,
    StoryUpdated,
    /// A connector went into `error` (only when it tracks errors).
    ConnectorError,
    /// A connector's token expires soon, or its tenant turned slow (only when it tracks
    /// errors).
    ConnectorWarning,
    /// A record from a connector could not be read (no id, an id with surrounding whitespace,
    /// no timestamp, over the size cap on its own): reported whether or not the connector tracks errors,
    /// since a threat must never be dropped in silence.
    IncidentUnreadable,
}

impl EventType {
    pub const ALL: &'static [EventType] = &[
        EventType::IncidentCreated,
        EventType::IncidentUpdated,
        EventType::StoryCreated,
        EventType::StoryUpdated,
        EventType::ConnectorError,
        EventType::ConnectorWarning,
        EventType::IncidentUnreadable,
    ];

    /// Returns the stable name used in the API and the database.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::IncidentCreated => "incident_created",
            EventType::IncidentUpdated => "incident_updated",
            EventType::StoryCreated => "story_created",
            EventType::StoryUpdated => "story_updated",
            EventType::ConnectorError => "connector_error",
            EventType::ConnectorWarning => "connector_warning",
            EventType::IncidentUnreadable => "incident_unreadable",
        }
    }

    /// Parses the stable name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == s)
    }
}
