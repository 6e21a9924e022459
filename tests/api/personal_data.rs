//! Personal data at rest: account emails are sealed, so a copy of the database does not yield
//! them; erasure removes them. (That a sealed email opens only for its account under the master
//! key is a unit test in `services::accounts`: the API never returns the email.)

use sea_orm::EntityTrait;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

/// Everything a copy of the database holds: the SQLite files' bytes, or every account row as
/// text on PostgreSQL.
async fn database_copy(app: &TestApp) -> String {
    let db = &app.db().await;
    match db.get_database_backend() {
        DatabaseBackend::Sqlite => {
            let path = app
                .database_url
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .unwrap()
                .to_owned();
            let mut bytes = Vec::new();
            for suffix in ["", "-wal", "-shm"] {
                if let Ok(b) = std::fs::read(format!("{path}{suffix}")) {
                    bytes.extend(b);
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => db
            .query_all_raw(Statement::from_string(
                DatabaseBackend::Postgres,
                "SELECT CAST(a AS text) AS row FROM account a".to_owned(),
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<String>("", "row").unwrap())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

async fn account_row(app: &TestApp, id: &str) -> Option<entities::account::Model> {
    entities::account::Entity::find_by_id(id)
        .one(&app.db().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_copy_of_the_database_does_not_yield_an_account_email() {
    let app = spawn_app().await;
    let email = "zqx-sealed-4471@example.org";
    let res = app
        .post(
            "/v1/accounts",
            &app.backend_key,
            &json!({"external_id": "sealed", "email": email}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let copy = database_copy(&app).await;
    assert!(copy.contains("sealed"), "the copy holds the account");
    assert!(!copy.contains(email), "the email is in the database copy");
    assert!(!copy.contains("zqx-sealed-4471"));

    // It is there, sealed.
    let row = account_row(&app, &id).await.unwrap();
    assert_eq!(row.email, None);
    assert!(row.email_sealed.is_some_and(|s| !s.contains("zqx-sealed")));

    // Erasure removes it with the row.
    assert_eq!(
        app.delete(&format!("/v1/accounts/{id}"), &app.backend_key)
            .await
            .status(),
        204
    );
    assert!(account_row(&app, &id).await.is_none());
    assert!(!database_copy(&app).await.contains(email));
}

#[tokio::test]
async fn plaintext_emails_from_older_versions_are_sealed_at_start_up() {
    let app = spawn_app().await;
    let id = app.account("legacy").await;
    // As an older version stored it.
    let db = &app.db().await;
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        match db.get_database_backend() {
            DatabaseBackend::Postgres => {
                "UPDATE account SET email = $1, email_sealed = NULL WHERE id = $2"
            }
            _ => "UPDATE account SET email = ?, email_sealed = NULL WHERE id = ?",
        },
        ["legacy-9932@example.org".into(), id.clone().into()],
    ))
    .await
    .unwrap();

    let restarted = app.spawn_sibling().await;
    let row = account_row(&restarted, &id).await.unwrap();
    assert_eq!(row.email, None);
    assert!(row.email_sealed.is_some_and(|s| !s.contains("legacy-9932")));
    let copy = database_copy(&restarted).await;
    if db.get_database_backend() == DatabaseBackend::Postgres {
        assert!(!copy.contains("legacy-9932"), "{copy}");
    }
    let audit: Value = restarted
        .get(
            "/v1/admin/audit?action=account.emails_sealed",
            &restarted.admin_key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"][0]["details"]["accounts"], 1, "{audit}");
    assert_eq!(
        restarted
            .get("/v1/admin/audit/verify", &restarted.admin_key)
            .await
            .json::<Value>()
            .await
            .unwrap()["intact"],
        true
    );
}
