//! The audit log's vocabulary: what happened, and who did it. The action names are a
//! public contract (README, "Audit log", whose table a test checks against this list).

use super::token::Reason;
use std::fmt;

/// Everything the audit log records, under the name it is stored and shown by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    UserCreate,
    UserDelete,
    UserPassword,
    UserRoles,
    UserProfile,
    UserEnable,
    UserDisable,
    UserUnlock,
    UserSignInFailure,
    UserLock,
    RoleCreate,
    RoleUpdate,
    RoleDelete,
    ClientCreate,
    ClientUpdate,
    ClientDelete,
    ClientSecret,
    ClientUnlock,
    ClientSignInFailure,
    ClientLock,
    ResourcesUpdate,
    SettingsUpdate,
    TokensRevoke,
    KeyRotate,
    TenantCreate,
    TenantDeactivate,
    ConsoleSignIn,
    ConsoleSignOut,
    UserSignOut,
}

impl AuditAction {
    pub const ALL: &'static [AuditAction] = &[
        AuditAction::UserCreate,
        AuditAction::UserDelete,
        AuditAction::UserPassword,
        AuditAction::UserRoles,
        AuditAction::UserProfile,
        AuditAction::UserEnable,
        AuditAction::UserDisable,
        AuditAction::UserUnlock,
        AuditAction::UserSignInFailure,
        AuditAction::UserLock,
        AuditAction::RoleCreate,
        AuditAction::RoleUpdate,
        AuditAction::RoleDelete,
        AuditAction::ClientCreate,
        AuditAction::ClientUpdate,
        AuditAction::ClientDelete,
        AuditAction::ClientSecret,
        AuditAction::ClientUnlock,
        AuditAction::ClientSignInFailure,
        AuditAction::ClientLock,
        AuditAction::ResourcesUpdate,
        AuditAction::SettingsUpdate,
        AuditAction::TokensRevoke,
        AuditAction::KeyRotate,
        AuditAction::TenantCreate,
        AuditAction::TenantDeactivate,
        AuditAction::ConsoleSignIn,
        AuditAction::ConsoleSignOut,
        AuditAction::UserSignOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::UserCreate => "user.create",
            AuditAction::UserDelete => "user.delete",
            AuditAction::UserPassword => "user.password",
            AuditAction::UserRoles => "user.roles",
            AuditAction::UserProfile => "user.profile",
            AuditAction::UserEnable => "user.enable",
            AuditAction::UserDisable => "user.disable",
            AuditAction::UserUnlock => "user.unlock",
            AuditAction::UserSignInFailure => "user.signin_failure",
            AuditAction::UserLock => "user.lock",
            AuditAction::RoleCreate => "role.create",
            AuditAction::RoleUpdate => "role.update",
            AuditAction::RoleDelete => "role.delete",
            AuditAction::ClientCreate => "client.create",
            AuditAction::ClientUpdate => "client.update",
            AuditAction::ClientDelete => "client.delete",
            AuditAction::ClientSecret => "client.secret",
            AuditAction::ClientUnlock => "client.unlock",
            AuditAction::ClientSignInFailure => "client.signin_failure",
            AuditAction::ClientLock => "client.lock",
            AuditAction::ResourcesUpdate => "resources.update",
            AuditAction::SettingsUpdate => "settings.update",
            AuditAction::TokensRevoke => "tokens.revoke",
            AuditAction::KeyRotate => "key.rotate",
            AuditAction::TenantCreate => "tenant.create",
            AuditAction::TenantDeactivate => "tenant.deactivate",
            AuditAction::ConsoleSignIn => "console.sign_in",
            AuditAction::ConsoleSignOut => "console.sign_out",
            AuditAction::UserSignOut => "user.sign_out",
        }
    }

    /// The action stored under `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.as_str() == name)
    }

    /// Whether someone chose to do this (an admin's change), rather than the gateway
    /// recording what a caller failed at.
    pub fn is_a_change(self) -> bool {
        match self {
            AuditAction::UserSignInFailure
            | AuditAction::UserLock
            | AuditAction::ClientSignInFailure
            | AuditAction::ClientLock
            | AuditAction::ConsoleSignIn
            | AuditAction::ConsoleSignOut
            | AuditAction::UserSignOut => false,
            AuditAction::UserCreate
            | AuditAction::UserDelete
            | AuditAction::UserPassword
            | AuditAction::UserRoles
            | AuditAction::UserProfile
            | AuditAction::UserEnable
            | AuditAction::UserDisable
            | AuditAction::UserUnlock
            | AuditAction::RoleCreate
            | AuditAction::RoleUpdate
            | AuditAction::RoleDelete
            | AuditAction::ClientCreate
            | AuditAction::ClientUpdate
            | AuditAction::ClientDelete
            | AuditAction::ClientSecret
            | AuditAction::ClientUnlock
            | AuditAction::ResourcesUpdate
            | AuditAction::SettingsUpdate
            | AuditAction::TokensRevoke
            | AuditAction::KeyRotate
            | AuditAction::TenantCreate
            | AuditAction::TenantDeactivate => true,
        }
    }

    /// The admin action that ends a token for `reason`, written in the same
    /// transaction; `None` when no admin ends a token that way.
    pub fn ending(reason: Reason) -> Option<Self> {
        match reason {
            Reason::RevokedByAdmin => Some(AuditAction::TokensRevoke),
            Reason::PasswordChanged => Some(AuditAction::UserPassword),
            Reason::UserDisabled => Some(AuditAction::UserDisable),
            Reason::UserDeleted => Some(AuditAction::UserDelete),
            Reason::ClientDeleted => Some(AuditAction::ClientDelete),
            Reason::TenantDeactivated => Some(AuditAction::TenantDeactivate),
            Reason::Expired
            | Reason::Exchanged
            | Reason::Refreshed
            | Reason::RefreshReuse
            | Reason::CodeReuse
            | Reason::RevokedByClient => None,
        }
    }

    /// What the README's table says the action records.
    pub fn meaning(self) -> &'static str {
        match self {
            AuditAction::UserCreate => "a user was created",
            AuditAction::UserDelete => "a user was deleted; their tokens ended",
            AuditAction::UserPassword => "a user's password was set; their tokens ended",
            AuditAction::UserRoles => "a user's roles were replaced",
            AuditAction::UserProfile => "a user's name, email or email_verified were replaced",
            AuditAction::UserEnable => "a user was enabled",
            AuditAction::UserDisable => "a user was disabled; their tokens ended",
            AuditAction::UserUnlock => "an admin lifted a user's lock",
            AuditAction::UserSignInFailure => "a sign-in as a user failed",
            AuditAction::UserLock => "repeated failures locked a user",
            AuditAction::RoleCreate => "a role was created",
            AuditAction::RoleUpdate => "a role's permissions were replaced",
            AuditAction::RoleDelete => "a role was deleted and taken from its users",
            AuditAction::ClientCreate => "a client was registered",
            AuditAction::ClientUpdate => {
                "a client's registration was edited; `detail` names the fields"
            }
            AuditAction::ClientDelete => "a client was deleted; its tokens ended",
            AuditAction::ClientSecret => "a client's secret was rotated",
            AuditAction::ClientUnlock => "an admin lifted a client's lock",
            AuditAction::ClientSignInFailure => "a client's authentication failed",
            AuditAction::ClientLock => "repeated failures locked a client",
            AuditAction::ResourcesUpdate => "the tenant's resource rules were replaced",
            AuditAction::SettingsUpdate => "the tenant's settings changed; `detail` names the keys",
            AuditAction::TokensRevoke => "an admin revoked tokens",
            AuditAction::KeyRotate => "the tenant's signing key was rotated",
            AuditAction::TenantCreate => "a tenant was created (in the super tenant's log)",
            AuditAction::TenantDeactivate => "a tenant was deactivated; its tokens ended",
            AuditAction::ConsoleSignIn => "a user signed in to the console",
            AuditAction::ConsoleSignOut => "a user signed out of the console",
            AuditAction::UserSignOut => {
                "a user signed out at the end-session endpoint, ending their single sign-on session"
            }
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who an audit entry or a token's state change names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The gateway itself: an expiry, a lock after repeated failures.
    System,
    /// A client acting on its own tokens (a refresh, a code exchange, a revocation).
    Client(String),
    /// A user, by qualified name (`alice@foo.com`): an admin.
    User(String),
    /// The name a failed sign-in presented, a client id or a user's sign-in name,
    /// which may belong to no one.
    Presented(String),
    /// A client that failed to authenticate while presenting a code that is then spent.
    Unauthenticated,
}

