//! Signing keys: the JWKS, rotation while tokens are outstanding, automatic rotation, and an
//! independent JWT library verifying our tokens against the served JWKS alone.

use std::collections::HashSet;

use chrono::Duration;
use jwt_simple::prelude::*;
use serde_json::{json, Value};
use vouch::config::Algorithm;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, token_part, TestApp};

async fn jwks(app: &TestApp) -> (Value, String) {
    let res = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cache = res.headers()["cache-control"].to_str().unwrap().to_owned();
    (res.json().await.unwrap(), cache)
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn key_states(app: &TestApp) -> Vec<(String, String)> {
    let body: Value = app
        .get("/v1/admin/keys", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["next_cursor"], Value::Null, "lists share one shape");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap().to_owned(),
                k["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_jwks_publishes_public_keys_only_with_caching() {
    let app = spawn_app().await;
    let (body, cache) = jwks(&app).await;
    assert_eq!(cache, "public, max-age=300");
    let keys = body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = keys[0].as_object().unwrap();
    let mut members: Vec<&str> = key.keys().map(String::as_str).collect();
    members.sort();
    assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x"]);
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    // The kid is the key's RFC 7638 thumbprint.
    let jwk: vouch::tokens::keys::Jwk = serde_json::from_value(keys[0].clone()).unwrap();
    assert_eq!(
        vouch::tokens::keys::thumbprint(&jwk),
        key["kid"].as_str().unwrap()
    );
}

#[tokio::test]
async fn rotation_publishes_first_signs_later_and_keeps_old_tokens_valid() {
    let app = spawn_app().await;
    let id = app.entitled_account("rotate").await;
    let old_token = app.issue_token(&id).await;
    let old_kid = token_part(&old_token, 0)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        key_states(&app).await,
        vec![(old_kid.clone(), "active".to_owned())]
    );

    let res = app
        .post("/v1/admin/keys/rotate", &app.admin_key, &json!({}))
        .await;
    assert_eq!(res.status(), 201);
    let new: Value = res.json().await.unwrap();
    let new_kid = new["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(new["state"], "next");

    // Published at once, but not signing for one JWKS max-age.
    assert_eq!(
        kids(&jwks(&app).await.0),
        vec![old_kid.clone(), new_kid.clone()]
    );
    let during = app.issue_token(&id).await;
    assert_eq!(token_part(&during, 0)["kid"], old_kid.as_str());
    assert_eq!(
        key_states(&app).await,
        vec![
            (old_kid.clone(), "active".to_owned()),
            (new_kid.clone(), "next".to_owned())
        ]
    );
    assert_problem(
        app.post("/v1/admin/keys/rotate", &app.admin_key, &json!({}))
            .await,
        409,
        "rotation_pending",
    )
    .await;

    // After max-age the new key signs; the old one is retired but still verifies.
    app.clock.advance(Duration::seconds(301));
    let after = app.issue_token(&id).await;
    assert_eq!(token_part(&after, 0)["kid"], new_kid.as_str());
    assert_eq!(
        key_states(&app).await,
        vec![
            (old_kid.clone(), "retired".to_owned()),
            (new_kid.clone(), "active".to_owned())
        ]
    );
    for token in [&old_token, &during, &after] {
        assert_eq!(app.authorize(token, None).await["allow"], true);
    }
    assert_eq!(kids(&jwks(&app).await.0).len(), 2);

    // Once every token the old key signed has expired, it leaves the JWKS and loses its
    // private half; its kid is never used again.
    app.clock.advance(Duration::seconds(3600 + 31));
    app.maintain().await;
    assert_eq!(kids(&jwks(&app).await.0), vec![new_kid.clone()]);
    assert_eq!(
        key_states(&app).await[0],
        (old_kid.clone(), "removed".to_owned())
    );
    use sea_orm::EntityTrait;
    let row = entities::signing_key::Entity::find_by_id(old_kid.clone())
        .one(&app.db().await)
        .await
        .unwrap()
        .unwrap();
    assert!(row.private_key_sealed.is_empty());
    assert_eq!(
        app.authorize(&old_token, None).await["reason"],
        "invalid_token"
    );

    let audit: Value = app
        .get("/v1/admin/audit?action=key.rotated", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"][0]["target_id"], new_kid.as_str());
    assert_eq!(audit["items"][0]["details"]["retiring"], json!([old_kid]));
}

#[tokio::test]
async fn keys_rotate_on_their_own_when_due_and_instances_agree() {
    let app = spawn_app_with(|s| s.tokens.rotation_period_days = 30).await;
    let sibling = app.spawn_sibling().await;
    let first = app.signing_key().await.kid;
    app.maintain().await;
    assert_eq!(key_states(&app).await.len(), 1, "not due yet");

    app.clock.advance(Duration::days(30));
    sibling.clock.advance(Duration::days(30));
    app.maintain().await;
    sibling.maintain().await;
    let states = key_states(&app).await;
    assert_eq!(
        states.len(),
        2,
        "exactly one new key, however many instances: {states:?}"
    );
    assert_eq!(states[1].1, "next");

    // The second instance learns of it from the database and signs with the same key.
    app.clock.advance(Duration::seconds(301));
    sibling.clock.advance(Duration::seconds(301));
    let id = app.entitled_account("auto").await;
    let from_sibling = sibling.issue_token(&id).await;
    let kid = token_part(&from_sibling, 0)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(kid, states[1].0);
    assert_ne!(kid, first);
    assert_eq!(app.authorize(&from_sibling, None).await["allow"], true);
}

#[tokio::test]
async fn changing_the_algorithm_rotates_to_a_key_of_that_algorithm() {
    let app = spawn_app().await;
    let mut settings = app.settings.clone();
    settings.tokens.algorithm = Algorithm::ES256;
    let es = crate::helpers::spawn_with_settings(settings, false).await;
    let states: Vec<Value> = es
        .get("/v1/admin/keys", &app.admin_key)
        .await
        .json::<Value>()
        .await
        .unwrap()["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(states.len(), 2);
    assert_eq!(
        (states[0]["alg"].as_str(), states[0]["state"].as_str()),
        (Some("EdDSA"), Some("active"))
    );
    assert_eq!(
        (states[1]["alg"].as_str(), states[1]["state"].as_str()),
        (Some("ES256"), Some("next"))
    );
}

#[tokio::test]
async fn the_cli_rotates_and_lists_keys() {
    let app = spawn_app().await;
    let out = crate::helpers::output(
        crate::helpers::vouch_command()
            .args(["keys", "rotate"])
            .env("VOUCH_DATABASE_URL", &app.database_url)
            .env(
                "VOUCH_MASTER_KEY",
                secrecy::ExposeSecret::expose_secret(app.settings.master_key.as_ref().unwrap()),
            )
            .env("VOUCH_LOG__FORMAT", "pretty"),
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8(out.stdout).unwrap();
    assert_eq!(listing.lines().count(), 2, "{listing}");
    assert!(
        listing.contains("active") && listing.contains("next"),
        "{listing}"
    );
    app.maintain().await;
    assert_eq!(key_states(&app).await.len(), 2);
}

/// jwt-simple (RustCrypto, not aws-lc) verifies our tokens using nothing but the served JWKS.
#[tokio::test]
async fn an_independent_library_verifies_tokens_with_the_jwks_alone() {
    for alg in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
        let app = spawn_app_with(|s| s.tokens.algorithm = alg).await;
        let id = app.entitled_account("interop").await;
        let token = app
            .issue(
                &id,
                json!({"device_jkt": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"}),
            )
            .await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (jwks, _) = jwks(&app).await;
        let header = token_part(&token, 0);
        assert_eq!(header["alg"], alg.as_str());
        assert_eq!(header["typ"], "e2ee-ent+jwt");
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == header["kid"])
            .unwrap()
            .clone();
        let b64 = |name: &str| {
            Base64UrlSafeNoPadding::decode_to_vec(jwk[name].as_str().unwrap(), None).unwrap()
        };
        let options = VerificationOptions {
            allowed_issuers: Some(HashSet::from_strings(&["http://localhost:8080"])),
            allowed_audiences: Some(HashSet::from_strings(&["meeting"])),
            ..Default::default()
        };
        let claims: JWTClaims<Value> = match alg {
            Algorithm::EdDSA => Ed25519PublicKey::from_bytes(&b64("x"))
                .unwrap()
                .verify_token(&token, Some(options)),
            Algorithm::ES256 => {
                let mut point = vec![4u8];
                point.extend(b64("x"));
                point.extend(b64("y"));
                ES256PublicKey::from_bytes(&point)
                    .unwrap()
                    .verify_token(&token, Some(options))
            }
            Algorithm::RS256 => RS256PublicKey::from_components(&b64("n"), &b64("e"))
                .unwrap()
                .verify_token(&token, Some(options)),
        }
        .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(claims.subject.as_deref(), Some(id.as_str()), "{alg:?}");
        assert_eq!(claims.custom["ent"], json!(["e2ee"]));
        assert_eq!(claims.custom["evidence"], json!(["phone"]));
        assert_eq!(
            claims.custom["cnf"]["jkt"],
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );

        // And it refuses a tampered one.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut c = token_part(&token, 1);
        c["sub"] = json!("someone-else");
        parts[1] = Base64UrlSafeNoPadding::encode_to_string(c.to_string()).unwrap();
        let tampered = parts.join(".");
        let rejected = match alg {
            Algorithm::EdDSA => Ed25519PublicKey::from_bytes(&b64("x"))
                .unwrap()
                .verify_token::<Value>(&tampered, None)
                .is_err(),
            Algorithm::ES256 => {
                let mut point = vec![4u8];
                point.extend(b64("x"));
                point.extend(b64("y"));
                ES256PublicKey::from_bytes(&point)
                    .unwrap()
                    .verify_token::<Value>(&tampered, None)
                    .is_err()
            }
            Algorithm::RS256 => RS256PublicKey::from_components(&b64("n"), &b64("e"))
                .unwrap()
                .verify_token::<Value>(&tampered, None)
                .is_err(),
        };
        assert!(rejected, "{alg:?}");
        // Our own check agrees.
        assert_eq!(
            app.authorize(&token, Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"))
                .await["allow"],
            true
        );
    }
}
