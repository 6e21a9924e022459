//! The database handle: connection pool, migrations, and write transactions, and the lock
//! policy they follow.
//!
//! # Lock policy
//!
//! Every write goes through [`Db::begin_write`], and write transactions run one at a time, from
//! their first statement to their commit, so whatever a writer reads or numbers comes after
//! every transaction committed before it:
//!
//! - **SQLite** allows one writer at a time and answers a second one with "database is locked"
//!   when both started as readers; a process-wide write lock and `BEGIN IMMEDIATE` turn that
//!   into an orderly queue. No advisory locks (the helper does nothing there).
//! - **PostgreSQL**: a writer takes, in this order and never otherwise,
//!   1. a write slot (`database.max_writers`, in process), before a pool connection;
//!   2. the audit chain's advisory lock ([`lock::Scope::AuditChain`]), as the transaction's
//!      first statement, held until commit. It serialises the audit chain (each entry hashes
//!      the one before) and, being first in every writer, all writers: nobody holds a row lock
//!      while waiting for it, so two writers can never deadlock;
//!   3. then, inside the transaction, any scope locks ([`lock::advisory_lock`]), each service
//!      in a fixed order: signing keys; billing customers (sorted), then subscriptions
//!      (sorted); verification `sms-budget`, then `account`, then `destination`;
//!   4. and last, row locks (conditional updates, e.g. the exception request being decided).
//!
//! Because of 2, the scope locks in 3 and the chain lock `audit::append` takes again (a no-op:
//! advisory locks are re-entrant within a session) are redundant for writers that begin with
//! `begin_write`, which all of Vouch's do. They are kept, cheap and uncontended, so that each
//! service stays correct on its own if a write path ever starts a transaction another way; if
//! they are ever dropped, drop them all and keep the chain lock.
//!
//! No writer waits for ever: the SQLite write queue and the write slots are left after
//! `database.lock_timeout_seconds`, and PostgreSQL sessions carry `lock_timeout` (and
//! `idle_in_transaction_session_timeout`, which ends a session that holds locks while doing
//! nothing), so a stuck lock holder costs one request a 503 and a log line, never a service
//! whose writers all hang.
//!
//! With the audit key set (`with_audit_key`), each write transaction MACs the audit entries it
//! appended as it commits (see `services::audit`); a handle without it writes no audit entries
//! anyone could verify, so every process that writes sets it.

pub mod batch;
pub mod lock;

