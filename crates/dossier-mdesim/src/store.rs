//! The alerts, by id and in `lastUpdateDateTime` order.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::ticks;

/// One stored alert: its text and the fields queries read.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub value: Value,
    /// `value` as served: lists are written from it, rather than cloning and serialising
    /// every alert again for every page.
    pub text: std::sync::Arc<str>,
    pub updated: i64,
    pub created: i64,
}

impl Stored {
    /// Reads the fields queries need; the alert must have an id and both times.
    pub(crate) fn new(value: Value) -> Result<(String, Self), String> {
        let id = value["id"]
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .ok_or("id is missing")?
            .to_owned();
        let time = |key: &str| {
            value[key]
                .as_str()
                .and_then(ticks::parse)
                .ok_or_else(|| format!("{key} is not a timestamp"))
        };
        let created = time("createdDateTime")?;
        let updated = time("lastUpdateDateTime")?;
        Ok((
            id,
            Stored {
                text: value.to_string().into(),
                value,
                updated,
                created,
            },
        ))
    }

    /// A string field, for filters.
    pub(crate) fn field(&self, key: &str) -> Option<&str> {
        self.value[key].as_str()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    pub by_id: HashMap<String, Stored>,
    /// `(lastUpdateDateTime, id)`, the order of `$orderby=lastUpdateDateTime`.
    pub by_update: BTreeSet<(i64, String)>,
}

impl Store {
    /// Inserts or replaces an alert.
    pub(crate) fn put(&mut self, id: String, stored: Stored) {
        if let Some(old) = self.by_id.get(&id) {
            self.by_update.remove(&(old.updated, id.clone()));
        }
        self.by_update.insert((stored.updated, id.clone()));
        self.by_id.insert(id, stored);
    }
}
