//! Producers: where incidents come from. The domain knows no producer by name; each source
//! declares its own ([`ProducerSpec`]) and the rules read the vendor's name, the engine type and
//! how the producer judges a threat from it.

use std::sync::RwLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a producer states its own judgement of a threat, which a story's criticality starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Judged {
    /// By a confidence (malicious, suspicious, n/a), as SentinelOne does.
    ByConfidence,
    /// By a severity (informational to critical), as Defender and CrowdStrike do.
    BySeverity,
}

/// What a source declares about its producer.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ProducerSpec {
    /// The stable name used in the API and the database (`producer`).
    pub name: &'static str,
    /// The vendor shown in the Workbench, the criticality reasons and the summary.
    pub vendor: &'static str,
    /// The engine type, which the "Endpoint" quick filter selects on.
    pub engine_type: &'static str,
    /// How the producer judges a threat.
    pub judged: Judged,
}

/// Where an incident comes from: a producer a source declared. Compared, ordered and hashed by
/// its stable name.
#[derive(Clone, Copy)]
pub struct Producer(&'static ProducerSpec);

/// Every producer made so far in this process: those of the sources the binary is built with
/// (each declares its producer when it is made). Only [`Producer::parse`] reads it, to turn a
/// stored name back into a producer; it is a table of what the build contains, never settings.
static KNOWN: RwLock<Vec<&'static ProducerSpec>> = RwLock::new(Vec::new());

impl Producer {
    /// The producer a source declares, known from now on to [`Producer::parse`].
    #[must_use]
    pub fn new(spec: &'static ProducerSpec) -> Self {
        let known = |list: &Vec<&'static ProducerSpec>| list.iter().any(|s| s.name == spec.name);
        let already = KNOWN.read().is_ok_and(|list| known(&list));
        if !already {
            if let Ok(mut list) = KNOWN.write() {
                if !known(&list) {
                    list.push(spec);
                }
            }
        }
        Self(spec)
    }

    /// Returns the stable name used in the API and the database.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    /// Returns the vendor shown in the Workbench.
    #[must_use]
    pub fn vendor(self) -> &'static str {
        self.0.vendor
    }

    /// Returns the engine type, which the "Endpoint" quick filter selects on.
    #[must_use]
    pub fn engine_type(self) -> &'static str {
        self.0.engine_type
    }

    /// Returns how the producer judges a threat.
    #[must_use]
    pub fn judged(self) -> Judged {
        self.0.judged
    }

    /// Parses a stable name of a producer this build has; `None` for any other.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        let list = KNOWN.read().ok()?;
        list.iter().find(|s| s.name == name).map(|s| Self(s))
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

impl std::fmt::Display for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

impl PartialEq for Producer {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Producer {}

impl std::hash::Hash for Producer {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
    }
}

impl PartialOrd for Producer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Producer {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.name.cmp(other.0.name)
    }
}

impl Serialize for Producer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name)
    }
}

impl<'de> Deserialize<'de> for Producer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Producer::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown producer {name:?}")))
    }
}

/// A producer for the domain's own tests: a confidence-judging endpoint producer.
#[cfg(test)]
pub(crate) fn test_producer() -> Producer {
    static SPEC: ProducerSpec = ProducerSpec {
        name: "testvendor",
        vendor: "TestVendor",
        engine_type: "endpoint",
        judged: Judged::ByConfidence,
    };
    Producer::new(&SPEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    static SEVERE: ProducerSpec = ProducerSpec {
        name: "severe",
        vendor: "Severe",
        engine_type: "endpoint",
        judged: Judged::BySeverity,
    };

    #[test]
    fn a_declared_producer_parses_and_an_unknown_one_does_not() {
        assert_eq!(Producer::parse("never-declared"), None);
        let p = Producer::new(&SEVERE);
        assert_eq!(Producer::parse("severe"), Some(p));
        assert_eq!(p.vendor(), "Severe");
        assert_eq!(p.judged(), Judged::BySeverity);
        assert_eq!(
            serde_json::to_string(&p).ok().as_deref(),
            Some("\"severe\"")
        );
        let back: Result<Producer, _> = serde_json::from_str("\"severe\"");
        assert_eq!(back.ok(), Some(p));
        assert!(serde_json::from_str::<Producer>("\"nobody\"").is_err());
    }
}
