//! Bad input of every kind gets problem+json 4xx, never a 5xx.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn router_errors_are_problems() {
    let app = spawn_app().await;
    assert_problem(app.get("/nope", &app.admin_key).await, 404, "not_found").await;
    assert_problem(
        app.get("/v1/accounts/x/y/z", &app.admin_key).await,
        404,
        "not_found",
    )
    .await;

    let res = app
        .request(Method::PUT, "/v1/accounts", Some(&app.admin_key), None)
        .await;
    assert_eq!(res.headers()["allow"], "GET, POST");
    assert_problem(res, 405, "method_not_allowed").await;
    let res = app.request(Method::POST, "/healthz", None, None).await;
    assert_problem(res, 405, "method_not_allowed").await;
    // A made-up method is named `OTHER`, not echoed.
    let junk = Method::from_bytes(b"JUNKJUNKJUNK").unwrap();
    let res = app.request(junk, "/v1/accounts", None, None).await;
    let body = assert_problem(res, 405, "method_not_allowed").await;
    assert!(!body.to_string().contains("JUNK"), "{body}");
}

#[tokio::test]
async fn body_errors_are_problems() {
    let app = spawn_app_with(|s| s.http.max_body_bytes = 4096).await;
    let send = |body: Vec<u8>, ct: &'static str| {
        app.client
            .post(app.url("/v1/accounts"))
            .bearer_auth(&app.backend_key)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    assert_problem(
        send(b"{not json".to_vec(), "application/json")
            .await
            .unwrap(),
        400,
        "malformed_json",
    )
    .await;
    assert_problem(
        send(b"".to_vec(), "application/json").await.unwrap(),
        400,
        "malformed_json",
    )
    .await;
    assert_problem(
        send(b"\xff\xfe".to_vec(), "application/json")
            .await
            .unwrap(),
        400,
        "malformed_json",
    )
    .await;
    assert_problem(
        send(b"{\"external_id\":\"a\"}".to_vec(), "text/plain")
            .await
            .unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    let huge = format!("{{\"external_id\":\"{}\"}}", "x".repeat(10_000));
    assert_problem(
        send(huge.into_bytes(), "application/json").await.unwrap(),
        413,
        "payload_too_large",
    )
    .await;

    // Type errors don't echo the submitted value (it could be a secret).
    let body = assert_problem(
        app.post(
            "/v1/accounts",
            &app.backend_key,
            &json!({"external_id": {"secret": "s3cr3t-value"}}),
        )
        .await,
        400,
        "invalid_body",
    )
    .await;
    assert!(!body.to_string().contains("s3cr3t-value"), "{body}");
}

#[tokio::test]
async fn requests_carry_request_ids() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-abc-123");
    let res = app.client.get(app.url("/nope")).send().await.unwrap();
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "{generated}");
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "x".repeat(500))
        .send()
        .await
        .unwrap();
    assert_ne!(
        res.headers()["x-request-id"].to_str().unwrap(),
        "x".repeat(500)
    );
}

/// Every route in the spec, every method, with garbage: never a 5xx, always problem+json.
#[tokio::test]
async fn garbage_to_every_route_is_a_4xx_problem() {
    // With a webhook secret, so garbage reaches the signature check (without one the webhook
    // answers 503 `not_configured`, as the contract says).
    let app = spawn_app_with(|s| {
        s.stripe.webhook_secrets = vec![secrecy::SecretString::from("whsec_garbage_test")]
    })
    .await;
    let spec: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let garbage: [&[u8]; 5] = [
        b"",
        b"{",
        b"[1,2,3]",
        b"{\"a\":\"\\ud800\"}",
        b"\x00\x01\x02",
    ];
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{id}", "acc_0000000000000000000000000000dead")
            .replace("{vid}", "ver_0000000000000000000000000000dead")
            .replace("{eid}", "exc_0000000000000000000000000000dead");
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for key in [None, Some("vk_garbage"), Some(app.admin_key.as_str())] {
                for body in garbage {
                    let mut req = app.client.request(method.clone(), app.url(&concrete));
                    if let Some(key) = key {
                        req = req.bearer_auth(key);
                    }
                    let res = req
                        .header("content-type", "application/json")
                        .body(body.to_vec())
                        .send()
                        .await
                        .unwrap();
                    let status = res.status();
                    assert!(!status.is_server_error(), "{method} {concrete} -> {status}");
                    if status.is_client_error() {
                        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
                        assert!(
                            ct.starts_with("application/problem+json"),
                            "{method} {concrete} -> {ct}"
                        );
                        let problem: Value = res.json().await.unwrap();
                        assert!(
                            problem["code"].is_string(),
                            "{method} {concrete}: {problem}"
                        );
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} requests were made");
    // Still healthy, nothing stored by garbage.
    assert_eq!(
        app.get("/readyz", &app.admin_key).await.status(),
        StatusCode::OK
    );
}

/// serde reads a struct from an array of its fields; no schema allows that, so it is refused
/// (it was a 200 that changed nothing, or worse, a create from positional values).
#[tokio::test]
async fn bodies_must_be_json_objects() {
    let app = spawn_app().await;
    let account = app.account("objects-only").await;
    for body in [
        json!([null, null]),
        json!([]),
        json!(null),
        json!("x"),
        json!(1),
    ] {
        let res = app
            .request(
                Method::PATCH,
                &format!("/v1/accounts/{account}"),
                Some(&app.admin_key),
                Some(&body),
            )
            .await;
        assert_problem(res, 400, "invalid_body").await;
        let res = app
            .request(
                Method::POST,
                "/v1/accounts",
                Some(&app.backend_key),
                Some(&body),
            )
            .await;
        assert_problem(res, 400, "invalid_body").await;
    }
    let res = app
        .request(
            Method::POST,
            "/v1/accounts",
            Some(&app.backend_key),
            Some(&json!(["positional-id", null, null])),
        )
        .await;
    assert_problem(res, 400, "invalid_body").await;
}

#[tokio::test]
async fn enum_errors_do_not_echo_the_submitted_value() {
    let app = spawn_app().await;
    let id = app.account("enums").await;
    let secret = "s3cr3t-Zq81";
    for (res, code) in [
        (
            app.post(
                &format!("/v1/accounts/{id}/verifications"),
                &app.backend_key,
                &json!({"channel": secret, "to": "a@example.org"}),
            )
            .await,
            "invalid_body",
        ),
        (
            app.patch(
                &format!("/v1/accounts/{id}"),
                &app.admin_key,
                &json!({"status": secret}),
            )
            .await,
            "invalid_body",
        ),
        (
            app.post(
                "/v1/admin/clients",
                &app.admin_key,
                &json!({"name": "x", "role": format!("{secret}`, expected `admin")}),
            )
            .await,
            "invalid_body",
        ),
        (
            app.get(
                &format!("/v1/exceptions?status={secret}"),
                &app.reviewer_key,
            )
            .await,
            "invalid_query",
        ),
    ] {
        let body = assert_problem(res, 400, code).await;
        let text = body.to_string();
        assert!(!text.contains(secret), "{text}");
        assert!(text.contains("expected"), "says what is allowed: {text}");
    }
}
