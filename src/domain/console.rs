//! The console's rules that need no I/O: its reserved client, and how long a sign-in
//! session lives.

/// The built-in public client every tenant's console signs in through. It exists in
/// every tenant, for that tenant only, and is never stored: no one can register, edit
/// or delete it.
pub const CONSOLE_CLIENT_ID: &str = "portcullis-console";

/// A session ends after this long without a request.
pub const IDLE_SECONDS: i64 = 15 * 60;
/// A session ends this long after its sign-in, however busy.
pub const LIFETIME_SECONDS: i64 = 8 * 60 * 60;
/// A dangerous action (a deletion, a rotation, a bulk change) needs a sign-in this
/// recent.
pub const RECENT_SIGN_IN_SECONDS: i64 = 5 * 60;

/// Whether a session may still be used at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Live,
    /// No request for [`IDLE_SECONDS`].
    Idle,
    /// Signed in [`LIFETIME_SECONDS`] ago or more.
    Over,
}

/// The state of a session signed in at `signed_in_at` and last used at `last_seen_at`.
pub fn session_state(signed_in_at: i64, last_seen_at: i64, now: i64) -> SessionState {
    if now - signed_in_at >= LIFETIME_SECONDS {
        SessionState::Over
    } else if now - last_seen_at >= IDLE_SECONDS {
        SessionState::Idle
    } else {
        SessionState::Live
    }
}

/// Whether a sign-in at `signed_in_at` is recent enough for a dangerous action.
pub fn signed_in_recently(signed_in_at: i64, now: i64) -> bool {
    now - signed_in_at < RECENT_SIGN_IN_SECONDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lives_until_idle_or_over() {
        let t = 1_000_000;
        assert_eq!(session_state(t, t, t), SessionState::Live);
        assert_eq!(
            session_state(t, t, t + IDLE_SECONDS - 1),
            SessionState::Live
        );
        assert_eq!(session_state(t, t, t + IDLE_SECONDS), SessionState::Idle);
        // Busy all day, it still ends at eight hours.
        let busy = t + LIFETIME_SECONDS - 1;
        assert_eq!(session_state(t, busy, busy), SessionState::Live);
        assert_eq!(
            session_state(t, busy, t + LIFETIME_SECONDS),
            SessionState::Over
        );
        // Over wins over idle: the session is simply done.
        assert_eq!(
            session_state(t, t, t + LIFETIME_SECONDS),
            SessionState::Over
        );
    }

    #[test]
    fn a_recent_sign_in_is_one_of_the_last_five_minutes() {
        assert!(signed_in_recently(100, 100));
        assert!(signed_in_recently(100, 100 + RECENT_SIGN_IN_SECONDS - 1));
        assert!(!signed_in_recently(100, 100 + RECENT_SIGN_IN_SECONDS));
    }
}
