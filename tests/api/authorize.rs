//! The meeting-server check: every denial reason, and the attacks RFC 8725 warns about.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
use chrono::Duration;
use serde_json::{json, Value};
use vouch::domain::evidence::{EvidenceKind::*, EvidenceStatus::*};

use crate::helpers::{spawn_app, spawn_app_with, token_part, TestApp};

const JKT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
const OTHER_JKT: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn assert_decision(body: &Value, allow: bool, reason: &str) {
    assert_eq!(body["allow"], allow, "{body}");
    assert_eq!(body["reason"], reason, "{body}");
}

/// Claims as we issue them, for forging variations with our own key.
fn claims(app: &TestApp, account_id: &str) -> Value {
    let now = app.now().timestamp();
    json!({
        "iss": "http://localhost:8080", "sub": account_id, "aud": "meeting",
        "iat": now, "nbf": now, "exp": now + 600, "jti": "forged-1",
        "ent": ["e2ee"], "evidence": ["phone"]
    })
}

async fn header(app: &TestApp) -> Value {
    let kid = app.signing_key().await.kid;
    json!({"alg": "EdDSA", "typ": "e2ee-ent+jwt", "kid": kid})
}

#[tokio::test]
async fn a_valid_token_allows_e2ee() {
    let app = spawn_app().await;
    let id = app.entitled_account("ok").await;
    let issued = app.issue(&id, json!({})).await;
    let body = app.authorize(issued["token"].as_str().unwrap(), None).await;
    assert_decision(&body, true, "ok");
    assert_eq!(body["account_id"], id.as_str());
    assert_eq!(body["entitlements"], json!(["e2ee"]));
    assert_eq!(body["expires_at"], issued["expires_at"]);

    // The forging helper itself makes tokens that pass: the variations below fail for their
    // variation alone.
    let forged = app.forge(&header(&app).await, &claims(&app, &id)).await;
    assert_decision(&app.authorize(&forged, None).await, true, "ok");
    assert_decision(
        &app.authorize("nonsense", None).await,
        false,
        "invalid_token",
    );

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"vouch_authorize_decisions_total{reason="ok"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"vouch_authorize_decisions_total{reason="invalid_token"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("vouch_tokens_issued_total 1"), "{metrics}");
}

#[tokio::test]
async fn tokens_that_are_not_ours_are_invalid() {
    let app = spawn_app().await;
    let id = app.entitled_account("attacks").await;
    let good = app.issue_token(&id).await;
    let parts: Vec<&str> = good.split('.').collect();
    let kid = token_part(&good, 0)["kid"].as_str().unwrap().to_owned();

    // alg "none", no signature.
    let none_header =
        B64.encode(json!({"alg": "none", "typ": "e2ee-ent+jwt", "kid": kid}).to_string());
    let alg_none = format!("{none_header}.{}.", parts[1]);

    // HS256 keyed with our public key (the classic algorithm-confusion attack).
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public_x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let hs_header =
        B64.encode(json!({"alg": "HS256", "typ": "e2ee-ent+jwt", "kid": kid}).to_string());
    let mut hs_tokens = Vec::new();
    for secret in [
        B64.decode(&public_x).unwrap(),
        public_x.clone().into_bytes(),
        jwks["keys"][0].to_string().into_bytes(),
    ] {
        let input = format!("{hs_header}.{}", parts[1]);
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
        let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
        hs_tokens.push(format!("{input}.{}", B64.encode(tag.as_ref())));
    }

    // Payload swapped for another account's, signature kept.
    let mut other_claims = token_part(&good, 1);
    other_claims["sub"] = json!("acc_0000000000000000000000000000beef");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(other_claims.to_string()),
        parts[2]
    );

    // Signed by a key that is not in our JWKS.
    let stranger = vouch::tokens::keys::generate(vouch::config::Algorithm::EdDSA).unwrap();
    let (stranger_signer, stranger_jwk) =
        vouch::tokens::keys::parse(vouch::config::Algorithm::EdDSA, &stranger.pkcs8).unwrap();
    let sign_with_stranger = |header: Value| {
        let input = format!("{}.{}", B64.encode(header.to_string()), parts[1]);
        format!(
            "{input}.{}",
            B64.encode(stranger_signer.sign(input.as_bytes()).unwrap())
        )
    };
    let unknown_kid =
        sign_with_stranger(json!({"alg": "EdDSA", "typ": "e2ee-ent+jwt", "kid": stranger_jwk.kid}));
    let our_kid_their_key =
        sign_with_stranger(json!({"alg": "EdDSA", "typ": "e2ee-ent+jwt", "kid": kid}));
    // A key embedded in the header, or fetched from a URL: never trusted.
    let embedded_jwk = sign_with_stranger(
        json!({"alg": "EdDSA", "typ": "e2ee-ent+jwt", "kid": kid, "jwk": stranger_jwk}),
    );
    let jku = sign_with_stranger(
        json!({"alg": "EdDSA", "typ": "e2ee-ent+jwt", "kid": kid, "jku": "https://evil.example/jwks"}),
    );

    let mut bad = vec![
        "".to_owned(),
        "garbage".to_owned(),
        "a.b.c".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        alg_none,
        tampered,
        unknown_kid,
        our_kid_their_key,
        embedded_jwk,
        jku,
        "x".repeat(10_000),
    ];
    bad.extend(hs_tokens);
    for token in bad {
        let body = app.authorize(&token, None).await;
        assert_decision(&body, false, "invalid_token");
        assert!(body.get("account_id").is_none(), "{body}");
    }
    // The good one still passes.
    assert_decision(&app.authorize(&good, None).await, true, "ok");
}

