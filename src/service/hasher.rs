//! The argon2 workers and the fair queue in front of them (SPEC §4).
//!
//! Hashing runs on a fixed set of OS threads, one per permit, each owning the argon2
//! memory it reuses for every verification. Hashing memory is therefore bounded by the
//! number of workers, whatever the number of requests, and no allocator arena of a
//! short-lived blocking thread keeps a block after a flood.
//!
//! A request takes a [`Permit`] before it may hash. Permits are handed out fairly: the
//! next free one goes, round-robin, to the next tenant that has someone waiting, and
//! within that tenant to the next source address. While one tenant (or one address) is
//! flooded, another's sign-in waits for at most about one hash before its own. Each
//! address and the whole queue have a bound; past it the request is refused at once
//! instead of waiting, so waiting requests cannot grow memory either.
//!
//! The caller holds its permit across whatever must not interleave with other guesses
//! (reading the lock state, recording a failure): that is what bounds the guesses that
//! reach the real hash while a lock is being set.

use crate::domain::tenant::TenantId;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

/// Requests from one address of one tenant that may wait for a permit at once.
const MAX_WAITING_PER_ADDRESS: usize = 16;

/// Requests that may wait for a permit at once, over every tenant.
const MAX_WAITING: usize = 1024;

/// Largest argon2 memory a stored hash may ask for (64 MiB): a hand-written hash with a
/// huge `m` must not make a worker allocate without bound.
const MAX_BLOCKS: usize = 64 * 1024;

/// Argon2 failed in a way that is not "wrong secret" (a malformed stored hash, a
/// stopped worker).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(pub(super) String);

/// No permit could be queued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Saturated {
    /// This address already has as many requests waiting as it may.
    #[error("too many password checks waiting from this address")]
    Address,
    /// The whole queue is full.
    #[error("too many password checks waiting")]
    Queue,
}

/// Where a request waits: its tenant, then its source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lane {
    pub tenant_id: TenantId,
    pub address: IpAddr,
}

#[derive(Debug)]
pub struct Hasher {
    permits: Arc<FairPermits>,
    /// Jobs for the workers: one per permit, plus those of requests that went away
    /// while their job waited (a worker drops those unrun), so the queue stays short.
    jobs: mpsc::Sender<Job>,
    runs: AtomicU64,
}

/// The right to run one hash; given back when dropped.
#[derive(Debug)]
pub struct Permit {
    owner: Arc<FairPermits>,
}

enum Work {
    Verify {
        stored_hash: String,
        secret: SecretString,
    },
    Hash {
        secret: SecretString,
    },
}

enum Outcome {
    Verified(bool),
    Hashed(String),
}

struct Job {
    work: Work,
    reply: oneshot::Sender<Result<Outcome, HashError>>,
}

