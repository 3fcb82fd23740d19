//! Accounts, licences and roles: who may see and do what.

use serde::{Deserialize, Serialize};

/// An account's licence. Stories need `xops` or `mdr`; events exist without a licence; an `mdr`
/// account reads stories but cannot act on them (its provider acts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Licence {
    None,
    Xops,
    Mdr,
}

impl Licence {
    /// Returns the stable name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Licence::None => "none",
            Licence::Xops => "xops",
            Licence::Mdr => "mdr",
        }
    }

    /// Parses the stable name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Licence::None),
            "xops" => Some(Licence::Xops),
            "mdr" => Some(Licence::Mdr),
            _ => None,
        }
    }

    /// Returns whether the account may read stories.
    #[must_use]
    pub fn can_read_stories(self) -> bool {
        matches!(self, Licence::Xops | Licence::Mdr)
    }

    /// Returns whether the account's own users may act on stories.
    #[must_use]
    pub fn can_act_on_stories(self) -> bool {
        matches!(self, Licence::Xops)
    }
}

/// A role held by a user or an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Admin,
    Operator,
    StoriesEditor,
    StoriesViewer,
    IntegrationsEditor,
    IntegrationsViewer,
    /// Reads `/metrics` and nothing else: the key a Prometheus scrape uses.
    Metrics,
}

impl Role {
    pub const ALL: &'static [Role] = &[
        Role::Admin,
        Role::Operator,
        Role::StoriesEditor,
        Role::StoriesViewer,
        Role::IntegrationsEditor,
        Role::IntegrationsViewer,
        Role::Metrics,
    ];

    /// Returns the stable name used on the command line.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::StoriesEditor => "stories-editor",
            Role::StoriesViewer => "stories-viewer",
            Role::IntegrationsEditor => "integrations-editor",
            Role::IntegrationsViewer => "integrations-viewer",
            Role::Metrics => "metrics",
        }
    }

    /// Parses the stable name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.as_str() == s.trim())
    }
}

/// Checks that a user or key with `roles` is given an account exactly when it needs one: an
/// operator spans every account and has none (an account would mislead: it would be ignored);
/// a metrics key reads no account's data and has none either, and holds that role alone (or
/// beside operator), so that it never lends an account-less scope to another role; every
/// other role acts within one account.
///
/// # Errors
/// What is wrong, starting with the field's name (`account: …`, `role: …`).
pub fn check_account(roles: &[Role], account: Option<&str>) -> Result<(), &'static str> {
    let operator = roles.contains(&Role::Operator);
    let metrics = roles.contains(&Role::Metrics);
    if metrics
        && roles
            .iter()
            .any(|r| !matches!(r, Role::Metrics | Role::Operator))
    {
        return Err(
            "role: metrics is a role of its own (or beside operator): it reads no account's data",
        );
    }
    match (account, operator, metrics) {
        (Some(_), true, _) => Err("account: an operator spans accounts and has none"),
        (Some(_), false, true) => {
            Err("account: a metrics key reads no account's data and has none")
        }
        (None, false, false) => Err("account: required unless the role is operator or metrics"),
        _ => Ok(()),
    }
}

/// What a set of roles permits, within the account it belongs to (or any account, for an
/// operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each flag is one permission that roles grant independently, not a state machine"
)]
pub struct Permissions {
    pub view_stories: bool,
    pub edit_stories: bool,
    pub view_integrations: bool,
    pub edit_integrations: bool,
    pub all_accounts: bool,
    /// May read `/metrics`, which counts every account's connectors and stories.
    pub read_metrics: bool,
}

impl Permissions {
    /// Returns the union of what each role permits. An editor can also view; admin and operator
    /// have everything.
    #[must_use]
    pub fn of(roles: &[Role]) -> Self {
        let mut p = Permissions::default();
        for r in roles {
            match r {
                Role::Admin | Role::Operator => {
                    p.view_stories = true;
                    p.edit_stories = true;
                    p.view_integrations = true;
                    p.edit_integrations = true;
                    p.all_accounts |= *r == Role::Operator;
                    p.read_metrics |= *r == Role::Operator;
                }
                Role::StoriesEditor => {
                    p.view_stories = true;
                    p.edit_stories = true;
                }
                Role::StoriesViewer => p.view_stories = true,
                Role::IntegrationsEditor => {
                    p.view_integrations = true;
                    p.edit_integrations = true;
                }
                Role::IntegrationsViewer => p.view_integrations = true,
                Role::Metrics => p.read_metrics = true,
            }
        }
        p
    }
}

/// Parses a comma-separated role list, naming the first unknown role in the error.
///
/// # Errors
/// Returns the unknown role name, or an empty string when the list is empty.
pub fn parse_roles(s: &str) -> Result<Vec<Role>, String> {
    let mut roles = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let role = Role::parse(part).ok_or_else(|| part.to_owned())?;
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    if roles.is_empty() {
        return Err(String::new());
    }
    Ok(roles)
}