#[tokio::test]
async fn headers_and_claims_are_checked_even_when_the_signature_is_ours() {
    let app = spawn_app().await;
    let id = app.entitled_account("claims").await;
    let h = header(&app).await;
    let c = claims(&app, &id);
    let now = app.now().timestamp();

    let with = |mut v: Value, key: &str, value: Value| {
        if value.is_null() {
            v.as_object_mut().unwrap().remove(key);
        } else {
            v[key] = value;
        }
        v
    };
    let cases: Vec<(Value, Value, &str)> = vec![
        (
            with(h.clone(), "typ", json!("JWT")),
            c.clone(),
            "invalid_token",
        ),
        (
            with(h.clone(), "typ", Value::Null),
            c.clone(),
            "invalid_token",
        ),
        (
            with(h.clone(), "alg", json!("ES256")),
            c.clone(),
            "invalid_token",
        ),
        (
            with(h.clone(), "kid", Value::Null),
            c.clone(),
            "invalid_token",
        ),
        (
            with(h.clone(), "crit", json!(["exp"])),
            c.clone(),
            "invalid_token",
        ),
        (
            h.clone(),
            with(c.clone(), "iss", json!("https://evil.example")),
            "invalid_token",
        ),
        (
            h.clone(),
            with(c.clone(), "iss", Value::Null),
            "invalid_token",
        ),
        (
            h.clone(),
            with(c.clone(), "aud", json!("other-service")),
            "wrong_audience",
        ),
        (
            h.clone(),
            with(c.clone(), "aud", Value::Null),
            "invalid_token",
        ),
        (
            h.clone(),
            with(c.clone(), "exp", json!(now - 31)),
            "expired",
        ),
        (
            h.clone(),
            with(c.clone(), "exp", Value::Null),
            "invalid_token",
        ),
        (
            h.clone(),
            with(c.clone(), "nbf", json!(now + 60)),
            "invalid_token",
        ),
        (
            h.clone(),
            with(c.clone(), "iat", json!(now + 3600)),
            "invalid_token",
        ),
        (
            h.clone(),
            with(c.clone(), "sub", Value::Null),
            "invalid_token",
        ),
        (h.clone(), with(c.clone(), "ent", json!([])), "not_entitled"),
        (
            h.clone(),
            with(
                c.clone(),
                "sub",
                json!("acc_0000000000000000000000000000beef"),
            ),
            "not_entitled",
        ),
    ];
    for (i, (header, claims, reason)) in cases.into_iter().enumerate() {
        let token = app.forge(&header, &claims).await;
        let body = app.authorize(&token, None).await;
        assert_eq!(body["reason"], reason, "case {i}: {body}");
        assert_eq!(body["allow"], false, "case {i}");
    }

    // Within the 30 s leeway, a just-expired or not-quite-valid token still passes.
    for (key, value) in [("exp", now - 20), ("nbf", now + 20)] {
        let token = app.forge(&h, &with(c.clone(), key, json!(value))).await;
        assert_decision(&app.authorize(&token, None).await, true, "ok");
    }
}

