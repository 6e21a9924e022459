//! Device binding that means something: `tokens.require_device_binding`, and DPoP proofs of
//! the device key (RFC 9449) at authorize and the exchanges, with Vouch's nonces.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
use chrono::Duration;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use vouch::{
    config::Algorithm,
    crypto::{random_bytes, sha256},
    tokens::keys::{self, Signer},
};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, TestApp};

const ISSUER: &str = "http://localhost:8080";
const AUTHORIZE: &str = "/v1/e2ee/authorize";

/// A participant's device: a key pair, its public JWK and thumbprint.
struct Device {
    signer: Signer,
    alg: &'static str,
    jwk: Value,
    jkt: String,
}

impl Device {
    fn new(alg: Algorithm) -> Self {
        let generated = keys::generate(alg).unwrap();
        let (signer, jwk) = keys::parse(alg, &generated.pkcs8).unwrap();
        // Only the public members a device would put in a proof (no kid, alg, use).
        let mut public = json!({"kty": jwk.kty});
        for (name, value) in [
            ("crv", &jwk.crv),
            ("x", &jwk.x),
            ("y", &jwk.y),
            ("n", &jwk.n),
            ("e", &jwk.e),
        ] {
            if let Some(v) = value {
                public[name] = json!(v);
            }
        }
        Device {
            signer,
            alg: alg.as_str(),
            jwk: public,
            jkt: jwk.kid,
        }
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self.signer.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", B64.encode(sig))
    }

    fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg, "jwk": self.jwk})
    }

    fn proof(&self, claims: &Value) -> String {
        self.sign(&self.header(), claims)
    }
}

/// The claims of a good proof for `token` at `path`, made now with `nonce`.
fn claims(app: &TestApp, path: &str, token: &str, nonce: &str) -> Value {
    json!({
        "htm": "POST",
        "htu": format!("{ISSUER}{path}"),
        "iat": app.now().timestamp(),
        "jti": B64.encode(random_bytes::<12>()),
        "nonce": nonce,
        "ath": B64.encode(sha256(token.as_bytes())),
    })
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    if value.is_null() {
        v.as_object_mut().unwrap().remove(key);
    } else {
        v[key] = value;
    }
    v
}

async fn nonce(app: &TestApp) -> String {
    let res = app
        .post("/v1/e2ee/nonce", &app.meeting_key, &json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let header = res.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["nonce"], header.as_str());
    assert!(body["expires_at"].is_string(), "{body}");
    header
}

/// Authorize with a body; the decision and the `DPoP-Nonce` sent with it.
async fn authorize(app: &TestApp, body: Value) -> (Value, String) {
    let res = app.post(AUTHORIZE, &app.meeting_key, &body).await;
    assert_eq!(res.status(), StatusCode::OK);
    let nonce = res.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    (res.json().await.unwrap(), nonce)
}

fn assert_refused(body: &Value, dpop_error: &str) {
    assert_eq!(body["allow"], false, "{body}");
    assert_eq!(body["reason"], "device_mismatch", "{body}");
    assert_eq!(body["dpop_error"], dpop_error, "{body}");
    assert!(body["detail"].is_string(), "{body}");
}

async fn bound_token(app: &TestApp, device: &Device) -> (String, String) {
    let id = app.entitled_account(&format!("dev-{}", device.alg)).await;
    let token = app.issue(&id, json!({"device_jkt": device.jkt})).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, token)
}

