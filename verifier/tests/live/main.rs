//! The verifier against a live Vouch: valid tokens pass, and each refusal carries the reason
//! Vouch's authorize gives.

mod harness;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use vouch_verifier::{thumbprint, Reason, Verifier};

use harness::{header, start};

/// RFC 8037's example Ed25519 key, and another device's key.
const DEVICE: &str =
    r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
const OTHER_DEVICE: &str =
    r#"{"kty":"OKP","crv":"Ed25519","x":"3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08"}"#;

#[tokio::test]
async fn a_valid_token_passes() {
    let vouch = start(|_| {}).await;
    let account = vouch.entitled_account("valid").await;
    let token = vouch.issue(&account, json!({})).await;
    let verifier = Verifier::new(vouch.options());

    let decision = verifier.verify(&token, None).await.unwrap();
    assert!(decision.allow, "{decision:?}");
    assert_eq!(decision.reason, Reason::Ok);
    assert_eq!(decision.account_id.as_deref(), Some(account.as_str()));
    let claims = decision.claims.unwrap();
    assert_eq!(claims.ent, ["e2ee"]);
    assert!(claims.status.is_some());
    assert!(decision.expires_at.unwrap() > std::time::SystemTime::now());

    // A device-bound token, presented by its device.
    let jkt = thumbprint(DEVICE).unwrap();
    let bound = vouch.issue(&account, json!({"device_jkt": jkt})).await;
    let decision = verifier.verify(&bound, Some(&jkt)).await.unwrap();
    assert_eq!(decision.reason, Reason::Ok);
    let bound_iat = decision.claims.unwrap().iat;

    // A changed payload no longer matches the signature.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].replacen(&parts[1][..4], "eyJz", 1);
    let tampered = parts.join(".");
    let decision = verifier.verify(&tampered, None).await.unwrap();
    assert_eq!(decision.reason, Reason::InvalidToken);
    let decision = verifier.verify("not a token", None).await.unwrap();
    assert_eq!(decision.reason, Reason::InvalidToken);

    // Revoked locally, as on a `token.revoked` event.
    verifier.revoke(&claims.jti, claims.exp);
    let decision = verifier.verify(&token, None).await.unwrap();
    assert_eq!(decision.reason, Reason::Revoked);
    assert!(!decision.allow);

    // Every token of the account issued before a time, as on a `tokens.revoked` event: the
    // device-bound token goes too; one issued from then on does not.
    verifier.revoke_account(&account, bound_iat + 1);
    let decision = verifier.verify(&bound, Some(&jkt)).await.unwrap();
    assert_eq!(decision.reason, Reason::Revoked);
    verifier.revoke_account(&account, bound_iat - 1);
    let decision = verifier.verify(&bound, Some(&jkt)).await.unwrap();
    assert_eq!(
        decision.reason,
        Reason::Revoked,
        "an earlier revocation never narrows a later one"
    );
    let other = vouch.entitled_account("valid-other").await;
    let theirs = vouch.issue(&other, json!({})).await;
    // (Its status list may be the copy cached before it was entitled: only revocation counts.)
    let decision = verifier.verify(&theirs, None).await.unwrap();
    assert_ne!(decision.reason, Reason::Revoked, "another account's token");

    // A verifier that expects another issuer does not take Vouch's tokens.
    let elsewhere = Verifier::new(
        vouch_verifier::Options::new(format!("{}/other", vouch.address), "meeting")
            .status_list_key(&vouch.meeting_key),
    );
    match elsewhere.verify(&bound, Some(&jkt)).await {
        Ok(decision) => assert_eq!(decision.reason, Reason::InvalidToken),
        Err(e) => assert!(matches!(e, vouch_verifier::Error::Jwks(_)), "{e}"),
    }
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let vouch = start(|s| s.tokens.audiences = vec!["meeting".into(), "recording".into()]).await;
    let account = vouch.entitled_account("audience").await;
    let token = vouch
        .issue(&account, json!({"audience": "recording"}))
        .await;

    let decision = Verifier::new(vouch.options())
        .verify(&token, None)
        .await
        .unwrap();
    assert!(!decision.allow);
    assert_eq!(decision.reason, Reason::WrongAudience);
    assert_eq!(decision.reason.as_str(), "wrong_audience");

    let recording = Verifier::new(vouch.options().audience("recording"));
    assert_eq!(
        recording.verify(&token, None).await.unwrap().reason,
        Reason::Ok
    );
}