/// The most characters an API key's name holds.
pub const MAX_KEY_NAME: usize = 64;

/// Checks an API key's name (`dossier api-key create --name`): 1 to [`MAX_KEY_NAME`]
/// characters once trimmed, with no control, bidirectional, zero-width or other invisible
/// character but the plain space ([`crate::display::is_invisible`]), since the name is shown
/// as the actor in timelines and the audit log and must read as what it is.
///
/// # Errors
/// What is wrong, starting with the field's name (`name: …`).
pub fn check_key_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("name: is empty; leave --name out for a key without a name".into());
    }
    if name.chars().count() > MAX_KEY_NAME {
        return Err(format!("name: at most {MAX_KEY_NAME} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| c != ' ' && crate::display::is_invisible(c))
    {
        return Err(format!(
            "name: U+{:04X} is a control or invisible character; use letters, digits, \
             punctuation and spaces",
            u32::from(c)
        ));
    }
    Ok(name.to_owned())
}

/// The actor an API key is recorded as in timelines and the audit log: `api-key:` and the
/// first 8 characters of its id, after its name when it has one (`SOAR (api-key:1a2b3c4d)`).
/// The id keeps two keys of one name apart (a comment is deleted only by its author), and
/// user names hold no `(`, `:` or space, so no key reads as a person.
#[must_use]
pub fn key_actor(id: &str, name: Option<&str>) -> String {
    let short: String = id.chars().take(8).collect();
    match name {
        Some(name) => format!("{name} (api-key:{short})"),
        None => format!("api-key:{short}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn editors_can_view_and_viewers_cannot_edit() {
        let p = Permissions::of(&[Role::StoriesEditor]);
        assert!(p.view_stories && p.edit_stories && !p.view_integrations && !p.all_accounts);
        let p = Permissions::of(&[Role::IntegrationsViewer]);
        assert!(p.view_integrations && !p.edit_integrations && !p.view_stories);
        assert!(Permissions::of(&[Role::Operator]).all_accounts);
        assert!(!Permissions::of(&[Role::Admin]).all_accounts);
    }

    #[test]
    fn a_metrics_key_reads_metrics_alone_and_has_no_account() {
        let p = Permissions::of(&[Role::Metrics]);
        assert!(p.read_metrics && !p.all_accounts && !p.view_stories && !p.view_integrations);
        assert!(Permissions::of(&[Role::Operator]).read_metrics);
        assert!(!Permissions::of(&[Role::Admin]).read_metrics);
        assert_eq!(check_account(&[Role::Metrics], None), Ok(()));
        assert_eq!(
            check_account(&[Role::Metrics, Role::Operator], None),
            Ok(())
        );
        assert!(check_account(&[Role::Metrics], Some("a")).is_err_and(|m| m.starts_with("account")));
        for other in [Role::StoriesViewer, Role::Admin, Role::IntegrationsViewer] {
            assert!(
                check_account(&[Role::Metrics, other], None).is_err_and(|m| m.starts_with("role"))
            );
            assert!(check_account(&[Role::Metrics, other], Some("a")).is_err());
        }
    }

    #[test]
    fn parses_role_lists() {
        assert_eq!(
            parse_roles("admin, stories-viewer"),
            Ok(vec![Role::Admin, Role::StoriesViewer])
        );
        assert_eq!(parse_roles("admin,root"), Err("root".to_owned()));
        assert_eq!(parse_roles(" , "), Err(String::new()));
    }

    #[test]
    fn licences_gate_stories() {
        assert!(!Licence::None.can_read_stories());
        assert!(Licence::Mdr.can_read_stories() && !Licence::Mdr.can_act_on_stories());
        assert!(Licence::Xops.can_act_on_stories());
    }

    #[test]
    fn key_names_are_bounded_and_visible() {
        assert_eq!(
            check_key_name("  SOAR playbook "),
            Ok("SOAR playbook".into())
        );
        assert_eq!(
            check_key_name(&"é".repeat(64)).map(|n| n.chars().count()),
            Ok(64)
        );
        for (bad, why) in [
            ("", "is empty"),
            ("   ", "is empty"),
            (&*"x".repeat(65), "at most 64"),
            ("a\tb", "U+0009"),
            ("a\u{1b}[31mb", "U+001B"),
            ("inv\u{202E}exe", "U+202E"),
            ("a\u{200B}b", "U+200B"),
            ("a\nb", "U+000A"),
        ] {
            let e = check_key_name(bad).unwrap_err();
            assert!(e.starts_with("name: ") && e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_named_key_acts_under_its_name_and_id() {
        assert_eq!(key_actor("1a2b3c4d5e6f", None), "api-key:1a2b3c4d");
        assert_eq!(
            key_actor("1a2b3c4d5e6f", Some("SOAR")),
            "SOAR (api-key:1a2b3c4d)"
        );
        assert_eq!(key_actor("abc", None), "api-key:abc");
    }
}
