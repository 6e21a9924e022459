use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn create_get_and_look_up_an_account() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/v1/accounts",
            &app.backend_key,
            &json!({"external_id": "user-1", "email": "Ann@Example.org", "display_name": "Ann"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(location, format!("/v1/accounts/{id}"));
    assert_eq!(created["external_id"], "user-1");
    assert_eq!(created["display_name"], "Ann");
    assert_eq!(created["status"], "active");
    assert_eq!(created["email_verified"], false);
    assert_eq!(created["phone_verified"], false);
    assert!(
        created.get("email").is_none(),
        "the email is never returned: {created}"
    );
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));

    let got: Value = app
        .get(&location, &app.reviewer_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, created);

    let list: Value = app
        .get("/v1/accounts?external_id=user-1", &app.backend_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"], json!([created]));
    assert_eq!(list["next_cursor"], Value::Null);

    let none: Value = app
        .get("/v1/accounts?external_id=nobody", &app.backend_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["items"], json!([]));
}

#[tokio::test]
async fn duplicate_external_ids_conflict_even_when_concurrent() {
    let app = spawn_app().await;
    let existing = app.create_account("dup").await;
    let res = app
        .post(
            "/v1/accounts",
            &app.backend_key,
            &json!({"external_id": "dup"}),
        )
        .await;
    // The conflict names the account that holds the external_id, so the caller can use it.
    let problem = assert_problem(res, 409, "account_exists").await;
    assert_eq!(problem["id"], existing["id"], "{problem}");

    let body = json!({"external_id": "race"});
    let results = futures_util::future::join_all(
        (0..8).map(|_| app.post("/v1/accounts", &app.backend_key, &body)),
    )
    .await;
    let mut created = Vec::new();
    let mut conflicts = Vec::new();
    for res in results {
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        match status {
            StatusCode::CREATED => created.push(body["id"].clone()),
            StatusCode::CONFLICT => conflicts.push(body["id"].clone()),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!((created.len(), conflicts.len()), (1, 7));
    assert!(
        conflicts.iter().all(|id| *id == created[0]),
        "{conflicts:?}"
    );
}

#[tokio::test]
async fn invalid_fields_are_rejected_with_their_code_and_nothing_is_stored() {
    let app = spawn_app().await;
    let cases = [
        (json!({"external_id": ""}), "invalid_external_id"),
        (json!({"external_id": "   "}), "invalid_external_id"),
        (
            json!({"external_id": "x".repeat(256)}),
            "invalid_external_id",
        ),
        (
            json!({"external_id": "ok", "email": "not-an-email"}),
            "invalid_email",
        ),
        (
            json!({"external_id": "ok", "email": "a@b"}),
            "invalid_email",
        ),
        (
            json!({"external_id": "ok", "display_name": "x".repeat(201)}),
            "invalid_display_name",
        ),
        (
            json!({"external_id": "ok", "phone": "+15551234567"}),
            "invalid_body",
        ),
        (json!({"external_id": 42}), "invalid_body"),
        (json!({"email": "a@example.org"}), "invalid_body"),
        (json!([]), "invalid_body"),
    ];
    for (body, code) in cases {
        let res = app.post("/v1/accounts", &app.backend_key, &body).await;
        assert_problem(res, 400, code).await;
    }
    let list: Value = app
        .get("/v1/accounts", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"], json!([]));
    // The longest valid external id is accepted.
    app.create_account(&"x".repeat(255)).await;
}

#[tokio::test]
async fn listing_paginates_with_a_cursor() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.account(&format!("p{i}")).await);
    }
    let mut seen = Vec::new();
    let mut path = "/v1/accounts?limit=2".to_owned();
    loop {
        let page: Value = app.get(&path, &app.backend_key).await.json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/accounts?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    for bad in ["/v1/accounts?limit=0", "/v1/accounts?limit=201"] {
        assert_problem(app.get(bad, &app.backend_key).await, 400, "invalid_limit").await;
    }
    assert_problem(
        app.get("/v1/accounts?limit=abc", &app.backend_key).await,
        400,
        "invalid_query",
    )
    .await;
    assert_problem(
        app.get("/v1/accounts?cursor=%%%", &app.backend_key).await,
        400,
        "invalid_cursor",
    )
    .await;
}

#[tokio::test]
async fn patch_changes_the_name_and_only_admins_change_status() {
    let app = spawn_app().await;
    let id = app.account("patchy").await;
    let path = format!("/v1/accounts/{id}");

    let res = app
        .patch(&path, &app.backend_key, &json!({"display_name": "New"}))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["display_name"], "New");

    let res = app
        .patch(&path, &app.backend_key, &json!({"display_name": null}))
        .await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["display_name"],
        Value::Null
    );

    let res = app
        .patch(&path, &app.backend_key, &json!({"status": "suspended"}))
        .await;
    assert_problem(res, 403, "forbidden").await;

    let res = app
        .patch(&path, &app.admin_key, &json!({"status": "suspended"}))
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "suspended");
    let res = app
        .patch(&path, &app.admin_key, &json!({"status": "active"}))
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "active");

    let res = app
        .patch(&path, &app.admin_key, &json!({"status": "deleted"}))
        .await;
    assert_problem(res, 400, "invalid_body").await;
    let res = app
        .patch(
            &path,
            &app.admin_key,
            &json!({"display_name": "x".repeat(300)}),
        )
        .await;
    assert_problem(res, 400, "invalid_display_name").await;
    let res = app
        .patch(
            "/v1/accounts/acc_0000000000000000000000000000dead",
            &app.admin_key,
            &json!({}),
        )
        .await;
    assert_problem(res, 404, "account_not_found").await;

    let audit: Value = app
        .get(&format!("/v1/admin/audit?target_id={id}"), &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "account.reactivated",
            "account.suspended",
            "account.updated",
            "account.updated",
            "account.created"
        ]
    );
}

#[tokio::test]
async fn delete_erases_personal_data_and_keeps_a_pseudonymous_trail() {
    let app = spawn_app().await;
    let id = app.account("erase-me").await;
    let path = format!("/v1/accounts/{id}");

    let res = app.delete(&path, &app.backend_key).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get(&path, &app.backend_key).await,
        404,
        "account_not_found",
    )
    .await;
    assert_problem(
        app.delete(&path, &app.backend_key).await,
        404,
        "account_not_found",
    )
    .await;

    // No row still holds the email or the external id.
    use sea_orm::EntityTrait;
    let db = &app.db().await;
    assert!(entities::account::Entity::find()
        .all(db)
        .await
        .unwrap()
        .is_empty());
    for entry in entities::audit_log::Entity::find().all(db).await.unwrap() {
        let text = format!("{entry:?}");
        assert!(
            !text.contains("someone@example.org") && !text.contains("erase-me"),
            "{text}"
        );
    }
    let audit: Value = app
        .get(
            &format!("/v1/admin/audit?target_id={id}&action=account.deleted"),
            &app.admin_key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);

    // The platform may create the user again.
    app.create_account("erase-me").await;
}

#[tokio::test]
async fn unknown_account_ids_are_404() {
    let app = spawn_app().await;
    for id in [
        "acc_0000000000000000000000000000dead",
        "nope",
        "..%2F..%2Fetc",
    ] {
        let res = app
            .get(&format!("/v1/accounts/{id}"), &app.backend_key)
            .await;
        assert_problem(res, 404, "account_not_found").await;
    }
}
