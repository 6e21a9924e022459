//! Submitting a request: one open request per account, and validation that stores nothing.

use super::*;

#[tokio::test]
async fn a_submission_is_pending_and_a_second_open_request_conflicts() {
    let app = spawn_app().await;
    let acc = app.account("np").await;
    let created = submit(&app, &acc, "nonprofit").await;
    let eid = created["id"].as_str().unwrap();
    assert!(eid.starts_with("exc_"), "{eid}");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["category"], "nonprofit");
    assert_eq!(created["account_id"], acc.as_str());
    assert_eq!(created["approvals_required"], 1);
    assert_eq!(created["approvals_received"], 0);
    assert!(created["expires_at"].is_null());
    // The backend's view never carries the sealed text, nor who reviews.
    let text = created.to_string();
    assert!(
        !text.contains("Zqx-7731") && !text.contains("Wqv-0042"),
        "{text}"
    );
    assert!(created.get("statement").is_none() && created.get("approvals").is_none());

    let body = assert_problem(
        submit_as(
            &app,
            &app.backend_key,
            &acc,
            json!({"category": "nonprofit", "statement": "again"}),
        )
        .await,
        409,
        "exception_pending",
    )
    .await;
    assert_eq!(body["exception_id"], eid);
    // Another category is another request.
    let dissident = submit(&app, &acc, "dissident").await;
    assert_eq!(dissident["approvals_required"], 2);

    // The backend may follow its request's state.
    let seen = json_of(
        app.get(&format!("/v1/exceptions/{eid}"), &app.backend_key)
            .await,
    )
    .await;
    assert_eq!(seen["status"], "pending");
    assert!(seen.get("statement").is_none() && seen.get("submitted_by").is_none());
}

#[tokio::test]
async fn submissions_are_validated_and_nothing_is_stored_when_invalid() {
    let app = spawn_app().await;
    let acc = app.account("v").await;
    let cases = [
        (
            json!({"category": "nonprofit", "statement": ""}),
            "invalid_statement",
        ),
        (
            json!({"category": "nonprofit", "statement": " \n "}),
            "invalid_statement",
        ),
        (
            json!({"category": "nonprofit", "statement": "x".repeat(10_001)}),
            "invalid_statement",
        ),
        (
            json!({"category": "nonprofit", "statement": "a\u{0007}b"}),
            "invalid_statement",
        ),
        (
            json!({"category": "nonprofit", "statement": "ok", "organization": "o".repeat(201)}),
            "invalid_organization",
        ),
        (
            json!({"category": "nonprofit", "statement": "ok", "reference": "a\nb"}),
            "invalid_reference",
        ),
        (
            json!({"category": "charity", "statement": "ok"}),
            "invalid_body",
        ),
        (json!({"statement": "ok"}), "invalid_body"),
        (json!({"category": "nonprofit"}), "invalid_body"),
        (
            json!({"category": "nonprofit", "statement": "ok", "status": "approved"}),
            "invalid_body",
        ),
    ];
    for (body, code) in cases {
        assert_problem(
            submit_as(&app, &app.backend_key, &acc, body).await,
            400,
            code,
        )
        .await;
    }
    assert_problem(
        submit_as(
            &app,
            &app.backend_key,
            "acc_0000000000000000000000000000dead",
            json!({"category": "nonprofit", "statement": "ok"}),
        )
        .await,
        404,
        "account_not_found",
    )
    .await;
    let queue = json_of(app.get("/v1/exceptions", &app.reviewer_key).await).await;
    assert_eq!(queue["items"], json!([]));

    // The longest statement is accepted; blank optional fields count as absent.
    let res = submit_as(
        &app,
        &app.backend_key,
        &acc,
        json!({"category": "nonprofit", "statement": "é".repeat(10_000), "organization": "  "}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let eid = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let full = json_of(
        app.get(&format!("/v1/exceptions/{eid}"), &app.reviewer_key)
            .await,
    )
    .await;
    assert_eq!(full["statement"].as_str().unwrap().chars().count(), 10_000);
    assert!(full.get("organization").is_none());
}
