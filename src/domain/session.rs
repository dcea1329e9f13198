//! Sign-in sessions without I/O: how long one lives, and whether an authorization
//! request may reuse one or must ask for the password (OpenID Connect Core §3.1.2.1).

/// How long a session of one kind lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session ends after this long without a request.
    pub idle_seconds: i64,
    /// A session ends this long after the password was entered, however busy.
    pub lifetime_seconds: i64,
}

/// The single sign-on session of the sign-in page: the common defaults of identity
/// servers, half an hour idle and ten hours in all.
pub const SIGN_IN_SESSION: SessionLimits = SessionLimits {
    idle_seconds: 30 * 60,
    lifetime_seconds: 10 * 60 * 60,
};

/// Whether a session may still be used at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Live,
    /// No request for the idle limit.
    Idle,
    /// The password was entered the lifetime ago or more.
    Over,
}

impl SessionLimits {
    /// The state of a session signed in at `signed_in_at` and last used at
    /// `last_seen_at`.
    pub fn state(self, signed_in_at: i64, last_seen_at: i64, now: i64) -> SessionState {
        if now - signed_in_at >= self.lifetime_seconds {
            SessionState::Over
        } else if now - last_seen_at >= self.idle_seconds {
            SessionState::Idle
        } else {
            SessionState::Live
        }
    }
}

/// What an authorization request asks of the sign-in: OpenID Connect's `prompt` and
/// `max_age`, already checked for sense.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// `prompt=none`: answer without showing a page, or fail.
    pub none: bool,
    /// `prompt=login` (or `select_account`): ask for the password even in a session.
    pub login: bool,
    /// `max_age`: the password must have been entered at most this many seconds ago.
    pub max_age: Option<i64>,
}

/// How an authorization request is met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInNeeded {
    /// The session's sign-in serves: a code goes back without a page.
    ReuseSession,
    /// The sign-in page asks for the password.
    Password,
    /// The password is needed, and `prompt=none` forbids asking: `login_required`.
    LoginRequired,
}

/// How to meet a request with `prompt`, given the password time of the browser's live
/// session (`None` without one). A `max_age` of 0 always asks again, as
/// `prompt=login` does.
pub fn sign_in_needed(prompt: Prompt, session_auth_time: Option<i64>, now: i64) -> SignInNeeded {
    let recent_enough = |auth_time: i64| prompt.max_age.is_none_or(|max| now - auth_time < max);
    match session_auth_time {
        Some(auth_time) if !prompt.login && recent_enough(auth_time) => SignInNeeded::ReuseSession,
        _ if prompt.none => SignInNeeded::LoginRequired,
        _ => SignInNeeded::Password,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SessionLimits = SessionLimits {
        idle_seconds: 15 * 60,
        lifetime_seconds: 8 * 60 * 60,
    };

    #[test]
    fn a_session_lives_until_idle_or_over() {
        let t = 1_000_000;
        let (idle, lifetime) = (LIMITS.idle_seconds, LIMITS.lifetime_seconds);
        assert_eq!(LIMITS.state(t, t, t), SessionState::Live);
        assert_eq!(LIMITS.state(t, t, t + idle - 1), SessionState::Live);
        assert_eq!(LIMITS.state(t, t, t + idle), SessionState::Idle);
        // Busy all day, it still ends at the lifetime.
        let busy = t + lifetime - 1;
        assert_eq!(LIMITS.state(t, busy, busy), SessionState::Live);
        assert_eq!(LIMITS.state(t, busy, t + lifetime), SessionState::Over);
        // Over wins over idle: the session is simply done.
        assert_eq!(LIMITS.state(t, t, t + lifetime), SessionState::Over);
    }

    #[test]
    fn every_prompt_with_and_without_a_session() {
        use SignInNeeded::{LoginRequired, Password, ReuseSession};
        let now = 10_000;
        let prompt = |none, login, max_age| Prompt {
            none,
            login,
            max_age,
        };
        // (prompt, the session's auth_time, the answer)
        let cases = [
            (prompt(false, false, None), None, Password),
            (prompt(false, false, None), Some(now - 5_000), ReuseSession),
            (prompt(true, false, None), None, LoginRequired),
            (prompt(true, false, None), Some(now - 5_000), ReuseSession),
            (prompt(false, true, None), Some(now), Password),
            (prompt(false, true, None), None, Password),
            // max_age counts from the password, not from the session's last use.
            (
                prompt(false, false, Some(300)),
                Some(now - 299),
                ReuseSession,
            ),
            (prompt(false, false, Some(300)), Some(now - 300), Password),
            (
                prompt(true, false, Some(300)),
                Some(now - 300),
                LoginRequired,
            ),
            (prompt(true, false, Some(300)), Some(now - 10), ReuseSession),
            (prompt(false, false, Some(0)), Some(now), Password),
            (prompt(true, false, Some(0)), Some(now), LoginRequired),
            (prompt(false, false, Some(300)), None, Password),
        ];
        for (prompt, auth_time, expected) in cases {
            assert_eq!(
                sign_in_needed(prompt, auth_time, now),
                expected,
                "{prompt:?} with {auth_time:?}"
            );
        }
    }
}