#[tokio::test]
async fn a_proof_of_the_bound_key_allows_once() {
    let app = spawn_app().await;
    for alg in [Algorithm::ES256, Algorithm::EdDSA] {
        let device = Device::new(alg);
        let (id, token) = bound_token(&app, &device).await;
        let nonce = nonce(&app).await;
        let proof = device.proof(&claims(&app, AUTHORIZE, &token, &nonce));

        // The proof alone names the device.
        let (body, next) = authorize(&app, json!({"token": token, "dpop": proof})).await;
        assert_eq!(body["allow"], true, "{alg:?}: {body}");
        assert_eq!(body["account_id"], id.as_str());
        assert!(body.get("dpop_error").is_none(), "{body}");
        assert_eq!(next.len(), 32);

        // The same proof again: a replay.
        let (body, _) = authorize(&app, json!({"token": token, "dpop": proof})).await;
        assert_refused(&body, "invalid_dpop_proof");

        // A new proof, with the nonce the last answer gave and device_jkt beside it.
        let proof = device.proof(&claims(&app, AUTHORIZE, &token, &next));
        let (body, _) = authorize(
            &app,
            json!({"token": token, "dpop": proof, "device_jkt": device.jkt}),
        )
        .await;
        assert_eq!(body["allow"], true, "{body}");

        // device_jkt and the proof must agree.
        let other = Device::new(Algorithm::EdDSA);
        let proof = device.proof(&claims(&app, AUTHORIZE, &token, &next));
        let (body, _) = authorize(
            &app,
            json!({"token": token, "dpop": proof, "device_jkt": other.jkt}),
        )
        .await;
        assert_eq!(body["reason"], "device_mismatch", "{body}");
    }
}

#[tokio::test]
async fn proofs_that_prove_nothing_here_are_refused() {
    let app = spawn_app().await;
    let device = Device::new(Algorithm::ES256);
    let (id, token) = bound_token(&app, &device).await;
    let other_token = app.issue(&id, json!({"device_jkt": device.jkt})).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let nonce = nonce(&app).await;
    let good = || claims(&app, AUTHORIZE, &token, &nonce);
    let stranger = Device::new(Algorithm::ES256);
    let now = app.now().timestamp();

    let cases: Vec<(&str, String)> = vec![
        ("another key", stranger.proof(&good())),
        // Signed by another key under the device's jwk.
        ("bad signature", stranger.sign(&device.header(), &good())),
        ("htm", device.proof(&with(good(), "htm", json!("GET")))),
        (
            "htu of another endpoint",
            device.proof(&with(
                good(),
                "htu",
                json!(format!("{ISSUER}/v1/exchange/livekit")),
            )),
        ),
        (
            "htu of another host",
            device.proof(&with(
                good(),
                "htu",
                json!("https://evil.example/v1/e2ee/authorize"),
            )),
        ),
        (
            "stale iat",
            device.proof(&with(good(), "iat", json!(now - 95))),
        ),
        (
            "future iat",
            device.proof(&with(good(), "iat", json!(now + 95))),
        ),
        (
            "absurd iat",
            device.proof(&with(good(), "iat", json!(i64::MIN))),
        ),
        (
            "absurd iat",
            device.proof(&with(good(), "iat", json!(i64::MAX))),
        ),
        ("no ath", device.proof(&with(good(), "ath", Value::Null))),
        (
            "ath of another token",
            device.proof(&with(
                good(),
                "ath",
                json!(B64.encode(sha256(other_token.as_bytes()))),
            )),
        ),
    ];
    for (case, proof) in cases {
        let (body, _) = authorize(&app, json!({"token": token, "dpop": proof})).await;
        assert_refused(&body, "invalid_dpop_proof");
        assert!(body.get("entitlements").is_none(), "{case}: {body}");
    }
    // Within the window, and with a query the htu comparison ignores: allowed.
    let edge = with(good(), "iat", json!(now - 85));
    let edge = with(edge, "htu", json!(format!("{ISSUER}{AUTHORIZE}?x=1#f")));
    let (body, _) = authorize(&app, json!({"token": token, "dpop": device.proof(&edge)})).await;
    assert_eq!(body["allow"], true, "{body}");
}

