use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn admins_create_list_and_revoke_clients() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/v1/admin/clients",
            &app.admin_key,
            &json!({"name": "meet-eu", "role": "meeting"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let created: Value = res.json().await.unwrap();
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("vk_") && key.len() >= 46, "{key}");
    assert_eq!(created["role"], "meeting");
    assert_eq!(created["created_by"], "test-admin");
    assert!(key.starts_with(created["key_prefix"].as_str().unwrap()));

    let list: Value = app
        .get("/v1/admin/clients", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        6,
        "one seeded client per role, and the new one"
    );
    assert!(
        items.iter().all(|c| c.get("key").is_none()),
        "keys are never listed"
    );
    assert!(!list.to_string().contains(key));

    // Only the hash is stored.
    use sea_orm::EntityTrait;
    let rows = entities::api_client::Entity::find()
        .all(&app.db().await)
        .await
        .unwrap();
    assert!(rows.iter().all(|r| !format!("{r:?}").contains(key)));

    let id = created["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/v1/admin/clients/{id}"), &app.admin_key)
            .await
            .status(),
        204
    );
    assert_eq!(
        app.delete(&format!("/v1/admin/clients/{id}"), &app.admin_key)
            .await
            .status(),
        204
    );
    let list: Value = app
        .get("/v1/admin/clients", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    let revoked = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap()
        .clone();
    assert!(revoked["revoked_at"].is_string());
    assert_problem(
        app.delete("/v1/admin/clients/cli_missing", &app.admin_key)
            .await,
        404,
        "client_not_found",
    )
    .await;
}

#[tokio::test]
async fn client_input_is_validated() {
    let app = spawn_app().await;
    for (body, code) in [
        (json!({"name": "", "role": "backend"}), "invalid_name"),
        (
            json!({"name": "has space", "role": "backend"}),
            "invalid_name",
        ),
        (
            json!({"name": "x".repeat(65), "role": "backend"}),
            "invalid_name",
        ),
        (json!({"name": "ok", "role": "superuser"}), "invalid_body"),
        (json!({"name": "ok"}), "invalid_body"),
    ] {
        assert_problem(
            app.post("/v1/admin/clients", &app.admin_key, &body).await,
            400,
            code,
        )
        .await;
    }
    let res = app
        .post(
            "/v1/admin/clients",
            &app.admin_key,
            &json!({"name": "test-backend", "role": "backend"}),
        )
        .await;
    assert_problem(res, 409, "client_exists").await;
}
