//! Every protected route against every role: 401 without a valid key, 403 for the wrong role.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};
use vouch::domain::role::Role::{self, *};

use crate::helpers::{assert_problem, spawn_app};

const ACC: &str = "acc_0000000000000000000000000000dead";
const EXC: &str = "exc_0000000000000000000000000000dead";
const VER: &str = "ver_0000000000000000000000000000dead";

/// (method, spec path, concrete path, body, roles allowed besides admin)
fn matrix() -> Vec<(Method, &'static str, String, Value, Vec<Role>)> {
    vec![
        (
            Method::POST,
            "/v1/accounts",
            "/v1/accounts".into(),
            json!({"external_id": ""}),
            vec![Backend],
        ),
        (
            Method::GET,
            "/v1/accounts",
            "/v1/accounts".into(),
            Value::Null,
            vec![Backend, Reviewer],
        ),
        (
            Method::GET,
            "/v1/accounts/{id}",
            format!("/v1/accounts/{ACC}"),
            Value::Null,
            vec![Backend, Reviewer],
        ),
        (
            Method::PATCH,
            "/v1/accounts/{id}",
            format!("/v1/accounts/{ACC}"),
            json!({"display_name": "x"}),
            vec![Backend],
        ),
        (
            Method::DELETE,
            "/v1/accounts/{id}",
            format!("/v1/accounts/{ACC}"),
            Value::Null,
            vec![Backend],
        ),
        (
            Method::GET,
            "/v1/accounts/{id}/evidence",
            format!("/v1/accounts/{ACC}/evidence"),
            Value::Null,
            vec![Backend, Reviewer],
        ),
        (
            Method::GET,
            "/v1/accounts/{id}/entitlements",
            format!("/v1/accounts/{ACC}/entitlements"),
            Value::Null,
            vec![Backend, Reviewer],
        ),
        (
            Method::PUT,
            "/v1/accounts/{id}/billing",
            format!("/v1/accounts/{ACC}/billing"),
            json!({"customer_id": "cus_x"}),
            vec![Backend],
        ),
        (
            Method::GET,
            "/v1/accounts/{id}/billing",
            format!("/v1/accounts/{ACC}/billing"),
            Value::Null,
            vec![Backend, Reviewer],
        ),
        (
            Method::POST,
            "/v1/accounts/{id}/exceptions",
            format!("/v1/accounts/{ACC}/exceptions"),
            json!({"category": "nonprofit", "statement": "x"}),
            vec![Backend],
        ),
        (
            Method::GET,
            "/v1/exceptions",
            "/v1/exceptions".into(),
            Value::Null,
            vec![Reviewer],
        ),
        (
            Method::GET,
            "/v1/exceptions/{eid}",
            format!("/v1/exceptions/{EXC}"),
            Value::Null,
            vec![Backend, Reviewer],
        ),
        (
            Method::POST,
            "/v1/exceptions/{eid}/decision",
            format!("/v1/exceptions/{EXC}/decision"),
            json!({"decision": "approve", "reason": "x"}),
            vec![Reviewer],
        ),
        (
            Method::POST,
            "/v1/exceptions/{eid}/revoke",
            format!("/v1/exceptions/{EXC}/revoke"),
            json!({"reason": "x"}),
            vec![Reviewer],
        ),
        (
            Method::POST,
            "/v1/exceptions/{eid}/retention",
            format!("/v1/exceptions/{EXC}/retention"),
            json!({"keep": false}),
            vec![Reviewer],
        ),
        (
            Method::GET,
            "/v1/exceptions/{eid}/reveals",
            format!("/v1/exceptions/{EXC}/reveals"),
            Value::Null,
            vec![],
        ),
        (
            Method::POST,
            "/v1/accounts/{id}/verifications",
            format!("/v1/accounts/{ACC}/verifications"),
            json!({"channel": "email", "to": "x"}),
            vec![Backend],
        ),
        (
            Method::POST,
            "/v1/verifications/{vid}/check",
            format!("/v1/verifications/{VER}/check"),
            json!({"code": "x"}),
            vec![Backend],
        ),
        (
            Method::GET,
            "/v1/verifications/{vid}",
            format!("/v1/verifications/{VER}"),
            Value::Null,
            vec![Backend, Reviewer],
        ),
        (
            Method::POST,
            "/v1/accounts/{id}/tokens",
            format!("/v1/accounts/{ACC}/tokens"),
            json!({}),
            vec![Backend],
        ),
        (
            Method::POST,
            "/v1/e2ee/authorize",
            "/v1/e2ee/authorize".into(),
            json!({"token": "x"}),
            vec![Meeting],
        ),
        (
            Method::POST,
            "/v1/exchange/livekit",
            "/v1/exchange/livekit".into(),
            json!({"token": "x", "room": "standup"}),
            vec![Meeting],
        ),
        (
            Method::POST,
            "/v1/tokens/revoke",
            "/v1/tokens/revoke".into(),
            json!({"token": "x"}),
            vec![Backend],
        ),
        (
            Method::GET,
            "/v1/admin/keys",
            "/v1/admin/keys".into(),
            Value::Null,
            vec![],
        ),
        (
            Method::POST,
            "/v1/admin/keys/rotate",
            "/v1/admin/keys/rotate".into(),
            Value::Null,
            vec![],
        ),
        (
            Method::POST,
            "/v1/admin/clients",
            "/v1/admin/clients".into(),
            json!({"name": "", "role": "admin"}),
            vec![],
        ),
        (
            Method::GET,
            "/v1/admin/clients",
            "/v1/admin/clients".into(),
            Value::Null,
            vec![],
        ),
        (
            Method::DELETE,
            "/v1/admin/clients/{id}",
            "/v1/admin/clients/cli_x".into(),
            Value::Null,
            vec![],
        ),
        (
            Method::GET,
            "/v1/admin/audit",
            "/v1/admin/audit".into(),
            Value::Null,
            vec![],
        ),
        (
            Method::GET,
            "/v1/admin/audit/verify",
            "/v1/admin/audit/verify".into(),
            Value::Null,
            vec![],
        ),
        (
            Method::POST,
            "/v1/admin/webhooks",
            "/v1/admin/webhooks".into(),
            json!({"url": "x"}),
            vec![],
        ),
        (
            Method::GET,
            "/v1/admin/webhooks",
            "/v1/admin/webhooks".into(),
            Value::Null,
            vec![],
        ),
        (
            Method::GET,
            "/v1/admin/webhooks/{id}",
            "/v1/admin/webhooks/whk_x".into(),
            Value::Null,
            vec![],
        ),
        (
            Method::DELETE,
            "/v1/admin/webhooks/{id}",
            "/v1/admin/webhooks/whk_x".into(),
            Value::Null,
            vec![],
        ),
        (
            Method::POST,
            "/v1/admin/webhooks/{id}/secret",
            "/v1/admin/webhooks/whk_x/secret".into(),
            Value::Null,
            vec![],
        ),
        (
            Method::GET,
            "/v1/admin/webhooks/{id}/deliveries",
            "/v1/admin/webhooks/whk_x/deliveries".into(),
            Value::Null,
            vec![],
        ),
        (
            Method::POST,
            "/v1/admin/webhooks/{id}/test",
            "/v1/admin/webhooks/whk_x/test".into(),
            Value::Null,
            vec![],
        ),
        (
            Method::POST,
            "/v1/exchange/jitsi",
            "/v1/exchange/jitsi".into(),
            json!({"token": "x", "room": "r"}),
            vec![Meeting],
        ),
        (
            Method::GET,
            "/v1/status-lists/{id}",
            "/v1/status-lists/1".into(),
            Value::Null,
            vec![Meeting],
        ),
        (
            Method::GET,
            "/v1/me",
            "/v1/me".into(),
            Value::Null,
            vec![Backend, Reviewer, Meeting],
        ),
    ]
}