#[tokio::test]
async fn a_proof_needs_a_nonce_vouch_issued_recently() {
    let app = spawn_app().await;
    let device = Device::new(Algorithm::EdDSA);
    let (_, token) = bound_token(&app, &device).await;

    // No nonce: refused, and the answer carries one to use.
    let first = with(claims(&app, AUTHORIZE, &token, ""), "nonce", Value::Null);
    let (body, fresh) =
        authorize(&app, json!({"token": token, "dpop": device.proof(&first)})).await;
    assert_refused(&body, "use_dpop_nonce");

    // A nonce Vouch never issued, and one from a Vouch with another master key.
    let stranger = spawn_app().await;
    let foreign = nonce(&stranger).await;
    for bad in [B64.encode(random_bytes::<24>()), foreign] {
        let proof = device.proof(&claims(&app, AUTHORIZE, &token, &bad));
        let (body, _) = authorize(&app, json!({"token": token, "dpop": proof})).await;
        assert_refused(&body, "use_dpop_nonce");
    }

    // The nonce from the refusal works, on this instance and on another one.
    let proof = device.proof(&claims(&app, AUTHORIZE, &token, &fresh));
    let (body, _) = authorize(&app, json!({"token": token, "dpop": proof})).await;
    assert_eq!(body["allow"], true, "{body}");
    let sibling = app.spawn_sibling().await;
    let from_sibling = nonce(&sibling).await;
    let proof = device.proof(&claims(&app, AUTHORIZE, &token, &from_sibling));
    let (body, _) = authorize(&app, json!({"token": token, "dpop": proof})).await;
    assert_eq!(body["allow"], true, "{body}");

    // Five minutes later the nonce has expired (the token has not).
    app.clock.advance(Duration::seconds(301));
    let proof = device.proof(&claims(&app, AUTHORIZE, &token, &fresh));
    let (body, newer) = authorize(&app, json!({"token": token, "dpop": proof})).await;
    assert_refused(&body, "use_dpop_nonce");
    let proof = device.proof(&claims(&app, AUTHORIZE, &token, &newer));
    let (body, _) = authorize(&app, json!({"token": token, "dpop": proof})).await;
    assert_eq!(body["allow"], true, "{body}");
}

#[tokio::test]
async fn malformed_device_inputs_are_400s() {
    let app = spawn_app().await;
    let device = Device::new(Algorithm::EdDSA);
    let (_, token) = bound_token(&app, &device).await;
    let nonce = nonce(&app).await;
    let good = claims(&app, AUTHORIZE, &token, &nonce);

    for jkt in [
        "short",
        "",
        &"A".repeat(44),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9X=",
    ] {
        let res = app
            .post(
                AUTHORIZE,
                &app.meeting_key,
                &json!({"token": token, "device_jkt": jkt}),
            )
            .await;
        assert_problem(res, 400, "invalid_device_jkt").await;
    }
    let mut private = device.jwk.clone();
    private["d"] = json!(B64.encode([7u8; 32]));
    let malformed = [
        "garbage".to_owned(),
        "a.b.c".to_owned(),
        device.sign(&with(device.header(), "typ", json!("JWT")), &good),
        device.sign(&with(device.header(), "alg", json!("HS256")), &good),
        device.sign(&with(device.header(), "alg", json!("ES256")), &good),
        device.sign(&with(device.header(), "jwk", Value::Null), &good),
        device.sign(&with(device.header(), "jwk", private), &good),
        device.proof(&with(good.clone(), "jti", Value::Null)),
        device.proof(&with(good.clone(), "iat", json!("now"))),
        "x".repeat(9000),
    ];
    for proof in malformed {
        let res = app
            .post(
                AUTHORIZE,
                &app.meeting_key,
                &json!({"token": token, "dpop": proof}),
            )
            .await;
        let problem = assert_problem(res, 400, "invalid_dpop_proof").await;
        assert!(
            !problem["detail"].as_str().unwrap().contains(&device.jkt),
            "{problem}"
        );
    }
    // The well-formed proof still passes.
    let (body, _) = authorize(&app, json!({"token": token, "dpop": device.proof(&good)})).await;
    assert_eq!(body["allow"], true, "{body}");
}