#[tokio::test]
async fn expiry_is_enforced_by_the_clock() {
    let app = spawn_app().await;
    let id = app.entitled_account("expiring").await;
    let token = app.issue(&id, json!({"ttl_seconds": 60})).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.clock.advance(Duration::seconds(60 + 25));
    assert_decision(&app.authorize(&token, None).await, true, "ok");
    app.clock.advance(Duration::seconds(10));
    assert_decision(&app.authorize(&token, None).await, false, "expired");
}

#[tokio::test]
async fn device_binding_is_checked() {
    let app = spawn_app().await;
    let id = app.entitled_account("device").await;
    let bound = app.issue(&id, json!({"device_jkt": JKT})).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_decision(&app.authorize(&bound, Some(JKT)).await, true, "ok");
    assert_decision(&app.authorize(&bound, None).await, false, "device_mismatch");
    assert_decision(
        &app.authorize(&bound, Some(OTHER_JKT)).await,
        false,
        "device_mismatch",
    );

    // A token bound to no device does not care which device asks.
    let unbound = app.issue_token(&id).await;
    assert_decision(&app.authorize(&unbound, Some(OTHER_JKT)).await, true, "ok");
}

#[tokio::test]
async fn the_accounts_current_state_decides() {
    let app = spawn_app().await;
    let id = app.entitled_account("state").await;
    let token = app.issue_token(&id).await;

    app.patch(
        &format!("/v1/accounts/{id}"),
        &app.admin_key,
        &json!({"status": "suspended"}),
    )
    .await;
    assert_decision(
        &app.authorize(&token, None).await,
        false,
        "account_suspended",
    );
    app.patch(
        &format!("/v1/accounts/{id}"),
        &app.admin_key,
        &json!({"status": "active"}),
    )
    .await;
    assert_decision(&app.authorize(&token, None).await, true, "ok");

    // The phone evidence that justified the token lapses.
    app.add_evidence(&id, Phone, Lapsed, None).await;
    assert_decision(&app.authorize(&token, None).await, false, "not_entitled");

    // Payment arrives: the same token is good again (it is the current basis that counts).
    app.add_evidence(&id, Payment, Active, None).await;
    assert_decision(&app.authorize(&token, None).await, true, "ok");

    // Evidence that expires by time lapses without anyone writing.
    app.add_evidence(
        &id,
        Payment,
        Active,
        Some(app.now() + Duration::seconds(30)),
    )
    .await;
    assert_decision(&app.authorize(&token, None).await, true, "ok");
    app.clock.advance(Duration::seconds(31));
    assert_decision(&app.authorize(&token, None).await, false, "not_entitled");

    // An erased account has no entitlement left.
    app.add_evidence(&id, Phone, Active, None).await;
    assert_decision(&app.authorize(&token, None).await, true, "ok");
    app.delete(&format!("/v1/accounts/{id}"), &app.backend_key)
        .await;
    assert_decision(&app.authorize(&token, None).await, false, "not_entitled");
}

