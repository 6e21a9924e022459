//! The Jitsi Meet exchange, checked the way Prosody checks it: take the token's `kid`, fetch
//! `/v1/jitsi/asap/<sha256 hex of kid>.pem`, verify RS256 with that key, read the claims.

use chrono::Duration;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::{json, Value};
use vouch::domain::evidence::{EvidenceKind::*, EvidenceStatus::*};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, token_part, TestApp};

const APP_ID: &str = "vouch-test";
const DOMAIN: &str = "meet.example.org";
const JKT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

async fn jitsi_app() -> TestApp {
    spawn_app_with(|s| {
        s.jitsi.app_id = Some(APP_ID.into());
        s.jitsi.domain = Some(DOMAIN.into());
    })
    .await
}

async fn exchange(app: &TestApp, body: &Value) -> reqwest::Response {
    app.post("/v1/exchange/jitsi", &app.meeting_key, body).await
}

/// Exchange and expect a token; returns the response JSON.
async fn jitsi_token(app: &TestApp, vouch_token: &str, room: &str) -> Value {
    let res = exchange(app, &json!({"token": vouch_token, "room": room})).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// What Prosody's `asap_key_server` support does: the PEM at `<sha256 hex of kid>.pem`.
async fn fetch_pem(app: &TestApp, kid: &str) -> reqwest::Response {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, kid.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    // Public: no API key.
    app.client
        .get(app.url(&format!("/v1/jitsi/asap/{hex}.pem")))
        .send()
        .await
        .unwrap()
}

/// Verify a Jitsi token as Prosody would; returns its claims.
async fn verify_like_prosody(app: &TestApp, token: &str) -> Value {
    let header = decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.expect("a kid");
    let res = fetch_pem(app, &kid).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-pem-file");
    let pem = res.text().await.unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    let key = DecodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["jitsi"]);
    validation.set_issuer(&[APP_ID]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    decode::<Value>(token, &key, &validation)
        .expect("verifies with the served key")
        .claims
}

#[tokio::test]
async fn a_jitsi_token_verifies_as_prosody_verifies_it() {
    let app = jitsi_app().await;
    let id = app.entitled_account("jitsi-ok").await;
    let vouch = app
        .issue(&id, json!({"device_jkt": JKT, "ttl_seconds": 3600}))
        .await;
    let vouch_token = vouch["token"].as_str().unwrap();
    let res = exchange(
        &app,
        &json!({"token": vouch_token, "room": "standup", "device_jkt": JKT, "name": "Ada"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    let header = token_part(token, 0);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");

    let claims = verify_like_prosody(&app, token).await;
    assert_eq!(claims["iss"], APP_ID);
    assert_eq!(claims["aud"], "jitsi");
    assert_eq!(claims["sub"], DOMAIN);
    assert_eq!(claims["room"], "standup");
    assert_eq!(
        claims["context"],
        json!({"user": {"id": id, "name": "Ada"}, "features": {"e2ee": true}})
    );
    // nbf now; exp bounded by jitsi.token_ttl_seconds (600) below the Vouch token's hour.
    let now = app.now().timestamp();
    let nbf = claims["nbf"].as_i64().unwrap();
    let exp = claims["exp"].as_i64().unwrap();
    assert!((now - nbf).abs() <= 2, "nbf {nbf}, now {now}");
    assert_eq!(exp - nbf, 600);
    let expires_at = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert_eq!(expires_at, exp);
    // Nothing beyond the contract's claims: no email, phone or evidence.
    let mut members: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    members.sort();
    assert_eq!(
        members,
        ["aud", "context", "exp", "iss", "nbf", "room", "sub"]
    );

    // Without a name, none is claimed; a short Vouch token bounds the Jitsi token.
    let short = app.issue(&id, json!({"ttl_seconds": 120})).await;
    let body = jitsi_token(&app, short["token"].as_str().unwrap(), "standup").await;
    let claims = verify_like_prosody(&app, body["token"].as_str().unwrap()).await;
    assert_eq!(claims["context"]["user"], json!({"id": id}));
    assert_eq!(
        claims["exp"].as_i64().unwrap(),
        token_part(short["token"].as_str().unwrap(), 1)["exp"]
            .as_i64()
            .unwrap()
    );

    // The Vouch tokens themselves keep their own algorithm and keys.
    assert_eq!(token_part(vouch_token, 0)["alg"], "EdDSA");
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jitsi_kid = token_part(token, 0)["kid"].clone();
    assert!(jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["kid"] != jitsi_kid));
}

#[tokio::test]
async fn the_jitsi_ttl_setting_bounds_the_token() {
    let app = spawn_app_with(|s| {
        s.jitsi.app_id = Some(APP_ID.into());
        s.jitsi.domain = Some(DOMAIN.into());
        s.jitsi.token_ttl_seconds = 60;
    })
    .await;
    let id = app.entitled_account("jitsi-ttl").await;
    let token = app.issue_token(&id).await;
    let body = jitsi_token(&app, &token, "room-1").await;
    let claims = verify_like_prosody(&app, body["token"].as_str().unwrap()).await;
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap(),
        60
    );
}

#[tokio::test]
async fn refusals_carry_the_authorize_reason_and_what_to_do() {
    let app = jitsi_app().await;
    let id = app.entitled_account("jitsi-refused").await;
    let token = app.issue_token(&id).await;

    // Only meeting servers exchange.
    assert_problem(
        app.post(
            "/v1/exchange/jitsi",
            &app.backend_key,
            &json!({"token": token, "room": "r"}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    // One room, named.
    for room in ["", "*", "a\u{0}b"] {
        assert_problem(
            exchange(&app, &json!({"token": token, "room": room})).await,
            400,
            "invalid_room",
        )
        .await;
    }
    // A device key thumbprint that cannot be one is refused as issuance refuses it.
    assert_problem(
        exchange(
            &app,
            &json!({"token": token, "room": "r", "device_jkt": "short"}),
        )
        .await,
        400,
        "invalid_device_jkt",
    )
    .await;
    // Not ours.
    let body = assert_problem(
        exchange(&app, &json!({"token": "not.a.token", "room": "r"})).await,
        403,
        "invalid_token",
    )
    .await;
    assert_eq!(body["required_actions"], json!([]));
    // Bound to a device the asker does not hold.
    let bound = app.issue(&id, json!({"device_jkt": JKT})).await;
    assert_problem(
        exchange(&app, &json!({"token": bound["token"], "room": "r"})).await,
        403,
        "device_mismatch",
    )
    .await;

    // The evidence lapses: not entitled, and the person is told what would help.
    app.add_evidence(&id, Phone, Lapsed, None).await;
    let body = assert_problem(
        exchange(&app, &json!({"token": token, "room": "r"})).await,
        403,
        "not_entitled",
    )
    .await;
    assert_eq!(
        body["required_actions"],
        json!(["verify_phone", "subscribe", "request_exception"])
    );

    // Suspended: nothing the person can do.
    app.add_evidence(&id, Payment, Active, None).await;
    app.patch(
        &format!("/v1/accounts/{id}"),
        &app.admin_key,
        &json!({"status": "suspended"}),
    )
    .await;
    let body = assert_problem(
        exchange(&app, &json!({"token": token, "room": "r"})).await,
        403,
        "account_suspended",
    )
    .await;
    assert_eq!(body["required_actions"], json!([]));
    app.patch(
        &format!("/v1/accounts/{id}"),
        &app.admin_key,
        &json!({"status": "active"}),
    )
    .await;
    jitsi_token(&app, &token, "r").await;

    // Revoked.
    let res = app
        .post(
            "/v1/tokens/revoke",
            &app.backend_key,
            &json!({"token": token}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_problem(
        exchange(&app, &json!({"token": token, "room": "r"})).await,
        403,
        "revoked",
    )
    .await;

    // Expired.
    let fresh = app.issue(&id, json!({"ttl_seconds": 60})).await;
    app.clock.advance(Duration::seconds(120));
    assert_problem(
        exchange(&app, &json!({"token": fresh["token"], "room": "r"})).await,
        403,
        "expired",
    )
    .await;

    // Unknown keys and names that are not a key's.
    let res = fetch_pem(&app, "no-such-kid").await;
    assert_problem(res, 404, "jitsi_key_not_found").await;
    let res = app
        .client
        .get(app.url("/v1/jitsi/asap/zzz.pem"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "jitsi_key_not_found").await;
}

#[tokio::test]
async fn without_app_id_and_domain_the_exchange_is_not_configured() {
    let app = spawn_app().await;
    let id = app.entitled_account("jitsi-off").await;
    let token = app.issue_token(&id).await;
    assert_problem(
        exchange(&app, &json!({"token": token, "room": "r"})).await,
        503,
        "not_configured",
    )
    .await;
    let app = spawn_app_with(|s| s.jitsi.app_id = Some(APP_ID.into())).await;
    assert_problem(
        exchange(&app, &json!({"token": token, "room": "r"})).await,
        503,
        "not_configured",
    )
    .await;
}

#[tokio::test]
async fn rotation_keeps_old_jitsi_keys_served_until_their_tokens_expire() {
    let app = jitsi_app().await;
    let id = app.entitled_account("jitsi-rotate").await;
    let vouch = app.issue_token(&id).await;
    let old = jitsi_token(&app, &vouch, "r").await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_kid = token_part(&old, 0)["kid"].as_str().unwrap().to_owned();

    // Rotating the token keys rotates the Jitsi key with them: the new key is served at once
    // and signs when the new token key does.
    let res = app
        .post("/v1/admin/keys/rotate", &app.admin_key, &json!({}))
        .await;
    assert_eq!(res.status(), 201);
    let during = jitsi_token(&app, &vouch, "r").await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(token_part(&during, 0)["kid"], old_kid.as_str());

    app.clock.advance(Duration::seconds(301));
    let vouch = app.issue_token(&id).await;
    let new = jitsi_token(&app, &vouch, "r").await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let new_kid = token_part(&new, 0)["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    // Both keys served: tokens signed before the rotation still verify.
    verify_like_prosody(&app, &new).await;
    verify_like_prosody(&app, &old).await;

    // Another instance serves them too, and the audit log names the rotation.
    let sibling = app.spawn_sibling().await;
    assert_eq!(fetch_pem(&sibling, &new_kid).await.status(), 200);
    assert_eq!(fetch_pem(&sibling, &old_kid).await.status(), 200);

    // Once every token the old key could have signed has expired, it is no longer served.
    app.clock.advance(Duration::seconds(3600 + 31));
    app.maintain().await;
    assert_eq!(fetch_pem(&app, &old_kid).await.status(), 404);
    assert_eq!(fetch_pem(&app, &new_kid).await.status(), 200);
    use sea_orm::EntityTrait;
    let row = entities::jitsi_key::Entity::find_by_id(old_kid)
        .one(&app.db().await)
        .await
        .unwrap()
        .unwrap();
    assert!(
        row.private_key_sealed.is_empty(),
        "the private half is erased"
    );
}

#[tokio::test]
async fn jitsi_keys_are_sealed_under_the_master_key() {
    let app = jitsi_app().await;
    use sea_orm::EntityTrait;
    let rows = entities::jitsi_key::Entity::find()
        .all(&app.db().await)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.alg, "RS256");
    // Not PKCS#8 DER in base64 (which would start with "MII"): sealed, opened with the kid.
    assert!(!row.private_key_sealed.starts_with("MII"));
    let pkcs8 = app
        .master_key()
        .open(&row.kid, &row.private_key_sealed)
        .unwrap();
    let (_, jwk) = vouch::tokens::keys::parse(vouch::config::Algorithm::RS256, &pkcs8).unwrap();
    assert_eq!(jwk.kid, row.kid);
    // RSA 2048.
    use base64::Engine as _;
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwk.n.unwrap())
        .unwrap();
    assert_eq!(n.len(), 256);
    // A restart (another instance) finds it and makes no second one.
    let _sibling = app.spawn_sibling().await;
    let rows = entities::jitsi_key::Entity::find()
        .all(&app.db().await)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
}
