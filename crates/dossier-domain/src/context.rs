//! What an incident names beside its device and its file: the users, the processes, the other
//! files and the indicators its producer reported. Each source maps its vendor's fields onto
//! these neutral types; [`crate::entities`] gathers them over a story's incidents.

use serde::{Deserialize, Serialize};

use crate::incident::FileInfo;

/// The entities one incident names beside its device and its main file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    #[serde(default)]
    pub users: Vec<UserRef>,
    #[serde(default)]
    pub processes: Vec<ProcessInfo>,
    /// Files the incident names other than its main file (`Incident::file`).
    #[serde(default)]
    pub files: Vec<FileInfo>,
    #[serde(default)]
    pub indicators: Vec<Indicator>,
}

/// How a user takes part in an incident.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    /// The account the detected process ran as.
    Process,
    /// The user logged in on the device.
    LoggedIn,
    /// An account the producer names otherwise (an alert's user evidence).
    #[default]
    Account,
}

impl UserRole {
    /// Returns the words the story page shows: `process user`, `logged-in user`, `account`.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            UserRole::Process => "process user",
            UserRole::LoggedIn => "logged-in user",
            UserRole::Account => "account",
        }
    }
}

/// A user an incident names, as the producer spelled it (`DOMAIN\name`, `name@upn`, `root`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    pub name: String,
    pub role: UserRole,
}

/// A process an incident names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// The image name, e.g. `powershell.exe`.
    pub name: Option<String>,
    /// The producer's process id, as text.
    pub pid: Option<String>,
    pub command_line: Option<String>,
    /// The account it ran as.
    pub user: Option<String>,
    /// The parent process, by name (or id when the producer gives no name).
    pub parent: Option<String>,
    /// The image's path.
    pub path: Option<String>,
    /// The image's SHA-256, lowercase hex, when the producer gives it.
    pub sha256: Option<String>,
}

/// An indicator a producer reported: what it saw, in its own words.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicator {
    pub description: Option<String>,
    pub category: Option<String>,
    /// MITRE ATT&CK technique ids the indicator names (or the producer's own ids).
    pub techniques: Vec<String>,
}

/// Returns the text trimmed, or `None` when it is empty or a word producers send for
/// "nothing" (`null`, `none`, `n/a`, `unknown`, `undefined`, `-`). Mappers read entity fields
/// through it so an empty user never becomes an entity.
#[must_use]
pub fn known_text(text: Option<&str>) -> Option<String> {
    let t = text?.trim();
    let nothing = ["", "-", "null", "none", "n/a", "unknown", "undefined"];
    (!nothing.iter().any(|n| n.eq_ignore_ascii_case(t))).then(|| t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::known_text;

    #[test]
    fn nothing_words_are_no_text() {
        for t in ["", "  ", "null", "None", "N/A", "unknown", "-"] {
            assert_eq!(known_text(Some(t)), None, "{t}");
        }
        assert_eq!(known_text(Some(" root ")).as_deref(), Some("root"));
        assert_eq!(known_text(None), None);
    }
}
