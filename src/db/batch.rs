//! Group commit for the busiest write paths (billing events, verification starts).
//!
//! Write transactions run one at a time (the lock policy in `db`), so a writer's commit, and
//! on PostgreSQL the WAL flush it waits for, is time no other writer can use: with a 2 ms
//! flush, one writer at a time cannot pass 500 commits per second, whatever the CPU. A
//! [`Batcher`] keeps the one-at-a-time order and shares the commit instead: a single task
//! takes the jobs queued at the moment it is free (at most `MAX_JOBS`), runs them one after
//! another in one write transaction, each inside its own savepoint, and commits once.
//!
//! - Each job is atomic on its own: a job that fails (or asks to change nothing) is rolled back
//!   to its savepoint, and the others keep their changes. Its audit entries are in its own
//!   savepoint, so they commit exactly when its changes do.
//! - Nobody is answered before the commit: a job's result is handed over only once the shared
//!   transaction committed, and if that commit fails, every job of the batch gets the error.
//! - Jobs run in the order they were queued, serialised like every writer; a batch holds the
//!   write lock for as long as one transaction does (bounded by `MAX_JOBS`).
//! - A job's own lock order is unchanged (advisory locks are re-entrant within the session,
//!   and held until the shared commit).

use std::{future::Future, pin::Pin};

use sea_orm::{DatabaseTransaction, TransactionTrait};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;

use super::Db;
use crate::error::ApiError;

/// Jobs per shared transaction at most: enough to amortise the flush, few enough that the
/// write lock is never held long.
const MAX_JOBS: usize = 64;
/// Jobs waiting for a turn at most; beyond that, callers wait to queue (back-pressure).
const QUEUE: usize = 1024;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How to answer a job's caller once the shared commit succeeded or failed.
type Deliver = Box<dyn FnOnce(Result<(), ApiError>) + Send>;

/// A queued job, its result type erased.
trait Job: Send {
    /// Run in `txn` (the job's savepoint): whether to keep its changes, and its answer.
    fn run<'t>(self: Box<Self>, txn: &'t DatabaseTransaction) -> BoxFuture<'t, (bool, Deliver)>;
    /// Answer without running (the shared transaction could not begin).
    fn fail(self: Box<Self>, e: ApiError);
}

struct Typed<T, F> {
    f: F,
    tx: oneshot::Sender<Result<T, ApiError>>,
    /// The caller's span: the job runs in it, so what it writes (an outbox message's
    /// `traceparent`) and logs belongs to the request that queued it.
    span: tracing::Span,
}

impl<T, F> Job for Typed<T, F>
where
    T: Send + 'static,
    F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Result<Outcome<T>, ApiError>>
        + Send
        + 'static,
{
    fn run<'t>(self: Box<Self>, txn: &'t DatabaseTransaction) -> BoxFuture<'t, (bool, Deliver)> {
        let Typed { f, tx, span } = *self;
        Box::pin(async move {
            match f(txn).instrument(span).await {
                Ok(Outcome { value, keep }) => {
                    let deliver: Deliver = Box::new(move |committed| {
                        let _ = tx.send(committed.map(|()| value));
                    });
                    (keep, deliver)
                }
                Err(e) => {
                    let deliver: Deliver = Box::new(move |_| {
                        let _ = tx.send(Err(e));
                    });
                    (false, deliver)
                }
            }
        })
    }

    fn fail(self: Box<Self>, e: ApiError) {
        let _ = self.tx.send(Err(e));
    }
}

/// A job's result: `value` for the caller, and whether its changes are kept (`false`: rolled
/// back to its savepoint, as for a repeated event that changes nothing).
pub struct Outcome<T> {
    pub value: T,
    pub keep: bool,
}

impl<T> Outcome<T> {
    pub fn keep(value: T) -> Self {
        Outcome { value, keep: true }
    }
}

/// The queue of batched write jobs and the task that commits them.
#[derive(Clone)]
pub struct Batcher {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Batcher {
    /// Start the task that runs the jobs (on the current runtime); it ends when every
    /// `Batcher` handle is dropped.
    pub fn start(db: Db) -> Batcher {
        let (jobs, mut rx) = mpsc::channel::<Box<dyn Job>>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_JOBS);
            while rx.recv_many(&mut batch, MAX_JOBS).await > 0 {
                run(&db, std::mem::take(&mut batch)).await;
            }
        });
        Batcher { jobs }
    }

    /// Run `job` in a write transaction shared with the jobs queued beside it, and return its
    /// value once that transaction committed (or the error that kept it from committing).
    pub async fn write<T, F>(&self, job: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Result<Outcome<T>, ApiError>>
            + Send
            + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let span = tracing::Span::current();
        if self
            .jobs
            .send(Box::new(Typed { f: job, tx, span }))
            .await
            .is_err()
        {
            return Err(ApiError::internal("the batched writer has stopped"));
        }
        rx.await
            .unwrap_or_else(|_| Err(ApiError::internal("the batched writer dropped a job")))
    }
}

/// One shared transaction: every job in its savepoint, then one commit, then the answers.
async fn run(db: &Db, jobs: Vec<Box<dyn Job>>) {
    let txn = match db.begin_write().await {
        Ok(txn) => txn,
        Err(e) => {
            let e = ApiError::from(e);
            for job in jobs {
                job.fail(e.clone());
            }
            return;
        }
    };
    let mut answers: Vec<Deliver> = Vec::with_capacity(jobs.len());
    let mut jobs = jobs.into_iter();
    while let Some(job) = jobs.next() {
        let sp = match txn.begin().await {
            Ok(sp) => sp,
            Err(e) => {
                // The transaction is in doubt: nothing of this batch commits.
                let e = ApiError::from(e);
                answers.into_iter().for_each(|a| a(Err(e.clone())));
                job.fail(e.clone());
                jobs.for_each(|j| j.fail(e.clone()));
                return;
            }
        };
        let (keep, answer) = job.run(&sp).await;
        let ended = if keep {
            sp.commit().await
        } else {
            sp.rollback().await
        };
        answers.push(answer);
        if let Err(e) = ended {
            let e = ApiError::from(e);
            answers.into_iter().for_each(|a| a(Err(e.clone())));
            jobs.for_each(|j| j.fail(e.clone()));
            return;
        }
    }
    let committed = txn.commit().await.map_err(ApiError::from);
    for answer in answers {
        answer(committed.clone());
    }
}
