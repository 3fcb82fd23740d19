//! Story vocabulary: the analyst-facing state of a story.

use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in the order the Workbench lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Returns the stable name used in the API and the database.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the stable name.
            #[must_use]
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// Where a story stands in the analyst workflow.
    Status {
        Open => "open",
        PendingAnalysis => "pending_analysis",
        PendingMoreInfo => "pending_more_info",
        Monitoring => "monitoring",
        Closed => "closed",
        Reopened => "reopened",
    }
);

string_enum!(
    /// The analyst's verdict on a story.
    Verdict {
        Suspicious => "suspicious",
        Malicious => "malicious",
        Informational => "informational",
        Benign => "benign",
    }
);

string_enum!(
    /// Severity, which only a `malicious` verdict carries.
    Severity {
        Low => "low",
        Medium => "medium",
        High => "high",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(*s));
        }
        for v in Verdict::ALL {
            assert_eq!(Verdict::parse(v.as_str()), Some(*v));
        }
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Some(*s));
        }
        assert_eq!(Status::parse("Closed"), None);
        assert_eq!(
            serde_json::to_string(&Status::PendingMoreInfo)
                .ok()
                .as_deref(),
            Some("\"pending_more_info\"")
        );
    }
}
