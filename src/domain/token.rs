//! The lifecycle of authorization codes, access tokens and refresh tokens (SPEC §7).
//!
//! [`apply`] is the only place that decides a state change. Stores that change many
//! rows at once ask [`sources`] which states an event may leave, so that bulk SQL
//! updates obey the same table as single-token changes.

use std::fmt;
use std::str::FromStr;

/// What a stored credential is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    AuthorizationCode,
    Access,
    Refresh,
}

/// The state of one code or token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Active,
    Inactive,
    Expired,
    Revoked,
}

/// Why a state changed; recorded with every transition and shown only to admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Expired,
    Exchanged,
    Refreshed,
    RefreshReuse,
    CodeReuse,
    RevokedByClient,
    RevokedByAdmin,
    PasswordChanged,
    UserDisabled,
    UserDeleted,
    ClientDeleted,
    TenantDeactivated,
}

/// Who or what ended a token's validity by revoking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Revocation {
    ByClient,
    ByAdmin,
    /// A rotated refresh token came back: its whole grant is revoked.
    RefreshReuse,
    /// An exchanged code came back: every token issued from it is revoked.
    CodeReuse,
}

/// A change of a token's owner that supersedes its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerChange {
    PasswordChanged,
    UserDisabled,
    UserDeleted,
    ClientDeleted,
    TenantDeactivated,
}

/// Something that happens to a code or token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// The caller saw that `now >= exp`.
    LifetimePassed,
    /// A code is exchanged for tokens.
    Exchange,
    /// The refresh grant used this refresh token, or superseded this access token.
    Refresh,
    Revoke(Revocation),
    OwnerChanged(OwnerChange),
}

impl Event {
    /// The event that spends a single-use credential of `kind`: a code is exchanged, a
    /// refresh token is used by the refresh grant.
    pub fn redemption(kind: TokenKind) -> Event {
        match kind {
            TokenKind::AuthorizationCode => Event::Exchange,
            TokenKind::Access | TokenKind::Refresh => Event::Refresh,
        }
    }
}

/// A permitted state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub to: State,
    pub reason: Reason,
}

/// Why an event changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The state is final for this kind.
    #[error("the state is final")]
    Final,
    /// The event does not apply to this kind in this state.
    #[error("the event does not apply in this state")]
    NotApplicable,
    /// A single-use credential came back after use: the caller must revoke its grant.
    #[error("a used credential was presented again")]
    Replay,
}

/// The transition table of SPEC §7. No wildcard arms: every new state or event needs
/// a decision here.
pub fn apply(kind: TokenKind, state: State, event: Event) -> Result<Transition, Refusal> {
    use Event as E;
    use State as S;
    match kind {
        TokenKind::AuthorizationCode => match (state, event) {
            (S::Active, E::Exchange) => Ok(to(S::Inactive, Reason::Exchanged)),
            (S::Active, E::LifetimePassed) => Ok(to(S::Expired, Reason::Expired)),
            (S::Inactive, E::Exchange) => Err(Refusal::Replay),
            (S::Active, E::Refresh | E::Revoke(_) | E::OwnerChanged(_)) => {
                Err(Refusal::NotApplicable)
            }
            (S::Inactive, E::LifetimePassed | E::Refresh | E::Revoke(_) | E::OwnerChanged(_)) => {
                Err(Refusal::NotApplicable)
            }
            (
                S::Expired | S::Revoked,
                E::LifetimePassed | E::Exchange | E::Refresh | E::Revoke(_) | E::OwnerChanged(_),
            ) => Err(Refusal::Final),
        },
        TokenKind::Access | TokenKind::Refresh => match (state, event) {
            (S::Active, E::LifetimePassed) => Ok(to(S::Expired, Reason::Expired)),
            (S::Active, E::Refresh) => Ok(to(S::Inactive, Reason::Refreshed)),
            (S::Active, E::OwnerChanged(change)) => Ok(to(S::Inactive, change.reason())),
            (S::Active | S::Expired | S::Inactive, E::Revoke(how)) => {
                Ok(to(S::Revoked, how.reason()))
            }
            // A rotated refresh token presented again is the reuse that RFC 6819
            // §5.2.2.3 asks servers to detect.
            (S::Inactive, E::Refresh) if kind == TokenKind::Refresh => Err(Refusal::Replay),
            (S::Inactive, E::Refresh) => Err(Refusal::NotApplicable),
            (S::Active, E::Exchange) => Err(Refusal::NotApplicable),
            (S::Expired, E::LifetimePassed | E::Exchange | E::Refresh | E::OwnerChanged(_)) => {
                Err(Refusal::NotApplicable)
            }
            (S::Inactive, E::LifetimePassed | E::Exchange | E::OwnerChanged(_)) => {
                Err(Refusal::NotApplicable)
            }
            (
                S::Revoked,
                E::LifetimePassed | E::Exchange | E::Refresh | E::Revoke(_) | E::OwnerChanged(_),
            ) => Err(Refusal::Final),
        },
    }
}

