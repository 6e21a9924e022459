//! Revocation as OAuth clients send it (RFC 7009 §2.1 forms as well as JSON) and account-wide
//! revocation: every token of an account issued up to the call, on every instance within 1 s.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, TestApp};

async fn revoke_form(app: &TestApp, form: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url("/v1/tokens/revoke"))
        .bearer_auth(&app.backend_key)
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn revoke_raw(app: &TestApp, content_type: Option<&str>, body: &str) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/v1/tokens/revoke"))
        .bearer_auth(&app.backend_key)
        .body(body.to_owned());
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn revoke_takes_the_form_oauth_libraries_send() {
    let app = spawn_app().await;
    let id = app.entitled_account("revoke-form").await;
    let token = app.issue_token(&id).await;
    let other = app.issue_token(&id).await;

    // As an OAuth library sends it: a form, with a hint and the client's own parameters
    // (ignored: this service authenticates the API key).
    let res = revoke_form(
        &app,
        &[
            ("token", &token),
            ("token_type_hint", "access_token"),
            ("client_id", "meeting-backend"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({}));
    assert_eq!(app.authorize(&token, None).await["reason"], "revoked");
    assert_eq!(app.authorize(&other, None).await["allow"], true);

    // The same semantics as JSON: unknown and foreign tokens are a 200 too.
    for junk in ["not-a-token", "a.b.c"] {
        let res = revoke_form(&app, &[("token", junk)]).await;
        assert_eq!(res.status(), StatusCode::OK, "{junk}");
    }
    // A charset parameter is fine.
    let body = format!("token={other}");
    let res = revoke_raw(
        &app,
        Some("application/x-www-form-urlencoded; charset=utf-8"),
        &body,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.authorize(&other, None).await["reason"], "revoked");

    // Authentication comes first, form or not.
    let res = app
        .client
        .post(app.url("/v1/tokens/revoke"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "missing_credentials").await;
}

#[tokio::test]
async fn revoke_refuses_other_content_types_and_a_missing_token() {
    let app = spawn_app().await;
    let secret = "eyJzZWNyZXQ.dG9rZW4.c2ln";

    for (content_type, body) in [
        (Some("text/plain"), secret.to_owned()),
        (Some("multipart/form-data; boundary=x"), String::new()),
        (None, format!("token={secret}")),
    ] {
        let res = revoke_raw(&app, content_type, &body).await;
        let problem = assert_problem(res, 415, "unsupported_media_type").await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("application/x-www-form-urlencoded"),
            "{problem}"
        );
    }

    // No token, an empty one (RFC 6749 §3.1: as if omitted), or one sent twice: the error
    // RFC 6749 §5.2 calls invalid_request, as a problem.
    let form = "application/x-www-form-urlencoded";
    let cases = [
        (form, String::new()),
        (form, "token_type_hint=access_token".to_owned()),
        (form, "token=".to_owned()),
        (form, format!("token={secret}&token={secret}")),
        (
            form,
            format!("token={secret}&token_type_hint=a&token_type_hint=b"),
        ),
        ("application/json", "{}".to_owned()),
        ("application/json", r#"{"token": ""}"#.to_owned()),
        (
            "application/json",
            r#"{"token_type_hint": "access_token"}"#.to_owned(),
        ),
    ];
    for (content_type, body) in cases {
        let res = revoke_raw(&app, Some(content_type), &body).await;
        let problem = assert_problem(res, 400, "invalid_request").await;
        assert_eq!(problem["error"], "invalid_request", "{problem}");
        assert!(
            !problem.to_string().contains(secret),
            "the token is not echoed: {problem}"
        );
    }

    // A JSON body keeps its own checks.
    let res = revoke_raw(&app, Some("application/json"), "{").await;
    assert_problem(res, 400, "malformed_json").await;
    let res = revoke_raw(
        &app,
        Some("application/json"),
        r#"{"token": "x", "extra": 1}"#,
    )
    .await;
    assert_problem(res, 400, "invalid_body").await;
    // A form too large.
    let big = format!("token={}", "a".repeat(app.settings.http.max_body_bytes + 1));
    let res = revoke_raw(&app, Some(form), &big).await;
    assert_problem(res, 413, "payload_too_large").await;
}

async fn revoke_account(app: &TestApp, id: &str, key: &str) -> reqwest::Response {
    app.post(&format!("/v1/accounts/{id}/tokens/revoke"), key, &json!({}))
        .await
}

/// Poll `other` until authorize refuses `token` as revoked; how long that took.
async fn time_until_revoked(other: &TestApp, token: &str) -> Duration {
    let start = Instant::now();
    loop {
        let body = other.authorize(token, None).await;
        if body["allow"] == false {
            assert_eq!(body["reason"], "revoked", "{body}");
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(5), "never revoked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn account_wide_revocation_refuses_every_earlier_token_on_every_instance() {
    let a = spawn_app().await;
    let b = a.spawn_sibling().await;
    let id = a.entitled_account("abuser").await;
    let bystander = a.entitled_account("bystander").await;
    let first = a.issue_token(&id).await;
    let second = b.issue_token(&id).await;
    let theirs = a.issue_token(&bystander).await;
    assert_eq!(b.authorize(&first, None).await["allow"], true);

    let before_call = a.now();
    let res = revoke_account(&a, &id, &a.backend_key).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["account_id"], id.as_str());
    let revoked_before: DateTime<Utc> = body["revoked_before"].as_str().unwrap().parse().unwrap();
    // The next whole second after the call: `iat` counts whole seconds.
    assert_eq!(revoked_before.timestamp_subsec_nanos(), 0);
    assert_eq!(revoked_before.timestamp(), before_call.timestamp() + 1);

    // Refused at once here, and within 1 s on the sibling.
    for token in [&first, &second] {
        let decision = a.authorize(token, None).await;
        assert_eq!(decision["allow"], false, "{decision}");
        assert_eq!(decision["reason"], "revoked");
    }
    let took = time_until_revoked(&b, &second).await;
    assert!(took <= Duration::from_secs(1), "took {took:?}");
    // Another account's tokens are untouched.
    assert_eq!(b.authorize(&theirs, None).await["allow"], true);

    // A token issued from `revoked_before` on works, on both instances.
    a.clock.advance(chrono::Duration::seconds(1));
    let fresh = a.issue_token(&id).await;
    assert_eq!(a.authorize(&fresh, None).await["allow"], true);
    assert_eq!(b.authorize(&fresh, None).await["allow"], true);

    // Announced once, and audited with the actor.
    let db = a.db().await;
    let events = entities::webhook_event::Entity::find()
        .filter(entities::webhook_event::Column::EventType.eq("tokens.revoked"))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let event: Value = serde_json::from_str(&events[0].body).unwrap();
    assert_eq!(event["data"]["account_id"], id.as_str());
    assert_eq!(
        event["data"]["revoked_before"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        revoked_before
    );
    let audit: Value = a
        .get("/v1/admin/audit?action=tokens.revoked", &a.admin_key)
        .await
        .json()
        .await
        .unwrap();
    let entry = &audit["items"][0];
    assert_eq!(entry["actor"], "test-backend", "{audit}");
    assert_eq!(entry["target_id"], id.as_str(), "{audit}");
}

#[tokio::test]
async fn account_wide_revocation_survives_a_restart_and_is_forgotten_when_moot() {
    let a = spawn_app().await;
    let id = a.entitled_account("restart").await;
    let token = a.issue_token(&id).await;
    let res = revoke_account(&a, &id, &a.admin_key).await;
    assert_eq!(res.status(), StatusCode::OK);

    // A new instance reads it from the database before it serves.
    let b = a.spawn_sibling().await;
    assert_eq!(b.authorize(&token, None).await["reason"], "revoked");

    use entities::account_revocation::Entity as Rows;
    assert_eq!(Rows::find().all(&a.db().await).await.unwrap().len(), 1);
    // Kept while any token it revokes could still be valid (up to 1 h, plus leeway) ...
    a.clock.advance(chrono::Duration::seconds(3600));
    a.maintain().await;
    assert_eq!(Rows::find().all(&a.db().await).await.unwrap().len(), 1);
    // ... then purged.
    a.clock.advance(chrono::Duration::seconds(400));
    a.maintain().await;
    assert!(Rows::find().all(&a.db().await).await.unwrap().is_empty());
}

#[tokio::test]
async fn account_wide_revocation_needs_an_account_and_the_right_role() {
    let app = spawn_app().await;
    let id = app.account("roles").await;
    for key in [&app.meeting_key, &app.reviewer_key] {
        assert_problem(revoke_account(&app, &id, key).await, 403, "forbidden").await;
    }
    assert_problem(
        revoke_account(
            &app,
            "acc_0000000000000000000000000000dead",
            &app.backend_key,
        )
        .await,
        404,
        "account_not_found",
    )
    .await;
    assert_problem(
        revoke_account(&app, "not-an-id", &app.backend_key).await,
        404,
        "account_not_found",
    )
    .await;
    let res = app
        .client
        .post(app.url(&format!("/v1/accounts/{id}/tokens/revoke")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Nothing was stored for the refused calls.
    assert!(entities::account_revocation::Entity::find()
        .all(&app.db().await)
        .await
        .unwrap()
        .is_empty());
}
