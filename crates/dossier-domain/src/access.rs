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

#[cfg(test)]
mod tests {
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
}