#[tokio::test]
async fn an_expired_token_is_refused_after_the_leeway() {
    let vouch = start(|_| {}).await;
    let account = vouch.entitled_account("expired").await;
    let token = vouch.issue(&account, json!({"ttl_seconds": 1})).await;
    let verifier = Verifier::new(vouch.options().leeway(Duration::from_secs(5)));
    let now = vouch.now();

    assert_eq!(
        verifier.verify_at(&token, None, now).await.unwrap().reason,
        Reason::Ok
    );
    // Within the leeway after `exp`.
    let within = now + Duration::from_secs(4);
    assert_eq!(
        verifier
            .verify_at(&token, None, within)
            .await
            .unwrap()
            .reason,
        Reason::Ok
    );
    let after = now + Duration::from_secs(8);
    let decision = verifier.verify_at(&token, None, after).await.unwrap();
    assert!(!decision.allow);
    assert_eq!(decision.reason, Reason::Expired);
    assert_eq!(decision.account_id.as_deref(), Some(account.as_str()));
    // Not valid yet: issued in the verifier's future.
    let before = now - Duration::from_secs(60);
    assert_eq!(
        verifier
            .verify_at(&token, None, before)
            .await
            .unwrap()
            .reason,
        Reason::InvalidToken
    );
}

#[tokio::test]
async fn a_token_bound_to_another_device_is_refused() {
    let vouch = start(|_| {}).await;
    let account = vouch.entitled_account("device").await;
    let jkt = thumbprint(DEVICE).unwrap();
    let other = thumbprint(OTHER_DEVICE).unwrap();
    assert_ne!(jkt, other);
    let token = vouch.issue(&account, json!({"device_jkt": jkt})).await;
    let verifier = Verifier::new(vouch.options());

    for presented in [Some(other.as_str()), None] {
        let decision = verifier.verify(&token, presented).await.unwrap();
        assert!(!decision.allow);
        assert_eq!(decision.reason, Reason::DeviceMismatch);
    }
    assert_eq!(
        verifier.verify(&token, Some(&jkt)).await.unwrap().reason,
        Reason::Ok
    );
}

