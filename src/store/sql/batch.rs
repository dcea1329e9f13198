//! Group commit for the token writes of the OAuth endpoints: issuance, the refresh and
//! code redemptions, and revocations.
//!
//! Each write becomes a [`Job`] for one writer task. The writer takes every job waiting
//! when it is free, runs them in order in one transaction, and answers each only after
//! that transaction committed: one durable commit (one fsync) serves them all. A lone
//! job is taken at once, so it waits for nothing; jobs queue only while a commit is
//! under way. A failed batch is rolled back and fails exactly the jobs in it.
//!
//! Jobs keep their order. The tokens of issuances and redemptions queue up and share
//! multi-row INSERTs; a revocation first writes the tokens queued before it, so that
//! revoking a grant catches every token issued ahead of it, as it would one transaction
//! at a time. A redemption need not wait for them: it spends a token that existed
//! before the batch, and the access tokens issued with it, and a token still queued was
//! issued with a refresh token nobody has seen yet.

use super::backend::{notice_of, Backend};
use super::tokens::{self, StoredBy};
use crate::domain::tenant::TenantId;
use crate::store::{Changes, Committed, Error, NewToken, Result, Rotation, Step, TokenRecord};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

/// Jobs one transaction takes at most.
const MAX_JOBS_PER_BATCH: usize = 512;

/// Jobs that may wait for the writer; past it, senders wait.
pub(super) const QUEUE: usize = 4_096;

pub(super) enum Job {
    Insert {
        tokens: Vec<NewToken>,
        done: oneshot::Sender<Result<()>>,
    },
    Redeem {
        /// Boxed: a record is several times the size of the other jobs.
        old: Box<TokenRecord>,
        new: Vec<NewToken>,
        now: i64,
        by: StoredBy,
        done: oneshot::Sender<Result<Committed<Rotation>>>,
    },
    Transitions {
        tenant_id: TenantId,
        steps: Vec<Step>,
        now: i64,
        by: StoredBy,
        done: oneshot::Sender<Result<Committed<()>>>,
    },
}

/// What a job came to, held until its batch commits.
enum Outcome {
    Inserted,
    Redeemed(Committed<Rotation>),
    Moved(Committed<()>),
}

impl Job {
    // A requester that went away needs no answer, so failed sends are ignored.
    fn answer(self, outcome: Outcome) {
        match (self, outcome) {
            (Job::Insert { done, .. }, Outcome::Inserted) => {
                let _ = done.send(Ok(()));
            }
            (Job::Redeem { done, .. }, Outcome::Redeemed(rotation)) => {
                let _ = done.send(Ok(rotation));
            }
            (Job::Transitions { done, .. }, Outcome::Moved(changes)) => {
                let _ = done.send(Ok(changes));
            }
            (job, _) => job.fail(Error::Corrupt("a batch answer out of order".into())),
        }
    }

    fn fail(self, error: Error) {
        match self {
            Job::Insert { done, .. } => {
                let _ = done.send(Err(error));
            }
            Job::Redeem { done, .. } => {
                let _ = done.send(Err(error));
            }
            Job::Transitions { done, .. } => {
                let _ = done.send(Err(error));
            }
        }
    }
}

/// Sends `job` built around a fresh reply channel and waits for the batch's answer.
pub(super) async fn submit<T>(
    queue: &mpsc::Sender<Job>,
    job: impl FnOnce(oneshot::Sender<Result<T>>) -> Job,
) -> Result<T> {
    let (done, answer) = oneshot::channel();
    queue.send(job(done)).await.map_err(|_| Error::WriterGone)?;
    answer.await.map_err(|_| Error::WriterGone)?
}