#[tokio::test]
async fn required_device_binding_refuses_unbound_tokens_everywhere() {
    let app = spawn_app_with(|s| {
        s.tokens.require_device_binding = true;
        s.jitsi.app_id = Some("vouch-test".into());
        s.jitsi.domain = Some("meet.example.org".into());
    })
    .await;
    let id = app.entitled_account("must-bind").await;
    let res = app
        .post(
            &format!("/v1/accounts/{id}/tokens"),
            &app.backend_key,
            &json!({}),
        )
        .await;
    let problem = assert_problem(res, 400, "device_binding_required").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("device_jkt"),
        "{problem}"
    );

    // A token issued before binding was required (no cnf), still signed by our key.
    let now = app.now().timestamp();
    let kid = app.signing_key().await.kid;
    let unbound = app
        .forge(
            &json!({"alg": "EdDSA", "typ": "e2ee-ent+jwt", "kid": kid}),
            &json!({
                "iss": ISSUER, "sub": id, "aud": "meeting", "iat": now, "nbf": now,
                "exp": now + 600, "jti": "unbound-1", "ent": ["e2ee"]
            }),
        )
        .await;
    let (body, _) = authorize(&app, json!({"token": unbound})).await;
    assert_eq!(body["allow"], false, "{body}");
    assert_eq!(body["reason"], "device_mismatch", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("not bound"),
        "{body}"
    );
    let res = app
        .post(
            "/v1/exchange/jitsi",
            &app.meeting_key,
            &json!({"token": unbound, "room": "standup"}),
        )
        .await;
    assert_problem(res, 403, "device_mismatch").await;

    // Bound tokens are issued and allowed as before.
    let device = Device::new(Algorithm::EdDSA);
    let token = app.issue(&id, json!({"device_jkt": device.jkt})).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (body, _) = authorize(&app, json!({"token": token, "device_jkt": device.jkt})).await;
    assert_eq!(body["allow"], true, "{body}");
}

#[tokio::test]
async fn required_dpop_wants_a_proof_for_bound_tokens_only() {
    let app = spawn_app_with(|s| s.tokens.require_dpop = true).await;
    let device = Device::new(Algorithm::ES256);
    let (id, token) = bound_token(&app, &device).await;

    let (body, nonce) = authorize(&app, json!({"token": token, "device_jkt": device.jkt})).await;
    assert_refused(&body, "invalid_dpop_proof");
    let proof = device.proof(&claims(&app, AUTHORIZE, &token, &nonce));
    let (body, _) = authorize(&app, json!({"token": token, "dpop": proof})).await;
    assert_eq!(body["allow"], true, "{body}");

    let unbound = app.issue_token(&id).await;
    let (body, _) = authorize(&app, json!({"token": unbound})).await;
    assert_eq!(body["allow"], true, "{body}");
}

#[tokio::test]
async fn the_exchanges_take_proofs_for_their_own_url() {
    let app = spawn_app_with(|s| {
        s.tokens.require_dpop = true;
        s.jitsi.app_id = Some("vouch-test".into());
        s.jitsi.domain = Some("meet.example.org".into());
        s.livekit.api_key = Some("APIkey".into());
        s.livekit.api_secret = Some(SecretString::from("a-livekit-secret-of-32-bytes-min!"));
        s.livekit.url = Some("http://127.0.0.1:9".into());
    })
    .await;
    let device = Device::new(Algorithm::EdDSA);
    let (_, token) = bound_token(&app, &device).await;
    let nonce = nonce(&app).await;

    for path in ["/v1/exchange/jitsi", "/v1/exchange/livekit"] {
        // A proof made for authorize is not one for the exchange.
        let proof = device.proof(&claims(&app, AUTHORIZE, &token, &nonce));
        let res = app
            .post(
                path,
                &app.meeting_key,
                &json!({"token": token, "room": "standup", "dpop": proof}),
            )
            .await;
        assert!(res.headers().contains_key("dpop-nonce"), "{path}");
        let problem = assert_problem(res, 403, "device_mismatch").await;
        assert_eq!(problem["dpop_error"], "invalid_dpop_proof", "{problem}");

        // Without a nonce: refused with one to use.
        let no_nonce = with(claims(&app, path, &token, ""), "nonce", Value::Null);
        let res = app
            .post(
                path,
                &app.meeting_key,
                &json!({"token": token, "room": "standup", "dpop": device.proof(&no_nonce)}),
            )
            .await;
        let fresh = res.headers()["dpop-nonce"].to_str().unwrap().to_owned();
        let problem = assert_problem(res, 403, "device_mismatch").await;
        assert_eq!(problem["dpop_error"], "use_dpop_nonce", "{problem}");

        let proof = device.proof(&claims(&app, path, &token, &fresh));
        let res = app
            .post(
                path,
                &app.meeting_key,
                &json!({"token": token, "room": "standup", "dpop": proof}),
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{path}: {}",
            res.text().await.unwrap()
        );

        let res = app
            .post(
                path,
                &app.meeting_key,
                &json!({"token": token, "room": "standup", "dpop": "junk"}),
            )
            .await;
        assert_problem(res, 400, "invalid_dpop_proof").await;
    }
}