fn to(to: State, reason: Reason) -> Transition {
    Transition { to, reason }
}

/// The states from which `event` moves a token of `kind`, and where it goes.
/// Bulk updates use this so that they follow [`apply`] exactly.
pub fn sources(kind: TokenKind, event: Event) -> (Vec<State>, Option<Transition>) {
    let mut from = Vec::new();
    let mut target = None;
    for &state in State::ALL {
        if let Ok(t) = apply(kind, state, event) {
            from.push(state);
            target = Some(t);
        }
    }
    (from, target)
}

/// An ACTIVE token whose lifetime has passed: the first look at it records EXPIRED.
pub fn lifetime_passed(state: State, expires_at: i64, now: i64) -> bool {
    state == State::Active && now >= expires_at
}

/// A token is active exactly when its state is ACTIVE and `now` lies in `[nbf, exp)`.
pub fn is_active(state: State, not_before: i64, expires_at: i64, now: i64) -> bool {
    state == State::Active && not_before <= now && now < expires_at
}

impl Revocation {
    pub fn reason(self) -> Reason {
        match self {
            Revocation::ByClient => Reason::RevokedByClient,
            Revocation::ByAdmin => Reason::RevokedByAdmin,
            Revocation::RefreshReuse => Reason::RefreshReuse,
            Revocation::CodeReuse => Reason::CodeReuse,
        }
    }
}

impl OwnerChange {
    fn reason(self) -> Reason {
        match self {
            OwnerChange::PasswordChanged => Reason::PasswordChanged,
            OwnerChange::UserDisabled => Reason::UserDisabled,
            OwnerChange::UserDeleted => Reason::UserDeleted,
            OwnerChange::ClientDeleted => Reason::ClientDeleted,
            OwnerChange::TenantDeactivated => Reason::TenantDeactivated,
        }
    }
}

/// A stored string that names no known value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
}