use std::{sync::Arc, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnAcquireErr, ConnectOptions, Database, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, DbErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use secrecy::ExposeSecret;
use tokio::sync::{Mutex, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use crate::{config::Settings, crypto::MasterKey, services::audit};

#[derive(Clone)]
pub struct Db {
    conn: DatabaseConnection,
    write_lock: Option<Arc<Mutex<()>>>,
    lock_timeout: Duration,
    /// PostgreSQL: write slots (`database.max_writers`), fewer than the pool's connections,
    /// taken before a connection. Writers serialise on the chain lock anyway, so more of them
    /// holding connections adds no throughput; it only left readers (authorize) queueing
    /// behind them for a connection until they timed out with 503.
    writers: Option<Arc<Semaphore>>,
    /// The key audit entries are MACed under (`audit::chain_key`).
    audit_key: Option<MasterKey>,
}

/// A transaction that may write; commit it or it rolls back when dropped. (Fields drop in
/// order: the transaction, then the lock or write slot it was taken under.)
pub struct WriteTxn {
    txn: DatabaseTransaction,
    /// With traces on, the span from `begin_write` (waiting for the lock included) to the commit
    /// or rollback.
    _span: Option<tracing::Span>,
    _guard: Option<OwnedMutexGuard<()>>,
    _slot: Option<OwnedSemaphorePermit>,
    /// The audit key and the last audit `seq` before this transaction began.
    audit: Option<(MasterKey, i64)>,
}

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl WriteTxn {
    /// MAC the audit entries this transaction appended, then commit both together.
    pub async fn commit(self) -> Result<(), DbErr> {
        if let Some((key, after)) = &self.audit {
            audit::seal_appended(&self.txn, key, *after).await?;
        }
        self.txn.commit().await
    }
}

impl Db {
    pub async fn connect(settings: &Settings) -> Result<Db, DbErr> {
        let url = settings.database_url.expose_secret().to_owned();
        let sqlite = settings.is_sqlite();
        let mut opts = ConnectOptions::new(url);
        opts.max_connections(settings.database.max_connections)
            .min_connections(if sqlite { 1 } else { 0 })
            .acquire_timeout(settings.acquire_timeout())
            .connect_timeout(settings.acquire_timeout())
            .idle_timeout(Duration::from_secs(300))
            .sqlx_logging(false);
        let lock_timeout = settings.lock_timeout();
        if !sqlite {
            let idle = settings.idle_in_transaction_timeout();
            // Session settings sent at connection start-up, so every pooled connection has them.
            opts.map_sqlx_postgres_opts(move |o| {
                o.options([
                    ("lock_timeout", format!("{}ms", lock_timeout.as_millis())),
                    (
                        "idle_in_transaction_session_timeout",
                        format!("{}ms", idle.as_millis()),
                    ),
                ])
            });
        }
        if sqlite {
            // A read-only connection (`mode=ro`: the CLI's readers) cannot switch the journal
            // mode, and must not turn a file that is not Vouch's into a WAL database; Vouch's
            // own databases are in WAL mode already.
            let read_only = settings
                .database_url
                .expose_secret()
                .split_once('?')
                .is_some_and(|(_, query)| query.split('&').any(|p| p == "mode=ro"));
            opts.map_sqlx_sqlite_opts(move |o| {
                use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
                let o = if read_only {
                    o
                } else {
                    o.journal_mode(SqliteJournalMode::Wal)
                };
                o.synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    // Erased and re-sealed personal data is overwritten in the file, not left
                    // in free pages for a copy of it to yield.
                    .pragma("secure_delete", "on")
                    // Statement journals (savepoints: every batched write job has one, and
                    // every statement that may fail halfway) in memory, not in a temp file:
                    // on this service's write path each was several file writes per job.
                    .pragma("temp_store", "memory")
            });
        }
        let conn = Database::connect(opts).await?;
        Ok(Db {
            conn,
            write_lock: sqlite.then(|| Arc::new(Mutex::new(()))),
            lock_timeout,
            writers: (!sqlite).then(|| Arc::new(Semaphore::new(settings.max_writers()))),
            audit_key: None,
        })
    }

    /// MAC audit entries under `key` (`audit::chain_key` of the master key) from now on.
    pub fn with_audit_key(mut self, key: MasterKey) -> Db {
        self.audit_key = Some(key);
        self
    }

    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.conn.get_database_backend()
    }

    pub async fn migrate(&self) -> Result<(), DbErr> {
        let _guard = self.lock().await?;
        Migrator::up(&self.conn, None).await
    }

    /// A place in SQLite's write queue (nothing on PostgreSQL), given up after the lock timeout
    /// as if the pool had no connection to give: the caller answers 503.
    async fn lock(&self) -> Result<Option<OwnedMutexGuard<()>>, DbErr> {
        let Some(lock) = &self.write_lock else {
            return Ok(None);
        };
        match tokio::time::timeout(self.lock_timeout, lock.clone().lock_owned()).await {
            Ok(guard) => Ok(Some(guard)),
            Err(_) => {
                tracing::warn!(
                    waited_ms = self.lock_timeout.as_millis() as u64,
                    "a writer gave up waiting for the write lock"
                );
                Err(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout))
            }
        }
    }

    /// A write slot, taken before a pool connection (PostgreSQL); `None` on SQLite, whose
    /// write lock already admits one writer at a time.
    async fn write_slot(&self) -> Result<Option<OwnedSemaphorePermit>, DbErr> {
        let Some(writers) = &self.writers else {
            return Ok(None);
        };
        // Waiting for a turn is waiting for a lock: bounded like the others.
        match tokio::time::timeout(self.lock_timeout, writers.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            // The semaphore is never closed; treat it like a closed pool all the same.
            Ok(Err(_)) => Err(DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed)),
            Err(_) => {
                tracing::warn!(
                    waited_ms = self.lock_timeout.as_millis() as u64,
                    "a writer gave up waiting for a write slot"
                );
                Err(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout))
            }
        }
    }

    /// Begin a write transaction. Write transactions run one at a time, from their first
    /// statement to their commit (the lock policy in the module doc; on PostgreSQL the chain's
    /// advisory lock is released only after the commit is visible to others). So whatever a
    /// writer reads or numbers (say a `seq` from a sequence) comes after every transaction
    /// committed before it, and readers see commits in that order.
    pub async fn begin_write(&self) -> Result<WriteTxn, DbErr> {
        // A child of the request or delivery at hand; the background loops' own writes, outside
        // any span, would each be a trace of their own and are left out.
        let span = (crate::telemetry::traces::enabled() && !tracing::Span::current().is_none())
            .then(|| {
                tracing::info_span!(
                    "db.write_transaction",
                    db.system.name = match self.backend() {
                        DatabaseBackend::Postgres => "postgresql",
                        DatabaseBackend::Sqlite => "sqlite",
                        _ => "other",
                    },
                )
            });
        let slot = self.write_slot().await?;
        let guard = self.lock().await?;
        let txn = if guard.is_some() {
            // IMMEDIATE takes SQLite's write lock up front (waiting up to busy_timeout), so a
            // transaction that reads first cannot fail later when another process wrote.
            self.conn
                .begin_with_options(TransactionOptions {
                    sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    ..Default::default()
                })
                .await?
        } else {
            let txn = self.conn.begin().await?;
            // First, before any other lock: the lock policy above.
            lock::advisory_lock(&txn, lock::Scope::AuditChain, "").await?;
            txn
        };
        // Read under the chain lock (taken above on both backends), so no other writer's
        // entries can fall after this mark.
        let audit = match &self.audit_key {
            Some(key) => Some((key.clone(), audit::last_seq(&txn).await?)),
            None => None,
        };
        Ok(WriteTxn {
            txn,
            _span: span,
            audit,
            _guard: guard,
            _slot: slot,
        })
    }

    /// Make rewritten rows' old contents unreadable from a copy of the database files, after
    /// personal data was sealed in place (start-up). SQLite (whose connections overwrite freed
    /// content, `secure_delete`): the WAL still holds the old pages, so on one connection they
    /// are checkpointed into the file, the log restarted, and cut back to nothing by the next
    /// write (one is made here) under `journal_size_limit = 0`, set for that moment only.
    /// Readers of other processes on the same file may see errors meanwhile: do it with the
    /// service stopped elsewhere. PostgreSQL: `tables` are rewritten without their dead row
    /// versions (`VACUUM FULL`, which locks them briefly). Outside any transaction.
    pub async fn scrub(&self, tables: &[&str]) -> Result<(), DbErr> {
        use sea_orm::{sqlx, ConnectionTrait};
        if self.backend() != DatabaseBackend::Sqlite {
            let sql = format!("VACUUM FULL {}", tables.join(", "));
            self.conn.execute_unprepared(&sql).await?;
            return Ok(());
        }
        let sqlx_err = |e: sqlx::Error| DbErr::Custom(format!("scrubbing the WAL: {e}"));
        let mut conn = self
            .conn
            .get_sqlite_connection_pool()
            .acquire()
            .await
            .map_err(sqlx_err)?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *conn)
            .await
            .map_err(sqlx_err)?;
        for pragma in [
            "PRAGMA journal_size_limit = 0".to_owned(),
            "PRAGMA wal_checkpoint(RESTART)".to_owned(),
            // The same value: a write of the header page, which restarts and so cuts the log.
            format!("PRAGMA user_version = {version}"),
            "PRAGMA journal_size_limit = -1".to_owned(),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(pragma))
                .fetch_all(&mut *conn)
                .await
                .map_err(sqlx_err)?;
        }
        Ok(())
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn.ping().await
    }

    /// The pool's connections: open ones, and how many of those are idle (in use: the rest).
    pub fn pool_size(&self) -> (u64, u64) {
        let (size, idle) = match self.conn.get_database_backend() {
            DatabaseBackend::Sqlite => {
                let pool = self.conn.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            DatabaseBackend::Postgres => {
                let pool = self.conn.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => (0, 0),
        };
        (u64::from(size), idle as u64)
    }
}