/// Polls until `verifier` gives `want` for `token`, for at most `limit`; returns the last.
async fn eventually(verifier: &Verifier, token: &str, want: Reason, limit: Duration) -> Reason {
    let started = Instant::now();
    loop {
        let reason = verifier.verify(token, None).await.unwrap().reason;
        if reason == want || started.elapsed() > limit {
            return reason;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_suspended_account_is_refused_once_the_status_list_shows_it() {
    let vouch = start(|_| {}).await;
    let account = vouch.entitled_account("suspended").await;
    let token = vouch.issue(&account, json!({})).await;
    // Caches lists for 1 s, whatever their `ttl` (60 s here) allows.
    let quick = Verifier::new(vouch.options().max_status_list_age(Duration::from_secs(1)));
    // Caches lists for their `ttl`.
    let patient = Verifier::new(vouch.options());
    for verifier in [&quick, &patient] {
        assert_eq!(
            verifier.verify(&token, None).await.unwrap().reason,
            Reason::Ok
        );
    }

    let path = format!("/v1/accounts/{account}");
    let (status, body) = vouch
        .send(
            Method::PATCH,
            &path,
            &vouch.admin_key,
            json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The list shows a change within 1 s; the quick verifier fetches it 1 s after its copy.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let reason = eventually(
        &quick,
        &token,
        Reason::AccountSuspended,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(reason, Reason::AccountSuspended);
    assert_eq!(reason.as_str(), "account_suspended");
    // The patient one still answers from its copy, as the list's `ttl` allows.
    assert_eq!(
        patient.verify(&token, None).await.unwrap().reason,
        Reason::Ok
    );
    // Told that the account changed (an `account.suspended` event), it reads the list again.
    patient.refresh_status_lists();
    assert_eq!(
        patient.verify(&token, None).await.unwrap().reason,
        Reason::AccountSuspended
    );
    // A new verifier reads the list as it is now.
    let fresh = Verifier::new(vouch.options());
    assert_eq!(
        fresh.verify(&token, None).await.unwrap().reason,
        Reason::AccountSuspended
    );

    // Reactivated: entitled again.
    vouch
        .send(
            Method::PATCH,
            &path,
            &vouch.admin_key,
            json!({"status": "active"}),
        )
        .await;
    let reason = eventually(&quick, &token, Reason::Ok, Duration::from_secs(6)).await;
    assert_eq!(reason, Reason::Ok);
}

#[tokio::test]
async fn an_erased_account_is_not_entitled_and_lists_honour_their_ttl() {
    // Lists whose `ttl` is 1 s: a verifier caches them no longer.
    let vouch = start(|s| s.status_lists.ttl_seconds = 1).await;
    let account = vouch.entitled_account("erased").await;
    let token = vouch.issue(&account, json!({})).await;
    let verifier = Verifier::new(vouch.options());
    assert_eq!(
        verifier.verify(&token, None).await.unwrap().reason,
        Reason::Ok
    );

    let (status, _) = vouch
        .send(
            Method::DELETE,
            &format!("/v1/accounts/{account}"),
            &vouch.admin_key,
            json!({}),
        )
        .await;
    assert_eq!(status, 204);
    let reason = eventually(
        &verifier,
        &token,
        Reason::NotEntitled,
        Duration::from_secs(6),
    )
    .await;
    assert_eq!(reason, Reason::NotEntitled);

    // Without the meeting key, a private list cannot be read: no decision, not a guess.
    let anonymous = Verifier::new(vouch_verifier::Options::new(&vouch.address, "meeting"));
    let err = anonymous.verify(&token, None).await.unwrap_err();
    assert!(matches!(err, vouch_verifier::Error::StatusList(_)), "{err}");
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_at_most_once_per_interval() {
    let vouch = start(|_| {}).await;
    let account = vouch.entitled_account("rotation").await;
    let before = vouch.issue(&account, json!({})).await;
    let quick = Verifier::new(
        vouch
            .options()
            .jwks_refetch_interval(Duration::from_secs(1)),
    );
    let slow = Verifier::new(
        vouch
            .options()
            .jwks_refetch_interval(Duration::from_secs(3600)),
    );
    for verifier in [&quick, &slow] {
        assert_eq!(
            verifier.verify(&before, None).await.unwrap().reason,
            Reason::Ok
        );
    }

    // A new key is published now and signs one JWKS max-age (300 s) later; both verifiers
    // hold the JWKS from before, fresh for another 300 s.
    let (status, key) = vouch
        .send(
            Method::POST,
            "/v1/admin/keys/rotate",
            &vouch.admin_key,
            json!({}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    vouch.clock.advance(chrono::Duration::seconds(301));
    let after = vouch.issue(&account, json!({})).await;
    assert_eq!(header(&after)["kid"], key["kid"]);
    assert_ne!(header(&after)["kid"], header(&before)["kid"]);
    let now = vouch.now();

    // Fetched the JWKS less than the interval ago: the unknown kid is not fetched again.
    assert_eq!(
        slow.verify_at(&after, None, now).await.unwrap().reason,
        Reason::InvalidToken
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        quick.verify_at(&after, None, now).await.unwrap().reason,
        Reason::Ok
    );
    // The retired key stays published until its tokens expire.
    assert_eq!(
        quick.verify_at(&before, None, now).await.unwrap().reason,
        Reason::Ok
    );
}

#[tokio::test]
async fn tokens_and_lists_signed_with_es256_and_rs256_verify() {
    for alg in [
        vouch::config::Algorithm::ES256,
        vouch::config::Algorithm::RS256,
    ] {
        let vouch = start(|s| s.tokens.algorithm = alg).await;
        let account = vouch.entitled_account("algorithm").await;
        let token = vouch.issue(&account, json!({})).await;
        assert_eq!(header(&token)["alg"], alg.as_str());
        let decision = Verifier::new(vouch.options())
            .verify(&token, None)
            .await
            .unwrap();
        assert_eq!(decision.reason, Reason::Ok, "{}", alg.as_str());
    }
}

/// Vouch's real deliveries verify with [`WebhookVerifier`], and read as the gate needs them.
#[tokio::test]
async fn vouchs_webhook_deliveries_verify_and_name_whom_to_evict() {
    use actix_web::{web, App, HttpRequest, HttpServer};
    use tokio::sync::mpsc;
    use vouch_verifier::webhooks::WebhookVerifier;

    type Delivery = (String, String, String, web::Bytes);
    let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
    let server = HttpServer::new(move || {
        let tx = tx.clone();
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let header = |name: &str| {
                let value = req.headers().get(name).and_then(|v| v.to_str().ok());
                value.unwrap_or("").to_owned()
            };
            let delivery = (
                header("webhook-id"),
                header("webhook-timestamp"),
                header("webhook-signature"),
                body,
            );
            tx.send(delivery).ok();
            async { actix_web::HttpResponse::NoContent().finish() }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());

    let vouch = start(|s| {
        s.webhooks.allow_http = true;
        s.webhooks.allow_private_networks = true;
        s.webhooks.poll_interval_millis = 100;
    })
    .await;
    let url = format!("http://127.0.0.1:{port}/vouch-events");
    let (status, endpoint) = vouch
        .send(
            Method::POST,
            "/v1/admin/webhooks",
            &vouch.admin_key,
            json!({"url": url}),
        )
        .await;
    assert_eq!(status, 201, "{endpoint}");
    let hooks = WebhookVerifier::new(endpoint["secret"].as_str().unwrap()).unwrap();
    let wrong = WebhookVerifier::new("whsec_c2VjcmV0c2VjcmV0c2VjcmV0").unwrap();

    let account = vouch.entitled_account("events").await;
    let token = vouch.issue(&account, json!({})).await;
    let (status, _) = vouch
        .send(
            Method::POST,
            "/v1/tokens/revoke",
            &vouch.backend_key,
            json!({"token": token}),
        )
        .await;
    assert_eq!(status, 200);
    let path = format!("/v1/accounts/{account}");
    vouch
        .send(
            Method::PATCH,
            &path,
            &vouch.admin_key,
            json!({"status": "suspended"}),
        )
        .await;

    let verifier = Verifier::new(vouch.options());
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(seen.contains(&"token.revoked".to_owned())
        && seen.contains(&"account.suspended".to_owned()))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some((id, ts, sig, body))) = tokio::time::timeout(left, rx.recv()).await else {
            panic!("deliveries so far: {seen:?}");
        };
        assert!(wrong.verify(&id, &ts, &sig, &body).is_err());
        let event = hooks.verify(&id, &ts, &sig, &body).unwrap();
        if event.kind == "entitlement.granted" {
            continue;
        }
        assert!(event.evicts(), "{event:?}");
        assert_eq!(event.account_id(), Some(account.as_str()));
        if let Some((jti, expires_at)) = event.revoked_token() {
            let claims = verifier.verify(&token, None).await.unwrap().claims.unwrap();
            assert_eq!(jti, claims.jti);
            // Until the token can no longer verify anywhere: its `exp`, plus Vouch's leeway.
            assert!((claims.exp..=claims.exp + 30).contains(&expires_at));
            verifier.revoke(jti, expires_at);
            assert_eq!(
                verifier.verify(&token, None).await.unwrap().reason,
                Reason::Revoked
            );
        }
        seen.push(event.kind);
    }
}