/// Strict two-way names for the values stored in the database: an unknown string is
/// an error, never a default.
macro_rules! stored_names {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }
        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(UnknownName { what: $what, value: s.to_owned() }),
                }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_names!(TokenKind, "token kind", {
    AuthorizationCode => "authorization_code",
    Access => "access_token",
    Refresh => "refresh_token",
});
stored_names!(State, "token state", {
    Active => "ACTIVE",
    Inactive => "INACTIVE",
    Expired => "EXPIRED",
    Revoked => "REVOKED",
});
stored_names!(Reason, "state reason", {
    Expired => "expired",
    Exchanged => "exchanged",
    Refreshed => "refreshed",
    RefreshReuse => "refresh_reuse",
    CodeReuse => "code_reuse",
    RevokedByClient => "revoked_by_client",
    RevokedByAdmin => "revoked_by_admin",
    PasswordChanged => "password_changed",
    UserDisabled => "user_disabled",
    UserDeleted => "user_deleted",
    ClientDeleted => "client_deleted",
    TenantDeactivated => "tenant_deactivated",
});

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KINDS: [TokenKind; 3] = [
        TokenKind::AuthorizationCode,
        TokenKind::Access,
        TokenKind::Refresh,
    ];

    fn all_events() -> Vec<Event> {
        let mut events = vec![Event::LifetimePassed, Event::Exchange, Event::Refresh];
        events.extend(
            [
                Revocation::ByClient,
                Revocation::ByAdmin,
                Revocation::RefreshReuse,
                Revocation::CodeReuse,
            ]
            .map(Event::Revoke),
        );
        events.extend(
            [
                OwnerChange::PasswordChanged,
                OwnerChange::UserDisabled,
                OwnerChange::UserDeleted,
                OwnerChange::ClientDeleted,
                OwnerChange::TenantDeactivated,
            ]
            .map(Event::OwnerChanged),
        );
        events
    }

    /// The whole table written out independently of `apply`, one row per
    /// (kind, state, event) that changes something.
    fn expected(kind: TokenKind, state: State, event: Event) -> Result<Transition, Refusal> {
        use Event as E;
        use State as S;
        let code = kind == TokenKind::AuthorizationCode;
        match (code, state, event) {
            (true, S::Active, E::Exchange) => Ok(to(S::Inactive, Reason::Exchanged)),
            (true, S::Active, E::LifetimePassed) => Ok(to(S::Expired, Reason::Expired)),
            (true, S::Inactive, E::Exchange) => Err(Refusal::Replay),
            (true, S::Expired | S::Revoked, _) => Err(Refusal::Final),
            (true, _, _) => Err(Refusal::NotApplicable),
            (false, S::Revoked, _) => Err(Refusal::Final),
            (false, S::Active, E::LifetimePassed) => Ok(to(S::Expired, Reason::Expired)),
            (false, S::Active, E::Refresh) => Ok(to(S::Inactive, Reason::Refreshed)),
            (false, S::Active, E::OwnerChanged(c)) => Ok(to(S::Inactive, c.reason())),
            (false, _, E::Revoke(r)) => Ok(to(S::Revoked, r.reason())),
            (false, S::Inactive, E::Refresh) if kind == TokenKind::Refresh => Err(Refusal::Replay),
            (false, _, _) => Err(Refusal::NotApplicable),
        }
    }

    #[test]
    fn every_kind_state_and_event_follows_the_table() {
        let mut checked = 0;
        for kind in KINDS {
            for &state in State::ALL {
                for event in all_events() {
                    assert_eq!(
                        apply(kind, state, event),
                        expected(kind, state, event),
                        "{kind} {state} {event:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 3 * 4 * 12);
    }

    #[test]
    fn revocation_reasons_name_who_revoked() {
        let t = apply(
            TokenKind::Access,
            State::Expired,
            Event::Revoke(Revocation::ByAdmin),
        )
        .unwrap();
        assert_eq!((t.to, t.reason), (State::Revoked, Reason::RevokedByAdmin));
        let t = apply(
            TokenKind::Refresh,
            State::Inactive,
            Event::Revoke(Revocation::RefreshReuse),
        )
        .unwrap();
        assert_eq!(t.reason, Reason::RefreshReuse);
    }

    #[test]
    fn sources_lists_exactly_the_states_apply_accepts() {
        let (from, t) = sources(TokenKind::Access, Event::Revoke(Revocation::ByClient));
        assert_eq!(from, vec![State::Active, State::Inactive, State::Expired]);
        assert_eq!(t.unwrap().to, State::Revoked);
        let (from, _) = sources(
            TokenKind::AuthorizationCode,
            Event::Revoke(Revocation::ByClient),
        );
        assert!(from.is_empty());
        let (from, t) = sources(
            TokenKind::Refresh,
            Event::OwnerChanged(OwnerChange::UserDeleted),
        );
        assert_eq!(from, vec![State::Active]);
        assert_eq!(t.unwrap().reason, Reason::UserDeleted);
    }

    #[test]
    fn stored_names_round_trip_and_unknown_names_are_errors() {
        for &s in State::ALL {
            assert_eq!(s.as_str().parse::<State>().unwrap(), s);
        }
        for &r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>().unwrap(), r);
        }
        for &k in TokenKind::ALL {
            assert_eq!(k.as_str().parse::<TokenKind>().unwrap(), k);
        }
        assert!("active".parse::<State>().is_err());
        assert!("".parse::<Reason>().is_err());
    }

    #[test]
    fn active_window_is_half_open() {
        assert!(is_active(State::Active, 10, 20, 10));
        assert!(is_active(State::Active, 10, 20, 19));
        assert!(!is_active(State::Active, 10, 20, 20));
        assert!(!is_active(State::Active, 10, 20, 9));
        assert!(!is_active(State::Inactive, 10, 20, 15));
    }

    fn any_kind() -> impl Strategy<Value = TokenKind> {
        prop::sample::select(KINDS.to_vec())
    }
    fn any_event() -> impl Strategy<Value = Event> {
        prop::sample::select(all_events())
    }

    /// Runs a sequence of events from ACTIVE, keeping only the accepted ones.
    fn run(kind: TokenKind, events: &[Event]) -> Vec<State> {
        let mut state = State::Active;
        let mut seen = vec![state];
        for &e in events {
            if let Ok(t) = apply(kind, state, e) {
                state = t.to;
                seen.push(state);
            }
        }
        seen
    }

    proptest! {
        #[test]
        fn revoked_is_terminal(kind in any_kind(), events in prop::collection::vec(any_event(), 0..20)) {
            let states = run(kind, &events);
            if let Some(i) = states.iter().position(|s| *s == State::Revoked) {
                prop_assert!(states[i..].iter().all(|s| *s == State::Revoked));
            }
            for e in all_events() {
                prop_assert_eq!(apply(kind, State::Revoked, e), Err(Refusal::Final));
            }
        }

        #[test]
        fn no_token_ever_returns_to_active(kind in any_kind(), events in prop::collection::vec(any_event(), 0..20)) {
            let states = run(kind, &events);
            prop_assert!(states[1..].iter().all(|s| *s != State::Active));
        }

        #[test]
        fn a_refresh_token_rotates_once(events in prop::collection::vec(any_event(), 0..20)) {
            let mut state = State::Active;
            let mut rotations = 0;
            for e in events.iter().copied().chain([Event::Refresh, Event::Refresh]) {
                match apply(TokenKind::Refresh, state, e) {
                    Ok(t) => {
                        if e == Event::Refresh { rotations += 1; }
                        state = t.to;
                    }
                    Err(Refusal::Replay) => prop_assert_eq!(state, State::Inactive),
                    Err(_) => {}
                }
            }
            prop_assert!(rotations <= 1);
        }

        #[test]
        fn a_used_code_presented_again_is_a_replay(events in prop::collection::vec(any_event(), 0..10)) {
            let mut state = State::Active;
            for e in events.iter().copied() {
                if let Ok(t) = apply(TokenKind::AuthorizationCode, state, e) { state = t.to; }
            }
            let second = apply(TokenKind::AuthorizationCode, state, Event::Exchange);
            match state {
                State::Active => prop_assert!(second.is_ok()),
                State::Inactive => prop_assert_eq!(second, Err(Refusal::Replay)),
                State::Expired | State::Revoked => prop_assert_eq!(second, Err(Refusal::Final)),
            }
        }

        /// Walked second by second, a token's life is one unbroken stretch that starts at
        /// `nbf` and lasts exactly `exp - nbf` seconds, and only an ACTIVE token has one.
        #[test]
        fn a_token_is_active_for_one_stretch_of_its_lifetime(state in prop::sample::select(State::ALL.to_vec()),
                                                              nbf in -100i64..100, lifetime in 0i64..100) {
            let exp = nbf + lifetime;
            let active: Vec<i64> = (-300..300).filter(|&now| is_active(state, nbf, exp, now)).collect();
            if state != State::Active || lifetime == 0 {
                prop_assert!(active.is_empty());
            } else {
                prop_assert_eq!(active.first().copied(), Some(nbf));
                prop_assert_eq!(active.len() as i64, lifetime);
                prop_assert!(active.windows(2).all(|w| w[1] == w[0] + 1));
            }
        }
    }
}