impl Hasher {
    /// Starts `workers` hashing threads and as many permits.
    #[allow(
        clippy::expect_used,
        reason = "a gateway that cannot start its hashing threads cannot serve"
    )]
    pub fn new(workers: usize) -> Self {
        let workers = workers.max(1);
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..workers {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || work(&receiver))
                .expect("a hashing thread starts");
        }
        Hasher {
            permits: Arc::new(FairPermits::new(workers)),
            jobs: sender,
            runs: AtomicU64::new(0),
        }
    }

    /// Waits, fairly, for a permit in `lane`.
    pub async fn permit(&self, lane: Lane) -> Result<Permit, Saturated> {
        self.permits.acquire(lane).await
    }

    /// True when `secret` matches the PHC string `stored_hash`, compared in constant
    /// time. The permit is not used, only required: no hash runs without one.
    pub async fn verify(
        &self,
        _permit: &Permit,
        stored_hash: &str,
        secret: &SecretString,
    ) -> Result<bool, HashError> {
        self.runs.fetch_add(1, Ordering::Relaxed);
        let work = Work::Verify {
            stored_hash: stored_hash.to_owned(),
            secret: secret.clone(),
        };
        match self.run(work).await? {
            Outcome::Verified(matched) => Ok(matched),
            Outcome::Hashed(_) => Err(HashError("a worker answered the wrong job".into())),
        }
    }

    /// A new argon2id PHC string for `secret`.
    pub async fn hash(&self, _permit: &Permit, secret: &SecretString) -> Result<String, HashError> {
        let work = Work::Hash {
            secret: secret.clone(),
        };
        match self.run(work).await? {
            Outcome::Hashed(phc) => Ok(phc),
            Outcome::Verified(_) => Err(HashError("a worker answered the wrong job".into())),
        }
    }

    /// argon2 verifications run so far.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    async fn run(&self, work: Work) -> Result<Outcome, HashError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || HashError("the hashing workers stopped".into());
        self.jobs.send(Job { work, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// A worker: takes jobs until the hasher is dropped, reusing one block buffer.
fn work(jobs: &Mutex<mpsc::Receiver<Job>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = match lock(jobs).recv() {
            Ok(job) => job,
            Err(mpsc::RecvError) => return,
        };
        if job.reply.is_closed() {
            continue;
        }
        let outcome = match job.work {
            Work::Verify {
                stored_hash,
                secret,
            } => verify_with(&mut memory, &stored_hash, secret.expose_secret().as_bytes())
                .map(Outcome::Verified),
            Work::Hash { secret } => hash_blocking(secret.expose_secret()).map(Outcome::Hashed),
        };
        let _ = job.reply.send(outcome);
    }
}

/// argon2id with the crate's recommended parameters, for the CLI and start-up.
pub fn hash_blocking(secret: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Verifies `secret` against a PHC string in `memory`, grown to the hash's parameters
/// when needed and never shrunk, so that a worker allocates once.
fn verify_with(
    memory: &mut Vec<Block>,
    stored_hash: &str,
    secret: &[u8],
) -> Result<bool, HashError> {
    let bad = |e: &dyn std::fmt::Display| HashError(e.to_string());
    let parsed = PasswordHash::new(stored_hash).map_err(|e| bad(&e))?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| bad(&e))?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| bad(&e))?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(|e| bad(&e))?;
    let expected = parsed
        .hash
        .ok_or_else(|| bad(&"the stored hash has no output"))?;
    let mut salt = [0u8; 64];
    let salt = parsed
        .salt
        .ok_or_else(|| bad(&"the stored hash has no salt"))?
        .decode_b64(&mut salt)
        .map_err(|e| bad(&e))?;
    let blocks = params.block_count();
    if blocks > MAX_BLOCKS {
        return Err(bad(&"the stored hash asks for more memory than allowed"));
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut output = [0u8; 64];
    let output = output
        .get_mut(..expected.len())
        .ok_or_else(|| bad(&"the stored hash output is too long"))?;
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(secret, salt, &mut *output, &mut memory[..blocks])
        .map_err(|e| bad(&e))?;
    Ok(output.ct_eq(expected.as_bytes()).into())
}

// ---- fair permits -----------------------------------------------------------------------

#[derive(Debug)]
struct FairPermits {
    state: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    free: usize,
    waiting: usize,
    next_ticket: u64,
    /// Tenants with someone waiting, in the order they are served.
    turn: VecDeque<TenantId>,
    tenants: HashMap<TenantId, TenantLane>,
}

#[derive(Debug, Default)]
struct TenantLane {
    /// Addresses with someone waiting, in the order they are served.
    turn: VecDeque<IpAddr>,
    addresses: HashMap<IpAddr, VecDeque<Waiting>>,
}

#[derive(Debug)]
struct Waiting {
    ticket: u64,
    wake: oneshot::Sender<()>,
}

impl FairPermits {
    fn new(permits: usize) -> Self {
        FairPermits {
            state: Mutex::new(Queue {
                free: permits,
                ..Queue::default()
            }),
        }
    }

    #[allow(clippy::expect_used, reason = "the waker is set two lines above")]
    async fn acquire(self: &Arc<Self>, lane: Lane) -> Result<Permit, Saturated> {
        let (ticket, woken) = {
            let mut queue = lock(&self.state);
            if queue.free > 0 && queue.waiting == 0 {
                queue.free -= 1;
                return Ok(Permit {
                    owner: self.clone(),
                });
            }
            queue.enqueue(lane)?
        };
        let mut waiter = Waiter {
            owner: self.clone(),
            lane,
            ticket,
            woken: Some(woken),
        };
        let woken = waiter.woken.as_mut().expect("set above");
        match woken.await {
            Ok(()) => {
                waiter.woken = None;
                Ok(Permit {
                    owner: self.clone(),
                })
            }
            // The sender lives in the queue until it is woken; it is never dropped
            // unsent while the waiter lives.
            Err(_) => Err(Saturated::Queue),
        }
    }

    /// Hands a returned permit to the next waiter in fair order, or frees it.
    fn release(&self) {
        let mut queue = lock(&self.state);
        while let Some(next) = queue.dequeue() {
            if next.wake.send(()).is_ok() {
                return;
            }
        }
        queue.free += 1;
    }
}

impl Queue {
    fn enqueue(&mut self, lane: Lane) -> Result<(u64, oneshot::Receiver<()>), Saturated> {
        if self.waiting >= MAX_WAITING {
            return Err(Saturated::Queue);
        }
        let tenant = self.tenants.entry(lane.tenant_id).or_default();
        let tenant_was_idle = tenant.turn.is_empty();
        let waiting = tenant.addresses.entry(lane.address).or_default();
        if waiting.len() >= MAX_WAITING_PER_ADDRESS {
            return Err(Saturated::Address);
        }
        let (wake, woken) = oneshot::channel();
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        if waiting.is_empty() {
            tenant.turn.push_back(lane.address);
        }
        waiting.push_back(Waiting { ticket, wake });
        if tenant_was_idle {
            self.turn.push_back(lane.tenant_id);
        }
        self.waiting += 1;
        Ok((ticket, woken))
    }

    /// The next waiter: the tenant whose turn it is, then that tenant's next address.
    fn dequeue(&mut self) -> Option<Waiting> {
        let tenant_id = self.turn.pop_front()?;
        let tenant = self.tenants.get_mut(&tenant_id)?;
        let address = tenant.turn.pop_front()?;
        let waiting = tenant.addresses.get_mut(&address)?;
        let next = waiting.pop_front()?;
        if waiting.is_empty() {
            tenant.addresses.remove(&address);
        } else {
            tenant.turn.push_back(address);
        }
        if tenant.turn.is_empty() {
            self.tenants.remove(&tenant_id);
        } else {
            self.turn.push_back(tenant_id);
        }
        self.waiting -= 1;
        Some(next)
    }

    /// Takes a waiter that gave up out of the queue. False when it was already woken.
    fn withdraw(&mut self, lane: Lane, ticket: u64) -> bool {
        let Some(tenant) = self.tenants.get_mut(&lane.tenant_id) else {
            return false;
        };
        let Some(waiting) = tenant.addresses.get_mut(&lane.address) else {
            return false;
        };
        let Some(at) = waiting.iter().position(|w| w.ticket == ticket) else {
            return false;
        };
        waiting.remove(at);
        self.waiting -= 1;
        if waiting.is_empty() {
            tenant.addresses.remove(&lane.address);
            tenant.turn.retain(|a| *a != lane.address);
            if tenant.turn.is_empty() {
                self.tenants.remove(&lane.tenant_id);
                self.turn.retain(|t| *t != lane.tenant_id);
            }
        }
        true
    }
}

/// A request waiting for a permit. Dropped before it is woken (its client went away),
/// it leaves the queue; dropped after, it passes the permit it was given on.
struct Waiter {
    owner: Arc<FairPermits>,
    lane: Lane,
    ticket: u64,
    woken: Option<oneshot::Receiver<()>>,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let Some(mut woken) = self.woken.take() else {
            return;
        };
        let withdrawn = lock(&self.owner.state).withdraw(self.lane, self.ticket);
        // Not in the queue any more: it was woken (under the lock, so the wake-up has
        // arrived), and the permit it was given must go on to the next waiter.
        if !withdrawn && woken.try_recv().is_ok() {
            self.owner.release();
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.owner.release();
    }
}

/// A poisoned lock only means another thread panicked while holding it; the queue is
/// still consistent, because every change to it is completed before it can panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn lane(tenant_id: i64, last_octet: u8) -> Lane {
        Lane {
            tenant_id: TenantId::new(tenant_id),
            address: IpAddr::from([10, 0, 0, last_octet]),
        }
    }

    #[tokio::test]
    async fn verification_matches_the_crate_and_reuses_memory() {
        let phc = hash_blocking("right").unwrap();
        let mut memory = Vec::new();
        assert!(verify_with(&mut memory, &phc, b"right").unwrap());
        let allocated = memory.len();
        assert!(!verify_with(&mut memory, &phc, b"wrong").unwrap());
        assert_eq!(memory.len(), allocated, "the buffer is reused, not regrown");
        assert!(verify_with(&mut memory, "not a phc string", b"x").is_err());
    }

    #[tokio::test]
    async fn the_workers_verify_and_hash() {
        let hasher = Hasher::new(2);
        let permit = hasher.permit(lane(1, 1)).await.unwrap();
        let secret = SecretString::from("s3cret".to_owned());
        let phc = hasher.hash(&permit, &secret).await.unwrap();
        assert!(hasher.verify(&permit, &phc, &secret).await.unwrap());
        let wrong = SecretString::from("other".to_owned());
        assert!(!hasher.verify(&permit, &phc, &wrong).await.unwrap());
        assert_eq!(hasher.runs(), 2);
    }

    /// Every permit busy, a flood of one tenant queued, then another tenant asks: it is
    /// served by the very next permit that comes back.
    #[tokio::test]
    async fn a_flooded_tenant_does_not_delay_another() {
        let permits = Arc::new(FairPermits::new(1));
        let held = permits.acquire(lane(1, 1)).await.unwrap();
        let (order, mut served) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for i in 0..10u8 {
            let (permits, order) = (permits.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _p = permits.acquire(lane(1, i % 3)).await.unwrap();
                order.send(1).unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let other = {
            let (permits, order) = (permits.clone(), order.clone());
            tokio::spawn(async move {
                let _p = permits.acquire(lane(2, 1)).await.unwrap();
                order.send(2).unwrap();
            })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        other.await.unwrap();
        let first = served.recv().await.unwrap();
        let second = served.recv().await.unwrap();
        assert!(
            first == 2 || second == 2,
            "tenant 2 waited behind tenant 1's flood"
        );
    }

    #[tokio::test]
    async fn addresses_of_one_tenant_take_turns() {
        let mut queue = Queue::default();
        for (address, count) in [(1u8, 3), (2, 1)] {
            for _ in 0..count {
                queue.enqueue(lane(7, address)).unwrap();
            }
        }
        let tickets: Vec<u64> = std::iter::from_fn(|| queue.dequeue().map(|w| w.ticket)).collect();
        // Tickets 0..3 are address 1, ticket 3 is address 2: it goes second.
        assert_eq!(tickets, vec![0, 3, 1, 2]);
        assert_eq!(queue.waiting, 0);
        assert!(queue.tenants.is_empty() && queue.turn.is_empty());
    }

    #[tokio::test]
    async fn each_address_and_the_queue_are_bounded() {
        let mut queue = Queue::default();
        for _ in 0..MAX_WAITING_PER_ADDRESS {
            queue.enqueue(lane(1, 1)).unwrap();
        }
        assert_eq!(queue.enqueue(lane(1, 1)).unwrap_err(), Saturated::Address);
        let mut n = MAX_WAITING_PER_ADDRESS;
        let mut address = 0u32;
        while n < MAX_WAITING {
            address += 1;
            let lane = Lane {
                tenant_id: TenantId::new(1),
                address: IpAddr::from((address + 1000).to_be_bytes()),
            };
            queue.enqueue(lane).unwrap();
            n += 1;
        }
        assert_eq!(queue.enqueue(lane(2, 9)).unwrap_err(), Saturated::Queue);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaves_the_queue_and_loses_no_permit() {
        let permits = Arc::new(FairPermits::new(1));
        let held = permits.acquire(lane(1, 1)).await.unwrap();
        let gave_up = tokio::time::timeout(Duration::from_millis(20), permits.acquire(lane(1, 2)));
        assert!(gave_up.await.is_err());
        assert_eq!(lock(&permits.state).waiting, 0);
        drop(held);
        // The permit came back: a new request gets it at once.
        let again = tokio::time::timeout(Duration::from_millis(200), permits.acquire(lane(1, 3)));
        assert!(again.await.is_ok());
    }
}
