//! What a write returns: its result, held until what it changed reaches the caches.

use super::Changes;
use std::future::Future;

/// A committed write's result, held with the [`Changes`] it made to what instances
/// cache. [`Committed::settle`] is the only way to the result, and it hands the
/// changes to the caches first: a write path that forgets the caches does not compile,
/// and a result that is dropped unsettled is a warning (an error in CI). Other
/// instances hear of the same changes through the notice that committed with the write.
#[derive(Debug)]
#[must_use = "a committed write must be settled, so that its changes reach the caches"]
pub struct Committed<T> {
    value: T,
    changes: Changes,
}

/// What brings the caches in line with a committed write: the gateway, and nothing
/// else in the binary.
pub trait Caches {
    type Error;
    /// Forgets or reloads everything `changes` names.
    fn apply(&self, changes: &Changes) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

impl<T> Committed<T> {
    pub(crate) fn new(value: T, changes: Changes) -> Self {
        Committed { value, changes }
    }

    /// The same write with a result that changed nothing cached.
    pub(crate) fn unchanged(value: T) -> Self {
        Committed::new(value, Changes::default())
    }

    /// What the write changed, to look at; it still has to be settled.
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Committed<U> {
        Committed::new(f(self.value), self.changes)
    }

    /// Takes `other`'s changes into this write's, to be settled with it, and gives back
    /// `other`'s result: for start-up, which commits many writes and settles them once.
    pub fn absorb<U>(&mut self, other: Committed<U>) -> U {
        self.changes.merge(other.changes);
        other.value
    }

    /// Brings `caches` in line with the write, then gives its result; a failure to do
    /// so (the tenant tables could not be read again) is the caller's error.
    pub async fn settle<C: Caches + Sync + ?Sized>(self, caches: &C) -> Result<T, C::Error> {
        caches.apply(&self.changes).await?;
        Ok(self.value)
    }
}

impl<T: Default> Default for Committed<T> {
    fn default() -> Self {
        Committed::unchanged(T::default())
    }
}