impl Actor {
    pub fn client(client_id: &str) -> Self {
        Actor::Client(client_id.to_owned())
    }

    pub fn user(qualified_name: &str) -> Self {
        Actor::User(qualified_name.to_owned())
    }

    /// As stored: `system`, `client:{id}`, or the name.
    pub fn stored(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::System => f.write_str("system"),
            Actor::Client(id) => write!(f, "client:{id}"),
            Actor::User(name) | Actor::Presented(name) => f.write_str(name),
            Actor::Unauthenticated => f.write_str("unauthenticated client"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_one_distinct_name_and_a_meaning() {
        let mut names: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), AuditAction::ALL.len());
        assert!(AuditAction::ALL.iter().all(|a| !a.meaning().is_empty()));
    }

    /// The README's table is the public list: the same actions, in the same order,
    /// with the same meanings.
    #[test]
    fn the_readme_lists_every_action() {
        let readme = include_str!("../../README.md");
        let table = readme
            .split("<!-- audit-actions -->")
            .nth(1)
            .and_then(|rest| rest.split("<!-- /audit-actions -->").next())
            .expect("the README has the audit actions table");
        let rows: Vec<String> = table
            .lines()
            .filter(|line| line.starts_with("| `"))
            .map(str::to_owned)
            .collect();
        let expected: Vec<String> = AuditAction::ALL
            .iter()
            .map(|a| format!("| `{}` | {} |", a.as_str(), a.meaning()))
            .collect();
        assert_eq!(rows, expected);
    }

    #[test]
    fn actors_are_stored_as_before() {
        assert_eq!(Actor::System.stored(), "system");
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(*action));
        }
        assert_eq!(AuditAction::parse("user.fly"), None);
        assert_eq!(Actor::Client("c1".into()).stored(), "client:c1");
        assert_eq!(
            Actor::User("admin@foo.com".into()).stored(),
            "admin@foo.com"
        );
    }
}