/// Runs `writer` over `queue`, and starts it again after a panic: a bug that kills one
/// batch must not leave every later write answering 503 until a restart. The jobs of
/// the batch that panicked are dropped unanswered, so their callers get `WriterGone`
/// (503), and its transaction rolls back with its dropped connection.
pub(super) async fn supervise<T, W, Fut>(queue: mpsc::Receiver<T>, writer: W)
where
    T: Send + 'static,
    W: Fn(Arc<Mutex<mpsc::Receiver<T>>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    // The queue outlives a writer that panics: it is only lent to each writer.
    let queue = Arc::new(Mutex::new(queue));
    loop {
        match tokio::spawn(writer(queue.clone())).await {
            Err(failure) if failure.is_panic() => {
                tracing::error!("the token writer panicked; its batch failed, starting it again");
            }
            // The queue closed (the store is gone), or the runtime is shutting down.
            Ok(()) | Err(_) => return,
        }
    }
}

/// The writer: one batch at a time, for as long as anyone can send jobs.
pub(super) async fn write<B: Backend>(backend: Arc<B>, queue: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let mut queue = queue.lock().await;
    let mut jobs = Vec::with_capacity(MAX_JOBS_PER_BATCH);
    while queue.recv_many(&mut jobs, MAX_JOBS_PER_BATCH).await > 0 {
        match run(&*backend, &jobs).await {
            Ok(outcomes) => {
                for (job, outcome) in jobs.drain(..).zip(outcomes) {
                    job.answer(outcome);
                }
            }
            Err(error) => {
                let error = Arc::new(error);
                for job in jobs.drain(..) {
                    job.fail(Error::Batch(error.clone()));
                }
            }
        }
    }
}

/// Runs `jobs` in one transaction and commits it.
async fn run<B: Backend>(backend: &B, jobs: &[Job]) -> Result<Vec<Outcome>> {
    let mut tx = backend.begin_write().await?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut queued: Vec<&NewToken> = Vec::new();
    for job in jobs {
        if matches!(job, Job::Transitions { .. }) && !queued.is_empty() {
            tokens::insert(&mut *tx, queued.drain(..)).await?;
        }
        let (outcome, changes, tenant) = match job {
            Job::Insert { tokens, .. } => {
                queued.extend(tokens);
                (Outcome::Inserted, None, None)
            }
            Job::Redeem {
                old, new, now, by, ..
            } => match tokens::spend(&mut *tx, old, *now, by).await? {
                None => {
                    let lost = Committed::unchanged(Rotation::Lost);
                    (Outcome::Redeemed(lost), None, None)
                }
                Some(changed) => {
                    queued.extend(new);
                    let changes = Changes::tokens(changed);
                    let rotated = Committed::new(Rotation::Rotated, changes.clone());
                    (
                        Outcome::Redeemed(rotated),
                        Some(changes),
                        Some(old.token.tenant_id),
                    )
                }
            },
            Job::Transitions {
                tenant_id,
                steps,
                now,
                by,
                ..
            } => {
                let changed = tokens::steps(&mut *tx, *tenant_id, steps, *now, by).await?;
                let changes = Changes::tokens(changed);
                (
                    Outcome::Moved(Committed::new((), changes.clone())),
                    Some(changes),
                    Some(*tenant_id),
                )
            }
        };
        if let Some(changes) = changes.filter(|c| !c.is_empty() && backend.shared()) {
            backend
                .publish(&mut *tx, &notice_of(&changes, tenant)?)
                .await?;
        }
        outcomes.push(outcome);
    }
    if !queued.is_empty() {
        tokens::insert(&mut *tx, queued).await?;
    }
    tx.commit().await?;
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_writer_that_panics_is_started_again_and_the_queue_goes_on() {
        let (jobs, queue) = mpsc::channel::<u32>(8);
        let (done, mut written) = mpsc::unbounded_channel();
        let supervisor = tokio::spawn(supervise(queue, move |queue| {
            let done = done.clone();
            async move {
                let mut queue = queue.lock().await;
                while let Some(job) = queue.recv().await {
                    assert_ne!(job, 13, "a bug in one batch");
                    done.send(job).unwrap();
                }
            }
        }));
        for job in [1, 13, 2, 13, 3] {
            jobs.send(job).await.unwrap();
        }
        drop(jobs);
        supervisor.await.unwrap();
        let mut seen = Vec::new();
        while let Ok(job) = written.try_recv() {
            seen.push(job);
        }
        assert_eq!(seen, [1, 2, 3]);
    }
}
