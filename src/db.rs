//! The database handle: connection pool, migrations, and write transactions.
//!
//! SQLite allows one writer at a time and answers a second one with "database is locked" when
//! both started as readers; a process-wide write lock turns that into an orderly queue.
//! PostgreSQL needs no such lock.

use std::{sync::Arc, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use secrecy::ExposeSecret;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::config::Settings;

#[derive(Clone)]
pub struct Db {
    conn: DatabaseConnection,
    write_lock: Option<Arc<Mutex<()>>>,
}

/// A transaction that may write; commit it or it rolls back when dropped.
pub struct WriteTxn {
    txn: DatabaseTransaction,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl WriteTxn {
    pub async fn commit(self) -> Result<(), DbErr> {
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
            });
        }
        let conn = Database::connect(opts).await?;
        Ok(Db {
            conn,
            write_lock: sqlite.then(|| Arc::new(Mutex::new(()))),
        })
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
            // SQLite: take the write lock at BEGIN. A deferred transaction that reads first and
            // then writes fails at once with "database is locked" when another process (the
            // CLI, say) writes meanwhile; an immediate one waits for it (busy_timeout).
            self.conn
                .begin_with_options(TransactionOptions {
                    sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    ..Default::default()
                })
                .await?
        } else {
            self.conn.begin().await?
        };
        Ok(WriteTxn { txn, _guard: guard })
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn.ping().await
    }
}
