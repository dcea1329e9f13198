//! The console's rules that need no I/O: its reserved client, and how long a sign-in
//! session lives.

use super::session::SessionLimits;

/// The built-in public client every tenant's console signs in through. It exists in
/// every tenant, for that tenant only, and is never stored: no one can register, edit
/// or delete it.
pub const CONSOLE_CLIENT_ID: &str = "portcullis-console";

/// The console's own session, on top of the sign-in: shorter than single sign-on's,
/// since it can change a tenant.
pub const CONSOLE_SESSION: SessionLimits = SessionLimits {
    idle_seconds: 15 * 60,
    lifetime_seconds: 8 * 60 * 60,
};

/// A dangerous action (a deletion, a rotation, a bulk change) needs a sign-in this
/// recent.
pub const RECENT_SIGN_IN_SECONDS: i64 = 5 * 60;

/// Whether a sign-in at `signed_in_at` is recent enough for a dangerous action.
pub fn signed_in_recently(signed_in_at: i64, now: i64) -> bool {
    now - signed_in_at < RECENT_SIGN_IN_SECONDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recent_sign_in_is_one_of_the_last_five_minutes() {
        assert!(signed_in_recently(100, 100));
        assert!(signed_in_recently(100, 100 + RECENT_SIGN_IN_SECONDS - 1));
        assert!(!signed_in_recently(100, 100 + RECENT_SIGN_IN_SECONDS));
    }
}
