//! Every protected route against every role: 401 without a valid key, 403 for the wrong role.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};
use vouch::domain::role::Role::{self, *};

use crate::helpers::{assert_problem, spawn_app, TestApp};

const ACC: &str = "acc_0000000000000000000000000000dead";
const EXC: &str = "exc_0000000000000000000000000000dead";
const VER: &str = "ver_0000000000000000000000000000dead";

/// (method, spec path, concrete path, body). Who may call each comes from the spec's
/// `x-vouch-roles`, so the spec is what these tests prove against behaviour.
fn matrix() -> Vec<(Method, &'static str, String, Value)> {
    vec![
        (
            Method::POST,
            "/v1/accounts",
            "/v1/accounts".into(),
            json!({"external_id": ""}),
        ),
        (
            Method::GET,
            "/v1/accounts",
            "/v1/accounts".into(),
            Value::Null,
        ),
        (
            Method::GET,
            "/v1/accounts/{id}",
            format!("/v1/accounts/{ACC}"),
            Value::Null,
        ),
        (
            Method::PATCH,
            "/v1/accounts/{id}",
            format!("/v1/accounts/{ACC}"),
            // Nothing to change: each role's own field rules are in tests/api/moderators.rs.
            json!({}),
        ),
        (
            Method::DELETE,
            "/v1/accounts/{id}",
            format!("/v1/accounts/{ACC}"),
            Value::Null,
        ),
        (
            Method::GET,
            "/v1/accounts/{id}/evidence",
            format!("/v1/accounts/{ACC}/evidence"),
            Value::Null,
        ),
        (
            Method::GET,
            "/v1/accounts/{id}/entitlements",
            format!("/v1/accounts/{ACC}/entitlements"),
            Value::Null,
        ),
        (
            Method::PUT,
            "/v1/accounts/{id}/billing",
            format!("/v1/accounts/{ACC}/billing"),
            json!({"customer_id": "cus_x"}),
        ),
        (
            Method::GET,
            "/v1/accounts/{id}/billing",
            format!("/v1/accounts/{ACC}/billing"),
            Value::Null,
        ),
        (
            Method::POST,
            "/v1/accounts/{id}/exceptions",
            format!("/v1/accounts/{ACC}/exceptions"),
            json!({"category": "nonprofit", "statement": "x"}),
        ),
        (
            Method::GET,
            "/v1/exceptions",
            "/v1/exceptions".into(),
            Value::Null,
        ),
        (
            Method::GET,
            "/v1/exceptions/{eid}",
            format!("/v1/exceptions/{EXC}"),
            Value::Null,
        ),
        (
            Method::POST,
            "/v1/exceptions/{eid}/decision",
            format!("/v1/exceptions/{EXC}/decision"),
            json!({"decision": "approve", "reason": "x"}),
        ),
        (
            Method::POST,
            "/v1/exceptions/{eid}/revoke",
            format!("/v1/exceptions/{EXC}/revoke"),
            json!({"reason": "x"}),
        ),
        (
            Method::POST,
            "/v1/exceptions/{eid}/retention",
            format!("/v1/exceptions/{EXC}/retention"),
            json!({"keep": false}),
        ),
        (
            Method::GET,
            "/v1/exceptions/{eid}/reveals",
            format!("/v1/exceptions/{EXC}/reveals"),
            Value::Null,
        ),
        (
            Method::POST,
            "/v1/accounts/{id}/verifications",
            format!("/v1/accounts/{ACC}/verifications"),
            json!({"channel": "email", "to": "x"}),
        ),
        (
            Method::POST,
            "/v1/verifications/{vid}/check",
            format!("/v1/verifications/{VER}/check"),
            json!({"code": "x"}),
        ),
        (
            Method::GET,
            "/v1/verifications/{vid}",
            format!("/v1/verifications/{VER}"),
            Value::Null,
        ),
        (
            Method::POST,
            "/v1/accounts/{id}/tokens",
            format!("/v1/accounts/{ACC}/tokens"),
            json!({}),
        ),
        (
            Method::POST,
            "/v1/e2ee/authorize",
            "/v1/e2ee/authorize".into(),
            json!({"token": "x"}),
        ),
        (
            Method::POST,
            "/v1/e2ee/nonce",
            "/v1/e2ee/nonce".into(),
            json!({}),
        ),
        (
            Method::POST,
            "/v1/exchange/livekit",
            "/v1/exchange/livekit".into(),
            json!({"token": "x", "room": "standup"}),
        ),
        (
            Method::POST,
            "/v1/tokens/revoke",
            "/v1/tokens/revoke".into(),
            json!({"token": "x"}),
        ),
        (
            Method::POST,
            "/v1/accounts/{id}/tokens/revoke",
            format!("/v1/accounts/{ACC}/tokens/revoke"),
            json!({}),
        ),
        (
            Method::GET,
            "/v1/admin/keys",
            "/v1/admin/keys".into(),
            Value::Null,
        ),
        (
            Method::POST,
            "/v1/admin/keys/rotate",
            "/v1/admin/keys/rotate".into(),
            Value::Null,
        ),
        (
            Method::POST,
            "/v1/admin/clients",
            "/v1/admin/clients".into(),
            json!({"name": "", "role": "admin"}),
        ),
        (
            Method::GET,
            "/v1/admin/clients",
            "/v1/admin/clients".into(),
            Value::Null,
        ),
        (
            Method::DELETE,
            "/v1/admin/clients/{id}",
            "/v1/admin/clients/cli_x".into(),
            Value::Null,
        ),
        (
            Method::GET,
            "/v1/admin/audit",
            "/v1/admin/audit".into(),
            Value::Null,
        ),
        (
            Method::GET,
            "/v1/admin/audit/verify",
            "/v1/admin/audit/verify".into(),
            Value::Null,
        ),
        (
            Method::POST,
            "/v1/admin/webhooks",
            "/v1/admin/webhooks".into(),
            json!({"url": "x"}),
        ),
        (
            Method::GET,
            "/v1/admin/webhooks",
            "/v1/admin/webhooks".into(),
            Value::Null,
        ),
        (
            Method::GET,
            "/v1/admin/webhooks/{id}",
            "/v1/admin/webhooks/whk_x".into(),
            Value::Null,
        ),
        (
            Method::DELETE,
            "/v1/admin/webhooks/{id}",
            "/v1/admin/webhooks/whk_x".into(),
            Value::Null,
        ),
        (
            Method::POST,
            "/v1/admin/webhooks/{id}/secret",
            "/v1/admin/webhooks/whk_x/secret".into(),
            Value::Null,
        ),
        (
            Method::GET,
            "/v1/admin/webhooks/{id}/deliveries",
            "/v1/admin/webhooks/whk_x/deliveries".into(),
            Value::Null,
        ),
        (
            Method::POST,
            "/v1/admin/webhooks/{id}/test",
            "/v1/admin/webhooks/whk_x/test".into(),
            Value::Null,
        ),
        (
            Method::POST,
            "/v1/exchange/jitsi",
            "/v1/exchange/jitsi".into(),
            json!({"token": "x", "room": "r"}),
        ),
        (
            Method::GET,
            "/v1/status-lists/{id}",
            "/v1/status-lists/1".into(),
            Value::Null,
        ),
        (Method::GET, "/v1/me", "/v1/me".into(), Value::Null),
        (
            Method::GET,
            "/v1/overview",
            "/v1/overview".into(),
            Value::Null,
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

async fn served_spec(app: &TestApp) -> Value {
    app.client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The roles the spec says may call an operation (its `x-vouch-roles`).
fn roles_in_spec(spec: &Value, method: &Method, path: &str) -> Vec<Role> {
    let op = &spec["paths"][path][method.as_str().to_lowercase()];
    let roles = op["x-vouch-roles"]
        .as_array()
        .unwrap_or_else(|| panic!("{method} {path}: no x-vouch-roles in the spec"));
    roles
        .iter()
        .map(|r| serde_json::from_value(r.clone()).unwrap())
        .collect()
}

#[tokio::test]
async fn every_route_enforces_the_roles_its_spec_names() {
    let app = spawn_app().await;
    let spec = served_spec(&app).await;
    for (method, spec_path, path, body) in matrix() {
        let allowed = roles_in_spec(&spec, &method, spec_path);
        assert!(
            allowed.contains(&Admin),
            "{method} {spec_path}: admins may do everything, so the spec must say so"
        );
        let body = (!body.is_null()).then_some(&body);
        let res = app.request(method.clone(), &path, None, body).await;
        assert_problem(res, 401, "missing_credentials").await;
        let res = app
            .request(method.clone(), &path, Some("vk_not-a-real-key"), body)
            .await;
        assert_problem(res, 401, "invalid_credentials").await;
        for role in Role::ALL {
            let res = app
                .request(method.clone(), &path, Some(app.key(role)), body)
                .await;
            if allowed.contains(&role) {
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
    let spec = served_spec(&app).await;
    let mut in_spec = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            assert_eq!(
                secured,
                !PUBLIC.contains(&path.as_str()),
                "{method} {path} security"
            );
            // Public operations declare that no role is needed: `x-vouch-roles: []`.
            let roles = op["x-vouch-roles"].as_array();
            assert_eq!(
                roles.map(|r| !r.is_empty()),
                Some(secured),
                "{method} {path} x-vouch-roles {roles:?}"
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