const PUBLIC: [&str; 6] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/.well-known/jwks.json",
    "/v1/webhooks/stripe",
    "/v1/jitsi/asap/{kid_hash}",
];

#[tokio::test]
async fn every_route_enforces_its_roles() {
    let app = spawn_app().await;
    for (method, _, path, body, allowed) in matrix() {
        let body = (!body.is_null()).then_some(&body);
        let res = app.request(method.clone(), &path, None, body).await;
        assert_problem(res, 401, "missing_credentials").await;
        let res = app
            .request(method.clone(), &path, Some("vk_not-a-real-key"), body)
            .await;
        assert_problem(res, 401, "invalid_credentials").await;
        for role in [Admin, Backend, Reviewer, Meeting] {
            let res = app
                .request(method.clone(), &path, Some(app.key(role)), body)
                .await;
            if role == Admin || allowed.contains(&role) {
                let status = res.status().as_u16();
                assert!(
                    status != 401 && status != 403,
                    "{method} {path} as {role:?} -> {status}"
                );
            } else {
                assert_problem(res, 403, "forbidden").await;
            }
        }
    }
}

#[tokio::test]
async fn the_matrix_covers_every_protected_route_in_the_spec() {
    let app = spawn_app().await;
    let spec: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut in_spec = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            assert_eq!(
                secured,
                !PUBLIC.contains(&path.as_str()),
                "{method} {path} security"
            );
            if secured {
                in_spec.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let covered: BTreeSet<_> = matrix()
        .into_iter()
        .map(|(m, p, ..)| (m.to_string(), p.to_owned()))
        .collect();
    assert_eq!(in_spec, covered);
}

#[tokio::test]
async fn bearer_scheme_is_required_and_revoked_keys_stop_working() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/v1/accounts"))
        .header("authorization", format!("Basic {}", app.backend_key))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert_problem(res, 401, "missing_credentials").await;

    let created: Value = app
        .post(
            "/v1/admin/clients",
            &app.admin_key,
            &json!({"name": "short-lived", "role": "backend"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap();
    assert_eq!(app.get("/v1/accounts", key).await.status(), 200);
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/v1/admin/clients/{id}"), &app.admin_key)
            .await
            .status(),
        204
    );
    assert_problem(
        app.get("/v1/accounts", key).await,
        401,
        "invalid_credentials",
    )
    .await;
}
