//! What a raw copy of the database says about who holds an exception: the SQLite file with its
//! WAL, or a `pg_dump`, after a dissident request was submitted, approved, read, revoked and its
//! account erased, names the category no more often than a freshly migrated database does.

use super::*;
use crate::helpers::output;

/// Every byte a copy of the database holds: the SQLite file with its WAL and shared memory, or
/// a plain `pg_dump` of the instance's PostgreSQL database.
pub(super) async fn database_copy(app: &TestApp) -> Vec<u8> {
    if app.is_postgres() {
        let out = output(
            tokio::process::Command::new("pg_dump")
                .arg("--no-owner")
                .arg("--dbname")
                .arg(&app.database_url),
        )
        .await;
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return out.stdout;
    }
    let path = app
        .database_url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let mut bytes = std::fs::read(&path).unwrap();
    for suffix in ["-wal", "-shm"] {
        if let Ok(b) = std::fs::read(format!("{path}{suffix}")) {
            bytes.extend(b);
        }
    }
    bytes
}

/// How often `word` occurs in `bytes`, in any letter case.
pub(super) fn occurrences(bytes: &[u8], word: &str) -> usize {
    let lower = bytes.to_ascii_lowercase();
    lower
        .windows(word.len())
        .filter(|w| *w == word.as_bytes())
        .count()
}

#[tokio::test]
async fn a_copy_of_the_database_does_not_name_the_category_of_an_exception() {
    let app = spawn_app().await;
    let empty = occurrences(&database_copy(&app).await, "dissident");

    let second = client(&app, "second-reviewer", "reviewer").await;
    let acc = app.account("platform-user-8812").await;
    let eid = submit(&app, &acc, "dissident").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decided(&app, &app.reviewer_key, &eid, approve("one")).await;
    decided(&app, &second, &eid, approve("two")).await;
    // Backends and reviewers still get the category through the API.
    let evidence = evidence_from(&app, &acc, &eid).await;
    assert_eq!(evidence["kind"], "dissident", "{evidence}");
    assert_eq!(
        entitlement(&app, &acc).await["satisfied_by"],
        json!(["dissident"])
    );
    let token = app.issue_token(&acc).await;
    assert!(!token_claims_text(&token).contains("dissident"));
    let read = json_of(
        app.get(&format!("/v1/exceptions/{eid}"), &app.reviewer_key)
            .await,
    )
    .await;
    assert_eq!(read["category"], "dissident");
    let queue = json_of(
        app.get("/v1/exceptions?category=dissident", &app.reviewer_key)
            .await,
    )
    .await;
    assert_eq!(queue["items"][0]["id"], eid.as_str());

    let approved = occurrences(&database_copy(&app).await, "dissident");

    let res = app
        .post(
            &format!("/v1/exceptions/{eid}/revoke"),
            &app.reviewer_key,
            &json!({"reason": "ended"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .delete(&format!("/v1/accounts/{acc}"), &app.backend_key)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    let after = occurrences(&database_copy(&app).await, "dissident");
    assert!(
        approved <= empty && after <= empty,
        "occurrences of the category: {approved} after approval, {after} after revocation and \
         erasure, {empty} in an empty database"
    );
}

fn token_claims_text(token: &str) -> String {
    crate::helpers::token_part(token, 1).to_string()
}