#[tokio::test]
async fn revocation_follows_rfc7009() {
    let app = spawn_app().await;
    let id = app.entitled_account("revoke").await;
    let token = app.issue_token(&id).await;
    let other = app.issue_token(&id).await;

    for body in [
        json!({"token": token}),
        json!({"token": token, "token_type_hint": "access_token"}),
    ] {
        let res = app.post("/v1/tokens/revoke", &app.backend_key, &body).await;
        assert_eq!(res.status(), 200);
    }
    assert_decision(&app.authorize(&token, None).await, false, "revoked");
    assert_decision(&app.authorize(&other, None).await, true, "ok");

    // Unknown, malformed and foreign tokens: 200 all the same. (An empty one is no token at
    // all: `invalid_request`, tests/api/revocation.rs.)
    for junk in ["not-a-token", "a.b.c"] {
        let res = app
            .post("/v1/tokens/revoke", &app.admin_key, &json!({"token": junk}))
            .await;
        assert_eq!(res.status(), 200);
    }
    // Remembered until the token would have expired, then forgotten.
    use sea_orm::EntityTrait;
    let rows = entities::revoked_token::Entity::find()
        .all(&app.db().await)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let exp = token_part(&token, 1)["exp"].as_i64().unwrap();
    assert_eq!(rows[0].expires_at.timestamp(), exp + 30);
    let audit: Value = app
        .get("/v1/admin/audit?action=token.revoked", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"][0]["actor"], "test-backend");

    app.clock.advance(Duration::seconds(700));
    app.maintain().await;
    let rows = entities::revoked_token::Entity::find()
        .all(&app.db().await)
        .await
        .unwrap();
    assert!(rows.is_empty(), "expired revocations are purged");
}

/// A token that is not valid yet on the revoking instance's clock (`iat`/`nbf` beyond the
/// leeway, as a clock running behind sees a fresh token) is still recorded, and is refused as
/// revoked once its time comes.
#[tokio::test]
async fn revocation_ignores_the_clock() {
    let app = spawn_app().await;
    let id = app.entitled_account("revoke-skew").await;
    let later = app.now().timestamp() + 3600;
    let mut c = claims(&app, &id);
    c["iat"] = json!(later);
    c["nbf"] = json!(later);
    c["exp"] = json!(later + 600);
    c["jti"] = json!("from-the-future");
    let token = app.forge(&header(&app).await, &c).await;
    assert_decision(&app.authorize(&token, None).await, false, "invalid_token");

    let res = app
        .post(
            "/v1/tokens/revoke",
            &app.backend_key,
            &json!({"token": token}),
        )
        .await;
    assert_eq!(res.status(), 200);
    use sea_orm::EntityTrait;
    let rows = entities::revoked_token::Entity::find()
        .all(&app.db().await)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "the revocation is recorded");
    assert_eq!(rows[0].jti, "from-the-future");
    assert_eq!(rows[0].expires_at.timestamp(), later + 600 + 30);

    // An hour on, the token would be valid: it is revoked instead.
    app.clock.advance(Duration::seconds(3600));
    assert_decision(&app.authorize(&token, None).await, false, "revoked");
    // A fresh token of the same account still works: only this one is revoked.
    let fresh = app.issue_token(&id).await;
    assert_decision(&app.authorize(&fresh, None).await, true, "ok");
}

#[tokio::test]
async fn configured_issuer_and_audiences_are_honoured() {
    let app = spawn_app_with(|s| {
        s.tokens.issuer = "https://vouch.example.org".into();
        s.tokens.audiences = vec!["meet-a".into(), "meet-b".into()];
    })
    .await;
    let id = app.entitled_account("aud").await;
    for aud in ["meet-a", "meet-b"] {
        let token = app.issue(&id, json!({"audience": aud})).await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(token_part(&token, 1)["iss"], "https://vouch.example.org");
        assert_decision(&app.authorize(&token, None).await, true, "ok");
    }
}

#[tokio::test]
async fn authorize_input_is_validated() {
    let app = spawn_app().await;
    for body in [
        json!({}),
        json!({"token": 5}),
        json!({"token": "x", "extra": 1}),
    ] {
        let res = app
            .post("/v1/e2ee/authorize", &app.meeting_key, &body)
            .await;
        crate::helpers::assert_problem(res, 400, "invalid_body").await;
    }
}
