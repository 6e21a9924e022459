//! The database handle: connection pool, migrations, and write transactions.
//!
//! SQLite allows one writer at a time and answers a second one with "database is locked" when
//! both started as readers; a process-wide write lock and `BEGIN IMMEDIATE` turn that into an
//! orderly queue. On PostgreSQL, write transactions start by taking the audit chain's advisory
//! lock, so every writer locks in the same order.
//!
//! With the audit key set (`with_audit_key`), each write transaction MACs the audit entries it
//! appended as it commits (see `services::audit`); a handle without it writes no audit entries
//! anyone could verify, so every process that writes sets it.

use std::{sync::Arc, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, DbErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use secrecy::ExposeSecret;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::{config::Settings, crypto::MasterKey, services::audit};

#[derive(Clone)]
pub struct Db {
    conn: DatabaseConnection,
    write_lock: Option<Arc<Mutex<()>>>,
    /// The key audit entries are MACed under (`audit::chain_key`).
    audit_key: Option<MasterKey>,
}

/// A transaction that may write; commit it or it rolls back when dropped.
pub struct WriteTxn {
    txn: DatabaseTransaction,
    _guard: Option<OwnedMutexGuard<()>>,
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
        if sqlite {
            opts.map_sqlx_sqlite_opts(|o| {
                use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    // Erased and re-sealed personal data is overwritten in the file, not left
                    // in free pages for a copy of it to yield.
                    .pragma("secure_delete", "on")
            });
        }
        let conn = Database::connect(opts).await?;
        Ok(Db {
            conn,
            write_lock: sqlite.then(|| Arc::new(Mutex::new(()))),
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
        let _guard = self.lock().await;
        Migrator::up(&self.conn, None).await
    }

    async fn lock(&self) -> Option<OwnedMutexGuard<()>> {
        match &self.write_lock {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        }
    }

    pub async fn begin_write(&self) -> Result<WriteTxn, DbErr> {
        let guard = self.lock().await;
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
            // Almost every write ends with an audit entry, which takes the chain lock until
            // commit. Taking it first, before any row lock, gives every writer the same lock
            // order (chain, then rows), so two writers can never deadlock on PostgreSQL.
            txn.execute_unprepared(&format!(
                "SELECT pg_advisory_xact_lock({})",
                crate::services::audit::CHAIN_LOCK
            ))
            .await?;
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
            _guard: guard,
            audit,
        })
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn.ping().await
    }
}
